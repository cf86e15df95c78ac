import Foundation

/// The keys of the configuration file, and what a reload (SIGHUP) can do with each.
extension AgentConfig {
    /// One key of the file: whether a running agent can take a new value at once, and how to compare
    /// and copy its value.
    public struct Field: Sendable {
        public let key: String
        /// False: the value is fixed when the agent starts (the table's name and flags, the sockets,
        /// the directories, the log format), so a reload only reports that it needs a restart.
        public let live: Bool
        let differs: @Sendable (AgentConfig, AgentConfig) -> Bool
        let copy: @Sendable (inout AgentConfig, AgentConfig) -> Void
    }

    private static func field<Value: Equatable>(_ key: String, live: Bool,
                                                _ path: WritableKeyPath<AgentConfig, Value> & Sendable) -> Field {
        Field(key: key, live: live,
              differs: { $0[keyPath: path] != $1[keyPath: path] },
              copy: { $0[keyPath: path] = $1[keyPath: path] })
    }

    /// Every key, in the order of `annotatedDefault`.
    public static let fields: [Field] = [
        field("stateDirectory", live: false, \.stateDirectory),
        field("dataDirectory", live: false, \.dataDirectory),
        field("tableName", live: false, \.compiler.tableName),
        // Only the compiled ruleset depends on these: the next reconcile applies them as a delta.
        field("interfacePrefix", live: true, \.compiler.interfacePrefix),
        field("defaultPolicy", live: true, \.compiler.defaultPolicy),
        field("nodeName", live: true, \.compiler.nodeName),
        field("nodeToWorkload", live: true, \.compiler.nodeToWorkload),
        field("logGroup", live: true, \.compiler.logGroup),
        field("quarantineExemption", live: true, \.compiler.quarantineExemption),
        // The table's flags are chosen when the agent first replaces it.
        field("ownTable", live: false, \.ownTable),
        // Read at every file event.
        field("debounceMilliseconds", live: true, \.debounceMilliseconds),
        field("maxDelayMilliseconds", live: true, \.maxDelayMilliseconds),
        field("minIntervalMilliseconds", live: true, \.minIntervalMilliseconds),
        // The resync timer is armed at start.
        field("resyncSeconds", live: false, \.resyncSeconds),
        // The control server takes the path at start (the file's content is re-read on every request).
        field("rbacFile", live: false, \.rbacFile),
        field("socketGroup", live: false, \.socketGroup),
        field("logFormat", live: false, \.logFormat),
        field("logLevel", live: true, \.logLevel),
        field("metricsAddress", live: false, \.metricsAddress),
        field("clusterNetworks", live: false, \.clusterNetworks),
        // The ruleset's log rules follow at once; the monitor's settings are taken at start.
        field("flowLogs", live: true, \.compiler.flowLogs),
        field("flowIntervalSeconds", live: false, \.flowIntervalSeconds),
        field("flowLogRotateMegabytes", live: false, \.flowLogRotateMegabytes),
        field("flowLogKeepFiles", live: false, \.flowLogKeepFiles),
        field("anomalyDetectors", live: false, \.anomalyDetectors),
        field("autoQuarantine", live: false, \.autoQuarantine),
        field("autoQuarantineSeverity", live: false, \.autoQuarantineSeverity),
        field("autoQuarantineDryRun", live: false, \.autoQuarantineDryRun),
    ]

    /// Keys whose empty value means "none" rather than an error.
    static let optionalKeys: Set<String> = ["nodeName", "quarantineExemption", "socketGroup", "metricsAddress",
                                            "anomalyDetectors", "autoQuarantine"]

    /// A known key that an unknown one is probably a typo of: the same but for case, or at most two
    /// letters added, removed or changed.
    static func closestKey(to key: String) -> String? {
        let candidates = fields.map(\.key)
        if let sameButCase = candidates.first(where: { $0.lowercased() == key.lowercased() }) { return sameButCase }
        let scored = candidates.map { ($0, editDistance($0.lowercased(), key.lowercased())) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// The keys whose values differ between two configurations, in file order.
    public func changedKeys(comparedWith other: AgentConfig) -> [String] {
        Self.fields.filter { $0.differs(self, other) }.map(\.key)
    }
}

/// What reloading the configuration file does to a running agent.
public struct ConfigReload: Hashable, Sendable {
    /// Keys whose new value is in force now.
    public var applied: [String]
    /// Keys whose new value waits for a restart; the running agent keeps the old one.
    public var needsRestart: [String]
    /// The running configuration after the reload: the old one with the live keys' new values.
    public var effective: AgentConfig

    /// Compares the running configuration with the file's new content.
    public init(running: AgentConfig, file: AgentConfig) {
        var effective = running
        var applied: [String] = []
        var needsRestart: [String] = []
        for field in AgentConfig.fields where field.differs(running, file) {
            if field.live {
                field.copy(&effective, file)
                applied.append(field.key)
            } else {
                needsRestart.append(field.key)
            }
        }
        self.applied = applied
        self.needsRestart = needsRestart
        self.effective = effective
    }

    public var changedNothing: Bool { applied.isEmpty && needsRestart.isEmpty }
}
