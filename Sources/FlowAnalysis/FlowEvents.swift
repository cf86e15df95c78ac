// The two kinds of kernel event flows are built from, as plain values. The readers (nfnetlink_log,
// ctnetlink) fill them in; nothing here knows a socket.

import NetworkAddress

/// A packet one of Palisade's log rules logged (an NFLOG message).
public struct PacketLogEvent: Hashable, Sendable {
    /// `NFULA_TIMESTAMP` when the kernel sent one, else the time the reader received the message.
    public var time: Timestamp
    /// `NFULA_PREFIX`, as text (trailing NULs removed); see `LogPrefix`.
    public var prefix: String
    public var source: IPAddress
    public var destination: IPAddress
    public var proto: IPProtocol
    /// nil for protocols without ports, or when the copied part of the packet was too short.
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    /// The packet's length on the wire (the IP header's total length), not the copied length.
    public var length: UInt32

    public init(time: Timestamp, prefix: String, source: IPAddress, destination: IPAddress, proto: IPProtocol,
                sourcePort: UInt16? = nil, destinationPort: UInt16? = nil, length: UInt32) {
        self.time = time; self.prefix = prefix; self.source = source; self.destination = destination
        self.proto = proto; self.sourcePort = sourcePort; self.destinationPort = destinationPort; self.length = length
    }
}

/// One direction of a conntrack entry (`CTA_TUPLE_ORIG` or `CTA_TUPLE_REPLY`).
public struct ConnectionTuple: Hashable, Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var proto: IPProtocol
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?

    public init(source: IPAddress, destination: IPAddress, proto: IPProtocol,
                sourcePort: UInt16? = nil, destinationPort: UInt16? = nil) {
        self.source = source; self.destination = destination; self.proto = proto
        self.sourcePort = sourcePort; self.destinationPort = destinationPort
    }
}

/// Packets and bytes of one direction (`CTA_COUNTERS_ORIG` / `CTA_COUNTERS_REPLY`; conntrack
/// accounting must be on for the kernel to send them).
public struct PacketCounters: Hashable, Sendable {
    public var packets: UInt64
    public var bytes: UInt64
    public init(packets: UInt64 = 0, bytes: UInt64 = 0) { self.packets = packets; self.bytes = bytes }
    public static let zero = PacketCounters()

    public static func + (a: PacketCounters, b: PacketCounters) -> PacketCounters {
        PacketCounters(packets: a.packets &+ b.packets, bytes: a.bytes &+ b.bytes)
    }
}

/// A ctnetlink event: a connection confirmed (`IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL`)
/// or ended (`IPCTNL_MSG_CT_DELETE`); updates carry nothing a flow record needs and are not
/// passed in. Conntrack confirms only packets the ruleset accepted, so a new connection is an
/// allowed one.
public struct ConnectionEvent: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable { case new, destroy }
    public var time: Timestamp
    public var kind: Kind
    public var original: ConnectionTuple
    /// After NAT the reply tuple names the real destination; nil when the message had none.
    public var reply: ConnectionTuple?
    /// Counters of the original direction (source to destination); usually only on destroy.
    public var originalCounters: PacketCounters?
    /// Counters of the reply direction.
    public var replyCounters: PacketCounters?

    public init(time: Timestamp, kind: Kind, original: ConnectionTuple, reply: ConnectionTuple? = nil,
                originalCounters: PacketCounters? = nil, replyCounters: PacketCounters? = nil) {
        self.time = time; self.kind = kind; self.original = original; self.reply = reply
        self.originalCounters = originalCounters; self.replyCounters = replyCounters
    }

    /// The connection as policy saw it: the client is the original source (before any SNAT),
    /// the server and its port the reply's source (after any DNAT, as the forward hook sees them).
    var client: IPAddress { original.source }
    var server: IPAddress { reply?.source ?? original.destination }
    var serverPort: UInt16? { reply != nil ? reply?.sourcePort : original.destinationPort }
}

/// Either kind of event, for a reader that merges both sources into one queue.
public enum FlowEvent: Hashable, Sendable {
    case packet(PacketLogEvent)
    case conntrack(ConnectionEvent)

    public var time: Timestamp {
        switch self {
        case .packet(let event): return event.time
        case .conntrack(let event): return event.time
        }
    }
}

/// Which workload holds an address, as the agent's current snapshot says. Injected by the caller;
/// an address it does not know becomes a `network` peer.
public protocol EndpointResolver {
    func workload(for address: IPAddress) -> Workload?
}

/// A resolver over a fixed table, for the agent to rebuild from each snapshot and for tests.
public struct StaticEndpointResolver: EndpointResolver, Sendable {
    public var workloads: [IPAddress: Workload]
    public init(_ workloads: [IPAddress: Workload] = [:]) { self.workloads = workloads }
    public func workload(for address: IPAddress) -> Workload? { workloads[address] }
}
