// What detectors see: one event's worth of flow, resolved to peers, at its own time. The aggregator
// hands one back for every event it ingests, so detection does not wait for an interval to close.

/// One event's contribution to a flow, as detectors consume it.
public struct FlowObservation: Hashable, Sendable {
    public var time: Timestamp
    public var key: FlowKey
    public var action: FlowAction
    /// Connection attempts this stands for: 1 for a connection conntrack confirmed (allowed) or a
    /// denied packet logged; 0 for a connection's end or an allowed packet logged only to name the
    /// policy (conntrack already counts that connection). Detectors ignore observations with none.
    public var attempts: UInt64
    public var decision: PolicyDecision?

    public init(time: Timestamp, key: FlowKey, action: FlowAction, attempts: UInt64, decision: PolicyDecision? = nil) {
        self.time = time; self.key = key; self.action = action; self.attempts = attempts; self.decision = decision
    }

    /// A whole record as one observation at the record's start: its connections started, or for a
    /// denied flow its denied packets, are the attempts. Rate detectors fed this way see each
    /// interval's attempts at its start; feed per-event observations where that is too coarse.
    public init(record: FlowRecord) {
        let attempts = record.action == .allow ? record.connectionsStarted : record.forward.packets
        self.init(time: record.start, key: record.key, action: record.action, attempts: attempts,
                  decision: record.decisions.first)
    }

    /// A small summary for an alert's evidence.
    var sample: FlowSample {
        FlowSample(time: time, destination: key.destination, proto: key.proto,
                   destinationPort: key.destinationPort, action: action)
    }
}

/// One flow behind an alert.
public struct FlowSample: Hashable, Sendable {
    public var time: Timestamp
    public var destination: FlowPeer
    public var proto: IPProtocol
    public var destinationPort: UInt16?
    public var action: FlowAction

    public init(time: Timestamp, destination: FlowPeer, proto: IPProtocol, destinationPort: UInt16?, action: FlowAction) {
        self.time = time; self.destination = destination; self.proto = proto
        self.destinationPort = destinationPort; self.action = action
    }

    public var json: JSONValue {
        .object([("time", .string(time.rfc3339)), ("destination", destination.json),
                 ("proto", .string(proto.description)),
                 ("dport", destinationPort.map { .uint(UInt64($0)) } ?? .null),
                 ("action", .string(action.rawValue))])
    }
}
