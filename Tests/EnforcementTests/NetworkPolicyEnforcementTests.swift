import XCTest

/// Kubernetes NetworkPolicy semantics, judged on real TCP and UDP between pod namespaces
/// and cross-checked against `nft -j list table inet palisade`.
final class NetworkPolicyEnforcementTests: EnforcementTestCase {
    static let denyAllIngressInAlpha = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: deny-all-ingress
          namespace: alpha
        spec:
          podSelector: {}
          policyTypes:
          - Ingress

        """

    func testWithoutPoliciesEveryPodReachesEveryOther() throws {
        let pods = Self.knownPods.map(\.name)
        var flows: [Flow] = []
        for from in pods {
            for to in pods where to != from {
                flows += both(from, to, .v4, .v6)
            }
        }
        assertTraffic(allowed: flows)

        try assertDispatchMaps(hold: Self.knownInterfaces)
        let status = try agent.status()
        XCTAssertEqual(status["inSync"] as? Bool, true, "status: \(status)")
        XCTAssertEqual(status["endpoints"] as? Int, 4, "status: \(status)")
        XCTAssertEqual(status["namespaces"] as? Int, 2, "status: \(status)")
        XCTAssertEqual(status["policies"] as? Int, 0, "status: \(status)")
    }

    func testDenyAllIngressIsolatesANamespaceButNotItsOutboundTraffic() throws {
        try applyPolicy("deny-all-ingress", Self.denyAllIngressInAlpha)

        assertTraffic(
            allowed: both("a1", "b1", .v4, .v6) + both("a2", "b2") + both("b1", "b2") + both("b2", "b1"),
            denied: both("b1", "a1", .v4, .v6) + both("b2", "a2") + both("a2", "a1") + both("a1", "a2"))
        try assertDispatchMaps(hold: Self.knownInterfaces)
    }

    func testAllowFromPodSelectorAdmitsOnlyThosePodsOfTheSameNamespaceOnThatPort() throws {
        // b2 is app=web too, but a bare podSelector only selects pods of the policy's namespace.
        try applyPolicy("db-from-web", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: db-from-web
              namespace: alpha
            spec:
              podSelector:
                matchLabels:
                  app: db
              policyTypes: [Ingress]
              ingress:
              - from:
                - podSelector:
                    matchLabels:
                      app: web
                ports:
                - protocol: TCP
                  port: 8080

            """)

        assertTraffic(
            allowed: [tcp("a1", "a2"), tcp("a1", "a2", .v6)] + both("a2", "a1") + both("b1", "a1"),
            denied: [udp("a1", "a2"), tcp("a1", "a2", port: 9090), tcp("b2", "a2"), udp("b2", "a2"),
                     tcp("b1", "a2"), tcp("b1", "a2", .v6), tcp("rogue", "a2")])
        try assertSelectorSet(.v4, holds: addresses(["a1"], .v4))
        try assertSelectorSet(.v6, holds: addresses(["a1"], .v6))
    }

    func testAllowFromNamespaceSelectorAdmitsEveryPodOfTheLabelledNamespaces() throws {
        try applyPolicy("web-from-beta", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: web-from-beta
              namespace: alpha
            spec:
              podSelector:
                matchExpressions:
                - key: app
                  operator: In
                  values: [web]
              policyTypes:
              - Ingress
              ingress:
              - from:
                - namespaceSelector:
                    matchLabels:
                      team: beta
                ports:
                - protocol: TCP
                  port: 8080
                - protocol: UDP
                  port: 5353

            """)

        assertTraffic(
            allowed: both("b1", "a1", .v4, .v6) + both("b2", "a1") + both("b1", "a2") + both("a1", "a2"),
            denied: both("a2", "a1", .v4, .v6) + [tcp("b1", "a1", port: 9090)])
        try assertSelectorSet(.v4, holds: addresses(["b1", "b2"], .v4))
        try assertSelectorSet(.v6, holds: addresses(["b1", "b2"], .v6))
    }

    func testEgressDenyStopsNewOutboundConnectionsOnly() throws {
        try applyPolicy("db-no-egress", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: db-no-egress
              namespace: alpha
            spec:
              podSelector:
                matchLabels:
                  app: db
              policyTypes:
              - Egress

            """)

        // Replies to connections a2 accepts are established traffic and still flow.
        assertTraffic(
            allowed: both("a1", "a2", .v4, .v6) + both("b1", "a2") + both("b1", "a1"),
            denied: both("a2", "a1") + both("a2", "b1", .v4, .v6))

        // A whitelist on top: a2 may talk to the web pods of its namespace on TCP 8080 only.
        try applyPolicy("db-egress-to-web", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: db-egress-to-web
              namespace: alpha
            spec:
              podSelector:
                matchLabels:
                  app: db
              policyTypes:
              - Egress
              egress:
              - to:
                - podSelector:
                    matchLabels:
                      app: web
                ports:
                - protocol: TCP
                  port: 8080

            """)
        assertTraffic(
            allowed: [tcp("a2", "a1"), tcp("a2", "a1", .v6)] + both("a1", "a2"),
            denied: [udp("a2", "a1"), tcp("a2", "a1", port: 9090), tcp("a2", "b2"), tcp("a2", "b1")],
            "after adding the egress whitelist")
        try assertSelectorSet(.v4, holds: addresses(["a1"], .v4))
    }

    func testRemovingThePolicyFileRestoresAccess() throws {
        try applyPolicy("deny-all-ingress", Self.denyAllIngressInAlpha)
        assertTraffic(allowed: both("a1", "b1"), denied: both("b1", "a1", .v4, .v6), "with the policy")

        try state.remove("policies/deny-all-ingress.yaml")
        try agent.sync()
        assertTraffic(allowed: both("b1", "a1", .v4, .v6) + both("a2", "a1"), "after removing the policy")
        XCTAssertEqual(try agent.status()["policies"] as? Int, 0)
    }
}
