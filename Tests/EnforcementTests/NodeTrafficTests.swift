import Foundation
import XCTest

/// Traffic from the node itself to its pods (kubelet probes): allowed whatever the policies say,
/// unless the agent is configured `nodeToWorkload: policy`, when the pods' ingress policy judges it.
final class NodeTrafficTests: EnforcementTestCase {
    static let denyAllIngressInAlpha = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: deny-all
          namespace: alpha
        spec:
          podSelector: {}
          policyTypes:
          - Ingress

        """

    /// One TCP round trip from the node namespace to a pod's port 8080.
    func nodeReaches(_ pod: String, _ family: AddressFamily = .v4) -> Bool {
        let host = lab.address(of: pod, family)
        let target = "tcp:\(family == .v6 ? "[\(host)]" : host):8080"
        let result = try? Command.run(["ip", "netns", "exec", lab.nodeNamespace, "python3", Lab.probeScript,
                                       "check", "--timeout", "1", target], timeout: 20)
        return result?.stdout.hasPrefix("ok") ?? false
    }

    func testNodeReachesItsPodsDespiteIngressPolicyByDefault() throws {
        try applyPolicy("deny-all", Self.denyAllIngressInAlpha)
        assertTraffic(denied: [tcp("b1", "a1")], "pods are isolated from each other")
        XCTAssertTrue(nodeReaches("a1"), "kubelet-style probes from the node must pass by default")
        XCTAssertTrue(nodeReaches("a1", .v6))
    }

    func testNodeTrafficFollowsIngressPolicyWhenConfigured() throws {
        agent.stop()
        try "defaultPolicy: allow\ntableName: palisade\ninterfacePrefix: pl\nnodeToWorkload: policy\n"
            .write(to: agent.configuration, atomically: true, encoding: .utf8)
        try agent.start()
        try agent.sync()
        XCTAssertTrue(nodeReaches("a1"), "no policy selects a1 yet: default allow")
        try applyPolicy("deny-all", Self.denyAllIngressInAlpha)
        XCTAssertFalse(nodeReaches("a1"), "with nodeToWorkload: policy the node is a source like any other")
        XCTAssertFalse(nodeReaches("a1", .v6))
        XCTAssertTrue(nodeReaches("b1"), "beta has no policy")
        let rules = try agent.ctl(["rules"]).stdout
        XCTAssertTrue(rules.contains("type filter hook output") && rules.contains("oifname vmap @ingress-dispatch"), rules)
    }
}
