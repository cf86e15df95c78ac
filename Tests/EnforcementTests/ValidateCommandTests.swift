import Foundation
import XCTest

/// `agentctl validate FILE...`: offline, no agent, no root. The shipped examples must pass.
final class ValidateCommandTests: XCTestCase {
    private var work: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard FileManager.default.isExecutableFile(atPath: Agent.agentctlPath) else {
            throw CommandError(description: "\(Agent.agentctlPath) is missing: run `swift build` first, or set PALISADE_BIN_DIR")
        }
        work = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-validate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let work { try? FileManager.default.removeItem(at: work) }
        super.tearDown()
    }

    func testShippedExamplesValidate() throws {
        let examples = Lab.repository.appendingPathComponent("Packaging/examples")
        let files = ["state/namespaces.yaml", "state/pods.yaml", "policies/db-ingress-from-web.yaml",
                     "policies/web-ingress-from-edge.yaml", "policies/db-deny-egress.yaml"]
            .map { examples.appendingPathComponent($0).path }
        let result = try Command.run([Agent.agentctlPath, "validate"] + files)
        XCTAssertEqual(result.status, 0, result.transcript)
    }

    func testBadFileIsReportedWithPathAndLine() throws {
        let file = work.appendingPathComponent("bad.yaml")
        try """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: bad
          namespace: alpha
        spec:
          podSelector:
            matchExpressions:
            - key: app
              operator: Equals
              values: [web]

        """.write(to: file, atomically: true, encoding: .utf8)
        let result = try Command.run([Agent.agentctlPath, "validate", file.path])
        XCTAssertEqual(result.status, 1, result.transcript)
        XCTAssertTrue(result.stderr.contains("\(file.path):10:") || result.stderr.contains("bad.yaml:10:"),
                      "expected `\(file.path):10: …` on stderr:\n\(result.transcript)")
    }
}
