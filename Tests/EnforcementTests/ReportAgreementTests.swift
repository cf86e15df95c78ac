import Foundation
import XCTest

/// The reports are computed from what the agent really recorded, and agree with the packets: an
/// endpoint the inventory report calls protected drops a probe no policy allows; one it calls
/// unprotected takes it.
final class ReportAgreementTests: EnforcementTestCase {
    func testTheReportsProtectedEndpointsDropUnallowedProbes() throws {
        try applyPolicy("isolate-alpha", NetworkPolicyEnforcementTests.denyAllIngressInAlpha)
        // The period starts now: from here on alpha's pods are selected by the deny-all policy.
        let formatter = ISO8601DateFormatter()
        let from = formatter.string(from: Date().addingTimeInterval(1))
        let to = formatter.string(from: Date().addingTimeInterval(3600))
        sleep(2)
        let out = work.appendingPathComponent("report").path
        let report = try agent.ctl(["report", "soc2", "--from", from, "--to", to, "--out", out,
                                    "--data-dir", agent.dataDirectory.path], timeout: 60)
        XCTAssertEqual(report.status, 0, report.transcript)
        for file in ["soc2.html", "inventory.json", "network-access.csv", "policy-audit.json", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
        }
        let data = try XCTUnwrap(FileManager.default.contents(atPath: out + "/inventory.json"))
        let inventory = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let rows = try XCTUnwrap(inventory["rows"] as? [[String: Any]])
        func protected(_ pod: String) -> Bool? {
            rows.first { "\($0["namespace"] ?? "")/\($0["name"] ?? "")" == pod }?["ingressProtectedWholePeriod"] as? Bool
        }
        XCTAssertEqual(rows.count, 4, "\(rows)")
        XCTAssertEqual(protected("alpha/a1"), true, "\(rows)")
        XCTAssertEqual(protected("alpha/a2"), true)
        XCTAssertEqual(protected("beta/b1"), false)
        // And the packets say the same.
        assertTraffic(allowed: [tcp("a1", "b1"), udp("a2", "b2")], denied: [tcp("b1", "a1"), udp("b2", "a2")],
                      "what the report calls protected drops the probe; what it calls unprotected takes it")
        let page = try String(contentsOfFile: out + "/soc2.html", encoding: .utf8)
        XCTAssertTrue(page.contains("CC6.1") && page.contains("CC8.1") && !page.contains("<script"), "a self-contained page")
    }
}
