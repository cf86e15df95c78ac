// Port scan: one source trying many distinct destination ports in a short time.

/// Alerts when one source makes connection attempts (allowed or denied) to at least `threshold`
/// distinct destination ports (protocol and port; on any destinations) within a sliding window.
/// Window boundary: see `DistinctInWindow` — a port last tried exactly `window` before the latest
/// observation no longer counts. Observations without a port (ICMP) or without attempts are ignored.
public struct PortScanDetector: FlowDetector {
    public struct Parameters: Sendable {
        /// Length of the sliding window (default 10 s).
        public var window: Duration
        /// Distinct ports in the window that make an alert (default 25). A scan slower than
        /// `threshold` ports per `window` is not reported: that is the price of not alerting on
        /// busy clients.
        public var threshold: Int
        /// Severity of the alert (default high).
        public var severity: Severity
        /// Quiet time for a source after an alert (default 60 s).
        public var cooldown: Duration
        /// Sources tracked at once (default 4,096); each holds fewer than `threshold` ports.
        public var maximumSources: Int
        /// Flows kept as evidence (default 10).
        public var sampleLimit: Int

        public init(window: Duration = .seconds(10), threshold: Int = 25, severity: Severity = .high,
                    cooldown: Duration = .seconds(60), maximumSources: Int = 4096, sampleLimit: Int = 10) {
            self.window = window; self.threshold = threshold; self.severity = severity; self.cooldown = cooldown
            self.maximumSources = maximumSources; self.sampleLimit = sampleLimit
        }
    }

    struct Port: Hashable {
        var proto: IPProtocol
        var port: UInt16
    }

    public let parameters: Parameters
    private var engine: DistinctInWindow<Port>

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
        engine = DistinctInWindow(window: parameters.window, threshold: parameters.threshold,
                                  maximumSources: parameters.maximumSources, cooldown: parameters.cooldown,
                                  sampleLimit: parameters.sampleLimit)
    }

    public var kind: DetectorKind { .portScan }
    public var trackedSources: Int { engine.trackedSources }
    public var untrackedObservations: UInt64 { engine.untrackedObservations }

    public mutating func observe(_ observation: FlowObservation) -> [Alert] {
        guard observation.attempts > 0, let port = observation.key.destinationPort else { return [] }
        guard let hit = engine.observe(source: observation.key.source,
                                       value: Port(proto: observation.key.proto, port: port),
                                       time: observation.time, sample: observation.sample) else { return [] }
        let seconds = parameters.window.flowSeconds
        return [Alert(time: observation.time, detector: .portScan, severity: parameters.severity,
                      endpoint: observation.key.source,
                      summary: "\(hit.count) distinct destination ports in \(formatted(seconds)) s (threshold \(parameters.threshold))",
                      evidence: Evidence(counts: [.init("distinctPorts", Double(hit.count)),
                                                  .init("threshold", Double(parameters.threshold)),
                                                  .init("windowSeconds", seconds)],
                                         flows: hit.samples))]
    }

    public mutating func advance(to now: Timestamp) -> [Alert] {
        engine.advance(to: now)
        return []
    }
}
