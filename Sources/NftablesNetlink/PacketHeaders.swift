// The start of an IP packet as NFLOG copies it (the network header onward, cut to the copy
// range): addresses, transport protocol, ports or ICMP type and code, and the packet's length.
// Pure byte reading, no kernel: every field is bounds-checked, so a packet cut short anywhere
// yields what its bytes hold (a header chain cut inside an IPv6 extension header gives no ports),
// never a read past the buffer.
import NetworkAddress

/// What a flow log needs from the first bytes of an IPv4 or IPv6 packet.
public struct PacketHeaders: Hashable, Sendable {
    public let family: IPFamily
    public let source: IPAddress
    public let destination: IPAddress
    /// The transport protocol: the IPv4 protocol field, or the next header that ends the IPv6
    /// extension header chain (6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...).
    public let protocolNumber: UInt8
    /// For tcp, udp, udplite, sctp and dccp when their header is in the copied bytes.
    public let sourcePort: UInt16?
    public let destinationPort: UInt16?
    /// For icmp (IPv4) and icmpv6 (IPv6) when their header is in the copied bytes.
    public let icmpType: UInt8?
    public let icmpCode: UInt8?
    /// The whole packet's length as its IP header states it (IPv4 total length, IPv6 40 + payload
    /// length), not the copied part; the copied length for an IPv6 jumbogram (payload length 0).
    public let length: Int
    /// A fragment other than the first: it carries no transport header, hence no ports.
    public let isLaterFragment: Bool

    /// Transport protocols whose header starts with a 16-bit source and destination port.
    static let protocolsWithPorts: Set<UInt8> = [6, 17, 33, 132, 136]

    /// Reads `bytes` as an IP packet; nil when they do not start with a whole IPv4 or IPv6 header.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return nil }
        switch first >> 4 {
        case 4: self.init(ipv4: bytes)
        case 6: self.init(ipv6: bytes)
        default: return nil
        }
    }

    public init?(bytes: [UInt8]) {
        guard let parsed = bytes.withUnsafeBytes({ PacketHeaders($0) }) else { return nil }
        self = parsed
    }

    private init?(ipv4 bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 20 else { return nil }
        let headerLength = Int(bytes[0] & 0x0f) * 4
        guard headerLength >= 20, headerLength <= bytes.count,
              let source = IPAddress(bytes: Array(bytes[12..<16])),
              let destination = IPAddress(bytes: Array(bytes[16..<20])) else { return nil }
        let fragmentOffset = Self.be16(bytes, 6) & 0x1fff
        self.init(family: .ipv4, source: source, destination: destination, protocolNumber: bytes[9],
                  transportAt: headerLength, in: bytes, icmpProtocol: 1,
                  length: Int(Self.be16(bytes, 2)), isLaterFragment: fragmentOffset != 0)
    }

    private init?(ipv6 bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 40,
              let source = IPAddress(bytes: Array(bytes[8..<24])),
              let destination = IPAddress(bytes: Array(bytes[24..<40])) else { return nil }
        let payloadLength = Int(Self.be16(bytes, 4))
        let length = payloadLength == 0 ? bytes.count : 40 + payloadLength
        var nextHeader = bytes[6]
        var offset = 40
        var isLaterFragment = false
        // Extension headers, at most a handful in any real packet. A chain cut short by the copy
        // range, or longer than this walk, leaves no transport header.
        var transportOffset: Int?
        walk: for _ in 0..<8 {
            switch nextHeader {
            case 0, 43, 60, 135, 139, 140:  // hop-by-hop, routing, destination options, mobility, HIP, shim6
                guard offset + 2 <= bytes.count else { break walk }
                nextHeader = bytes[offset]
                offset += (Int(bytes[offset + 1]) + 1) * 8
            case 44:  // fragment
                guard offset + 8 <= bytes.count else { break walk }
                nextHeader = bytes[offset]
                isLaterFragment = Self.be16(bytes, offset + 2) & 0xfff8 != 0
                offset += 8
            case 51:  // authentication header: its length counts 4-byte units, minus 2
                guard offset + 2 <= bytes.count else { break walk }
                nextHeader = bytes[offset]
                offset += (Int(bytes[offset + 1]) + 2) * 4
            default:
                transportOffset = offset
                break walk
            }
        }
        self.init(family: .ipv6, source: source, destination: destination, protocolNumber: nextHeader,
                  transportAt: transportOffset, in: bytes, icmpProtocol: 58,
                  length: length, isLaterFragment: isLaterFragment)
    }

    private init(family: IPFamily, source: IPAddress, destination: IPAddress, protocolNumber: UInt8,
                 transportAt offset: Int?, in bytes: UnsafeRawBufferPointer, icmpProtocol: UInt8,
                 length: Int, isLaterFragment: Bool) {
        self.family = family
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.length = length
        self.isLaterFragment = isLaterFragment
        let transport = isLaterFragment ? nil : offset
        if let transport, Self.protocolsWithPorts.contains(protocolNumber), transport + 4 <= bytes.count {
            sourcePort = Self.be16(bytes, transport)
            destinationPort = Self.be16(bytes, transport + 2)
        } else {
            sourcePort = nil
            destinationPort = nil
        }
        if let transport, protocolNumber == icmpProtocol, transport + 2 <= bytes.count {
            icmpType = bytes[transport]
            icmpCode = bytes[transport + 1]
        } else {
            icmpType = nil
            icmpCode = nil
        }
    }

    /// The big-endian 16 bits at `offset`; the caller has checked that both bytes are there.
    private static func be16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
}
