// What a flow is about: two peers, a protocol and a destination port, and how policy decided it.

import NetworkAddress

/// A workload as flow logs and alerts name it. Labels are the pod's own labels at the time the
/// flow was seen.
public struct Workload: Hashable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public var labels: [String: String]

    public init(namespace: String, name: String, labels: [String: String] = [:]) {
        self.namespace = namespace; self.name = name; self.labels = labels
    }

    /// `namespace/name`, as `agentctl quarantine` takes it.
    public var id: String { "\(namespace)/\(name)" }
    public var description: String { id }
}

/// One end of a flow: a workload the resolver knows, or otherwise just an address (type `network`).
public enum FlowPeer: Hashable, Sendable, CustomStringConvertible {
    case workload(Workload)
    case network(IPAddress)

    public var workload: Workload? {
        if case .workload(let workload) = self { return workload }
        return nil
    }

    /// Who the peer is, without its labels: `namespace/name` or the address. Detectors count
    /// distinct peers by this, so a relabelled pod is still one peer.
    public var identity: String {
        switch self {
        case .workload(let workload): return workload.id
        case .network(let address): return address.description
        }
    }

    public var description: String { identity }

    /// `{"type":"workload","namespace":...,"name":...,"labels":{...}}` or
    /// `{"type":"network","address":...}`.
    public var json: JSONValue {
        switch self {
        case .workload(let workload):
            return .object([("type", .string("workload")), ("namespace", .string(workload.namespace)),
                            ("name", .string(workload.name)), ("labels", JSONValue.labels(workload.labels))])
        case .network(let address):
            return .object([("type", .string("network")), ("address", .string(address.description))])
        }
    }
}

/// An IP protocol number (`IPPROTO_*`), named when it is one Palisade's policies speak of.
public struct IPProtocol: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var number: UInt8
    public init(_ number: UInt8) { self.number = number }

    public static let icmp = IPProtocol(1)
    public static let tcp = IPProtocol(6)
    public static let udp = IPProtocol(17)
    public static let icmpv6 = IPProtocol(58)
    public static let sctp = IPProtocol(132)

    public static func < (a: IPProtocol, b: IPProtocol) -> Bool { a.number < b.number }

    /// Whether packets of this protocol have ports (and so flows have a destination port).
    public var hasPorts: Bool { self == .tcp || self == .udp || self == .sctp }

    /// `tcp`, `udp`, `sctp`, `icmp`, `icmpv6`, or the number in decimal.
    public var description: String {
        switch number {
        case 1: return "icmp"
        case 6: return "tcp"
        case 17: return "udp"
        case 58: return "icmpv6"
        case 132: return "sctp"
        default: return String(number)
        }
    }
}

/// The verdict a flow met.
public enum FlowAction: String, Hashable, Sendable, CaseIterable {
    case allow, deny
}

/// Which end's chain saw the packet: the source's egress chain (`src`) or the destination's
/// ingress chain (`dst`).
public enum Reporter: String, Hashable, Sendable, CaseIterable, Comparable {
    case source = "src", destination = "dst"
    public static func < (a: Reporter, b: Reporter) -> Bool { a == .source && b == .destination }
}

/// What decided a packet's fate.
public enum Decider: Hashable, Sendable, CustomStringConvertible {
    /// A rule of a policy: the policy's id (`namespace/name`, `global/name`), or `#` and the
    /// 16-digit hash when the log prefix carried only the hash and the directory did not know it.
    case policy(id: String, rule: Int)
    /// The endpoint's default (no policy rule matched, or no policy selects it).
    case defaultPolicy
    /// The endpoint is quarantined.
    case quarantine

    public var description: String {
        switch self {
        case .policy(let id, let rule): return "\(id) rule \(rule)"
        case .defaultPolicy: return "default"
        case .quarantine: return "quarantine"
        }
    }
}

/// One chain's decision about a flow.
public struct PolicyDecision: Hashable, Sendable {
    public var reporter: Reporter
    public var decider: Decider
    public init(reporter: Reporter, decider: Decider) { self.reporter = reporter; self.decider = decider }

    /// `{"reporter":"src","decider":"policy","policy":"shop/web","rule":2}`; `decider` is
    /// `policy`, `default` or `quarantine`, and only `policy` has the last two keys.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("reporter", .string(reporter.rawValue))]
        switch decider {
        case .policy(let id, let rule):
            members += [("decider", .string("policy")), ("policy", .string(id)), ("rule", .int(Int64(rule)))]
        case .defaultPolicy: members.append(("decider", .string("default")))
        case .quarantine: members.append(("decider", .string("quarantine")))
        }
        return .object(members)
    }
}

/// What flows are aggregated by: who talked to whom, over which protocol, to which port.
/// The source port is not part of it (every connection has a new one).
public struct FlowKey: Hashable, Sendable, CustomStringConvertible {
    public var source: FlowPeer
    public var destination: FlowPeer
    public var proto: IPProtocol
    /// nil for protocols without ports (ICMP).
    public var destinationPort: UInt16?

    public init(source: FlowPeer, destination: FlowPeer, proto: IPProtocol, destinationPort: UInt16?) {
        self.source = source; self.destination = destination; self.proto = proto
        self.destinationPort = destinationPort
    }

    public var description: String {
        "\(source) -> \(destination) \(proto)" + (destinationPort.map { "/\($0)" } ?? "")
    }
}
