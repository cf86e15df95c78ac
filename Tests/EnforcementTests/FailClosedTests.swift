import Foundation
import XCTest

/// What happens when things go wrong: bad files, unknown workloads, a killed agent. In every
/// case the answer must be "closed": the last good rules stay, unknown interfaces are dropped,
/// and no packet gets through a restart.
final class FailClosedTests: EnforcementTestCase {
    func testMalformedFileIsRejectedWithItsLineAndThePreviousRulesStay() throws {
        try applyPolicy("isolate-alpha", NetworkPolicyEnforcementTests.denyAllIngressInAlpha)
        assertTraffic(allowed: both("a1", "b1"), denied: both("b1", "a1"), "before the bad edit")

        // Line 12 is the bad operator; the rest is a perfectly good policy.
        let badPolicy = """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: deny-all-ingress
              namespace: alpha
            spec:
              podSelector: {}
              policyTypes:
              - Ingress
              ingress:
              - from:
                - podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}

            """
        try state.write("policies/isolate-alpha.yaml", badPolicy)
        let badPath = state.path("policies/isolate-alpha.yaml").path
        let rejected = try agent.ctl(["sync"], timeout: 60)
        XCTAssertNotEqual(rejected.status, 0, "sync must fail on a rejected file:\n\(rejected.transcript)")
        XCTAssertTrue(rejected.stderr.contains("isolate-alpha.yaml:12:"),
                      "sync must name the file and line (…isolate-alpha.yaml:12: …):\n\(rejected.transcript)")

        // The policy as it was before the edit still holds.
        assertTraffic(allowed: both("a1", "b1"), denied: both("b1", "a1", .v4, .v6) + both("a2", "a1"),
                      "after the bad edit")
        let status = try agent.status()
        let rejectedFiles = status["rejectedFiles"] as? [[String: Any]] ?? []
        XCTAssertTrue(rejectedFiles.contains { ($0["path"] as? String ?? "").hasSuffix("isolate-alpha.yaml") },
                      "status must list \(badPath): \(status)")
        XCTAssertEqual(rejectedFiles.first?["line"] as? Int, 12, "status: \(status)")

        // A file that is not even YAML is rejected too, and the agent keeps going.
        try state.write("policies/garbage.yaml", "apiVersion: [networking.k8s.io/v1\nkind: {{\n")
        let garbage = try agent.ctl(["sync"], timeout: 60)
        XCTAssertNotEqual(garbage.status, 0, garbage.transcript)
        XCTAssertNotNil(garbage.stderr.range(of: #"garbage\.yaml:\d+:"#, options: .regularExpression),
                        garbage.transcript)
        assertTraffic(allowed: both("a1", "b1"), denied: both("b1", "a1"), "after the garbage file")

        // Fixing the files clears the rejections and applies the new content.
        try state.remove("policies/garbage.yaml")
        try state.remove("policies/isolate-alpha.yaml")
        try agent.sync()
        XCTAssertEqual((try agent.status()["rejectedFiles"] as? [Any])?.count, 0)
        assertTraffic(allowed: both("b1", "a1"), "after the fix")
    }

    func testPrefixedInterfaceThatNoStateNamesIsDroppedUntilItsPodAppears() throws {
        // plrogue has the workload prefix, but no pod file names it: fail closed both ways.
        assertTraffic(
            allowed: both("b1", "a1"),
            denied: both("rogue", "a1", .v4, .v6) + both("rogue", "b2") + both("a1", "rogue", .v4, .v6))
        let table = try kernelTable()
        XCTAssertFalse(table.mapKeys("egress-dispatch")?.contains("plrogue") ?? true)
        XCTAssertFalse(table.mapKeys("ingress-dispatch")?.contains("plrogue") ?? true)

        // Once its pod is in the state directory it is an endpoint like any other.
        try state.write("pods/rogue.yaml", Manifest.pod(Self.roguePod))
        try agent.sync()
        assertTraffic(allowed: both("rogue", "a1", .v4, .v6) + both("b1", "rogue"), "after adding its pod")
        try assertDispatchMaps(hold: Self.knownInterfaces.union(["plrogue"]))
    }

    func testStoppedAgentLeavesRulesInForce() throws {
        try applyPolicy("isolate-alpha", NetworkPolicyEnforcementTests.denyAllIngressInAlpha)
        agent.stop()
        XCTAssertFalse(agent.process?.isRunning ?? true, "agentd did not stop on SIGTERM")
        XCTAssertEqual(agent.process?.terminationStatus, 0, "agentd's exit status on SIGTERM")
        try assertDispatchMaps(hold: Self.knownInterfaces)
        assertTraffic(allowed: both("a1", "b1"), denied: both("b1", "a1", .v4, .v6), "with the agent stopped")
    }

    func testKilledAgentLeavesRulesInForceAndARestartNeverOpensThem() throws {
        try applyPolicy("isolate-alpha", NetworkPolicyEnforcementTests.denyAllIngressInAlpha)
        let denied = both("b1", "a1", .v4, .v6)
        assertTraffic(allowed: both("a1", "b1"), denied: denied, "with the agent running")

        agent.kill9()
        XCTAssertFalse(agent.process?.isRunning ?? true, "agentd survived kill -9")
        try assertDispatchMaps(hold: Self.knownInterfaces)
        assertTraffic(allowed: both("a1", "b1"), denied: denied, "with the agent dead")

        // Tight probe loops against the closed ports through the restart, and one against
        // an open port to show that a loop does count what gets through.
        let watches = try [
            lab.startWatch(tcp("b1", "a1")), lab.startWatch(udp("b1", "a1")),
            lab.startWatch(tcp("b2", "a2", .v6)), lab.startWatch(udp("b2", "a1", .v6)),
        ]
        let control = try lab.startWatch(tcp("a2", "b1", port: 9090), interval: 0.05)
        // The directory changes while no agent watches it: the restarted one must catch up.
        try state.write("policies/isolate-beta-web.yaml", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: isolate-web
              namespace: beta
            spec:
              podSelector:
                matchLabels:
                  app: web
              policyTypes:
              - Ingress

            """)
        usleep(300_000)
        try agent.start()
        try agent.waitUntilInSync()
        try agent.sync()
        usleep(300_000)

        for watch in watches {
            let summary = try watch.finish()
            XCTAssertEqual(summary.breaches, 0,
                           "\(watch.flow) got through \(summary.breaches) times during the restart "
                           + "(first after \(summary.firstBreachAfter ?? 0) s)")
            XCTAssertGreaterThan(summary.attempts, 20, "the probe loop \(watch.flow) barely ran")
        }
        XCTAssertGreaterThan(try control.finish().breaches, 0, "the control loop saw no traffic at all")

        assertTraffic(allowed: both("a1", "b1"), denied: denied + both("a1", "b2"), "after the restart")
        try assertDispatchMaps(hold: Self.knownInterfaces)
    }
}
