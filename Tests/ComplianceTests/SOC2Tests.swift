import AgentCore
@testable import Compliance
import Foundation
import XCTest

final class SOC2Tests: XCTestCase {
    override class func tearDown() { Scenario.removeScratch() }

    func testAnUnprotectedEndpointFailsCC61AndIsNamed() throws {
        let assessment = SOC2Assessment(try Scenario().analysis())
        let control = try XCTUnwrap(assessment.control("CC6.1"))
        XCTAssertEqual(control.status, .notMet)
        XCTAssertTrue(control.findings.contains("Ingress not protected for the whole period: dev/scratch-1."), "\(control.findings)")
        XCTAssertEqual(assessment.controls.map(\.id), ["CC6.1", "CC6.6", "CC6.7", "CC6.8", "CC7.1", "CC7.2–7.4", "CC8.1"])
        XCTAssertEqual(assessment.controls.map(\.status), [.notMet, .notMet, .notMet, .met, .met, .met, .partiallyMet])
        let change = try XCTUnwrap(assessment.control("CC8.1"))
        XCTAssertTrue(change.findings.contains { $0.hasPrefix("FAILED: created GlobalNetworkPolicy deny-egress-internet by bob") }, "\(change.findings)")
    }

    func testAllProtectedMeetsCC61() throws {
        var scenario = Scenario()
        scenario.scratchProtected = true
        let assessment = SOC2Assessment(try scenario.analysis())
        XCTAssertEqual(assessment.control("CC6.1")?.status, .met)
        XCTAssertEqual(assessment.control("CC6.6")?.status, .partiallyMet, "shop/web-1 is reachable from the internet by policy")
        XCTAssertEqual(assessment.control("CC6.7")?.status, .met)
    }

    func testABrokenAuditChainIsReported() throws {
        let analysis = try Scenario().analysis { lines in
            lines[2] = lines[2].replacingOccurrences(of: "\"user\":\"alice\"", with: "\"user\":\"mallory\"")
        }
        XCTAssertFalse(analysis.evidence.chain.isIntact)
        XCTAssertEqual(analysis.evidence.chain.breaks.first?.file, "events-000000000005.jsonl")
        XCTAssertEqual(analysis.evidence.chain.breaks.first?.line, 4)
        let assessment = SOC2Assessment(analysis)
        XCTAssertEqual(assessment.control("CC7.2–7.4")?.status, .notMet)
        XCTAssertEqual(assessment.control("CC8.1")?.status, .notMet)
        let page = SOC2Page.render(analysis, assessment, files: [], generated: Scenario.time("2026-11-05T00:00:00.000Z"), dataDirectory: "/var/lib/palisade")
        XCTAssertTrue(page.contains("Audit chain BROKEN: events-000000000005.jsonl:4 (seq 4)"), "the page says where")
    }

    func testIntactChainAcrossRotatedFiles() throws {
        let chain = try Scenario().analysis().evidence.chain
        XCTAssertTrue(chain.isIntact, "\(chain.breaks)")
        XCTAssertEqual(chain.files, 2)
        XCTAssertEqual(chain.records, 12)
        XCTAssertEqual(chain.lastSeq, 12)
    }

    func testTheBundleCarriesAManifestWhoseHashesMatch() throws {
        let analysis = try Scenario().analysis()
        let out = Scenario.scratch + "/out-\(UUID().uuidString)"
        let written = try ReportBundle.write(.soc2, format: .html, analysis: analysis, generated: Scenario.time("2026-11-05T00:00:00.000Z"),
                                             dataDirectory: "/var/lib/palisade", to: out)
        XCTAssertEqual(written.map(\.name), ["inventory.csv", "inventory.json", "network-access.csv", "network-access.json",
                                             "policy-audit.csv", "policy-audit.json", "soc2.json", "soc2.html", "manifest.json"])
        let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any])
        let files = try XCTUnwrap(manifest["files"] as? [[String: Any]])
        XCTAssertEqual(files.count, 8)
        for file in files {
            let name = try XCTUnwrap(file["name"] as? String)
            let data = try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))
            XCTAssertEqual(file["sha256"] as? String, SHA256.hex(data), name)
            XCTAssertEqual(file["size"] as? Int, data.count, name)
        }
        let inputs = try XCTUnwrap(manifest["inputs"] as? [[String: Any]])
        XCTAssertEqual(inputs.compactMap { $0["name"] as? String },
                       ["events-000000000005.jsonl", "events.jsonl", "flows.jsonl.1", "flows.jsonl", "inventory.json"])

        let page = try String(contentsOfFile: out + "/soc2.html", encoding: .utf8)
        for name in ["inventory.csv", "network-access.json", "policy-audit.csv", "manifest.json"] {
            XCTAssertTrue(page.contains("href=\"\(name)\""), name)
        }
        XCTAssertEqual(page.components(separatedBy: "<svg").count - 1, 2, "two inline charts")
        XCTAssertFalse(page.contains("<script") || page.contains("<link") || page.contains("src="), "self-contained")
        XCTAssertTrue(page.contains("<span class=\"status notmet\">not met</span>"))
    }

    func testSingleReportBundle() throws {
        let out = Scenario.scratch + "/out-\(UUID().uuidString)"
        let written = try ReportBundle.write(.networkAccess, format: .csv, analysis: try Scenario().analysis(),
                                             generated: Scenario.time("2026-11-05T00:00:00.000Z"), dataDirectory: "/d", to: out)
        XCTAssertEqual(written.map(\.name), ["network-access.csv", "manifest.json"])
        XCTAssertEqual(written[0].sha256, SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: out + "/network-access.csv"))))
    }
}
