// TableMonitor: nf_tables change notifications (multicast group NFNLGRP_NFTABLES) for one table.
//
// Every committed transaction is announced to the group as the notifications of the objects it
// changed (NEWTABLE, DELCHAIN, NEWRULE, DELSETELEM, ...), each carrying its family in the nfgenmsg
// header and its table's name as attribute 1 (NFTA_{TABLE_NAME,CHAIN,RULE,SET,SET_ELEM_LIST,
// OBJ,FLOWTABLE}_TABLE all are 1), followed by one NEWGEN that closes the transaction. Every one
// of these messages has nlmsg_pid set to the netlink port id of the socket that committed, and
// NEWGEN also carries NFTA_GEN_PROC_PID, the committing process. So "did someone else touch our
// table" is: some message of the transaction named it, and the NEWGEN's port id (or pid) is not
// the agent's own.
//
// Notifications that did not fit the receive buffer are dropped by the kernel and the next
// recvmsg fails with ENOBUFS: then anything may have changed, and the monitor says so.
import CNftnl
import Glibc
import NftablesModel

extension NftablesConnection {
    /// The netlink port id of this connection's socket: the nlmsg_pid of the change notifications
    /// of every transaction it commits (so a `TableMonitor` can skip the agent's own changes).
    public var portID: UInt32 { socket.portID }
}

/// Watches one nf_tables table for changes made by anyone but the given sockets or process, on a
/// background thread of its own. `onChange` runs on that thread, once per foreign transaction that
/// touched the table (and once whenever notifications were lost); keep it short (hand off to a queue).
public final class TableMonitor {
    public let family: TableFamily
    public let table: String
    /// Transactions committed by sockets with these port ids (see `NftablesConnection.portID`) are
    /// not reported.
    public let ignoredPortIDs: Set<UInt32>
    /// Transactions committed by this process (NFTA_GEN_PROC_PID) are not reported.
    public let ignoredProcessID: Int32?

    private let socket: NetlinkSocket
    private let buffer: UnsafeMutableRawBufferPointer
    private let onChange: @Sendable () -> Void
    private let onError: (@Sendable (Error) -> Void)?
    /// The self-pipe that wakes the thread for `stop()`: [read end, write end].
    private let thread: SocketThread

    /// How long a transaction's notifications may go without their NEWGEN before the monitor
    /// reports them anyway (NEWGEN normally follows at once; this only guards against a kernel
    /// that sends object notifications outside a transaction).
    static let missingGenerationMilliseconds: Int32 = 200

    /// Opens a NETLINK_NETFILTER socket (inside the network namespace at `netnsPath`, e.g.
    /// /var/run/netns/NAME, if given) and joins NFNLGRP_NFTABLES. Notifications queue from here on;
    /// `start()` begins reading them. `receiveBufferBytes` bounds how many notifications can wait
    /// (the agent's own large batches produce many): past it they are lost, which is reported as a
    /// change. `onError` hears of unexpected socket errors (the monitor keeps going).
    public init(family: TableFamily = .inet, table: String, netnsPath: String? = nil,
                ignoringPortIDs: Set<UInt32> = [], ignoringProcessID: Int32? = nil,
                receiveBufferBytes: Int = 8 << 20,
                onError: (@Sendable (Error) -> Void)? = nil,
                onChange: @escaping @Sendable () -> Void) throws {
        self.family = family
        self.table = table
        self.ignoredPortIDs = ignoringPortIDs
        self.ignoredProcessID = ignoringProcessID
        self.onChange = onChange
        self.onError = onError
        socket = try NetlinkSocket(netnsPath: netnsPath)
        var group = Int32(NFNLGRP_NFTABLES.rawValue)
        guard setsockopt(socket.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw NftablesError.system("setsockopt(NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)")
        }
        Self.setReceiveBuffer(socket, bytes: receiveBufferBytes)
        // A notification datagram holds at most a few pages (the kernel packs them up to
        // NLMSG_GOODSIZE), but one large element message can be up to 64 KB plus headers.
        thread = try SocketThread()
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
    }

    deinit {
        stop()
        buffer.deallocate()
    }

    /// Starts the background thread. Calling it again, or after `stop()`, does nothing.
    public func start() throws {
        try thread.start { [self] in run() }
    }

    /// Ends the thread and waits for it; no `onChange` call starts after this returns (unless
    /// called from `onChange` itself, which then is the last one). Idempotent.
    public func stop() { thread.stop() }

    private var isStopped: Bool { thread.isStopped }

    // MARK: The thread

    /// What the notifications read so far say about the transaction in progress.
    struct Transaction {
        /// A message of the transaction named the watched table.
        var touched = false
        /// Parsing it failed somewhere: assume it touched the table.
        var uncertain = false
    }

    private func run() {
        var transaction = Transaction()
        while !isStopped {
            let pending = transaction.touched || transaction.uncertain
            switch thread.wait(for: socket.fd, timeoutMilliseconds: pending ? Self.missingGenerationMilliseconds : -1) {
            case .stopped:
                return
            case .failed:
                reportError(NftablesError.system("poll"))
            case .timeout:
                // Object notifications without their NEWGEN: report them rather than sit on them.
                transaction = Transaction()
                notify()
            case .readable:
                drain(&transaction)
            }
        }
    }

    /// Reads every queued datagram.
    private func drain(_ transaction: inout Transaction) {
        while !isStopped {
            let received: NetlinkSocket.Received
            do {
                received = try socket.receive(into: buffer, wait: false)
            } catch let error as NftablesError where error.code == ENOBUFS || error.kind == .protocolViolation {
                // Notifications were lost (or one was cut short): something may have changed.
                transaction = Transaction()
                notify()
                continue
            } catch {
                reportError(error)
                return
            }
            guard case .bytes(let count) = received else { return }
            let reports = Self.process(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count),
                                       transaction: &transaction, family: family, table: table,
                                       ignoredPortIDs: ignoredPortIDs, ignoredProcessID: ignoredProcessID)
            for _ in 0..<reports { notify() }
        }
    }

    private func notify() {
        guard !isStopped else { return }
        onChange()
    }

    private func reportError(_ error: Error) {
        onError?(error)
        // Never spin on a persistent error; the caller's periodic resync still catches drift.
        usleep(1_000_000)
    }

    /// Feeds one datagram's messages to `transaction`; returns how many foreign transactions that
    /// touched the table ended in it. Tolerates anything: unknown types are skipped, a malformed
    /// message makes its transaction count as touching the table.
    static func process(_ datagram: UnsafeRawBufferPointer, transaction: inout Transaction,
                        family: TableFamily, table: String,
                        ignoredPortIDs: Set<UInt32>, ignoredProcessID: Int32?) -> Int {
        guard let base = datagram.baseAddress else { return 0 }
        var reports = 0
        // Walked by hand rather than with mnl_nlmsg_ok/next: those trust nlmsg_len values of 2 GB
        // and more (compared as int, they are negative) and read a header past a short buffer.
        let headerSize = MemoryLayout<nlmsghdr>.size
        let familyHeaderSize = Ctnetlink.familyHeaderLength
        var offset = 0
        while datagram.count - offset >= headerSize {
            let length = Int(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            guard length >= headerSize, length <= datagram.count - offset else { break }
            let header = (base + offset).assumingMemoryBound(to: nlmsghdr.self)
            defer { offset += Ctnetlink.align(length) }
            let type = header.pointee.nlmsg_type
            // Control messages (NOOP, ERROR, DONE), other subsystems: not a change.
            guard type >= UInt16(NLMSG_MIN_TYPE), type >> 8 == UInt16(NFNL_SUBSYS_NFTABLES) else { continue }
            let message = UInt32(type & 0xff)
            // The attributes, cut to whole 4-byte units (an attribute header is 4 bytes) so that
            // mnl_attr_ok never reads past the message.
            let attributesLength = (length - headerSize - familyHeaderSize) & ~3
            let familyHeader = UnsafeRawPointer(header) + headerSize
            let attributesStart = familyHeader + familyHeaderSize
            if message == NFT_MSG_NEWGEN.rawValue {
                var processID: Int32?
                if attributesLength > 0 {
                    let attributes = NetlinkAttributes(start: attributesStart, length: attributesLength)
                    processID = attributes.be32(UInt16(NFTA_GEN_PROC_PID.rawValue)).map { Int32(bitPattern: $0) }
                }
                let ours = ignoredPortIDs.contains(header.pointee.nlmsg_pid)
                    || (ignoredProcessID != nil && processID == ignoredProcessID)
                if (transaction.touched || transaction.uncertain) && !ours { reports += 1 }
                transaction = Transaction()
            } else if objectMessages.contains(message) {
                guard length >= headerSize + familyHeaderSize else {
                    transaction.uncertain = true
                    continue
                }
                let messageFamily = UInt32(familyHeader.load(as: UInt8.self))
                guard messageFamily == family.nfproto else { continue }
                let attributes = NetlinkAttributes(start: attributesStart, length: max(attributesLength, 0))
                if let name = attributes.string(tableAttribute) {
                    if name == table { transaction.touched = true }
                } else {
                    transaction.uncertain = true
                }
            }
            // Anything else of nf_tables (TRACE, GET* answers, types newer than this code): not a change.
        }
        return reports
    }

    /// NFTA_{TABLE_NAME,CHAIN_TABLE,RULE_TABLE,SET_TABLE,SET_ELEM_LIST_TABLE,OBJ_TABLE,FLOWTABLE_TABLE}.
    static let tableAttribute: UInt16 = 1

    /// The notifications of changed objects. The DESTROY* types (kernel 6.3+, not in every
    /// installed header) by number: 26 table, 27 chain, 28 rule, 29 set, 30 set element, 31 object,
    /// 32 flowtable.
    static let objectMessages: Set<UInt32> = {
        var types: Set<UInt32> = [
            NFT_MSG_NEWTABLE.rawValue, NFT_MSG_DELTABLE.rawValue,
            NFT_MSG_NEWCHAIN.rawValue, NFT_MSG_DELCHAIN.rawValue,
            NFT_MSG_NEWRULE.rawValue, NFT_MSG_DELRULE.rawValue,
            NFT_MSG_NEWSET.rawValue, NFT_MSG_DELSET.rawValue,
            NFT_MSG_NEWSETELEM.rawValue, NFT_MSG_DELSETELEM.rawValue,
            NFT_MSG_NEWOBJ.rawValue, NFT_MSG_DELOBJ.rawValue,
            NFT_MSG_NEWFLOWTABLE.rawValue, NFT_MSG_DELFLOWTABLE.rawValue,
        ]
        types.formUnion(26...32)
        return types
    }()

    private static func setReceiveBuffer(_ socket: NetlinkSocket, bytes: Int) {
        var request = Int32(clamping: max(bytes / 2, 1))
        let size = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(socket.fd, SOL_SOCKET, SO_RCVBUFFORCE, &request, size) != 0 {
            _ = setsockopt(socket.fd, SOL_SOCKET, SO_RCVBUF, &request, size)
        }
    }
}

extension NetlinkAttributes {
    /// A 32-bit value in network byte order.
    func be32(_ type: UInt16) -> UInt32? {
        guard let bytes = payload(type), bytes.count == 4 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A NUL-terminated string attribute.
    func string(_ type: UInt16) -> String? {
        guard var bytes = payload(type) else { return nil }
        if let end = bytes.firstIndex(of: 0) { bytes.removeSubrange(end...) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
