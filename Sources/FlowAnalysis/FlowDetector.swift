// The shape every detector has: observations in, alerts out, time passed in as values.

/// A pure anomaly detector over the flow stream.
///
/// Detectors key their state by the source's identity (`FlowPeer.identity`: `namespace/name` or
/// the address), so a pod whose labels change stays one source. Every detector bounds its memory:
/// a maximum number of tracked sources (observations of further sources are counted in
/// `untrackedObservations`, never stored) and a bounded amount per source. After alerting about
/// a source a detector stays quiet about it for its `cooldown`, so one incident is one alert.
public protocol FlowDetector {
    var kind: DetectorKind { get }
    /// Takes one observation (in roughly increasing time; see each detector for late ones) and
    /// returns the alerts it causes: at most one, about the observation's source.
    mutating func observe(_ observation: FlowObservation) -> [Alert]
    /// Moves the detector's clock to `now`: forgets sources idle long enough. Call it on a timer.
    mutating func advance(to now: Timestamp) -> [Alert]
    /// Sources the detector holds state for.
    var trackedSources: Int { get }
    /// Observations not looked at because the detector already tracked its maximum of sources.
    var untrackedObservations: UInt64 { get }
}

extension FlowDetector {
    /// Feeds several observations in order.
    public mutating func observe(_ observations: some Sequence<FlowObservation>) -> [Alert] {
        var alerts: [Alert] = []
        for observation in observations { alerts += observe(observation) }
        return alerts
    }
}

func formatted(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return String((value * 10).rounded() / 10)
}
