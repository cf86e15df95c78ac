import XCTest
@testable import FlowAnalysis

final class AutoQuarantineTests: XCTestCase {
    private func alert(_ detector: DetectorKind = .portScan, _ severity: Severity = .high,
                       about endpoint: FlowPeer = .workload(scanner)) -> Alert {
        Alert(time: at(1), detector: detector, severity: severity, endpoint: endpoint,
              summary: "30 distinct destination ports in 10 s (threshold 25)", evidence: Evidence(counts: []))
    }

    private let policy = AutoQuarantinePolicy(detectors: [.portScan, .connectionFlood], minimumSeverity: .high)

    func testQuarantinesForAConfiguredDetectorAtOrAboveTheMinimum() {
        let expectedReason = "automatic: portScan alert (high) at 2026-11-29T10:00:01.000Z: 30 distinct destination ports in 10 s (threshold 25)"
        XCTAssertEqual(policy.decide(alert()), .quarantine(scanner, reason: expectedReason))
        guard case .quarantine(let workload, _) = policy.decide(alert(.connectionFlood, .critical)) else {
            return XCTFail("critical is at least high")
        }
        XCTAssertEqual(workload, scanner)
    }

    func testBelowTheMinimumSeverity() {
        XCTAssertEqual(policy.decide(alert(.portScan, .medium)), .none(.belowMinimumSeverity(.medium, minimum: .high)))
        var lenient = policy
        lenient.minimumSeverity = .medium
        if case .quarantine = lenient.decide(alert(.portScan, .medium)) {} else { XCTFail("medium meets a medium minimum") }
    }

    func testDetectorNotConfigured() {
        XCTAssertEqual(policy.decide(alert(.ipSweep, .critical)), .none(.detectorNotConfigured(.ipSweep)))
        XCTAssertEqual(AutoQuarantinePolicy().decide(alert(.portScan, .critical)), .none(.detectorNotConfigured(.portScan)),
                       "the default quarantines nothing")
    }

    func testDryRunSaysWhatItWouldHaveDone() {
        var dry = policy
        dry.dryRun = true
        guard case .dryRun(let workload, let reason) = dry.decide(alert()) else { return XCTFail("\(dry.decide(alert()))") }
        XCTAssertEqual(workload, scanner)
        XCTAssertTrue(reason.contains("portScan"))
        XCTAssertEqual(dry.decide(alert(.portScan, .low)), .none(.belowMinimumSeverity(.low, minimum: .high)))
    }

    func testNeverForAnExemptWorkload() {
        for dryRun in [false, true] {
            let exempting = AutoQuarantinePolicy(detectors: Set(DetectorKind.allCases), minimumSeverity: .info, dryRun: dryRun,
                                                 isExempt: { $0.labels["app"] == "scanner" })
            for kind in DetectorKind.allCases {
                for severity in Severity.allCases {
                    XCTAssertEqual(exempting.decide(alert(kind, severity)), .none(.exempt(scanner)))
                }
            }
            // The predicate is asked about the alert's workload, not about everyone.
            guard case .quarantine = AutoQuarantinePolicy(detectors: [.portScan], isExempt: { $0.labels["app"] == "scanner" })
                .decide(alert(about: .workload(web))) else { return XCTFail("web is not exempt") }
        }
    }

    func testAnAddressCannotBeQuarantined() {
        XCTAssertEqual(policy.decide(alert(about: host(3))), .none(.notAWorkload(host(3))))
        XCTAssertEqual("\(NoQuarantineReason.notAWorkload(host(3)))", "203.0.113.3 is not a workload")
        XCTAssertEqual("\(NoQuarantineReason.exempt(scanner))", "lab/scanner is exempt from automatic quarantine")
    }
}
