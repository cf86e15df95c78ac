import Foundation

/// One record of the event record (`<data-dir>/events.jsonl`): who did what to which object,
/// when, why, and whether it took effect. One JSON object per line, keys sorted:
///
///     {"actor":{"pid":4242,"uid":1001,"user":"alice"},"command":"quarantine","error":"permission denied: …",
///      "outcome":"refused","prev":"9f86d0…","reason":"beaconing","seq":17,"target":"shop/web-1",
///      "time":"2025-03-01T12:00:00.123Z","type":"refused"}
///
/// `seq` and `prev` chain the records (see `EventLog`); fields added later are optional, so an
/// older reader skips them and a newer reader accepts older records.
public struct Event: Codable, Hashable, Sendable {
    /// 1 for the first record of the file's chain, then one more per record, across restarts.
    public var seq: UInt64
    /// When the record was written, UTC, to the millisecond (RFC 3339 in the file).
    public var time: Date
    public var type: EventType
    public var actor: Actor
    /// What the event is about: a workload (`shop/web-1`), a file, a policy (`shop/deny-all`).
    public var target: String?
    /// Why, as the actor gave it (`--reason`).
    public var reason: String?
    public var outcome: Outcome
    /// For `refused` and `failed`: what went wrong, as the actor was told.
    public var error: String?
    /// For requests on the control socket: the command asked for (`status`, `sync`, `quarantine`…).
    public var command: String?
    /// The agent's generation (successful kernel updates since start) the change was applied in.
    public var generation: Int?
    /// Anything else worth keeping, flat: an object's kind, a file's owner, a summary of a diff.
    public var details: [String: String]?
    /// SHA-256 (hex) of the previous line's bytes, without its newline; 64 zeros for the first.
    public var prev: String

    /// An event to append: `EventLog.append` fills in `seq`, `time` and `prev`.
    public init(type: EventType, actor: Actor, target: String? = nil, reason: String? = nil,
                outcome: Outcome, error: String? = nil, command: String? = nil, generation: Int? = nil,
                details: [String: String]? = nil) {
        self.seq = 0
        self.time = Date(timeIntervalSince1970: 0)
        self.type = type
        self.actor = actor
        self.target = target
        self.reason = reason
        self.outcome = outcome
        self.error = error
        self.command = command
        self.generation = generation
        self.details = details
        self.prev = EventLog.genesisHash
    }
}

/// What happened. An open set: readers keep types they do not know.
public struct EventType: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public init(from decoder: Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
    public var description: String { rawValue }

    public static let quarantine = EventType("quarantine")
    public static let release = EventType("release")
    /// A control request the roles file does not allow.
    public static let refused = EventType("refused")
    public static let policyCreated = EventType("policy.created")
    public static let policyUpdated = EventType("policy.updated")
    public static let policyDeleted = EventType("policy.deleted")
    public static let fileRejected = EventType("file.rejected")
    public static let driftRepaired = EventType("drift.repaired")
    public static let agentStart = EventType("agent.start")
    public static let agentStop = EventType("agent.stop")
    public static let configReloaded = EventType("config.reloaded")
}

/// Whether the event took effect.
public enum Outcome: String, Codable, Hashable, Sendable {
    /// In force (for a kernel change: the batch was accepted).
    case applied
    /// Not allowed: nothing was attempted.
    case refused
    /// Attempted and did not take effect; `error` says why.
    case failed
}

/// Who caused the event: a peer on the control socket, a file's owner, or the agent itself.
public struct Actor: Codable, Hashable, Sendable {
    public var uid: UInt32
    public var user: String
    /// The process that asked; 0 when there was none (a file change, the agent itself).
    public var pid: Int32

    public init(uid: UInt32, user: String, pid: Int32) {
        self.uid = uid; self.user = user; self.pid = pid
    }

    public init(_ peer: Peer) {
        self.init(uid: peer.uid, user: peer.userName, pid: peer.pid)
    }

    /// The agent acting on its own.
    public static let agent = Actor(Peer.agent)
}
