// The conntrack table through ctnetlink (NFNL_SUBSYS_CTNETLINK), on the same NETLINK_NETFILTER
// socket as nf_tables: list the entries, and delete those of given addresses (a quarantined
// workload's live connections).
//
// Deleting is dump, then delete: each address family's table is dumped completely first (a dump
// cut short by a receive-buffer overrun or marked inconsistent is started again), the matching
// entries are chosen, and only then are deletes sent, so a failed dump deletes nothing. Deletes
// go in datagrams of up to `deletesPerDatagram` messages, each acknowledged; an entry that expired
// or was deleted by someone else in between answers ENOENT and is not counted.
import CNftnl
import Glibc
import NetworkAddress

/// A ctnetlink connection. Not thread-safe: use one connection from one thread or actor.
public final class ConntrackConnection {
    static let dumpAttempts = 4
    static let deletesPerDatagram = 128
    static let requestTimeoutMilliseconds: Int32 = 10_000

    private let netnsPath: String?
    private(set) var socket: NetlinkSocket
    /// Receive buffer for every answer: dump datagrams are at most 32 KB.
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    /// Room for one datagram of requests.
    private let sendBuffer: UnsafeMutableRawBufferPointer
    private var nextSequence: UInt32

    /// Opens a NETLINK_NETFILTER socket for ctnetlink. With `netnsPath` (e.g. /var/run/netns/NAME),
    /// the socket is created inside that network namespace and sees its conntrack table; the
    /// process itself stays where it is.
    public init(netnsPath: String? = nil) throws {
        self.netnsPath = netnsPath
        socket = try NetlinkSocket(netnsPath: netnsPath)
        receiveBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 16)
        sendBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        nextSequence = UInt32(truncatingIfNeeded: time(nil))
    }

    deinit {
        receiveBuffer.deallocate()
        sendBuffer.deallocate()
    }

    /// Every conntrack entry, IPv4 then IPv6, in the kernel's order.
    public func entries() throws -> [ConntrackEntry] {
        try IPFamily.allCases.sorted().flatMap { try dump($0).map(\.entry) }
    }

    /// Deletes every entry, IPv4 and IPv6, whose original or reply source or destination is one of
    /// `addresses`, and returns how many the kernel deleted. Entries that vanish meanwhile are not
    /// counted and are no error. Throws before deleting anything when the table cannot be read.
    public func deleteEntries(involving addresses: Set<IPAddress>) throws -> Int {
        let families = Set(addresses.map(\.family)).sorted()
        var doomed: [DumpedConntrackEntry] = []
        for family in families {
            doomed += try dump(family).filter { $0.entry.involves(addresses) }
        }
        return try delete(doomed)
    }

    // MARK: Dumping

    func dump(_ family: IPFamily) throws -> [DumpedConntrackEntry] {
        try Self.repeatingCutShortDumps(attempts: Self.dumpAttempts, what: "dump of the \(family.rawValue) conntrack table") { attempt in
            if attempt > 0 {
                // On a fresh socket: the kernel may keep the broken dump pending on the old one, with
                // nothing queued to read that would let it finish, and refuse a new dump (EBUSY).
                // A bigger receive buffer makes another overrun less likely.
                socket = try NetlinkSocket(netnsPath: netnsPath)
                socket.growBuffer(send: false, to: (1 << attempt) * 1024 * 1024)
            }
            return try dumpOnce(family)
        }
    }

    /// Runs `dump` until it completes: again when it throws ENOBUFS (the kernel dropped part of
    /// the dump) or `DumpInterrupted` (the kernel marked it inconsistent), at most `attempts` times.
    static func repeatingCutShortDumps<T>(attempts: Int, what: String, _ dump: (_ attempt: Int) throws -> T) throws -> T {
        var cause = ""
        for attempt in 0..<attempts {
            do {
                return try dump(attempt)
            } catch let error as NftablesError where error.kind == .system && error.code == ENOBUFS {
                cause = "the receive buffer overran"
            } catch is DumpInterrupted {
                cause = "the kernel marked the dump inconsistent"
            }
        }
        throw NftablesError(kind: .protocolViolation, operation: what, code: ENOBUFS,
                            detail: "\(cause) in each of \(attempts) attempts; the table could not be read completely, try again")
    }

    private func dumpOnce(_ family: IPFamily) throws -> [DumpedConntrackEntry] {
        // The rest of an abandoned dump (and any stray ack) would answer this request.
        socket.discardPending(using: receiveBuffer)
        let sequence = takeSequence()
        let length = try ConntrackRequest.dump(into: sendBuffer, family: family, sequence: sequence)
        let what = "dump of the \(family.rawValue) conntrack table"
        try socket.send(UnsafeRawBufferPointer(start: sendBuffer.baseAddress, count: length), what: what)
        var entries: [DumpedConntrackEntry] = []
        try socket.readAnswers(sequence: sequence, dump: true, what: what, buffer: receiveBuffer,
                               timeoutMilliseconds: Self.requestTimeoutMilliseconds) { header in
            // The family filter is the kernel's; check anyway, a wrong family would mean wrong deletes.
            if let entry = try ConntrackParser.entry(header), entry.entry.family == family { entries.append(entry) }
        }
        return entries
    }

    // MARK: Deleting

    /// Deletes these dumped entries; returns how many the kernel deleted (ENOENT: already gone).
    func delete(_ entries: [DumpedConntrackEntry]) throws -> Int {
        guard !entries.isEmpty else { return 0 }
        socket.growBuffer(send: false, to: Self.deletesPerDatagram * NftablesConnection.receiveBytesPerAnswer + 256 * 1024)
        var deleted = 0
        var start = 0
        while start < entries.count {
            socket.discardPending(using: receiveBuffer)
            // As many deletes as fit one datagram.
            let firstSequence = peekSequence()
            var length = 0
            var end = start
            while end < entries.count, end - start < Self.deletesPerDatagram,
                  length + ConntrackRequest.deleteLength(entries[end]) <= sendBuffer.count {
                let room = UnsafeMutableRawBufferPointer(rebasing: sendBuffer[length...])
                length += try ConntrackRequest.delete(entries[end], into: room, sequence: firstSequence &+ UInt32(end - start))
                end += 1
            }
            guard end > start else {
                throw NftablesError(kind: .invalidChange, operation: "delete conntrack entry \(entries[start].entry)",
                                    detail: "the request does not fit \(sendBuffer.count) bytes")
            }
            consumeSequences(through: firstSequence &+ UInt32(end - start - 1))
            let batch = entries[start..<end]
            try socket.send(UnsafeRawBufferPointer(start: sendBuffer.baseAddress, count: length),
                            what: "\(batch.count) conntrack deletes")

            let answers = try collectAnswers(ConntrackDeleteAnswers(firstSequence: firstSequence, count: batch.count))
            var failure: (offset: Int, code: Int32)?
            for (offset, code) in answers.codes.enumerated() {
                switch code {
                case 0?: deleted += 1
                case ENOENT?, nil: break  // ENOENT: expired or deleted by someone else since the dump
                case let code?: if failure == nil { failure = (offset, code) }
                }
            }
            let notAttempted = entries.count - end
            if let failure {
                var detail = "\(deleted) entries were deleted, \(notAttempted) not attempted"
                if let message = answers.messages[failure.offset] { detail = message + "; " + detail }
                throw NftablesError(kind: .rejected, operation: "delete conntrack entry \(batch[batch.startIndex + failure.offset].entry)",
                                    code: failure.code, detail: detail)
            }
            if answers.lostAnswers || !answers.isComplete {
                throw NftablesError(kind: .protocolViolation, operation: "reading the answers to \(batch.count) conntrack deletes",
                                    code: answers.lostAnswers ? ENOBUFS : 0,
                                    detail: "the kernel answered \(answers.answeredCount) of \(batch.count); at least \(deleted) entries were deleted, \(notAttempted) not attempted: list the entries again")
            }
            start = end
        }
        return deleted
    }

    /// Reads the answer to every delete of one datagram. ctnetlink handles the datagram inside
    /// sendmsg, so every answer is queued when it returns; the wait covers only the unexpected.
    private func collectAnswers(_ answers: ConntrackDeleteAnswers) throws -> ConntrackDeleteAnswers {
        try socket.readAcknowledgements(into: receiveBuffer, recorder: answers, what: "the answers to conntrack deletes",
                                        waitMilliseconds: Self.requestTimeoutMilliseconds, maxWaits: nil) {
            answers.isComplete
        }
        return answers
    }

    // MARK: Sequence numbers

    /// The sequence number for the next message sent. Never 0: libmnl treats 0 as "any".
    private func peekSequence() -> UInt32 {
        if nextSequence == 0 { nextSequence = 1 }
        return nextSequence
    }

    private func consumeSequences(through last: UInt32) {
        nextSequence = last &+ 1
    }

    private func takeSequence() -> UInt32 {
        let sequence = peekSequence()
        consumeSequences(through: sequence)
        return sequence
    }
}

/// The answers (errno, 0 for an ack) to the deletes of one datagram, by sequence number.
final class ConntrackDeleteAnswers: AcknowledgementRecorder {
    let firstSequence: UInt32
    private(set) var codes: [Int32?]
    private(set) var messages: [String?]
    private(set) var answeredCount = 0
    var lostAnswers = false

    init(firstSequence: UInt32, count: Int) {
        self.firstSequence = firstSequence
        codes = [Int32?](repeating: nil, count: count)
        messages = [String?](repeating: nil, count: count)
    }

    var isComplete: Bool { answeredCount == codes.count }

    func record(_ header: UnsafePointer<nlmsghdr>) {
        let payloadLength = Int(header.pointee.nlmsg_len) - MemoryLayout<nlmsghdr>.size
        guard payloadLength >= MemoryLayout<nlmsgerr>.size else { return }
        let answer = (UnsafeRawPointer(header) + MemoryLayout<nlmsghdr>.size).loadUnaligned(as: nlmsgerr.self)
        let index = Int(header.pointee.nlmsg_seq &- firstSequence)
        guard index >= 0, index < codes.count, codes[index] == nil else { return }
        codes[index] = -answer.error
        messages[index] = BatchAnswers.extendedAckMessage(header, answer: answer)
        answeredCount += 1
    }
}
