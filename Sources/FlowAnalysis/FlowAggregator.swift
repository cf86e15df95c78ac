// Events in, one record per flow and interval out, in bounded memory.
//
// Intervals are tumbling and aligned to the epoch: `[k·interval, (k+1)·interval)`. An event
// belongs to the interval its own time falls in, so one exactly on a boundary opens the next.
// One interval is open at a time: an event past its end closes it; `advance(to:)` closes it when
// the caller's clock passes its end (so a quiet interval is still written on time). An event
// older than the open interval (readers deliver a little out of order) is counted in the open
// interval and in `statistics.lateEvents`: closed intervals never reopen.

import NetworkAddress

/// Aggregates packet-log and conntrack events into flow records per interval.
public struct FlowAggregator {
    public struct Configuration: Sendable {
        /// Length of an aggregation interval (default 15 s).
        public var interval: Duration
        /// Most flows (key and action) one interval holds. An event for a further flow is not
        /// aggregated and is counted in the interval's `droppedEvents` (default 10,000; a record
        /// costs a few hundred bytes).
        public var maximumFlowsPerInterval: Int
        /// Closed intervals kept until `advance(to:)` collects them; beyond that the oldest is
        /// dropped and its records counted in `statistics.droppedRecords` (default 4).
        public var maximumPendingIntervals: Int
        /// Ignore conntrack events where neither address is a known workload: the node's own
        /// connections (default true). Logged packets always come from workload chains and are kept.
        public var ignoreConnectionsWithoutWorkload: Bool

        public init(interval: Duration = .seconds(15), maximumFlowsPerInterval: Int = 10_000,
                    maximumPendingIntervals: Int = 4, ignoreConnectionsWithoutWorkload: Bool = true) {
            self.interval = interval; self.maximumFlowsPerInterval = maximumFlowsPerInterval
            self.maximumPendingIntervals = maximumPendingIntervals
            self.ignoreConnectionsWithoutWorkload = ignoreConnectionsWithoutWorkload
        }
    }

    /// Running totals since the aggregator was made, for metrics.
    public struct Statistics: Hashable, Sendable {
        /// Events aggregated into a record.
        public var aggregatedEvents: UInt64 = 0
        /// Events not aggregated because their interval was full.
        public var droppedEvents: UInt64 = 0
        /// Records lost because closed intervals were not collected in time.
        public var droppedRecords: UInt64 = 0
        /// Events older than the open interval (aggregated into it).
        public var lateEvents: UInt64 = 0
        /// Logged packets whose prefix is not Palisade's (see `lastPrefixError`).
        public var unrecognisedPrefixes: UInt64 = 0
        /// Events that say nothing about a flow's verdict (Calico `Log` rules) or concern no workload.
        public var ignoredEvents: UInt64 = 0
    }

    private struct Slot: Hashable {
        var key: FlowKey
        var action: FlowAction
    }

    public let configuration: Configuration
    /// Resolves policy hashes in log prefixes to ids; replace it when the policies change.
    public var policies: PolicyDirectory
    public private(set) var statistics = Statistics()
    /// Why the most recent unrecognised prefix was refused, for a (rate-limited) log message.
    public private(set) var lastPrefixError: LogPrefixError?

    private var openStart: Timestamp?
    /// The end of the last closed interval: no later interval starts before it.
    private var closedUntil = Timestamp(nanoseconds: 0)
    private var records: [FlowRecord] = []
    private var slots: [Slot: Int] = [:]
    private var openDropped: UInt64 = 0
    private var pending: [FlowInterval] = []

    public init(configuration: Configuration = Configuration(), policies: PolicyDirectory = PolicyDirectory()) {
        self.configuration = configuration
        self.policies = policies
    }

    /// Flows in the open interval (never more than `maximumFlowsPerInterval`).
    public var openFlowCount: Int { records.count }

    /// Ingests one event. Returns what detectors should see, or nil for an event that says nothing
    /// about a flow (a foreign prefix, a Calico `Log` rule, a connection of no workload). The
    /// observation is returned even when the interval is full and the event was not aggregated.
    public mutating func ingest(_ event: FlowEvent, resolver: some EndpointResolver) -> FlowObservation? {
        switch event {
        case .packet(let packet): return ingest(packet, resolver: resolver)
        case .conntrack(let connection): return ingest(connection, resolver: resolver)
        }
    }

    public mutating func ingest(_ event: PacketLogEvent, resolver: some EndpointResolver) -> FlowObservation? {
        let prefix: LogPrefix
        do {
            prefix = try LogPrefix(parsing: event.prefix)
        } catch let error as LogPrefixError {
            statistics.unrecognisedPrefixes += 1
            lastPrefixError = error
            return nil
        } catch {
            statistics.unrecognisedPrefixes += 1
            return nil
        }
        guard let action = prefix.action else {
            statistics.ignoredEvents += 1
            return nil
        }
        let key = FlowKey(source: peer(event.source, resolver), destination: peer(event.destination, resolver),
                          proto: event.proto, destinationPort: event.proto.hasPorts ? event.destinationPort : nil)
        let decision = PolicyDecision(reporter: prefix.reporter, decider: decider(of: prefix))
        // An allowed packet is logged to name the policy; conntrack counts its connection and bytes.
        let attempts: UInt64 = action == .deny ? 1 : 0
        update(Slot(key: key, action: action), at: event.time) { record in
            record.note(decision)
            if action == .deny {
                record.forward = record.forward + PacketCounters(packets: 1, bytes: UInt64(event.length))
            }
        }
        return FlowObservation(time: event.time, key: key, action: action, attempts: attempts, decision: decision)
    }

    public mutating func ingest(_ event: ConnectionEvent, resolver: some EndpointResolver) -> FlowObservation? {
        let client = resolver.workload(for: event.client)
        let server = resolver.workload(for: event.server)
        if configuration.ignoreConnectionsWithoutWorkload && client == nil && server == nil {
            statistics.ignoredEvents += 1
            return nil
        }
        let proto = event.original.proto
        let key = FlowKey(source: client.map(FlowPeer.workload) ?? .network(event.client),
                          destination: server.map(FlowPeer.workload) ?? .network(event.server),
                          proto: proto, destinationPort: proto.hasPorts ? event.serverPort : nil)
        update(Slot(key: key, action: .allow), at: event.time) { record in
            switch event.kind {
            case .new:
                record.connectionsStarted += 1
            case .destroy:
                record.connectionsCompleted += 1
                record.forward = record.forward + (event.originalCounters ?? .zero)
                record.reverse = record.reverse + (event.replyCounters ?? .zero)
            }
        }
        return FlowObservation(time: event.time, key: key, action: .allow, attempts: event.kind == .new ? 1 : 0)
    }

    /// Closes the open interval if `now` is at or past its end, and returns every interval closed
    /// since the last call, oldest first. Call it on a timer (every second or so).
    public mutating func advance(to now: Timestamp) -> [FlowInterval] {
        if let start = openStart, now >= start + configuration.interval { closeOpenInterval() }
        defer { pending = [] }
        return pending
    }

    /// Closes the open interval whatever the time (at shutdown) and returns everything pending.
    public mutating func flush() -> [FlowInterval] {
        closeOpenInterval()
        defer { pending = [] }
        return pending
    }

    private func peer(_ address: IPAddress, _ resolver: some EndpointResolver) -> FlowPeer {
        resolver.workload(for: address).map(FlowPeer.workload) ?? .network(address)
    }

    private func decider(of prefix: LogPrefix) -> Decider {
        switch prefix {
        case .policyRule(_, _, let policy, let rule): return .policy(id: policies.resolve(policy), rule: Int(rule))
        case .defaultPolicy: return .defaultPolicy
        case .quarantine: return .quarantine
        }
    }

    private mutating func update(_ slot: Slot, at time: Timestamp, _ change: (inout FlowRecord) -> Void) {
        let interval = configuration.interval
        if let start = openStart, time >= start + interval { closeOpenInterval() }
        let start: Timestamp
        if let open = openStart {
            start = open
        } else {
            start = max(time.alignedDown(to: interval), closedUntil)
            openStart = start
        }
        if time < start { statistics.lateEvents += 1 }
        if let index = slots[slot] {
            change(&records[index])
        } else if records.count < configuration.maximumFlowsPerInterval {
            var record = FlowRecord(start: start, end: start + interval, key: slot.key, action: slot.action)
            change(&record)
            slots[slot] = records.count
            records.append(record)
        } else {
            openDropped += 1
            statistics.droppedEvents += 1
            return
        }
        statistics.aggregatedEvents += 1
    }

    private mutating func closeOpenInterval() {
        guard let start = openStart else { return }
        if !records.isEmpty || openDropped > 0 {
            pending.append(FlowInterval(start: start, end: start + configuration.interval,
                                        records: records, droppedEvents: openDropped))
        }
        while pending.count > max(1, configuration.maximumPendingIntervals) {
            statistics.droppedRecords += UInt64(pending.removeFirst().records.count)
        }
        openStart = nil
        closedUntil = start + configuration.interval
        records = []
        slots = [:]
        openDropped = 0
    }
}
