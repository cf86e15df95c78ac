@testable import AgentCore
import Foundation
import Logging
import NftablesModel
import PolicyModel
import XCTest

/// Quarantine and release through the agent, against the fake kernel: the dispatch entries of
/// exactly one pod change, in one batch, and the quarantine survives a new agent.
final class QuarantineTests: XCTestCase {
    var directory: String!
    var dataDirectory: String { directory + "-data" }
    let alice = Peer(uid: 1001, gid: 1001, pid: 42, userName: "alice")

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "palisade-quarantine-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AgentTests.pods.write(toFile: directory + "/pods.yaml", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    func makeAgent(_ dataplane: FakeDataplane) -> Agent {
        var config = AgentConfig()
        config.debounceMilliseconds = 0
        return Agent(config: config, stateDirectory: directory, dataDirectory: dataDirectory, dataplane: dataplane,
                     logger: Logger(label: "test"))
    }

    func dispatch(_ dataplane: FakeDataplane, _ map: String, _ interface: String) -> Verdict? {
        dataplane.tables["palisade"]?.sets[map]?.elements.first { Bytes.ifnameString($0.key) == interface }?.verdict
    }

    func testQuarantineSwapsOnlyThatPodsDispatchEntriesInOneBatch() throws {
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        let before = dataplane.commits.count
        let outcome = try agent.quarantine("shop/web", reason: "beaconing to known C2", futurePods: false, actor: alice)
        XCTAssertTrue(outcome.message.hasPrefix("quarantined shop/web"), outcome.message)
        XCTAssertEqual(dataplane.commits.count, before + 1, "one batch")
        XCTAssertEqual(dispatch(dataplane, "ingress-dispatch", "plweb"), .jump("quarantine-ingress"))
        XCTAssertEqual(dispatch(dataplane, "egress-dispatch", "plweb"), .jump("quarantine-egress"))
        XCTAssertEqual(dispatch(dataplane, "ingress-dispatch", "pldb"), .jump("allow-ingress"), "other pods unaffected")
        // The batch is a delta: no table replacement, only elements and the new chains.
        XCTAssertFalse(dataplane.commits.last!.contains { if case .deleteTable = $0 { return true }; return false })

        let rows = try XCTUnwrap(agent.rows(kind: "quarantines"))
        XCTAssertEqual(rows.first?["requestedBy"], "alice (uid 1001)")
        XCTAssertEqual(rows.first?["reason"], "beaconing to known C2")
        XCTAssertEqual(rows.first?["active"], "yes")

        XCTAssertThrowsError(try agent.quarantine("shop/web", reason: "again", futurePods: false, actor: alice)) { error in
            XCTAssertTrue("\(error)".hasPrefix("shop/web is already quarantined"), "\(error)")
            XCTAssertEqual((error as? OperationRefusal)?.exitCode, 1)
        }
        XCTAssertThrowsError(try agent.quarantine("shop/wbe", reason: "typo", futurePods: false, actor: alice)) { error in
            XCTAssertEqual("\(error)", "no pod shop/wbe in the state directory")
        }
        XCTAssertThrowsError(try agent.release("shop/db", actor: alice)) { error in
            XCTAssertEqual("\(error)", "shop/db is not quarantined")
        }

        _ = try agent.release("shop/web", actor: alice)
        XCTAssertEqual(dispatch(dataplane, "ingress-dispatch", "plweb"), .jump("allow-ingress"))
        XCTAssertEqual(dispatch(dataplane, "egress-dispatch", "plweb"), .jump("allow-egress"))
        XCTAssertEqual(agent.rows(kind: "quarantines")?.count, 0)
    }

    func testQuarantineSurvivesANewAgentAndPodRewrites() throws {
        let dataplane = FakeDataplane()
        _ = try makeAgent(dataplane).syncNow()
        _ = try makeAgent(dataplane).quarantine("shop/db", reason: "exfiltration", futurePods: false, actor: alice)

        // A new agent (restart), the pod's file rewritten with new labels: still quarantined.
        try AgentTests.pods.replacingOccurrences(of: "app: db", with: "app: database")
            .write(toFile: directory + "/pods.yaml", atomically: true, encoding: .utf8)
        let restarted = makeAgent(dataplane)
        _ = restarted.syncNow()
        XCTAssertEqual(dispatch(dataplane, "ingress-dispatch", "pldb"), .jump("quarantine-ingress"))
        XCTAssertEqual(restarted.status().inSync, true)
    }

    func testAQuarantineCoversOnlyThePodInstanceItNamesUnlessItSaysSo() {
        let first = Endpoint(namespace: "shop", name: "web", addresses: [IPAddress("198.18.0.1")!])
        var old = first
        old.uid = "uid-1"
        var recreated = first
        recreated.uid = "uid-2"
        let pinned = Quarantine(namespace: "shop", name: "web", reason: "r", podUID: "uid-1")
        XCTAssertTrue(pinned.covers(old))
        XCTAssertFalse(pinned.covers(recreated))
        XCTAssertTrue(Quarantine(namespace: "shop", name: "web", reason: "r", podUID: "uid-1", futurePods: true).covers(recreated))
        XCTAssertTrue(Quarantine(namespace: "shop", name: "web", reason: "r").covers(recreated), "no UID: any pod of that name")
    }

    func testAQuarantineFileInTheStateDirectoryIsReleasedOnlyByRemovingIt() throws {
        try """
        apiVersion: palisade.dev/v1
        kind: Quarantine
        metadata: {name: web, namespace: shop}
        spec: {reason: "GitOps says so"}
        """.write(toFile: directory + "/quarantine-web.yaml", atomically: true, encoding: .utf8)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        XCTAssertEqual(dispatch(dataplane, "egress-dispatch", "plweb"), .jump("quarantine-egress"))
        XCTAssertThrowsError(try agent.release("shop/web", actor: alice)) { error in
            XCTAssertTrue("\(error)".contains("remove that file"), "\(error)")
        }
        XCTAssertThrowsError(try agent.quarantine("shop/web", reason: "twice", futurePods: false, actor: alice))
        try FileManager.default.removeItem(atPath: directory + "/quarantine-web.yaml")
        _ = agent.syncNow()
        XCTAssertEqual(dispatch(dataplane, "egress-dispatch", "plweb"), .jump("allow-egress"))
    }

    func testEveryQuarantineAndReleaseIsRecordedWithItsActor() throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let path = dataDirectory + "/events.jsonl"
        let events = try EventLog(path: path)
        var config = AgentConfig()
        config.debounceMilliseconds = 0
        let agent = Agent(config: config, stateDirectory: directory, dataDirectory: dataDirectory, dataplane: FakeDataplane(),
                          events: events, logger: Logger(label: "test"))
        _ = agent.syncNow()
        _ = try agent.quarantine("shop/web", reason: "beaconing", futurePods: false, actor: alice)
        XCTAssertThrowsError(try agent.quarantine("shop/web", reason: "again", futurePods: false, actor: alice))
        _ = try agent.release("shop/web", actor: Peer(uid: 0, gid: 0, pid: 7, userName: "root"))
        let records = try EventLog.read(path: path).filter { !$0.type.rawValue.hasPrefix("object.") }
        XCTAssertEqual(records.map(\.type), [.quarantine, .quarantine, .release])
        XCTAssertEqual(records.map(\.outcome), [.applied, .refused, .applied])
        XCTAssertEqual(records[0].actor.user, "alice")
        XCTAssertEqual(records[0].actor.uid, 1001)
        XCTAssertEqual(records[0].reason, "beaconing")
        XCTAssertEqual(records[0].target, "shop/web")
        XCTAssertNotNil(records[0].generation)
        XCTAssertTrue(records[1].error?.hasPrefix("shop/web is already quarantined") ?? false)
        XCTAssertEqual(records[2].actor.user, "root")
        XCTAssertTrue(EventLog.verify(path: path).isIntact)
    }

    func testPodsWithoutAddressOrOnAnotherNodeAreQuarantinedAndReleasedWithoutAKernelChange() throws {
        try (AgentTests.pods + """

        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: pending, namespace: shop}
        status: {phase: Pending}
        """).write(toFile: directory + "/pods.yaml", atomically: true, encoding: .utf8)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        let outcome = try agent.quarantine("shop/pending", reason: "suspicious image", futurePods: false, actor: alice)
        XCTAssertTrue(outcome.message.contains("no address yet"), outcome.message)
        XCTAssertEqual(agent.rows(kind: "quarantines")?.first?["active"], "no")
        _ = try agent.release("shop/pending", actor: alice)
        XCTAssertEqual(agent.rows(kind: "quarantines")?.count, 0)
    }

    func testAFailedBatchLeavesNoQuarantineBehind() throws {
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        dataplane.failAlways = FakeDataplane.Injected(description: "add element: No buffer space available")
        XCTAssertThrowsError(try agent.quarantine("shop/web", reason: "r", futurePods: false, actor: alice)) { error in
            XCTAssertEqual((error as? OperationRefusal)?.exitCode, 2)
        }
        dataplane.failAlways = nil
        _ = agent.syncNow()
        XCTAssertEqual(agent.rows(kind: "quarantines")?.count, 0, "nothing half-done")
        XCTAssertEqual(dispatch(dataplane, "ingress-dispatch", "plweb"), .jump("allow-ingress"))
    }
}
