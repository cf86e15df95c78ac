import PolicyModel

/// The agent configuration the compiler needs; everything else it gets from the desired state.
public struct CompilerOptions: Hashable, Sendable {
    /// Table `inet <tableName>`, the only kernel object Palisade owns.
    public var tableName: String
    /// Applies to endpoints that no policy selects in a direction, unless their namespace says otherwise.
    public var defaultPolicy: DefaultPolicy
    /// Host-side interfaces of workloads start with this; unknown ones are dropped (fail closed).
    public var interfacePrefix: String
    /// When set, only endpoints on this node (or with no node) get dispatch entries.
    public var nodeName: String?
    /// Traffic the node itself sends to its pods (kubelet probes): always allowed, or judged by
    /// the pods' ingress policy.
    public var nodeToWorkload: NodeTraffic
    /// NFLOG group of every log rule: Calico `Log` rules, the quarantine chains, and the flow logs.
    public var logGroup: UInt16
    /// Which verdicts are logged to NFLOG (with a prefix naming endpoint side, policy and rule) for
    /// the flow log: none, drops (default deny, Calico Deny; the quarantine chains always log), or
    /// also the first packet of every allowed connection.
    public var flowLogs: FlowLogs

    public enum FlowLogs: String, Hashable, Sendable, CaseIterable { case off, denied, all }
    /// Endpoints (Calico selector) that may still reach quarantined pods, e.g. a forensics scanner.
    public var quarantineExemption: SelectorExpression?

    public enum NodeTraffic: String, Hashable, Sendable, CaseIterable { case allow, policy }

    public init(tableName: String = "palisade", defaultPolicy: DefaultPolicy = .allow,
                interfacePrefix: String = "pl", nodeName: String? = nil, nodeToWorkload: NodeTraffic = .allow,
                logGroup: UInt16 = 1) {
        self.tableName = tableName; self.defaultPolicy = defaultPolicy
        self.interfacePrefix = interfacePrefix; self.nodeName = nodeName
        self.nodeToWorkload = nodeToWorkload; self.logGroup = logGroup
        self.quarantineExemption = nil
        self.flowLogs = .denied
    }
}

/// Stable short names for kernel objects derived from their content.
enum Naming {
    /// 64-bit FNV-1a: stable across runs and platforms (Swift's Hasher is seeded per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100000001b3
        }
        return hash
    }

    static func shortHash(_ text: String, digits: Int = 16) -> String {
        let hex = String(fnv1a(text), radix: 16)
        let padded = String(repeating: "0", count: max(0, 16 - hex.count)) + hex
        return String(padded.prefix(digits))
    }

    /// The host-side interface of an endpoint without an explicit one: prefix + hash of namespace.name,
    /// at most 15 characters (IFNAMSIZ - 1), as CNI plugins such as Calico name them.
    static func derivedInterface(prefix: String, namespace: String, name: String) -> String {
        String((prefix + shortHash("\(namespace).\(name)", digits: 16)).prefix(15))
    }

    static let maxObjectName = 200

    /// A kernel object name that stays readable when it can and unique always.
    static func readable(_ text: String, fallbackPrefix: String, suffix: String) -> String {
        let name = text + suffix
        if name.count <= maxObjectName { return name }
        return fallbackPrefix + shortHash(text, digits: 16) + suffix
    }
}
