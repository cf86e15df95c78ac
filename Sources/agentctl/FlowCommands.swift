import AgentCore
import ArgumentParser
import Foundation

extension Agentctl {
    struct Flows: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Flow records from the kernel's logs and conntrack, newest last (<data-dir>/flows.jsonl).")
        @OptionGroup var global: GlobalOptions
        @Flag(name: .long, help: "Only denied flows.") var denied = false
        @OptionGroup var lines: LineOptions

        func run() throws {
            try stream(.flows, global: global, denied: denied, lines, render: FlowText.flow)
        }
    }

    struct Alerts: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Alerts of the anomaly detectors, newest last (<data-dir>/alerts.jsonl).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var lines: LineOptions

        func run() throws {
            try stream(.alerts, global: global, denied: false, lines, render: FlowText.alert)
        }
    }
}

/// What `flows` and `alerts` share: which lines, how many, and how to show them.
struct LineOptions: ParsableArguments {
    @Option(name: .long, help: "Only lines about this workload (NAMESPACE/NAME).") var endpoint: String?
    @Option(name: .long, help: "How many of the newest lines.") var limit = 100
    @Flag(name: .shortAndLong, help: "Keep printing lines as they are written.") var follow = false
    @Option(name: .shortAndLong, help: "Output format: table or json (one record per line).") var output: OutputFormat = .table
}

/// Asks for the lines, prints them, and with `follow` asks again every second for what came since.
private func stream(_ command: ControlRequest.Command, global: GlobalOptions, denied: Bool, _ options: LineOptions,
                    render: ([String: Any]) -> String) throws {
    let json = options.output == .json, follow = options.follow
    var cursor: String?
    repeat {
        var request = ControlRequest(command: command)
        request.denied = denied
        request.endpoint = options.endpoint
        request.limit = options.limit
        request.cursor = cursor
        let response = try agentctl.request(request, global)
        for line in response.lines ?? [] {
            if json {
                print(line)
            } else if let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] {
                print(render(object))
            }
        }
        fflush(stdout)
        cursor = response.cursor
        if follow { sleep(1) }
    } while follow
}

/// One line per record or alert, for people.
enum FlowText {
    static func peer(_ value: Any?) -> String {
        guard let peer = value as? [String: Any] else { return "?" }
        if let namespace = peer["namespace"] as? String, let name = peer["name"] as? String { return "\(namespace)/\(name)" }
        return peer["address"] as? String ?? "?"
    }

    static func flow(_ record: [String: Any]) -> String {
        let port = (record["dport"] as? Int).map { "/\($0)" } ?? ""
        let policies = (record["policies"] as? [[String: Any]] ?? []).map { decision -> String in
            let reporter = decision["reporter"] as? String ?? "?"
            if let policy = decision["policy"] as? String { return "\(reporter):\(policy)#\(decision["rule"] as? Int ?? 0)" }
            return "\(reporter):\(decision["decider"] as? String ?? "?")"
        }.joined(separator: ",")
        let forward = record["forward"] as? [String: Any] ?? [:], reverse = record["reverse"] as? [String: Any] ?? [:]
        return "\(record["start"] as? String ?? "?")  \(peer(record["source"])) -> \(peer(record["destination"]))  "
            + "\(record["proto"] as? String ?? "?")\(port)  \(record["action"] as? String ?? "?")  \(policies.isEmpty ? "-" : policies)  "
            + "pkts \(forward["packets"] as? Int ?? 0)/\(reverse["packets"] as? Int ?? 0)  "
            + "bytes \(forward["bytes"] as? Int ?? 0)/\(reverse["bytes"] as? Int ?? 0)  "
            + "conns \(record["connectionsStarted"] as? Int ?? 0)/\(record["connectionsCompleted"] as? Int ?? 0)"
    }

    static func alert(_ alert: [String: Any]) -> String {
        "\(alert["time"] as? String ?? "?")  \(alert["severity"] as? String ?? "?")  \(alert["detector"] as? String ?? "?")  "
            + "\(peer(alert["endpoint"]))  \(alert["summary"] as? String ?? "")"
    }
}
