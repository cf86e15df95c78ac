// One nf_tables transaction being assembled: NFNL_MSG_BATCH_BEGIN, the messages of every Change,
// NFNL_MSG_BATCH_END, back to back in one buffer that goes to the kernel in a single sendmsg.
// Each message has its own sequence number; `change(forSequence:)` maps a kernel answer back to
// the Change it belongs to.
import CNftnl
import Glibc

final class Batch {
    private(set) var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var length = 0
    /// Sequence number of BATCH_BEGIN; content message i has firstSequence + 1 + i.
    let firstSequence: UInt32
    /// For each content message, the index of the Change it encodes.
    private(set) var owners: [Int] = []

    init(firstSequence: UInt32, initialCapacity: Int = 64 * 1024) throws {
        guard let storage = malloc(initialCapacity) else { throw NftablesError.outOfMemory("malloc") }
        self.storage = storage
        self.capacity = initialCapacity
        self.firstSequence = firstSequence
    }

    deinit { free(storage) }

    var messageCount: Int { owners.count }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: length) }

    func sequence(ofMessage index: Int) -> UInt32 { firstSequence &+ 1 &+ UInt32(truncatingIfNeeded: index) }
    var endSequence: UInt32 { sequence(ofMessage: owners.count) }

    /// The Change a content message's sequence number belongs to, nil for BEGIN/END or strangers.
    func change(forSequence sequence: UInt32) -> Int? {
        let offset = Int(sequence &- firstSequence)
        guard offset >= 1, offset <= owners.count else { return nil }
        return owners[offset - 1]
    }

    func messageIndex(forSequence sequence: UInt32) -> Int? {
        let offset = Int(sequence &- firstSequence)
        guard offset >= 1, offset <= owners.count else { return nil }
        return offset - 1
    }

    func begin() throws {
        try reserve(256)
        let header = nftnl_batch_begin(cursor, firstSequence)
        try advance(header, reserved: 256)
    }

    func end() throws {
        try reserve(256)
        let header = nftnl_batch_end(cursor, endSequence)
        try advance(header, reserved: 256)
    }

    /// Appends one nf_tables message for Change `change`. `sizeBound` must bound the message's size:
    /// libnftnl writes without bounds checks, so the room is reserved before it writes.
    func append(_ type: nf_tables_msg_types, family: UInt32, flags: Int32, change: Int, sizeBound: Int,
                payload: (UnsafeMutablePointer<nlmsghdr>) throws -> Void) throws {
        try reserve(sizeBound)
        let sequence = self.sequence(ofMessage: owners.count)
        guard let header = nftnl_nlmsg_build_hdr(cursor, UInt16(type.rawValue), UInt16(truncatingIfNeeded: family),
                                                 UInt16(truncatingIfNeeded: flags), sequence) else {
            throw NftablesError.outOfMemory("nftnl_nlmsg_build_hdr")
        }
        try payload(header)
        owners.append(change)
        try advance(header, reserved: sizeBound)
    }

    private var cursor: UnsafeMutablePointer<CChar> {
        (storage + length).assumingMemoryBound(to: CChar.self)
    }

    private func reserve(_ room: Int) throws {
        guard length + room > capacity else { return }
        var newCapacity = capacity
        while length + room > newCapacity { newCapacity *= 2 }
        guard let grown = realloc(storage, newCapacity) else { throw NftablesError.outOfMemory("realloc(\(newCapacity))") }
        storage = grown
        capacity = newCapacity
    }

    private func advance(_ header: UnsafeMutablePointer<nlmsghdr>?, reserved: Int) throws {
        guard let header else { throw NftablesError.outOfMemory("nftnl batch header") }
        let messageLength = (Int(header.pointee.nlmsg_len) + 3) & ~3
        // A message larger than its reservation has already overwritten memory: stop at once.
        precondition(messageLength <= reserved, "netlink message of \(messageLength) bytes overran its \(reserved)-byte reservation")
        length += messageLength
    }
}
