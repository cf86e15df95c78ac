import XCTest
@testable import FlowAnalysis

/// Port scan and IP sweep: distinct values per source in a sliding window.
final class DistinctDetectorTests: XCTestCase {
    private let small = PortScanDetector.Parameters(window: .seconds(10), threshold: 5, cooldown: .seconds(30))

    func testFastScanAlertsAtTheThresholdthPort() throws {
        var detector = PortScanDetector(parameters: small)
        for port in 1...4 as ClosedRange<UInt16> {
            XCTAssertEqual(detector.observe(attempt(Double(port) * 0.01, from: scanner, to: .workload(db), port: port)), [])
        }
        let alerts = detector.observe(attempt(0.05, from: scanner, to: .workload(db), port: 5, action: .deny))
        let alert = try XCTUnwrap(alerts.first)
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alert.detector, .portScan)
        XCTAssertEqual(alert.severity, .high)
        XCTAssertEqual(alert.endpoint, .workload(scanner))
        XCTAssertEqual(alert.time, at(0.05))
        XCTAssertEqual(alert.evidence.value("distinctPorts"), 5)
        XCTAssertEqual(alert.evidence.value("windowSeconds"), 10)
        XCTAssertEqual(alert.evidence.flows.map(\.destinationPort), [1, 2, 3, 4, 5])
        XCTAssertEqual(alert.evidence.flows.last?.action, .deny)
        XCTAssertEqual(alert.summary, "5 distinct destination ports in 10 s (threshold 5)")
    }

    func testDefaultsCatchAFastScanAndNotASlowOne() {
        var fast = PortScanDetector()
        var fastAlerts: [Alert] = []
        for port in 0..<1000 {   // 300 ports per second
            fastAlerts += fast.observe(attempt(Double(port) / 300, from: scanner, to: .workload(db), port: UInt16(1 + port)))
        }
        XCTAssertEqual(fastAlerts.first?.time, at(24.0 / 300), "the 25th port, 80 ms in")
        XCTAssertGreaterThanOrEqual(fastAlerts.count, 1)

        var slow = PortScanDetector()
        var slowAlerts: [Alert] = []
        for port in 0..<3600 {   // one new port every 0.5 s for half an hour: 20 per window
            slowAlerts += slow.observe(attempt(Double(port) * 0.5, from: scanner, to: .workload(db), port: UInt16(1 + port)))
        }
        XCTAssertEqual(slowAlerts, [], "a scan slower than 25 ports in 10 s is under the threshold")
    }

    func testWindowBoundaryIsExclusiveOfThePortSeenExactlyOneWindowAgo() {
        // Five ports 2.5 s apart: the fifth comes exactly 10 s after the first, which no longer counts.
        var detector = PortScanDetector(parameters: small)
        var alerts: [Alert] = []
        for n in 0..<40 { alerts += detector.observe(attempt(Double(n) * 2.5, from: scanner, to: .workload(db), port: UInt16(n))) }
        XCTAssertEqual(alerts, [], "never more than four ports within any 10 s")

        // One nanosecond faster and the fifth port falls inside the window.
        var faster = PortScanDetector(parameters: small)
        var fasterAlerts: [Alert] = []
        for n in 0..<5 {
            let time = Timestamp(nanoseconds: t0 * 1_000_000_000 + UInt64(n) * 2_499_999_999)
            fasterAlerts += faster.observe(FlowObservation(
                time: time, key: FlowKey(source: .workload(scanner), destination: .workload(db), proto: .tcp,
                                         destinationPort: UInt16(n)), action: .allow, attempts: 1))
        }
        XCTAssertEqual(fasterAlerts.count, 1)
    }

    func testRepeatedPortsCountOnce() {
        var detector = PortScanDetector(parameters: small)
        var alerts: [Alert] = []
        for n in 0..<1000 { alerts += detector.observe(attempt(Double(n) * 0.001, from: web, to: .workload(db), port: UInt16(5432 + n % 4))) }
        XCTAssertEqual(alerts, [], "a busy client of four ports is no scan")
        alerts += detector.observe(attempt(1.5, from: web, to: .workload(db), port: 80))
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alerts.first?.evidence.value("distinctPorts"), 5)
    }

    func testUDPAndTCPPortsAreDistinct() {
        var detector = PortScanDetector(parameters: small)
        var alerts: [Alert] = []
        for port: UInt16 in [53, 80, 443] {
            alerts += detector.observe(attempt(0, from: scanner, to: .workload(db), port: port, proto: .tcp))
        }
        alerts += detector.observe(attempt(0, from: scanner, to: .workload(db), port: 53, proto: .udp))
        XCTAssertEqual(alerts, [])
        alerts += detector.observe(attempt(0, from: scanner, to: .workload(db), port: 80, proto: .udp))
        XCTAssertEqual(alerts.count, 1)
    }

    func testObservationsWithoutAttemptsOrPortsAreIgnored() {
        var detector = PortScanDetector(parameters: small)
        var alerts: [Alert] = []
        for port in 0..<10 as Range<UInt16> { alerts += detector.observe(attempt(0, from: scanner, to: .workload(db), port: port, count: 0)) }
        for _ in 0..<10 { alerts += detector.observe(attempt(0, from: scanner, to: .workload(db), port: nil, proto: .icmp)) }
        XCTAssertEqual(alerts, [])
        XCTAssertEqual(detector.trackedSources, 0)
    }

    func testCooldownThenAlertsAgain() {
        var detector = PortScanDetector(parameters: small)
        var alerts: [Alert] = []
        for n in 0..<320 {   // ten ports a second for 32 s
            alerts += detector.observe(attempt(Double(n) * 0.1, from: scanner, to: .workload(db), port: UInt16(n)))
        }
        // First alert at the fifth port (0.4 s); quiet for 30 s; then five more ports and the next.
        XCTAssertEqual(alerts.map(\.time), [at(0.4), at(30.8)])
    }

    func testStaleObservationIsIgnored() {
        var detector = PortScanDetector(parameters: small)
        var alerts = detector.observe(attempt(100, from: scanner, to: .workload(db), port: 1))
        for port in 2...10 as ClosedRange<UInt16> {   // all a whole window older than the clock
            alerts += detector.observe(attempt(90, from: scanner, to: .workload(db), port: port))
        }
        XCTAssertEqual(alerts, [])
        _ = detector.observe(attempt(80, from: api, to: .workload(db), port: 1))
        XCTAssertEqual(detector.trackedSources, 1, "a source seen only a window late is not even tracked")
        // Slightly late but inside the window: they count.
        for port in 2...4 as ClosedRange<UInt16> { alerts += detector.observe(attempt(95, from: scanner, to: .workload(db), port: port)) }
        alerts += detector.observe(attempt(90.5, from: scanner, to: .workload(db), port: 5))
        XCTAssertEqual(alerts.count, 1)
    }

    func testBoundedSourcesCountTheRest() {
        var detector = PortScanDetector(parameters: PortScanDetector.Parameters(window: .seconds(10), threshold: 5, maximumSources: 2))
        _ = detector.observe(attempt(0, from: web, to: .workload(db), port: 1))
        _ = detector.observe(attempt(0, from: api, to: .workload(db), port: 1))
        var alerts: [Alert] = []
        for port in 0..<10 as Range<UInt16> { alerts += detector.observe(attempt(1, from: scanner, to: .workload(db), port: port)) }
        XCTAssertEqual(alerts, [], "a third source is not tracked")
        XCTAssertEqual(detector.trackedSources, 2)
        XCTAssertEqual(detector.untrackedObservations, 10)
        // Once the others are idle for a window they are forgotten and there is room again.
        _ = detector.advance(to: at(10.5))
        XCTAssertEqual(detector.trackedSources, 0)
        for port in 0..<5 as Range<UInt16> { alerts += detector.observe(attempt(11, from: scanner, to: .workload(db), port: port)) }
        XCTAssertEqual(alerts.count, 1)
    }

    func testAdvanceKeepsSourcesWithLivePortsOrCooldown() {
        var detector = PortScanDetector(parameters: small)
        _ = detector.observe(attempt(0, from: web, to: .workload(db), port: 1))
        _ = detector.advance(to: at(9.999))
        XCTAssertEqual(detector.trackedSources, 1)
        _ = detector.advance(to: at(10))
        XCTAssertEqual(detector.trackedSources, 0)
        for port in 0..<5 as Range<UInt16> { _ = detector.observe(attempt(20, from: scanner, to: .workload(db), port: port)) }
        _ = detector.advance(to: at(45))
        XCTAssertEqual(detector.trackedSources, 1, "still in its 30 s cooldown")
        _ = detector.advance(to: at(50))
        XCTAssertEqual(detector.trackedSources, 0)
    }

    func testSweepCountsDistinctDestinations() throws {
        let parameters = IPSweepDetector.Parameters(window: .seconds(10), threshold: 4)
        var sweep = IPSweepDetector(parameters: parameters)
        var scan = PortScanDetector(parameters: small)
        var sweepAlerts: [Alert] = [], scanAlerts: [Alert] = []
        // One port on many hosts: a sweep, not a port scan.
        for n in 0..<4 {
            let observation = attempt(Double(n), from: scanner, to: host(n), port: 22, action: .deny)
            sweepAlerts += sweep.observe(observation)
            scanAlerts += scan.observe(observation)
        }
        XCTAssertEqual(scanAlerts, [])
        let alert = try XCTUnwrap(sweepAlerts.first)
        XCTAssertEqual(sweepAlerts.count, 1)
        XCTAssertEqual(alert.detector, .ipSweep)
        XCTAssertEqual(alert.time, at(3))
        XCTAssertEqual(alert.evidence.value("distinctDestinations"), 4)
        XCTAssertEqual(alert.evidence.flows.map(\.destination), (0..<4).map(host))

        // Many ports on one host: a port scan, not a sweep.
        var sweep2 = IPSweepDetector(parameters: parameters)
        var alerts: [Alert] = []
        for port in 0..<100 as Range<UInt16> { alerts += sweep2.observe(attempt(0, from: scanner, to: .workload(db), port: port)) }
        XCTAssertEqual(alerts, [])
    }

    func testSweepCountsAWorkloadOnceWhateverItsLabels() {
        var sweep = IPSweepDetector(parameters: IPSweepDetector.Parameters(window: .seconds(10), threshold: 3))
        var relabelled = db
        relabelled.labels["version"] = "2"
        var alerts = sweep.observe(attempt(0, from: web, to: .workload(db), port: 5432))
        alerts += sweep.observe(attempt(1, from: web, to: .workload(relabelled), port: 5432))
        alerts += sweep.observe(attempt(2, from: web, to: .workload(api), port: 80))
        XCTAssertEqual(alerts, [])
        alerts += sweep.observe(attempt(3, from: web, to: .network(ip("198.18.9.9")), port: 80))
        XCTAssertEqual(alerts.count, 1)
    }

    func testSourcesAreCountedSeparately() {
        var detector = PortScanDetector(parameters: small)
        var alerts: [Alert] = []
        for port in 0..<4 as Range<UInt16> {
            alerts += detector.observe(attempt(0, from: web, to: .workload(db), port: port))
            alerts += detector.observe(attempt(0, from: api, to: .workload(db), port: port + 100))
        }
        XCTAssertEqual(alerts, [], "eight ports, but four per source")
    }
}
