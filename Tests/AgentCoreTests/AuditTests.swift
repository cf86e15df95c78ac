@testable import AgentCore
import Foundation
import Logging
import PolicyModel
import XCTest

/// The audit trail of desired-state changes: created, updated (with a diff), deleted, rejected;
/// a restart logs only what changed while the agent was down; rotation keeps the chain.
final class AuditTests: XCTestCase {
    var directory: String!
    var state: String { directory + "/state" }
    var data: String { directory + "/data" }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "palisade-audit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: state + "/" + name, atomically: true, encoding: .utf8)
    }

    /// Runs `work` with an agent on the directories (a new agent each time: a restart).
    func withAgent(_ dataplane: FakeDataplane, _ work: (Agent) throws -> Void) throws {
        let events = try EventLog(path: data + "/events.jsonl")
        defer { events.close() }
        var config = AgentConfig()
        config.debounceMilliseconds = 0
        let agent = Agent(config: config, stateDirectory: state, dataDirectory: data, dataplane: dataplane, events: events,
                          logger: Logger(label: "test"))
        try work(agent)
    }

    func records() throws -> [Event] {
        EventLog.files(of: data + "/events.jsonl").flatMap { file -> [Event] in
            guard let content = FileManager.default.contents(atPath: file) else { return [] }
            return content.split(separator: UInt8(ascii: "\n")).compactMap { EventLog.decode(Data($0)) }
        }
    }

    static let policy = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: db-from-web, namespace: shop}
        spec:
          podSelector: {matchLabels: {app: db}}
          ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
        """

    func testChangesOfTheStateDirectoryAreAuditedWithActorDiffAndOutcome() throws {
        let dataplane = FakeDataplane()
        try write("pods.yaml", AgentTests.pods)
        try write("policy.yaml", Self.policy)
        try withAgent(dataplane) { agent in
            _ = agent.syncNow()
            var created = try records().filter { $0.type == .objectCreated }
            XCTAssertEqual(Set(created.compactMap(\.target)), ["shop/web", "shop/db", "shop/db-from-web"])
            let policyEvent = try XCTUnwrap(created.first { $0.details?["kind"] == "NetworkPolicy" })
            XCTAssertEqual(policyEvent.actor.uid, getuid(), "the file's owner is the actor")
            XCTAssertEqual(policyEvent.outcome, .applied)
            XCTAssertEqual(policyEvent.generation, 1)
            XCTAssertEqual(policyEvent.details?["file"], state + "/policy.yaml")
            XCTAssertTrue(policyEvent.details?["diff"]?.contains("+ ingress[0].ports[0].port.number: 5432") ?? false,
                          policyEvent.details?["diff"] ?? "")

            try write("policy.yaml", Self.policy.replacingOccurrences(of: "5432", with: "6432"))
            _ = agent.syncNow()
            let updated = try XCTUnwrap(try records().last { $0.type == .objectUpdated })
            XCTAssertEqual(updated.target, "shop/db-from-web")
            XCTAssertEqual(updated.details?["diff"], "- ingress[0].ports[0].port.number: 5432\n+ ingress[0].ports[0].port.number: 6432")
            XCTAssertEqual(updated.generation, 2)

            try write("policy.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x\n")
            _ = agent.syncNow()
            let rejected = try XCTUnwrap(try records().last { $0.type == .fileRejected })
            XCTAssertEqual(rejected.target, state + "/policy.yaml")
            XCTAssertEqual(rejected.outcome, .refused)
            XCTAssertNotNil(rejected.error)

            try FileManager.default.removeItem(atPath: state + "/policy.yaml")
            _ = agent.syncNow()
            let deleted = try XCTUnwrap(try records().last { $0.type == .objectDeleted })
            XCTAssertEqual(deleted.target, "shop/db-from-web")
            XCTAssertTrue(deleted.details?["diff"]?.hasPrefix("- ") ?? false)
            created = try records().filter { $0.type == .objectCreated }
            XCTAssertEqual(created.count, 3, "nothing was created twice")
        }
        XCTAssertTrue(EventLog.verifyAll(path: data + "/events.jsonl").verification.isIntact)
    }

    func testARestartLogsOnlyWhatChangedWhileTheAgentWasDown() throws {
        let dataplane = FakeDataplane()
        try write("pods.yaml", AgentTests.pods)
        try write("policy.yaml", Self.policy)
        try withAgent(dataplane) { agent in _ = agent.syncNow() }
        let before = try records().count

        // Restart with nothing changed: no object events.
        try withAgent(dataplane) { agent in _ = agent.syncNow() }
        let afterRestart = try records()
        XCTAssertEqual(afterRestart.count, before, "\(afterRestart.suffix(3).map(\.type))")

        // Changed and removed while the agent was stopped.
        try write("pods.yaml", AgentTests.pods.replacingOccurrences(of: "app: db", with: "app: database"))
        try FileManager.default.removeItem(atPath: state + "/policy.yaml")
        try withAgent(dataplane) { agent in _ = agent.syncNow() }
        let new = Array(try records().dropFirst(before))
        XCTAssertEqual(new.map(\.type), [.objectUpdated, .objectDeleted], "\(new.map { "\($0.type) \($0.target ?? "")" })")
        XCTAssertEqual(new.first?.target, "shop/db")
        XCTAssertEqual(new.first?.details?["note"], "changed while the agent was not running; the earlier content is not known")
        XCTAssertEqual(new.last?.target, "shop/db-from-web")
        XCTAssertEqual(new.last?.details?["note"], "deleted while the agent was not running")
        XCTAssertTrue(EventLog.verifyAll(path: data + "/events.jsonl").verification.isIntact)
    }

    func testRotationKeepsTheChainAcrossFilesAndATamperedRotatedFileIsFound() throws {
        let path = data + "/events.jsonl"
        do {
            let log = try EventLog(path: path)
            log.rotateBytes = 2000
            for index in 0..<40 {
                try log.append(Event(type: .quarantine, actor: .agent, target: "shop/web-\(index)", reason: "test", outcome: .applied))
            }
            log.close()
        }
        let files = EventLog.files(of: path).filter { FileManager.default.fileExists(atPath: $0) }
        XCTAssertGreaterThan(files.count, 2, "\(files)")
        // A new writer on a file set aside just now chains on from the rotated file's last record.
        do {
            let reopened = try EventLog(path: path)
            reopened.rotateBytes = 2000
            try reopened.append(Event(type: .release, actor: .agent, target: "shop/web-0", outcome: .applied))
            reopened.close()
        }
        let intact = EventLog.verifyAll(path: path)
        XCTAssertTrue(intact.verification.isIntact, "\(intact.verification.issues)")
        XCTAssertEqual(intact.verification.records, 41)
        XCTAssertEqual(intact.verification.last.seq, 41)

        // Edit one record of the oldest file: found, in that file.
        let oldest = files[0]
        let text = try String(contentsOfFile: oldest, encoding: .utf8)
        try text.replacingOccurrences(of: "shop/web-1\"", with: "shop/web-X\"").write(toFile: oldest, atomically: true, encoding: .utf8)
        let broken = EventLog.verifyAll(path: path)
        XCTAssertFalse(broken.verification.isIntact)
        XCTAssertEqual(broken.file, oldest)
        // Removing a whole rotated file breaks the chain at the next one.
        try text.write(toFile: oldest, atomically: true, encoding: .utf8)
        XCTAssertTrue(EventLog.verifyAll(path: path).verification.isIntact)
        try FileManager.default.removeItem(atPath: files[1])
        let gap = EventLog.verifyAll(path: path)
        XCTAssertFalse(gap.verification.isIntact)
        XCTAssertEqual(gap.file, files[2])
    }
}

/// The running inventory: every endpoint seen, with its protection over time, labels, quarantines.
final class InventoryTests: XCTestCase {
    func testTheInventoryFollowsEndpointsPoliciesAndQuarantines() throws {
        let directory = NSTemporaryDirectory() + "palisade-inventory-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        func write(_ name: String, _ text: String) throws { try text.write(toFile: directory + "/state/" + name, atomically: true, encoding: .utf8) }
        try write("pods.yaml", AgentTests.pods)
        let events = try EventLog(path: directory + "/data/events.jsonl")
        defer { events.close() }
        var config = AgentConfig()
        config.debounceMilliseconds = 0
        let agent = Agent(config: config, stateDirectory: directory + "/state", dataDirectory: directory + "/data",
                          dataplane: FakeDataplane(), events: events, logger: Logger(label: "test"))
        func inventory() throws -> [String: [String: Any]] {
            try agent.onQueue { try agent.inventory.save(force: true) }
            let data = try XCTUnwrap(FileManager.default.contents(atPath: directory + "/data/inventory.json"))
            let file = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            let endpoints = try XCTUnwrap(file["endpoints"] as? [[String: Any]])
            return Dictionary(uniqueKeysWithValues: endpoints.map { ("\($0["namespace"]!)/\($0["name"]!)", $0) })
        }
        func protection(_ entry: [String: Any]?, _ direction: String) -> [Bool] {
            ((entry?["protection"] as? [String: Any])?[direction] as? [[String: Any]] ?? []).compactMap { $0["protected"] as? Bool }
        }
        _ = agent.syncNow()
        var now = try inventory()
        XCTAssertEqual(Set(now.keys), ["shop/web", "shop/db"])
        XCTAssertEqual(protection(now["shop/db"], "ingress"), [false], "no policy: default allow")
        XCTAssertEqual((now["shop/db"]?["access"] as? [String: Bool])?["ingressFromInternet"], true)

        try write("deny.yaml", AgentTests.denyAll)
        _ = agent.syncNow()
        now = try inventory()
        XCTAssertEqual(protection(now["shop/db"], "ingress"), [false, true], "selected by deny-all from now on")
        XCTAssertEqual(protection(now["shop/db"], "egress"), [false])
        XCTAssertEqual(now["shop/db"]?["policies"] as? [String], ["shop/deny-all"])
        XCTAssertEqual((now["shop/db"]?["access"] as? [String: Bool])?["ingressFromInternet"], false)

        try write("pods.yaml", AgentTests.pods.replacingOccurrences(of: "app: db", with: "app: database"))
        _ = agent.syncNow()
        _ = try agent.quarantine("shop/web", reason: "beaconing", futurePods: false,
                                 actor: Peer(uid: 1001, gid: 1001, pid: 1, userName: "alice"))
        now = try inventory()
        XCTAssertEqual((now["shop/db"]?["labelHistory"] as? [[String: Any]])?.count, 2)
        let quarantines = try XCTUnwrap(now["shop/web"]?["quarantines"] as? [[String: Any]])
        XCTAssertEqual(quarantines.count, 1)
        XCTAssertEqual(quarantines.first?["reason"] as? String, "beaconing")
        XCTAssertNil(quarantines.first?["end"] as? String)
        _ = try agent.release("shop/web", actor: Peer(uid: 1001, gid: 1001, pid: 1, userName: "alice"))
        XCTAssertNotNil(((try inventory())["shop/web"]?["quarantines"] as? [[String: Any]])?.first?["end"] as? String)

        try FileManager.default.removeItem(atPath: directory + "/state/pods.yaml")
        _ = agent.syncNow()
        now = try inventory()
        XCTAssertEqual(now["shop/db"]?["present"] as? Bool, false, "gone, but still in the inventory")
        XCTAssertEqual(protection(now["shop/db"], "ingress"), [false, true])
        XCTAssertNotNil(((now["shop/db"]?["protection"] as? [String: Any])?["ingress"] as? [[String: Any]])?.last?["to"] as? String)
    }
}

/// Authorised changes (CC8.1): with namespaceOwners in the roles file, a policy file for a listed
/// namespace is enforced only if its owner may change that namespace.
final class NamespaceOwnerTests: XCTestCase {
    func testPolicyFilesOfOtherOwnersAreRejectedAndTheLastGoodOneStays() throws {
        let directory = NSTemporaryDirectory() + "palisade-owners-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        try "namespaceOwners:\n  shop: {users: [\"1001\"]}\n".write(toFile: directory + "/rbac.yaml", atomically: true, encoding: .utf8)
        try AgentTests.pods.write(toFile: directory + "/state/pods.yaml", atomically: true, encoding: .utf8)
        let policy = directory + "/state/deny.yaml"
        try AgentTests.denyAll.write(toFile: policy, atomically: true, encoding: .utf8)
        XCTAssertEqual(chown(policy, 1001, 1001), 0)
        let events = try EventLog(path: directory + "/data/events.jsonl")
        defer { events.close() }
        var config = AgentConfig()
        config.rbacFile = directory + "/rbac.yaml"
        let agent = Agent(config: config, stateDirectory: directory + "/state", dataDirectory: directory + "/data",
                          dataplane: FakeDataplane(), events: events, logger: Logger(label: "test"))
        var status = agent.syncNow()
        XCTAssertEqual(status.policies, 1, "uid 1001 owns shop: enforced")
        XCTAssertEqual(status.rejectedFiles, [])

        // The same file, now owned by uid 1002: rejected as unauthorised; the last good content stays.
        try AgentTests.denyAll.replacingOccurrences(of: "[Ingress]", with: "[Ingress, Egress]").write(toFile: policy, atomically: true, encoding: .utf8)
        XCTAssertEqual(chown(policy, 1002, 1002), 0)
        status = agent.syncNow()
        XCTAssertEqual(status.rejectedFiles.first?.message.hasPrefix("unauthorised: the file's owner"), true, "\(status.rejectedFiles)")
        XCTAssertEqual(status.policies, 1)
        XCTAssertEqual(agent.currentStateForTests().policies.first?.policyTypes, [.ingress], "the last good policy stays in force")
        let refusal = try EventLog.read(path: directory + "/data/events.jsonl").last { $0.type == .fileRejected }
        XCTAssertEqual(refusal?.actor.uid, 1002)
        XCTAssertTrue(refusal?.error?.contains("namespace shop") ?? false)

        // Root may change anything.
        XCTAssertEqual(chown(policy, 0, 0), 0)
        status = agent.syncNow()
        XCTAssertEqual(status.rejectedFiles, [])
        XCTAssertEqual(agent.currentStateForTests().policies.first?.policyTypes, [.ingress, .egress])
    }

    func testTheRolesFileParsesNamespaceOwners() throws {
        let roles = try Roles.parse("namespaceOwners:\n  shop: {users: [alice], groups: [shop-admins]}\n  \"*\": {groups: [platform]}\n", path: "r.yaml")
        XCTAssertEqual(roles.namespaceOwners["shop"]?.users, ["alice"])
        XCTAssertNil(roles.policyChangeRefusal(namespace: "other", by: Account(uid: 5, userName: "bob")))
        XCTAssertNotNil(roles.policyChangeRefusal(namespace: "shop", by: Account(uid: 5, userName: "bob")))
        XCTAssertNil(roles.policyChangeRefusal(namespace: "shop", by: Account(uid: 6, userName: "alice")))
        XCTAssertNotNil(roles.policyChangeRefusal(namespace: nil, by: Account(uid: 6, userName: "alice")))
        XCTAssertNil(roles.policyChangeRefusal(namespace: nil, by: Account(uid: 7, userName: "carol", groupNames: ["platform"])))
        XCTAssertThrowsError(try Roles.parse("namespaceOwners:\n  shop: {user: [alice]}\n", path: "r.yaml")) { error in
            XCTAssertTrue("\(error)".contains("r.yaml:2") && "\(error)".contains("unknown key \"user\""), "\(error)")
        }
    }
}
