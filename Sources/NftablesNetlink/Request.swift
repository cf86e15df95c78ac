// One request and its answers: a GET (single answer) or a dump (answers until NLMSG_DONE), each
// answer message handed to a Swift closure through mnl_cb_run and an Unmanaged context box.
import CNftnl
import Glibc

/// A dump the kernel marked inconsistent (NLM_F_DUMP_INTR): the ruleset changed while dumping.
struct DumpInterrupted: Error {}

/// Carries the per-message closure (and the first error it threw) through libmnl's `void *data`.
final class MessageHandlerBox {
    let handle: (UnsafePointer<nlmsghdr>) throws -> Void
    var error: Error?
    init(_ handle: @escaping (UnsafePointer<nlmsghdr>) throws -> Void) { self.handle = handle }
}

extension NftablesConnection {
    /// How long to wait for the kernel's answer to a request before giving up.
    static let requestTimeoutMilliseconds: Int32 = 10_000

    /// Sends one nf_tables request (`dump`: NLM_F_DUMP) and feeds each answer to `handle`.
    /// A kernel error answer throws `.rejected` with its errno; DUMP_INTR throws `DumpInterrupted`.
    func request(_ type: nf_tables_msg_types, family: UInt32, dump: Bool, what: String,
                 build: (UnsafeMutablePointer<nlmsghdr>) -> Void,
                 handle: (UnsafePointer<nlmsghdr>) throws -> Void) throws {
        socket.discardPending(using: receiveBuffer)
        let sequence = peekSequence()
        consumeSequences(through: sequence)

        var message = [UInt8](repeating: 0, count: 4096)
        try message.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress?.assumingMemoryBound(to: CChar.self),
                  let header = nftnl_nlmsg_build_hdr(base, UInt16(type.rawValue), UInt16(truncatingIfNeeded: family),
                                                     UInt16(dump ? NLM_F_DUMP : 0), sequence) else {
                throw NftablesError.outOfMemory("nftnl_nlmsg_build_hdr")
            }
            build(header)
            try socket.send(UnsafeRawBufferPointer(start: buffer.baseAddress, count: Int(header.pointee.nlmsg_len)), what: what)
        }

        try socket.readAnswers(sequence: sequence, dump: dump, what: what, buffer: receiveBuffer,
                               timeoutMilliseconds: Self.requestTimeoutMilliseconds, handle: handle)
    }
}

extension NetlinkSocket {
    /// Feeds the answers to the request sent with `sequence` to `handle`: the one answer datagram, or
    /// with `dump` every message until NLMSG_DONE. Shared by every netfilter subsystem (nf_tables,
    /// ctnetlink). A kernel error answer throws `.rejected` with its errno; DUMP_INTR throws
    /// `DumpInterrupted`; a full receive buffer throws `.system` with ENOBUFS (the dump is then
    /// incomplete: drain with `discardPending` and start it again).
    func readAnswers(sequence: UInt32, dump: Bool, what: String, buffer: UnsafeMutableRawBufferPointer,
                     timeoutMilliseconds: Int32, handle: (UnsafePointer<nlmsghdr>) throws -> Void) throws {
        try withoutActuallyEscaping(handle) { handle in
            let box = MessageHandlerBox(handle)
            let context = Unmanaged.passUnretained(box).toOpaque()
            while true {
                guard try waitReadable(milliseconds: timeoutMilliseconds) else {
                    throw NftablesError(kind: .protocolViolation, operation: what, detail: "no answer from the kernel within \(timeoutMilliseconds / 1000) s")
                }
                guard case .bytes(let count) = try receive(into: buffer, wait: false) else { continue }
                let result = mnl_cb_run(buffer.baseAddress, count, sequence, portID, { header, context in
                    guard let header, let context else { return MNL_CB_ERROR }
                    let box = Unmanaged<MessageHandlerBox>.fromOpaque(context).takeUnretainedValue()
                    do {
                        try box.handle(header)
                        return MNL_CB_OK
                    } catch {
                        box.error = error
                        return MNL_CB_ERROR
                    }
                }, context)
                if result == MNL_CB_ERROR {
                    let code = palisadeErrno()
                    if let error = box.error { throw error }
                    if code == EINTR { throw DumpInterrupted() }
                    throw NftablesError(kind: .rejected, operation: what, code: code)
                }
                if result == MNL_CB_STOP || !dump { break }
            }
            withExtendedLifetime(box) {}
        }
    }
}
