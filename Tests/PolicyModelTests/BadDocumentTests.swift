import XCTest
@testable import PolicyModel

/// Files that must be rejected, each with the exact `path:line: message` an operator would see.
final class BadDocumentTests: XCTestCase {
    /// A NetworkPolicy whose spec is `spec` (indented by two), starting at line 5.
    private func policy(_ spec: String) -> String {
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: web, namespace: shop}
        spec:

        """ + spec.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }

    // MARK: Documents

    func testYAMLSyntaxError() {
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
             labels: {}
            """, "state/test.yaml:5: invalid YAML: did not find expected key (while parsing a block mapping at line 1)")
    }

    func testUnclosedFlowSequence() {
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: shop, labels: [a, b}
            """,
            "state/test.yaml:3: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 3)")
    }

    func testYAMLReaderAndScannerErrorsKeepTheirLine() {
        assertRejected("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\u{7}b\n",
                       "state/test.yaml:4: invalid YAML: control characters are not allowed")
        assertRejected("apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: a\n",
                       "state/test.yaml:4: invalid YAML: found character that cannot start any token (while scanning "
                       + "for the next token at line 4); YAML does not allow tabs for indentation")
        assertRejected("apiVersion: v1\nkind: Namespace\nmetadata: *meta\n",
                       "state/test.yaml:3: invalid YAML: found undefined alias")
        // JSON missing its last brace: the parser notices at the end of the text.
        assertRejected("{\"apiVersion\": \"v1\", \"kind\": \"Namespace\",\n \"metadata\": {\"name\": \"a\"}\n",
                       "state/test.json:3: invalid JSON: did not find expected ',' or '}' (while parsing a flow "
                       + "mapping at line 1)", path: "state/test.json")
    }

    func testWindowsLineEndingsCountLinesOnce() {
        assertRejected("apiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: A\r\n",
                       "state/test.yaml:4: metadata.name \"A\" is not a valid name: must consist of lowercase "
                       + "letters, digits and '-', and start and end with a letter or digit")
    }

    func testDuplicateKey() {
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              name: edge
            """, "state/test.yaml:4: invalid YAML: key \"name\" given more than once in one mapping")
    }

    func testMissingKind() {
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: a}
            ---
            apiVersion: v1
            metadata:
              name: b
            """, "state/test.yaml:5: kind is required")
    }

    func testMissingKindInAListItem() {
        assertRejected("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Namespace
              metadata: {name: a}
            - apiVersion: v1
              metadata: {name: b}
            """, "state/test.yaml:7: kind is required")
    }

    func testAliasBombsAreRefused() {
        // Each level merges the one before twice: 2^20 keys from 20 lines.
        var text = "apiVersion: v1\nkind: Namespace\nx0: &x0 {a: \"1\", b: \"2\"}\n"
        for level in 1...20 { text += "x\(level): &x\(level) {<<: [*x\(level - 1), *x\(level - 1)]}\n" }
        text += "metadata:\n  name: shop\n  labels: {<<: *x20}\n"
        assertRejected(text, "state/test.yaml:26: metadata.labels merges more than 10000 keys through `<<`; write the "
                       + "mapping out")

        assertRejected("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: List
              items: []
            """, "state/test.yaml:4: items[0] is a List; a List may not contain another List")
    }

    func testDocumentThatIsNotAMapping() {
        assertRejected("- apiVersion: v1\n  kind: Namespace\n",
                       "state/test.yaml:1: a document must be a mapping with apiVersion and kind, not a list")
        assertRejected("just some text\n",
                       "state/test.yaml:1: a document must be a mapping with apiVersion and kind, not \"just some text\"")
        assertRejected("apiVersion: v1\nkind: List\nitems:\n- 42\n",
                       "state/test.yaml:4: items[0] must be a mapping with apiVersion and kind, not \"42\"")
    }

    func testMissingName() {
        assertRejected("apiVersion: v1\nkind: Namespace\n", "state/test.yaml:1: metadata.name is required")
        assertRejected("apiVersion: v1\nkind: Pod\nmetadata:\n  namespace: shop\n",
                       "state/test.yaml:3: metadata.name is required")
    }

    // MARK: Names and labels

    func testBadNames() {
        assertRejected("apiVersion: v1\nkind: Namespace\nmetadata: {name: Shop}\n",
                       "state/test.yaml:3: metadata.name \"Shop\" is not a valid name: must consist of lowercase "
                       + "letters, digits and '-', and start and end with a letter or digit")
        assertRejected("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n",
                       "state/test.yaml:3: metadata.name \"a.b\" is not a valid name: must consist of lowercase "
                       + "letters, digits and '-', and start and end with a letter or digit")
        assertRejected("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web_1\n",
                       "state/test.yaml:4: metadata.name \"web_1\" is not a valid name: must consist of lowercase "
                       + "letters, digits, '-' and '.', and each dot-separated part must start and end with a letter "
                       + "or digit")
        assertRejected("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: -shop\n",
                       "state/test.yaml:5: metadata.namespace \"-shop\" is not a valid namespace name: must consist "
                       + "of lowercase letters, digits and '-', and start and end with a letter or digit")
    }

    func testBadLabels() {
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              labels:
                team: store front
            """, "state/test.yaml:6: metadata.labels[team] \"store front\" is not a valid label value: must consist "
                + "of letters, digits, '-', '_' and '.', and start and end with a letter or digit")
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              labels:
                example.com/: x
            """, "state/test.yaml:6: metadata.labels key \"example.com/\" is not a valid label key: the name must "
                + "not be empty")
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              labels:
                team: [a]
            """, "state/test.yaml:6: metadata.labels[team] must be a string, not a list")
    }

    // MARK: Annotations

    func testBadDefaultPolicy() {
        assertRejected("""
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
              annotations:
                palisade.dev/default-policy: block
            """, "state/test.yaml:6: metadata.annotations[palisade.dev/default-policy] \"block\" is not one of deny, allow")
    }

    func testBadInterfaceAnnotation() {
        assertRejected("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: web
              annotations:
                palisade.dev/interface: eth0/1
            """, "state/test.yaml:6: metadata.annotations[palisade.dev/interface] \"eth0/1\" is not a valid "
                + "interface name: must not contain '/'")
        assertRejected("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: web
              annotations: {palisade.dev/interface: "veth-with-a-long-name"}
            """, "state/test.yaml:5: metadata.annotations[palisade.dev/interface] \"veth-with-a-long-name\" is not "
                + "a valid interface name: must be at most 15 bytes")
        assertRejected("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: web
              annotations: {palisade.dev/interface: "veth 1"}
            """, "state/test.yaml:5: metadata.annotations[palisade.dev/interface] \"veth 1\" is not "
                + "a valid interface name: must not contain whitespace")
    }

    // MARK: Workloads

    func testBadPodFields() {
        assertRejected("""
            apiVersion: v1
            kind: Pod
            metadata: {name: web}
            status:
              podIPs:
              - ip: 198.18.0.1
              - ip: 198.18.0.256
            """, "state/test.yaml:7: status.podIPs[1].ip \"198.18.0.256\" is not a valid IP address")
        assertRejected("""
            apiVersion: v1
            kind: Pod
            metadata: {name: web}
            spec:
              hostNetwork: maybe
            """, "state/test.yaml:5: spec.hostNetwork must be true or false, not \"maybe\"")
        assertRejected("""
            apiVersion: v1
            kind: Pod
            metadata: {name: web}
            spec:
              containers:
              - name: a
                ports: [{name: http, containerPort: 80}]
              - name: b
                ports:
                - {name: http, containerPort: 8080}
            """, "state/test.yaml:10: spec.containers[1].ports[0].name \"http\" is already the name of "
                + "spec.containers[0].ports[0]")
        assertRejected("""
            apiVersion: v1
            kind: Pod
            metadata: {name: web}
            spec:
              containers:
              - name: a
                ports: [{name: http, containerPort: 0}]
            """, "state/test.yaml:7: spec.containers[0].ports[0].containerPort 0 is not between 1 and 65535")
    }

    func testBadEndpoint() {
        assertRejected("""
            apiVersion: palisade.dev/v1
            kind: Endpoint
            metadata: {name: vm}
            spec:
              addresses: [198.18.0.1]
            """, "state/test.yaml:4: spec.interface is required")
        assertRejected("""
            apiVersion: palisade.dev/v1
            kind: Endpoint
            metadata: {name: vm}
            spec:
              interface: vm0
              addresses: []
            """, "state/test.yaml:6: spec.addresses must list at least one address")
        assertRejected("""
            apiVersion: palisade.dev/v1
            kind: Endpoint
            metadata: {name: vm}
            spec:
              interface: vm0
              addresses: [fe80::1%eth0]
            """, "state/test.yaml:6: spec.addresses[0] \"fe80::1%eth0\" is not a valid IP address")
    }

    // MARK: NetworkPolicy

    func testMissingPodSelector() {
        assertRejected(policy("ingress: []"),
                       "state/test.yaml:4: spec.podSelector is required (write podSelector: {} to select every pod "
                       + "in the namespace)")
    }

    func testUnknownOperator() {
        assertRejected("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: web
              namespace: shop
            spec:
              podSelector:
                matchExpressions:
                - key: app
                  operator: Equals
                  values: [web]
            """, "state/policies/web.yaml:10: spec.podSelector.matchExpressions[0].operator \"Equals\" is not one of "
                + "In, NotIn, Exists, DoesNotExist", path: "state/policies/web.yaml")
    }

    func testInWithoutValues() {
        assertRejected(policy("""
            podSelector:
              matchExpressions:
              - key: app
                operator: In
            """), "state/test.yaml:8: spec.podSelector.matchExpressions[0].values must not be empty when operator is In")
        assertRejected(policy("""
            podSelector:
              matchExpressions:
              - {key: app, operator: NotIn, values: []}
            """), "state/test.yaml:7: spec.podSelector.matchExpressions[0].values must not be empty when operator "
                + "is NotIn")
    }

    func testExistsWithValues() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - key: team
                    operator: Exists
                    values: [ops]
            """), "state/test.yaml:12: spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values must be "
                + "empty when operator is Exists")
    }

    func testBadCIDR() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - podSelector: {}
              - ipBlock:
                  cidr: 10.0.0.0/33
            """), "state/test.yaml:10: spec.ingress[0].from[1].ipBlock.cidr \"10.0.0.0/33\" is not a valid CIDR")
        assertRejected(policy("""
            podSelector: {}
            egress:
            - to:
              - ipBlock: {cidr: 10.0.0.1}
            """), "state/test.yaml:8: spec.egress[0].to[0].ipBlock.cidr \"10.0.0.1\" is not a valid CIDR (write "
                + "10.0.0.1/32 for one address)")
    }

    func testExceptOutsideCIDR() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - ipBlock:
                  cidr: 10.0.0.0/16
                  except:
                  - 10.0.128.0/17
                  - 10.1.0.0/24
            """), "state/test.yaml:12: spec.ingress[0].from[0].ipBlock.except[1] \"10.1.0.0/24\" is not strictly "
                + "inside cidr \"10.0.0.0/16\"")
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.0/16]}
            """), "state/test.yaml:8: spec.ingress[0].from[0].ipBlock.except[0] \"10.0.0.0/16\" is not strictly "
                + "inside cidr \"10.0.0.0/16\"")
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - ipBlock: {cidr: 10.0.0.0/16, except: ["2001:db8::/64"]}
            """), "state/test.yaml:8: spec.ingress[0].from[0].ipBlock.except[0] \"2001:db8::/64\" is not the same "
                + "address family as cidr \"10.0.0.0/16\"")
    }

    func testIPBlockCombinedWithSelector() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - ipBlock: {cidr: 10.0.0.0/8}
                podSelector: {matchLabels: {app: web}}
            """), "state/test.yaml:8: spec.ingress[0].from[0] has both ipBlock and podSelector; an ipBlock must be a "
                + "peer of its own")
    }

    func testPeerWithNothing() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - {}
            """), "state/test.yaml:8: spec.ingress[0].from[0] must have podSelector, namespaceSelector or ipBlock")
    }

    func testBadPorts() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - ports:
              - port: 70000
            """), "state/test.yaml:8: spec.ingress[0].ports[0].port 70000 is not between 1 and 65535")
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - ports:
              - port: HTTP
            """), "state/test.yaml:8: spec.ingress[0].ports[0].port \"HTTP\" is not a valid port name: must consist "
                + "of lowercase letters, digits and '-'")
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - ports:
              - port: "80"
            """), "state/test.yaml:8: spec.ingress[0].ports[0].port \"80\" is not a valid port name: must contain at "
                + "least one letter (write a port number without quotes)")
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - ports:
              - port: 99999999999999999999999
            """), "state/test.yaml:8: spec.ingress[0].ports[0].port 99999999999999999999999 is out of range")
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - ports:
              - {port: 80, protocol: tcp}
            """), "state/test.yaml:8: spec.ingress[0].ports[0].protocol \"tcp\" is not one of TCP, UDP, SCTP")
    }

    func testEndPortBelowPort() {
        assertRejected(policy("""
            podSelector: {}
            egress:
            - ports:
              - port: 9000
                endPort: 8000
            """), "state/test.yaml:9: spec.egress[0].ports[0].endPort 8000 is less than port 9000")
    }

    func testEndPortWithNamedPortOrNoPort() {
        assertRejected(policy("""
            podSelector: {}
            egress:
            - ports:
              - port: http
                endPort: 8080
            """), "state/test.yaml:9: spec.egress[0].ports[0].endPort cannot be used with the named port \"http\"; a "
                + "range needs a numeric port")
        assertRejected(policy("""
            podSelector: {}
            egress:
            - ports:
              - endPort: 8080
            """), "state/test.yaml:8: spec.egress[0].ports[0].endPort needs a numeric port to start the range")
    }

    func testBadPolicyType() {
        assertRejected(policy("""
            podSelector: {}
            policyTypes: [Ingress, egress]
            """), "state/test.yaml:6: spec.policyTypes[1] \"egress\" is not one of Ingress, Egress")
    }

    func testWrongShapes() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
              from: []
            """), "state/test.yaml:6: spec.ingress must be a list, not a mapping")
        assertRejected(policy("podSelector: app=web"),
                       "state/test.yaml:5: spec.podSelector must be a mapping, not \"app=web\"")
    }

    // MARK: Unknown fields inside a NetworkPolicy's spec

    // A misspelt field reads as an absent one, and an absent `from`, selector or `except` widens the
    // rule: each of these would allow more than was written, so each is an error naming the key.

    func testMisspeltFromInAnIngressRule() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - form: [{podSelector: {matchLabels: {app: web}}}]
            """),
            "state/test.yaml:7: spec.ingress[0].form is not a field of a NetworkPolicy ingress rule (valid: from, ports)")
    }

    func testIngressPeersKeyInAnEgressRule() {
        assertRejected(policy("""
            podSelector: {}
            egress:
            - ports: [{port: 53}]
              from: [{ipBlock: {cidr: 10.0.0.0/8}}]
            """),
            "state/test.yaml:8: spec.egress[0].from is not a field of a NetworkPolicy egress rule (valid: to, ports)")
    }

    func testMisspeltMatchLabelsInThePodSelector() {
        assertRejected(policy("podSelector: {matchLabel: {app: web}}"),
                       "state/test.yaml:5: spec.podSelector.matchLabel is not a field of a label selector "
                       + "(valid: matchLabels, matchExpressions)")
    }

    func testMisspeltMatchLabelsInAPeerSelector() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {team: edge}
                podSelector:
                  matchLabel: {app: gateway}
            """),
            "state/test.yaml:11: spec.ingress[0].from[0].podSelector.matchLabel is not a field of a label selector "
            + "(valid: matchLabels, matchExpressions)")
    }

    func testMisspeltExcept() {
        assertRejected(policy("""
            podSelector: {}
            egress:
            - to:
              - ipBlock:
                  cidr: 0.0.0.0/0
                  excpt: [10.0.0.0/8]
            """),
            "state/test.yaml:10: spec.egress[0].to[0].ipBlock.excpt is not a field of an ipBlock (valid: cidr, except)")
    }

    func testMisspeltSpecField() {
        assertRejected(policy("""
            podSelector: {}
            ingres:
            - from: [{podSelector: {}}]
            """),
            "state/test.yaml:6: spec.ingres is not a field of a NetworkPolicy spec "
            + "(valid: podSelector, policyTypes, ingress, egress)")
        // Reported ahead of the missing podSelector it stands for.
        assertRejected(policy("podSelecter: {}"),
                       "state/test.yaml:5: spec.podSelecter is not a field of a NetworkPolicy spec "
                       + "(valid: podSelector, policyTypes, ingress, egress)")
    }

    func testMisspeltPeerField() {
        // Reported rather than "must have podSelector, namespaceSelector or ipBlock".
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - from:
              - podSelecter: {matchLabels: {app: web}}
            """),
            "state/test.yaml:8: spec.ingress[0].from[0].podSelecter is not a field of a NetworkPolicy peer "
            + "(valid: podSelector, namespaceSelector, ipBlock)")
    }

    func testMisspeltPortField() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - ports:
              - port: 8000
                endport: 9000
            """),
            "state/test.yaml:9: spec.ingress[0].ports[0].endport is not a field of a NetworkPolicy port "
            + "(valid: protocol, port, endPort)")
    }

    func testMisspeltRequirementField() {
        assertRejected(policy("""
            podSelector:
              matchExpressions:
              - key: tier
                operator: NotIn
                value: [admin]
            """),
            "state/test.yaml:9: spec.podSelector.matchExpressions[0].value is not a field of a label selector "
            + "requirement (valid: key, operator, values)")
    }

    func testUnknownFieldWithANullValueIsStillAnError() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - form:
              ports: [{port: 443}]
            """),
            "state/test.yaml:7: spec.ingress[0].form is not a field of a NetworkPolicy ingress rule (valid: from, ports)")
    }

    func testUnknownFieldMergedThroughAnAliasIsAnError() {
        assertRejected(policy("""
            podSelector: {}
            ingress:
            - <<: &web {form: [{podSelector: {}}]}
              ports: [{port: 443}]
            """),
            "state/test.yaml:7: spec.ingress[0].form is not a field of a NetworkPolicy ingress rule (valid: from, ports)")
    }

    // MARK: apiVersion

    func testKnownKindUnderAnotherAPIVersion() {
        func rejected(_ apiVersion: String, _ kind: String, _ expected: String,
                      file: StaticString = #filePath, line: UInt = #line) {
            assertRejected("""
                apiVersion: \(apiVersion)
                kind: \(kind)
                metadata: {name: web, namespace: shop}
                spec:
                  podSelector: {}
                """, "state/test.yaml:1: apiVersion \(quoted(apiVersion)) of \(kind) is not supported: use \(expected)",
                file: file, line: line)
        }
        rejected("networking.k8s.io/v1beta1", "NetworkPolicy", "networking.k8s.io/v1")
        rejected("extensions/v1beta1", "NetworkPolicy", "networking.k8s.io/v1")
        rejected("crd.projectcalico.org/v1", "NetworkPolicy", "projectcalico.org/v3")
        rejected("crd.projectcalico.org/v1", "GlobalNetworkPolicy", "projectcalico.org/v3")
        rejected("v2", "Namespace", "v1")
        rejected("apps/v1", "Pod", "v1")
        rejected("palisade.dev/v2", "Endpoint", "palisade.dev/v1")
        rejected("palisade.dev/v1beta1", "Quarantine", "palisade.dev/v1")
    }

    func testExactAPIVersionMessage() {
        assertRejected("""
            apiVersion: networking.k8s.io/v1beta1
            kind: NetworkPolicy
            metadata: {name: web, namespace: shop}
            spec: {podSelector: {}}
            """,
            "state/test.yaml:1: apiVersion \"networking.k8s.io/v1beta1\" of NetworkPolicy is not supported: "
            + "use networking.k8s.io/v1")
    }

    func testKnownKindUnderAnotherAPIVersionInAList() {
        assertRejected("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Namespace
              metadata: {name: shop}
            - kind: NetworkPolicy
              apiVersion: extensions/v1beta1
              metadata: {name: web, namespace: shop}
              spec: {podSelector: {}}
            """,
            "state/test.yaml:8: apiVersion \"extensions/v1beta1\" of NetworkPolicy is not supported: "
            + "use networking.k8s.io/v1")
    }
}
