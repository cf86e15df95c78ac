@testable import AgentCore
import Foundation
import Logging
import NftablesModel
import PolicyCompiler
import PolicyModel
import XCTest

final class AgentTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "palisade-agent-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: directory + "-data")
    }

    func write(_ name: String, _ text: String) throws {
        let path = directory + "/" + name
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    static let pods = """
    apiVersion: v1
    kind: Pod
    metadata: {name: web, namespace: shop, labels: {app: web}, annotations: {palisade.dev/interface: plweb}}
    status: {phase: Running, podIPs: [{ip: 198.18.0.11}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: db, namespace: shop, labels: {app: db}, annotations: {palisade.dev/interface: pldb}}
    status: {phase: Running, podIPs: [{ip: 198.18.0.12}]}
    """

    static let denyAll = """
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny-all, namespace: shop}
    spec: {podSelector: {}, policyTypes: [Ingress]}
    """

    func makeAgent(_ dataplane: FakeDataplane) -> Agent {
        var config = AgentConfig()
        config.debounceMilliseconds = 0
        return Agent(config: config, stateDirectory: directory, dataDirectory: directory + "-data", dataplane: dataplane,
                     logger: Logger(label: "test"))
    }

    func testStartReplacesTheTableAndSyncAppliesChanges() throws {
        try write("pods.yaml", Self.pods)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        XCTAssertEqual(dataplane.commits.count, 1)
        XCTAssertEqual(dataplane.commits[0].first, .addTable(family: .inet, name: "palisade", flags: [.owner, .persist]))
        XCTAssertEqual(dataplane.flags["palisade"], [.owner, .persist])
        XCTAssertEqual(dataplane.tables["palisade"]?.sets["ingress-dispatch"]?.elements.count, 2)

        // Nothing changed: no batch.
        var status = agent.syncNow()
        XCTAssertEqual(dataplane.commits.count, 1)
        XCTAssertTrue(status.inSync)

        try write("policies/deny.yaml", Self.denyAll)
        status = agent.syncNow()
        XCTAssertEqual(dataplane.commits.count, 2)
        XCTAssertEqual(status.generation, 2)
        XCTAssertEqual(status.policies, 1)
        XCTAssertTrue(status.inSync)
        let web = dataplane.tables["palisade"]?.sets["ingress-dispatch"]?.elements.first { Bytes.ifnameString($0.key) == "plweb" }
        XCTAssertEqual(web?.verdict?.chain?.hasPrefix("ep."), true)
    }

    func testAKernelWithoutPersistentTablesGetsAnUnownedTable() throws {
        try write("pods.yaml", Self.pods)
        let dataplane = FakeDataplane()
        dataplane.refuseTableFlags = true
        let status = makeAgent(dataplane).syncNow()
        XCTAssertTrue(status.inSync)
        XCTAssertNil(status.lastError)
        XCTAssertEqual(dataplane.flags["palisade"], [], "an owned table without persist would vanish with the agent")
    }

    func testRejectedFileKeepsItsLastGoodObjects() throws {
        try write("pods.yaml", Self.pods)
        try write("deny.yaml", Self.denyAll)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        let before = dataplane.tables["palisade"]

        try write("deny.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: shop}\nspec:\n  podSelector: {matchExpressions: [{key: a, operator: Equals}]}\n")
        let status = agent.syncNow()
        XCTAssertEqual(status.rejectedFiles.count, 1)
        XCTAssertEqual(status.rejectedFiles.first?.path, directory + "/deny.yaml")
        XCTAssertEqual(status.policies, 1, "the last good policy stays in force")
        XCTAssertEqual(dataplane.tables["palisade"], before)
        XCTAssertTrue(status.inSync)

        try FileManager.default.removeItem(atPath: directory + "/deny.yaml")
        let after = agent.syncNow()
        XCTAssertEqual(after.rejectedFiles, [])
        XCTAssertEqual(after.policies, 0)
    }

    func testASymlinkLoopInTheStateDirectoryIsScannedOnce() throws {
        try write("pods/pods.yaml", Self.pods)
        try FileManager.default.createSymbolicLink(atPath: directory + "/pods/loop", withDestinationPath: directory + "/pods")
        let agent = makeAgent(FakeDataplane())
        try agent.start()   // the watcher must not descend the loop either
        let status = agent.syncNow()
        XCTAssertEqual(status.endpoints, 2)
        XCTAssertEqual(status.files, 1, "the loop adds no second copy of the file")
    }

    func testATruncatedFileKeepsItsObjectsUntilItHasContentAgain() throws {
        try write("pods.yaml", Self.pods)
        try write("deny.yaml", Self.denyAll)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        try write("deny.yaml", "")
        let truncated = agent.syncNow()
        XCTAssertEqual(truncated.policies, 1, "half-rewritten files must not open access")
        XCTAssertEqual(truncated.rejectedFiles.first?.message.hasPrefix("the file is empty"), true)
        try FileManager.default.removeItem(atPath: directory + "/deny.yaml")
        XCTAssertEqual(agent.syncNow().policies, 0)
    }

    func testStartupWithABrokenFileHoldsTheTableInForce() throws {
        try write("pods.yaml", Self.pods)
        try write("deny.yaml", "kind: [unclosed\n")
        let dataplane = FakeDataplane()
        dataplane.tables["palisade"] = Table(name: "palisade", chains: [Chain(name: "left-by-the-last-agent")])
        let agent = makeAgent(dataplane)
        let status = agent.syncNow()
        XCTAssertEqual(dataplane.commits.count, 0, "a restart must not drop rules whose file is broken now")
        XCTAssertFalse(status.inSync)
        XCTAssertNotNil(status.lastError)

        try write("deny.yaml", Self.denyAll)
        let fixed = agent.syncNow()
        XCTAssertEqual(dataplane.commits.count, 1)
        XCTAssertTrue(fixed.inSync)
    }

    func testAFailedBatchIsReportedAndRetried() throws {
        try write("pods.yaml", Self.pods)
        let dataplane = FakeDataplane()
        dataplane.failNext = FakeDataplane.Injected(description: "add rule: Operation not supported")
        let agent = makeAgent(dataplane)
        let failed = agent.syncNow()
        XCTAssertFalse(failed.inSync)
        XCTAssertEqual(failed.lastError, "add rule: Operation not supported")
        let retried = agent.syncNow()
        XCTAssertTrue(retried.inSync)
        XCTAssertNil(retried.lastError)
    }

    func testKernelDriftIsRepairedOnSync() throws {
        try write("pods.yaml", Self.pods)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        _ = agent.syncNow()
        dataplane.tables["palisade"]?.chains["forward"]?.rules = []
        XCTAssertFalse(agent.status().inSync)
        let repaired = agent.syncNow()
        XCTAssertTrue(repaired.inSync)
        XCTAssertEqual(repaired.driftRepairs, 1)
        XCTAssertEqual(dataplane.commits.count, 2)
    }

    func testFileEventsTriggerAReconcile() throws {
        try write("pods.yaml", Self.pods)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        try agent.start()
        try write("deny.yaml", Self.denyAll)
        let deadline = Date().addingTimeInterval(5)
        while agent.status().policies == 0 && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(agent.status().policies, 1)
    }

    func testABurstOfAThousandPodFilesBecomesAFewBatches() throws {
        let dataplane = FakeDataplane()
        var config = AgentConfig()
        config.debounceMilliseconds = 100
        config.resyncSeconds = 0
        let agent = Agent(config: config, stateDirectory: directory, dataDirectory: directory + "-data", dataplane: dataplane,
                          logger: Logger(label: "test"))
        try agent.start()
        let before = dataplane.commits.count
        for index in 0..<1000 {
            try write("pods/p\(index).yaml", """
                apiVersion: v1
                kind: Pod
                metadata: {name: p\(index), namespace: burst, labels: {app: a\(index % 10)}}
                status: {phase: Running, podIPs: [{ip: 198.18.\(index / 250).\(index % 250 + 1)}]}
                """)
        }
        let deadline = Date().addingTimeInterval(20)
        while agent.status().endpoints < 1000 && Date() < deadline { usleep(50_000) }
        usleep(500_000)
        XCTAssertEqual(agent.status().endpoints, 1000)
        let batches = dataplane.commits.count - before
        XCTAssertGreaterThanOrEqual(batches, 1)
        XCTAssertLessThanOrEqual(batches, 10, "1,000 file writes must coalesce into a few batches, not \(batches)")
        print("1000 pod files written: \(batches) batches")
    }

    /// With the watcher running, a pod file written, relabelled and removed reaches the kernel as
    /// element changes only, without a rescan of the directory; a policy change compiles anew.
    func testPodFilesAreTakenInAsElementChanges() throws {
        try write("pods.yaml", Self.pods)
        try write("deny.yaml", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: from-web, namespace: shop}
            spec: {podSelector: {}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]}
            """)
        let dataplane = FakeDataplane()
        let agent = makeAgent(dataplane)
        try agent.start()
        func waitForCommit(after count: Int) -> [Change]? {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let last = agent.onQueueForTests({ dataplane.commits.count > count ? dataplane.commits.last : nil }) { return last }
                usleep(10_000)
            }
            return nil
        }
        func onlyElements(_ batch: [Change]?) -> Bool {
            guard let batch, !batch.isEmpty else { return false }
            return batch.allSatisfy { if case .addElements = $0 { return true }; if case .deleteElements = $0 { return true }; return false }
        }
        let pod = """
            apiVersion: v1
            kind: Pod
            metadata: {name: cache, namespace: shop, labels: {app: web}, annotations: {palisade.dev/interface: plcache}}
            status: {phase: Running, podIPs: [{ip: 198.18.0.13}]}
            """
        var commits = dataplane.commits.count
        try write("cache.yaml", pod)
        let added = waitForCommit(after: commits)
        XCTAssertTrue(onlyElements(added), "\(added?.map(\.summary) ?? [])")
        XCTAssertEqual(agent.status().endpoints, 3)
        XCTAssertTrue(agent.status().inSync)

        commits = dataplane.commits.count
        try write("cache.yaml", pod.replacingOccurrences(of: "app: web", with: "app: db"))
        XCTAssertTrue(onlyElements(waitForCommit(after: commits)))

        commits = dataplane.commits.count
        try FileManager.default.removeItem(atPath: directory + "/cache.yaml")
        XCTAssertTrue(onlyElements(waitForCommit(after: commits)))
        XCTAssertEqual(agent.status().endpoints, 2)

        commits = dataplane.commits.count
        try FileManager.default.removeItem(atPath: directory + "/deny.yaml")
        let policyGone = waitForCommit(after: commits)
        XCTAssertFalse(onlyElements(policyGone), "a policy change rebuilds chains")
        XCTAssertEqual(agent.status().policies, 0)
        XCTAssertTrue(agent.status().inSync)
        XCTAssertEqual(dataplane.tables["palisade"], PolicyCompiler.compile(agent.currentStateForTests()).table)
    }

    func testGetRows() throws {
        try write("pods.yaml", Self.pods)
        try write("deny.yaml", Self.denyAll)
        let agent = makeAgent(FakeDataplane())
        _ = agent.syncNow()
        let endpoints = try XCTUnwrap(agent.rows(kind: "endpoints"))
        XCTAssertEqual(endpoints.map { $0["name"] }, ["db", "web"])
        XCTAssertEqual(endpoints.first?["ingress"], "shop/deny-all")
        XCTAssertEqual(endpoints.first?["egress"], "(default allow)")
        XCTAssertEqual(agent.rows(kind: "policies")?.first?["selectedEndpoints"], "2")
        XCTAssertNil(agent.rows(kind: "services"))
    }
}

final class ConfigTests: XCTestCase {
    func testParsesEveryKey() throws {
        let config = try AgentConfig.parse("defaultPolicy: deny\ntableName: lab\ninterfacePrefix: veth\nnodeName: n1\ndebounceMilliseconds: 50\n", path: "c.yaml")
        XCTAssertEqual(config.compiler.defaultPolicy, .deny)
        XCTAssertEqual(config.compiler.tableName, "lab")
        XCTAssertEqual(config.compiler.interfacePrefix, "veth")
        XCTAssertEqual(config.compiler.nodeName, "n1")
        XCTAssertEqual(config.debounceMilliseconds, 50)
    }

    func testTheShippedExampleConfigurationIsValidAndSaysTheDefaults() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Packaging/examples/agentd.yaml").standardized.path
        XCTAssertEqual(try AgentConfig.load(path: path), AgentConfig())
    }

    func testQuarantineExemptionIsACalicoSelector() throws {
        let config = try AgentConfig.parse("quarantineExemption: \"role == 'forensics'\"\n", path: "c.yaml")
        XCTAssertEqual(config.compiler.quarantineExemption, .equals("role", "forensics"))
        XCTAssertThrowsError(try AgentConfig.parse("quarantineExemption: \"role = x\"\n", path: "c.yaml")) { error in
            XCTAssertTrue("\(error)".hasPrefix("c.yaml:1: quarantineExemption \"role = x\" is not a valid selector"), "\(error)")
        }
    }

    func testErrorsNameFileAndLine() {
        XCTAssertThrowsError(try AgentConfig.parse("tableName: ok\ndefaultPolicy: maybe\n", path: "c.yaml")) { error in
            XCTAssertEqual("\(error)", "c.yaml:2: defaultPolicy \"maybe\" is not one of allow, deny")
        }
        XCTAssertThrowsError(try AgentConfig.parse("colour: blue\n", path: "c.yaml")) { error in
            XCTAssertEqual("\(error)", "c.yaml:1: unknown configuration key \"colour\"")
        }
    }
}

final class StateLoaderTests: XCTestCase {
    func testIgnoresEditorFilesAndDotfiles() {
        XCTAssertTrue(StateLoader.isStateFile("web.yaml"))
        XCTAssertTrue(StateLoader.isStateFile("web.JSON"))
        XCTAssertFalse(StateLoader.isStateFile(".web.yaml.swp"))
        XCTAssertFalse(StateLoader.isStateFile("web.yaml~"))
        XCTAssertFalse(StateLoader.isStateFile("#web.yaml#"))
        XCTAssertFalse(StateLoader.isStateFile(".hidden.yaml"))
        XCTAssertFalse(StateLoader.isStateFile("notes.txt"))
    }

    /// `update(paths:)` reads only the files named and says which objects changed; the rest of the
    /// directory is seen at the next full scan. Duplicates across files: the later path wins.
    func testUpdateReadsOnlyTheNamedFiles() throws {
        let directory = NSTemporaryDirectory() + "palisade-loader-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func write(_ name: String, _ text: String) throws { try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
        try write("a.yaml", AgentTests.pods)
        try write("deny.yaml", AgentTests.denyAll)
        let loader = StateLoader(directory: directory)
        let first = loader.scan()
        XCTAssertEqual(first.changes.map(\.key), ["NetworkPolicy shop/deny-all", "Pod shop/db", "Pod shop/web"])
        XCTAssertEqual(loader.desiredState().endpoints.count, 2)

        try write("a.yaml", AgentTests.pods.replacingOccurrences(of: "app: db", with: "app: database"))
        try write("deny.yaml", AgentTests.denyAll.replacingOccurrences(of: "deny-all", with: "deny-everything"))
        let partial = loader.update(paths: [directory + "/a.yaml"])
        XCTAssertEqual(partial.changes.map(\.key), ["Pod shop/db"], "web is unchanged; deny.yaml was not named")
        XCTAssertFalse(partial.complete)
        XCTAssertEqual(loader.desiredState().policies.map(\.name), ["deny-all"])

        // The same pod in a later file wins; removing that file brings the first back.
        try write("b.yaml", AgentTests.pods.replacingOccurrences(of: "198.18.0.11", with: "198.18.0.99"))
        let duplicate = loader.update(paths: [directory + "/b.yaml"])
        XCTAssertEqual(duplicate.changes.map(\.key), ["Pod shop/db", "Pod shop/web"])
        XCTAssertEqual(loader.desiredState().endpoints.first { $0.name == "web" }?.addresses.map { "\($0)" }, ["198.18.0.99"])
        try FileManager.default.removeItem(atPath: directory + "/b.yaml")
        let removed = loader.update(paths: [directory + "/b.yaml"])
        XCTAssertEqual(removed.changes.map(\.key), ["Pod shop/db", "Pod shop/web"])
        XCTAssertEqual(loader.desiredState().endpoints.first { $0.name == "web" }?.addresses.map { "\($0)" }, ["198.18.0.11"])

        let full = loader.scan()
        XCTAssertEqual(full.changes.map(\.key), ["NetworkPolicy shop/deny-all", "NetworkPolicy shop/deny-everything"])
        XCTAssertEqual(loader.desiredState().policies.map(\.name), ["deny-everything"])
    }
}
