import AgentCore
import Foundation

/// The check `agentctl audit verify` makes, done again from the files alone: every line is a
/// record, `seq` counts up by one, and each `prev` is the SHA-256 hex of the previous line's bytes
/// (64 zeros for the very first), across the rotated files in order.
public struct AuditChainVerification: Hashable, Sendable {
    public struct Break: Hashable, Sendable {
        public var file: String
        /// 1-based line in `file`.
        public var line: Int
        public var seq: UInt64?
        public var message: String
        public var description: String { "\(file):\(line)\(seq.map { " (seq \($0))" } ?? ""): \(message)" }
    }

    public var files: Int
    public var records: Int
    public var lastSeq: UInt64
    /// Every break found; the first is where the chain stops being trustworthy.
    public var breaks: [Break]
    public var isIntact: Bool { breaks.isEmpty }

    public static let genesisHash = String(repeating: "0", count: 64)

    /// `files` oldest first, each with its bytes.
    public static func verify(_ files: [(name: String, data: Data)]) -> AuditChainVerification {
        var result = AuditChainVerification(files: files.count, records: 0, lastSeq: 0, breaks: [])
        var expectedSeq: UInt64? = 1
        var previousHash = genesisHash
        for file in files {
            for (index, line) in EventLog.lines(of: file.data).enumerated() {
                defer { previousHash = SHA256.hex(line.bytes) }
                func broken(_ seq: UInt64?, _ message: String) {
                    result.breaks.append(Break(file: file.name, line: index + 1, seq: seq, message: message))
                }
                if !line.terminated { broken(nil, "the last record is incomplete (no newline at the end)") }
                guard let link = try? JSONDecoder().decode(Link.self, from: line.bytes) else {
                    broken(nil, "not an event record")
                    expectedSeq = nil
                    continue
                }
                result.records += 1
                if let expected = expectedSeq, link.seq != expected {
                    broken(link.seq, "seq \(link.seq) where \(expected) was expected: a record is missing, added or out of order")
                } else if expectedSeq == nil, link.seq <= result.lastSeq {
                    broken(link.seq, "seq \(link.seq) does not follow seq \(result.lastSeq): a record is out of order")
                }
                if link.prev != previousHash {
                    broken(link.seq, "prev does not match the SHA-256 of the record before: it was changed, removed or reordered")
                }
                expectedSeq = link.seq + 1
                result.lastSeq = link.seq
            }
        }
        return result
    }

    private struct Link: Decodable {
        var seq: UInt64
        var prev: String
    }
}
