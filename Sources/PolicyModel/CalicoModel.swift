// Calico-style ordered policies (projectcalico.org/v3 NetworkPolicy and GlobalNetworkPolicy), as
// plain values. The subset Palisade enforces is exactly what these types can say; the decoder
// rejects the rest with a clear error.

/// A Calico selector expression: `app == 'web' && !has(canary)`, `role in {'db','cache'}`, `all()`.
public indirect enum SelectorExpression: Hashable, Sendable {
    case all
    case has(String)
    case equals(String, String)
    case notEquals(String, String)          // true also when the label is absent
    case inSet(String, [String])
    case notInSet(String, [String])         // true also when the label is absent
    case not(SelectorExpression)
    case and(SelectorExpression, SelectorExpression)
    case or(SelectorExpression, SelectorExpression)

    public func matches(_ labels: [String: String]) -> Bool {
        matches { labels[$0] }
    }

    /// The same, with the labels given as a lookup: callers that add a few implied labels to a
    /// pod's own need not build a dictionary for each pod.
    public func matches(_ label: (String) -> String?) -> Bool {
        switch self {
        case .all: return true
        case .has(let key): return label(key) != nil
        case .equals(let key, let value): return label(key) == value
        case .notEquals(let key, let value): return label(key) != value
        case .inSet(let key, let values): return label(key).map(values.contains) ?? false
        case .notInSet(let key, let values): return !(label(key).map(values.contains) ?? false)
        case .not(let inner): return !inner.matches(label)
        case .and(let a, let b): return a.matches(label) && b.matches(label)
        case .or(let a, let b): return a.matches(label) || b.matches(label)
        }
    }

    /// A canonical text form (Calico syntax, fully parenthesised), equal for equal expressions.
    public var canonicalText: String {
        // Escaped, so that no two different expressions share a text: names of kernel sets are
        // derived from it.
        func quote(_ s: String) -> String { "'" + s.replacingEvery("\\", with: "\\\\").replacingEvery("'", with: "\\'") + "'" }
        switch self {
        case .all: return "all()"
        case .has(let key): return "has(\(key))"
        case .equals(let key, let value): return "\(key) == \(quote(value))"
        case .notEquals(let key, let value): return "\(key) != \(quote(value))"
        case .inSet(let key, let values): return "\(key) in {\(values.sorted().map(quote).joined(separator: ","))}"
        case .notInSet(let key, let values): return "\(key) not in {\(values.sorted().map(quote).joined(separator: ","))}"
        case .not(let inner): return "!(\(inner.canonicalText))"
        case .and(let a, let b): return "(\(a.canonicalText) && \(b.canonicalText))"
        case .or(let a, let b): return "(\(a.canonicalText) || \(b.canonicalText))"
        }
    }
}

public enum CalicoAction: String, Hashable, Sendable, CaseIterable {
    case allow = "Allow", deny = "Deny", log = "Log", pass = "Pass"
}

/// `protocol` of a Calico rule.
public enum CalicoProtocol: Hashable, Sendable {
    case tcp, udp, sctp, icmp, icmpv6
    case number(UInt8)

    public var number: UInt8 {
        switch self {
        case .tcp: return 6
        case .udp: return 17
        case .sctp: return 132
        case .icmp: return 1
        case .icmpv6: return 58
        case .number(let n): return n
        }
    }
    /// Ports are only meaningful for these.
    public var hasPorts: Bool { [6, 17, 132].contains(number) }
}

/// One entry of `ports`/`notPorts`: a number, a range `a:b`, or a named port.
public enum CalicoPort: Hashable, Sendable {
    case range(ClosedRange<UInt16>)
    case named(String)
}

/// `icmp: {type: T, code: C}` (code only with type).
public struct ICMPMatch: Hashable, Sendable {
    public var type: UInt8
    public var code: UInt8?
    public init(type: UInt8, code: UInt8? = nil) { self.type = type; self.code = code }
}

/// The `source` or `destination` of a Calico rule. Every field present must match (AND); within
/// `nets` and `ports` any entry may match (OR); a `not*` field must not match.
public struct CalicoEntityRule: Hashable, Sendable {
    public var nets: [CIDR]
    public var notNets: [CIDR]
    public var selector: SelectorExpression?
    public var notSelector: SelectorExpression?
    public var namespaceSelector: SelectorExpression?
    public var ports: [CalicoPort]
    public var notPorts: [CalicoPort]

    public init(nets: [CIDR] = [], notNets: [CIDR] = [], selector: SelectorExpression? = nil,
                notSelector: SelectorExpression? = nil, namespaceSelector: SelectorExpression? = nil,
                ports: [CalicoPort] = [], notPorts: [CalicoPort] = []) {
        self.nets = nets; self.notNets = notNets; self.selector = selector; self.notSelector = notSelector
        self.namespaceSelector = namespaceSelector; self.ports = ports; self.notPorts = notPorts
    }
    public var isEmpty: Bool { self == CalicoEntityRule() }
}

public struct CalicoRule: Hashable, Sendable {
    public var action: CalicoAction
    public var proto: CalicoProtocol?
    public var notProto: CalicoProtocol?
    /// `ipVersion: 4|6`: restricts the rule to one family.
    public var ipVersion: IPFamily?
    public var icmp: ICMPMatch?
    public var notICMP: ICMPMatch?
    public var source: CalicoEntityRule
    public var destination: CalicoEntityRule
    public var location: SourceLocation?

    public init(action: CalicoAction, proto: CalicoProtocol? = nil, notProto: CalicoProtocol? = nil,
                ipVersion: IPFamily? = nil, icmp: ICMPMatch? = nil, notICMP: ICMPMatch? = nil,
                source: CalicoEntityRule = CalicoEntityRule(), destination: CalicoEntityRule = CalicoEntityRule(),
                location: SourceLocation? = nil) {
        self.action = action; self.proto = proto; self.notProto = notProto; self.ipVersion = ipVersion
        self.icmp = icmp; self.notICMP = notICMP; self.source = source; self.destination = destination
        self.location = location
    }
}

/// A `projectcalico.org/v3` NetworkPolicy (namespace set) or GlobalNetworkPolicy (namespace nil).
public struct CalicoPolicy: Hashable, Sendable {
    public var namespace: String?
    public var name: String
    /// Lower first; nil orders after every policy that has an order (as Calico does).
    public var order: Double?
    /// Which endpoints the policy applies to (`selector`, default `all()`).
    public var selector: SelectorExpression
    /// GlobalNetworkPolicy only: restricts the endpoints to namespaces whose labels match.
    public var namespaceSelector: SelectorExpression?
    /// `types`, as given or inferred as Calico does: Ingress if there are ingress rules or no
    /// egress rules; Egress if there are egress rules.
    public var types: Set<Direction>
    public var ingress: [CalicoRule]
    public var egress: [CalicoRule]
    public var location: SourceLocation?

    public init(namespace: String?, name: String, order: Double? = nil, selector: SelectorExpression = .all,
                namespaceSelector: SelectorExpression? = nil, types: Set<Direction>? = nil,
                ingress: [CalicoRule] = [], egress: [CalicoRule] = [], location: SourceLocation? = nil) {
        self.namespace = namespace; self.name = name; self.order = order; self.selector = selector
        self.namespaceSelector = namespaceSelector; self.ingress = ingress; self.egress = egress
        self.location = location
        if let types {
            self.types = types
        } else {
            var inferred: Set<Direction> = []
            if !ingress.isEmpty || egress.isEmpty { inferred.insert(.ingress) }
            if !egress.isEmpty { inferred.insert(.egress) }
            self.types = inferred
        }
    }

    public var isGlobal: Bool { namespace == nil }
    /// `namespace/name`, or `global/name` for a GlobalNetworkPolicy.
    public var id: String { "\(namespace ?? "global")/\(name)" }
    public var kind: String { isGlobal ? "GlobalNetworkPolicy" : "NetworkPolicy" }
    public func rules(_ direction: Direction) -> [CalicoRule] { direction == .ingress ? ingress : egress }
}
