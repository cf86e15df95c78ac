// The engine of the port-scan and IP-sweep detectors: per source, how many distinct values
// (ports, destinations) it touched within a sliding window.
//
// Window: sliding, of length W, measured back from the detector's clock (the latest observation
// time seen): a value counts when it was last seen at t with clock − t < W, that is within
// (clock − W, clock]. A value seen exactly W before the clock no longer counts.

/// Counts distinct values per source in a sliding window; reports when a source reaches the threshold.
struct DistinctInWindow<Value: Hashable> {
    let window: UInt64
    let threshold: Int
    let maximumSources: Int
    let cooldown: Duration
    let sampleLimit: Int

    private struct Source {
        var peer: FlowPeer
        /// Last time each value was seen; never more than `threshold - 1` entries between calls,
        /// because reaching the threshold reports and clears.
        var lastSeen: [Value: Timestamp] = [:]
        var samples: [FlowSample] = []
        var lastActivity: Timestamp
        var quietUntil: Timestamp?
    }

    private var sources: [String: Source] = [:]
    private(set) var clock = Timestamp(nanoseconds: 0)
    private(set) var untrackedObservations: UInt64 = 0
    /// Observations during a source's cooldown after an alert.
    private(set) var suppressedObservations: UInt64 = 0

    init(window: Duration, threshold: Int, maximumSources: Int, cooldown: Duration, sampleLimit: Int) {
        self.window = max(1, window.flowNanoseconds)
        self.threshold = max(1, threshold)
        self.maximumSources = max(0, maximumSources)
        self.cooldown = cooldown
        self.sampleLimit = max(0, sampleLimit)
    }

    var trackedSources: Int { sources.count }

    private func age(_ time: Timestamp) -> UInt64 {
        clock.nanoseconds >= time.nanoseconds ? clock.nanoseconds - time.nanoseconds : 0
    }

    /// Records that `source` touched `value` at `time`. Returns the distinct count and samples
    /// when this makes the source reach the threshold (and then starts its cooldown).
    mutating func observe(source: FlowPeer, value: Value, time: Timestamp, sample: FlowSample)
        -> (count: Int, samples: [FlowSample])? {
        clock = max(clock, time)
        // An observation a whole window older than the clock cannot count.
        guard age(time) < window else { return nil }
        let identity = source.identity
        if sources[identity] == nil {
            guard sources.count < maximumSources else {
                untrackedObservations += 1
                return nil
            }
            sources[identity] = Source(peer: source, lastActivity: time)
        }
        guard var state = sources[identity] else { return nil }
        sources[identity] = nil  // edit in place, without a second reference to the dictionaries
        defer { sources[identity] = state }
        state.peer = source
        state.lastActivity = max(state.lastActivity, time)
        if let quietUntil = state.quietUntil {
            if clock < quietUntil {
                suppressedObservations += 1
                return nil
            }
            state.quietUntil = nil
        }
        if let seen = state.lastSeen[value] {
            state.lastSeen[value] = max(seen, time)
        } else {
            state.lastSeen[value] = time
            if state.samples.count < sampleLimit { state.samples.append(sample) }
        }
        guard state.lastSeen.count >= threshold else { return nil }
        state.lastSeen = state.lastSeen.filter { age($0.value) < window }
        state.samples.removeAll { age($0.time) >= window }
        guard state.lastSeen.count >= threshold else { return nil }
        let result = (count: state.lastSeen.count, samples: state.samples.sorted { $0.time < $1.time })
        state.lastSeen = [:]
        state.samples = []
        state.quietUntil = clock + cooldown
        return result
    }

    /// Forgets sources with nothing in the window and no cooldown running.
    mutating func advance(to now: Timestamp) {
        clock = max(clock, now)
        let window = self.window
        let clock = self.clock
        sources = sources.filter { _, state in
            let active = clock.nanoseconds - min(clock.nanoseconds, state.lastActivity.nanoseconds) < window
            let quiet = state.quietUntil.map { clock < $0 } ?? false
            return active || quiet
        }
    }
}
