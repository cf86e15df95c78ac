// An alert: which detector saw what, about whom, and the numbers and flows behind it.

/// How bad an alert is. Ordered: `info < low < medium < high < critical`.
public enum Severity: Int, Hashable, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case info = 0, low, medium, high, critical

    public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }

    public var name: String {
        switch self {
        case .info: return "info"
        case .low: return "low"
        case .medium: return "medium"
        case .high: return "high"
        case .critical: return "critical"
        }
    }

    public init?(name: String) {
        guard let match = Severity.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    public var description: String { name }
}

/// The detectors, by the name configuration and alerts use.
public enum DetectorKind: String, Hashable, Sendable, CaseIterable, Comparable {
    case portScan, ipSweep, connectionFlood, deniedSurge, firstContact
    public static func < (a: DetectorKind, b: DetectorKind) -> Bool {
        allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
    }
}

/// The numbers and flows an alert rests on.
public struct Evidence: Hashable, Sendable {
    public struct Count: Hashable, Sendable {
        public var name: String
        public var value: Double
        public init(_ name: String, _ value: Double) { self.name = name; self.value = value }
    }

    /// Named numbers in a fixed order: what was counted, the threshold, the window in seconds...
    public var counts: [Count]
    /// Some of the flows counted (at most the detector's sample limit), oldest first.
    public var flows: [FlowSample]

    public init(counts: [Count], flows: [FlowSample] = []) { self.counts = counts; self.flows = flows }

    public func value(_ name: String) -> Double? { counts.first { $0.name == name }?.value }

    public var json: JSONValue {
        .object([("counts", .object(counts.map { ($0.name, .double($0.value)) })),
                 ("flows", .array(flows.map(\.json)))])
    }
}

/// What a detector reports.
public struct Alert: Hashable, Sendable {
    public var time: Timestamp
    public var detector: DetectorKind
    public var severity: Severity
    /// The peer the alert is about: the source of the suspicious traffic. A workload can be
    /// quarantined; a `network` peer (traffic from outside) can only be reported.
    public var endpoint: FlowPeer
    /// One line for people: `42 distinct destination ports in 10 s (threshold 25)`.
    public var summary: String
    public var evidence: Evidence

    public init(time: Timestamp, detector: DetectorKind, severity: Severity, endpoint: FlowPeer,
                summary: String, evidence: Evidence) {
        self.time = time; self.detector = detector; self.severity = severity; self.endpoint = endpoint
        self.summary = summary; self.evidence = evidence
    }

    /// Keys in this order: `time`, `detector`, `severity`, `endpoint` (a peer object as in flow
    /// records), `summary`, `evidence` (`{"counts":{...},"flows":[...]}`).
    public var json: JSONValue {
        .object([("time", .string(time.rfc3339)), ("detector", .string(detector.rawValue)),
                 ("severity", .string(severity.name)), ("endpoint", endpoint.json),
                 ("summary", .string(summary)), ("evidence", evidence.json)])
    }

    /// One line of the alert log, without the newline.
    public var jsonLine: String { json.rendered }
}
