// First contact: a workload talking to a peer it never talked to while it was being learned.

/// Learns, per source workload, the destinations it makes attempts to during `learningPeriod`
/// (`[first observation, first observation + learningPeriod)`; an observation exactly at the end
/// is judged, not learned). After that, an attempt to a destination outside the learned set
/// alerts once and the destination joins the set. Destinations are identities (`namespace/name`
/// or address), with protocol and port when `includePort` is on. Sources that are not workloads
/// are ignored. Behavioural and noisy for workloads with changing peers: off by default in
/// `DetectorConfiguration`.
public struct FirstContactDetector: FlowDetector {
    public struct Parameters: Sendable {
        /// How long a new source's destinations are learned before any is judged (default 1 h).
        public var learningPeriod: Duration
        /// Count a new port on a known peer as a first contact too (default false).
        public var includePort: Bool
        /// Destinations remembered per source (default 256). A source that has as many has no
        /// meaningful peer set: further new destinations are counted in `unlearnedDestinations`
        /// and neither learned nor alerted on.
        public var maximumPeersPerSource: Int
        /// Severity of the alert (default low).
        public var severity: Severity
        /// A source idle this long is forgotten and learns again when it returns (default 24 h).
        public var forgetAfter: Duration
        /// Sources tracked at once (default 4,096).
        public var maximumSources: Int

        public init(learningPeriod: Duration = .seconds(3600), includePort: Bool = false,
                    maximumPeersPerSource: Int = 256, severity: Severity = .low,
                    forgetAfter: Duration = .seconds(86_400), maximumSources: Int = 4096) {
            self.learningPeriod = learningPeriod; self.includePort = includePort
            self.maximumPeersPerSource = maximumPeersPerSource; self.severity = severity
            self.forgetAfter = forgetAfter; self.maximumSources = maximumSources
        }
    }

    struct Peer: Hashable {
        var identity: String
        var proto: IPProtocol?
        var port: UInt16?
    }

    private struct Source {
        var firstSeen: Timestamp
        var lastActivity: Timestamp
        var peers: Set<Peer> = []
    }

    public let parameters: Parameters
    private var sources: [String: Source] = [:]
    public private(set) var untrackedObservations: UInt64 = 0
    public private(set) var unlearnedDestinations: UInt64 = 0

    public init(parameters: Parameters = Parameters()) { self.parameters = parameters }

    public var kind: DetectorKind { .firstContact }
    public var trackedSources: Int { sources.count }

    public mutating func observe(_ observation: FlowObservation) -> [Alert] {
        guard observation.attempts > 0, observation.key.source.workload != nil else { return [] }
        let identity = observation.key.source.identity
        let time = observation.time
        if sources[identity] == nil {
            guard sources.count < parameters.maximumSources else {
                untrackedObservations += 1
                return []
            }
            sources[identity] = Source(firstSeen: time, lastActivity: time)
        }
        guard var state = sources[identity] else { return [] }
        sources[identity] = nil
        defer { sources[identity] = state }
        state.lastActivity = max(state.lastActivity, time)
        let key = observation.key
        let peer = Peer(identity: key.destination.identity, proto: parameters.includePort ? key.proto : nil,
                        port: parameters.includePort ? key.destinationPort : nil)
        if state.peers.contains(peer) { return [] }
        guard state.peers.count < max(0, parameters.maximumPeersPerSource) else {
            unlearnedDestinations += 1
            return []
        }
        state.peers.insert(peer)
        let learningEnds = state.firstSeen + parameters.learningPeriod
        guard time >= learningEnds else { return [] }
        let what = parameters.includePort
            ? "\(key.destination.identity) \(key.proto)" + (key.destinationPort.map { "/\($0)" } ?? "")
            : key.destination.identity
        return [Alert(time: time, detector: .firstContact, severity: parameters.severity, endpoint: key.source,
                      summary: "first contact with \(what), outside the \(state.peers.count - 1) peers learned",
                      evidence: Evidence(counts: [.init("learnedPeers", Double(state.peers.count - 1)),
                                                  .init("learningSeconds", parameters.learningPeriod.flowSeconds)],
                                         flows: [observation.sample]))]
    }

    public mutating func advance(to now: Timestamp) -> [Alert] {
        let forget = parameters.forgetAfter
        sources = sources.filter { _, state in now < state.lastActivity + forget }
        return []
    }
}
