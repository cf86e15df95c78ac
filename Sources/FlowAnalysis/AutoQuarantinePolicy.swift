// Which alerts quarantine a workload on their own. The decision is pure; the agent carries it out
// through the same path as `agentctl quarantine`, with the alert as the reason and itself as actor.

/// What to do about one alert.
public enum QuarantineDecision: Hashable, Sendable {
    /// Quarantine this workload, for this reason.
    case quarantine(Workload, reason: String)
    /// Dry run: record that this workload would have been quarantined, and why; do nothing.
    case dryRun(wouldQuarantine: Workload, reason: String)
    /// Leave it alone.
    case none(NoQuarantineReason)
}

public enum NoQuarantineReason: Hashable, Sendable, CustomStringConvertible {
    /// The configuration does not let this detector quarantine.
    case detectorNotConfigured(DetectorKind)
    /// The alert's severity is below the configured minimum.
    case belowMinimumSeverity(Severity, minimum: Severity)
    /// The alert is about an address, not a workload (traffic from outside the node's workloads).
    case notAWorkload(FlowPeer)
    /// The workload matches the exemption selector; it would otherwise have been quarantined.
    case exempt(Workload)

    public var description: String {
        switch self {
        case .detectorNotConfigured(let kind): return "detector \(kind.rawValue) does not quarantine"
        case .belowMinimumSeverity(let severity, let minimum):
            return "severity \(severity) is below the minimum \(minimum)"
        case .notAWorkload(let peer): return "\(peer) is not a workload"
        case .exempt(let workload): return "\(workload.id) is exempt from automatic quarantine"
        }
    }
}

/// Decides whether an alert quarantines its workload.
public struct AutoQuarantinePolicy: Sendable {
    /// Detectors whose alerts may quarantine (default none: automatic quarantine is off).
    public var detectors: Set<DetectorKind>
    /// Alerts below this severity never quarantine (default high).
    public var minimumSeverity: Severity
    /// Decide, but return `dryRun` instead of `quarantine` (default false).
    public var dryRun: Bool
    /// True for a workload that must never be quarantined automatically (the agent passes its
    /// exemption selector, evaluated on the workload's labels and namespace).
    public var isExempt: @Sendable (Workload) -> Bool

    public init(detectors: Set<DetectorKind> = [], minimumSeverity: Severity = .high, dryRun: Bool = false,
                isExempt: @escaping @Sendable (Workload) -> Bool = { _ in false }) {
        self.detectors = detectors; self.minimumSeverity = minimumSeverity; self.dryRun = dryRun
        self.isExempt = isExempt
    }

    /// The decision for one alert. Checked in order: detector, severity, workload, exemption —
    /// so `exempt` means the alert would otherwise have quarantined.
    public func decide(_ alert: Alert) -> QuarantineDecision {
        guard detectors.contains(alert.detector) else { return .none(.detectorNotConfigured(alert.detector)) }
        guard alert.severity >= minimumSeverity else {
            return .none(.belowMinimumSeverity(alert.severity, minimum: minimumSeverity))
        }
        guard let workload = alert.endpoint.workload else { return .none(.notAWorkload(alert.endpoint)) }
        guard !isExempt(workload) else { return .none(.exempt(workload)) }
        let reason = "automatic: \(alert.detector.rawValue) alert (\(alert.severity)) at \(alert.time.rfc3339): \(alert.summary)"
        return dryRun ? .dryRun(wouldQuarantine: workload, reason: reason) : .quarantine(workload, reason: reason)
    }
}
