// The desired state Palisade enforces, as plain values. Decoding lives in Documents.swift.

/// Where an object or an error comes from: a file and a 1-based line.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public init(file: String, line: Int) { self.file = file; self.line = line }
    public var description: String { "\(file):\(line)" }
}

public enum DefaultPolicy: String, Hashable, Sendable, CaseIterable, Codable {
    case allow, deny
}

public enum Direction: String, Hashable, Sendable, CaseIterable, Codable, Comparable {
    case ingress, egress
    public static func < (a: Direction, b: Direction) -> Bool { a.rawValue < b.rawValue }
}

public enum PortProtocol: String, Hashable, Sendable, CaseIterable, Codable, Comparable {
    case tcp = "TCP", udp = "UDP", sctp = "SCTP"
    public static func < (a: PortProtocol, b: PortProtocol) -> Bool { a.rawValue < b.rawValue }
    /// IANA protocol number.
    public var number: UInt8 {
        switch self { case .tcp: return 6; case .udp: return 17; case .sctp: return 132 }
    }
}

public struct Namespace: Hashable, Sendable {
    public var name: String
    /// Labels as written plus the implied `kubernetes.io/metadata.name`.
    public var labels: [String: String]
    /// From annotation `palisade.dev/default-policy`; nil means the agent's configured default.
    public var defaultPolicy: DefaultPolicy?
    public var location: SourceLocation?

    public init(name: String, labels: [String: String] = [:], defaultPolicy: DefaultPolicy? = nil,
                location: SourceLocation? = nil) {
        self.name = name
        var all = labels
        all["kubernetes.io/metadata.name"] = name
        self.labels = all
        self.defaultPolicy = defaultPolicy
        self.location = location
    }
}

public struct NamedPort: Hashable, Sendable {
    public var name: String
    public var port: UInt16
    public var proto: PortProtocol
    public init(name: String, port: UInt16, proto: PortProtocol) {
        self.name = name; self.port = port; self.proto = proto
    }
}

/// A workload with addresses: a `v1 Pod` that has pod IPs, or a `palisade.dev/v1 Endpoint`.
public struct Endpoint: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable, Codable { case pod = "Pod", endpoint = "Endpoint" }
    public var kind: Kind
    public var namespace: String
    public var name: String
    public var labels: [String: String]
    public var addresses: [IPAddress]
    /// Host-side interface from annotation `palisade.dev/interface` (or `spec.interface` for an Endpoint).
    public var interface: String?
    /// `spec.nodeName` of a pod, used to decide which endpoints are local.
    public var nodeName: String?
    public var namedPorts: [NamedPort]
    public var location: SourceLocation?
    /// `metadata.uid` of a pod, when the file has it.
    public var uid: String?

    public init(kind: Kind = .pod, namespace: String, name: String, labels: [String: String] = [:],
                addresses: [IPAddress], interface: String? = nil, nodeName: String? = nil,
                namedPorts: [NamedPort] = [], location: SourceLocation? = nil) {
        self.kind = kind; self.namespace = namespace; self.name = name; self.labels = labels
        self.addresses = addresses; self.interface = interface; self.nodeName = nodeName
        self.namedPorts = namedPorts; self.location = location
    }

    public var id: String { "\(namespace)/\(name)" }
}

/// A pod that is in the state but is not an endpoint (hostNetwork, no IP yet, finished).
public struct SkippedPod: Hashable, Sendable {
    public enum Reason: String, Hashable, Sendable, Codable {
        case hostNetwork, noAddress, finished
    }
    public var namespace: String
    public var name: String
    public var reason: Reason
    public var location: SourceLocation?
    public init(namespace: String, name: String, reason: Reason, location: SourceLocation? = nil) {
        self.namespace = namespace; self.name = name; self.reason = reason; self.location = location
    }
}

public struct LabelSelectorRequirement: Hashable, Sendable {
    public enum Operator: String, Hashable, Sendable, CaseIterable {
        case `in` = "In", notIn = "NotIn", exists = "Exists", doesNotExist = "DoesNotExist"
    }
    public var key: String
    public var op: Operator
    public var values: [String]
    public init(key: String, op: Operator, values: [String] = []) {
        self.key = key; self.op = op; self.values = values
    }
}

/// A Kubernetes label selector. The empty selector matches everything.
public struct LabelSelector: Hashable, Sendable {
    public var matchLabels: [String: String]
    public var matchExpressions: [LabelSelectorRequirement]
    public init(matchLabels: [String: String] = [:], matchExpressions: [LabelSelectorRequirement] = []) {
        self.matchLabels = matchLabels; self.matchExpressions = matchExpressions
    }
    public static let everything = LabelSelector()
    public var isEmpty: Bool { matchLabels.isEmpty && matchExpressions.isEmpty }

    public func matches(_ labels: [String: String]) -> Bool {
        for (key, value) in matchLabels where labels[key] != value { return false }
        for requirement in matchExpressions {
            let value = labels[requirement.key]
            switch requirement.op {
            case .in:
                guard let value, requirement.values.contains(value) else { return false }
            case .notIn:
                if let value, requirement.values.contains(value) { return false }
            case .exists:
                if value == nil { return false }
            case .doesNotExist:
                if value != nil { return false }
            }
        }
        return true
    }

    /// A canonical, order-independent text form: equal selectors give equal text.
    public var canonicalText: String {
        var parts = matchLabels.keys.sorted().map { "\($0)=\(matchLabels[$0]!)" }
        parts += matchExpressions.map { requirement in
            "\(requirement.key) \(requirement.op.rawValue) (\(requirement.values.sorted().joined(separator: ",")))"
        }.sorted()
        return "{" + parts.joined(separator: ";") + "}"
    }
}

public enum PortSpec: Hashable, Sendable {
    case number(UInt16)
    case named(String)
}

public struct PolicyPort: Hashable, Sendable {
    public var proto: PortProtocol
    /// nil: every port of the protocol.
    public var port: PortSpec?
    /// With a numeric port: the last port of a range.
    public var endPort: UInt16?
    public init(proto: PortProtocol = .tcp, port: PortSpec? = nil, endPort: UInt16? = nil) {
        self.proto = proto; self.port = port; self.endPort = endPort
    }
}

public enum PolicyPeer: Hashable, Sendable {
    /// podSelector and/or namespaceSelector. A nil namespaceSelector means the policy's own namespace;
    /// a nil podSelector means every pod of the selected namespaces.
    case selector(pods: LabelSelector?, namespaces: LabelSelector?)
    case ipBlock(cidr: CIDR, except: [CIDR])
}

/// One ingress or egress rule. Empty peers: every peer. Empty ports: every port.
public struct PolicyRule: Hashable, Sendable {
    public var peers: [PolicyPeer]
    public var ports: [PolicyPort]
    public init(peers: [PolicyPeer] = [], ports: [PolicyPort] = []) { self.peers = peers; self.ports = ports }
}

/// A `networking.k8s.io/v1 NetworkPolicy`.
public struct NetworkPolicy: Hashable, Sendable {
    public var namespace: String
    public var name: String
    public var podSelector: LabelSelector
    /// As given, or inferred as Kubernetes does (Ingress always; Egress if there are egress rules).
    public var policyTypes: Set<Direction>
    public var ingress: [PolicyRule]
    public var egress: [PolicyRule]
    public var location: SourceLocation?

    public init(namespace: String, name: String, podSelector: LabelSelector = .everything,
                policyTypes: Set<Direction>? = nil, ingress: [PolicyRule] = [], egress: [PolicyRule] = [],
                location: SourceLocation? = nil) {
        self.namespace = namespace; self.name = name; self.podSelector = podSelector
        self.ingress = ingress; self.egress = egress; self.location = location
        self.policyTypes = policyTypes ?? (egress.isEmpty ? [.ingress] : [.ingress, .egress])
    }

    public var id: String { "\(namespace)/\(name)" }
    public func rules(_ direction: Direction) -> [PolicyRule] { direction == .ingress ? ingress : egress }
}

/// One object read from the state directory.
public enum StateObject: Hashable, Sendable {
    case namespace(Namespace)
    case endpoint(Endpoint)
    case skippedPod(SkippedPod)
    case networkPolicy(NetworkPolicy)
    case calicoPolicy(CalicoPolicy)
    case quarantine(Quarantine)

    public var kind: String {
        switch self {
        case .namespace: return "Namespace"
        case .endpoint(let e): return e.kind.rawValue
        case .skippedPod: return "Pod"
        case .networkPolicy: return "NetworkPolicy"
        case .calicoPolicy(let p): return p.kind
        case .quarantine: return "Quarantine"
        }
    }
}

/// Everything the compiler needs, merged from all files.
public struct DesiredState: Hashable, Sendable {
    public var namespaces: [String: Namespace]
    public var endpoints: [Endpoint]
    public var skippedPods: [SkippedPod]
    public var policies: [NetworkPolicy]
    /// Calico-style ordered policies, sorted by id.
    public var calicoPolicies: [CalicoPolicy]
    /// Workloads under quarantine, sorted by pod id.
    public var quarantines: [Quarantine]

    public init(namespaces: [String: Namespace] = [:], endpoints: [Endpoint] = [],
                skippedPods: [SkippedPod] = [], policies: [NetworkPolicy] = [], calicoPolicies: [CalicoPolicy] = [],
                quarantines: [Quarantine] = []) {
        self.namespaces = namespaces; self.endpoints = endpoints
        self.skippedPods = skippedPods; self.policies = policies; self.calicoPolicies = calicoPolicies
        self.quarantines = quarantines
    }

    /// Merges objects in order; later duplicates of the same kind/namespace/name win.
    public init(objects: [StateObject]) {
        var namespaces: [String: Namespace] = [:]
        var endpoints: [String: Endpoint] = [:]
        var skipped: [String: SkippedPod] = [:]
        var policies: [String: NetworkPolicy] = [:]
        var calico: [String: CalicoPolicy] = [:]
        var quarantines: [String: Quarantine] = [:]
        for object in objects {
            switch object {
            case .namespace(let n): namespaces[n.name] = n
            case .endpoint(let e):
                endpoints[e.id] = e
                skipped[e.id] = nil
            case .skippedPod(let s):
                skipped["\(s.namespace)/\(s.name)"] = s
                endpoints["\(s.namespace)/\(s.name)"] = nil
            case .networkPolicy(let p): policies[p.id] = p
            case .calicoPolicy(let p): calico[p.kind + ":" + p.id] = p
            case .quarantine(let q):
                // The same pod quarantined twice (say by a file and by agentctl): the first stays,
                // so what is in force does not depend on which source was read last.
                if quarantines[q.podID] == nil { quarantines[q.podID] = q }
            }
        }
        self.namespaces = namespaces
        self.endpoints = endpoints.values.sorted { $0.id < $1.id }
        self.skippedPods = skipped.values.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        self.policies = policies.values.sorted { $0.id < $1.id }
        self.calicoPolicies = calico.values.sorted { $0.id < $1.id }
        self.quarantines = quarantines.values.sorted { $0.podID < $1.podID }
    }

    /// The quarantine that covers an endpoint, if any.
    public func quarantine(of endpoint: Endpoint) -> Quarantine? {
        quarantines.first { $0.covers(endpoint) }
    }

    /// Labels of a namespace: those of its object, or only the implied name label when no object exists.
    public func namespaceLabels(_ name: String) -> [String: String] {
        namespaces[name]?.labels ?? ["kubernetes.io/metadata.name": name]
    }
}
