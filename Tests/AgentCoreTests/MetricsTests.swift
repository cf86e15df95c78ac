@testable import AgentCore
import Foundation
import Glibc
import Logging
import NetworkAddress
import XCTest

/// The exposition text for given metrics, the `metricsAddress` key, and the HTTP endpoint on
/// loopback.
final class MetricsTests: XCTestCase {
    static func sample() -> AgentMetrics {
        var metrics = AgentMetrics()
        metrics.reconciles = 3
        metrics.lastReconcileSeconds = 0.004
        metrics.lastReconcileSeconds = 0.0002
        metrics.lastReconcileSeconds = 12
        metrics.lastCompileSeconds = 0.001
        metrics.lastCompileSeconds = 0.001
        metrics.lastCompileSeconds = 0.0005
        metrics.batches = 2
        metrics.failedBatches = 1
        metrics.lastBatchChanges = 900
        metrics.lastCommitSeconds = 0.003
        metrics.lastBatchChanges = 2
        metrics.lastCommitSeconds = 0.0004
        metrics.driftRepairs = 1
        metrics.notifications = 4
        metrics.endpoints = 5
        metrics.localEndpoints = 4
        metrics.policies = 2
        metrics.quarantines = 1
        metrics.rejectedFiles = 1
        metrics.chains = 12
        metrics.sets = 6
        metrics.setElements = 17
        return metrics
    }

    func testExpositionOfGivenMetrics() {
        let text = MetricsExporter().exposition(of: Self.sample())
        XCTAssertEqual(text, Self.golden)
    }

    func testEveryMetricHasHelpAndTypeAndThePalisadePrefix() {
        let lines = MetricsExporter().exposition(of: Self.sample()).split(separator: "\n").map(String.init)
        var helped: [String] = []
        var typed: [String: String] = [:]
        for line in lines {
            let words = line.split(separator: " ").map(String.init)
            if line.hasPrefix("# HELP ") { helped.append(words[2]) }
            else if line.hasPrefix("# TYPE ") { typed[words[2]] = words[3] }
            else { XCTAssertTrue(line.hasPrefix("palisade_"), line) }
        }
        XCTAssertEqual(helped.count, 23)
        XCTAssertEqual(Set(helped), Set(typed.keys))
        XCTAssertEqual(typed.filter { $0.value == "histogram" }.keys.sorted(), [
            "palisade_batch_size_changes", "palisade_compile_duration_seconds",
            "palisade_kernel_commit_duration_seconds", "palisade_reconcile_duration_seconds",
        ])
        for (name, type) in typed where type == "counter" { XCTAssertTrue(name.hasSuffix("_total"), name) }
    }

    /// The registry's counters and histograms only grow: a second scrape feeds them what changed.
    func testASecondScrapeAddsWhatHappenedInBetween() throws {
        let exporter = MetricsExporter()
        var metrics = Self.sample()
        _ = exporter.exposition(of: metrics)
        metrics.batches += 3
        metrics.lastReconcileSeconds = 0.0002
        metrics.lastReconcileSeconds = 0.3
        metrics.endpoints = 2
        let samples = Self.samples(exporter.exposition(of: metrics))
        XCTAssertEqual(samples["palisade_batches_total"], 5)
        XCTAssertEqual(samples["palisade_endpoints"], 2)
        XCTAssertEqual(samples["palisade_reconcile_duration_seconds_count"], 5)
        XCTAssertEqual(samples[#"palisade_reconcile_duration_seconds_bucket{le="0.00025"}"#], 2)
        XCTAssertEqual(samples[#"palisade_reconcile_duration_seconds_bucket{le="0.5"}"#], 4)
        XCTAssertEqual(try XCTUnwrap(samples["palisade_reconcile_duration_seconds_sum"]), 12.3044, accuracy: 1e-9)
        // Nothing new: the same numbers again.
        XCTAssertEqual(Self.samples(exporter.exposition(of: metrics)), samples)
    }

    /// Counters that went down can only come from another agent: the exporter starts again.
    func testCountersThatGoDownStartAgainFromTheSnapshot() {
        let exporter = MetricsExporter()
        _ = exporter.exposition(of: Self.sample())
        var fresh = AgentMetrics()
        fresh.batches = 1
        fresh.lastReconcileSeconds = 0.01
        let samples = Self.samples(exporter.exposition(of: fresh))
        XCTAssertEqual(samples["palisade_batches_total"], 1)
        XCTAssertEqual(samples["palisade_batches_failed_total"], 0)
        XCTAssertEqual(samples["palisade_reconcile_duration_seconds_count"], 1)
    }

    /// Observations exactly at a bound stay in that bucket, whatever the rounding of their mean.
    func testObservationsAtABoundStayInItsBucket() throws {
        var metrics = AgentMetrics()
        for _ in 0..<3 { metrics.lastCommitSeconds = 0.1 }
        for _ in 0..<7 { metrics.lastCommitSeconds = 0.025 }
        XCTAssertEqual(metrics.commitSeconds.counts[Distribution.secondsBounds.firstIndex(of: 0.1)!], 3)
        let samples = Self.samples(MetricsExporter().exposition(of: metrics))
        XCTAssertEqual(samples[#"palisade_kernel_commit_duration_seconds_bucket{le="0.01"}"#], 0)
        XCTAssertEqual(samples[#"palisade_kernel_commit_duration_seconds_bucket{le="0.025"}"#], 7)
        XCTAssertEqual(samples[#"palisade_kernel_commit_duration_seconds_bucket{le="0.05"}"#], 7)
        XCTAssertEqual(samples[#"palisade_kernel_commit_duration_seconds_bucket{le="0.1"}"#], 10)
        XCTAssertEqual(try XCTUnwrap(samples["palisade_kernel_commit_duration_seconds_sum"]), 0.475, accuracy: 1e-12)
    }

    /// What a real agent reports after a sync, through its snapshot.
    func testAnAgentsSnapshotAfterASync() throws {
        let directory = NSTemporaryDirectory() + "palisade-metrics-test-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: directory + "-data")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AgentTests.pods.write(toFile: directory + "/pods.yaml", atomically: true, encoding: .utf8)
        try "kind: Pod\nmetadata: {name: [broken\n".write(toFile: directory + "/bad.yaml", atomically: true, encoding: .utf8)
        var config = AgentConfig()
        config.debounceMilliseconds = 0
        let agent = Agent(config: config, stateDirectory: directory, dataDirectory: directory + "-data",
                          dataplane: FakeDataplane(), logger: Logger(label: "test"))
        _ = agent.syncNow()
        _ = agent.syncNow()
        let samples = Self.samples(MetricsExporter().exposition(of: agent.metricsSnapshot()))
        XCTAssertEqual(samples["palisade_endpoints"], 2)
        XCTAssertEqual(samples["palisade_rejected_files"], 1)
        XCTAssertEqual(samples["palisade_batches_total"], 1, "the second sync had nothing to change")
        XCTAssertEqual(samples["palisade_reconcile_duration_seconds_count"], 2)
        XCTAssertEqual(samples["palisade_compile_duration_seconds_count"], 1, "nothing changed: nothing to compile")
        XCTAssertEqual(samples["palisade_kernel_commit_duration_seconds_count"], 1)
        XCTAssertEqual(samples["palisade_batch_size_changes_count"], 1)
        XCTAssertGreaterThan(try XCTUnwrap(samples["palisade_chains"]), 0)
    }

    func testDistributionBucketsByUpperBound() {
        var distribution = Distribution(bounds: [1, 10])
        for value in [0.5, 1, 1.5, 10, 11] { distribution.observe(value) }
        XCTAssertEqual(distribution.counts, [2, 2, 1])
        XCTAssertEqual(distribution.sums, [1.5, 11.5, 11])
        XCTAssertEqual(distribution.count, 5)
        XCTAssertEqual(distribution.sum, 24)
    }

    // MARK: - metricsAddress

    func testMetricsAddressKey() throws {
        XCTAssertNil(try AgentConfig.parse("tableName: palisade\n", path: "c.yaml").metricsAddress, "off by default")
        XCTAssertNil(try AgentConfig.parse("metricsAddress: \"\"\n", path: "c.yaml").metricsAddress)
        let v4 = try XCTUnwrap(try AgentConfig.parse("metricsAddress: 127.0.0.1:9464\n", path: "c.yaml").metricsAddress)
        XCTAssertEqual(v4, MetricsAddress(ip: try XCTUnwrap(IPAddress("127.0.0.1")), port: 9464))
        XCTAssertEqual(v4.description, "127.0.0.1:9464")
        let v6 = try XCTUnwrap(try AgentConfig.parse("metricsAddress: \"[::1]:9464\"\n", path: "c.yaml").metricsAddress)
        XCTAssertEqual(v6, MetricsAddress(ip: try XCTUnwrap(IPAddress("::1")), port: 9464))
        XCTAssertEqual(v6.description, "[::1]:9464")
        XCTAssertEqual(try AgentConfig.parse("metricsAddress: 10.0.0.7:9100\n", path: "c.yaml").metricsAddress?.port, 9100)
    }

    func testMetricsAddressErrorsSayWhatWhereAndThatOnlyALocalAddressMakesSense() {
        let cases: [(String, String)] = [
            ("localhost:9464", "is not an IP address literal and port (host names are not looked up)"),
            ("127.0.0.1", "has no port"),
            ("127.0.0.1:", "needs a port from 1 to 65535"),
            ("127.0.0.1:0", "needs a port from 1 to 65535"),
            ("127.0.0.1:70000", "needs a port from 1 to 65535"),
            ("127.0.0.1:http", "needs a port from 1 to 65535"),
            ("::1:9464", "is an IPv6 address without brackets ([ADDRESS]:PORT)"),
            ("[::1]", "is not [IPV6]:PORT"),
            ("[127.0.0.1]:9464", "is not an IP address literal and port (host names are not looked up)"),
            ("0.0.0.0:9464", "would listen on every interface"),
            ("[::]:9464", "would listen on every interface"),
        ]
        for (value, reason) in cases {
            XCTAssertThrowsError(try AgentConfig.parse("tableName: palisade\nmetricsAddress: \"\(value)\"\n", path: "c.yaml"),
                                 value) { error in
                XCTAssertEqual("\(error)", "c.yaml:2: metricsAddress \"\(value)\" \(reason): the endpoint has no "
                               + "authentication, so only a local address makes sense, such as 127.0.0.1:9464 or "
                               + "\"[::1]:9464\" (\"\": off)")
            }
        }
    }

    // MARK: - The endpoint

    func startServer(_ address: String = "127.0.0.1", timeout: TimeInterval = 2,
                     body: String = "palisade_endpoints 5.0\n") throws -> MetricsServer {
        let server = MetricsServer(address: MetricsAddress(ip: try XCTUnwrap(IPAddress(address)), port: 0),
                                   requestTimeout: timeout, requestLimit: 1024, logger: Logger(label: "test")) { body }
        try server.start()
        addTeardownBlock { server.stop() }
        return server
    }

    func testGetMetricsAnswersTheExpositionAndClosesTheConnection() throws {
        let server = try startServer()
        let reply = try HTTPExchange.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", port: server.port)
        XCTAssertEqual(reply, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                       + "Content-Length: 23\r\nConnection: close\r\n\r\npalisade_endpoints 5.0\n")
        // Prometheus may add query parameters; a request in one byte at a time is read whole.
        let query = try HTTPExchange.send("GET /metrics?x=1 HTTP/1.0\r\n\r\n", port: server.port)
        XCTAssertTrue(query.hasPrefix("HTTP/1.1 200 OK\r\n"), query)
        let trickled = try HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: server.port, bytesAtATime: 1)
        XCTAssertTrue(trickled.hasSuffix("\r\n\r\npalisade_endpoints 5.0\n"), trickled)
    }

    func testOtherRequestsAreRefused() throws {
        let server = try startServer()
        let status = { (request: String) throws -> String in
            try HTTPExchange.send(request, port: server.port).components(separatedBy: "\r\n")[0]
        }
        XCTAssertEqual(try status("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found")
        XCTAssertEqual(try status("GET /metricsx HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found")
        XCTAssertEqual(try status("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), "HTTP/1.1 405 Method Not Allowed")
        XCTAssertEqual(try status("GET /metrics\r\n\r\n"), "HTTP/1.1 400 Bad Request")
        XCTAssertEqual(try status("hello\n\n"), "HTTP/1.1 400 Bad Request")
        let huge = "GET /metrics HTTP/1.1\r\nX-Padding: " + String(repeating: "a", count: 4000) + "\r\n\r\n"
        XCTAssertEqual(try status(huge), "HTTP/1.1 431 Request Header Fields Too Large")
        // Still serving after all of that.
        XCTAssertEqual(try status("GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK")
    }

    /// A client that connects and says nothing, or too slowly, holds the one thread for at most
    /// the request timeout.
    func testASlowClientCannotBlockTheEndpoint() throws {
        let server = try startServer(timeout: 0.5)
        let silent = try HTTPExchange.connect(port: server.port)
        defer { close(silent) }
        // The writer closes its socket itself, and the test waits for it: a descriptor closed under
        // it could be reused by the next test's connection.
        let slow = try HTTPExchange.connect(port: server.port)
        let slowWriterDone = DispatchSemaphore(value: 0)
        let slowWriter = Thread {
            defer {
                close(slow)
                slowWriterDone.signal()
            }
            for byte in "GET /metrics HTTP/1.1\r\n".utf8 {
                var value = byte
                guard send(slow, &value, 1, Int32(MSG_NOSIGNAL)) == 1 else { return }
                usleep(100_000)
            }
        }
        slowWriter.start()
        defer { XCTAssertEqual(slowWriterDone.wait(timeout: .now() + 10), .success) }
        let started = Date()
        let reply = try HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: server.port)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK"), reply)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3, "served after the two slow clients' timeouts")
        // The silent client was dropped without an answer.
        XCTAssertEqual(try HTTPExchange.readAll(silent), "")
    }

    func testIPv6Loopback() throws {
        let server: MetricsServer
        do {
            server = try startServer("::1")
        } catch {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        let reply = try HTTPExchange.send("GET /metrics HTTP/1.1\r\n\r\n", port: server.port, family: AF_INET6)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK"), reply)
    }

    func testListenErrorsNameTheAddressAndWhatToDo() throws {
        let first = try startServer()
        let taken = MetricsServer(address: MetricsAddress(ip: try XCTUnwrap(IPAddress("127.0.0.1")), port: first.port),
                                  logger: Logger(label: "test")) { "" }
        XCTAssertThrowsError(try taken.start()) { error in
            XCTAssertEqual("\(error)", "metricsAddress 127.0.0.1:\(first.port): cannot listen: Address already in use; "
                           + "another process listens there; choose another port")
        }
        // 192.0.2.1 (TEST-NET-1) is no address of this machine.
        let foreign = MetricsServer(address: MetricsAddress(ip: try XCTUnwrap(IPAddress("192.0.2.1")), port: 9464),
                                    logger: Logger(label: "test")) { "" }
        XCTAssertThrowsError(try foreign.start()) { error in
            XCTAssertEqual("\(error)", "metricsAddress 192.0.2.1:9464: cannot listen: Cannot assign requested address; "
                           + "it is not an address of this node; give a local one such as 127.0.0.1:9464")
        }
    }

    // MARK: - Helpers

    /// `name{labels}` → value, for every sample line.
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[String(line[..<space])] = value
        }
        return result
    }

    static let golden = """
    # HELP palisade_reconcile_duration_seconds Duration of each reconcile: rescan of the state directory, compile, and kernel update.
    # TYPE palisade_reconcile_duration_seconds histogram
    palisade_reconcile_duration_seconds_bucket{le="0.0001"} 0
    palisade_reconcile_duration_seconds_bucket{le="0.00025"} 1
    palisade_reconcile_duration_seconds_bucket{le="0.0005"} 1
    palisade_reconcile_duration_seconds_bucket{le="0.001"} 1
    palisade_reconcile_duration_seconds_bucket{le="0.0025"} 1
    palisade_reconcile_duration_seconds_bucket{le="0.005"} 2
    palisade_reconcile_duration_seconds_bucket{le="0.01"} 2
    palisade_reconcile_duration_seconds_bucket{le="0.025"} 2
    palisade_reconcile_duration_seconds_bucket{le="0.05"} 2
    palisade_reconcile_duration_seconds_bucket{le="0.1"} 2
    palisade_reconcile_duration_seconds_bucket{le="0.25"} 2
    palisade_reconcile_duration_seconds_bucket{le="0.5"} 2
    palisade_reconcile_duration_seconds_bucket{le="1.0"} 2
    palisade_reconcile_duration_seconds_bucket{le="2.5"} 2
    palisade_reconcile_duration_seconds_bucket{le="5.0"} 2
    palisade_reconcile_duration_seconds_bucket{le="10.0"} 2
    palisade_reconcile_duration_seconds_bucket{le="+Inf"} 3
    palisade_reconcile_duration_seconds_sum 12.0042
    palisade_reconcile_duration_seconds_count 3
    # HELP palisade_compile_duration_seconds Duration of each compile of the desired state into a ruleset.
    # TYPE palisade_compile_duration_seconds histogram
    palisade_compile_duration_seconds_bucket{le="0.0001"} 0
    palisade_compile_duration_seconds_bucket{le="0.00025"} 0
    palisade_compile_duration_seconds_bucket{le="0.0005"} 1
    palisade_compile_duration_seconds_bucket{le="0.001"} 3
    palisade_compile_duration_seconds_bucket{le="0.0025"} 3
    palisade_compile_duration_seconds_bucket{le="0.005"} 3
    palisade_compile_duration_seconds_bucket{le="0.01"} 3
    palisade_compile_duration_seconds_bucket{le="0.025"} 3
    palisade_compile_duration_seconds_bucket{le="0.05"} 3
    palisade_compile_duration_seconds_bucket{le="0.1"} 3
    palisade_compile_duration_seconds_bucket{le="0.25"} 3
    palisade_compile_duration_seconds_bucket{le="0.5"} 3
    palisade_compile_duration_seconds_bucket{le="1.0"} 3
    palisade_compile_duration_seconds_bucket{le="2.5"} 3
    palisade_compile_duration_seconds_bucket{le="5.0"} 3
    palisade_compile_duration_seconds_bucket{le="10.0"} 3
    palisade_compile_duration_seconds_bucket{le="+Inf"} 3
    palisade_compile_duration_seconds_sum 0.0025
    palisade_compile_duration_seconds_count 3
    # HELP palisade_kernel_commit_duration_seconds Time from sending each nf_tables batch to the kernel's answer, for batches the kernel accepted.
    # TYPE palisade_kernel_commit_duration_seconds histogram
    palisade_kernel_commit_duration_seconds_bucket{le="0.0001"} 0
    palisade_kernel_commit_duration_seconds_bucket{le="0.00025"} 0
    palisade_kernel_commit_duration_seconds_bucket{le="0.0005"} 1
    palisade_kernel_commit_duration_seconds_bucket{le="0.001"} 1
    palisade_kernel_commit_duration_seconds_bucket{le="0.0025"} 1
    palisade_kernel_commit_duration_seconds_bucket{le="0.005"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="0.01"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="0.025"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="0.05"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="0.1"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="0.25"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="0.5"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="1.0"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="2.5"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="5.0"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="10.0"} 2
    palisade_kernel_commit_duration_seconds_bucket{le="+Inf"} 2
    palisade_kernel_commit_duration_seconds_sum 0.0034000000000000002
    palisade_kernel_commit_duration_seconds_count 2
    # HELP palisade_batch_size_changes Changes (netlink messages) in each nf_tables batch the kernel accepted.
    # TYPE palisade_batch_size_changes histogram
    palisade_batch_size_changes_bucket{le="1.0"} 0
    palisade_batch_size_changes_bucket{le="4.0"} 1
    palisade_batch_size_changes_bucket{le="16.0"} 1
    palisade_batch_size_changes_bucket{le="64.0"} 1
    palisade_batch_size_changes_bucket{le="256.0"} 1
    palisade_batch_size_changes_bucket{le="1024.0"} 2
    palisade_batch_size_changes_bucket{le="4096.0"} 2
    palisade_batch_size_changes_bucket{le="16384.0"} 2
    palisade_batch_size_changes_bucket{le="65536.0"} 2
    palisade_batch_size_changes_bucket{le="262144.0"} 2
    palisade_batch_size_changes_bucket{le="1048576.0"} 2
    palisade_batch_size_changes_bucket{le="+Inf"} 2
    palisade_batch_size_changes_sum 902.0
    palisade_batch_size_changes_count 2
    # HELP palisade_batches_total nf_tables batches the kernel accepted.
    # TYPE palisade_batches_total counter
    palisade_batches_total 2
    # HELP palisade_batches_failed_total Reconciles whose nf_tables batch failed; the kernel keeps the rules that were in force.
    # TYPE palisade_batches_failed_total counter
    palisade_batches_failed_total 1
    # HELP palisade_drift_repairs_total Times the agent's table was found changed or removed by someone else and restored.
    # TYPE palisade_drift_repairs_total counter
    palisade_drift_repairs_total 1
    # HELP palisade_table_notifications_total nf_tables change notifications about the agent's table that the agent did not cause.
    # TYPE palisade_table_notifications_total counter
    palisade_table_notifications_total 4
    # HELP palisade_endpoints Endpoints (pods) in the desired state.
    # TYPE palisade_endpoints gauge
    palisade_endpoints 5.0
    # HELP palisade_local_endpoints Endpoints on this node, with a workload interface.
    # TYPE palisade_local_endpoints gauge
    palisade_local_endpoints 4.0
    # HELP palisade_policies Network policies in the desired state, Kubernetes and Calico.
    # TYPE palisade_policies gauge
    palisade_policies 2.0
    # HELP palisade_quarantined_endpoints Endpoints on this node in quarantine.
    # TYPE palisade_quarantined_endpoints gauge
    palisade_quarantined_endpoints 1.0
    # HELP palisade_rejected_files State files rejected as invalid; each keeps its last good content, if any, in force.
    # TYPE palisade_rejected_files gauge
    palisade_rejected_files 1.0
    # HELP palisade_chains Chains in the compiled ruleset.
    # TYPE palisade_chains gauge
    palisade_chains 12.0
    # HELP palisade_sets Sets and maps in the compiled ruleset.
    # TYPE palisade_sets gauge
    palisade_sets 6.0
    # HELP palisade_set_elements Elements of the sets and maps in the compiled ruleset.
    # TYPE palisade_set_elements gauge
    palisade_set_elements 17.0
    # HELP palisade_flow_packet_logs_total NFLOG messages of the ruleset's log rules the flow monitor took in.
    # TYPE palisade_flow_packet_logs_total counter
    palisade_flow_packet_logs_total 0
    # HELP palisade_flow_connection_events_total Conntrack new and destroy events the flow monitor took in.
    # TYPE palisade_flow_connection_events_total counter
    palisade_flow_connection_events_total 0
    # HELP palisade_flow_queue_drops_total Kernel events dropped because the flow monitor's queue was full (the monitor fell behind).
    # TYPE palisade_flow_queue_drops_total counter
    palisade_flow_queue_drops_total 0
    # HELP palisade_flow_kernel_losses_total Kernel messages lost before the flow monitor read them (NFLOG sequence gaps, ENOBUFS).
    # TYPE palisade_flow_kernel_losses_total counter
    palisade_flow_kernel_losses_total 0
    # HELP palisade_flow_records_total Flow records written to flows.jsonl.
    # TYPE palisade_flow_records_total counter
    palisade_flow_records_total 0
    # HELP palisade_alerts_total Alerts of the anomaly detectors.
    # TYPE palisade_alerts_total counter
    palisade_alerts_total 0
    # HELP palisade_auto_quarantines_total Workloads the agent quarantined on its own after an alert.
    # TYPE palisade_auto_quarantines_total counter
    palisade_auto_quarantines_total 0

    """
}

/// A plain HTTP client over a socket, so a test can send requests no library would.
enum HTTPExchange {
    static func connect(port: UInt16, family: Int32 = AF_INET) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw UnixSocket.Failure("socket") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result: Int32
        if family == AF_INET {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } else {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0[15] = 1 }
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw UnixSocket.Failure("connect to port \(port)", code)
        }
        return fd
    }

    /// Sends the request and reads the answer until the server closes the connection.
    static func send(_ request: String, port: UInt16, family: Int32 = AF_INET, bytesAtATime: Int = .max) throws -> String {
        let fd = try connect(port: port, family: family)
        defer { close(fd) }
        let bytes = Array(request.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = min(bytesAtATime, bytes.count - offset)
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw UnixSocket.Failure("send") }
            offset += sent
            if bytesAtATime < bytes.count { usleep(2000) }
        }
        return try readAll(fd)
    }

    static func readAll(_ fd: Int32) throws -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0 {
                if errno == EINTR { continue }
                // The server closed with our unread bytes pending: what came before the reset counts.
                if errno == ECONNRESET { break }
                throw UnixSocket.Failure("recv")
            }
            if count == 0 { break }
            received.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: received, as: UTF8.self)
    }
}
