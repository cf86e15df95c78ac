import AgentCore
import Foundation

/// What the agent wrote in its data directory, read once: the event record (all files, oldest
/// first), the flow logs, the inventory, and the digest of every file read, so a report says
/// exactly which evidence it was computed from.
public struct Evidence: Sendable {
    public struct InputFile: Hashable, Sendable {
        public var name: String
        public var size: Int
        public var sha256: String
    }

    public var events: [AuditRecord]
    public var chain: AuditChainVerification
    public var flows: [FlowLogRecord]
    public var inventory: Inventory?
    /// Why there is no inventory, when there is none.
    public var inventoryProblem: String?
    /// Lines of the event record and flow logs that could not be read as records.
    public var unreadableLines: [String]
    public var inputs: [InputFile]

    public static func load(dataDirectory: String) throws -> Evidence {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: dataDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ComplianceError("\(dataDirectory): no such directory; pass the agent's data directory with --data-dir")
        }
        let names = ((try? manager.contentsOfDirectory(atPath: dataDirectory)) ?? []).sorted()
        var inputs: [InputFile] = []
        var unreadable: [String] = []
        func read(_ name: String) -> Data? {
            guard let data = manager.contents(atPath: (dataDirectory as NSString).appendingPathComponent(name)) else { return nil }
            inputs.append(InputFile(name: name, size: data.count, sha256: SHA256.hex(data)))
            return data
        }

        // events-<last seq, 12 digits>.jsonl sort by name in the order they were written.
        let eventFiles = names.filter { $0.hasPrefix("events-") && $0.hasSuffix(".jsonl") } + (names.contains("events.jsonl") ? ["events.jsonl"] : [])
        var chainInput: [(name: String, data: Data)] = []
        var events: [AuditRecord] = []
        for name in eventFiles {
            guard let data = read(name) else { unreadable.append("\(name): cannot read"); continue }
            chainInput.append((name, data))
            for (index, line) in EventLog.lines(of: data).enumerated() {
                if let event = try? EvidenceDecoding.decoder.decode(AuditRecord.self, from: line.bytes) {
                    events.append(event)
                } else {
                    unreadable.append("\(name):\(index + 1): not an event record")
                }
            }
        }

        // flows.jsonl.N is the oldest, flows.jsonl.1 the newest rotated one.
        let rotatedFlows = names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("flows.jsonl."), let number = Int(name.dropFirst("flows.jsonl.".count)) else { return nil }
            return (number, name)
        }.sorted { $0.0 > $1.0 }.map(\.1)
        var flows: [FlowLogRecord] = []
        for name in rotatedFlows + (names.contains("flows.jsonl") ? ["flows.jsonl"] : []) {
            guard let data = read(name) else { unreadable.append("\(name): cannot read"); continue }
            for (index, line) in EventLog.lines(of: data).enumerated() where !line.bytes.isEmpty {
                if let flow = try? EvidenceDecoding.decoder.decode(FlowLogRecord.self, from: line.bytes) {
                    flows.append(flow)
                } else {
                    unreadable.append("\(name):\(index + 1): not a flow record")
                }
            }
        }

        var inventory: Inventory?
        var problem: String?
        if names.contains("inventory.json"), let data = read("inventory.json") {
            do {
                inventory = try EvidenceDecoding.decoder.decode(Inventory.self, from: data)
            } catch {
                problem = "inventory.json: not an inventory: \(error)"
            }
        } else {
            problem = "inventory.json: not found in \(dataDirectory)"
        }
        return Evidence(events: events, chain: AuditChainVerification.verify(chainInput), flows: flows, inventory: inventory,
                        inventoryProblem: problem, unreadableLines: unreadable, inputs: inputs)
    }
}

public struct ComplianceError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
