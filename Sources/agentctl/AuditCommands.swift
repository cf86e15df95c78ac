import AgentCore
import ArgumentParser
import Foundation

extension Agentctl {
    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The audit trail: every change of the desired state, quarantine, repair and reload, hash-chained.",
            subcommands: [Log.self, Verify.self])

        struct Location: ParsableArguments {
            @Option(name: .long, help: "The agent's data directory (where events.jsonl is).")
            var dataDir = AgentConfig().dataDirectory
            var path: String { (dataDir as NSString).appendingPathComponent("events.jsonl") }
        }

        struct Verify: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Check the chain of every record, rotated files included: exit 1 at the first broken record.")
            @OptionGroup var location: Location

            func run() throws {
                let (verification, file) = EventLog.verifyAll(path: location.path)
                if let issue = verification.issues.first, let file {
                    printError("\(file): \(issue)")
                    print("BROKEN: \(verification.issues.count) issue(s) in \(file); \(verification.records) records read")
                    throw Exit.notOK
                }
                print("intact: \(verification.records) records, last seq \(verification.last.seq), "
                      + "\(EventLog.files(of: location.path).filter { FileManager.default.fileExists(atPath: $0) }.count) file(s)")
            }
        }

        struct Log: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List audit records, oldest first.")
            @OptionGroup var location: Location
            @Option(name: .long, help: "Only records at or after this time (RFC 3339, or a date YYYY-MM-DD).") var since: String?
            @Option(name: .long, help: "Only records before this time (RFC 3339, or a date YYYY-MM-DD).") var until: String?
            @Option(name: .long, help: "Only records about objects of this kind (NetworkPolicy, Pod, ...) or of this type (quarantine, object.updated, ...).")
            var kind: String?
            @Option(name: .long, help: "Only records about this object (NAMESPACE/NAME or NAME).") var name: String?
            @Option(name: .shortAndLong, help: "Output format: table or json (one record per line).") var output: OutputFormat = .table

            func run() throws {
                let from = try since.map { try AuditTime.parse($0, option: "--since") }
                let to = try until.map { try AuditTime.parse($0, option: "--until") }
                for file in EventLog.files(of: location.path) where FileManager.default.fileExists(atPath: file) {
                    guard let data = FileManager.default.contents(atPath: file) else { continue }
                    for line in data.split(separator: UInt8(ascii: "\n")) {
                        guard let event = EventLog.decode(Data(line)) else { continue }
                        if let from, event.time < from { continue }
                        if let to, event.time >= to { continue }
                        if let kind, event.details?["kind"] != kind, event.type.rawValue != kind { continue }
                        if let name, event.target != name, event.details?["name"] != name { continue }
                        if output == .json {
                            print(String(decoding: line, as: UTF8.self))
                        } else {
                            print(AuditTime.row(event))
                        }
                    }
                }
            }
        }
    }
}

enum AuditTime {
    static func parse(_ text: String, option: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withFullDate]
        if let date = formatter.date(from: text) { return date }
        throw ValidationError("\(option) \"\(text)\" is not a time (2026-11-29 or 2026-11-29T12:00:00Z)")
    }

    static func row(_ event: Event) -> String {
        let formatter = ISO8601DateFormatter()
        let what = event.details?["kind"].map { "\($0) " } ?? ""
        var text = "\(event.seq)  \(formatter.string(from: event.time))  \(event.type.rawValue)  \(what)\(event.target ?? "")  "
            + "by \(event.actor.user) (uid \(event.actor.uid))  \(event.outcome.rawValue)"
        if let generation = event.generation { text += "  generation \(generation)" }
        if let reason = event.reason { text += "  reason: \(reason)" }
        if let error = event.error { text += "  error: \(error)" }
        if let diff = event.details?["diff"], !diff.isEmpty {
            text += "\n" + diff.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n")
        }
        return text
    }
}
