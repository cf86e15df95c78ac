import AgentCore
import ArgumentParser
import Foundation

extension Agentctl {
    struct Quarantine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut a workload off: it sends and receives nothing, live connections included.",
            discussion: """
            The pod's two dispatch entries are swapped to the quarantine chains in one batch and its
            conntrack entries deleted. The quarantine is kept in the agent's data directory and survives
            restarts. It covers this instance of the pod (by UID); --future-pods also covers a pod that
            appears later under the same name. Exit status: 0 done, 1 refused (unknown pod, already
            quarantined), 2 the agent could not do it or could not be reached.
            """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The pod: NAMESPACE/NAME.") var target: String
        @Option(name: .long, help: "Why, for the record.") var reason: String
        @Flag(name: .long, help: "Also quarantine a pod that appears later with this name.") var futurePods = false

        func validate() throws {
            guard target.split(separator: "/", omittingEmptySubsequences: false).count == 2, !target.hasPrefix("/"), !target.hasSuffix("/") else {
                throw ValidationError("the target must be NAMESPACE/NAME")
            }
            guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ValidationError("--reason must say why")
            }
        }

        func run() throws {
            var ask = ControlRequest(command: .quarantine)
            ask.target = target
            ask.reason = reason
            ask.futurePods = futurePods
            print(try request(ask, global).text ?? "")
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a quarantine: the pod's normal policy applies again, in one batch.",
            discussion: "Exit status: 0 done, 1 refused (not quarantined, or quarantined by a file in the state directory), 2 failure.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The pod: NAMESPACE/NAME.") var target: String

        func run() throws {
            var ask = ControlRequest(command: .release)
            ask.target = target
            print(try request(ask, global).text ?? "")
        }
    }
}
