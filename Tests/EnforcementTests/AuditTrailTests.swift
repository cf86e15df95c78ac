import Foundation
import XCTest

/// The audit trail through agentctl, against a running agent: a policy change shows up with its
/// diff, the chain verifies, and an edit of one record makes `agentctl audit verify` fail with 1.
final class AuditTrailTests: EnforcementTestCase {
    func audit(_ arguments: [String]) throws -> CommandResult {
        try agent.ctl(["audit"] + arguments + ["--data-dir", agent.dataDirectory.path])
    }

    func testPolicyChangesAreInTheTrailAndTamperingIsDetected() throws {
        try applyPolicy("isolate-alpha", NetworkPolicyEnforcementTests.denyAllIngressInAlpha)
        let created = try audit(["log", "--kind", "NetworkPolicy", "-o", "json"])
        XCTAssertEqual(created.status, 0, created.transcript)
        XCTAssertTrue(created.stdout.contains("\"type\":\"object.created\"") && created.stdout.contains("\"target\":\"alpha/deny-all-ingress\""),
                      created.stdout)
        let pods = try audit(["log", "--kind", "Pod"])
        XCTAssertEqual(pods.stdout.split(separator: "\n").filter { $0.contains("object.created") }.count, 4, pods.stdout)

        let verified = try audit(["verify"])
        XCTAssertEqual(verified.status, 0, verified.transcript)
        XCTAssertTrue(verified.stdout.hasPrefix("intact: "), verified.stdout)

        // Change one character of the agent.start record: the chain breaks at the record after it.
        let path = agent.dataDirectory.appendingPathComponent("events.jsonl")
        var text = try String(contentsOf: path, encoding: .utf8)
        let startLine = try XCTUnwrap(text.split(separator: "\n").firstIndex { $0.contains("\"type\":\"agent.start\"") }) + 1
        let range = try XCTUnwrap(text.range(of: "\"type\":\"agent.start\""))
        text.replaceSubrange(range, with: "\"type\":\"agent.stort\"")
        try text.write(to: path, atomically: true, encoding: .utf8)
        let broken = try audit(["verify"])
        XCTAssertEqual(broken.status, 1, broken.transcript)
        XCTAssertTrue(broken.stderr.contains("line \(startLine + 1) ") && broken.stderr.contains("prev does not match"), broken.transcript)
    }
}
