import Foundation

/// One request on the control socket: a JSON object on one line.
public struct ControlRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable {
        case status, sync, rules, get, explain, quarantine, release, flows, alerts

        /// The RBAC verb a command needs.
        public var verb: Verb {
            switch self {
            case .status, .rules, .get, .explain, .flows, .alerts: return .read
            case .sync: return .sync
            case .quarantine: return .quarantine
            case .release: return .release
            }
        }
    }
    public var command: Command
    /// For `get`: endpoints, policies or namespaces.
    public var kind: String?
    /// For `explain`: the two sides (`namespace/name` or an address), `--port` as typed
    /// (`5432/tcp`, `icmp/8`), the family (`ipv4`/`ipv6`, optional), and whether to show the trace.
    public var source: String?
    public var destination: String?
    public var port: String?
    public var family: String?
    public var established: Bool?
    public var verbose: Bool?
    /// For `quarantine` and `release`: `namespace/name`; for `quarantine` also the reason, and
    /// whether a later pod of that name is covered too.
    public var target: String?
    public var reason: String?
    public var futurePods: Bool?
    /// For `flows` and `alerts`: only denied flows, only those of one workload (`namespace/name`),
    /// at most this many of the newest lines, or those written after the cursor of an earlier answer.
    public var denied: Bool?
    public var endpoint: String?
    public var limit: Int?
    public var cursor: String?
    public init(command: Command, kind: String? = nil) { self.command = command; self.kind = kind }
}

/// What a peer may ask for, granted per Unix user or group in the roles file.
public enum Verb: String, Codable, Sendable, CaseIterable, Comparable {
    case read, sync, quarantine, release
    public static func < (a: Verb, b: Verb) -> Bool { a.rawValue < b.rawValue }
}

/// The process on the other end of the control socket, from SO_PEERCRED.
public struct Peer: Codable, Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    public var userName: String
    public init(uid: UInt32, gid: UInt32, pid: Int32, userName: String) {
        self.uid = uid; self.gid = gid; self.pid = pid; self.userName = userName
    }
    /// The agent itself, for what it does on its own (automatic quarantine, repairs).
    public static let agent = Peer(uid: 0, gid: 0, pid: 0, userName: "agentd")
}

/// The reply: a JSON object on one line; `ok` false with `error` when the request failed.
public struct ControlResponse: Codable, Sendable {
    public var ok: Bool
    public var error: String?
    public var status: StatusReport?
    /// `rules`: the table in nft syntax.
    public var text: String?
    /// `get`: one row per object.
    public var rows: [[String: String]]?
    /// `explain`: ALLOW or DENY (the explanation is in `text`).
    public var verdict: String?
    /// `flows`, `alerts`: JSON lines, oldest first, and where to go on from.
    public var lines: [String]?
    public var cursor: String?
    /// The exit status agentctl should end with when `ok` is false (1: the answer is no; 2: the
    /// agent could not do it). Absent: 2.
    public var exitCode: Int32?
    public init(ok: Bool, error: String? = nil, status: StatusReport? = nil, text: String? = nil, rows: [[String: String]]? = nil,
                verdict: String? = nil, exitCode: Int32? = nil) {
        self.ok = ok; self.error = error; self.status = status; self.text = text; self.rows = rows; self.verdict = verdict
        self.exitCode = exitCode
    }
}

public struct StatusReport: Codable, Sendable, Hashable {
    /// Whether the table the kernel holds equals what the state directory asks for.
    public var inSync: Bool
    /// Counts successful kernel updates since the agent started.
    public var generation: Int
    public var table: String
    public var stateDirectory: String
    public var lastApplied: String?
    public var endpoints: Int
    public var localEndpoints: Int
    public var skippedPods: Int
    public var policies: Int
    public var namespaces: Int
    public var files: Int
    /// How often the agent found its table changed by someone else and restored it.
    public var driftRepairs: Int
    public var rejectedFiles: [RejectedFile]
    public var warnings: [String]
    public var lastError: String?
}
