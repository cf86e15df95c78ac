// ConntrackEventReader: connections starting and ending, from ctnetlink's event multicast groups,
// on a thread of the reader's own.
//
// Events are broadcast to every listener of the namespace; a listener whose receive buffer is
// full simply misses them, and its next recvmsg says ENOBUFS (counted as an overrun; how many were
// missed the protocol does not say). Only connections created after a listener joined carry the
// event extension the kernel needs to report their end (with the default
// net.netfilter.nf_conntrack_events=2), so start the reader before the traffic it should see.
import CNftnl
import Glibc

public final class ConntrackEventReader {
    public struct Configuration: Sendable, Equatable {
        /// Which events to receive: each is one multicast group (NFNLGRP_CONNTRACK_NEW, _UPDATE,
        /// _DESTROY). Updates are frequent (every TCP state change); flow accounting needs only
        /// new and destroy.
        public var kinds: Set<ConntrackEvent.Kind> = [.new, .destroy]
        /// The socket's receive buffer (SO_RCVBUFFORCE with CAP_NET_ADMIN, else up to
        /// net.core.rmem_max): how far the reader may fall behind before the kernel drops events.
        public var receiveBufferBytes: Int = 32 << 20
        /// How long the reader rests after reading what was queued, letting events collect in the
        /// receive buffer: one wakeup per rest instead of one per connection event (events reach
        /// `deliver` up to this much later; at 100,000 events a second, 50 ms is ~2 MB queued).
        public var pauseMilliseconds: Int32 = 50

        public init() {}
    }

    public let configuration: Configuration
    private let decoder: ConntrackEventDecoder
    private let loop: EventReaderLoop

    /// Opens a NETLINK_NETFILTER socket (inside the network namespace at `netnsPath`, if given)
    /// and joins the groups: events queue from here on, until `start()` reads them. `deliver` gets
    /// each datagram's events on the reader's thread and must not block for long (hand them to a
    /// `BoundedQueue`). `onError` hears of unexpected socket errors (the reader keeps going).
    public init(configuration: Configuration = Configuration(), netnsPath: String? = nil,
                onError: (@Sendable (Error) -> Void)? = nil,
                deliver: @escaping @Sendable ([ConntrackEvent]) -> Void) throws {
        guard !configuration.kinds.isEmpty else {
            throw NftablesError(kind: .invalidChange, operation: "conntrack event reader", detail: "no event kinds to receive")
        }
        self.configuration = configuration
        let socket = try NetlinkSocket(netnsPath: netnsPath)
        for kind in ConntrackEvent.Kind.allCases where configuration.kinds.contains(kind) {
            try socket.join(group: Self.group(kind).rawValue, what: "NFNLGRP_CONNTRACK_\(kind.rawValue.uppercased())")
        }
        socket.growBuffer(send: false, to: configuration.receiveBufferBytes)
        decoder = ConntrackEventDecoder(deliver: deliver, onError: onError)
        // Event datagrams hold one message each, well under a page; 64 KiB leaves ample room.
        loop = try EventReaderLoop(socket: socket, datagramBytes: 64 * 1024, handler: decoder,
                                   pauseMilliseconds: configuration.pauseMilliseconds, onError: onError)
    }

    deinit { loop.stop() }

    static func group(_ kind: ConntrackEvent.Kind) -> nfnetlink_groups {
        switch kind {
        case .new: NFNLGRP_CONNTRACK_NEW
        case .update: NFNLGRP_CONNTRACK_UPDATE
        case .destroy: NFNLGRP_CONNTRACK_DESTROY
        }
    }

    /// Starts reading on a thread of the reader's own. Calling it again, or after `stop()`, does nothing.
    public func start() throws {
        try loop.start()
    }

    /// Ends the thread and waits for it; no `deliver` call starts after this returns. Idempotent.
    public func stop() { loop.stop() }

    /// What the reader has read and lost so far.
    public var statistics: EventReaderStatistics { decoder.counters.snapshot }
}

final class ConntrackEventDecoder: EventDatagramHandler {
    let counters = EventReaderCounters()
    private let deliver: @Sendable ([ConntrackEvent]) -> Void
    private let onError: (@Sendable (Error) -> Void)?
    /// Events read since the last delivery (at most `deliveryBatch`).
    private var pending: [ConntrackEvent] = []
    static let deliveryBatch = 4096

    init(deliver: @escaping @Sendable ([ConntrackEvent]) -> Void, onError: (@Sendable (Error) -> Void)?) {
        self.deliver = deliver
        self.onError = onError
    }

    func handle(_ datagram: UnsafeRawBufferPointer) {
        var events: [ConntrackEvent] = []
        var unreadable = 0
        var firstError: Error?
        NetlinkDatagram.forEachMessage(datagram) { header, length in
            do {
                if let event = try ConntrackEventParser.event(header, length: length) { events.append(event) }
            } catch {
                unreadable += 1
                if firstError == nil { firstError = error }
            }
        }
        counters.update {
            $0.datagrams += 1
            $0.records += events.count
            $0.unreadable += unreadable
        }
        if let firstError { onError?(firstError) }
        pending += events
        if pending.count >= Self.deliveryBatch { flush() }
    }

    func flush() {
        guard !pending.isEmpty else { return }
        let events = pending
        pending.removeAll(keepingCapacity: true)
        deliver(events)
    }

    func overrun() {
        counters.update { $0.overruns += 1 }
    }
}
