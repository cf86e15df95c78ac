// The kernel readers' parsing without a kernel: IP packets built by hand (IPv4 with options,
// fragments, IPv6 with extension headers, packets cut short by the copy range), NFLOG messages and
// conntrack events built the way the kernel builds them, sequence-gap counting, and the bounded
// queue. Needs no root.
import CNftnl
import Foundation
import Glibc
import NetworkAddress
import XCTest
@testable import NftablesNetlink

final class FlowMessageParsingTests: XCTestCase {
    private let clientV4 = IPAddress("198.18.1.2")!
    private let serverV4 = IPAddress("198.18.2.2")!
    private let clientV6 = IPAddress("2001:db8:1::2")!
    private let serverV6 = IPAddress("2001:db8:2::2")!

    // MARK: IP packets

    func testIPv4TCPAndUDPGiveAddressesProtocolPortsAndLength() throws {
        let tcp = try XCTUnwrap(PacketHeaders(bytes: Self.ipv4(protocolNumber: 6, source: clientV4, destination: serverV4,
                                                                transport: Self.ports(40_000, 443) + [UInt8](repeating: 0, count: 16),
                                                                totalLength: 60)))
        XCTAssertEqual(tcp.family, .ipv4)
        XCTAssertEqual(tcp.source, clientV4)
        XCTAssertEqual(tcp.destination, serverV4)
        XCTAssertEqual(tcp.protocolNumber, 6)
        XCTAssertEqual(tcp.sourcePort, 40_000)
        XCTAssertEqual(tcp.destinationPort, 443)
        XCTAssertNil(tcp.icmpType)
        XCTAssertEqual(tcp.length, 60, "the IP header's total length, not the bytes copied")
        XCTAssertFalse(tcp.isLaterFragment)

        // 8 bytes of options (IHL 7): the transport header starts after them.
        let udp = try XCTUnwrap(PacketHeaders(bytes: Self.ipv4(protocolNumber: 17, source: serverV4, destination: clientV4,
                                                                options: [UInt8](repeating: 1, count: 8),
                                                                transport: Self.ports(53, 5353) + [0, 8, 0, 0], totalLength: 1500)))
        XCTAssertEqual(udp.protocolNumber, 17)
        XCTAssertEqual(udp.sourcePort, 53)
        XCTAssertEqual(udp.destinationPort, 5353)
        XCTAssertEqual(udp.length, 1500)
    }

    func testIPv4ICMPAndFragmentsAndTruncatedHeaders() throws {
        let echo = try XCTUnwrap(PacketHeaders(bytes: Self.ipv4(protocolNumber: 1, source: clientV4, destination: serverV4,
                                                                 transport: [8, 0, 0xf7, 0xff, 0, 1, 0, 1], totalLength: 84)))
        XCTAssertEqual(echo.icmpType, 8)
        XCTAssertEqual(echo.icmpCode, 0)
        XCTAssertNil(echo.sourcePort)

        // A later fragment (offset 185 * 8) starts with payload bytes, not a UDP header.
        let fragment = try XCTUnwrap(PacketHeaders(bytes: Self.ipv4(protocolNumber: 17, source: clientV4, destination: serverV4,
                                                                     fragmentOffset: 185, transport: Self.ports(1, 2), totalLength: 100)))
        XCTAssertTrue(fragment.isLaterFragment)
        XCTAssertNil(fragment.sourcePort)
        XCTAssertNil(fragment.destinationPort)
        XCTAssertEqual(fragment.protocolNumber, 17)

        // Copied bytes end inside the TCP header's ports: addresses still, no ports.
        let cut = try XCTUnwrap(PacketHeaders(bytes: Self.ipv4(protocolNumber: 6, source: clientV4, destination: serverV4,
                                                                transport: [0x9c, 0x40, 0x01], totalLength: 60)))
        XCTAssertNil(cut.sourcePort)
        XCTAssertEqual(cut.source, clientV4)

        // Not an IP header at all, or cut inside it.
        XCTAssertNil(PacketHeaders(bytes: []))
        XCTAssertNil(PacketHeaders(bytes: [0x45] + [UInt8](repeating: 0, count: 10)))
        XCTAssertNil(PacketHeaders(bytes: [0x08, 0x06] + [UInt8](repeating: 0, count: 40)), "an ARP packet")
        var badHeaderLength = Self.ipv4(protocolNumber: 6, source: clientV4, destination: serverV4, transport: [], totalLength: 20)
        badHeaderLength[0] = 0x4f  // IHL 15: 60 bytes, more than there are
        XCTAssertNil(PacketHeaders(bytes: badHeaderLength))
        badHeaderLength[0] = 0x43  // IHL 3: shorter than the fixed header
        XCTAssertNil(PacketHeaders(bytes: badHeaderLength))
    }

    func testIPv6WalksExtensionHeadersToTheTransportHeader() throws {
        let udp = try XCTUnwrap(PacketHeaders(bytes: Self.ipv6(nextHeader: 17, source: clientV6, destination: serverV6,
                                                                rest: Self.ports(40_001, 53) + [0, 108, 0, 0], payloadLength: 108)))
        XCTAssertEqual(udp.family, .ipv6)
        XCTAssertEqual(udp.source, clientV6)
        XCTAssertEqual(udp.destination, serverV6)
        XCTAssertEqual(udp.protocolNumber, 17)
        XCTAssertEqual(udp.sourcePort, 40_001)
        XCTAssertEqual(udp.destinationPort, 53)
        XCTAssertEqual(udp.length, 148)

        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> first fragment -> TCP.
        let hopByHop: [UInt8] = [60, 0] + [UInt8](repeating: 0, count: 6)
        let destinationOptions: [UInt8] = [44, 1] + [UInt8](repeating: 0, count: 14)
        let firstFragment: [UInt8] = [6, 0, 0, 1, 0, 0, 0, 42]  // offset 0, more fragments
        let chained = try XCTUnwrap(PacketHeaders(bytes: Self.ipv6(nextHeader: 0, source: clientV6, destination: serverV6,
                                                                    rest: hopByHop + destinationOptions + firstFragment + Self.ports(2000, 22) + [0, 0, 0, 0],
                                                                    payloadLength: 1000)))
        XCTAssertEqual(chained.protocolNumber, 6)
        XCTAssertEqual(chained.sourcePort, 2000)
        XCTAssertEqual(chained.destinationPort, 22)
        XCTAssertFalse(chained.isLaterFragment)

        let laterFragment: [UInt8] = [17, 0, 0x05, 0xa8, 0, 0, 0, 42]  // offset 181 * 8
        let later = try XCTUnwrap(PacketHeaders(bytes: Self.ipv6(nextHeader: 44, source: clientV6, destination: serverV6,
                                                                  rest: laterFragment + Self.ports(1, 2), payloadLength: 500)))
        XCTAssertTrue(later.isLaterFragment)
        XCTAssertEqual(later.protocolNumber, 17)
        XCTAssertNil(later.sourcePort)

        // Authentication header: its length counts 4-byte units minus 2, here (1 + 2) * 4 = 12 bytes.
        let authentication: [UInt8] = [58, 1] + [UInt8](repeating: 0, count: 10)
        let echo = try XCTUnwrap(PacketHeaders(bytes: Self.ipv6(nextHeader: 51, source: clientV6, destination: serverV6,
                                                                 rest: authentication + [128, 0, 0, 0], payloadLength: 64)))
        XCTAssertEqual(echo.protocolNumber, 58)
        XCTAssertEqual(echo.icmpType, 128)
        XCTAssertEqual(echo.icmpCode, 0)

        // The copy range ends inside the extension header chain: no transport header.
        let cut = try XCTUnwrap(PacketHeaders(bytes: Self.ipv6(nextHeader: 0, source: clientV6, destination: serverV6,
                                                                rest: [60, 4, 0, 0], payloadLength: 200)))
        XCTAssertNil(cut.sourcePort)
        XCTAssertEqual(cut.destination, serverV6)

        XCTAssertNil(PacketHeaders(bytes: Array(Self.ipv6(nextHeader: 6, source: clientV6, destination: serverV6, rest: [], payloadLength: 0)[..<39])))
    }

    // MARK: NFLOG messages

    func testLoggedPacketMessageBecomesALogRecord() throws {
        let packet = Self.ipv4(protocolNumber: 17, source: clientV4, destination: serverV4,
                               transport: Self.ports(40_000, 7101) + [0, 108, 0, 0], totalLength: 128)
        let message = Self.nflogPacket(group: 7, family: AF_INET, prefix: "pal-udp", payload: packet,
                                       inInterface: 3, outInterface: 4, sequence: 41, timestamp: (1_700_000_000, 250_000))
        let parsed = message.withUnsafeBytes { bytes in
            NflogParser.message(bytes.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), length: bytes.count)
        }
        guard case .packet(let record, let sequence) = parsed else { return XCTFail("not a packet: \(parsed)") }
        XCTAssertEqual(sequence, 41)
        XCTAssertEqual(record.prefix, "pal-udp")
        XCTAssertEqual(record.group, 7)
        XCTAssertEqual(record.family, .ipv4)
        XCTAssertEqual(record.source, clientV4)
        XCTAssertEqual(record.destination, serverV4)
        XCTAssertEqual(record.protocolNumber, 17)
        XCTAssertEqual(record.sourcePort, 40_000)
        XCTAssertEqual(record.destinationPort, 7101)
        XCTAssertEqual(record.inInterfaceIndex, 3)
        XCTAssertEqual(record.outInterfaceIndex, 4)
        XCTAssertEqual(record.length, 128)
        XCTAssertEqual(record.hook, 2)
        XCTAssertNil(record.mark)
        XCTAssertEqual(record.timestamp, .seconds(1_700_000_000) + .milliseconds(250))
        XCTAssertEqual(record.description, "\"pal-udp\" udp 198.18.1.2:40000 -> 198.18.2.2:7101 len 128 in 3 out 4")

        // No payload (copy mode meta, or a netdev table's ARP): counted, not a record.
        let bare = Self.nflogPacket(group: 7, family: AF_INET, prefix: "x", payload: nil, inInterface: nil,
                                    outInterface: nil, sequence: 42, timestamp: nil)
        let unreadable = bare.withUnsafeBytes { NflogParser.message($0.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), length: $0.count) }
        XCTAssertEqual(unreadable, .unreadable(sequence: 42))
    }

    /// A batch datagram: messages back to back, NLMSG_DONE at the end, a gap in the sequence
    /// numbers counted as lost, and a second datagram continuing the count.
    func testDecoderCountsSequenceGapsAsLostMessages() throws {
        let delivered = LockedRecords()
        let decoder = NflogDecoder(deliver: { delivered.append($0) })
        func datagram(_ sequences: [UInt32]) -> [UInt8] {
            var bytes: [UInt8] = []
            for sequence in sequences {
                let packet = Self.ipv6(nextHeader: 6, source: clientV6, destination: serverV6,
                                       rest: Self.ports(40_000 + UInt16(sequence), 7100), payloadLength: 20)
                bytes += Self.nflogPacket(group: 1, family: AF_INET6, prefix: "p", payload: packet, inInterface: 2,
                                          outInterface: 3, sequence: sequence, timestamp: nil)
            }
            return bytes + Self.done()
        }
        datagram([0, 1, 2, 5, 6]).withUnsafeBytes { _ = decoder.handle($0, answerTo: nil) }
        datagram([7, 10]).withUnsafeBytes { _ = decoder.handle($0, answerTo: nil) }
        decoder.overrun()
        let statistics = decoder.counters.snapshot
        XCTAssertEqual(statistics.records, 7)
        XCTAssertEqual(statistics.datagrams, 2)
        XCTAssertEqual(statistics.lostMessages, 2 + 2)
        XCTAssertEqual(statistics.overruns, 1)
        XCTAssertEqual(delivered.records.map { $0.sourcePort }, [40_000, 40_001, 40_002, 40_005, 40_006, 40_007, 40_010])
    }

    func testConfigRequestCarriesCommandModeAndSettings() throws {
        var buffer = [UInt8](repeating: 0xee, count: NflogRequest.maximumLength)
        let settings = NflogRequest.Settings(copyRange: 128, kernelBufferBytes: 65_536, flushTimeoutHundredths: 5,
                                             queueThreshold: 256, flags: UInt16(NFULNL_CFG_F_SEQ))
        let length = buffer.withUnsafeMutableBytes {
            NflogRequest.config(into: $0, command: NFULNL_CFG_CMD_BIND, group: 300, settings: settings, sequence: 9)
        }
        let message = Array(buffer[..<length])
        // nlmsghdr 16 + nfgenmsg 4 + cmd 8 + mode 12 + nlbufsiz 8 + timeout 8 + qthresh 8 + flags 8.
        XCTAssertEqual(length, 16 + 4 + 8 + 12 + 8 + 8 + 8 + 8)
        XCTAssertEqual(message[4], 1)   // NFULNL_MSG_CONFIG
        XCTAssertEqual(message[5], 4)   // NFNL_SUBSYS_ULOG
        XCTAssertEqual(Array(message[16..<20]), [0, 0, 0x01, 0x2c], "AF_UNSPEC, version 0, group 300 big-endian")
        XCTAssertEqual(Array(message[20..<28]), [5, 0, 1, 0, 1, 0, 0, 0], "NFULA_CFG_CMD BIND")
        XCTAssertEqual(Array(message[28..<40]), [10, 0, 2, 0, 0, 0, 0, 128, 2, 0, 0, 0], "NFULA_CFG_MODE range 128, COPY_PACKET")
        XCTAssertEqual(Array(message[40..<48]), [8, 0, 3, 0, 0, 1, 0, 0], "NFULA_CFG_NLBUFSIZ 65536")
        XCTAssertEqual(Array(message[48..<56]), [8, 0, 4, 0, 0, 0, 0, 5], "NFULA_CFG_TIMEOUT 5/100 s")
        XCTAssertEqual(Array(message[56..<64]), [8, 0, 5, 0, 0, 0, 1, 0], "NFULA_CFG_QTHRESH 256")
        XCTAssertEqual(Array(message[64..<72]), [6, 0, 6, 0, 0, 1, 0, 0], "NFULA_CFG_FLAGS SEQ")

        var configuration = NflogReader.Configuration(group: 1)
        configuration.flushTimeout = .milliseconds(50)
        XCTAssertEqual(configuration.flushTimeoutHundredths, 5)
        configuration.flushTimeout = .zero
        XCTAssertEqual(configuration.flushTimeoutHundredths, 1, "0 would mean: never flush on time")
        configuration.flushTimeout = .seconds(2)
        XCTAssertEqual(configuration.flushTimeoutHundredths, 200)
    }

    // MARK: Conntrack events

    func testDestroyEventCarriesTuplesIdAndCounters() throws {
        var message = [UInt8](repeating: 0, count: 1024)
        let event = try message.withUnsafeMutableBytes { buffer -> ConntrackEvent? in
            let header = ConntrackRequest.putHeader(at: buffer.baseAddress!, type: IPCTNL_MSG_CT_DELETE, flags: 0, family: .ipv4, sequence: 0)
            func putTuple(_ type: ctattr_type, source: IPAddress, destination: IPAddress, ports: (UInt16, UInt16)) {
                let tuple = mnl_attr_nest_start(header, Ctnetlink.attribute(type))
                let ip = mnl_attr_nest_start(header, Ctnetlink.attribute(CTA_TUPLE_IP))
                mnl_attr_put(header, Ctnetlink.attribute(CTA_IP_V4_SRC), 4, source.bytes)
                mnl_attr_put(header, Ctnetlink.attribute(CTA_IP_V4_DST), 4, destination.bytes)
                mnl_attr_nest_end(header, ip)
                let proto = mnl_attr_nest_start(header, Ctnetlink.attribute(CTA_TUPLE_PROTO))
                mnl_attr_put_u8(header, Ctnetlink.attribute(CTA_PROTO_NUM), 6)
                mnl_attr_put_u16(header, Ctnetlink.attribute(CTA_PROTO_SRC_PORT), ports.0.bigEndian)
                mnl_attr_put_u16(header, Ctnetlink.attribute(CTA_PROTO_DST_PORT), ports.1.bigEndian)
                mnl_attr_nest_end(header, proto)
                mnl_attr_nest_end(header, tuple)
            }
            func putCounters(_ type: ctattr_type, packets: UInt64, bytes: UInt64) {
                let nest = mnl_attr_nest_start(header, Ctnetlink.attribute(type))
                mnl_attr_put_u64(header, Ctnetlink.attribute(CTA_COUNTERS_PACKETS), packets.bigEndian)
                mnl_attr_put_u64(header, Ctnetlink.attribute(CTA_COUNTERS_BYTES), bytes.bigEndian)
                mnl_attr_nest_end(header, nest)
            }
            putTuple(CTA_TUPLE_ORIG, source: clientV4, destination: serverV4, ports: (40_000, 7200))
            putTuple(CTA_TUPLE_REPLY, source: serverV4, destination: clientV4, ports: (7200, 40_000))
            mnl_attr_put_u32(header, Ctnetlink.attribute(CTA_ID), UInt32(0xdead_beef).bigEndian)
            putCounters(CTA_COUNTERS_ORIG, packets: 6, bytes: 1_372)
            putCounters(CTA_COUNTERS_REPLY, packets: 5, bytes: 1_300)
            return try ConntrackEventParser.event(header, length: Int(header.pointee.nlmsg_len))
        }
        let destroy = try XCTUnwrap(event)
        XCTAssertEqual(destroy.kind, .destroy)
        XCTAssertEqual(destroy.entry.description, "tcp 198.18.1.2:40000 -> 198.18.2.2:7200")
        XCTAssertEqual(destroy.replySourcePort, 7200)
        XCTAssertEqual(destroy.replyDestinationPort, 40_000)
        XCTAssertEqual(destroy.id, 0xdead_beef)
        XCTAssertEqual(destroy.originalCounters, ConntrackCounters(packets: 6, bytes: 1_372))
        XCTAssertEqual(destroy.replyCounters, ConntrackCounters(packets: 5, bytes: 1_300))
        XCTAssertEqual(destroy.description, "destroy tcp 198.18.1.2:40000 -> 198.18.2.2:7200 id 3735928559 orig 6/1372 reply 5/1300")

        // NEW with CREATE|EXCL is a new connection, without them an update; no tuple is an error.
        for (flags, kind) in [(NLM_F_CREATE | NLM_F_EXCL, ConntrackEvent.Kind.new), (0, .update)] {
            var bytes = [UInt8](repeating: 0, count: 256)
            let parsed = try bytes.withUnsafeMutableBytes { buffer -> ConntrackEvent? in
                let header = ConntrackRequest.putHeader(at: buffer.baseAddress!, type: IPCTNL_MSG_CT_NEW, flags: flags, family: .ipv6, sequence: 0)
                for type in [CTA_TUPLE_ORIG, CTA_TUPLE_REPLY] {
                    let tuple = mnl_attr_nest_start(header, Ctnetlink.attribute(type))
                    let ip = mnl_attr_nest_start(header, Ctnetlink.attribute(CTA_TUPLE_IP))
                    mnl_attr_put(header, Ctnetlink.attribute(CTA_IP_V6_SRC), 16, clientV6.bytes)
                    mnl_attr_put(header, Ctnetlink.attribute(CTA_IP_V6_DST), 16, serverV6.bytes)
                    mnl_attr_nest_end(header, ip)
                    let proto = mnl_attr_nest_start(header, Ctnetlink.attribute(CTA_TUPLE_PROTO))
                    mnl_attr_put_u8(header, Ctnetlink.attribute(CTA_PROTO_NUM), 58)
                    mnl_attr_nest_end(header, proto)
                    mnl_attr_nest_end(header, tuple)
                }
                return try ConntrackEventParser.event(header, length: Int(header.pointee.nlmsg_len))
            }
            XCTAssertEqual(parsed?.kind, kind)
            XCTAssertNil(parsed?.originalCounters)
            XCTAssertNil(parsed?.entry.sourcePort)
        }
        var tupleless = [UInt8](repeating: 0, count: 64)
        XCTAssertThrowsError(try tupleless.withUnsafeMutableBytes { buffer in
            let header = ConntrackRequest.putHeader(at: buffer.baseAddress!, type: IPCTNL_MSG_CT_DELETE, flags: 0, family: .ipv4, sequence: 0)
            return try ConntrackEventParser.event(header, length: Int(header.pointee.nlmsg_len))
        })
    }

    // MARK: The bounded queue

    func testBoundedQueueDropsAndCountsWhatDoesNotFit() {
        let queue = BoundedQueue<Int>(capacity: 4)
        XCTAssertEqual(queue.offer(1...3), 0)
        XCTAssertEqual(queue.offer(4...6), 2)
        XCTAssertEqual(queue.count, 4)
        XCTAssertEqual(queue.dropped, 2)
        XCTAssertEqual(queue.take(maximum: 3), [1, 2, 3])
        XCTAssertEqual(queue.offer([7, 8, 9]), 0)
        XCTAssertEqual(queue.take(), [4, 7, 8, 9])
        XCTAssertEqual(queue.take(timeoutMilliseconds: 20), [], "an empty queue times out")

        // A waiting consumer wakes for a producer on another thread, and for close().
        let done = expectation(description: "taken")
        DispatchQueue.global().async {
            XCTAssertEqual(queue.take(timeoutMilliseconds: 5_000), [10])
            XCTAssertEqual(queue.take(), [], "close() wakes a consumer waiting without a timeout")
            done.fulfill()
        }
        usleep(50_000)
        queue.offer([10])
        usleep(50_000)
        queue.close()
        wait(for: [done], timeout: 5)
        XCTAssertEqual(queue.offer([11]), 1, "a closed queue takes nothing")
        XCTAssertEqual(queue.dropped, 3)
    }

    // MARK: Building packets and messages

    static func ports(_ source: UInt16, _ destination: UInt16) -> [UInt8] {
        [UInt8(source >> 8), UInt8(source & 0xff), UInt8(destination >> 8), UInt8(destination & 0xff)]
    }

    static func ipv4(protocolNumber: UInt8, source: IPAddress, destination: IPAddress, options: [UInt8] = [],
                     fragmentOffset: UInt16 = 0, transport: [UInt8], totalLength: UInt16) -> [UInt8] {
        let headerWords = UInt8(5 + options.count / 4)
        return [0x40 | headerWords, 0, UInt8(totalLength >> 8), UInt8(totalLength & 0xff), 0x12, 0x34,
                UInt8(fragmentOffset >> 8), UInt8(fragmentOffset & 0xff), 64, protocolNumber, 0, 0]
            + source.bytes + destination.bytes + options + transport
    }

    static func ipv6(nextHeader: UInt8, source: IPAddress, destination: IPAddress, rest: [UInt8], payloadLength: UInt16) -> [UInt8] {
        [0x60, 0, 0, 0, UInt8(payloadLength >> 8), UInt8(payloadLength & 0xff), nextHeader, 64]
            + source.bytes + destination.bytes + rest
    }

    /// One NFULNL_MSG_PACKET as nfnetlink_log builds it (attributes in the kernel's order).
    static func nflogPacket(group: UInt16, family: Int32, prefix: String, payload: [UInt8]?, inInterface: UInt32?,
                            outInterface: UInt32?, sequence: UInt32?, timestamp: (UInt64, UInt64)?) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let length = buffer.withUnsafeMutableBytes { bytes -> Int in
            let header: UnsafeMutablePointer<nlmsghdr> = mnl_nlmsg_put_header(bytes.baseAddress)
            header.pointee.nlmsg_type = UInt16(NFNL_SUBSYS_ULOG) << 8 | UInt16(NFULNL_MSG_PACKET.rawValue)
            header.pointee.nlmsg_flags = UInt16(NLM_F_MULTI)
            let familyHeader = mnl_nlmsg_put_extra_header(header, MemoryLayout<nfgenmsg>.size)
            familyHeader?.storeBytes(of: nfgenmsg(nfgen_family: UInt8(family), version: 0, res_id: group.bigEndian), as: nfgenmsg.self)
            let packetHeader: [UInt8] = [family == AF_INET ? 0x08 : 0x86, family == AF_INET ? 0x00 : 0xdd, 2, 0]  // hook FORWARD
            packetHeader.withUnsafeBytes { mnl_attr_put(header, UInt16(NFULA_PACKET_HDR.rawValue), 4, $0.baseAddress) }
            mnl_attr_put_u32(header, UInt16(NFULA_MARK.rawValue), 0)
            if let timestamp {
                let bytes = withUnsafeBytes(of: timestamp.0.bigEndian) { Array($0) } + withUnsafeBytes(of: timestamp.1.bigEndian) { Array($0) }
                bytes.withUnsafeBytes { mnl_attr_put(header, UInt16(NFULA_TIMESTAMP.rawValue), 16, $0.baseAddress) }
            }
            if let inInterface { mnl_attr_put_u32(header, UInt16(NFULA_IFINDEX_INDEV.rawValue), inInterface.bigEndian) }
            if let outInterface { mnl_attr_put_u32(header, UInt16(NFULA_IFINDEX_OUTDEV.rawValue), outInterface.bigEndian) }
            if let payload {
                payload.withUnsafeBytes { mnl_attr_put(header, UInt16(NFULA_PAYLOAD.rawValue), $0.count, $0.baseAddress) }
            }
            mnl_attr_put_strz(header, UInt16(NFULA_PREFIX.rawValue), prefix)
            if let sequence { mnl_attr_put_u32(header, UInt16(NFULA_SEQ.rawValue), sequence.bigEndian) }
            return Int(header.pointee.nlmsg_len)
        }
        return Array(buffer[..<length])
    }

    static func done() -> [UInt8] {
        var header = nlmsghdr(nlmsg_len: 20, nlmsg_type: UInt16(NLMSG_DONE), nlmsg_flags: UInt16(NLM_F_MULTI), nlmsg_seq: 0, nlmsg_pid: 0)
        return withUnsafeBytes(of: &header) { Array($0) } + [0, 0, 0, 0]
    }
}

/// Records delivered on the reader's thread, read on the test's.
final class LockedRecords: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [LogRecord] = []

    func append(_ records: [LogRecord]) {
        lock.lock()
        stored += records
        lock.unlock()
    }

    var records: [LogRecord] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}
