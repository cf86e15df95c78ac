import XCTest
@testable import FlowAnalysis

/// Connection flood and denied-flow surge: counts per tumbling bucket against a floor and a
/// learned baseline.
final class RateDetectorTests: XCTestCase {
    /// One-second buckets, a floor of 10/s, three deviations, five warm-up buckets.
    private let quick = ConnectionFloodDetector.Parameters(bucket: .seconds(1), deviations: 3, floor: 10, warmUpBuckets: 5,
                                                           cooldown: .seconds(30))

    /// `count` attempts spread evenly over [start, start + 1).
    private func burst(_ detector: inout ConnectionFloodDetector, from source: Workload = web, at start: Double,
                       count: Int) -> [Alert] {
        var alerts: [Alert] = []
        for n in 0..<count {
            alerts += detector.observe(attempt(start + Double(n) / Double(count), from: source, to: .workload(db), port: 5432))
        }
        return alerts
    }

    func testNoFloodAlertDuringWarmUp() {
        var detector = ConnectionFloodDetector(parameters: quick)
        var alerts: [Alert] = []
        for second in 0..<5 { alerts += burst(&detector, at: Double(second), count: 1000) }
        XCTAssertEqual(alerts, [], "buckets 0 to 4 are the warm-up")

        var noWarmUp = quick
        noWarmUp.warmUpBuckets = 0
        var cold = ConnectionFloodDetector(parameters: noWarmUp)
        XCTAssertEqual(burst(&cold, at: 0, count: 1000).count, 1, "the same burst without warm-up alerts")
    }

    func testFirstJudgedBucketIsTheOneAfterWarmUp() {
        // A quiet source (one attempt per bucket) that floods in bucket 4, then in bucket 5.
        var detector = ConnectionFloodDetector(parameters: quick)
        var alerts: [Alert] = []
        for second in 0..<4 { alerts += burst(&detector, at: Double(second), count: 1) }
        alerts += burst(&detector, at: 4, count: 200)
        XCTAssertEqual(alerts, [], "bucket 4 is still warm-up")

        var second = ConnectionFloodDetector(parameters: quick)
        alerts = []
        for n in 0..<5 { alerts += burst(&second, at: Double(n), count: 1) }
        alerts += burst(&second, at: 5, count: 200)
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alerts.first?.detector, .connectionFlood)
    }

    func testAlertsAtTheAttemptThatExceedsTheLimit() throws {
        var detector = ConnectionFloodDetector(parameters: quick)
        // Warm up on silence: one attempt in bucket 0 only, then nothing until bucket 10.
        _ = detector.observe(attempt(0, from: web, to: .workload(db), port: 5432))
        var alerts: [Alert] = []
        for n in 0..<10 { alerts += detector.observe(attempt(10 + Double(n) * 0.01, from: web, to: .workload(db), port: 5432)) }
        XCTAssertEqual(alerts, [], "ten attempts do not exceed a floor of 10 per bucket")
        alerts = detector.observe(attempt(10.5, from: web, to: .workload(db), port: 5432))
        let alert = try XCTUnwrap(alerts.first)
        XCTAssertEqual(alert.time, at(10.5))
        XCTAssertEqual(alert.evidence.value("attempts"), 11)
        XCTAssertEqual(alert.evidence.value("limitRate"), 10)
        XCTAssertEqual(alert.evidence.value("floorRate"), 10)
        XCTAssertEqual(alert.evidence.flows.count, 10, "the sample limit")
        XCTAssertTrue(alert.summary.hasPrefix("11 connection attempts in a 1 s bucket (11/s)"), alert.summary)
    }

    func testBucketBoundary() {
        var detector = ConnectionFloodDetector(parameters: quick)
        _ = detector.observe(attempt(0, from: web, to: .workload(db), port: 5432))
        // Ten in [10, 11) and ten at exactly 11: two buckets of ten, no alert.
        var alerts: [Alert] = []
        for n in 0..<10 { alerts += detector.observe(attempt(10 + Double(n) * 0.1, from: web, to: .workload(db), port: 5432)) }
        for _ in 0..<10 { alerts += detector.observe(attempt(11, from: web, to: .workload(db), port: 5432)) }
        XCTAssertEqual(alerts, [])
        // The eleventh at 11.999999999 is still in bucket 11.
        alerts += detector.observe(FlowObservation(time: Timestamp(nanoseconds: (t0 + 11) * 1_000_000_000 + 999_999_999),
                                                   key: FlowKey(source: .workload(web), destination: .workload(db), proto: .tcp,
                                                                destinationPort: 5432), action: .allow, attempts: 1))
        XCTAssertEqual(alerts.count, 1)
    }

    func testBaselineAboveTheFloorIsNormalAndAJumpIsNot() {
        // 200 attempts per second is far above the floor but normal for this source.
        var detector = ConnectionFloodDetector(parameters: quick)
        var alerts: [Alert] = []
        for second in 0..<60 { alerts += burst(&detector, at: Double(second), count: 195 + (second * 7) % 11) }
        XCTAssertEqual(alerts, [])
        let learned = detector.baseline(of: .workload(web))
        XCTAssertEqual(learned?.mean ?? 0, 200, accuracy: 6)
        alerts = burst(&detector, at: 60, count: 2000)
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(alerts.first?.evidence.value("baselineMeanRate") ?? 0, 200, accuracy: 6)
        XCTAssertGreaterThan(alerts.first?.evidence.value("limitRate") ?? 0, 200)
    }

    func testFloodBucketsAreNotLearned() {
        var detector = ConnectionFloodDetector(parameters: quick)
        for second in 0..<20 { _ = burst(&detector, at: Double(second), count: 5) }
        XCTAssertEqual(burst(&detector, at: 20, count: 500).count, 1)
        let before = detector.baseline(of: .workload(web))
        _ = burst(&detector, at: 21, count: 5)   // closes the flood bucket
        let after = detector.baseline(of: .workload(web))
        XCTAssertEqual(after?.samples, before.map { $0.samples })
        XCTAssertEqual(after?.mean, before?.mean)
        // After the cooldown a flood that goes on alerts again.
        var alerts: [Alert] = []
        for second in 22..<60 { alerts += burst(&detector, at: Double(second), count: 500) }
        XCTAssertEqual(alerts.map(\.time), [at(50 + 10.0 / 500)])
    }

    func testIdleBucketsTeachZero() {
        var detector = ConnectionFloodDetector(parameters: quick)
        for second in 0..<20 { _ = burst(&detector, at: Double(second), count: 100) }
        _ = burst(&detector, at: 120, count: 1)   // a hundred empty buckets later
        let baseline = detector.baseline(of: .workload(web))
        XCTAssertLessThan(baseline?.mean ?? .infinity, 0.01)
        XCTAssertEqual(baseline?.samples, 120)
        // With the baseline gone only the floor protects: 11 attempts in a bucket alert.
        XCTAssertEqual(burst(&detector, at: 121, count: 11).count, 1)
    }

    func testSteadySourceIsNotAlertedWhileAFloodingOneIs() {
        var detector = ConnectionFloodDetector()   // defaults: 5 s buckets, floor 50/s, one minute of warm-up
        var alerts: [Alert] = []
        for tenth in 0..<(600 * 10) {   // ten minutes
            let time = Double(tenth) / 10
            // web: 20 to 30 connections a second, unevenly.
            for n in 0..<(2 + (tenth / 3 + tenth / 7) % 2) {
                alerts += detector.observe(attempt(time + Double(n) * 0.01, from: web, to: .workload(db), port: 5432))
            }
            // scanner: one a second for five minutes, then 300 a second.
            if time < 300 {
                if tenth % 10 == 0 { alerts += detector.observe(attempt(time, from: scanner, to: .workload(db), port: 5432)) }
            } else {
                for n in 0..<30 {
                    alerts += detector.observe(attempt(time + Double(n) / 300, from: scanner, to: .workload(db),
                                                       port: UInt16(1 + n), action: .deny))
                }
            }
        }
        XCTAssertFalse(alerts.contains { $0.endpoint == .workload(web) })
        let first = alerts.first { $0.endpoint == .workload(scanner) }
        XCTAssertNotNil(first)
        // 250 attempts in the bucket are allowed (50/s × 5 s): the 251st, under a second in.
        XCTAssertLessThan(first?.time ?? at(1000), at(301))
        XCTAssertGreaterThanOrEqual(first?.time ?? at(0), at(300))
        // Alerted again after each 60 s cooldown while the flood lasts.
        XCTAssertEqual(alerts.filter { $0.endpoint == .workload(scanner) }.count, 5)
    }

    func testBoundedSourcesAndForgetting() {
        var parameters = quick
        parameters.maximumSources = 2
        parameters.forgetAfter = .seconds(60)
        var detector = ConnectionFloodDetector(parameters: parameters)
        _ = detector.observe(attempt(0, from: web, to: .workload(db), port: 1))
        _ = detector.observe(attempt(0, from: api, to: .workload(db), port: 1))
        _ = detector.observe(attempt(0, from: scanner, to: .workload(db), port: 1))
        XCTAssertEqual(detector.trackedSources, 2)
        XCTAssertEqual(detector.untrackedObservations, 1)
        _ = detector.advance(to: at(59.9))
        XCTAssertEqual(detector.trackedSources, 2)
        _ = detector.advance(to: at(60))
        XCTAssertEqual(detector.trackedSources, 0)
    }

    // MARK: Denied surge

    private let surge = DeniedSurgeDetector.Parameters(window: .seconds(10), threshold: 20, cooldown: .seconds(30))

    private func denials(_ detector: inout DeniedSurgeDetector, from source: Workload = web, at start: Double,
                         count: Int, over seconds: Double = 1) -> [Alert] {
        var alerts: [Alert] = []
        for n in 0..<count {
            alerts += detector.observe(attempt(start + Double(n) * seconds / Double(count), from: source, to: .workload(db),
                                               port: 5432, action: .deny))
        }
        return alerts
    }

    func testDeniedSurgeAppliesItsThresholdFromTheStart() throws {
        var detector = DeniedSurgeDetector(parameters: surge)
        XCTAssertEqual(denials(&detector, at: 0, count: 20), [], "twenty is not more than twenty")
        let alerts = detector.observe(attempt(5, from: web, to: .workload(db), port: 5432, action: .deny))
        let alert = try XCTUnwrap(alerts.first)
        XCTAssertEqual(alert.detector, .deniedSurge)
        XCTAssertEqual(alert.severity, .medium)
        XCTAssertEqual(alert.evidence.value("denied"), 21)
        XCTAssertNil(alert.evidence.value("baselineMean"), "not warm: the baseline played no part")
        XCTAssertEqual(alert.summary, "21 denied attempts in a 10 s window (threshold 20)")
    }

    func testDeniedSurgeWindowBoundary() {
        var detector = DeniedSurgeDetector(parameters: surge)
        var alerts = denials(&detector, at: 0, count: 20, over: 9.9)
        alerts += denials(&detector, at: 10, count: 20, over: 9.9)   // exactly at 10: the next window
        XCTAssertEqual(alerts, [])
        alerts += detector.observe(attempt(19.999, from: web, to: .workload(db), port: 5432, action: .deny))
        XCTAssertEqual(alerts.count, 1)
    }

    func testAllowedAttemptsAreNotDenials() {
        var detector = DeniedSurgeDetector(parameters: surge)
        var alerts: [Alert] = []
        for n in 0..<100 { alerts += detector.observe(attempt(Double(n) * 0.01, from: web, to: .workload(db), port: 5432)) }
        XCTAssertEqual(alerts, [])
        XCTAssertEqual(detector.trackedSources, 0)
    }

    func testDeniedSurgeLearnsAChronicallyRefusedSource() {
        // A misconfigured health check: 40 to 50 denials every window. It alerts in warm-up, then
        // its baseline holds the limit above its normal; a jump to 200 alerts again.
        var chronic = surge
        chronic.cooldown = .seconds(60)   // longer than the warm-up, so warm-up alerts once
        var detector = DeniedSurgeDetector(parameters: chronic)
        var alerts: [Alert] = []
        for window in 0..<30 { alerts += denials(&detector, at: Double(window * 10), count: 40 + (window * 3) % 11, over: 9) }
        XCTAssertEqual(alerts.map(\.time), [at(20.0 * 9 / 40)], "only the first window, before the baseline existed")
        alerts = denials(&detector, at: 300, count: 200, over: 9)
        XCTAssertEqual(alerts.count, 1)
        XCTAssertNotNil(alerts.first?.evidence.value("baselineMean"))
        XCTAssertGreaterThan(alerts.first?.evidence.value("denied") ?? 0, 50)

        var thresholdOnly = surge
        thresholdOnly.useBaseline = false
        thresholdOnly.cooldown = .seconds(1)
        var plain = DeniedSurgeDetector(parameters: thresholdOnly)
        alerts = []
        for window in 0..<30 { alerts += denials(&plain, at: Double(window * 10), count: 40 + (window * 3) % 11, over: 9) }
        XCTAssertEqual(alerts.count, 30, "without the baseline every window over the threshold alerts")
    }
}
