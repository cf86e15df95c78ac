// A flow record: what one flow did during one aggregation interval, as the flow log writes it.

/// The aggregate of one flow (key and action) over one interval.
public struct FlowRecord: Hashable, Sendable {
    /// The interval's bounds, `[start, end)`.
    public var start: Timestamp
    public var end: Timestamp
    public var key: FlowKey
    public var action: FlowAction
    /// What decided, at most one per reporter (the first seen in the interval), source first.
    /// Empty for allowed flows when allowed connections are not logged (conntrack alone does not
    /// know the policy).
    public var decisions: [PolicyDecision]
    /// Source to destination: conntrack's original-direction counters of connections that ended in
    /// the interval, or the denied packets logged.
    public var forward: PacketCounters
    /// Destination to source: conntrack's reply-direction counters of connections that ended.
    public var reverse: PacketCounters
    /// Connections conntrack confirmed in the interval.
    public var connectionsStarted: UInt64
    /// Connections that ended in the interval (their counters are in `forward` and `reverse`, all
    /// of them, also when the connection began in an earlier interval).
    public var connectionsCompleted: UInt64

    public init(start: Timestamp, end: Timestamp, key: FlowKey, action: FlowAction, decisions: [PolicyDecision] = [],
                forward: PacketCounters = .zero, reverse: PacketCounters = .zero,
                connectionsStarted: UInt64 = 0, connectionsCompleted: UInt64 = 0) {
        self.start = start; self.end = end; self.key = key; self.action = action; self.decisions = decisions
        self.forward = forward; self.reverse = reverse
        self.connectionsStarted = connectionsStarted; self.connectionsCompleted = connectionsCompleted
    }

    /// Adds a decision unless one from the same reporter is already there; keeps source first.
    mutating func note(_ decision: PolicyDecision) {
        guard !decisions.contains(where: { $0.reporter == decision.reporter }) else { return }
        decisions.append(decision)
        decisions.sort { $0.reporter < $1.reporter }
    }

    /// Keys in this order: `start`, `end`, `source`, `destination`, `proto`, `dport` (null without
    /// ports), `action`, `policies`, `forward`, `reverse` (each `{"packets","bytes"}`),
    /// `connectionsStarted`, `connectionsCompleted`.
    public var json: JSONValue {
        func counters(_ c: PacketCounters) -> JSONValue {
            .object([("packets", .uint(c.packets)), ("bytes", .uint(c.bytes))])
        }
        return .object([
            ("start", .string(start.rfc3339)),
            ("end", .string(end.rfc3339)),
            ("source", key.source.json),
            ("destination", key.destination.json),
            ("proto", .string(key.proto.description)),
            ("dport", key.destinationPort.map { .uint(UInt64($0)) } ?? .null),
            ("action", .string(action.rawValue)),
            ("policies", .array(decisions.map(\.json))),
            ("forward", counters(forward)),
            ("reverse", counters(reverse)),
            ("connectionsStarted", .uint(connectionsStarted)),
            ("connectionsCompleted", .uint(connectionsCompleted)),
        ])
    }

    /// One line of the flow log, without the newline.
    public var jsonLine: String { json.rendered }
}

/// The records of one closed interval.
public struct FlowInterval: Hashable, Sendable {
    public var start: Timestamp
    public var end: Timestamp
    /// In the order their flows were first seen in the interval.
    public var records: [FlowRecord]
    /// Events not aggregated because the interval already held the maximum number of flows
    /// (their observations still went to the caller, and so to the detectors).
    public var droppedEvents: UInt64

    public init(start: Timestamp, end: Timestamp, records: [FlowRecord], droppedEvents: UInt64 = 0) {
        self.start = start; self.end = end; self.records = records; self.droppedEvents = droppedEvents
    }
}
