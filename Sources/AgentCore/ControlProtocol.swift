import Foundation

/// One request on the control socket: a JSON object on one line.
public struct ControlRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable { case status, sync, rules, get, explain }
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
    public init(command: Command, kind: String? = nil) { self.command = command; self.kind = kind }
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
    public init(ok: Bool, error: String? = nil, status: StatusReport? = nil, text: String? = nil, rows: [[String: String]]? = nil,
                verdict: String? = nil) {
        self.ok = ok; self.error = error; self.status = status; self.text = text; self.rows = rows; self.verdict = verdict
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
