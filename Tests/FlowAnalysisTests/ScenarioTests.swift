import XCTest
import NetworkAddress
@testable import FlowAnalysis

/// Kernel-shaped events through the aggregator, the detectors and the quarantine policy together,
/// as the agent will run them: a steady client, a slow prober and a fast scanner on one node.
final class ScenarioTests: XCTestCase {
    private let webIP = ip("198.18.1.1"), dbIP = ip("198.18.2.1"), scannerIP = ip("198.18.3.1"), proberIP = ip("198.18.4.1")
    private let prober = Workload(namespace: "lab", name: "prober", labels: ["app": "prober"])
    private let monitor = Workload(namespace: "lab", name: "monitor", labels: ["app": "monitor", "palisade.dev/exempt": "true"])

    private func newConnection(_ time: Double, _ source: IPAddress, _ destination: IPAddress, port: UInt16) -> FlowEvent {
        .conntrack(ConnectionEvent(time: at(time), kind: .new,
                                  original: ConnectionTuple(source: source, destination: destination, proto: .tcp,
                                                            sourcePort: 40000, destinationPort: port),
                                  reply: ConnectionTuple(source: destination, destination: source, proto: .tcp,
                                                         sourcePort: port, destinationPort: 40000)))
    }

    private func denied(_ time: Double, _ source: IPAddress, _ destination: IPAddress, port: UInt16) -> FlowEvent {
        .packet(PacketLogEvent(time: at(time), prefix: "palisade deny in default ", source: source, destination: destination,
                               proto: .tcp, sourcePort: 40000, destinationPort: port, length: 60))
    }

    func testScannerIsQuarantinedAndTheSteadyClientIsNot() throws {
        let monitorIP = ip("198.18.5.1")
        let resolver = StaticEndpointResolver([webIP: web, dbIP: db, scannerIP: scanner, proberIP: prober, monitorIP: monitor])
        var aggregator = FlowAggregator(configuration: .init(maximumFlowsPerInterval: 500))
        var detectors = DetectorSuite()
        let policy = AutoQuarantinePolicy(detectors: [.portScan, .ipSweep, .connectionFlood], minimumSeverity: .high,
                                          isExempt: { $0.labels["palisade.dev/exempt"] == "true" })
        var alerts: [Alert] = []
        var decisions: [QuarantineDecision] = []
        var intervals: [FlowInterval] = []

        for tenth in 0..<(180 * 10) {   // three minutes
            let time = Double(tenth) / 10
            var events: [FlowEvent] = []
            // web: two or three connections to the database every tenth of a second, all three minutes.
            for n in 0..<(2 + (tenth / 3 + tenth / 7) % 2) { events.append(newConnection(time + Double(n) * 0.01, webIP, dbIP, port: 5432)) }
            // prober: a new port every two seconds, refused: a slow scan, under every threshold.
            if tenth % 20 == 0 { events.append(denied(time, proberIP, dbIP, port: UInt16(1000 + tenth / 20))) }
            // monitor: scrapes 40 addresses every 15 s: a sweep by the numbers, but exempt.
            if tenth % 150 == 0 {
                for n in 0..<40 { events.append(newConnection(time, monitorIP, IPAddress(bytes: [198, 18, 6, UInt8(n)])!, port: 9100)) }
            }
            // scanner: quiet until 150 s, then 300 refused ports a second.
            if time >= 150 {
                for n in 0..<30 { events.append(denied(time + Double(n) / 300, scannerIP, dbIP, port: UInt16(1 + (tenth * 30 + n) % 60000))) }
            }
            for event in events {
                if let observation = aggregator.ingest(event, resolver: resolver) {
                    let new = detectors.observe(observation)
                    alerts += new
                    decisions += new.map(policy.decide)
                }
            }
            intervals += aggregator.advance(to: at(time + 0.1))
            alerts += detectors.advance(to: at(time + 0.1))
        }

        let about = Dictionary(grouping: alerts) { $0.endpoint.identity }
        XCTAssertNil(about[web.id], "the steady client: \(about[web.id] ?? [])")
        XCTAssertNil(about[prober.id], "the slow prober: \(about[prober.id] ?? [])")
        XCTAssertEqual(Set(about[monitor.id, default: []].map(\.detector)), [.ipSweep], "the monitor sweeps, by the numbers")
        let scannerAlerts = try XCTUnwrap(about[scanner.id])
        // The 21st denial (67 ms in) is a denied surge, the 25th port (80 ms in) a port scan.
        XCTAssertEqual(scannerAlerts.prefix(2).map(\.detector), [.deniedSurge, .portScan])
        XCTAssertEqual(scannerAlerts.prefix(2).map(\.time), [at(150 + 20.0 / 300), at(150 + 24.0 / 300)])
        XCTAssertFalse(scannerAlerts.contains { $0.detector == .connectionFlood }, "a new source is still warming up")

        let quarantined = decisions.compactMap { decision -> Workload? in
            if case .quarantine(let workload, _) = decision { return workload }
            return nil
        }
        XCTAssertEqual(Set(quarantined), [scanner], "only the scanner; the monitor is exempt")
        XCTAssertTrue(decisions.contains(.none(.detectorNotConfigured(.deniedSurge))), "surges only alert here")
        XCTAssertTrue(decisions.contains(.none(.exempt(monitor))))

        // The flow log saw it all, within its bound.
        XCTAssertEqual(intervals.first?.start, at(0))
        XCTAssertEqual(intervals.last?.end, at(180))
        XCTAssertEqual(intervals.count, 12)
        let webRecords = intervals.flatMap(\.records).filter { $0.key.source == .workload(web) }
        XCTAssertEqual(webRecords.count, 12, "one record per interval for web → db:5432")
        XCTAssertTrue(webRecords.allSatisfy { $0.connectionsStarted >= 300 && $0.connectionsStarted <= 450 })
        XCTAssertTrue(intervals.allSatisfy { $0.records.count <= 500 })
        XCTAssertGreaterThan(intervals.last?.droppedEvents ?? 0, 0, "the scan's 4,500 ports an interval overflow 500 flows")
        XCTAssertEqual(aggregator.statistics.droppedEvents, intervals.reduce(0) { $0 + $1.droppedEvents })
    }
}

final class DetectorSuiteTests: XCTestCase {
    func testSuiteFeedsEveryEnabledDetectorInOrderAndReportsLoad() {
        var configuration = DetectorConfiguration(
            portScan: .init(window: .seconds(10), threshold: 3),
            ipSweep: .init(window: .seconds(10), threshold: 3),
            connectionFlood: nil,
            deniedSurge: .init(window: .seconds(10), threshold: 2))
        configuration.firstContact = nil
        var suite = DetectorSuite(configuration: configuration)
        XCTAssertEqual(suite.enabled, [.portScan, .ipSweep, .deniedSurge])
        // Three denied attempts, each to a new host and a new port: all three detectors fire at the third.
        var alerts: [Alert] = []
        for n in 0..<3 { alerts += suite.observe(attempt(Double(n), from: scanner, to: host(n), port: UInt16(n), action: .deny)) }
        XCTAssertEqual(alerts.map(\.detector), [.portScan, .ipSweep, .deniedSurge])
        XCTAssertEqual(Set(alerts.map(\.time)), [at(2)])
        XCTAssertEqual(suite.load.map(\.trackedSources), [1, 1, 1])
        _ = suite.advance(to: at(3602))   // the surge detector forgets after an hour idle
        XCTAssertEqual(suite.load.map(\.trackedSources), [0, 0, 0])
    }
}
