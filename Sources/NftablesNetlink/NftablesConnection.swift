// The kernel side of Palisade: a netlink connection to nf_tables that commits [Change] as one
// atomic batch (Commit.swift) and reads a table back into model values (TableReader.swift).
import Glibc
import NftablesModel

/// A NETLINK_NETFILTER connection. Not thread-safe: use one connection from one thread or actor.
public final class NftablesConnection {
    let socket: NetlinkSocket
    /// Receive buffer for every answer. Dump datagrams are at most 32 KB; acks are capped.
    let receiveBuffer: UnsafeMutableRawBufferPointer
    private var nextSequence: UInt32

    /// Opens a NETLINK_NETFILTER socket. With `netnsPath` (e.g. /var/run/netns/NAME), the socket is
    /// created inside that network namespace (the calling thread enters it for the socket() call
    /// and returns, also on error), so the process itself stays where it is.
    public init(netnsPath: String? = nil) throws {
        socket = try NetlinkSocket(netnsPath: netnsPath)
        receiveBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 16)
        // Like nft: start from the clock, so answers to an earlier process's socket are not ours.
        nextSequence = UInt32(truncatingIfNeeded: time(nil))
    }

    deinit { receiveBuffer.deallocate() }

    /// The sequence number for the next message sent. Never 0: libmnl treats 0 as "any".
    func peekSequence() -> UInt32 {
        if nextSequence == 0 { nextSequence = 1 }
        return nextSequence
    }

    /// Marks every sequence number up to and including `last` as used.
    func consumeSequences(through last: UInt32) {
        nextSequence = last &+ 1
        if nextSequence == 0 { nextSequence = 1 }
    }
}
