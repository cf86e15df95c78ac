// ctnetlink on the wire: the dump request, one dumped entry parsed into a ConntrackEntry, and the
// delete request built from a dumped entry's original tuple. Plain nfnetlink messages (nlmsghdr,
// nfgenmsg, attributes), built with libmnl: libnftnl knows nothing about conntrack.
//
// A delete without a tuple is not an error to ctnetlink: it flushes the whole table of that
// family. The builder therefore refuses an entry without its original tuple.
import CNftnl
import Glibc
import NetworkAddress

/// One conntrack entry: the connection as its first packet saw it (the original tuple), and the
/// addresses of the reply direction, which differ from the swapped original under NAT.
public struct ConntrackEntry: Hashable, Sendable, CustomStringConvertible {
    public let family: IPFamily
    /// The IP protocol number: 6 tcp, 17 udp, 1 icmp, 58 icmpv6, 132 sctp, ...
    public let protocolNumber: UInt8
    public let source: IPAddress
    public let destination: IPAddress
    /// The original direction's ports; nil for protocols without ports (icmp, icmpv6, gre, ...).
    public let sourcePort: UInt16?
    public let destinationPort: UInt16?
    public let replySource: IPAddress
    public let replyDestination: IPAddress
    /// The conntrack zone, 0 for the default zone.
    public let zone: UInt16

    /// Whether any original or reply source or destination address is one of `addresses`.
    public func involves(_ addresses: Set<IPAddress>) -> Bool {
        addresses.contains(source) || addresses.contains(destination)
            || addresses.contains(replySource) || addresses.contains(replyDestination)
    }

    /// `tcp 198.18.0.1:40000 -> 198.18.0.2:5000`, then the reply addresses when NAT changed them
    /// and the zone when it is not 0.
    public var description: String {
        func endpoint(_ address: IPAddress, _ port: UInt16?) -> String {
            guard let port else { return "\(address)" }
            return family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
        }
        var text = "\(Self.protocolName(protocolNumber)) \(endpoint(source, sourcePort)) -> \(endpoint(destination, destinationPort))"
        if replySource != destination || replyDestination != source {
            text += " (reply \(replySource) -> \(replyDestination))"
        }
        if zone != 0 { text += " zone \(zone)" }
        return text
    }

    static func protocolName(_ number: UInt8) -> String {
        let names: [UInt8: String] = [1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite"]
        return names[number] ?? "proto \(number)"
    }
}

/// A dumped entry with what deleting exactly that entry takes.
struct DumpedConntrackEntry {
    let entry: ConntrackEntry
    /// The payload of CTA_TUPLE_ORIG as the kernel sent it: IP and protocol attributes (ports, or
    /// icmp id/type/code), and CTA_TUPLE_ZONE for directional zones. Sent back unchanged.
    let originalTuple: [UInt8]
    /// CTA_ZONE, when the kernel sent one.
    let zone: UInt16?
}

/// ctnetlink's numbers, with their C names.
enum Ctnetlink {
    static func messageType(_ type: cntl_msg_types) -> UInt16 {
        UInt16(NFNL_SUBSYS_CTNETLINK) << 8 | UInt16(type.rawValue)
    }

    static func attribute(_ type: ctattr_type) -> UInt16 { UInt16(type.rawValue) }
    static func attribute(_ type: ctattr_tuple) -> UInt16 { UInt16(type.rawValue) }
    static func attribute(_ type: ctattr_ip) -> UInt16 { UInt16(type.rawValue) }
    static func attribute(_ type: ctattr_l4proto) -> UInt16 { UInt16(type.rawValue) }

    static func addressFamily(_ family: IPFamily) -> UInt8 {
        UInt8(family == .ipv4 ? AF_INET : AF_INET6)
    }

    static var headerLength: Int { Int(palisade_mnl_nlmsg_hdrlen()) }
    static let familyHeaderLength = align(MemoryLayout<nfgenmsg>.size)

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }
}

// MARK: Building requests

enum ConntrackRequest {
    /// Writes a request header (nlmsghdr + nfgenmsg) at `buffer`, which must be zeroed and hold at
    /// least `Ctnetlink.headerLength + Ctnetlink.familyHeaderLength` bytes.
    static func putHeader(at buffer: UnsafeMutableRawPointer, type: cntl_msg_types, flags: Int32,
                          family: IPFamily, sequence: UInt32) -> UnsafeMutablePointer<nlmsghdr> {
        let header: UnsafeMutablePointer<nlmsghdr> = mnl_nlmsg_put_header(buffer)
        header.pointee.nlmsg_type = Ctnetlink.messageType(type)
        header.pointee.nlmsg_flags = UInt16(truncatingIfNeeded: Int32(NLM_F_REQUEST) | flags)
        header.pointee.nlmsg_seq = sequence
        let familyHeader = mnl_nlmsg_put_extra_header(header, MemoryLayout<nfgenmsg>.size)
        familyHeader?.storeBytes(of: nfgenmsg(nfgen_family: Ctnetlink.addressFamily(family),
                                              version: UInt8(NFNETLINK_V0), res_id: 0), as: nfgenmsg.self)
        return header
    }

    /// IPCTNL_MSG_CT_GET with NLM_F_DUMP for one address family: every entry of that family.
    static func dump(into buffer: UnsafeMutableRawBufferPointer, family: IPFamily, sequence: UInt32) throws -> Int {
        let length = Ctnetlink.headerLength + Ctnetlink.familyHeaderLength
        guard let base = buffer.baseAddress, buffer.count >= length else { throw noRoom(length, buffer) }
        memset(base, 0, length)
        let header = putHeader(at: base, type: IPCTNL_MSG_CT_GET, flags: Int32(NLM_F_DUMP),
                               family: family, sequence: sequence)
        return Int(header.pointee.nlmsg_len)
    }

    /// The size of the delete request for `entry`.
    static func deleteLength(_ entry: DumpedConntrackEntry) -> Int {
        Ctnetlink.headerLength + Ctnetlink.familyHeaderLength
            + Ctnetlink.align(MemoryLayout<nlattr>.size + entry.originalTuple.count)
            + (entry.zone == nil ? 0 : Ctnetlink.align(MemoryLayout<nlattr>.size + 2))
    }

    /// IPCTNL_MSG_CT_DELETE of the entry with this original tuple (and zone), with NLM_F_ACK, at
    /// `buffer`, which must hold `deleteLength(entry)` bytes. Returns the message's length.
    static func delete(_ entry: DumpedConntrackEntry, into buffer: UnsafeMutableRawBufferPointer,
                       sequence: UInt32) throws -> Int {
        // ctnetlink reads a delete without CTA_TUPLE_ORIG/REPLY as "flush the table".
        guard !entry.originalTuple.isEmpty else {
            throw NftablesError(kind: .invalidChange, operation: "delete conntrack entry \(entry.entry)",
                                detail: "no original tuple; refusing to send a delete that would flush the conntrack table")
        }
        let length = deleteLength(entry)
        guard let base = buffer.baseAddress, buffer.count >= length else { throw noRoom(length, buffer) }
        memset(base, 0, length)
        let header = putHeader(at: base, type: IPCTNL_MSG_CT_DELETE, flags: Int32(NLM_F_ACK),
                               family: entry.entry.family, sequence: sequence)
        entry.originalTuple.withUnsafeBytes { tuple in
            mnl_attr_put(header, Ctnetlink.attribute(CTA_TUPLE_ORIG) | UInt16(NLA_F_NESTED), tuple.count, tuple.baseAddress)
        }
        if let zone = entry.zone {
            mnl_attr_put_u16(header, Ctnetlink.attribute(CTA_ZONE), zone.bigEndian)
        }
        precondition(Int(header.pointee.nlmsg_len) == length, "conntrack delete of \(header.pointee.nlmsg_len) bytes, \(length) reserved")
        return length
    }

    private static func noRoom(_ length: Int, _ buffer: UnsafeMutableRawBufferPointer) -> NftablesError {
        NftablesError(kind: .invalidChange, operation: "building a ctnetlink request",
                      detail: "\(length) bytes do not fit the \(buffer.count)-byte buffer")
    }
}

// MARK: Parsing answers

/// The attributes of one attribute stream (a message payload or a nest), by type with the
/// NLA_F_NESTED and NLA_F_NET_BYTEORDER flags cleared. Valid while the message buffer is.
struct NetlinkAttributes {
    private var byType: [UInt16: UnsafePointer<nlattr>] = [:]

    init(start: UnsafeRawPointer, length: Int) {
        var remaining = Int32(clamping: length)
        var attribute = start.assumingMemoryBound(to: nlattr.self)
        while remaining > 0, mnl_attr_ok(attribute, remaining) {
            byType[mnl_attr_get_type(attribute)] = attribute
            remaining -= Int32(Ctnetlink.align(Int(attribute.pointee.nla_len)))
            attribute = UnsafePointer(mnl_attr_next(attribute))
        }
    }

    /// The attributes nested in `attribute`.
    init(nestedIn attribute: UnsafePointer<nlattr>) {
        self.init(start: mnl_attr_get_payload(attribute), length: Int(mnl_attr_get_payload_len(attribute)))
    }

    subscript(type: UInt16) -> UnsafePointer<nlattr>? { byType[type] }

    func payload(_ type: UInt16) -> [UInt8]? {
        guard let attribute = byType[type] else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: mnl_attr_get_payload(attribute),
                                              count: Int(mnl_attr_get_payload_len(attribute))))
    }

    func nested(_ type: UInt16) -> NetlinkAttributes? {
        byType[type].map { NetlinkAttributes(nestedIn: $0) }
    }

    func u8(_ type: UInt16) -> UInt8? {
        guard let bytes = payload(type), bytes.count == 1 else { return nil }
        return bytes[0]
    }

    /// A 16-bit value in network byte order.
    func be16(_ type: UInt16) -> UInt16? {
        guard let bytes = payload(type), bytes.count == 2 else { return nil }
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }
}

enum ConntrackParser {
    struct Tuple {
        let source: IPAddress
        let destination: IPAddress
        let protocolNumber: UInt8
        let sourcePort: UInt16?
        let destinationPort: UInt16?
    }

    /// One answer of a ctnetlink dump; nil for a message that is not a conntrack entry.
    static func entry(_ header: UnsafePointer<nlmsghdr>) throws -> DumpedConntrackEntry? {
        let type = header.pointee.nlmsg_type
        guard type >> 8 == UInt16(NFNL_SUBSYS_CTNETLINK), type & 0xff == UInt16(IPCTNL_MSG_CT_NEW.rawValue) else { return nil }
        let payloadLength = Int(header.pointee.nlmsg_len) - Ctnetlink.headerLength - Ctnetlink.familyHeaderLength
        guard payloadLength >= 0, let familyHeader = mnl_nlmsg_get_payload(header),
              let attributesStart = mnl_nlmsg_get_payload_offset(header, MemoryLayout<nfgenmsg>.size) else {
            throw malformed("a message too short for its nfgenmsg header")
        }
        let family: IPFamily
        switch Int32(familyHeader.load(as: nfgenmsg.self).nfgen_family) {
        case AF_INET: family = .ipv4
        case AF_INET6: family = .ipv6
        default: return nil
        }
        let attributes = NetlinkAttributes(start: attributesStart, length: payloadLength)
        guard let originalAttribute = attributes[Ctnetlink.attribute(CTA_TUPLE_ORIG)],
              let originalTuple = attributes.payload(Ctnetlink.attribute(CTA_TUPLE_ORIG)) else {
            throw malformed("an entry without CTA_TUPLE_ORIG")
        }
        let original = try tuple(NetlinkAttributes(nestedIn: originalAttribute), family: family, direction: "original")
        guard let replyAttributes = attributes.nested(Ctnetlink.attribute(CTA_TUPLE_REPLY)) else {
            throw malformed("an entry without CTA_TUPLE_REPLY")
        }
        let reply = try tuple(replyAttributes, family: family, direction: "reply")
        let zone = attributes.be16(Ctnetlink.attribute(CTA_ZONE))
        let entry = ConntrackEntry(family: family, protocolNumber: original.protocolNumber,
                                   source: original.source, destination: original.destination,
                                   sourcePort: original.sourcePort, destinationPort: original.destinationPort,
                                   replySource: reply.source, replyDestination: reply.destination, zone: zone ?? 0)
        return DumpedConntrackEntry(entry: entry, originalTuple: originalTuple, zone: zone)
    }

    static func tuple(_ attributes: NetlinkAttributes, family: IPFamily, direction: String) throws -> Tuple {
        guard let ip = attributes.nested(Ctnetlink.attribute(CTA_TUPLE_IP)) else {
            throw malformed("a \(direction) tuple without CTA_TUPLE_IP")
        }
        let (sourceType, destinationType) = family == .ipv4
            ? (Ctnetlink.attribute(CTA_IP_V4_SRC), Ctnetlink.attribute(CTA_IP_V4_DST))
            : (Ctnetlink.attribute(CTA_IP_V6_SRC), Ctnetlink.attribute(CTA_IP_V6_DST))
        guard let source = ip.payload(sourceType).flatMap(IPAddress.init(bytes:)), source.family == family,
              let destination = ip.payload(destinationType).flatMap(IPAddress.init(bytes:)), destination.family == family else {
            throw malformed("a \(direction) \(family.rawValue) tuple without both addresses")
        }
        guard let proto = attributes.nested(Ctnetlink.attribute(CTA_TUPLE_PROTO)),
              let number = proto.u8(Ctnetlink.attribute(CTA_PROTO_NUM)) else {
            throw malformed("a \(direction) tuple without CTA_PROTO_NUM")
        }
        return Tuple(source: source, destination: destination, protocolNumber: number,
                     sourcePort: proto.be16(Ctnetlink.attribute(CTA_PROTO_SRC_PORT)),
                     destinationPort: proto.be16(Ctnetlink.attribute(CTA_PROTO_DST_PORT)))
    }

    static func malformed(_ what: String) -> NftablesError {
        NftablesError(kind: .protocolViolation, operation: "reading the conntrack table", detail: "ctnetlink sent \(what)")
    }
}
