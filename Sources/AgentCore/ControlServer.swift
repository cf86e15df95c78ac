#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// The agent's control socket. Only root may talk to it for now: the peer's uid comes from
/// SO_PEERCRED, and the socket file is mode 0600.
public final class ControlServer: @unchecked Sendable {
    public typealias Handler = @Sendable (ControlRequest, Peer) -> ControlResponse
    private let path: String
    private let handler: Handler
    private let logger: Logger
    private var fd: Int32 = -1

    public init(path: String, logger: Logger, handler: @escaping Handler) {
        self.path = path
        self.logger = logger
        self.handler = handler
    }

    public func start() throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        }
        // A socket file left by an agent that died: replace it, unless an agent still answers there.
        if FileManager.default.fileExists(atPath: path) {
            if let probe = try? UnixSocket.connect(path) {
                close(probe)
                throw UnixSocket.Failure(message: "another agent is listening on \(path)")
            }
            unlink(path)
        }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UnixSocket.Failure("socket") }
        var address = try UnixSocket.address(path)
        let previousMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(previousMask)
        guard bound == 0 else { throw UnixSocket.Failure("bind \(path)") }
        chmod(path, 0o600)
        guard listen(fd, 16) == 0 else { throw UnixSocket.Failure("listen \(path)") }
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "palisade.control"
        thread.start()
    }

    public func stop() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(path)
    }

    private func acceptLoop() {
        while fd >= 0 {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let thread = Thread { [self] in serve(client) }
            thread.start()
        }
    }

    /// The connecting process's pid and uid from SO_PEERCRED (struct ucred: pid, uid, gid as 32-bit
    /// integers; Glibc hides the struct behind _GNU_SOURCE, so it is read as raw integers).
    static func peerCredentials(_ fd: Int32) -> (pid: Int32, uid: UInt32)? {
        var raw: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: raw))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &raw, &length) == 0, length == 12 else { return nil }
        return (raw.0, raw.1)
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let response: ControlResponse
        if let credentials = Self.peerCredentials(client), credentials.uid != 0 {
            logger.warning("control.refused", metadata: ["uid": "\(credentials.uid)", "pid": "\(credentials.pid)"])
            response = ControlResponse(ok: false, error: "permission denied: uid \(credentials.uid) may not use the Palisade control socket (root only)")
        } else if let credentials = Self.peerCredentials(client) {
            if let line = try? UnixSocket.readLine(client, limit: 1 << 20),
               let request = try? JSONDecoder().decode(ControlRequest.self, from: line) {
                let peer = Peer(uid: credentials.uid, gid: 0, pid: credentials.pid, userName: "root")
                response = handler(request, peer)
            } else {
                response = ControlResponse(ok: false, error: "malformed request")
            }
        } else {
            response = ControlResponse(ok: false, error: "cannot identify the peer (SO_PEERCRED failed)")
        }
        guard var data = try? JSONEncoder().encode(response) else { return }
        data.append(UInt8(ascii: "\n"))
        try? UnixSocket.writeAll(client, data)
    }
}

/// The client side, used by agentctl.
public enum ControlClient {
    public static func send(_ request: ControlRequest, socketPath: String) throws -> ControlResponse {
        let fd = try UnixSocket.connect(socketPath)
        defer { close(fd) }
        var data = try JSONEncoder().encode(request)
        data.append(UInt8(ascii: "\n"))
        try UnixSocket.writeAll(fd, data)
        let reply = try UnixSocket.readLine(fd)
        guard !reply.isEmpty else { throw UnixSocket.Failure(message: "the agent closed the connection without answering") }
        return try JSONDecoder().decode(ControlResponse.self, from: reply)
    }

    public static var defaultSocketPath: String {
        ProcessInfo.processInfo.environment["PALISADE_SOCKET"] ?? "/run/palisade/agentd.sock"
    }
}
