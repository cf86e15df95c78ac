// ctnetlink's event messages (multicast groups NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY) read into
// ConntrackEvents. They are the entries of a table dump with a different message type: NEW with
// NLM_F_CREATE|NLM_F_EXCL for a connection the kernel just confirmed, NEW without them for an
// update, DELETE for one that ended (expired, closed, or was deleted). The tuples are read by the
// dump's parser (ConntrackParser.tuple); counters and timestamps are read here.
//
// Counters (CTA_COUNTERS_ORIG/REPLY) and timestamps (CTA_TIMESTAMP) come with DESTROY events only;
// counters only for connections created while net.netfilter.nf_conntrack_acct was 1 in their
// namespace (see ConntrackAccounting), timestamps only with net.netfilter.nf_conntrack_timestamp=1.
// An entry that expires is reported when the kernel's garbage collector reaps it, which on a
// quiet machine can be a minute after its timeout; a deleted one at once.
import CNftnl
import Glibc
import NetworkAddress

/// Packets and bytes of one direction of a connection.
public struct ConntrackCounters: Hashable, Sendable {
    public let packets: UInt64
    public let bytes: UInt64

    public init(packets: UInt64, bytes: UInt64) {
        self.packets = packets
        self.bytes = bytes
    }
}

/// One conntrack event: a connection started, changed or ended.
public struct ConntrackEvent: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case new, update, destroy
    }

    public let kind: Kind
    /// The connection: original tuple, reply addresses, zone.
    public let entry: ConntrackEntry
    /// The reply direction's ports (swapped original ports unless NAT changed them).
    public let replySourcePort: UInt16?
    public let replyDestinationPort: UInt16?
    /// The kernel's id of the entry (CTA_ID): the same in the NEW and DESTROY of one connection,
    /// reused only after the entry is gone.
    public let id: UInt32?
    /// Packets and bytes from the original source (CTA_COUNTERS_ORIG) and from the reply source
    /// (CTA_COUNTERS_REPLY): the connection's totals, in DESTROY events only (the kernel sends
    /// them with no other event), and only with accounting on.
    public let originalCounters: ConntrackCounters?
    public let replyCounters: ConntrackCounters?
    /// CTA_STATUS bits (IPS_*: 1<<1 seen reply, 1<<2 assured, ...), when sent.
    public let status: UInt32?
    /// CTA_MARK, when sent.
    public let mark: UInt32?
    /// When the connection started and ended, on the kernel's real-time clock, since the Unix
    /// epoch (CTA_TIMESTAMP; needs nf_conntrack_timestamp=1).
    public let start: Duration?
    public let stop: Duration?

    public init(kind: Kind, entry: ConntrackEntry, replySourcePort: UInt16?, replyDestinationPort: UInt16?,
                id: UInt32?, originalCounters: ConntrackCounters?, replyCounters: ConntrackCounters?,
                status: UInt32? = nil, mark: UInt32? = nil, start: Duration? = nil, stop: Duration? = nil) {
        self.kind = kind
        self.entry = entry
        self.replySourcePort = replySourcePort
        self.replyDestinationPort = replyDestinationPort
        self.id = id
        self.originalCounters = originalCounters
        self.replyCounters = replyCounters
        self.status = status
        self.mark = mark
        self.start = start
        self.stop = stop
    }

    /// `destroy tcp 198.18.1.2:40000 -> 198.18.2.2:80 id 123 orig 6/420 reply 4/300`.
    public var description: String {
        var text = "\(kind.rawValue) \(entry)"
        if let id { text += " id \(id)" }
        if let originalCounters { text += " orig \(originalCounters.packets)/\(originalCounters.bytes)" }
        if let replyCounters { text += " reply \(replyCounters.packets)/\(replyCounters.bytes)" }
        return text
    }
}

extension Ctnetlink {
    static func attribute(_ type: ctattr_counters) -> UInt16 { UInt16(type.rawValue) }
    static func attribute(_ type: ctattr_tstamp) -> UInt16 { UInt16(type.rawValue) }
}

extension NetlinkAttributes {
    /// A 64-bit value in network byte order.
    func be64(_ type: UInt16) -> UInt64? {
        guard let bytes = payload(type), bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

enum ConntrackEventParser {
    /// One message of a conntrack event socket; nil for anything that is not a conntrack event
    /// (another subsystem, an expectation, a control message). Throws for a malformed event.
    static func event(_ header: UnsafePointer<nlmsghdr>, length: Int) throws -> ConntrackEvent? {
        let type = header.pointee.nlmsg_type
        guard type >> 8 == UInt16(NFNL_SUBSYS_CTNETLINK) else { return nil }
        let kind: ConntrackEvent.Kind
        switch UInt32(type & 0xff) {
        case IPCTNL_MSG_CT_NEW.rawValue:
            let created = UInt16(NLM_F_CREATE | NLM_F_EXCL)
            kind = header.pointee.nlmsg_flags & created == created ? .new : .update
        case IPCTNL_MSG_CT_DELETE.rawValue:
            kind = .destroy
        default:
            return nil
        }
        let headerLength = MemoryLayout<nlmsghdr>.size + Ctnetlink.familyHeaderLength
        guard length >= headerLength else { throw malformed("an event too short for its nfgenmsg header") }
        let family: IPFamily
        switch Int32((UnsafeRawPointer(header) + MemoryLayout<nlmsghdr>.size).load(as: UInt8.self)) {
        case AF_INET: family = .ipv4
        case AF_INET6: family = .ipv6
        default: return nil
        }
        let attributes = NetlinkAttributes(start: UnsafeRawPointer(header) + headerLength, length: (length - headerLength) & ~3)
        guard let originalAttributes = attributes.nested(Ctnetlink.attribute(CTA_TUPLE_ORIG)) else {
            throw malformed("an event without CTA_TUPLE_ORIG")
        }
        let original = try ConntrackParser.tuple(originalAttributes, family: family, direction: "original")
        guard let replyAttributes = attributes.nested(Ctnetlink.attribute(CTA_TUPLE_REPLY)) else {
            throw malformed("an event without CTA_TUPLE_REPLY")
        }
        let reply = try ConntrackParser.tuple(replyAttributes, family: family, direction: "reply")
        let entry = ConntrackEntry(family: family, protocolNumber: original.protocolNumber,
                                   source: original.source, destination: original.destination,
                                   sourcePort: original.sourcePort, destinationPort: original.destinationPort,
                                   replySource: reply.source, replyDestination: reply.destination,
                                   zone: attributes.be16(Ctnetlink.attribute(CTA_ZONE)) ?? 0)
        let timestamps = attributes.nested(Ctnetlink.attribute(CTA_TIMESTAMP))
        return ConntrackEvent(
            kind: kind, entry: entry,
            replySourcePort: reply.sourcePort, replyDestinationPort: reply.destinationPort,
            id: attributes.be32(Ctnetlink.attribute(CTA_ID)),
            originalCounters: counters(attributes.nested(Ctnetlink.attribute(CTA_COUNTERS_ORIG))),
            replyCounters: counters(attributes.nested(Ctnetlink.attribute(CTA_COUNTERS_REPLY))),
            status: attributes.be32(Ctnetlink.attribute(CTA_STATUS)),
            mark: attributes.be32(Ctnetlink.attribute(CTA_MARK)),
            start: timestamps?.be64(Ctnetlink.attribute(CTA_TIMESTAMP_START)).map(nanoseconds),
            stop: timestamps?.be64(Ctnetlink.attribute(CTA_TIMESTAMP_STOP)).map(nanoseconds))
    }

    private static func counters(_ attributes: NetlinkAttributes?) -> ConntrackCounters? {
        guard let attributes,
              let packets = attributes.be64(Ctnetlink.attribute(CTA_COUNTERS_PACKETS)),
              let bytes = attributes.be64(Ctnetlink.attribute(CTA_COUNTERS_BYTES)) else { return nil }
        return ConntrackCounters(packets: packets, bytes: bytes)
    }

    private static func nanoseconds(_ value: UInt64) -> Duration {
        .nanoseconds(Int64(clamping: value))
    }

    static func malformed(_ what: String) -> NftablesError {
        NftablesError(kind: .protocolViolation, operation: "reading conntrack events", detail: "ctnetlink sent \(what)")
    }
}
