#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// The agent's control socket. Every request is authorised: the peer's uid, gid and pid come
/// from SO_PEERCRED, the uid's user name and groups from the passwd and group databases, and the
/// roles file says which verbs they have (root has all). A refusal is answered, logged and written
/// to the event record; an allowed request reaches the handler with the peer's real identity.
///
/// The socket file is mode 0660 with group `socketGroup`, so only root and that group's members
/// can connect at all; without the group it is root's alone (0600).
public final class ControlServer: @unchecked Sendable {
    public typealias Handler = @Sendable (ControlRequest, Peer) -> ControlResponse
    private let path: String
    private let socketGroup: String?
    private let handler: Handler
    private let logger: Logger
    private var fd: Int32 = -1
    public let roles: RolesFile
    /// Where refusals are recorded; handlers append their own events (quarantine, release) to it.
    public let events: EventLog

    public init(path: String, rolesFile: String, socketGroup: String?, events: EventLog, logger: Logger,
                handler: @escaping Handler) {
        self.path = path
        self.socketGroup = socketGroup
        self.roles = RolesFile(path: rolesFile, logger: logger)
        self.events = events
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
        try restrictSocketFile()
        _ = roles.current()  // logs what the roles file grants (or why it grants nothing) at start
        guard listen(fd, 16) == 0 else { throw UnixSocket.Failure("listen \(path)") }
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "palisade.control"
        thread.start()
    }

    /// GROUP and 0660 if the group exists, else 0600 (the owner is the agent: root). Set before `listen`, so no peer
    /// ever connects through looser permissions.
    private func restrictSocketFile() throws {
        guard chmod(path, 0o600) == 0 else { throw UnixSocket.Failure("chmod 0600 \(path)") }
        guard let group = socketGroup else {
            logger.notice("control.socket.root_only", metadata: ["path": "\(path)", "mode": "0600",
                "reason": "no socketGroup configured"])
            return
        }
        guard let gid = UserDatabase.groupID(named: group) else {
            logger.warning("control.socket.root_only", metadata: ["path": "\(path)", "mode": "0600",
                "reason": "socketGroup \(group) does not exist: create it (groupadd \(group)) and restart, or set socketGroup"])
            return
        }
        guard chown(path, uid_t.max, gid_t(gid)) == 0, chmod(path, 0o660) == 0 else {
            throw UnixSocket.Failure("giving \(path) to group \(group)")
        }
        logger.info("control.socket.group", metadata: ["path": "\(path)", "mode": "0660", "group": "\(group)", "gid": "\(gid)"])
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
            // At most `maxConnections` requests are served at once, on pooled threads: a flood of
            // connections waits in the backlog instead of creating a thread (and a malloc arena)
            // each.
            connectionSlots.wait()
            DispatchQueue.global(qos: .userInitiated).async { [self] in
                defer { connectionSlots.signal() }
                serve(client)
            }
        }
    }

    private let connectionSlots = DispatchSemaphore(value: ControlServer.maxConnections)
    static let maxConnections = 16
    /// A request line larger than this is refused: every field that reaches the event record is
    /// short (a target, a reason of a few sentences).
    static let requestLimit = 16 << 10

    /// The connecting process's pid, uid and gid from SO_PEERCRED (struct ucred: pid, uid, gid as
    /// 32-bit integers; Glibc hides the struct behind _GNU_SOURCE, so it is read as raw integers).
    static func peerCredentials(_ fd: Int32) -> (pid: Int32, uid: UInt32, gid: UInt32)? {
        var raw: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: raw))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &raw, &length) == 0, length == 12 else { return nil }
        return (raw.0, raw.1, raw.2)
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let response: ControlResponse
        if let credentials = Self.peerCredentials(client) {
            if let line = try? UnixSocket.readLine(client, limit: Self.requestLimit + 1), line.count <= Self.requestLimit,
               let request = try? JSONDecoder().decode(ControlRequest.self, from: line) {
                let account = Account.lookup(uid: credentials.uid, gid: credentials.gid)
                let peer = Peer(uid: credentials.uid, gid: credentials.gid, pid: credentials.pid, userName: account.displayName)
                response = authorize(request, account: account, peer: peer) ?? handler(request, peer)
            } else {
                response = ControlResponse(ok: false, error: "malformed request (one JSON object of at most \(Self.requestLimit) bytes on one line)")
            }
        } else {
            response = ControlResponse(ok: false, error: "cannot identify the peer (SO_PEERCRED failed)")
        }
        guard var data = try? JSONEncoder().encode(response) else { return }
        data.append(UInt8(ascii: "\n"))
        try? UnixSocket.writeAll(client, data)
    }

    /// Nil if the roles allow the request; else the refusal, already logged and recorded.
    func authorize(_ request: ControlRequest, account: Account, peer: Peer) -> ControlResponse? {
        let verb = request.command.verb
        guard case .refused(let message) = roles.current().decide(verb, for: account, rolesPath: roles.path) else {
            return nil
        }
        logger.warning("control.refused", metadata: ["uid": "\(peer.uid)", "user": "\(peer.userName)", "pid": "\(peer.pid)",
                                                     "command": "\(request.command.rawValue)", "verb": "\(verb.rawValue)"])
        do {
            try events.append(Event(type: .refused, actor: Actor(peer), target: request.target, reason: request.reason,
                                    outcome: .refused, error: message, command: request.command.rawValue))
        } catch {
            // The refusal stands either way; the missing record is the agent's problem to report.
            logger.error("control.refused.unrecorded", metadata: ["error": "\(error)"])
        }
        return ControlResponse(ok: false, error: message)
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
