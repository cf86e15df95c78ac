// Denied-flow surge: a source whose connection attempts policy keeps refusing.

/// Alerts when a source's denied attempts (logged denied packets: a refused TCP connection that
/// retries its SYN counts each try) in one tumbling window `[k·window, (k+1)·window)` exceed
/// `threshold`, and, when `useBaseline` is on and the source is warm, also exceed its own
/// baseline `mean + deviations·deviation` of denied attempts per window. The threshold applies from
/// a source's first window: a burst of denials is suspicious at any age. See `RateEngine` for
/// the baseline; the alert comes at the observation that crosses the limit.
public struct DeniedSurgeDetector: FlowDetector {
    public struct Parameters: Sendable {
        /// Length of the tumbling window (default 10 s).
        public var window: Duration
        /// Denied attempts in one window a source must exceed (default 20).
        public var threshold: Int
        /// Also require the count to exceed the source's learned baseline (default true), so a
        /// workload that is always refused a little (a misconfigured health check) alerts only
        /// when that gets much worse.
        public var useBaseline: Bool
        /// α (default 0.125), β (default 0.25), k (default 4), as for the flood detector.
        public var meanGain: Double
        public var deviationGain: Double
        public var deviations: Double
        /// Windows before the baseline applies (default 6: one minute). The threshold applies throughout.
        public var warmUpWindows: Int
        /// Severity of the alert (default medium).
        public var severity: Severity
        /// Quiet time for a source after an alert (default 60 s).
        public var cooldown: Duration
        /// A source idle this long is forgotten (default 1 h).
        public var forgetAfter: Duration
        /// Sources tracked at once (default 4,096).
        public var maximumSources: Int
        /// Flows kept as evidence (default 10).
        public var sampleLimit: Int

        public init(window: Duration = .seconds(10), threshold: Int = 20, useBaseline: Bool = true,
                    meanGain: Double = 0.125, deviationGain: Double = 0.25, deviations: Double = 4,
                    warmUpWindows: Int = 6, severity: Severity = .medium, cooldown: Duration = .seconds(60),
                    forgetAfter: Duration = .seconds(3600), maximumSources: Int = 4096, sampleLimit: Int = 10) {
            self.window = window; self.threshold = threshold; self.useBaseline = useBaseline
            self.meanGain = meanGain; self.deviationGain = deviationGain; self.deviations = deviations
            self.warmUpWindows = warmUpWindows; self.severity = severity; self.cooldown = cooldown
            self.forgetAfter = forgetAfter; self.maximumSources = maximumSources; self.sampleLimit = sampleLimit
        }
    }

    public let parameters: Parameters
    private var engine: RateEngine

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
        engine = RateEngine(settings: .init(
            bucket: parameters.window.flowNanoseconds, meanGain: parameters.meanGain,
            deviationGain: parameters.deviationGain, deviations: parameters.deviations,
            floorPerBucket: Double(parameters.threshold), useBaseline: parameters.useBaseline,
            warmUpBuckets: UInt64(max(0, parameters.warmUpWindows)), alertDuringWarmUp: true,
            cooldown: parameters.cooldown, forgetAfter: parameters.forgetAfter,
            maximumSources: parameters.maximumSources, sampleLimit: parameters.sampleLimit))
    }

    public var kind: DetectorKind { .deniedSurge }
    public var trackedSources: Int { engine.trackedSources }
    public var untrackedObservations: UInt64 { engine.untrackedObservations }
    /// What the detector has learned about a source, in denied attempts per window.
    public func baseline(of source: FlowPeer) -> Baseline? { engine.baseline(of: source) }

    public mutating func observe(_ observation: FlowObservation) -> [Alert] {
        guard observation.action == .deny, observation.attempts > 0,
              let crossing = engine.observe(source: observation.key.source, attempts: observation.attempts,
                                            time: observation.time, sample: observation.sample) else { return [] }
        let seconds = parameters.window.flowSeconds
        var counts: [Evidence.Count] = [.init("denied", Double(crossing.count)),
                                        .init("windowSeconds", seconds),
                                        .init("threshold", Double(parameters.threshold)),
                                        .init("limit", crossing.limit)]
        var summary = "\(crossing.count) denied attempts in a \(formatted(seconds)) s window (threshold \(parameters.threshold)"
        if parameters.useBaseline && crossing.warm {
            counts += [.init("baselineMean", crossing.baseline.mean), .init("baselineDeviation", crossing.baseline.deviation)]
            summary += ", baseline \(formatted(crossing.baseline.mean)) + \(formatted(parameters.deviations))×\(formatted(crossing.baseline.deviation))"
        }
        return [Alert(time: observation.time, detector: .deniedSurge, severity: parameters.severity,
                      endpoint: observation.key.source, summary: summary + ")",
                      evidence: Evidence(counts: counts, flows: crossing.samples))]
    }

    public mutating func advance(to now: Timestamp) -> [Alert] {
        engine.advance(to: now)
        return []
    }
}
