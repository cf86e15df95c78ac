import XCTest

/// networking.k8s.io/v1 NetworkPolicy on the 9-pod conformance lab (see ConformanceTestCase),
/// one scenario per test. Every truth table is written from the Kubernetes documentation
/// (concepts/services-networking/network-policies and the API reference), not from the agent:
///
/// - a pod is isolated for a direction once any policy with that policyType selects it; then
///   only what some selecting policy allows passes (a union); unselected pods are open;
/// - a connection needs the source's egress and the destination's ingress;
/// - `podSelector` in a peer selects pods of the policy's namespace, `namespaceSelector` pods of
///   the selected namespaces, both in one peer the intersection; `{}` selects all; an ipBlock
///   matches addresses (of its own family only);
/// - `policyTypes` absent means Ingress, plus Egress when the policy has egress rules;
/// - Palisade's own addition: a namespace annotated `palisade.dev/default-policy: deny` denies,
///   per direction, what no policy selects.
final class KubernetesConformanceTests: ConformanceTestCase {
    // MARK: Defaults and deny-all

    func testDefaultAllowWithoutPolicies() throws {
        try check([], expect: same([.tcp(80), .udp(81), .tcp(81, .v6), .udp(80, .v6)], .allAllowed))
    }

    func testDenyAllIngressInNamespace() throws {
        try check([networkPolicy("deny-all-ingress", in: "x", """
            podSelector: {}
            policyTypes: [Ingress]
            """)],
            expect: same([.tcp(80), .udp(81), .tcp(80, .v6)], Reachability(true) { $0.isolateIngress("x/*") }))
    }

    func testDenyAllEgressInNamespace() throws {
        try check([networkPolicy("deny-all-egress", in: "x", """
            podSelector: {}
            policyTypes: [Egress]
            """)],
            expect: same([.tcp(80), .udp(80, .v6)], Reachability(true) { $0.isolateEgress("x/*") }))
    }

    func testPolicyTypesAbsentMeansIngress() throws {
        // No policyTypes, no rules: Ingress is inferred, so x/b accepts nothing and sends freely.
        try check([networkPolicy("deny-b", in: "x", """
            podSelector:
              matchLabels:
                pod: b
            """)],
            expect: same([.tcp(80), .udp(81)], Reachability(true) { $0.isolateIngress("x/b") }))
    }

    func testEmptyIngressRuleAllowsAllIngress() throws {
        try check([
            networkPolicy("deny-all-ingress", in: "x", """
                podSelector: {}
                policyTypes: [Ingress]
                """),
            networkPolicy("a-open", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                ingress:
                - {}
                """),
        ], expect: same([.tcp(80), .tcp(81, .v6)], Reachability(true) {
            $0.isolateIngress("x/*")
            $0.expectIngress(to: "x/a", true)
        }))
    }

    func testEmptyEgressRuleAllowsAllEgress() throws {
        try check([
            networkPolicy("deny-all-egress", in: "x", """
                podSelector: {}
                policyTypes: [Egress]
                """),
            networkPolicy("a-out", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                policyTypes: [Egress]
                egress:
                - {}
                """),
        ], expect: same([.tcp(80), .udp(80, .v6)], Reachability(true) {
            $0.isolateEgress("x/*")
            $0.expectEgress(from: "x/a", true)
        }))
    }

    func testPolicyOnlyAffectsPodsOfItsOwnNamespace() throws {
        try check([networkPolicy("deny-a", in: "z", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Ingress]
            """)],
            expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.isolateIngress("z/a") }))
    }

    func testPodSelectorMatchingNoPodChangesNothing() throws {
        try check([networkPolicy("deny-nobody", in: "x", """
            podSelector:
              matchLabels:
                pod: nobody
            policyTypes: [Ingress, Egress]
            """)],
            expect: [.tcp(80): .allAllowed])
    }

    // MARK: Pod selectors

    func testIngressFromPodSelectorMatchLabels() throws {
        // y/b and z/b are `pod: b` too, but a bare podSelector means this namespace only.
        try check([networkPolicy("a-from-b", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - podSelector:
                  matchLabels:
                    pod: b
            """)],
            expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/b"]) }))
    }

    func testPodSelectorMatchExpressionsIn() throws {
        try check([networkPolicy("a-from-b-c", in: "y", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - podSelector:
                  matchExpressions:
                  - {key: pod, operator: In, values: [b, c]}
            """)],
            expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "y/a", onlyFrom: ["y/b", "y/c"]) }])
    }

    func testPodSelectorMatchExpressionsNotIn() throws {
        // Selects z/c (pod NotIn [a, b]); admits pods of z other than b.
        try check([networkPolicy("c-not-from-b", in: "z", """
            podSelector:
              matchExpressions:
              - {key: pod, operator: NotIn, values: [a, b]}
            ingress:
            - from:
              - podSelector:
                  matchExpressions:
                  - {key: pod, operator: NotIn, values: [b]}
            """)],
            expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "z/c", onlyFrom: ["z/a"]) }])
    }

    func testPodSelectorMatchExpressionsExists() throws {
        let labels = ScenarioState(podLabels: ["x/b": ["role": "client"], "y/b": ["role": "client"]])
        try check([networkPolicy("a-from-role", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - podSelector:
                  matchExpressions:
                  - {key: role, operator: Exists}
            """)], labels,
            expect: same([.tcp(80), .udp(81)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/b"]) }))
    }

    func testPodSelectorMatchExpressionsDoesNotExist() throws {
        // Selects x/a and x/c (no role label); they accept only pods of x.
        let labels = ScenarioState(podLabels: ["x/b": ["role": "client"]])
        try check([networkPolicy("roleless-from-x", in: "x", """
            podSelector:
              matchExpressions:
              - {key: role, operator: DoesNotExist}
            ingress:
            - from:
              - podSelector: {}
            """)], labels,
            expect: [.tcp(80): Reachability(true) {
                $0.expectIngress(to: "x/a", onlyFrom: ["x/*"])
                $0.expectIngress(to: "x/c", onlyFrom: ["x/*"])
            }])
    }

    func testEmptyPodSelectorPeerMeansEveryPodOfThePolicysNamespace() throws {
        try check([networkPolicy("a-from-own-namespace", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - podSelector: {}
            """)],
            expect: same([.tcp(80), .tcp(80, .v6)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/*"]) }))
    }

    // MARK: Namespace selectors

    func testNamespaceSelectorMatchLabels() throws {
        try check([networkPolicy("a-from-y", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    ns: y
            """)],
            expect: same([.tcp(80), .tcp(81, .v6)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["y/*"]) }))
    }

    func testNamespaceSelectorMatchExpressionsIn() throws {
        try check([networkPolicy("x-from-y-z", in: "x", """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: ns, operator: In, values: [y, z]}
            """)],
            expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "x/*", onlyFrom: ["y/*", "z/*"]) }])
    }

    func testNamespaceSelectorMatchExpressionsNotInForEgress() throws {
        try check([networkPolicy("a-to-other-namespaces", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Egress]
            egress:
            - to:
              - namespaceSelector:
                  matchExpressions:
                  - {key: ns, operator: NotIn, values: [x]}
            """)],
            expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.expectEgress(from: "x/a", onlyTo: ["y/*", "z/*"]) }))
    }

    func testNamespaceSelectorExistsAndDoesNotExist() throws {
        let labels = ScenarioState(namespaceLabels: ["z": ["env": "prod"]])
        try check([
            networkPolicy("a-from-env", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                ingress:
                - from:
                  - namespaceSelector:
                      matchExpressions:
                      - {key: env, operator: Exists}
                """),
            networkPolicy("b-from-no-env", in: "x", """
                podSelector:
                  matchLabels:
                    pod: b
                ingress:
                - from:
                  - namespaceSelector:
                      matchExpressions:
                      - {key: env, operator: DoesNotExist}
                """),
        ], labels, expect: [.tcp(80): Reachability(true) {
            $0.expectIngress(to: "x/a", onlyFrom: ["z/*"])
            $0.expectIngress(to: "x/b", onlyFrom: ["x/*", "y/*"])
        }])
    }

    func testImpliedNamespaceNameLabel() throws {
        // The namespace files carry only `ns: z`; Kubernetes adds kubernetes.io/metadata.name.
        try check([networkPolicy("y-from-z-by-name", in: "y", """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    kubernetes.io/metadata.name: z
            """)],
            expect: same([.tcp(80), .udp(81, .v6)], Reachability(true) { $0.expectIngress(to: "y/*", onlyFrom: ["z/*"]) }))
    }

    func testEmptyNamespaceSelectorMeansAllNamespaces() throws {
        // `namespaceSelector: {}` admits every pod of every namespace (on TCP 80 here; TCP 81
        // shows that x/a is isolated at all).
        try check([networkPolicy("a-from-everywhere-80", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - namespaceSelector: {}
              ports:
              - {protocol: TCP, port: 80}
            """)],
            expect: [.tcp(80): .allAllowed, .tcp(81): Reachability(true) { $0.isolateIngress("x/a") }])
    }

    func testPodAndNamespaceSelectorInOnePeerIsAnd() throws {
        try check([networkPolicy("a-from-y-b", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    ns: y
                podSelector:
                  matchLabels:
                    pod: b
            """)],
            expect: same([.tcp(80), .tcp(80, .v6)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["y/b"]) }))
    }

    func testPodAndNamespaceSelectorAsTwoPeersIsOr() throws {
        try check([networkPolicy("a-from-y-or-b", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    ns: y
              - podSelector:
                  matchLabels:
                    pod: b
            """)],
            expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["y/*", "x/b"]) }))
    }

    func testAllNamespacesWithPodSelector() throws {
        try check([networkPolicy("a-from-every-c", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - namespaceSelector: {}
                podSelector:
                  matchLabels:
                    pod: c
            """)],
            expect: same([.tcp(80), .tcp(80, .v6)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["*/c"]) }))
    }

    // MARK: ipBlock

    func testIPBlockV4WithExcept() throws {
        // The whole lab /15 but y/b's /32. An IPv4 block says nothing about IPv6: x/a's
        // ingress is isolated, so v6 from anywhere is blocked.
        try check([networkPolicy("a-from-lab-but-yb", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - ipBlock:
                  cidr: 198.18.0.0/15
                  except: [198.18.2.2/32]
            """)],
            expect: [
                .tcp(80): Reachability(true) { $0.expectPeer(from: "y/b", to: "x/a", false) },
                .tcp(80, .v6): Reachability(true) { $0.isolateIngress("x/a") },
            ])
    }

    func testIPBlockV6WithExcept() throws {
        try check([networkPolicy("a-from-v6-but-x", in: "y", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - ipBlock:
                  cidr: 2001:db8::/32
                  except: ["2001:db8:1::/48"]
            """)],
            expect: [
                .tcp(80, .v6): Reachability(true) { $0.expectIngress(to: "y/a", onlyFrom: ["y/*", "z/*"]) },
                .tcp(80): Reachability(true) { $0.isolateIngress("y/a") },
            ])
    }

    func testIPBlockEgressV4() throws {
        // 198.18.0.0/16 holds x and y; z is in 198.19.0.0/16.
        try check([networkPolicy("a-to-18-slash-16", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Egress]
            egress:
            - to:
              - ipBlock:
                  cidr: 198.18.0.0/16
            """)],
            expect: [
                .udp(80): Reachability(true) { $0.expectEgress(from: "x/a", onlyTo: ["x/*", "y/*"]) },
                .tcp(80, .v6): Reachability(true) { $0.isolateEgress("x/a") },
            ])
    }

    func testIPBlocksOverlappingAndAdjacentAreUnited() throws {
        // x/* through the /16 (minus y's /24), y/a and y/b as adjacent /32s inside that hole,
        // z/* through the /25 even where the overlapping /24 excepts z/b. Only y/c is left out.
        try check([networkPolicy("a-from-blocks", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - ipBlock: {cidr: 198.18.0.0/16, except: [198.18.2.0/24]}
              - ipBlock: {cidr: 198.18.2.1/32}
              - ipBlock: {cidr: 198.18.2.2/32}
              - ipBlock: {cidr: 198.19.3.0/25}
              - ipBlock: {cidr: 198.19.3.0/24, except: [198.19.3.2/32]}
            """)],
            expect: [.tcp(80): Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/*", "y/a", "y/b", "z/*"]) }])
    }

    func testIPBlockEgressV6WithExcept() throws {
        try check([networkPolicy("a-to-v6-but-z", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Egress]
            egress:
            - to:
              - ipBlock:
                  cidr: 2001:db8::/32
                  except: ["2001:db8:3::/48"]
            """)],
            expect: [
                .udp(81, .v6): Reachability(true) { $0.expectEgress(from: "x/a", onlyTo: ["x/*", "y/*"]) },
                .tcp(80): Reachability(true) { $0.isolateEgress("x/a") },
            ])
    }

    // MARK: Ports

    func testPortNumberTCP() throws {
        try check([networkPolicy("x-tcp-80", in: "x", """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector: {}
              ports:
              - protocol: TCP
                port: 80
            """)],
            expect: [.tcp(80): .allAllowed]
                + same([.tcp(81), .udp(80)], Reachability(true) { $0.isolateIngress("x/*") }))
    }

    func testPortWithoutProtocolIsTCP() throws {
        try check([networkPolicy("a-port-81", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - ports:
              - port: 81
            """)],
            expect: [.tcp(81): .allAllowed]
                + same([.udp(81), .tcp(80)], Reachability(true) { $0.isolateIngress("x/a") }))
    }

    func testEmptyFromListMatchesAllSources() throws {
        // `from: []` is "empty", like a missing `from`: every source, on the rule's ports.
        try check([networkPolicy("a-from-empty-list", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from: []
              ports:
              - {protocol: TCP, port: 80}
            """)],
            expect: [.tcp(80): .allAllowed, .tcp(81): Reachability(true) { $0.isolateIngress("x/a") }])
    }

    func testEndPortRange() throws {
        try check([networkPolicy("x-tcp-80-81", in: "x", """
            podSelector: {}
            ingress:
            - ports:
              - protocol: TCP
                port: 80
                endPort: 81
            """)],
            expect: same([.tcp(80), .tcp(81)], .allAllowed)
                + [.udp(80): Reachability(true) { $0.isolateIngress("x/*") }])
    }

    func testNamedPort() throws {
        try check([networkPolicy("x-serve-81-tcp", in: "x", """
            podSelector: {}
            ingress:
            - ports:
              - port: serve-81-tcp
            """)],
            expect: [.tcp(81, .v6): .allAllowed]
                + same([.tcp(80), .udp(81)], Reachability(true) { $0.isolateIngress("x/*") }))
    }

    func testNamedPortResolvesPerDestinationPod() throws {
        // "web" is 80 on x/a, 81 on x/b, and x/c has no port of that name.
        let ports = ScenarioState(podPorts: ["x/a": [NamedPort("web", 80)], "x/b": [NamedPort("web", 81)]])
        try check([networkPolicy("x-web", in: "x", """
            podSelector: {}
            ingress:
            - ports:
              - protocol: TCP
                port: web
            """)], ports,
            expect: [
                .tcp(80): Reachability(true) { $0.isolateIngress("x/*"); $0.expectIngress(to: "x/a", true) },
                .tcp(81): Reachability(true) { $0.isolateIngress("x/*"); $0.expectIngress(to: "x/b", true) },
            ])
    }

    func testNamedPortInEgressResolvesOnThePeer() throws {
        // Only z/b names a port "alt" (81): x/a may reach z/b on 81 and nothing else.
        let ports = ScenarioState(podPorts: ["z/b": [NamedPort("alt", 81)]])
        try check([networkPolicy("a-to-alt", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Egress]
            egress:
            - ports:
              - port: alt
            """)], ports,
            expect: [
                .tcp(81): Reachability(true) { $0.expectEgress(from: "x/a", onlyTo: ["z/b"]) },
                .tcp(80): Reachability(true) { $0.isolateEgress("x/a") },
            ])
    }

    func testProtocolUDPOnly() throws {
        try check([networkPolicy("a-udp-80", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - ports:
              - protocol: UDP
                port: 80
            """)],
            expect: [.udp(80): .allAllowed]
                + same([.tcp(80), .udp(81)], Reachability(true) { $0.isolateIngress("x/a") }))
    }

    func testNamedUDPPortInEgress() throws {
        try check([networkPolicy("a-out-serve-80-udp", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Egress]
            egress:
            - ports:
              - protocol: UDP
                port: serve-80-udp
            """)],
            expect: [.udp(80): .allAllowed]
                + same([.tcp(80), .udp(81)], Reachability(true) { $0.isolateEgress("x/a") }))
    }

    func testSeveralRulesEachWithItsOwnPeersAndPorts() throws {
        try check([networkPolicy("a-two-rules", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - namespaceSelector: {matchLabels: {ns: y}}
              ports:
              - {protocol: TCP, port: 80}
            - from:
              - namespaceSelector: {matchLabels: {ns: z}}
              ports:
              - {protocol: UDP, port: 81}
            """)],
            expect: [
                .tcp(80): Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["y/*"]) },
                .udp(81): Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["z/*"]) },
                .tcp(81): Reachability(true) { $0.isolateIngress("x/a") },
            ])
    }

    func testEgressToNamespaceOnOnePort() throws {
        try check([networkPolicy("x-to-z-81", in: "x", """
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - to:
              - namespaceSelector:
                  matchLabels:
                    ns: z
              ports:
              - {protocol: TCP, port: 81}
            """)],
            expect: [
                .tcp(81): Reachability(true) { $0.expectEgress(from: "x/*", onlyTo: ["z/*"]) },
                .tcp(80): Reachability(true) { $0.isolateEgress("x/*") },
            ])
    }

    func testSCTPPortIsProgrammedButAdmitsNoTCPOrUDP() throws {
        // SCTP cannot be probed (no SCTP sockets here): the kernel's table must hold an SCTP
        // rule for port 80 in the policy's chain; TCP and UDP 80 to x/a stay closed.
        try check([networkPolicy("a-sctp-80", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - ports:
              - protocol: SCTP
                port: 80
            """)],
            expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.isolateIngress("x/a") }))
        assertKernelRule(inChainContaining: "a-sctp-80", "matching meta l4proto sctp and dport 80") { rule, ruleset in
            rule.matchesProtocol("sctp", number: 132) && rule.matchesDestinationPort(80, ruleset: ruleset)
        }
    }

    // MARK: policyTypes

    func testPolicyTypesEgressOnlyIgnoresIngressRules() throws {
        // With policyTypes [Egress] the ingress section does not isolate x/a for ingress.
        try check([networkPolicy("a-egress-only", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Egress]
            ingress:
            - from:
              - podSelector:
                  matchLabels:
                    pod: b
            egress:
            - to:
              - namespaceSelector:
                  matchLabels:
                    ns: y
            """)],
            expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.expectEgress(from: "x/a", onlyTo: ["y/*"]) }))
    }

    func testPolicyTypesIngressAndEgressWithoutRulesIsolatesBothWays() throws {
        try check([networkPolicy("a-isolated", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Ingress, Egress]
            """)],
            expect: same([.tcp(80), .tcp(81, .v6)], Reachability(true) { $0.isolate("x/a") }))
    }

    func testPolicyTypesInferredFromEgressRulesIncludeIngress() throws {
        // No policyTypes but egress rules: Kubernetes infers [Ingress, Egress], so x/a's
        // ingress is isolated with no ingress rule allowing anything.
        try check([networkPolicy("a-egress-rules", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            egress:
            - to:
              - namespaceSelector:
                  matchLabels:
                    ns: y
            """)],
            expect: same([.tcp(80), .udp(81)], Reachability(true) {
                $0.isolateIngress("x/a")
                $0.expectEgress(from: "x/a", onlyTo: ["y/*"])
            }))
    }

    // MARK: Combining policies and directions

    func testSeveralPoliciesSelectingOnePodAreAUnion() throws {
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
            networkPolicy("a-from-z", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                ingress:
                - from:
                  - namespaceSelector:
                      matchLabels:
                        ns: z
                """),
        ], expect: same([.tcp(80), .udp(80)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["x/b", "z/*"]) }))
    }

    func testEgressAllowedButDestinationDeniesIngress() throws {
        // x/a may send to y; y/b accepts nothing. Both sides must allow a connection.
        let egress = Reachability(true) { $0.expectEgress(from: "x/a", onlyTo: ["y/*"]) }
        let ingress = Reachability(true) { $0.isolateIngress("y/b") }
        try check([
            networkPolicy("a-to-y", in: "x", """
                podSelector:
                  matchLabels:
                    pod: a
                policyTypes: [Egress]
                egress:
                - to:
                  - namespaceSelector:
                      matchLabels:
                        ns: y
                """),
            networkPolicy("b-closed", in: "y", """
                podSelector:
                  matchLabels:
                    pod: b
                policyTypes: [Ingress]
                """),
        ], expect: same([.tcp(80), .tcp(80, .v6)], egress && ingress))
    }

    func testIngressAllowedButSourceDeniesEgress() throws {
        // z/* accepts everyone from x; x/c may send nowhere.
        try check([
            networkPolicy("z-from-x", in: "z", """
                podSelector: {}
                ingress:
                - from:
                  - namespaceSelector:
                      matchLabels:
                        ns: x
                """),
            networkPolicy("c-mute", in: "x", """
                podSelector:
                  matchLabels:
                    pod: c
                policyTypes: [Egress]
                """),
        ], expect: [.tcp(80): Reachability(true) {
            $0.expectIngress(to: "z/*", onlyFrom: ["x/*"])
            $0.isolateEgress("x/c")
        }])
    }

    func testRemovingPoliciesRestoresAccess() throws {
        try check([networkPolicy("z-closed", in: "z", """
            podSelector: {}
            policyTypes: [Ingress, Egress]
            """)],
            expect: [.tcp(80): Reachability(true) { $0.isolate("z/*") }])
        try apply([])
        expectMatrices(same([.tcp(80), .udp(80)], .allAllowed), step: "after removing the policy")
    }

    func testRelabellingPodsAndNamespacesMovesThemThroughSelectors() throws {
        // x/a admits pods labelled role=client from namespaces labelled team=blue.
        let policy = networkPolicy("a-from-blue-clients", in: "x", """
            podSelector:
              matchLabels:
                pod: a
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    team: blue
                podSelector:
                  matchLabels:
                    role: client
            """)
        let before = ScenarioState(podLabels: ["y/b": ["role": "client"], "z/b": ["role": "client"]],
                                   namespaceLabels: ["y": ["team": "blue"]])
        try check([policy], before,
                  expect: same([.tcp(80), .tcp(80, .v6)], Reachability(true) { $0.expectIngress(to: "x/a", onlyFrom: ["y/b"]) }))

        // y/b loses its role, y/c and z/c gain it, and z turns blue.
        let after = ScenarioState(podLabels: ["y/c": ["role": "client"], "z/b": ["role": "client"], "z/c": ["role": "client"]],
                                  namespaceLabels: ["y": ["team": "blue"], "z": ["team": "blue"]])
        try apply([policy], after)
        expectMatrices(same([.tcp(80), .tcp(80, .v6)], Reachability(true) {
            $0.expectIngress(to: "x/a", onlyFrom: ["y/c", "z/b", "z/c"])
        }), step: "after relabelling")
    }

    // MARK: Palisade's namespace default

    func testNamespaceDefaultDenyAnnotation() throws {
        try check([], ScenarioState(namespaceDefaults: ["y": "deny"]),
                  expect: same([.tcp(80), .udp(80, .v6)], Reachability(true) { $0.isolate("y/*") }))
    }

    func testNamespaceDefaultDenyWithAnIngressWhitelist() throws {
        // y/a is selected for ingress (from x); its egress, selected by no policy, keeps
        // the namespace's default (deny), as do y/b and y/c both ways.
        try check([networkPolicy("a-from-x", in: "y", """
            podSelector:
              matchLabels:
                pod: a
            policyTypes: [Ingress]
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    ns: x
            """)], ScenarioState(namespaceDefaults: ["y": "deny"]),
            expect: same([.tcp(80), .udp(81)], Reachability(true) {
                $0.isolate("y/*")
                $0.expectPeer(from: "x/*", to: "y/a", true)
            }))
    }

    // MARK: IPv6

    func testIPv6FollowsTheSameSelectors() throws {
        try check([networkPolicy("z-from-x", in: "z", """
            podSelector: {}
            policyTypes: [Ingress]
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    ns: x
                podSelector:
                  matchExpressions:
                  - {key: pod, operator: In, values: [a, c]}
            """)],
            expect: same([.tcp(80, .v6), .udp(81, .v6)],
                         Reachability(true) { $0.expectIngress(to: "z/*", onlyFrom: ["x/a", "x/c"]) }))
    }
}
