import AgentCore
import ArgumentParser
import Foundation

@main
struct Agentctl: ParsableCommand {
    /// `--socket PATH` may come before the subcommand, as the command-line contract writes it
    /// (`agentctl --socket PATH status`); it is taken out here and handed to the subcommand through
    /// PALISADE_SOCKET, which every subcommand's `--socket` defaults to.
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        while let first = arguments.first, first.hasPrefix("--socket") {
            if first == "--socket", arguments.count >= 2 {
                setenv("PALISADE_SOCKET", arguments[1], 1)
                arguments.removeFirst(2)
            } else if first.hasPrefix("--socket=") {
                setenv("PALISADE_SOCKET", String(first.dropFirst("--socket=".count)), 1)
                arguments.removeFirst()
            } else {
                break
            }
        }
        main(arguments)
    }

    static let configuration = CommandConfiguration(
        commandName: "agentctl",
        abstract: "Inspect and drive the Palisade node agent.",
        subcommands: [Status.self, Sync.self, Rules.self, Get.self, Explain.self, Quarantine.self, Release.self, Validate.self,
                      Flows.self, Alerts.self, Audit.self, Report.self, Uninstall.self])
}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Control socket path (env PALISADE_SOCKET).")
    var socket = ControlClient.defaultSocketPath
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, wide, json, yaml
}

/// Exit codes: 0 success, 1 the answer is "no" (rejected files, not in sync, invalid file),
/// 2 the agent could not be asked.
enum Exit {
    static let notOK = ExitCode(1)
    static let unreachable = ExitCode(2)
}

func request(_ request: ControlRequest, _ options: GlobalOptions) throws -> ControlResponse {
    let response: ControlResponse
    do {
        response = try ControlClient.send(request, socketPath: options.socket)
    } catch {
        printError("agentctl: \(error)")
        throw Exit.unreachable
    }
    guard response.ok else {
        printError("agentctl: \(response.error ?? "the agent refused the request")")
        throw ExitCode(response.exitCode ?? 2)
    }
    return response
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
