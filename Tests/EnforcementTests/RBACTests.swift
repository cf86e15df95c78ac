import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Who may use the control socket, judged with real Unix users: the test creates a group and
/// two users in it, makes the group the socket's group, grants one user `read` in the roles
/// file, and runs the real agentctl as each user. The kernel's SO_PEERCRED says who is asking;
/// the event record must name them. The users and the group are removed in tearDown, also when
/// the test fails.
final class RBACTests: EnforcementTestCase {
    private var createdUsers: [String] = []
    private var createdGroups: [String] = []

    override func tearDown() {
        for user in createdUsers.reversed() { _ = try? Command.run(["userdel", user]) }
        for group in createdGroups.reversed() { _ = try? Command.run(["groupdel", group]) }
        createdUsers = []
        createdGroups = []
        super.tearDown()
    }

    /// useradd and groupadd fail instead of waiting when another process holds the lock on
    /// /etc/passwd: try again for a while.
    private func accountCommand(_ arguments: [String]) throws {
        var last: CommandResult?
        for _ in 0..<50 {
            let result = try Command.run(arguments)
            if result.succeeded { return }
            last = result
            guard result.stderr.contains("lock") else { break }
            usleep(200_000)
        }
        throw CommandError(description: last?.transcript ?? arguments.joined(separator: " "))
    }

    private func addGroup(_ name: String) throws {
        createdGroups.append(name)
        try accountCommand(["groupadd", name])
    }

    private func addUser(_ name: String, groups: [String]) throws {
        createdUsers.append(name)
        try accountCommand(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--groups",
                            groups.joined(separator: ","), name])
    }

    private func uid(of user: String) throws -> UInt32 {
        let result = try Command.check(["id", "-u", user])
        guard let uid = UInt32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw CommandError(description: result.transcript)
        }
        return uid
    }

    private var agentctlCopy: URL { work.appendingPathComponent("bin/agentctl") }
    private var rolesFile: URL { work.appendingPathComponent("rbac.yaml") }

    /// `agentctl --socket SOCKET ARGS...` as `user` (runuser sets the user's supplementary groups).
    private func ctl(as user: String, _ arguments: [String]) throws -> CommandResult {
        try Command.run(["runuser", "-u", user, "--", agentctlCopy.path, "--socket", agent.socket.path] + arguments,
                        timeout: 60)
    }

    private func writeRoles(_ text: String) throws {
        try text.write(to: rolesFile, atomically: true, encoding: .utf8)
    }

    /// The records of the agent's event record, as JSON objects.
    private func events() throws -> [[String: Any]] {
        let text = try String(contentsOf: agent.dataDirectory.appendingPathComponent("events.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw CommandError(description: "not a JSON object: \(line)")
            }
            return object
        }
    }

    func testOnlyGrantedVerbsAreServedAndRefusalsAreRecorded() throws {
        let tag = String(format: "%06x", UInt32.random(in: 0..<0xFF_FFFF))
        let group = "plg\(tag)", granted = "pla\(tag)", other = "plb\(tag)"
        try addGroup(group)
        try addUser(granted, groups: [group])
        try addUser(other, groups: [group])
        let grantedUid = try uid(of: granted)
        let otherUid = try uid(of: other)

        // Both users must reach the socket and run agentctl: open up the work directory (mkdtemp
        // makes it 0700) and give them their own copy of the binary.
        XCTAssertEqual(chmod(work.path, 0o755), 0)
        try FileManager.default.createDirectory(at: agentctlCopy.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try FileManager.default.copyItem(atPath: Agent.agentctlPath, toPath: agentctlCopy.path)
        XCTAssertEqual(chmod(agentctlCopy.path, 0o755), 0)

        try writeRoles("""
            grants:
            - users: [\(granted)]
              verbs: [read]

            """)
        let config = try String(contentsOf: agent.configuration, encoding: .utf8)
        try (config + "socketGroup: \(group)\nrbacFile: \(rolesFile.path)\n")
            .write(to: agent.configuration, atomically: true, encoding: .utf8)
        agent.stop()
        try agent.start()

        // The socket: root and the group may connect, nobody else.
        var socketStatus = stat()
        XCTAssertEqual(lstat(agent.socket.path, &socketStatus), 0)
        XCTAssertEqual(socketStatus.st_mode & 0o777, 0o660, "socket mode")
        XCTAssertEqual(socketStatus.st_uid, 0, "socket owner")
        let groupID = try Command.check(["getent", "group", group]).stdout.split(separator: ":")[2]
        XCTAssertEqual(String(socketStatus.st_gid), String(groupID), "socket group")
        if (try? Command.run(["id", "-u", "nobody"]))?.succeeded == true {
            let outsider = try ctl(as: "nobody", ["status"])
            XCTAssertEqual(outsider.status, 2, outsider.transcript)
            XCTAssertTrue(outsider.stderr.contains("cannot connect") && outsider.stderr.contains("Permission denied"),
                          "a user outside the socket group cannot even connect:\n\(outsider.transcript)")
        }

        // A holds read: status works.
        let status = try ctl(as: granted, ["status"])
        XCTAssertEqual(status.status, 0, status.transcript)
        XCTAssertTrue(status.stdout.contains("in sync:"), status.transcript)

        // B holds nothing.
        let refused = try ctl(as: other, ["status"])
        XCTAssertEqual(refused.status, 2, refused.transcript)
        XCTAssertTrue(refused.stderr.contains("permission denied: user \(other) (uid \(otherUid)) may not read (grants: none)"),
                      refused.transcript)
        XCTAssertTrue(refused.stdout.isEmpty, refused.transcript)

        // A may read but not sync.
        let syncRefused = try ctl(as: granted, ["sync"])
        XCTAssertEqual(syncRefused.status, 2, syncRefused.transcript)
        XCTAssertTrue(syncRefused.stderr.contains("permission denied: user \(granted) (uid \(grantedUid)) may not sync (grants: read)"),
                      syncRefused.transcript)
        XCTAssertTrue(syncRefused.stderr.contains(rolesFile.path), "the refusal says where grants are made:\n\(syncRefused.transcript)")

        // Granting sync in the file takes effect with the next request: no restart, no signal.
        try writeRoles("""
            grants:
            - users: [\(granted)]
              verbs: [read, sync]

            """)
        let synced = try ctl(as: granted, ["sync"])
        XCTAssertEqual(synced.status, 0, synced.transcript)
        XCTAssertTrue(synced.stdout.contains("in sync"), synced.transcript)

        // A grant to the group covers B too; a broken file keeps it in force.
        try writeRoles("grants:\n- users: [\(granted)]\n  verbs: [read, sync]\n- groups: [\(group)]\n  verbs: [read]\n")
        let viaGroup = try ctl(as: other, ["status"])
        XCTAssertEqual(viaGroup.status, 0, viaGroup.transcript)
        try writeRoles("grants:\n- groups: [\(group)]\n  verbs: [reed]\n")
        let stillGranted = try ctl(as: other, ["status"])
        XCTAssertEqual(stillGranted.status, 0, "a broken roles file keeps the last good roles:\n\(stillGranted.transcript)")

        // The event record holds both refusals, with the peers the kernel named.
        let records = try events()
        let refusals = records.filter { $0["type"] as? String == "refused" }
        XCTAssertEqual(refusals.count, 2, "refusals in events.jsonl: \(records)")
        func actor(_ record: [String: Any]) -> (uid: Int, user: String, pid: Int) {
            let actor = record["actor"] as? [String: Any] ?? [:]
            return (actor["uid"] as? Int ?? -1, actor["user"] as? String ?? "", actor["pid"] as? Int ?? -1)
        }
        if refusals.count == 2 {
            XCTAssertEqual(actor(refusals[0]).uid, Int(otherUid))
            XCTAssertEqual(actor(refusals[0]).user, other)
            XCTAssertGreaterThan(actor(refusals[0]).pid, 0)
            XCTAssertEqual(refusals[0]["command"] as? String, "status")
            XCTAssertEqual(refusals[0]["outcome"] as? String, "refused")
            XCTAssertEqual(actor(refusals[1]).uid, Int(grantedUid))
            XCTAssertEqual(actor(refusals[1]).user, granted)
            XCTAssertEqual(refusals[1]["command"] as? String, "sync")
            XCTAssertTrue((refusals[1]["error"] as? String ?? "").contains("may not sync (grants: read)"), "\(refusals[1])")
        }
        XCTAssertEqual(records.compactMap { $0["seq"] as? Int }, Array(1...records.count), "seq counts up by one")

        // The chain, checked by an independent SHA-256 (Python's hashlib), not by the agent's code.
        let check = try Command.run(["python3", "-c", """
            import hashlib, sys, json
            previous = "0" * 64
            for number, line in enumerate(open(sys.argv[1], "rb").read().split(b"\\n")[:-1], 1):
                if json.loads(line)["prev"] != previous:
                    sys.exit(f"line {number}: prev does not chain")
                previous = hashlib.sha256(line).hexdigest()
            print("chain ok")
            """, agent.dataDirectory.appendingPathComponent("events.jsonl").path])
        XCTAssertEqual(check.status, 0, check.transcript)
    }
}
