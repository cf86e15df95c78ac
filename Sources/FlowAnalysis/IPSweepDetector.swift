// IP sweep: one source trying many distinct destinations in a short time.

/// Alerts when one source makes connection attempts (allowed or denied, any protocol and port)
/// to at least `threshold` distinct destinations within a sliding window. Destinations are
/// counted by identity: a workload by `namespace/name`, anything else by address. Window
/// boundary: see `DistinctInWindow` — a destination last tried exactly `window` before the
/// latest observation no longer counts.
public struct IPSweepDetector: FlowDetector {
    public struct Parameters: Sendable {
        /// Length of the sliding window (default 10 s).
        public var window: Duration
        /// Distinct destinations in the window that make an alert (default 32). A monitoring
        /// scraper that polls more targets than this per window alerts too: exempt it from
        /// automatic quarantine rather than raising this for everyone.
        public var threshold: Int
        /// Severity of the alert (default high).
        public var severity: Severity
        /// Quiet time for a source after an alert (default 60 s).
        public var cooldown: Duration
        /// Sources tracked at once (default 4,096); each holds fewer than `threshold` destinations.
        public var maximumSources: Int
        /// Flows kept as evidence (default 10).
        public var sampleLimit: Int

        public init(window: Duration = .seconds(10), threshold: Int = 32, severity: Severity = .high,
                    cooldown: Duration = .seconds(60), maximumSources: Int = 4096, sampleLimit: Int = 10) {
            self.window = window; self.threshold = threshold; self.severity = severity; self.cooldown = cooldown
            self.maximumSources = maximumSources; self.sampleLimit = sampleLimit
        }
    }

    public let parameters: Parameters
    private var engine: DistinctInWindow<String>

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
        engine = DistinctInWindow(window: parameters.window, threshold: parameters.threshold,
                                  maximumSources: parameters.maximumSources, cooldown: parameters.cooldown,
                                  sampleLimit: parameters.sampleLimit)
    }

    public var kind: DetectorKind { .ipSweep }
    public var trackedSources: Int { engine.trackedSources }
    public var untrackedObservations: UInt64 { engine.untrackedObservations }

    public mutating func observe(_ observation: FlowObservation) -> [Alert] {
        guard observation.attempts > 0 else { return [] }
        guard let hit = engine.observe(source: observation.key.source, value: observation.key.destination.identity,
                                       time: observation.time, sample: observation.sample) else { return [] }
        let seconds = parameters.window.flowSeconds
        return [Alert(time: observation.time, detector: .ipSweep, severity: parameters.severity,
                      endpoint: observation.key.source,
                      summary: "\(hit.count) distinct destinations in \(formatted(seconds)) s (threshold \(parameters.threshold))",
                      evidence: Evidence(counts: [.init("distinctDestinations", Double(hit.count)),
                                                  .init("threshold", Double(parameters.threshold)),
                                                  .init("windowSeconds", seconds)],
                                         flows: hit.samples))]
    }

    public mutating func advance(to now: Timestamp) -> [Alert] {
        engine.advance(to: now)
        return []
    }
}
