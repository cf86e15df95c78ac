import XCTest

/// The `palisade.dev/default-policy` namespace annotation: pods that no policy selects follow
/// their namespace's default, in both directions.
final class NamespaceDefaultPolicyTests: EnforcementTestCase {
    func testDefaultDenyNamespaceCutsOffItsUnselectedPodsBothWays() throws {
        try writeNamespaces(betaDefault: "deny")
        try agent.sync()

        assertTraffic(
            allowed: both("a1", "a2", .v4, .v6) + both("a2", "a1"),
            denied: both("a1", "b1", .v4, .v6) + both("b1", "a1", .v4, .v6) + both("b1", "b2") + both("b2", "a2"))

        // A policy whitelists ingress of b1 from alpha on TCP 8080; b2 stays closed.
        try applyPolicy("client-from-alpha", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: client-from-alpha
              namespace: beta
            spec:
              podSelector:
                matchLabels:
                  app: client
              policyTypes:
              - Ingress
              ingress:
              - from:
                - namespaceSelector:
                    matchLabels:
                      team: alpha
                ports:
                - protocol: TCP
                  port: 8080

            """)
        assertTraffic(
            allowed: [tcp("a1", "b1"), tcp("a2", "b1", .v6)],
            denied: [udp("a1", "b1"), tcp("a1", "b1", port: 9090), tcp("a1", "b2"), tcp("b2", "b1")],
            "with a whitelist for b1")

        // Back to allow: everything flows again.
        try state.remove("policies/client-from-alpha.yaml")
        try writeNamespaces(betaDefault: "allow")
        try agent.sync()
        assertTraffic(allowed: both("a1", "b2") + both("b1", "a1") + both("b1", "b2"), "with default allow")
    }
}
