import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The agent's life on a node, judged by packets and by `nft`: SIGHUP reloads the configuration
/// (a live key changes the rules at once, a bad file changes nothing), and `agentd --remove-rules`
/// deletes the table only once the agent is stopped, with a record of it.
final class LifecycleTests: EnforcementTestCase {
    func testReloadChangesTheRulesAtOnceAndABadFileChangesNothing() throws {
        assertTraffic(allowed: both("b1", "a1", .v4, .v6), "default allow at start")

        try writeConfiguration("defaultPolicy: deny\ntableName: renamed\n")
        agent.process?.send(SIGHUP)
        try waitForEvents("config.reloaded", count: 1)
        assertTraffic(denied: both("b1", "a1", .v4, .v6), "default deny after SIGHUP")
        XCTAssertNotNil(try lab.nftTable(), "the table keeps its name until a restart")
        XCTAssertTrue(agent.log.contains("config.reload.needs_restart"), "tableName is reported as needing a restart")

        try writeConfiguration("defaultPolicy: maybe\n")
        agent.process?.send(SIGHUP)
        try waitForEvents("config.reloaded", count: 2)
        XCTAssertTrue(agent.log.contains("config.reload.rejected"))
        assertTraffic(denied: both("b1", "a1", .v4, .v6), "a bad file leaves the running configuration")
        XCTAssertTrue(agent.process?.isRunning ?? false, "a bad file at reload does not stop the agent")
    }

    func testRemoveRulesRefusesWhileTheAgentRunsAndDeletesTheTableOnceItIsStopped() throws {
        try writeConfiguration("defaultPolicy: deny\n")
        agent.process?.send(SIGHUP)
        try waitForEvents("config.reloaded", count: 1)
        assertTraffic(denied: both("b1", "a1", .v4, .v6), "default deny")

        let refused = try removeRules()
        XCTAssertEqual(refused.status, 1, refused.transcript)
        XCTAssertTrue(refused.stderr.contains("agentd is running"), refused.transcript)
        XCTAssertNotNil(try lab.nftTable(), "the table stays while the agent runs")

        agent.stop()
        XCTAssertEqual(agent.process?.terminationStatus, 0)
        assertTraffic(denied: both("b1", "a1", .v4, .v6), "SIGTERM leaves the rules in force")

        let removed = try removeRules()
        XCTAssertEqual(removed.status, 0, removed.transcript)
        XCTAssertNil(try lab.nftTable(), "table inet palisade is gone")
        assertTraffic(allowed: both("b1", "a1", .v4, .v6), "nothing filters once the table is deleted")
        let records = try String(contentsOf: agent.dataDirectory.appendingPathComponent("events.jsonl"), encoding: .utf8)
        let last = try XCTUnwrap(records.split(separator: "\n").last)
        XCTAssertTrue(last.contains("\"type\":\"rules.removed\"") && last.contains("\"outcome\":\"applied\""), String(last))
    }

    // MARK: - Helpers

    /// The test agent's configuration (interface prefix of the lab) plus `extra`.
    func writeConfiguration(_ extra: String) throws {
        try ("interfacePrefix: pl\nresyncSeconds: 0\n" + extra).write(to: agent.configuration, atomically: true, encoding: .utf8)
    }

    /// Waits until the event record holds `count` records of `type`.
    func waitForEvents(_ type: String, count: Int, timeout: TimeInterval = 10) throws {
        let path = agent.dataDirectory.appendingPathComponent("events.jsonl")
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = (try? String(contentsOf: path, encoding: .utf8)) ?? ""
            if text.components(separatedBy: "\"type\":\"\(type)\"").count - 1 >= count { return }
            usleep(50_000)
        }
        throw CommandError(description: "fewer than \(count) \(type) records after \(timeout) s")
    }

    func removeRules() throws -> CommandResult {
        try Command.run(["ip", "netns", "exec", lab.nodeNamespace, Agent.agentdPath, "--remove-rules",
                         "--socket", agent.socket.path, "--data-dir", agent.dataDirectory.path,
                         "--config", agent.configuration.path])
    }
}
