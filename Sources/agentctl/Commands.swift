import AgentCore
import ArgumentParser
import Foundation
import PolicyModel

extension Agentctl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Whether the kernel matches the state directory, with counts and rejected files.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Output format: table or json.") var output: OutputFormat = .table

        func run() throws {
            guard let status = try request(ControlRequest(command: .status), global).status else { throw Exit.unreachable }
            if output == .json || output == .yaml {
                try printJSON(status)
            } else {
                print(StatusText.render(status))
            }
        }
    }

    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rescan the state directory, reconcile, and return once the kernel matches.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            guard let status = try request(ControlRequest(command: .sync), global).status else { throw Exit.unreachable }
            for rejected in status.rejectedFiles { printError(rejected.description) }
            if let error = status.lastError { printError("agentctl: \(error)") }
            if !status.rejectedFiles.isEmpty || !status.inSync {
                if !status.inSync { printError("agentctl: the kernel does not match the state directory") }
                throw Exit.notOK
            }
            print("in sync: generation \(status.generation), \(status.localEndpoints) local endpoints, \(status.policies) policies")
        }
    }

    struct Rules: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The table as the kernel holds it, in nft syntax.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let response = try request(ControlRequest(command: .rules), global)
            print(response.text ?? "", terminator: "")
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List endpoints, policies or namespaces.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "endpoints, policies, namespaces or quarantines") var kind: String
        @Option(name: .shortAndLong, help: "Output format: table, wide, json or yaml.") var output: OutputFormat = .table

        func run() throws {
            let rows = try request(ControlRequest(command: .get, kind: kind), global).rows ?? []
            switch output {
            case .json: try printJSON(rows)
            case .yaml: print(RowText.yaml(rows), terminator: "")
            case .table, .wide: print(RowText.table(rows, kind: kind, wide: output == .wide), terminator: "")
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check state files offline (no agent needed).",
            discussion: "Prints every error of every file as `path:line: message` on stderr and `path: ok (N objects)` "
                + "for each good file; exits 1 if any file has an error.")
        @Argument(help: "Files to check.") var files: [String]

        func run() throws {
            var failed = false
            for path in files {
                guard let data = FileManager.default.contents(atPath: path) else {
                    printError("\(path):1: cannot read the file")
                    failed = true
                    continue
                }
                let result = DocumentDecoder.decodeCollectingErrors(String(decoding: data, as: UTF8.self), path: path)
                if result.errors.isEmpty {
                    print("\(path): ok (\(result.objects.count) objects)")
                } else {
                    for error in result.errors { printError(error.description) }
                    failed = true
                }
            }
            if failed { throw Exit.notOK }
        }
    }
}

enum StatusText {
    static func render(_ status: StatusReport) -> String {
        var lines = [
            "in sync:        \(status.inSync ? "yes" : "NO")",
            "generation:     \(status.generation)",
            "table:          \(status.table)",
            "state dir:      \(status.stateDirectory) (\(status.files) files)",
            "last applied:   \(status.lastApplied ?? "never")",
            "endpoints:      \(status.endpoints) (\(status.localEndpoints) local, \(status.skippedPods) pods skipped)",
            "policies:       \(status.policies)",
            "drift repairs:  \(status.driftRepairs)",
            "namespaces:     \(status.namespaces)",
        ]
        if let error = status.lastError { lines.append("last error:     \(error)") }
        if !status.rejectedFiles.isEmpty {
            lines.append("rejected files:")
            lines += status.rejectedFiles.map { "  \($0.description)" }
        }
        if !status.warnings.isEmpty {
            lines.append("warnings:")
            lines += status.warnings.map { "  \($0)" }
        }
        return lines.joined(separator: "\n")
    }
}

enum RowText {
    static let columns: [String: (narrow: [String], wide: [String])] = [
        "endpoints": (["namespace", "name", "interface", "addresses", "ingress", "egress"],
                      ["namespace", "name", "kind", "interface", "addresses", "ingress", "egress", "labels"]),
        "policies": (["namespace", "name", "kind", "order", "policyTypes", "selectedEndpoints"],
                     ["namespace", "name", "kind", "order", "podSelector", "policyTypes", "ingressRules", "egressRules", "selectedEndpoints"]),
        "namespaces": (["name", "defaultPolicy", "endpoints"], ["name", "defaultPolicy", "endpoints", "labels"]),
        "quarantines": (["namespace", "name", "active", "requestedBy", "requestedAt", "reason"],
                        ["namespace", "name", "active", "requestedBy", "requestedAt", "reason", "podUID", "futurePods", "source"]),
    ]

    static func canonicalKind(_ kind: String) -> String {
        switch kind {
        case "endpoint", "ep": return "endpoints"
        case "policy", "networkpolicies", "netpol": return "policies"
        case "namespace", "ns": return "namespaces"
        case "quarantine", "q": return "quarantines"
        default: return kind
        }
    }

    static func table(_ rows: [[String: String]], kind: String, wide: Bool) -> String {
        let spec = columns[canonicalKind(kind)]
        let keys = (wide ? spec?.wide : spec?.narrow) ?? (rows.first.map { $0.keys.sorted() } ?? [])
        let headers = keys.map { $0.uppercased() }
        var widths = headers.map(\.count)
        for row in rows {
            for (index, key) in keys.enumerated() { widths[index] = max(widths[index], (row[key] ?? "").count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }
        var out = line(headers) + "\n"
        for row in rows { out += line(keys.map { row[$0] ?? "" }) + "\n" }
        return out
    }

    static func yaml(_ rows: [[String: String]]) -> String {
        if rows.isEmpty { return "[]\n" }
        var out = ""
        for row in rows {
            for (index, key) in row.keys.sorted().enumerated() {
                out += (index == 0 ? "- " : "  ") + "\(key): \(quote(row[key] ?? ""))\n"
            }
        }
        return out
    }

    static func quote(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
