// What `agentctl explain SRC DST --port N/PROTO` asks: two parties and a protocol.
import NftablesModel
import PolicyModel

/// One side of an explained flow: a workload by `namespace/name`, or an address.
public enum ExplainTarget: Hashable, Sendable, CustomStringConvertible {
    case endpoint(namespace: String, name: String)
    case address(IPAddress)

    /// `namespace/name` or an IPv4/IPv6 address; nil for anything else.
    public init?(_ text: String) {
        if let address = IPAddress(text) {
            self = .address(address)
            return
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self = .endpoint(namespace: String(parts[0]), name: String(parts[1]))
    }

    public var description: String {
        switch self {
        case .endpoint(let namespace, let name): return "\(namespace)/\(name)"
        case .address(let address): return "\(address)"
        }
    }
}

/// The protocol of an explained flow.
public enum ExplainProtocol: Hashable, Sendable, CustomStringConvertible {
    case port(PortProtocol)
    /// ICMP for IPv4, ICMPv6 for IPv6; nil type means an echo request (8, or 128 for ICMPv6).
    case icmp(type: UInt8?, code: UInt8?)

    public static let tcp = ExplainProtocol.port(.tcp)
    public static let udp = ExplainProtocol.port(.udp)
    public static let sctp = ExplainProtocol.port(.sctp)

    public var description: String {
        switch self {
        case .port(let proto): return proto.rawValue.lowercased()
        case .icmp(let type, let code):
            var text = "icmp"
            if let type { text += " type \(type)" }
            if let code { text += " code \(code)" }
            return text
        }
    }
}

public struct ExplainQuery: Hashable, Sendable {
    public var source: ExplainTarget
    public var destination: ExplainTarget
    /// The destination port; nil asks about the protocol alone (a rule naming a port will not match).
    public var port: UInt16?
    public var proto: ExplainProtocol
    /// nil: IPv4 unless an address given is IPv6 or an endpoint has only IPv6.
    public var family: IPFamily?
    /// `.new` explains a connection attempt; `.established` a packet of a live connection.
    public var ctState: CtStateSet
    /// The interface traffic to or from an address that is no local workload uses on this node.
    public var outsideInterface: String

    public init(source: ExplainTarget, destination: ExplainTarget, port: UInt16? = nil,
                proto: ExplainProtocol = .tcp, family: IPFamily? = nil, ctState: CtStateSet = .new,
                outsideInterface: String = "eth0") {
        self.source = source; self.destination = destination; self.port = port; self.proto = proto
        self.family = family; self.ctState = ctState; self.outsideInterface = outsideInterface
    }

    /// Reads `--port` as agentctl takes it: `5432/tcp`, `53/UDP`, `80` (TCP), `icmp`, `icmp/8`,
    /// `icmp/3/1` (type and code). Returns nil for anything else.
    public static func parsePort(_ text: String) -> (port: UInt16?, proto: ExplainProtocol)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { String($0) }
        guard let first = parts.first, !first.isEmpty else { return nil }
        if ["icmp", "icmpv6"].contains(first.lowercased()) {
            guard parts.count <= 3 else { return nil }
            let numbers = parts.dropFirst().map { UInt8($0) }
            if numbers.contains(where: { $0 == nil }) { return nil }
            let type = numbers.first ?? nil
            let code = numbers.count > 1 ? numbers[numbers.startIndex + 1] : nil
            return (nil, .icmp(type: type, code: code))
        }
        guard parts.count <= 2, let port = UInt16(first) else { return nil }
        guard parts.count == 2 else { return (port, .tcp) }
        guard let proto = PortProtocol(rawValue: parts[1].uppercased()) else { return nil }
        return (port, .port(proto))
    }
}
