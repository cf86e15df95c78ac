// nfnetlink_log (NFNL_SUBSYS_ULOG) on the wire: the configuration request that binds a log group
// to a socket, and one logged packet (NFULNL_MSG_PACKET) read into a LogRecord.
//
// The kernel queues a group's packets in one buffer of `kernelBufferBytes` and sends it as a
// single datagram of many messages (NLM_F_MULTI, closed by NLMSG_DONE) when it holds
// `queueThreshold` packets, is full, or `flushTimeout` passed since the first. With
// NFULNL_CFG_F_SEQ every message carries the group's running sequence number (NFULA_SEQ), which
// is how lost messages are counted exactly: a datagram dropped for a full receive buffer leaves a
// gap.
import CNftnl
import Glibc
import NetworkAddress

/// One packet that matched an nftables `log group N` rule.
public struct LogRecord: Hashable, Sendable, CustomStringConvertible {
    /// The rule's `prefix` (NFULA_PREFIX), "" when it has none.
    public let prefix: String
    /// The NFLOG group the packet was logged to.
    public let group: UInt16
    public let family: IPFamily
    public let source: IPAddress
    public let destination: IPAddress
    /// The IP protocol number: 6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...
    public let protocolNumber: UInt8
    /// For tcp, udp, udplite, sctp and dccp (nil in later fragments).
    public let sourcePort: UInt16?
    public let destinationPort: UInt16?
    /// For icmp and icmpv6.
    public let icmpType: UInt8?
    public let icmpCode: UInt8?
    /// The interface the packet came in on (NFULA_IFINDEX_INDEV): nil in the output hook.
    public let inInterfaceIndex: UInt32?
    /// The interface it was going out of (NFULA_IFINDEX_OUTDEV): nil in prerouting and input.
    public let outInterfaceIndex: UInt32?
    /// The packet's full length from its IP header (not the copied part).
    public let length: Int
    /// When the packet was received, since the Unix epoch (NFULA_TIMESTAMP): nil when the kernel
    /// had not stamped it (nothing on the host asked for receive timestamps); use the time of
    /// reading then.
    public let timestamp: Duration?
    /// The netfilter hook (NF_INET_PRE_ROUTING 0, LOCAL_IN 1, FORWARD 2, LOCAL_OUT 3, POST_ROUTING 4).
    public let hook: UInt8?
    /// The packet mark (NFULA_MARK), when not 0.
    public let mark: UInt32?

    public init(prefix: String, group: UInt16, headers: PacketHeaders, inInterfaceIndex: UInt32?,
                outInterfaceIndex: UInt32?, timestamp: Duration?, hook: UInt8?, mark: UInt32?) {
        self.prefix = prefix
        self.group = group
        family = headers.family
        source = headers.source
        destination = headers.destination
        protocolNumber = headers.protocolNumber
        sourcePort = headers.sourcePort
        destinationPort = headers.destinationPort
        icmpType = headers.icmpType
        icmpCode = headers.icmpCode
        length = headers.length
        self.inInterfaceIndex = inInterfaceIndex
        self.outInterfaceIndex = outInterfaceIndex
        self.timestamp = timestamp
        self.hook = hook
        self.mark = mark
    }

    /// `"web-deny" tcp 198.18.1.2:40000 -> 198.18.2.2:80 len 60 in 3 out 4`.
    public var description: String {
        func endpoint(_ address: IPAddress, _ port: UInt16?) -> String {
            guard let port else { return "\(address)" }
            return family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
        }
        var text = "\"\(prefix)\" \(ConntrackEntry.protocolName(protocolNumber)) \(endpoint(source, sourcePort)) -> \(endpoint(destination, destinationPort))"
        if let icmpType { text += " type \(icmpType) code \(icmpCode ?? 0)" }
        text += " len \(length)"
        if let inInterfaceIndex { text += " in \(inInterfaceIndex)" }
        if let outInterfaceIndex { text += " out \(outInterfaceIndex)" }
        return text
    }
}

/// nfnetlink_log's numbers, with their C names.
enum Nflog {
    static func messageType(_ type: nfulnl_msg_types) -> UInt16 {
        UInt16(NFNL_SUBSYS_ULOG) << 8 | UInt16(type.rawValue)
    }

    static func attribute(_ type: nfulnl_attr_type) -> UInt16 { UInt16(type.rawValue) }
    static func attribute(_ type: nfulnl_attr_config) -> UInt16 { UInt16(type.rawValue) }

    /// Bounds of NFULA_CFG_NLBUFSIZ the kernel accepts (nfulnl_set_nlbufsiz: at least
    /// NLMSG_GOODSIZE, a page or two, at most 128 KiB).
    static let kernelBufferRange = 8192...131_072
}

// MARK: Configuration requests

enum NflogRequest {
    /// What a config request sets besides its command.
    struct Settings: Equatable {
        var copyRange: UInt32
        var kernelBufferBytes: UInt32
        /// In hundredths of a second; 0 would mean "never flush on time".
        var flushTimeoutHundredths: UInt32
        var queueThreshold: UInt32
        var flags: UInt16
    }

    /// The largest config request: header, nfgenmsg and all six attributes.
    static let maximumLength = 128

    /// NFULNL_MSG_CONFIG with NLM_F_ACK at `buffer` (at least `maximumLength` bytes): `command`
    /// (NFULNL_CFG_CMD_*) for `group` (PF_BIND/PF_UNBIND: for `family`), then `settings`, which
    /// the kernel applies to the group after the command. Returns the message's length.
    static func config(into buffer: UnsafeMutableRawBufferPointer, command: nfulnl_msg_config_cmds?,
                       family: Int32 = AF_UNSPEC, group: UInt16, settings: Settings?, sequence: UInt32) -> Int {
        precondition(buffer.count >= maximumLength, "NFLOG config request needs \(maximumLength) bytes")
        guard let base = buffer.baseAddress else { return 0 }
        memset(base, 0, maximumLength)
        let header: UnsafeMutablePointer<nlmsghdr> = mnl_nlmsg_put_header(base)
        header.pointee.nlmsg_type = Nflog.messageType(NFULNL_MSG_CONFIG)
        header.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_ACK)
        header.pointee.nlmsg_seq = sequence
        let familyHeader = mnl_nlmsg_put_extra_header(header, MemoryLayout<nfgenmsg>.size)
        familyHeader?.storeBytes(of: nfgenmsg(nfgen_family: UInt8(family), version: UInt8(NFNETLINK_V0),
                                              res_id: group.bigEndian), as: nfgenmsg.self)
        if let command {
            mnl_attr_put_u8(header, Nflog.attribute(NFULA_CFG_CMD), UInt8(command.rawValue))
        }
        if let settings {
            // struct nfulnl_msg_config_mode (packed): __be32 copy_range, __u8 copy_mode, __u8 _pad.
            let range = settings.copyRange.bigEndian
            let mode: [UInt8] = withUnsafeBytes(of: range) { Array($0) } + [UInt8(NFULNL_COPY_PACKET), 0]
            mode.withUnsafeBytes { mnl_attr_put(header, Nflog.attribute(NFULA_CFG_MODE), $0.count, $0.baseAddress) }
            mnl_attr_put_u32(header, Nflog.attribute(NFULA_CFG_NLBUFSIZ), settings.kernelBufferBytes.bigEndian)
            mnl_attr_put_u32(header, Nflog.attribute(NFULA_CFG_TIMEOUT), settings.flushTimeoutHundredths.bigEndian)
            mnl_attr_put_u32(header, Nflog.attribute(NFULA_CFG_QTHRESH), settings.queueThreshold.bigEndian)
            mnl_attr_put_u16(header, Nflog.attribute(NFULA_CFG_FLAGS), settings.flags.bigEndian)
        }
        return Int(header.pointee.nlmsg_len)
    }
}

// MARK: Logged packets

enum NflogParser {
    enum Message: Equatable {
        /// A logged packet, with its NFULA_SEQ when the group numbers its messages.
        case packet(LogRecord, sequence: UInt32?)
        /// A logged packet whose payload is not an IPv4 or IPv6 packet (or is missing), or a
        /// packet message too short for its headers.
        case unreadable(sequence: UInt32?)
        /// The answer to a request: errno 0 for an ack.
        case answer(sequence: UInt32, errno: Int32)
        /// NLMSG_DONE closing a batch, other subsystems, types this code does not know.
        case other
    }

    /// Reads one message of an NFLOG socket.
    static func message(_ header: UnsafePointer<nlmsghdr>, length: Int) -> Message {
        let type = header.pointee.nlmsg_type
        if type == UInt16(NLMSG_ERROR) {
            guard length >= MemoryLayout<nlmsghdr>.size + MemoryLayout<nlmsgerr>.size else { return .other }
            let answer = (UnsafeRawPointer(header) + MemoryLayout<nlmsghdr>.size).loadUnaligned(as: nlmsgerr.self)
            return .answer(sequence: header.pointee.nlmsg_seq, errno: -answer.error)
        }
        guard type == Nflog.messageType(NFULNL_MSG_PACKET) else { return .other }
        guard length >= MemoryLayout<nlmsghdr>.size + Ctnetlink.familyHeaderLength else { return .unreadable(sequence: nil) }
        let familyHeader = (UnsafeRawPointer(header) + MemoryLayout<nlmsghdr>.size).loadUnaligned(as: nfgenmsg.self)
        let group = UInt16(bigEndian: familyHeader.res_id)

        var prefix = ""
        var headers: PacketHeaders?
        var inInterface: UInt32?, outInterface: UInt32?, mark: UInt32?, sequence: UInt32?
        var hook: UInt8?
        var timestamp: Duration?
        NetlinkDatagram.forEachAttribute(of: header, length: length) { type, payload in
            switch type {
            case Nflog.attribute(NFULA_PREFIX):
                // NUL-terminated.
                let end = payload.firstIndex(of: 0) ?? payload.count
                prefix = String(decoding: UnsafeRawBufferPointer(rebasing: payload[..<end]), as: UTF8.self)
            case Nflog.attribute(NFULA_PAYLOAD):
                headers = PacketHeaders(payload)
            case Nflog.attribute(NFULA_IFINDEX_INDEV):
                inInterface = payload.bigEndianInteger(UInt32.self)
            case Nflog.attribute(NFULA_IFINDEX_OUTDEV):
                outInterface = payload.bigEndianInteger(UInt32.self)
            case Nflog.attribute(NFULA_MARK):
                mark = payload.bigEndianInteger(UInt32.self).flatMap { $0 == 0 ? nil : $0 }
            case Nflog.attribute(NFULA_SEQ):
                sequence = payload.bigEndianInteger(UInt32.self)
            case Nflog.attribute(NFULA_PACKET_HDR):
                // struct nfulnl_msg_packet_hdr: __be16 hw_protocol, __u8 hook, __u8 _pad.
                if payload.count >= 3 { hook = payload[2] }
            case Nflog.attribute(NFULA_TIMESTAMP):
                // struct nfulnl_msg_packet_timestamp: __be64 sec, __be64 usec.
                guard payload.count == 16,
                      let seconds = UnsafeRawBufferPointer(rebasing: payload[0..<8]).bigEndianInteger(UInt64.self),
                      let microseconds = UnsafeRawBufferPointer(rebasing: payload[8..<16]).bigEndianInteger(UInt64.self) else { break }
                timestamp = .seconds(Int64(clamping: seconds)) + .microseconds(Int64(clamping: microseconds))
            default:
                break
            }
        }
        guard let headers else { return .unreadable(sequence: sequence) }
        let record = LogRecord(prefix: prefix, group: group, headers: headers, inInterfaceIndex: inInterface,
                               outInterfaceIndex: outInterface, timestamp: timestamp, hook: hook, mark: mark)
        return .packet(record, sequence: sequence)
    }
}
