import Foundation
import XCTest

/// Flow logs and anomaly detection on real traffic: the kernel's NFLOG messages and conntrack
/// events become flow records with the right workloads, policy and counts; a pod that scans many
/// ports is quarantined by the agent on its own while a pod with steady traffic is left alone.
final class FlowLogTests: EnforcementTestCase {
    static let clientToDB = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: db-from-client, namespace: alpha}
        spec:
          podSelector: {matchLabels: {app: db}}
          ingress:
          - from:
            - namespaceSelector: {matchLabels: {team: beta}}
              podSelector: {matchLabels: {app: client}}
            ports: [{protocol: TCP, port: 8080}]

        """

    func restartAgent(with settings: String) throws {
        agent.stop()
        try ("defaultPolicy: allow\ntableName: palisade\ninterfacePrefix: pl\n" + settings)
            .write(to: agent.configuration, atomically: true, encoding: .utf8)
        try agent.start()
        try agent.sync()
    }

    /// TCP connections from `pod` to `target` on `ports` (each a new connection, closed at once),
    /// `perSecond` at most; returns how many were accepted.
    @discardableResult
    func connect(from pod: String, to target: String, ports: [Int], perSecond: Int = 1000) throws -> Int {
        let script = """
            import socket, sys, time
            host, rate = sys.argv[1], float(sys.argv[2])
            ok = 0
            for port in map(int, sys.argv[3:]):
                s = socket.socket(); s.settimeout(0.3)
                try:
                    s.connect((host, port)); ok += 1
                except OSError:
                    pass
                s.close()
                time.sleep(1 / rate)
            print(ok)
            """
        let result = try Command.run(["ip", "netns", "exec", lab.netns(pod), "python3", "-c", script,
                                      lab.address(of: target, .v4), "\(perSecond)"] + ports.map(String.init), timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func records(_ arguments: [String] = []) throws -> [[String: Any]] {
        let output = try agent.ctl(["flows", "-o", "json", "--limit", "10000"] + arguments).stdout
        return output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func name(_ peer: Any?) -> String {
        guard let peer = peer as? [String: Any] else { return "?" }
        if let namespace = peer["namespace"] as? String, let name = peer["name"] as? String { return "\(namespace)/\(name)" }
        return peer["address"] as? String ?? "?"
    }

    func testAllowedAndDeniedConnectionsAppearInTheFlowLog() throws {
        try restartAgent(with: "flowLogs: all\nflowIntervalSeconds: 1\n")
        try applyPolicy("db-from-client", Self.clientToDB)
        XCTAssertEqual(try connect(from: "b1", to: "a2", ports: Array(repeating: 8080, count: 5), perSecond: 20), 5)
        XCTAssertEqual(try connect(from: "b2", to: "a2", ports: Array(repeating: 8080, count: 3), perSecond: 20), 0)
        // A closed connection leaves conntrack (with its DESTROY event and counters) only when the
        // kernel reaps it, up to minutes later: end them now, as an expiry would.
        _ = try Command.run(["ip", "netns", "exec", lab.nodeNamespace, "conntrack", "-D", "-s", lab.address(of: "b1", .v4)], timeout: 20)

        var allowed: [[String: Any]] = [], denied: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(10)
        repeat {
            usleep(500_000)
            let all = try records()
            allowed = all.filter { Self.name($0["source"]) == "beta/b1" && Self.name($0["destination"]) == "alpha/a2" && $0["action"] as? String == "allow" }
            denied = all.filter { Self.name($0["source"]) == "beta/b2" && Self.name($0["destination"]) == "alpha/a2" && $0["action"] as? String == "deny" }
        } while (allowed.reduce(0) { $0 + ($1["connectionsCompleted"] as? Int ?? 0) } < 5 || denied.isEmpty) && Date() < deadline

        let started = allowed.reduce(0) { $0 + ($1["connectionsStarted"] as? Int ?? 0) }
        let completed = allowed.reduce(0) { $0 + ($1["connectionsCompleted"] as? Int ?? 0) }
        XCTAssertEqual(started, 5, "\(allowed)")
        XCTAssertEqual(completed, 5, "\(allowed)")
        XCTAssertTrue(allowed.allSatisfy { $0["dport"] as? Int == 8080 && $0["proto"] as? String == "tcp" }, "\(allowed)")
        let forwardPackets = allowed.reduce(0) { $0 + (($1["forward"] as? [String: Any])?["packets"] as? Int ?? 0) }
        XCTAssertGreaterThanOrEqual(forwardPackets, 15, "each connection: SYN, ACK, FIN at least (\(allowed))")
        let decisions = allowed.flatMap { $0["policies"] as? [[String: Any]] ?? [] }
        XCTAssertTrue(decisions.contains { $0["reporter"] as? String == "dst" && $0["policy"] as? String == "alpha/db-from-client" && $0["rule"] as? Int == 0 },
                      "\(decisions)")

        XCTAssertFalse(denied.isEmpty, "the denied SYNs of b2 are in the log")
        let deniedPackets = denied.reduce(0) { $0 + (($1["forward"] as? [String: Any])?["packets"] as? Int ?? 0) }
        XCTAssertGreaterThanOrEqual(deniedPackets, 3, "\(denied)")
        let deniedBy = denied.flatMap { $0["policies"] as? [[String: Any]] ?? [] }
        XCTAssertTrue(deniedBy.contains { $0["reporter"] as? String == "dst" && $0["decider"] as? String == "default" }, "\(deniedBy)")
        XCTAssertTrue(try records(["--denied"]).allSatisfy { $0["action"] as? String == "deny" })
        XCTAssertTrue(try records(["--endpoint", "beta/b2"]).allSatisfy {
            Self.name($0["source"]) == "beta/b2" || Self.name($0["destination"]) == "beta/b2" })
    }

    func testAPortScannerIsQuarantinedOnItsOwnAndASteadyClientIsNot() throws {
        try restartAgent(with: "flowIntervalSeconds: 1\nautoQuarantine: portScan,connectionFlood\n")
        // A steady client, running all along: two connections a second to one port.
        let steady = Process()
        steady.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        steady.arguments = ["netns", "exec", lab.netns("b1"), "python3", "-c", """
            import socket, time
            while True:
                s = socket.socket(); s.settimeout(0.3)
                try: s.connect(('\(lab.address(of: "a1", .v4))', 8080))
                except OSError: pass
                s.close(); time.sleep(0.5)
            """]
        try steady.run()
        defer { steady.terminate(); steady.waitUntilExit() }
        sleep(3)

        // The scanner: 300 ports at up to 400 a second, in the background.
        let scanner = Process()
        scanner.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        scanner.arguments = ["netns", "exec", lab.netns("b2"), "python3", "-c", """
            import socket, time
            for port in range(2000, 2300):
                s = socket.socket(); s.settimeout(0.05)
                try: s.connect(('\(lab.address(of: "a1", .v4))', port))
                except OSError: pass
                s.close(); time.sleep(0.0025)
            """]
        let started = Date()
        try scanner.run()
        defer { scanner.terminate(); scanner.waitUntilExit() }
        var quarantined = false
        while Date().timeIntervalSince(started) < 15 {
            let rows = try agent.ctl(["get", "quarantines", "-o", "json"]).stdout
            if rows.contains("\"b2\"") { quarantined = true; break }
            usleep(100_000)
        }
        XCTAssertTrue(quarantined, "the scanner is quarantined within seconds")
        print("port scan to quarantine: \(String(format: "%.1f", Date().timeIntervalSince(started))) s after the scan began")
        let quarantines = try agent.ctl(["get", "quarantines", "-o", "json"]).stdout
        XCTAssertFalse(quarantines.contains("\"b1\""), quarantines)
        assertTraffic(allowed: [tcp("b1", "a1")], denied: [tcp("b2", "a1")], "after the automatic quarantine")

        let alerts = try agent.ctl(["alerts", "-o", "json"]).stdout
        XCTAssertTrue(alerts.contains("portScan") && alerts.contains("\"b2\""), alerts)
        XCTAssertFalse(alerts.contains("\"b1\""), "no alert about the steady client: \(alerts)")
        // The event record names the agent as the actor and the alert as the reason.
        let events = try String(contentsOf: agent.dataDirectory.appendingPathComponent("events.jsonl"), encoding: .utf8)
        let quarantineEvent = events.split(separator: "\n").first { $0.contains("\"quarantine\"") && $0.contains("beta/b2") }
        XCTAssertNotNil(quarantineEvent, events)
        XCTAssertTrue(quarantineEvent?.contains("agentd") ?? false, "\(quarantineEvent ?? "")")
    }
}
