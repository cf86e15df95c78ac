import Foundation
import XCTest

/// The real agentd's Prometheus endpoint (`metricsAddress`), scraped from inside the node
/// namespace, against what the lab holds and what the kernel holds.
final class MetricsEndpointTests: EnforcementTestCase {
    static let denyAllIngressInAlpha = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: deny-all
          namespace: alpha
        spec:
          podSelector: {}
          policyTypes:
          - Ingress

        """

    /// A TCP port nothing in the node namespace listens on.
    func freePort() throws -> Int {
        let result = try Command.check(["ip", "netns", "exec", lab.nodeNamespace, "python3", "-c", """
            import socket
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
            """])
        return try XCTUnwrap(Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Restarts the agent with `metricsAddress: 127.0.0.1:PORT` added to its configuration.
    func restartWithMetrics() throws -> Int {
        let port = try freePort()
        let configuration = try String(contentsOf: agent.configuration, encoding: .utf8)
        try (configuration + "metricsAddress: 127.0.0.1:\(port)\n").write(to: agent.configuration, atomically: true, encoding: .utf8)
        agent.stop()
        try agent.start()
        try agent.sync()
        return port
    }

    /// GET with Python's urllib from inside the node namespace: the status, the content type and the body.
    func get(_ url: String) throws -> (status: Int, contentType: String, body: String) {
        let result = try Command.check(["ip", "netns", "exec", lab.nodeNamespace, "python3", "-c", """
            import sys, urllib.error, urllib.request
            try:
                response = urllib.request.urlopen(sys.argv[1], timeout=10)
            except urllib.error.HTTPError as error:
                response = error
            print(response.status)
            print(response.headers["Content-Type"])
            sys.stdout.write(response.read().decode())
            """, url])
        let lines = result.stdout.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
        guard lines.count == 3, let status = Int(lines[0]) else {
            throw CommandError(description: "unexpected output of the scrape:\n\(result.transcript)")
        }
        return (status, String(lines[1]), String(lines[2]))
    }

    /// `name{labels}` → value, for every sample line.
    func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[String(line[..<space])] = value
        }
        return result
    }

    func testTheEndpointReportsTheLabAndTheKernelTable() throws {
        let port = try restartWithMetrics()
        let scrape = try get("http://127.0.0.1:\(port)/metrics")
        XCTAssertEqual(scrape.status, 200)
        XCTAssertEqual(scrape.contentType, "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertTrue(scrape.body.contains("# TYPE palisade_reconcile_duration_seconds histogram\n"), scrape.body)
        XCTAssertTrue(scrape.body.contains("# TYPE palisade_batches_total counter\n"), scrape.body)
        var values = samples(scrape.body)
        XCTAssertEqual(values["palisade_endpoints"], Double(Self.knownPods.count), scrape.body)
        XCTAssertEqual(values["palisade_local_endpoints"], Double(Self.knownPods.count))
        XCTAssertEqual(values["palisade_policies"], 0)
        XCTAssertEqual(values["palisade_rejected_files"], 0)
        XCTAssertGreaterThanOrEqual(values["palisade_batches_total"] ?? 0, 1, scrape.body)
        XCTAssertEqual(values["palisade_batches_failed_total"], 0)
        XCTAssertGreaterThanOrEqual(values["palisade_reconcile_duration_seconds_count"] ?? 0, 1)
        XCTAssertEqual(values["palisade_kernel_commit_duration_seconds_count"], values["palisade_batches_total"])
        // The kernel is the oracle for the ruleset's size.
        let table = try kernelTable()
        XCTAssertEqual(values["palisade_chains"], Double(table.chains.count), "chains: \(table.chains)")
        XCTAssertEqual(values["palisade_sets"], Double(table.sets.count + table.maps.count))

        // A policy more, and one more batch.
        let batches = values["palisade_batches_total"] ?? 0
        try applyPolicy("deny-all", Self.denyAllIngressInAlpha)
        values = samples(try get("http://127.0.0.1:\(port)/metrics").body)
        XCTAssertEqual(values["palisade_policies"], 1)
        XCTAssertEqual(values["palisade_batches_total"], batches + 1)

        let notFound = try get("http://127.0.0.1:\(port)/")
        XCTAssertEqual(notFound.status, 404)
    }

    /// `ss -ltnp` lines of the node namespace's TCP listeners that belong to agentd.
    func agentListeners() throws -> [String] {
        let result = try Command.check(["ip", "netns", "exec", lab.nodeNamespace, "ss", "-Hltnp"])
        return result.stdout.split(separator: "\n").map(String.init).filter { $0.contains("\"agentd\"") }
    }

    func testNoEndpointUnlessConfigured() throws {
        XCTAssertEqual(try agentListeners(), [], "agentd listens on TCP without metricsAddress")
        let port = try restartWithMetrics()
        let listeners = try agentListeners()
        XCTAssertEqual(listeners.count, 1, "\(listeners)")
        XCTAssertTrue(listeners.first?.contains("127.0.0.1:\(port) ") ?? false, "\(listeners)")
    }

    func testAnAddressThatIsNotLocalLeavesEnforcementRunning() throws {
        let configuration = try String(contentsOf: agent.configuration, encoding: .utf8)
        // 192.0.2.1 (TEST-NET-1) is no address of the node: the endpoint cannot start, the agent runs on.
        try (configuration + "metricsAddress: 192.0.2.1:9464\n").write(to: agent.configuration, atomically: true, encoding: .utf8)
        agent.stop()
        try agent.start()
        try agent.sync()
        XCTAssertTrue(agent.log.contains("metrics.unavailable"), agent.log)
        XCTAssertTrue(agent.log.contains("it is not an address of this node"), agent.log)
        try applyPolicy("deny-all", Self.denyAllIngressInAlpha)
        assertTraffic(allowed: [tcp("a1", "b1")], denied: [tcp("b1", "a1")], "enforcement without the metrics endpoint")
    }
}
