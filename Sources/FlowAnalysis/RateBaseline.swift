// The engine of the connection-flood and denied-surge detectors: per source, attempts per
// tumbling bucket, compared with a floor and with the source's own learned baseline.
//
// Buckets: tumbling, aligned to the epoch, `[k·B, (k+1)·B)`; an observation exactly at (k+1)·B
// belongs to bucket k+1. The baseline learns each closed bucket's count (empty buckets count as
// zero) the way TCP estimates round-trip time (RFC 6298): deviation ← deviation + β(|x − mean| −
// deviation), then mean ← mean + α(x − mean); the first bucket sets mean = x, deviation = x/2.
// A bucket is anomalous when its count exceeds the limit in force. Warm-up buckets are always
// learned; after warm-up anomalous buckets are not, so a flood does not teach the baseline that
// flooding is normal (and a flood that goes on alerts again after each cooldown).
// The limit: more than `floor` always; with the baseline on and warm, more than
// max(floor, mean + k·deviation) as well. The first `warmUpBuckets` buckets of a source (counted
// from the bucket of its first observation, empty ones included) only learn, and alert only if
// `alertDuringWarmUp`, against the floor alone. Since a bucket's count only grows, the detector
// alerts at the observation that crosses the limit, not when the bucket closes; the decision is
// the same.

/// An exponentially weighted mean and mean deviation.
public struct Baseline: Hashable, Sendable {
    public private(set) var mean: Double = 0
    public private(set) var deviation: Double = 0
    /// Samples learned so far.
    public private(set) var samples: Int = 0

    public init() {}

    mutating func learn(_ value: Double, meanGain: Double, deviationGain: Double) {
        if samples == 0 {
            mean = value
            deviation = value / 2
        } else {
            deviation += deviationGain * (abs(value - mean) - deviation)
            mean += meanGain * (value - mean)
        }
        samples += 1
    }

    /// Learns `count` empty buckets; past a few hundred the result is zero to many decimals.
    mutating func learnZeros(_ count: UInt64, meanGain: Double, deviationGain: Double) {
        if count > 512 {
            mean = 0
            deviation = 0
            samples += 512
            return
        }
        for _ in 0..<count { learn(0, meanGain: meanGain, deviationGain: deviationGain) }
    }
}

/// Per-source bucket counts against a floor and a learned baseline.
struct RateEngine {
    struct Settings {
        var bucket: UInt64
        var meanGain: Double
        var deviationGain: Double
        var deviations: Double
        var floorPerBucket: Double
        var useBaseline: Bool
        var warmUpBuckets: UInt64
        var alertDuringWarmUp: Bool
        var cooldown: Duration
        var forgetAfter: Duration
        var maximumSources: Int
        var sampleLimit: Int
    }

    /// What made a bucket cross its limit.
    struct Crossing {
        var count: UInt64
        var limit: Double
        var baseline: Baseline
        var warm: Bool
        var samples: [FlowSample]
    }

    private struct Source {
        var peer: FlowPeer
        var firstBucket: UInt64
        var bucket: UInt64
        var count: UInt64 = 0
        var anomalous = false
        var baseline = Baseline()
        var samples: [FlowSample] = []
        var lastActivity: Timestamp
        var quietUntil: Timestamp?
    }

    let settings: Settings
    private var sources: [String: Source] = [:]
    private(set) var untrackedObservations: UInt64 = 0
    /// Observations older than their source's current bucket (counted in the current one).
    private(set) var lateObservations: UInt64 = 0

    init(settings: Settings) {
        var settings = settings
        settings.bucket = max(1, settings.bucket)
        self.settings = settings
    }

    var trackedSources: Int { sources.count }

    func baseline(of source: FlowPeer) -> Baseline? { sources[source.identity]?.baseline }

    /// Adds `attempts` for `source` at `time`; returns the crossing when this observation takes the
    /// source's bucket over its limit for the first time and no cooldown is running.
    mutating func observe(source: FlowPeer, attempts: UInt64, time: Timestamp, sample: FlowSample) -> Crossing? {
        let index = time.nanoseconds / settings.bucket
        let identity = source.identity
        if sources[identity] == nil {
            guard sources.count < settings.maximumSources else {
                untrackedObservations += 1
                return nil
            }
            sources[identity] = Source(peer: source, firstBucket: index, bucket: index, lastActivity: time)
        }
        guard var state = sources[identity] else { return nil }
        sources[identity] = nil
        defer { sources[identity] = state }
        state.peer = source
        state.lastActivity = max(state.lastActivity, time)
        if index > state.bucket {
            close(&state, movingTo: index)
        } else if index < state.bucket {
            lateObservations += 1
        }
        state.count &+= attempts
        if state.samples.count < settings.sampleLimit { state.samples.append(sample) }

        let warm = state.bucket - state.firstBucket >= settings.warmUpBuckets
        guard warm || settings.alertDuringWarmUp else { return nil }
        var limit = settings.floorPerBucket
        if settings.useBaseline && warm {
            limit = max(limit, state.baseline.mean + settings.deviations * state.baseline.deviation)
        }
        guard Double(state.count) > limit else { return nil }
        let firstCrossing = !state.anomalous
        state.anomalous = true
        guard firstCrossing else { return nil }
        if let quietUntil = state.quietUntil, time < quietUntil { return nil }
        state.quietUntil = time + settings.cooldown
        return Crossing(count: state.count, limit: limit, baseline: state.baseline, warm: warm, samples: state.samples)
    }

    private func close(_ state: inout Source, movingTo index: UInt64) {
        let warm = state.bucket - state.firstBucket >= settings.warmUpBuckets
        if !state.anomalous || !warm {
            state.baseline.learn(Double(state.count), meanGain: settings.meanGain, deviationGain: settings.deviationGain)
        }
        state.baseline.learnZeros(index - state.bucket - 1, meanGain: settings.meanGain,
                                  deviationGain: settings.deviationGain)
        state.bucket = index
        state.count = 0
        state.anomalous = false
        state.samples = []
    }

    /// Forgets sources idle for `forgetAfter` (their baseline has decayed towards zero anyway; a
    /// source seen again starts a new warm-up).
    mutating func advance(to now: Timestamp) {
        let forget = settings.forgetAfter
        sources = sources.filter { _, state in now < state.lastActivity + forget }
    }
}
