import XCTest
import Yams
@testable import PolicyModel

/// Files that must load, and what they load to.
final class GoodDocumentTests: XCTestCase {
    func testEmptyFilesAndEmptyDocumentsAreFine() throws {
        XCTAssertEqual(try decode(""), [])
        XCTAssertEqual(try decode("# nothing here yet\n"), [])
        XCTAssertEqual(try decode("---\n---\n# comment\n---\n"), [])
    }

    /// Plain scalars that look like timestamps or `=` are text; yes/no, numbers, null and `<<` keep
    /// the meanings the decoder reads.
    func testTimestampsAndEqualsSignsAreTextAndTypedScalarsStayTyped() throws {
        let objects = try decode("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              labels:
                released: 2024-01-02
                enabled: yes
                count: 3
            """)
        XCTAssertEqual(objects, [
            .namespace(Namespace(name: "shop", labels: ["released": "2024-01-02", "enabled": "yes", "count": "3"],
                                 location: SourceLocation(file: "state/test.yaml", line: 1))),
        ])
        for (text, tag) in [("2024-01-02", Tag.Name.str), ("2024-01-02T03:04:05Z", .str), ("=", .str), ("yes", .bool), ("3", .int), ("2.5", .float),
                            ("~", .null), ("<<", .merge)] {
            XCTAssertEqual(DocumentDecoder.resolver.resolveTag(of: Node.scalar(Node.Scalar(text))), tag, text)
        }
    }

    func testMultiDocumentFileKeepsOrderAndLines() throws {
        let objects = try decode("""
            # namespaces first
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: edge
              labels: {zone: dmz}
            """)
        XCTAssertEqual(objects, [
            .namespace(Namespace(name: "shop", location: SourceLocation(file: "state/test.yaml", line: 2))),
            .namespace(Namespace(name: "edge", labels: ["zone": "dmz"],
                                 location: SourceLocation(file: "state/test.yaml", line: 7))),
        ])
    }

    func testListItemsAreObjectsAndOtherKindsAreSkipped() throws {
        let objects = try decode("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: web}
            - apiVersion: apps/v1
              kind: Deployment
              metadata: {name: web}
            - apiVersion: v1
              kind: Namespace
              metadata: {name: shop}
            - apiVersion: projectcalico.org/v3
              kind: IPPool
              metadata: {name: calico}
            """)
        XCTAssertEqual(objects, [
            .namespace(Namespace(name: "shop", location: SourceLocation(file: "state/test.yaml", line: 10))),
        ])
    }

    func testJSONFile() throws {
        let objects = try decode("""
            {
              "apiVersion": "networking.k8s.io/v1",
              "kind": "NetworkPolicy",
              "metadata": {"name": "db", "namespace": "shop"},
              "spec": {
                "podSelector": {"matchLabels": {"app": "db", "replica": 2}},
                "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 5432}, {"port": "pg", "protocol": "UDP"}]}]
              }
            }
            """, path: "state/db.json")
        XCTAssertEqual(objects, [.networkPolicy(NetworkPolicy(
            namespace: "shop", name: "db",
            podSelector: LabelSelector(matchLabels: ["app": "db", "replica": "2"]),
            policyTypes: [.ingress],
            ingress: [PolicyRule(peers: [.selector(pods: .everything, namespaces: nil)],
                                 ports: [PolicyPort(proto: .tcp, port: .number(5432)),
                                         PolicyPort(proto: .udp, port: .named("pg"))])],
            location: SourceLocation(file: "state/db.json", line: 1)))])
    }

    func testEndpoint() throws {
        let objects = try decode("""
            apiVersion: palisade.dev/v1
            kind: Endpoint
            metadata:
              name: legacy-db
              namespace: shop
              labels: {app: db}
            spec:
              addresses: [198.18.9.1, "2001:db8::9:1"]
              interface: vm-db0
              nodeName: node-1
              ports:
              - {name: pg, containerPort: 5432}
              - {name: dns, containerPort: 53, protocol: UDP}
              - {containerPort: 9100}
            """)
        XCTAssertEqual(objects, [.endpoint(Endpoint(
            kind: .endpoint, namespace: "shop", name: "legacy-db", labels: ["app": "db"],
            addresses: [ip("198.18.9.1"), ip("2001:db8::9:1")], interface: "vm-db0", nodeName: "node-1",
            namedPorts: [NamedPort(name: "pg", port: 5432, proto: .tcp), NamedPort(name: "dns", port: 53, proto: .udp)],
            location: SourceLocation(file: "state/test.yaml", line: 1)))])
    }

    func testPodInterfaceAnnotationAndDefaultNamespace() throws {
        let objects = try decode("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: client
              annotations:
                palisade.dev/interface: cali1234abcd
            status:
              podIP: 198.18.0.5
            """)
        XCTAssertEqual(objects.compactMap(\.endpointValue).map(\.namespace), ["default"])
        XCTAssertEqual(objects.compactMap(\.endpointValue).map(\.interface), ["cali1234abcd"])
        XCTAssertEqual(objects.compactMap(\.endpointValue).map(\.addresses), [[ip("198.18.0.5")]])
    }

    func testNamespaceDefaultPolicyAnnotation() throws {
        let objects = try decode("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: locked
              annotations: {palisade.dev/default-policy: deny}
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: open
              annotations: {palisade.dev/default-policy: allow}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: unset}
            """)
        XCTAssertEqual(objects.compactMap(\.namespaceValue).map(\.defaultPolicy), [.deny, .allow, nil])
    }

    func testPolicyTypesAreInferredAsKubernetesDoes() throws {
        let ingressOnly = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: a}
            spec:
              podSelector: {}
            """)
        XCTAssertEqual(ingressOnly.policyTypes, [.ingress])
        XCTAssertEqual(ingressOnly.ingress, [])

        let both = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: b}
            spec:
              podSelector: {}
              egress:
              - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
            """)
        XCTAssertEqual(both.policyTypes, [.ingress, .egress])

        // SetDefaults_NetworkPolicy adds Egress only for len(spec.egress) != 0.
        let emptyEgress = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: c}
            spec:
              podSelector: {}
              egress: []
            """)
        XCTAssertEqual(emptyEgress.policyTypes, [.ingress])

        let explicit = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: d}
            spec:
              podSelector: {}
              policyTypes: [Egress]
            """)
        XCTAssertEqual(explicit.policyTypes, [.egress])
    }

    func testEmptyRuleAdmitsEveryPeerOnEveryPort() throws {
        let policy = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: allow-all, namespace: shop}
            spec:
              podSelector: {matchLabels: {app: web}}
              ingress:
              - {}
              egress:
              - to: []
                ports: []
            """)
        XCTAssertEqual(policy.ingress, [PolicyRule()])
        XCTAssertEqual(policy.egress, [PolicyRule()])
        XCTAssertEqual(policy.policyTypes, [.ingress, .egress])
    }

    func testSelectorsPeersAndPorts() throws {
        let policy = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: mixed, namespace: shop}
            spec:
              podSelector:
                matchExpressions:
                - {key: tier, operator: In, values: [frontend, "1", true]}
                - {key: canary, operator: DoesNotExist}
              egress:
              - to:
                - namespaceSelector: {matchLabels: {team: ops}}
                - ipBlock: {cidr: "2001:db8::/32", except: ["2001:db8:ff::/48"]}
                - ipBlock: {cidr: 10.1.2.3/16}
                ports:
                - {protocol: SCTP}
                - {port: 53, protocol: UDP}
            """)
        XCTAssertEqual(policy.podSelector, LabelSelector(matchExpressions: [
            LabelSelectorRequirement(key: "tier", op: .in, values: ["frontend", "1", "true"]),
            LabelSelectorRequirement(key: "canary", op: .doesNotExist),
        ]))
        XCTAssertEqual(policy.egress, [PolicyRule(
            peers: [.selector(pods: nil, namespaces: LabelSelector(matchLabels: ["team": "ops"])),
                    .ipBlock(cidr: cidr("2001:db8::/32"), except: [cidr("2001:db8:ff::/48")]),
                    // Host bits are cleared, as Kubernetes accepts and dataplanes treat them.
                    .ipBlock(cidr: cidr("10.1.0.0/16"), except: [])],
            ports: [PolicyPort(proto: .sctp), PolicyPort(proto: .udp, port: .number(53))])])
    }

    func testUnknownFieldsNullsAndMergeKeysAreTolerated() throws {
        let objects = try decode("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: web-1
              namespace: shop
              labels:
                <<: {app: ignored, tier: frontend}
                app: web
              somethingNew: {x: 1}
            spec:
              containers: null
              futureField: [1, 2]
            status:
              phase: Running
              podIPs:
              - ip: 198.18.0.9
              - ip: 198.18.0.9
            """)
        let endpoint = try XCTUnwrap(objects.first?.endpointValue)
        XCTAssertEqual(objects.count, 1)
        XCTAssertEqual(endpoint.labels, ["app": "web", "tier": "frontend"])
        XCTAssertEqual(endpoint.addresses, [ip("198.18.0.9")])
    }

    /// Only the objects inside a NetworkPolicy's spec are strict; around them, what kubectl or the
    /// API server adds (metadata fields, annotations, status, new top-level fields) is ignored.
    func testUnknownFieldsOutsideTheNetworkPolicySpecAreTolerated() throws {
        let policy = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: web
              namespace: shop
              generation: 3
              managedFields: [{manager: kubectl, operation: Update}]
              annotations: {example.com/owner: storefront}
            spec:
              podSelector:
                matchLabels: {app: web, matchLabel: is-a-label-here}
              ingress:
              - from: [{podSelector: {}}]
            status: {conditions: []}
            somethingNew: true
            """)
        XCTAssertEqual(policy.podSelector, LabelSelector(matchLabels: ["app": "web", "matchLabel": "is-a-label-here"]))
        XCTAssertEqual(policy.ingress, [PolicyRule(peers: [.selector(pods: .everything, namespaces: nil)])])
    }

    func testUnknownKindsAreSkippedWhateverTheirAPIVersion() throws {
        let objects = try decode("""
            apiVersion: extensions/v1beta1
            kind: Ingress
            metadata: {name: web}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: web}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web}
            ---
            apiVersion: policy/v1beta1
            kind: PodSecurityPolicy
            metadata: {name: web}
            """)
        XCTAssertEqual(objects, [])
    }
}
