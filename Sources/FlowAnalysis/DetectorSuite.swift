// All configured detectors behind one call, as the agent runs them.

/// Which detectors run, with their parameters; nil turns one off.
public struct DetectorConfiguration: Sendable {
    public var portScan: PortScanDetector.Parameters?
    public var ipSweep: IPSweepDetector.Parameters?
    public var connectionFlood: ConnectionFloodDetector.Parameters?
    public var deniedSurge: DeniedSurgeDetector.Parameters?
    /// Off by default: behavioural, and noisy where workloads' peers change.
    public var firstContact: FirstContactDetector.Parameters?

    public init(portScan: PortScanDetector.Parameters? = .init(), ipSweep: IPSweepDetector.Parameters? = .init(),
                connectionFlood: ConnectionFloodDetector.Parameters? = .init(),
                deniedSurge: DeniedSurgeDetector.Parameters? = .init(),
                firstContact: FirstContactDetector.Parameters? = nil) {
        self.portScan = portScan; self.ipSweep = ipSweep; self.connectionFlood = connectionFlood
        self.deniedSurge = deniedSurge; self.firstContact = firstContact
    }
}

/// The enabled detectors, fed together. Alerts come out in detector order (`DetectorKind.allCases`).
public struct DetectorSuite {
    public private(set) var detectors: [any FlowDetector] = []

    public init(configuration: DetectorConfiguration = DetectorConfiguration()) {
        if let parameters = configuration.portScan { detectors.append(PortScanDetector(parameters: parameters)) }
        if let parameters = configuration.ipSweep { detectors.append(IPSweepDetector(parameters: parameters)) }
        if let parameters = configuration.connectionFlood { detectors.append(ConnectionFloodDetector(parameters: parameters)) }
        if let parameters = configuration.deniedSurge { detectors.append(DeniedSurgeDetector(parameters: parameters)) }
        if let parameters = configuration.firstContact { detectors.append(FirstContactDetector(parameters: parameters)) }
    }

    public var enabled: [DetectorKind] { detectors.map(\.kind) }

    public mutating func observe(_ observation: FlowObservation) -> [Alert] {
        var alerts: [Alert] = []
        for index in detectors.indices { alerts += detectors[index].observe(observation) }
        return alerts
    }

    public mutating func observe(_ observations: some Sequence<FlowObservation>) -> [Alert] {
        var alerts: [Alert] = []
        for observation in observations { alerts += observe(observation) }
        return alerts
    }

    public mutating func advance(to now: Timestamp) -> [Alert] {
        var alerts: [Alert] = []
        for index in detectors.indices { alerts += detectors[index].advance(to: now) }
        return alerts
    }

    /// Per detector: sources tracked and observations not looked at for lack of room (for metrics).
    public var load: [(detector: DetectorKind, trackedSources: Int, untrackedObservations: UInt64)] {
        detectors.map { ($0.kind, $0.trackedSources, $0.untrackedObservations) }
    }
}
