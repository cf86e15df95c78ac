@testable import AgentCore
import Foundation
import Glibc
import Logging
import NftablesModel
import NftablesNetlink
import PolicyCompiler
import XCTest

/// The configuration file: one documented text of every key, errors that name the key, and what a
/// reload can change while the agent runs.
final class ConfigFileTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    func testTheShippedExampleIsTheAnnotatedDefaultByteForByte() throws {
        let path = Self.repository.appendingPathComponent("Packaging/examples/agentd.yaml").path
        let shipped = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(shipped, AgentConfig.annotatedDefault,
                       "Packaging/examples/agentd.yaml differs: regenerate it with `agentd --print-default-config > Packaging/examples/agentd.yaml`")
    }

    func testTheAnnotatedDefaultParsesToTheDefaults() throws {
        XCTAssertEqual(try AgentConfig.parse(AgentConfig.annotatedDefault, path: "default.yaml"), AgentConfig())
    }

    /// Commented-out keys (the ones without a default value) become real when uncommented, and then
    /// every key of `fields` is in the text exactly once, with a value the parser accepts.
    func testTheAnnotatedDefaultDocumentsEveryKeyWithAValidExample() throws {
        let known = Set(AgentConfig.fields.map(\.key))
        var keys: [String] = []
        let uncommented = AgentConfig.annotatedDefault.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var text = String(line)
            if text.hasPrefix("# "), let colon = text.firstIndex(of: ":"),
               known.contains(String(text[text.index(text.startIndex, offsetBy: 2)..<colon])) {
                text = String(text.dropFirst(2))
            }
            if !text.hasPrefix("#"), let colon = text.firstIndex(of: ":") { keys.append(String(text[..<colon])) }
            return text
        }.joined(separator: "\n")
        XCTAssertEqual(keys, AgentConfig.fields.map(\.key), "the text lists every key once, in the order of AgentConfig.fields")
        let example = try AgentConfig.parse(uncommented, path: "uncommented.yaml")
        XCTAssertEqual(example.compiler.nodeName, "node-3")
        XCTAssertEqual(example.compiler.quarantineExemption, .equals("role", "forensics"))
        XCTAssertEqual(example.metricsAddress?.port, 9464)
    }

    /// A property added to AgentConfig or CompilerOptions without a key (or a key without a
    /// property) fails here.
    func testEveryPropertyHasAKey() {
        var properties = Mirror(reflecting: AgentConfig()).children.compactMap(\.label).filter { $0 != "compiler" }
        properties += Mirror(reflecting: CompilerOptions()).children.compactMap(\.label)
        XCTAssertEqual(Set(properties), Set(AgentConfig.fields.map(\.key)))
        XCTAssertEqual(AgentConfig.fields.count, Set(AgentConfig.fields.map(\.key)).count, "no key twice")
    }

    func testErrorsNameTheKey() {
        let cases: [(String, String)] = [
            ("tablename: x\n", "c.yaml:1: unknown configuration key \"tablename\" (did you mean tableName?)"),
            ("resyncSecond: 5\n", "c.yaml:1: unknown configuration key \"resyncSecond\" (did you mean resyncSeconds?)"),
            ("logLevel: loud\n", "c.yaml:1: logLevel \"loud\" is not one of trace, debug, info, notice, warning, error, critical"),
            ("logFormat: xml\n", "c.yaml:1: logFormat \"xml\" is not one of text, json"),
            ("tableName: ok\nstateDirectory: state\n", "c.yaml:2: stateDirectory \"state\" must be an absolute path"),
            ("defaultPolicy:\n", "c.yaml:1: defaultPolicy has no value (leave the key out for the default)"),
            ("resyncSeconds: [1, 2]\n", "c.yaml:1: resyncSeconds must be a single value, not a list or mapping"),
            ("resyncSeconds: -1\n", "c.yaml:1: resyncSeconds must be a number from 0 to 86400"),
            ("ownTable: yes\n", "c.yaml:1: ownTable must be true or false"),
            ("- tableName: x\n", "c.yaml:1: the configuration must be a mapping"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try AgentConfig.parse(text, path: "c.yaml"), text) { error in
                XCTAssertEqual("\(error)", expected)
            }
        }
        XCTAssertThrowsError(try AgentConfig.parse("tableName: a\ntableName: b\n", path: "c.yaml")) { error in
            XCTAssertTrue("\(error)".contains("tableName"), "\(error)")
        }
    }

    func testEmptyOptionalValuesMeanUnset() throws {
        let config = try AgentConfig.parse("nodeName:\nmetricsAddress: ~\nsocketGroup: \"\"\nlogLevel: debug\nlogFormat: json\n", path: "c.yaml")
        XCTAssertNil(config.compiler.nodeName)
        XCTAssertNil(config.metricsAddress)
        XCTAssertNil(config.socketGroup)
        XCTAssertEqual(config.logLevel, .debug)
        XCTAssertEqual(config.logFormat, .json)
        XCTAssertEqual(try AgentConfig.parse("", path: "empty.yaml"), AgentConfig())
    }

    /// The DaemonSet's configuration is a block inside a ConfigMap; it must be a file agentd accepts.
    func testTheKubernetesConfigMapHoldsAValidConfiguration() throws {
        let path = Self.repository.appendingPathComponent("Packaging/kubernetes/configmap.yaml").path
        let manifest = try String(contentsOfFile: path, encoding: .utf8)
        let lines = manifest.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try XCTUnwrap(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "agent.yaml: |" })
        let block = lines[(start + 1)...].prefix { $0.hasPrefix("    ") || $0.isEmpty }.map { $0.dropFirst(min(4, $0.count)) }
        let config = try AgentConfig.parse(block.joined(separator: "\n"), path: "configmap.yaml:agent.yaml")
        XCTAssertEqual(config.logFormat, .json)
        XCTAssertNil(config.socketGroup, "no palisade group in the container")
        let daemonSet = try String(contentsOfFile: Self.repository.appendingPathComponent("Packaging/kubernetes/daemonset.yaml").path, encoding: .utf8)
        for directory in [config.stateDirectory, config.dataDirectory] {
            XCTAssertTrue(daemonSet.contains("mountPath: \(directory)\n"), "\(directory) is mounted from the host")
        }
    }

    func testTheSystemdUnitReadsTheDefaultConfigurationFile() throws {
        let unit = try String(contentsOfFile: Self.repository.appendingPathComponent("Packaging/systemd/agentd.service").path, encoding: .utf8)
        XCTAssertTrue(unit.contains("ExecStart=/usr/sbin/agentd --config \(AgentConfig.defaultPath)\n"))
        XCTAssertTrue(unit.contains("ReadWritePaths=\(AgentConfig().dataDirectory) /run/palisade\n"))
    }

    func testReloadAppliesLiveKeysAndKeepsTheRestUntilARestart() throws {
        var file = AgentConfig()
        file.compiler.defaultPolicy = .deny
        file.debounceMilliseconds = 50
        file.compiler.tableName = "other"
        file.metricsAddress = try MetricsAddress(parsing: "127.0.0.1:9100")
        let reload = ConfigReload(running: AgentConfig(), file: file)
        XCTAssertEqual(reload.applied, ["defaultPolicy", "debounceMilliseconds"])
        XCTAssertEqual(reload.needsRestart, ["tableName", "metricsAddress"])
        XCTAssertEqual(reload.effective.compiler.defaultPolicy, .deny)
        XCTAssertEqual(reload.effective.debounceMilliseconds, 50)
        XCTAssertEqual(reload.effective.compiler.tableName, "palisade", "the running table keeps its name")
        XCTAssertNil(reload.effective.metricsAddress)
        XCTAssertTrue(ConfigReload(running: file, file: file).changedNothing)
    }
}

/// SIGHUP's work inside the agent, against the fake kernel.
final class AgentReloadTests: XCTestCase {
    var directory: String!
    var dataDirectory: String { directory + "-data" }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "palisade-reload-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AgentTests.pods.write(toFile: directory + "/pods.yaml", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    func testReloadChangesTheRulesAtOnceAndIsRecorded() throws {
        let dataplane = FakeDataplane()
        let events = try EventLog(path: dataDirectory + "/events.jsonl")
        let agent = Agent(config: AgentConfig(), stateDirectory: directory, dataDirectory: dataDirectory, dataplane: dataplane,
                          events: events, logger: Logger(label: "test"))
        _ = agent.syncNow()
        let before = try XCTUnwrap(dataplane.tables["palisade"])

        var file = AgentConfig()
        file.compiler.defaultPolicy = .deny
        file.compiler.tableName = "elsewhere"
        let reload = try agent.reloadConfiguration(file, from: "/etc/palisade/agent.yaml")
        XCTAssertEqual(reload.applied, ["defaultPolicy"])
        XCTAssertEqual(reload.needsRestart, ["tableName"])
        XCTAssertEqual(agent.config.compiler.defaultPolicy, .deny)
        XCTAssertNotEqual(dataplane.tables["palisade"], before, "default deny is in the kernel when the reload returns")
        XCTAssertNil(dataplane.tables["elsewhere"], "the table is not renamed while the agent runs")
        XCTAssertTrue(agent.status().inSync)

        agent.configurationReloadFailed(path: "/etc/palisade/agent.yaml", error: ConfigError("agent.yaml:3: logLevel \"loud\" is not one of …"))
        XCTAssertEqual(agent.config.compiler.defaultPolicy, .deny, "a bad file changes nothing")

        // The state's objects are audited too (AuditTests); here: the reloads.
        let records = try EventLog.read(path: dataDirectory + "/events.jsonl").filter { !$0.type.rawValue.hasPrefix("object.") }
        XCTAssertEqual(records.map(\.type), [.configReloaded, .configReloaded])
        XCTAssertEqual(records[0].outcome, .applied)
        XCTAssertEqual(records[0].details?["applied"], "defaultPolicy")
        XCTAssertEqual(records[0].details?["needsRestart"], "tableName")
        XCTAssertEqual(records[0].target, "/etc/palisade/agent.yaml")
        XCTAssertEqual(records[1].outcome, .failed)
        XCTAssertTrue(records[1].error?.contains("logLevel") == true)
    }
}

/// `agentd --remove-rules` / `agentctl uninstall --yes`, against the fake kernel.
final class RuleRemovalTests: XCTestCase {
    var dataDirectory: String!
    let root = Peer(uid: 0, gid: 0, pid: 7, userName: "root")

    override func setUp() {
        dataDirectory = NSTemporaryDirectory() + "palisade-removal-test-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    func testDeletesTheTableAndRecordsIt() throws {
        let dataplane = FakeDataplane()
        dataplane.tables["palisade"] = Table(name: "palisade")
        dataplane.tables["other"] = Table(name: "other")
        let events = try EventLog(path: dataDirectory + "/events.jsonl")
        XCTAssertTrue(try RuleRemoval.removeTable(named: "palisade", dataplane: dataplane, events: events, actor: root,
                                                  logger: Logger(label: "test")))
        XCTAssertNil(dataplane.tables["palisade"])
        XCTAssertNotNil(dataplane.tables["other"], "only Palisade's table")
        XCTAssertEqual(dataplane.commits, [[.deleteTable(family: .inet, name: "palisade")]])

        XCTAssertFalse(try RuleRemoval.removeTable(named: "palisade", dataplane: dataplane, events: events, actor: root,
                                                   logger: Logger(label: "test")), "nothing left to delete")
        // The state's objects are audited too (AuditTests); here: the reloads.
        let records = try EventLog.read(path: dataDirectory + "/events.jsonl").filter { !$0.type.rawValue.hasPrefix("object.") }
        XCTAssertEqual(records.map(\.type), [.rulesRemoved, .rulesRemoved])
        XCTAssertEqual(records.map(\.outcome), [.applied, .applied])
        XCTAssertEqual(records.map { $0.details?["existed"] }, ["true", "false"])
        XCTAssertEqual(records[0].target, "inet palisade")
        XCTAssertEqual(records[0].actor, Actor(uid: 0, user: "root", pid: 7))
    }

    func testATableOwnedByARunningAgentStaysAndTheFailureIsRecorded() throws {
        let dataplane = FakeDataplane()
        dataplane.tables["palisade"] = Table(name: "palisade")
        dataplane.flags["palisade"] = [.owner, .persist]
        dataplane.failNext = NftablesError(kind: .rejected, operation: "delete table inet palisade", changeIndex: 0, code: EPERM)
        let events = try EventLog(path: dataDirectory + "/events.jsonl")
        XCTAssertThrowsError(try RuleRemoval.removeTable(named: "palisade", dataplane: dataplane, events: events, actor: root,
                                                         logger: Logger(label: "test"))) { error in
            XCTAssertEqual("\(error)", "table inet palisade is owned by a running agent's netlink socket: stop agentd first")
        }
        XCTAssertNotNil(dataplane.tables["palisade"])
        // The state's objects are audited too (AuditTests); here: the reloads.
        let records = try EventLog.read(path: dataDirectory + "/events.jsonl").filter { !$0.type.rawValue.hasPrefix("object.") }
        XCTAssertEqual(records.map(\.outcome), [.failed])
    }
}
