// Connection flood: a source opening connections far faster than it usually does.

/// Alerts when a source's connection attempts (allowed connections and denied attempts) in one
/// bucket exceed both `floor` per second and its own baseline, `mean + deviations·deviation`,
/// after a warm-up. Buckets, baseline and warm-up as `RateEngine` describes: tumbling buckets
/// `[k·bucket, (k+1)·bucket)`, the alert at the observation that crosses the limit.
///
/// With the defaults a source must exceed 50 connections per second over a 5 s bucket (more than
/// 250 in it) and six mean deviations above its usual rate, and is judged only after one minute.
/// A workload that floods from its first minute is learned as normal here; the port-scan and
/// sweep detectors do not learn and catch floods that spread over ports or hosts.
public struct ConnectionFloodDetector: FlowDetector {
    public struct Parameters: Sendable {
        /// Length of a bucket (default 5 s).
        public var bucket: Duration
        /// α, the weight of a new bucket in the mean (default 0.125).
        public var meanGain: Double
        /// β, the weight of a new bucket's distance from the mean in the deviation (default 0.25).
        public var deviationGain: Double
        /// k, how many deviations above the mean is anomalous (default 6).
        public var deviations: Double
        /// Rate in attempts per second a source must exceed whatever its baseline (default 50).
        public var floor: Double
        /// Buckets a new source only learns from (default 12: one minute).
        public var warmUpBuckets: Int
        /// Severity of the alert (default high).
        public var severity: Severity
        /// Quiet time for a source after an alert (default 60 s).
        public var cooldown: Duration
        /// A source idle this long is forgotten and warms up again when it returns (default 1 h).
        public var forgetAfter: Duration
        /// Sources tracked at once (default 4,096).
        public var maximumSources: Int
        /// Flows kept as evidence (default 10).
        public var sampleLimit: Int

        public init(bucket: Duration = .seconds(5), meanGain: Double = 0.125, deviationGain: Double = 0.25,
                    deviations: Double = 6, floor: Double = 50, warmUpBuckets: Int = 12, severity: Severity = .high,
                    cooldown: Duration = .seconds(60), forgetAfter: Duration = .seconds(3600),
                    maximumSources: Int = 4096, sampleLimit: Int = 10) {
            self.bucket = bucket; self.meanGain = meanGain; self.deviationGain = deviationGain
            self.deviations = deviations; self.floor = floor; self.warmUpBuckets = warmUpBuckets
            self.severity = severity; self.cooldown = cooldown; self.forgetAfter = forgetAfter
            self.maximumSources = maximumSources; self.sampleLimit = sampleLimit
        }
    }

    public let parameters: Parameters
    private var engine: RateEngine

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
        let seconds = parameters.bucket.flowSeconds
        engine = RateEngine(settings: .init(
            bucket: parameters.bucket.flowNanoseconds, meanGain: parameters.meanGain,
            deviationGain: parameters.deviationGain, deviations: parameters.deviations,
            floorPerBucket: parameters.floor * seconds, useBaseline: true,
            warmUpBuckets: UInt64(max(0, parameters.warmUpBuckets)), alertDuringWarmUp: false,
            cooldown: parameters.cooldown, forgetAfter: parameters.forgetAfter,
            maximumSources: parameters.maximumSources, sampleLimit: parameters.sampleLimit))
    }

    public var kind: DetectorKind { .connectionFlood }
    public var trackedSources: Int { engine.trackedSources }
    public var untrackedObservations: UInt64 { engine.untrackedObservations }
    /// What the detector has learned about a source, in attempts per bucket.
    public func baseline(of source: FlowPeer) -> Baseline? { engine.baseline(of: source) }

    public mutating func observe(_ observation: FlowObservation) -> [Alert] {
        guard observation.attempts > 0,
              let crossing = engine.observe(source: observation.key.source, attempts: observation.attempts,
                                            time: observation.time, sample: observation.sample) else { return [] }
        let seconds = parameters.bucket.flowSeconds
        let rate = Double(crossing.count) / seconds
        let mean = crossing.baseline.mean / seconds
        let deviation = crossing.baseline.deviation / seconds
        return [Alert(time: observation.time, detector: .connectionFlood, severity: parameters.severity,
                      endpoint: observation.key.source,
                      summary: "\(crossing.count) connection attempts in a \(formatted(seconds)) s bucket "
                          + "(\(formatted(rate))/s), above its baseline \(formatted(mean))/s "
                          + "+ \(formatted(parameters.deviations))×\(formatted(deviation))/s and the floor \(formatted(parameters.floor))/s",
                      evidence: Evidence(counts: [.init("attempts", Double(crossing.count)),
                                                  .init("bucketSeconds", seconds),
                                                  .init("rate", rate),
                                                  .init("limitRate", crossing.limit / seconds),
                                                  .init("baselineMeanRate", mean),
                                                  .init("baselineDeviationRate", deviation),
                                                  .init("floorRate", parameters.floor)],
                                         flows: crossing.samples))]
    }

    public mutating func advance(to now: Timestamp) -> [Alert] {
        engine.advance(to: now)
        return []
    }
}
