import AgentCore
import ArgumentParser
import Foundation

extension Agentctl {
    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Which policies and rules decide a flow, and the verdict.",
            discussion: """
            SRC and DST are NAMESPACE/NAME or an IP address. The answer is computed from the ruleset the
            agent compiled, by tracing a packet through it as the kernel would. Exit status 0 when the
            flow is allowed, 1 when it is denied, 2 when the question could not be answered.
            """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Source: NAMESPACE/NAME or an IP address.") var source: String
        @Argument(help: "Destination: NAMESPACE/NAME or an IP address.") var destination: String
        @Option(name: .long, help: "PORT/PROTO (5432/tcp, 53/udp, 80 for TCP) or icmp[/TYPE[/CODE]].") var port: String
        @Option(name: .long, help: "ipv4 or ipv6 (default: IPv4 where both sides have it).") var family: String?
        @Flag(name: .long, help: "Explain a packet of an established connection instead of a new one.") var established = false
        @Flag(name: .shortAndLong, help: "Show every rule the packet met.") var verbose = false

        func run() throws {
            var ask = ControlRequest(command: .explain)
            ask.source = source
            ask.destination = destination
            ask.port = port
            ask.family = family
            ask.established = established
            ask.verbose = verbose
            let response = try request(ask, global)
            print(response.text ?? "", terminator: (response.text ?? "").hasSuffix("\n") ? "" : "\n")
            if response.verdict != "ALLOW" { throw Exit.notOK }
        }
    }
}
