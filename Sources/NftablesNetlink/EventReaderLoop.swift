// The thread behind the kernel event readers (NFLOG, conntrack events): it waits on one netlink
// socket, reads every queued datagram, hands each to a handler that turns its messages into
// records, and keeps going through everything but `stop()`.
//
// With a pause, the thread rests that long after each drain while the socket's buffer collects
// what comes next: conntrack sends one datagram per connection event, and a wakeup of this thread
// (and of the records' consumer) per event takes CPU from the very packets being counted. The
// handler delivers once per drain (`flush`), not once per datagram.
//
// A reader that falls behind does not make the kernel wait: once the socket's receive buffer is
// full the kernel drops what it would have queued and the next recvmsg fails with ENOBUFS. That is
// counted (an overrun) and reading goes on, so memory is bounded by the receive buffer, the one
// datagram buffer here, and whatever the handler's consumer holds.
import CNftnl
import Glibc

/// How much a reader has read and lost, since it was created.
public struct EventReaderStatistics: Sendable, Equatable, CustomStringConvertible {
    /// Datagrams received from the kernel.
    public var datagrams = 0
    /// Records handed to the consumer.
    public var records = 0
    /// recvmsg failures with ENOBUFS: each time the kernel dropped at least one message because
    /// the receive buffer was full.
    public var overruns = 0
    /// Messages known to be lost: for NFLOG, the gaps in the instance's sequence numbers (exact,
    /// whatever the cause). 0 where the protocol gives no way to count them (conntrack events:
    /// see `overruns`).
    public var lostMessages = 0
    /// Messages read but not turned into records: malformed, or not an IPv4/IPv6 packet.
    public var unreadable = 0

    public init() {}

    public var description: String {
        "\(records) records in \(datagrams) datagrams, \(overruns) overruns, \(lostMessages) lost, \(unreadable) unreadable"
    }
}

/// Statistics shared between the reader thread, which adds to them once per datagram, and anyone
/// asking.
final class EventReaderCounters: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var statistics = EventReaderStatistics()

    init() {
        lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func update(_ change: (inout EventReaderStatistics) -> Void) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        change(&statistics)
    }

    var snapshot: EventReaderStatistics {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return statistics
    }
}

/// Turns the datagrams of one socket into records. Called from one thread at a time.
protocol EventDatagramHandler: AnyObject {
    func handle(_ datagram: UnsafeRawBufferPointer)
    /// The end of a drain: deliver what `handle` collected.
    func flush()
    /// The kernel dropped messages for a full receive buffer (recvmsg said ENOBUFS).
    func overrun()
}

/// A thread reading one netlink socket until stopped.
final class EventReaderLoop {
    let socket: NetlinkSocket
    private let buffer: UnsafeMutableRawBufferPointer
    private let handler: EventDatagramHandler
    private let onError: (@Sendable (Error) -> Void)?
    private let thread: SocketThread
    private let pauseMilliseconds: Int32

    /// `datagramBytes` must hold the largest datagram the kernel sends on this socket; a larger
    /// one is lost (and reported to `onError`). `pauseMilliseconds`: the rest after each drain.
    init(socket: NetlinkSocket, datagramBytes: Int, handler: EventDatagramHandler, pauseMilliseconds: Int32 = 0,
         onError: (@Sendable (Error) -> Void)?) throws {
        thread = try SocketThread()
        self.pauseMilliseconds = pauseMilliseconds
        self.socket = socket
        self.handler = handler
        self.onError = onError
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: datagramBytes, alignment: 16)
    }

    deinit {
        stop()
        buffer.deallocate()
    }

    /// Starts the thread. Calling it again, or after `stop()`, does nothing.
    func start() throws {
        try thread.start { [self] in run() }
    }

    /// Ends the thread and waits for it: no handler call starts after this returns (unless called
    /// from the handler's own consumer, which then is the last call). Idempotent.
    func stop() { thread.stop() }

    private var isStopped: Bool { thread.isStopped }

    private func run() {
        while !isStopped {
            switch thread.wait(for: socket.fd) {
            case .stopped: return
            case .failed: reportError(NftablesError.system("poll"))
            case .readable, .timeout:
                drain()
                handler.flush()
                if pauseMilliseconds > 0, thread.pause(milliseconds: pauseMilliseconds) == .stopped { return }
            }
        }
    }

    /// Reads every queued datagram (and stops early only for `stop()`).
    private func drain() {
        while !isStopped {
            let received: NetlinkSocket.Received
            do {
                received = try socket.receive(into: buffer, wait: false)
            } catch let error as NftablesError where error.code == ENOBUFS {
                handler.overrun()
                continue
            } catch let error as NftablesError where error.kind == .protocolViolation {
                // A datagram larger than the buffer: it is gone, the next ones are fine.
                onError?(error)
                continue
            } catch {
                reportError(error)
                return
            }
            guard case .bytes(let count) = received else { return }
            handler.handle(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
        }
    }

    private func reportError(_ error: Error) {
        onError?(error)
        // Never spin on a persistent error.
        usleep(100_000)
    }
}

/// The messages of one datagram, walked by hand with every length checked against the datagram
/// (libmnl's mnl_nlmsg_ok trusts nlmsg_len values past 2 GB).
enum NetlinkDatagram {
    static func forEachMessage(_ datagram: UnsafeRawBufferPointer, _ body: (UnsafePointer<nlmsghdr>, Int) -> Void) {
        guard let base = datagram.baseAddress else { return }
        let headerSize = MemoryLayout<nlmsghdr>.size
        var offset = 0
        while datagram.count - offset >= headerSize {
            let length = Int(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            guard length >= headerSize, length <= datagram.count - offset else { return }
            body((base + offset).assumingMemoryBound(to: nlmsghdr.self), length)
            offset += Ctnetlink.align(length)
        }
    }

    /// The attributes after a message's nlmsghdr and nfgenmsg, one at a time: type (flags
    /// cleared) and payload. Stops at the first attribute that does not fit.
    static func forEachAttribute(of header: UnsafePointer<nlmsghdr>, length: Int,
                                 _ body: (UInt16, UnsafeRawBufferPointer) -> Void) {
        let start = MemoryLayout<nlmsghdr>.size + Ctnetlink.familyHeaderLength
        forEachAttribute(in: UnsafeRawBufferPointer(start: UnsafeRawPointer(header), count: length), from: start, body)
    }

    static func forEachAttribute(in bytes: UnsafeRawBufferPointer, from start: Int,
                                 _ body: (UInt16, UnsafeRawBufferPointer) -> Void) {
        guard let base = bytes.baseAddress else { return }
        var offset = start
        while bytes.count - offset >= 4 {
            let attributeLength = Int(base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = base.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & ~UInt16(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
            guard attributeLength >= 4, attributeLength <= bytes.count - offset else { return }
            body(type, UnsafeRawBufferPointer(start: base + offset + 4, count: attributeLength - 4))
            offset += Ctnetlink.align(attributeLength)
        }
    }
}

extension NetlinkSocket {
    /// Joins a multicast group of this netlink family.
    func join(group: UInt32, what: String) throws {
        var group = Int32(bitPattern: group)
        guard setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            let code = palisadeErrno()
            throw NftablesError.system("setsockopt(NETLINK_ADD_MEMBERSHIP, \(what))", code: code,
                                       detail: code == EPERM ? "joining needs CAP_NET_ADMIN in the socket's network namespace" : nil)
        }
    }
}

extension UnsafeRawBufferPointer {
    /// The big-endian (network order) integer of exactly `count` bytes; nil for a payload of
    /// another size.
    func bigEndianInteger<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type) -> T? {
        guard count == MemoryLayout<T>.size else { return nil }
        return reduce(T.zero) { $0 << 8 | T($1) }
    }
}
