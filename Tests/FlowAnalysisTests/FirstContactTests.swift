import XCTest
@testable import FlowAnalysis

final class FirstContactTests: XCTestCase {
    private let hour = FirstContactDetector.Parameters(learningPeriod: .seconds(3600))

    func testLearnsThenAlertsOncePerNewPeer() throws {
        var detector = FirstContactDetector(parameters: hour)
        var alerts = detector.observe(attempt(0, from: web, to: .workload(db), port: 5432))
        alerts += detector.observe(attempt(1800, from: web, to: .workload(api), port: 8080))
        XCTAssertEqual(alerts, [], "learning")
        alerts += detector.observe(attempt(4000, from: web, to: .workload(db), port: 5432))
        alerts += detector.observe(attempt(4000, from: web, to: .workload(api), port: 9999))
        XCTAssertEqual(alerts, [], "known peers, any port")
        alerts += detector.observe(attempt(5000, from: web, to: host(66), port: 443))
        let alert = try XCTUnwrap(alerts.first)
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alert.detector, .firstContact)
        XCTAssertEqual(alert.severity, .low)
        XCTAssertEqual(alert.endpoint, .workload(web))
        XCTAssertEqual(alert.summary, "first contact with 203.0.113.66, outside the 2 peers learned")
        XCTAssertEqual(alert.evidence.flows.map(\.destination), [host(66)])
        XCTAssertEqual(detector.observe(attempt(5001, from: web, to: host(66), port: 443)), [], "once per peer")
    }

    func testLearningPeriodBoundary() {
        var detector = FirstContactDetector(parameters: hour)
        _ = detector.observe(attempt(10, from: web, to: .workload(db), port: 5432))
        let justBefore = FlowObservation(time: Timestamp(nanoseconds: (t0 + 3610) * 1_000_000_000 - 1),
                                         key: FlowKey(source: .workload(web), destination: .workload(api), proto: .tcp,
                                                      destinationPort: 80), action: .allow, attempts: 1)
        XCTAssertEqual(detector.observe(justBefore), [], "still learning one nanosecond before the end")
        XCTAssertEqual(detector.observe(attempt(3610, from: web, to: host(1), port: 80)).count, 1, "judged exactly at the end")
    }

    func testPortsCountOnlyWhenAskedTo() {
        var withPorts = hour
        withPorts.includePort = true
        var detector = FirstContactDetector(parameters: withPorts)
        var plain = FirstContactDetector(parameters: hour)
        _ = detector.observe(attempt(0, from: web, to: .workload(db), port: 5432))
        _ = plain.observe(attempt(0, from: web, to: .workload(db), port: 5432))
        XCTAssertEqual(plain.observe(attempt(4000, from: web, to: .workload(db), port: 22)), [])
        let alerts = detector.observe(attempt(4000, from: web, to: .workload(db), port: 22))
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alerts.first?.summary.hasPrefix("first contact with data/postgres-0 tcp/22"), true)
    }

    func testIgnoresAddressesAsSourcesAndObservationsWithoutAttempts() {
        var detector = FirstContactDetector(parameters: FirstContactDetector.Parameters(learningPeriod: .seconds(0)))
        let fromOutside = FlowObservation(time: at(0), key: FlowKey(source: host(1), destination: .workload(web), proto: .tcp,
                                                                     destinationPort: 80), action: .deny, attempts: 1)
        XCTAssertEqual(detector.observe(fromOutside), [])
        XCTAssertEqual(detector.observe(attempt(0, from: web, to: host(2), port: 80, count: 0)), [])
        XCTAssertEqual(detector.trackedSources, 0)
        XCTAssertEqual(detector.observe(attempt(0, from: web, to: host(2), port: 80)).count, 1,
                       "with no learning period every peer is new")
    }

    func testFullPeerSetNeitherLearnsNorAlerts() {
        var parameters = hour
        parameters.maximumPeersPerSource = 3
        var detector = FirstContactDetector(parameters: parameters)
        for n in 0..<5 { _ = detector.observe(attempt(Double(n), from: web, to: host(n), port: 80)) }
        XCTAssertEqual(detector.unlearnedDestinations, 2)
        XCTAssertEqual(detector.observe(attempt(4000, from: web, to: host(1), port: 80)), [])
        XCTAssertEqual(detector.observe(attempt(4000, from: web, to: host(4), port: 80)), [])
        XCTAssertEqual(detector.unlearnedDestinations, 3)
    }

    func testForgetsIdleSources() {
        var parameters = hour
        parameters.forgetAfter = .seconds(100)
        var detector = FirstContactDetector(parameters: parameters)
        _ = detector.observe(attempt(0, from: web, to: .workload(db), port: 5432))
        _ = detector.advance(to: at(99))
        XCTAssertEqual(detector.trackedSources, 1)
        _ = detector.advance(to: at(100))
        XCTAssertEqual(detector.trackedSources, 0)
        // It learns again from scratch: a new peer now is learned, not alerted.
        XCTAssertEqual(detector.observe(attempt(5000, from: web, to: host(9), port: 80)), [])
    }

    func testOffByDefaultInTheSuite() {
        XCTAssertEqual(DetectorSuite().enabled, [.portScan, .ipSweep, .connectionFlood, .deniedSurge])
        var configuration = DetectorConfiguration()
        configuration.firstContact = .init()
        configuration.ipSweep = nil
        XCTAssertEqual(DetectorSuite(configuration: configuration).enabled, [.portScan, .connectionFlood, .deniedSurge, .firstContact])
    }
}
