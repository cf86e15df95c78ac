import XCTest

/// projectcalico.org/v3 NetworkPolicy and GlobalNetworkPolicy on the 9-pod conformance lab,
/// written from Calico's documentation (reference/resources/networkpolicy,
/// globalnetworkpolicy, and the policy-ordering and tiers pages):
///
/// - policies that select an endpoint are evaluated by `order`, lower first, equal orders by
///   name; a policy without order comes last; Kubernetes NetworkPolicies count as order 1000;
/// - within a policy, rules in order: `Allow` and `Deny` end the evaluation, `Log` logs and
///   goes on, `Pass` skips the rest of the ordered policies (Kubernetes ones included), after
///   which the endpoint's no-policy default applies (Calico's profile; here the namespace's
///   `palisade.dev/default-policy`, else the agent's default: allow);
/// - an endpoint selected by some policy for a direction, with no rule deciding, is denied;
/// - selectors see the *pod's* labels; namespace labels are matched by `namespaceSelector`
///   only. In a namespaced NetworkPolicy a rule's `selector` matches pods of that namespace
///   unless it has a `namespaceSelector`; in a GlobalNetworkPolicy pods of every namespace;
/// - a rule matches when every field it has matches: nets AND not notNets, ports AND not
///   notPorts, protocol, icmp type.
final class CalicoConformanceTests: ConformanceTestCase {
    // MARK: Order and actions

    func testOrderedDenyBeatsKubernetesAllow() throws {
        try check([
            networkPolicy("a-open", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                ingress:
                - {}
                """),
            calicoPolicy("deny-b", in: "x", """
                order: 10
                selector: "pod == 'a'"
                ingress:
                - action: Deny
                  source:
                    selector: "pod == 'b'"
                """),
        ], expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.expectPeer(from: "x/b", to: "x/a", false) }))
    }

    func testOrderedAllowBeatsLaterDeny() throws {
        try check([
            calicoPolicy("allow-b", in: "x", """
                order: 10
                selector: "pod == 'a'"
                ingress:
                - action: Allow
                  source:
                    selector: "pod == 'b'"
                """),
            calicoPolicy("deny-all", in: "x", """
                order: 20
                selector: "pod == 'a'"
                ingress:
                - action: Deny
                """),
        ], expect: same([.tcp(80), .udp(81)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/b"]) }))
    }

    func testEqualOrdersAreTakenByName() throws {
        // Both at order 10: "a-allow-c" comes before "b-deny-all".
        try check([
            calicoPolicy("b-deny-all", in: "x", """
                order: 10
                selector: "pod == 'a'"
                ingress:
                - action: Deny
                """),
            calicoPolicy("a-allow-c", in: "x", """
                order: 10
                selector: "pod == 'a'"
                ingress:
                - action: Allow
                  source:
                    selector: "pod == 'c'"
                """),
        ], expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/c"]) }])
    }

    func testPolicyWithoutOrderComesAfterKubernetesPolicies() throws {
        // The Kubernetes policy (order 1000) admits x/b before the unordered Deny is reached.
        try check([
            networkPolicy("a-from-b", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                ingress:
                - from:
                  - podSelector:
                      matchLabels:
                        pod: b
                """),
            calicoPolicy("deny-all-last", in: "x", """
                selector: "pod == 'a'"
                ingress:
                - action: Deny
                """),
        ], expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/b"]) }])
    }

    func testPassSkipsKubernetesPoliciesToTheDefault() throws {
        // x is closed by a Kubernetes deny-all; for x/a, traffic from y passes over it to the
        // no-policy default (allow).
        try check([
            networkPolicy("deny-all-ingress", in: "x", """
                podSelector: {}
                policyTypes: [Ingress]
                """),
            calicoPolicy("pass-from-y", in: "x", """
                order: 10
                selector: "pod == 'a'"
                ingress:
                - action: Pass
                  source:
                    namespaceSelector: "ns == 'y'"
                """),
        ], expect: same([.tcp(80), .udp(80)], Reachability(true) {
            $0.isolateIngress("x/*")
            $0.expectPeer(from: "y/*", to: "x/a", true)
        }))
    }

    func testPassLandsOnTheNamespaceDefaultDeny() throws {
        // As above, but x defaults to deny: what passes is denied, and x's unselected
        // egress is denied too.
        try check([
            networkPolicy("deny-all-ingress", in: "x", """
                podSelector: {}
                policyTypes: [Ingress]
                """),
            calicoPolicy("pass-from-y", in: "x", """
                order: 10
                selector: "pod == 'a'"
                ingress:
                - action: Pass
                  source:
                    namespaceSelector: "ns == 'y'"
                """),
        ], ScenarioState(namespaceDefaults: ["x": "deny"]),
           expect: [.tcp(80): Reachability(true) { $0.isolate("x/*") }])
    }

    func testLogThenContinue() throws {
        try check([calicoPolicy("log-deny-b-allow", in: "x", """
            order: 10
            selector: "pod == 'a'"
            ingress:
            - action: Log
            - action: Deny
              source:
                selector: "pod == 'b'"
            - action: Allow
            """)],
            expect: same([.tcp(80), .tcp(80, .v6)], Reachability(true) { $0.expectPeer(from: "x/b", to: "x/a", false) }))
    }

    func testDenyOnlyPolicyLeavesSelectedEndpointDenied() throws {
        // A Deny that matches only y/c, and nothing else deciding: x/a is selected, so the
        // rest is denied at the end as well.
        try check([calicoPolicy("deny-yc", in: "x", """
            order: 10
            selector: "pod == 'a'"
            ingress:
            - action: Deny
              source:
                selector: "pod == 'c'"
                namespaceSelector: "ns == 'y'"
            """)],
            expect: [.tcp(80): Reachability(true) { $0.isolateIngress("x/a") }])
    }

    // MARK: GlobalNetworkPolicy

    func testGlobalNetworkPolicyWithNamespaceSelector() throws {
        // Applies to the c pods of y and z; a GlobalNetworkPolicy's rule selector spans every
        // namespace, so x/a, y/a and z/a are admitted.
        try check([globalNetworkPolicy("c-from-a", """
            order: 10
            namespaceSelector: "ns in {'y', 'z'}"
            selector: "pod == 'c'"
            types: [Ingress]
            ingress:
            - action: Allow
              source:
                selector: "pod == 'a'"
            """)],
            expect: same([.tcp(80), .tcp(80, .v6)], Reachability(true) {
                $0.expectIngress(to: "y/c", onlyFrom: ["*/a"])
                $0.expectIngress(to: "z/c", onlyFrom: ["*/a"])
            }))
    }

    func testGlobalNetworkPolicySelectingEveryPod() throws {
        try check([globalNetworkPolicy("only-from-a", """
            order: 100
            selector: all()
            types: [Ingress]
            ingress:
            - action: Allow
              source:
                selector: "pod == 'a'"
            """)],
            expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "*/*", onlyFrom: ["*/a"]) }])
    }

    // MARK: Selectors

    func testSourceSelectorInSet() throws {
        try check([calicoPolicy("c-from-a-b", in: "x", """
            order: 10
            selector: "pod == 'c'"
            ingress:
            - action: Allow
              source:
                selector: "pod in {'a', 'b'}"
            """)],
            expect: same([.tcp(80), .udp(81)], Reachability(true) { $0.expectIngress(to: "x/c", onlyFrom: ["x/a", "x/b"]) }))
    }

    func testSourceSelectorNotHas() throws {
        let labels = ScenarioState(podLabels: ["x/b": ["foo": "bar"], "y/a": ["foo": "bar"]])
        try check([calicoPolicy("x-from-unlabelled", in: "x", """
            order: 10
            selector: all()
            ingress:
            - action: Allow
              source:
                selector: "!has(foo)"
            """)], labels,
            expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "x/*", onlyFrom: ["x/a", "x/c"]) }])
    }

    func testSelectorOrAndParentheses() throws {
        let labels = ScenarioState(podLabels: ["x/b": ["foo": "bar"]])
        try check([calicoPolicy("c-from-a-or-b-unlabelled", in: "x", """
            order: 10
            selector: "pod == 'c'"
            ingress:
            - action: Allow
              source:
                selector: "(pod == 'a' || pod == 'b') && !has(foo)"
            """)], labels,
            expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "x/c", onlyFrom: ["x/a"]) }])
    }

    func testNamespaceLabelIsNotAnEndpointLabel() throws {
        // `ns` is a Namespace label; a pod selector does not see it, so this rule matches
        // no pod at all and x/a, selected, is closed.
        try check([globalNetworkPolicy("a-from-ns-label", """
            order: 10
            namespaceSelector: "ns == 'x'"
            selector: "pod == 'a'"
            ingress:
            - action: Allow
              source:
                selector: "pod != 'c' && ns == 'x'"
            """)],
            expect: [.tcp(80): Reachability(true) { $0.isolateIngress("x/a") }])
    }

    func testSourceSelectorWithNamespaceSelector() throws {
        // The same intent written as Calico means it: pods of namespaces with ns=x, not c.
        try check([globalNetworkPolicy("a-from-x-not-c", """
            order: 10
            namespaceSelector: "ns == 'x'"
            selector: "pod == 'a'"
            ingress:
            - action: Allow
              source:
                selector: "pod != 'c'"
                namespaceSelector: "ns == 'x'"
            """)],
            expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/b"]) }))
    }

    func testNotSelectorAndNotIn() throws {
        // x/a: from pods of x that are not b; x/c: from pods of x not in {a}.
        try check([
            calicoPolicy("a-not-from-b", in: "x", """
                order: 10
                selector: "pod == 'a'"
                ingress:
                - action: Allow
                  source:
                    notSelector: "pod == 'b'"
                """),
            calicoPolicy("c-not-from-a", in: "x", """
                order: 10
                selector: "pod == 'c'"
                ingress:
                - action: Allow
                  source:
                    selector: "pod not in {'a'}"
                """),
        ], expect: [.tcp(80): Reachability(true) {
            $0.expectIngress(to: "x/a", onlyFrom: ["x/c"])
            $0.expectIngress(to: "x/c", onlyFrom: ["x/b"])
        }])
    }

    func testDestinationNotSelectorInEgress() throws {
        // In a namespaced policy a rule's notSelector, like its selector, is confined to the
        // policy's namespace: x/b may send to pods of x other than a, and nowhere else.
        try check([calicoPolicy("b-not-to-a", in: "x", """
            order: 10
            selector: "pod == 'b'"
            types: [Egress]
            egress:
            - action: Allow
              destination:
                notSelector: "pod == 'a'"
            """)],
            expect: [.tcp(80): Reachability(true) { $0.expectEgress(from: "x/b", onlyTo: ["x/c"]) }])
    }

    func testSourceNamespaceSelectorAlone() throws {
        try check([calicoPolicy("b-from-z", in: "x", """
            order: 10
            selector: "pod == 'b'"
            ingress:
            - action: Allow
              source:
                namespaceSelector: "ns == 'z'"
            """)],
            expect: same([.tcp(80), .tcp(81, .v6)], Reachability(true) { $0.expectIngress(to: "x/b", onlyFrom: ["z/*"]) }))
    }

    func testAllNamespacesSelectorInADestination() throws {
        // x/a's Kubernetes egress allows everything; an ordered Calico Deny to every b pod
        // (namespaceSelector all(): in any namespace) comes first.
        try check([
            networkPolicy("a-out", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                policyTypes: [Egress]
                egress:
                - {}
                """),
            calicoPolicy("a-not-to-b", in: "x", """
                order: 10
                selector: "pod == 'a'"
                types: [Egress]
                egress:
                - action: Deny
                  destination:
                    selector: "pod == 'b'"
                    namespaceSelector: all()
                """),
        ], expect: same([.tcp(80), .udp(80)], Reachability(true) {
            $0.expectPeer(from: "x/a", to: "*/b", false)
        }))
    }

    // MARK: Nets, ports, protocols

    func testNetsAndNotNets() throws {
        // IPv4 nets say nothing about IPv6: v6 to x/a reaches no Allow and is denied.
        try check([calicoPolicy("a-from-nets", in: "x", """
            order: 10
            selector: "pod == 'a'"
            ingress:
            - action: Allow
              source:
                nets: [198.18.0.0/15]
                notNets: [198.18.2.0/24]
            """)],
            expect: [
                .tcp(80): Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/*", "z/*"]) },
                .tcp(80, .v6): Reachability(true) { $0.isolateIngress("x/a") },
            ])
    }

    func testIPv6Nets() throws {
        try check([calicoPolicy("z-from-x-v6", in: "z", """
            order: 10
            selector: all()
            ingress:
            - action: Allow
              source:
                nets: ["2001:db8:1::/48"]
            """)],
            expect: [
                .udp(81, .v6): Reachability(true) { $0.expectIngress(to: "z/*", onlyFrom: ["x/*"]) },
                .tcp(80): Reachability(true) { $0.isolateIngress("z/*") },
            ])
    }

    func testDestinationNetsInEgress() throws {
        // 198.19.0.0/16 is z; no IPv6 net, so v6 egress of x/a reaches no Allow.
        try check([calicoPolicy("a-to-z-net", in: "x", """
            order: 10
            selector: "pod == 'a'"
            types: [Egress]
            egress:
            - action: Allow
              destination:
                nets: [198.19.0.0/16]
            """)],
            expect: [
                .udp(81): Reachability(true) { $0.expectEgress(from: "x/a", onlyTo: ["z/*"]) },
                .tcp(80, .v6): Reachability(true) { $0.isolateEgress("x/a") },
            ])
    }

    func testIPVersion() throws {
        try check([calicoPolicy("a-v6-only", in: "x", """
            order: 10
            selector: "pod == 'a'"
            ingress:
            - action: Allow
              ipVersion: 6
            """)],
            expect: [.tcp(80, .v6): .allAllowed, .tcp(80): Reachability(true) { $0.isolateIngress("x/a") }])
    }

    func testDestinationPortRange() throws {
        try check([calicoPolicy("x-tcp-80-81", in: "x", """
            order: 10
            selector: all()
            ingress:
            - action: Allow
              protocol: TCP
              destination:
                ports: ["80:81"]
            """)],
            expect: same([.tcp(80), .tcp(81)], .allAllowed)
                + [.udp(80): Reachability(true) { $0.isolateIngress("x/*") }])
    }

    func testDestinationNotPorts() throws {
        try check([calicoPolicy("x-tcp-not-80", in: "x", """
            order: 10
            selector: all()
            ingress:
            - action: Allow
              protocol: TCP
              destination:
                notPorts: [80]
            """)],
            expect: [.tcp(81): .allAllowed]
                + same([.tcp(80), .udp(81)], Reachability(true) { $0.isolateIngress("x/*") }))
    }

    func testNamedPortInARule() throws {
        try check([calicoPolicy("x-serve-81-tcp", in: "x", """
            order: 10
            selector: all()
            ingress:
            - action: Allow
              protocol: TCP
              destination:
                ports: [serve-81-tcp]
            """)],
            expect: [.tcp(81): .allAllowed, .tcp(80): Reachability(true) { $0.isolateIngress("x/*") }])
    }

    func testProtocolUDP() throws {
        try check([calicoPolicy("a-udp", in: "x", """
            order: 10
            selector: "pod == 'a'"
            ingress:
            - action: Allow
              protocol: UDP
            """)],
            expect: same([.udp(80), .udp(81, .v6)], .allAllowed)
                + [.tcp(80): Reachability(true) { $0.isolateIngress("x/a") }])
    }

    func testICMPEchoRequestDeny() throws {
        // Only ICMP (v4) echo requests to x/a are denied; ICMPv6 is another protocol, and TCP
        // reaches the Allow.
        try check([calicoPolicy("a-no-ping", in: "x", """
            order: 10
            selector: "pod == 'a'"
            ingress:
            - action: Deny
              protocol: ICMP
              icmp:
                type: 8
            - action: Allow
            """)],
            expect: [
                .icmp(): Reachability(true) { $0.isolateIngress("x/a") },
                .icmp(.v6): .allAllowed,
                .tcp(80): .allAllowed,
            ])
        assertKernelRule(inChainContaining: "a-no-ping", "matching icmp type echo-request that drops") { rule, _ in
            rule.matchesICMPType("echo-request", number: 8) && rule.verdicts.contains("drop")
        }
    }

    func testEgressTypeDeny() throws {
        // types [Egress]: x/a's ingress is not selected and stays open.
        try check([calicoPolicy("a-not-to-y", in: "x", """
            order: 10
            selector: "pod == 'a'"
            types: [Egress]
            egress:
            - action: Deny
              destination:
                namespaceSelector: "ns == 'y'"
            - action: Allow
            """)],
            expect: same([.tcp(80), .tcp(80, .v6)], Reachability(true) { $0.expectPeer(from: "x/a", to: "y/*", false) }))
    }
}
