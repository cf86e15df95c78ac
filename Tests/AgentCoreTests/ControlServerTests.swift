@testable import AgentCore
import Foundation
import Logging
import XCTest

final class ControlServerTests: XCTestCase {
    var directory: String!
    var events: EventLog!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "palisade-control-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        events = try EventLog(path: directory + "/data/events.jsonl")
    }

    override func tearDownWithError() throws {
        events?.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Requests are served on several threads at once: the record of who was seen is locked.
    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var recorded: [Peer] = []
        var peers: [Peer] { lock.lock(); defer { lock.unlock() }; return recorded }
        func append(_ peer: Peer) { lock.lock(); recorded.append(peer); lock.unlock() }
    }

    func makeServer(socketGroup: String?, seen: Seen = Seen()) -> ControlServer {
        ControlServer(path: directory + "/run/agentd.sock", rolesFile: directory + "/rbac.yaml", socketGroup: socketGroup,
                      events: events, logger: Logger(label: "test")) { _, peer in
            seen.append(peer)
            return ControlResponse(ok: true, text: "hello \(peer.userName)")
        }
    }

    func socketStatus() -> stat {
        var status = stat()
        XCTAssertEqual(lstat(directory + "/run/agentd.sock", &status), 0)
        return status
    }

    func testTheHandlerSeesThePeerAsItIs() throws {
        // Root needs no grant; anyone else running the tests gets read by uid.
        try "grants:\n- users: [\"\(getuid())\"]\n  verbs: [read]\n".write(toFile: directory + "/rbac.yaml", atomically: true, encoding: .utf8)
        let seen = Seen()
        let server = makeServer(socketGroup: nil, seen: seen)
        try server.start()
        defer { server.stop() }
        let response = try ControlClient.send(ControlRequest(command: .status), socketPath: directory + "/run/agentd.sock")
        XCTAssertTrue(response.ok, response.error ?? "")
        let expectedName = Account.lookup(uid: getuid(), gid: getgid()).displayName
        XCTAssertEqual(seen.peers, [Peer(uid: getuid(), gid: getgid(), pid: getpid(), userName: expectedName)])
        if getuid() == 0 { XCTAssertEqual(response.text, "hello root") }
    }

    func testOversizedRequestsAreRefusedUnreadAndManyClientsAreServed() throws {
        try "grants:\n- users: [\"\(getuid())\"]\n  verbs: [read]\n".write(toFile: directory + "/rbac.yaml", atomically: true, encoding: .utf8)
        let seen = Seen()
        let server = makeServer(socketGroup: nil, seen: seen)
        try server.start()
        defer { server.stop() }
        var huge = ControlRequest(command: .quarantine)
        huge.target = "shop/web"
        huge.reason = String(repeating: "x", count: 64 << 10)
        let refused = try ControlClient.send(huge, socketPath: directory + "/run/agentd.sock")
        XCTAssertFalse(refused.ok)
        XCTAssertTrue(refused.error?.hasPrefix("malformed request") ?? false, refused.error ?? "")
        XCTAssertTrue(seen.peers.isEmpty, "an oversized request never reaches the handler")

        // More clients at once than the server serves concurrently: all get their answer.
        let lock = NSLock()
        var answered = 0
        DispatchQueue.concurrentPerform(iterations: 40) { _ in
            if let response = try? ControlClient.send(ControlRequest(command: .status), socketPath: directory + "/run/agentd.sock"),
               response.ok {
                lock.lock(); answered += 1; lock.unlock()
            }
        }
        XCTAssertEqual(answered, 40)
    }

    func testWithoutAGroupTheSocketIsTheOwnersAlone() throws {
        let server = makeServer(socketGroup: "palisade-no-such-group-\(getpid())")
        try server.start()
        defer { server.stop() }
        XCTAssertEqual(socketStatus().st_mode & 0o777, 0o600)
        var directoryStatus = stat()
        XCTAssertEqual(stat(directory + "/run", &directoryStatus), 0)
        XCTAssertEqual(directoryStatus.st_mode & 0o777, 0o755)
    }

    func testTheSocketGroupGetsReadAndWrite() throws {
        guard let group = UserDatabase.groupName(gid: getegid()) else { throw XCTSkip("the test's gid has no name") }
        let server = makeServer(socketGroup: group)
        try server.start()
        defer { server.stop() }
        let status = socketStatus()
        XCTAssertEqual(status.st_mode & 0o777, 0o660)
        XCTAssertEqual(status.st_gid, getegid())
    }

    func testARefusalIsAnsweredAndRecorded() throws {
        try "grants:\n- users: [alice]\n  verbs: [read]\n".write(toFile: directory + "/rbac.yaml", atomically: true, encoding: .utf8)
        let server = makeServer(socketGroup: nil)
        let alice = Account(uid: 1001, userName: "alice", groupIDs: [1001], groupNames: ["alice"])
        let peer = Peer(uid: 1001, gid: 1001, pid: 4242, userName: "alice")
        var request = ControlRequest(command: .quarantine)
        request.target = "shop/web-1"
        request.reason = "beaconing"

        XCTAssertNil(server.authorize(ControlRequest(command: .status), account: alice, peer: peer), "read is granted")
        let refusal = try XCTUnwrap(server.authorize(request, account: alice, peer: peer))
        let message = "permission denied: user alice (uid 1001) may not quarantine (grants: read); an administrator can grant it in \(directory!)/rbac.yaml"
        XCTAssertFalse(refusal.ok)
        XCTAssertEqual(refusal.error, message)

        let recorded = try EventLog.read(path: directory + "/data/events.jsonl")
        XCTAssertEqual(recorded.count, 1)
        XCTAssertEqual(recorded.first?.type, .refused)
        XCTAssertEqual(recorded.first?.actor, Actor(uid: 1001, user: "alice", pid: 4242))
        XCTAssertEqual(recorded.first?.target, "shop/web-1")
        XCTAssertEqual(recorded.first?.reason, "beaconing")
        XCTAssertEqual(recorded.first?.outcome, .refused)
        XCTAssertEqual(recorded.first?.error, message)
        XCTAssertEqual(recorded.first?.command, "quarantine")
    }

    func testRootNeedsNoGrant() {
        let server = makeServer(socketGroup: nil)
        let root = Account(uid: 0, userName: "root", groupIDs: [0], groupNames: ["root"])
        for command in [ControlRequest.Command.status, .sync, .quarantine, .release] {
            XCTAssertNil(server.authorize(ControlRequest(command: command), account: root, peer: Peer(uid: 0, gid: 0, pid: 1, userName: "root")))
        }
    }
}
