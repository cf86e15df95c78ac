// NflogReader: the packets nftables rules log with `log group N prefix "..."`, read from
// nfnetlink_log on a thread of the reader's own, as LogRecords.
//
// One socket binds one group of one network namespace; a group has at most one socket (the
// kernel answers EPERM to a second). The kernel copies only the first `copyRange` bytes of each
// packet (IP and transport headers) and sends packets in batches; the socket's receive buffer
// holds what the reader has not read yet, and what does not fit is dropped by the kernel and
// counted here (`statistics.lostMessages`, exact thanks to the group's sequence numbers).
import CNftnl
import Glibc

public final class NflogReader {
    public struct Configuration: Sendable, Equatable {
        /// The NFLOG group (`log group N`), 0-65535.
        public var group: UInt16
        /// Bytes of each packet the kernel copies, from the IP header on: 128 covers IPv4 with
        /// options or IPv6 with a few extension headers, plus the transport header.
        public var copyRange: UInt32 = 128
        /// A batch goes out when it holds this many packets...
        public var queueThreshold: UInt32 = 256
        /// ...or when its first packet waited this long (rounded to 1/100 s, at least 10 ms).
        public var flushTimeout: Duration = .milliseconds(50)
        /// The size of the kernel's batch buffer (NFULA_CFG_NLBUFSIZ), 8 KiB-128 KiB: a datagram
        /// is at most this large.
        public var kernelBufferBytes: Int = 64 * 1024
        /// The socket's receive buffer (SO_RCVBUFFORCE with CAP_NET_ADMIN, else up to
        /// net.core.rmem_max): how far the reader may fall behind before the kernel drops batches.
        public var receiveBufferBytes: Int = 32 << 20
        /// Also send NFULNL_CFG_CMD_PF_UNBIND and PF_BIND for AF_INET and AF_INET6 first, as
        /// libnetfilter_log's users do for kernels before 2.6.x/3.x. Off by default: nftables'
        /// `log group` picks nfnetlink_log by type on every kernel that has nftables, and
        /// PF_UNBIND would displace a logger someone else bound in the namespace.
        public var bindProtocolFamilies = false

        public init(group: UInt16) { self.group = group }

        var flushTimeoutHundredths: UInt32 {
            let (seconds, attoseconds) = flushTimeout.components
            let hundredths = seconds * 100 + attoseconds / 10_000_000_000_000_000
            return UInt32(clamping: max(hundredths, 1))
        }
    }

    public let configuration: Configuration
    private let decoder: NflogDecoder
    private let loop: EventReaderLoop
    private var nextSequence = UInt32(truncatingIfNeeded: time(nil)) | 1

    static let requestTimeoutMilliseconds: Int32 = 5_000

    /// Opens a NETLINK_NETFILTER socket (inside the network namespace at `netnsPath`, e.g.
    /// /var/run/netns/NAME, if given) and binds the group to it: packets are logged to this reader
    /// from here on, and queue in the receive buffer until `start()`. `deliver` gets each
    /// datagram's records, on the reader's thread, and must not block for long (hand them to a
    /// `BoundedQueue`); for packets logged while the group is being bound it is already called
    /// here, on the caller's thread. `onError` hears of unexpected socket errors (the reader keeps
    /// going). Throws when the group cannot be bound (EPERM: another socket has it).
    public init(configuration: Configuration, netnsPath: String? = nil,
                onError: (@Sendable (Error) -> Void)? = nil,
                deliver: @escaping @Sendable ([LogRecord]) -> Void) throws {
        guard Nflog.kernelBufferRange.contains(configuration.kernelBufferBytes) else {
            throw NftablesError(kind: .invalidChange, operation: "NFLOG group \(configuration.group)",
                                detail: "kernelBufferBytes \(configuration.kernelBufferBytes) is outside \(Nflog.kernelBufferRange)")
        }
        self.configuration = configuration
        let socket = try NetlinkSocket(netnsPath: netnsPath)
        socket.growBuffer(send: false, to: configuration.receiveBufferBytes)
        decoder = NflogDecoder(deliver: deliver)
        // Room for the largest batch, and for one packet message beyond it (the kernel sends a
        // packet that does not fit an empty batch buffer on its own).
        loop = try EventReaderLoop(socket: socket, datagramBytes: configuration.kernelBufferBytes + 128 * 1024,
                                   handler: decoder, onError: onError)
        try bind()
    }

    deinit { loop.stop() }

    /// Starts reading on a thread of the reader's own. Calling it again, or after `stop()`, does nothing.
    public func start() throws {
        try loop.start()
    }

    /// Ends the thread and waits for it; no `deliver` call starts after this returns. The group
    /// stays bound until the reader is released. Idempotent.
    public func stop() { loop.stop() }

    /// What the reader has read and lost so far.
    public var statistics: EventReaderStatistics { decoder.counters.snapshot }

    // MARK: Binding the group

    private func bind() throws {
        let group = configuration.group
        if configuration.bindProtocolFamilies {
            for family in [AF_INET, AF_INET6] {
                try configure(NFULNL_CFG_CMD_PF_UNBIND, family: family, settings: nil,
                              what: "NFULNL_CFG_CMD_PF_UNBIND for address family \(family)")
                try configure(NFULNL_CFG_CMD_PF_BIND, family: family, settings: nil,
                              what: "NFULNL_CFG_CMD_PF_BIND for address family \(family)")
            }
        }
        let settings = NflogRequest.Settings(
            copyRange: configuration.copyRange, kernelBufferBytes: UInt32(configuration.kernelBufferBytes),
            flushTimeoutHundredths: configuration.flushTimeoutHundredths,
            queueThreshold: max(configuration.queueThreshold, 1), flags: UInt16(NFULNL_CFG_F_SEQ))
        try configure(NFULNL_CFG_CMD_BIND, family: AF_UNSPEC, settings: settings, what: "bind NFLOG group \(group)")
    }

    /// Sends one config request and waits for its ack. Packets that arrive meanwhile (the group
    /// is live from the moment it is bound) are read as usual.
    private func configure(_ command: nfulnl_msg_config_cmds, family: Int32, settings: NflogRequest.Settings?,
                           what: String) throws {
        let sequence = nextSequence
        nextSequence = nextSequence &+ 1 == 0 ? 1 : nextSequence &+ 1
        var request = [UInt8](repeating: 0, count: NflogRequest.maximumLength)
        try request.withUnsafeMutableBytes { buffer in
            let length = NflogRequest.config(into: buffer, command: command, family: family,
                                             group: configuration.group, settings: settings, sequence: sequence)
            try loop.socket.send(UnsafeRawBufferPointer(rebasing: buffer[..<length]), what: what)
        }
        var answer: Int32?
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: configuration.kernelBufferBytes + 128 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while answer == nil {
            guard try loop.socket.waitReadable(milliseconds: Self.requestTimeoutMilliseconds) else {
                throw NftablesError(kind: .protocolViolation, operation: what,
                                    detail: "no answer from the kernel within \(Self.requestTimeoutMilliseconds / 1000) s")
            }
            let received: NetlinkSocket.Received
            do {
                received = try loop.socket.receive(into: buffer, wait: false)
            } catch let error as NftablesError where error.code == ENOBUFS {
                // Packets were dropped; the ack, sent as a reply, is not.
                decoder.overrun()
                continue
            }
            guard case .bytes(let count) = received else { continue }
            answer = decoder.handle(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count), answerTo: sequence)
        }
        guard let code = answer, code != 0 else { return }
        throw NftablesError(kind: .rejected, operation: what, code: code, detail: Self.explain(code, group: configuration.group))
    }

    private static func explain(_ code: Int32, group: UInt16) -> String? {
        switch code {
        // nfnetlink_log answers EPERM both to a group bound by another socket and to a process
        // without CAP_NET_ADMIN.
        case EPERM: return "another socket in this network namespace has NFLOG group \(group) (another reader, ulogd?), or this process lacks CAP_NET_ADMIN there"
        case ENOENT, EOPNOTSUPP, EPROTONOSUPPORT: return "nfnetlink_log is not available: load the nfnetlink_log module"
        default: return nil
        }
    }
}

/// The reader thread's side: datagrams to records, sequence gaps to lost counts.
final class NflogDecoder: EventDatagramHandler {
    let counters = EventReaderCounters()
    private let deliver: @Sendable ([LogRecord]) -> Void
    /// The sequence number the next message should carry: a freshly bound group counts from 0.
    private var expectedSequence: UInt32? = 0

    init(deliver: @escaping @Sendable ([LogRecord]) -> Void) {
        self.deliver = deliver
    }

    func handle(_ datagram: UnsafeRawBufferPointer) {
        _ = handle(datagram, answerTo: nil)
    }

    /// The kernel already batches NFLOG messages (queue threshold, flush timeout): each datagram's
    /// records go out as they come.
    func flush() {}

    /// Reads one datagram; returns the errno of the answer to `answerTo` if it holds that answer.
    func handle(_ datagram: UnsafeRawBufferPointer, answerTo request: UInt32?) -> Int32? {
        var records: [LogRecord] = []
        var unreadable = 0
        var lost = 0
        var answer: Int32?
        NetlinkDatagram.forEachMessage(datagram) { header, length in
            switch NflogParser.message(header, length: length) {
            case .packet(let record, let sequence):
                lost += account(sequence)
                records.append(record)
            case .unreadable(let sequence):
                lost += account(sequence)
                unreadable += 1
            case .answer(let sequence, let code):
                if sequence == request { answer = code }
            case .other:
                break
            }
        }
        counters.update {
            $0.datagrams += 1
            $0.records += records.count
            $0.unreadable += unreadable
            $0.lostMessages += lost
        }
        if !records.isEmpty { deliver(records) }
        return answer
    }

    func overrun() {
        counters.update { $0.overruns += 1 }
    }

    /// Messages skipped between the last sequence number seen and `sequence`.
    private func account(_ sequence: UInt32?) -> Int {
        guard let sequence else { return 0 }
        defer { expectedSequence = sequence &+ 1 }
        guard let expected = expectedSequence else { return 0 }
        let gap = sequence &- expected
        // A number behind the expected one (gap "negative"): the kernel restarted the group's count
        // (the instance was recreated); nothing to count.
        return gap < 1 << 31 ? Int(gap) : 0
    }
}
