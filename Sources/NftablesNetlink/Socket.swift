// The NETLINK_NETFILTER socket: opened (optionally inside another network namespace) and bound
// through libmnl; datagrams sent with a hand-built msghdr/iovec and received with recvmsg.
// EINTR is retried everywhere.
import CNftnl
import Glibc

final class NetlinkSocket {
    private let handle: OpaquePointer
    let fd: Int32
    let portID: UInt32

    init(netnsPath: String?) throws {
        let open = { () throws -> OpaquePointer in
            guard let handle = mnl_socket_open2(NETLINK_NETFILTER, Int32(SOCK_CLOEXEC.rawValue)) else {
                throw NftablesError.system("socket(AF_NETLINK, NETLINK_NETFILTER)")
            }
            return handle
        }
        let handle = try netnsPath.map { try NetworkNamespace.run(in: $0, open) } ?? open()
        guard mnl_socket_bind(handle, 0, 0 /* MNL_SOCKET_AUTOPID */) == 0 else {
            let code = palisadeErrno()
            mnl_socket_close(handle)
            throw NftablesError.system("bind(AF_NETLINK)", code: code)
        }
        self.handle = handle
        self.fd = mnl_socket_get_fd(handle)
        self.portID = mnl_socket_get_portid(handle)
        // Errors carry only the header of the failed message, not its (up to 64 KB) body, and
        // the kernel's explanation when it gives one. Both are optional: ignore failures.
        try? setNetlinkOption(NETLINK_CAP_ACK, 1)
        try? setNetlinkOption(NETLINK_EXT_ACK, 1)
    }

    deinit { mnl_socket_close(handle) }

    // MARK: Buffers

    private func setNetlinkOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, SOL_NETLINK, option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw NftablesError.system("setsockopt(SOL_NETLINK, \(option))")
        }
    }

    private func socketOption(_ option: Int32) -> Int {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, option, &value, &length) == 0 else { return 0 }
        return Int(value)
    }

    /// Makes the send (SO_SNDBUF) or receive (SO_RCVBUF) buffer at least `bytes` large: the *FORCE
    /// variant (needs CAP_NET_ADMIN) goes beyond net.core.{w,r}mem_max, the plain one up to it.
    /// Returns the size the kernel reports afterwards (it doubles the requested value).
    @discardableResult
    func growBuffer(send: Bool, to bytes: Int) -> Int {
        let option = send ? SO_SNDBUF : SO_RCVBUF
        let current = socketOption(option)
        guard current < bytes else { return current }
        // The kernel doubles the value for bookkeeping overhead; ask for half, rounded up.
        var request = Int32(clamping: (bytes + 1) / 2 + 4096)
        let size = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, send ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, &request, size) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, option, &request, size)
        }
        return socketOption(option)
    }

    var sendBufferSize: Int { socketOption(SO_SNDBUF) }

    // MARK: Sending and receiving

    /// Sends `bytes` as one datagram to the kernel.
    func send(_ bytes: UnsafeRawBufferPointer, what: String) throws {
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
        let sent: Int = withUnsafeMutablePointer(to: &address) { addressPointer in
            withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var message = msghdr()
                message.msg_name = UnsafeMutableRawPointer(addressPointer)
                message.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                while true {
                    let result = sendmsg(fd, &message, 0)
                    if result < 0 && palisadeErrno() == EINTR { continue }
                    return result
                }
            }
        }
        guard sent >= 0 else {
            let code = palisadeErrno()
            switch code {
            case ENOBUFS:
                throw NftablesError.system("sendmsg(\(what), \(bytes.count) bytes)", code: code,
                                           detail: "the kernel could not buffer the batch; nothing was applied. Send smaller batches or raise net.core.wmem_max")
            case EMSGSIZE:
                throw NftablesError.system("sendmsg(\(what), \(bytes.count) bytes)", code: code,
                                           detail: "the batch exceeds the socket send buffer (\(sendBufferSize) bytes); nothing was applied. Raise net.core.wmem_max or run with CAP_NET_ADMIN")
            default:
                throw NftablesError.system("sendmsg(\(what))", code: code)
            }
        }
        guard sent == bytes.count else {
            throw NftablesError(kind: .protocolViolation, operation: "sendmsg(\(what))",
                                detail: "sent \(sent) of \(bytes.count) bytes")
        }
    }

    enum Received { case bytes(Int), wouldBlock }

    /// Receives one datagram into `buffer`. Without `wait`, returns `.wouldBlock` when nothing is queued.
    func receive(into buffer: UnsafeMutableRawBufferPointer, wait: Bool) throws -> Received {
        var address = sockaddr_nl()
        var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        let (received, flags): (Int, Int32) = withUnsafeMutablePointer(to: &address) { addressPointer in
            withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var message = msghdr()
                message.msg_name = UnsafeMutableRawPointer(addressPointer)
                message.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                while true {
                    let result = recvmsg(fd, &message, wait ? 0 : Int32(MSG_DONTWAIT))
                    if result < 0 && palisadeErrno() == EINTR { continue }
                    return (result, message.msg_flags)
                }
            }
        }
        if received < 0 {
            let code = palisadeErrno()
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw NftablesError.system("recvmsg", code: code)
        }
        guard flags & Int32(MSG_TRUNC) == 0 else {
            throw NftablesError(kind: .protocolViolation, operation: "recvmsg",
                                detail: "a netlink datagram was larger than the \(buffer.count)-byte receive buffer")
        }
        return .bytes(received)
    }

    /// Waits up to `milliseconds` for something to read.
    func waitReadable(milliseconds: Int32) throws -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let result = poll(&descriptor, 1, milliseconds)
            if result < 0 {
                if palisadeErrno() == EINTR { continue }
                throw NftablesError.system("poll")
            }
            return result > 0
        }
    }

    /// Reads and drops whatever is queued (the tail of an abandoned dump, stray acks), so that the
    /// next request starts clean. Reading also lets the kernel continue a pending dump to its end.
    func discardPending(using buffer: UnsafeMutableRawBufferPointer) {
        while true {
            do {
                if case .wouldBlock = try receive(into: buffer, wait: false) { return }
            } catch {
                if let error = error as? NftablesError, error.code == ENOBUFS { continue }
                return
            }
        }
    }
}
