import XCTest
@testable import PolicyModel

extension StateObject {
    var calicoValue: CalicoPolicy? { if case .calicoPolicy(let value) = self { return value }; return nil }
}

/// `projectcalico.org/v3` NetworkPolicy and GlobalNetworkPolicy: what they decode to, and the exact
/// errors for what Palisade refuses.
final class CalicoPolicyDecodingTests: XCTestCase {
    private func at(_ line: Int) -> SourceLocation { SourceLocation(file: "state/test.yaml", line: line) }

    /// A namespaced Calico NetworkPolicy whose spec is `spec` (indented by two), starting at line 5.
    private func namespaced(_ spec: String) -> String {
        """
        apiVersion: projectcalico.org/v3
        kind: NetworkPolicy
        metadata: {name: web, namespace: shop}
        spec:

        """ + spec.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }

    /// The same as a GlobalNetworkPolicy.
    private func global(_ spec: String) -> String {
        namespaced(spec).replacingOccurrences(of: "kind: NetworkPolicy", with: "kind: GlobalNetworkPolicy")
    }

    private func singleCalicoPolicy(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> CalicoPolicy {
        let objects = try decode(text)
        XCTAssertEqual(objects.count, 1, file: file, line: line)
        return try XCTUnwrap(objects.first?.calicoValue, file: file, line: line)
    }

    // MARK: Good policies

    func testNamespacedPolicyWithEverySupportedField() throws {
        let policy = try singleCalicoPolicy("""
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata:
              name: web-ingress
              namespace: shop
              annotations: {note: checked}
            spec:
              tier: default
              order: 10.5
              selector: app == 'web'
              types: [Ingress, Egress]
              performanceHints: [AssumeNeededOnEveryNode]
              ingress:
              - action: Log
                protocol: TCP
                source:
                  nets: [10.1.0.0/16]
                  notNets: [10.1.2.7/24]
              - action: Allow
                protocol: tcp
                ipVersion: 4
                metadata: {annotations: {why: frontends}}
                source:
                  selector: role in {'frontend', "edge"}
                  notSelector: has(canary)
                  namespaceSelector: zone == 'dmz'
                  ports: [1000:1059]
                destination:
                  ports: [80, "8080:8090", http-alt]
                  notPorts: ["8081"]
              - action: Deny
                protocol: ICMP
                icmp: {type: 8, code: 0}
                notICMP: {type: 3}
              - action: Pass
                notProtocol: 17
                destination:
                  nets: ["fd00::1/64"]
              egress:
              - action: Allow
                protocol: 132
                destination:
                  selector: app == 'db'
                  ports: [5432]
              - action: Deny
            """)
        XCTAssertEqual(policy, CalicoPolicy(
            namespace: "shop", name: "web-ingress", order: 10.5, selector: .equals("app", "web"),
            namespaceSelector: nil, types: [.ingress, .egress],
            ingress: [
                CalicoRule(action: .log, proto: .tcp,
                           source: CalicoEntityRule(nets: [cidr("10.1.0.0/16")], notNets: [cidr("10.1.2.0/24")]),
                           location: at(14)),
                CalicoRule(action: .allow, proto: .tcp, ipVersion: .ipv4,
                           source: CalicoEntityRule(selector: .inSet("role", ["edge", "frontend"]),
                                                    notSelector: .has("canary"),
                                                    namespaceSelector: .equals("zone", "dmz"),
                                                    ports: [.range(1000...1059)]),
                           destination: CalicoEntityRule(ports: [.range(80...80), .range(8080...8090), .named("http-alt")],
                                                         notPorts: [.range(8081...8081)]),
                           location: at(19)),
                CalicoRule(action: .deny, proto: .icmp, icmp: ICMPMatch(type: 8, code: 0), notICMP: ICMPMatch(type: 3),
                           location: at(31)),
                CalicoRule(action: .pass, notProto: .udp, destination: CalicoEntityRule(nets: [cidr("fd00::/64")]),
                           location: at(35)),
            ],
            egress: [
                CalicoRule(action: .allow, proto: .sctp,
                           destination: CalicoEntityRule(selector: .equals("app", "db"), ports: [.range(5432...5432)]),
                           location: at(40)),
                CalicoRule(action: .deny, location: at(45)),
            ],
            location: at(1)))
        XCTAssertEqual(policy.id, "shop/web-ingress")
        XCTAssertEqual(policy.kind, "NetworkPolicy")
    }

    func testGlobalPolicyWithEverySupportedField() throws {
        let policy = try singleCalicoPolicy("""
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata:
              name: quarantine
              namespace: ignored-for-a-global-policy
            spec:
              order: 100
              selector: quarantine == 'true'
              namespaceSelector: has(projectcalico.org/name) && projectcalico.org/name not in {'kube-system'}
              serviceAccountSelector: ""
              applyOnForward: false
              preDNAT: false
              doNotTrack: false
              ingress:
              - action: Deny
              egress:
              - action: Allow
                ipVersion: 6
                protocol: ICMPv6
                icmp: {type: 128}
                destination:
                  nets: ["2001:db8::/32"]
                  notNets: ["2001:db8:1::/48"]
              - action: Allow
                protocol: UDPLite
                notProtocol: "6"
              - action: Deny
                protocol: 50
            """)
        XCTAssertEqual(policy, CalicoPolicy(
            namespace: nil, name: "quarantine", order: 100, selector: .equals("quarantine", "true"),
            namespaceSelector: .and(.has("projectcalico.org/name"), .notInSet("projectcalico.org/name", ["kube-system"])),
            types: [.ingress, .egress],
            ingress: [CalicoRule(action: .deny, location: at(15))],
            egress: [
                CalicoRule(action: .allow, proto: .icmpv6, ipVersion: .ipv6, icmp: ICMPMatch(type: 128),
                           destination: CalicoEntityRule(nets: [cidr("2001:db8::/32")], notNets: [cidr("2001:db8:1::/48")]),
                           location: at(17)),
                CalicoRule(action: .allow, proto: .number(136), notProto: .tcp, location: at(24)),
                CalicoRule(action: .deny, proto: .number(50), location: at(27)),
            ],
            location: at(1)))
        XCTAssertEqual(policy.id, "global/quarantine")
        XCTAssertEqual(policy.kind, "GlobalNetworkPolicy")
    }

    func testDefaults() throws {
        let policy = try singleCalicoPolicy("""
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: {name: nothing}
            spec: {}
            """)
        XCTAssertEqual(policy, CalicoPolicy(namespace: "default", name: "nothing", order: nil, selector: .all,
                                            namespaceSelector: nil, types: [.ingress], location: at(1)))
        // Blank selectors are no selector at all, as in Calico.
        let blank = try singleCalicoPolicy(global("""
            selector: "  "
            namespaceSelector: ""
            ingress:
            - action: Allow
              source: {selector: "", notSelector: "", namespaceSelector: ""}
            """))
        XCTAssertEqual(blank.selector, .all)
        XCTAssertNil(blank.namespaceSelector)
        XCTAssertEqual(blank.ingress.first?.source, CalicoEntityRule())
    }

    func testTypesAreInferredAsCalicoDoes() throws {
        func types(_ spec: String, file: StaticString = #filePath, line: UInt = #line) throws -> Set<Direction> {
            try singleCalicoPolicy(namespaced(spec), file: file, line: line).types
        }
        XCTAssertEqual(try types("selector: all()"), [.ingress])
        XCTAssertEqual(try types("ingress: [{action: Allow}]"), [.ingress])
        XCTAssertEqual(try types("egress: [{action: Allow}]"), [.egress])
        XCTAssertEqual(try types("ingress: [{action: Allow}]\negress: [{action: Deny}]"), [.ingress, .egress])
        XCTAssertEqual(try types("types: []\negress: [{action: Allow}]"), [.egress])
        XCTAssertEqual(try types("types: [Egress]"), [.egress])
        XCTAssertEqual(try types("types: [Egress, Ingress]\ningress: [{action: Allow}]"), [.ingress, .egress])
    }

    func testPortsRangesAndNamedPorts() throws {
        let policy = try singleCalicoPolicy(namespaced("""
            ingress:
            - action: Allow
              protocol: UDP
              destination:
                ports: [53, "53", "1:65535", 8000:8080, "9000:9000", dns, serve-80-udp]
                notPorts: [1000:1059, "6000:6063"]
            """))
        XCTAssertEqual(policy.ingress.first?.destination.ports,
                       [.range(53...53), .range(53...53), .range(1...65535), .range(8000...8080), .range(9000...9000),
                        .named("dns"), .named("serve-80-udp")])
        // Unquoted 1000:1059 is a base-60 integer to YAML 1.1; Calico (and Palisade) read the range.
        XCTAssertEqual(policy.ingress.first?.destination.notPorts, [.range(1000...1059), .range(6000...6063)])
    }

    func testProtocolNamesInAnyCaseAndNumbersWithANameBecomeTheName() throws {
        let policy = try singleCalicoPolicy(namespaced("""
            ingress:
            - {action: Allow, protocol: Tcp}
            - {action: Allow, protocol: "udp"}
            - {action: Allow, protocol: sctp}
            - {action: Allow, protocol: icmpV6}
            - {action: Allow, protocol: 1}
            - {action: Allow, protocol: 58}
            - {action: Allow, protocol: "255"}
            """))
        XCTAssertEqual(policy.ingress.map(\.proto), [.tcp, .udp, .sctp, .icmpv6, .icmp, .icmpv6, .number(255)])
    }

    func testCIDRHostBitsAreClearedAsForIPBlock() throws {
        let policy = try singleCalicoPolicy(namespaced("""
            egress:
            - action: Deny
              destination: {nets: [192.0.2.77/24, 198.51.100.1/32]}
            """))
        XCTAssertEqual(policy.egress.first?.destination.nets, [cidr("192.0.2.0/24"), cidr("198.51.100.1/32")])
    }

    func testCalicoListsAsCalicoctlPrintsThem() throws {
        let objects = try decode("""
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicyList
            metadata: {resourceVersion: "42"}
            items:
            - apiVersion: projectcalico.org/v3
              kind: GlobalNetworkPolicy
              metadata: {name: a}
              spec: {order: 1}
            - apiVersion: projectcalico.org/v3
              kind: GlobalNetworkPolicy
              metadata: {name: b}
              spec: {order: 2}
            """)
        XCTAssertEqual(objects.compactMap(\.calicoValue).map(\.id), ["global/a", "global/b"])
        XCTAssertEqual(objects.compactMap(\.calicoValue).map(\.location), [at(5), at(9)])
    }

    func testDesiredStateCollectsBothKinds() throws {
        let objects = try decode(namespaced("order: 1") + "\n---\n" + global("order: 2"))
        let state = DesiredState(objects: objects)
        XCTAssertEqual(state.calicoPolicies.map(\.id), ["global/web", "shop/web"])
    }

    // MARK: Errors the brief names

    func testUnknownAction() {
        assertRejected(namespaced("ingress:\n- action: Reject"),
                       "state/test.yaml:6: spec.ingress[0].action \"Reject\" is not one of Allow, Deny, Log, Pass")
        assertRejected(namespaced("ingress:\n- action: allow"),
                       "state/test.yaml:6: spec.ingress[0].action \"allow\" is not one of Allow, Deny, Log, Pass")
        assertRejected(namespaced("ingress:\n- protocol: TCP"),
                       "state/test.yaml:6: spec.ingress[0].action is required")
        assertRejected(namespaced("egress:\n-"), "state/test.yaml:6: spec.egress[0].action is required")
    }

    func testPortsWithoutAPortProtocol() {
        assertRejected(namespaced("""
            ingress:
            - action: Allow
              destination:
                ports: [80]
            """), "state/test.yaml:8: spec.ingress[0].destination.ports needs protocol TCP, UDP or SCTP: Calico "
                + "requires a protocol for ports (the rule has no protocol)")
        assertRejected(namespaced("""
            egress:
            - action: Allow
              protocol: ICMP
              source:
                notPorts: [http]
            """), "state/test.yaml:9: spec.egress[0].source.notPorts needs protocol TCP, UDP or SCTP: Calico "
                + "requires a protocol for ports (protocol is ICMP)")
        assertRejected(namespaced("""
            egress:
            - action: Allow
              notProtocol: TCP
              destination: {ports: [80]}
            """), "state/test.yaml:8: spec.egress[0].destination.ports needs protocol TCP, UDP or SCTP: Calico "
                + "requires a protocol for ports (the rule has no protocol)")
    }

    func testICMPWithAnotherProtocol() {
        assertRejected(namespaced("""
            ingress:
            - action: Allow
              protocol: TCP
              icmp: {type: 8}
            """), "state/test.yaml:8: spec.ingress[0].icmp needs protocol ICMP or ICMPv6 (protocol is TCP)")
        assertRejected(namespaced("""
            ingress:
            - action: Allow
              notICMP: {type: 8}
            """), "state/test.yaml:7: spec.ingress[0].notICMP needs protocol ICMP or ICMPv6 (the rule has no protocol)")
    }

    func testBadSelector() {
        assertRejected(namespaced("""
            ingress:
            - action: Allow
              source:
                selector: app = web
            """), "state/test.yaml:8: spec.ingress[0].source.selector \"app = web\" is not a valid selector: expected "
                + "== but found \"=\" (column 5)")
        assertRejected(namespaced("selector: app == 'web' &&"),
                       "state/test.yaml:5: spec.selector \"app == 'web' &&\" is not a valid selector: expected a label, "
                       + "has(…), all(), ! or ( but found the end of the selector (column 16)")
        assertRejected(global("namespaceSelector: global()"),
                       "state/test.yaml:5: spec.namespaceSelector \"global()\" is not a valid selector: global() is not "
                       + "supported by Palisade: it selects host endpoints and global network sets, which Palisade does "
                       + "not have (column 1)")
        assertRejected(namespaced("egress:\n- action: Allow\n  destination: {namespaceSelector: \"global()\"}"),
                       "state/test.yaml:7: spec.egress[0].destination.namespaceSelector \"global()\" is not a valid "
                       + "selector: global() is not supported by Palisade: it selects host endpoints and global network "
                       + "sets, which Palisade does not have (column 1)")
        assertRejected(namespaced("selector: name starts with 'web'"),
                       "state/test.yaml:5: spec.selector \"name starts with 'web'\" is not a valid selector: \"starts "
                       + "with\" is not supported by Palisade; use ==, !=, in or not in (column 6)")
    }

    func testNamespaceSelectorOnTheNamespacedKind() {
        assertRejected(namespaced("namespaceSelector: all()"),
                       "state/test.yaml:5: spec.namespaceSelector is not a field of a namespaced NetworkPolicy; use a "
                       + "GlobalNetworkPolicy to select endpoints by namespace")
    }

    func testUnsupportedFields() {
        assertRejected(namespaced("serviceAccountSelector: role == 'admin'"),
                       "state/test.yaml:5: spec.serviceAccountSelector is not supported by Palisade: it selects pods by "
                       + "service account, which Palisade does not know; remove it")
        assertRejected(global("doNotTrack: true"),
                       "state/test.yaml:5: spec.doNotTrack is not supported by Palisade: it applies host endpoint policy "
                       + "before connection tracking, and Palisade has no host endpoints; remove it")
        assertRejected(global("preDNAT: true"),
                       "state/test.yaml:5: spec.preDNAT is not supported by Palisade: it applies host endpoint policy "
                       + "before DNAT, and Palisade has no host endpoints; remove it")
        assertRejected(global("applyOnForward: true"),
                       "state/test.yaml:5: spec.applyOnForward is not supported by Palisade: it applies host endpoint "
                       + "policy to forwarded traffic, and Palisade has no host endpoints; remove it")
        assertRejected(global("applyOnForward: yes please"),
                       "state/test.yaml:5: spec.applyOnForward must be true or false, not \"yes please\"")
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: TCP\n  http: {methods: [GET]}"),
                       "state/test.yaml:8: spec.ingress[0].http is not supported by Palisade: it matches HTTP requests "
                       + "(application layer policy), which Palisade does not see; remove it")
        assertRejected(namespaced("ingress:\n- action: Allow\n  source:\n    serviceAccounts: {names: [web]}"),
                       "state/test.yaml:8: spec.ingress[0].source.serviceAccounts is not supported by Palisade: it "
                       + "matches pods by service account, which Palisade does not know; remove it")
        assertRejected(namespaced("egress:\n- action: Allow\n  destination:\n    services: {name: db}"),
                       "state/test.yaml:8: spec.egress[0].destination.services is not supported by Palisade: it matches "
                       + "Kubernetes Services, which Palisade does not know; remove it")
        assertRejected(namespaced("egress:\n- action: Allow\n  destination:\n    domains: [example.com]"),
                       "state/test.yaml:8: spec.egress[0].destination.domains is not supported by Palisade: it matches "
                       + "DNS names, which Palisade does not resolve; remove it")
    }

    func testNullUnsupportedFieldsAreAbsent() throws {
        let policy = try singleCalicoPolicy(namespaced("""
            serviceAccountSelector:
            ingress:
            - action: Allow
              http: null
              source: {serviceAccounts: ~, services: null}
            """))
        XCTAssertEqual(policy.ingress, [CalicoRule(action: .allow, location: at(7))])
    }

    func testUnknownKeyInARuleOrEntity() {
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocl: TCP"),
                       "state/test.yaml:7: spec.ingress[0].protocl is not a field of a Calico rule (valid: "
                       + "action, protocol, notProtocol, ipVersion, icmp, notICMP, source, destination, metadata)")
        assertRejected(namespaced("ingress:\n- action: Allow\n  source:\n    selectr: app == 'web'"),
                       "state/test.yaml:8: spec.ingress[0].source.selectr is not a field of a Calico rule's source or "
                       + "destination (valid: nets, notNets, selector, notSelector, namespaceSelector, ports, "
                       + "notPorts)")
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: ICMP\n  icmp: {type: 8, cod: 0}"),
                       "state/test.yaml:8: spec.ingress[0].icmp.cod is not a field of an ICMP match (valid: "
                       + "type, code)")
        // Outside rules, unknown fields are ignored as for the Kubernetes kinds.
        XCTAssertNoThrow(try decode(namespaced("someFutureField: 1\nselector: all()")))
    }

    func testBadCIDRs() {
        assertRejected(namespaced("egress:\n- action: Deny\n  destination:\n    nets: [10.0.0.0/8, 10.0.0.0/33]"),
                       "state/test.yaml:8: spec.egress[0].destination.nets[1] \"10.0.0.0/33\" is not a valid CIDR")
        assertRejected(namespaced("egress:\n- action: Deny\n  destination:\n    notNets: [10.0.0.1]"),
                       "state/test.yaml:8: spec.egress[0].destination.notNets[0] \"10.0.0.1\" is not a valid CIDR "
                       + "(write 10.0.0.1/32 for one address)")
        assertRejected(namespaced("egress:\n- action: Deny\n  destination:\n    nets: [backend]"),
                       "state/test.yaml:8: spec.egress[0].destination.nets[0] \"backend\" is not a valid CIDR")
    }

    func testTierOtherThanDefault() {
        assertRejected(namespaced("tier: security"),
                       "state/test.yaml:5: spec.tier \"security\" is not supported by Palisade: it has only the default "
                       + "tier; remove tier or set it to default")
    }

    // MARK: Other errors

    func testBadPorts() {
        func rejected(_ ports: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
            assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: TCP\n  destination:\n    ports: \(ports)"),
                           "state/test.yaml:9: spec.ingress[0].destination.ports" + expected, file: file, line: line)
        }
        rejected("[0]", "[0] 0 is not between 1 and 65535")
        rejected("[70000]", "[0] 70000 is not between 1 and 65535")
        rejected("[\"90:80\"]", "[0] \"90:80\" is not a valid port range: 90 is greater than 80")
        rejected("[\"0:80\"]", "[0] \"0:80\" is not a valid port range: 0 is not between 1 and 65535")
        rejected("[\"80:\"]", "[0] \"80:\" is not a valid port range (write first:last, such as 8000:8080)")
        rejected("[\"80-90\"]", "[0] \"80-90\" is not a valid port name: must contain at least one letter "
                 + "(write a range as 80:90)")
        rejected("[HTTP]", "[0] \"HTTP\" is not a valid port name: must consist of lowercase letters, digits and '-'")
        rejected("[[80]]", "[0] must be a port number, a range \"first:last\" or a port name, not a list")
        rejected("80", " must be a list, not \"80\"")
    }

    func testBadProtocolsAndIPVersions() {
        assertRejected(namespaced("ingress:\n- {action: Allow, protocol: HTTP}"),
                       "state/test.yaml:6: spec.ingress[0].protocol \"HTTP\" is not one of TCP, UDP, SCTP, ICMP, ICMPv6, "
                       + "UDPLite or a protocol number from 1 to 255")
        assertRejected(namespaced("ingress:\n- {action: Allow, notProtocol: 0}"),
                       "state/test.yaml:6: spec.ingress[0].notProtocol 0 is not between 1 and 255")
        assertRejected(namespaced("ingress:\n- {action: Allow, protocol: 256}"),
                       "state/test.yaml:6: spec.ingress[0].protocol 256 is not between 1 and 255")
        assertRejected(namespaced("ingress:\n- {action: Allow, ipVersion: 5}"),
                       "state/test.yaml:6: spec.ingress[0].ipVersion 5 is not one of 4, 6")
        assertRejected(namespaced("ingress:\n- {action: Allow, ipVersion: \"4\"}"),
                       "state/test.yaml:6: spec.ingress[0].ipVersion must be an integer, not \"4\"")
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: ICMP\n  ipVersion: 6"),
                       "state/test.yaml:8: spec.ingress[0].ipVersion 6 does not match protocol ICMP, which is IPv4 only; "
                       + "use ICMPv6")
        assertRejected(namespaced("ingress:\n- action: Allow\n  notProtocol: ICMPv6\n  ipVersion: 4"),
                       "state/test.yaml:8: spec.ingress[0].ipVersion 4 does not match notProtocol ICMPv6, which is IPv6 "
                       + "only; use ICMP")
    }

    func testBadICMPMatches() {
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: ICMP\n  icmp: {code: 0}"),
                       "state/test.yaml:8: spec.ingress[0].icmp.code needs a type: the kernel matches an ICMP code only "
                       + "together with its type")
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: ICMP\n  icmp: {type: 255}"),
                       "state/test.yaml:8: spec.ingress[0].icmp.type 255 is not between 0 and 254")
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: ICMP\n  notICMP: {type: 3, code: 256}"),
                       "state/test.yaml:8: spec.ingress[0].notICMP.code 256 is not between 0 and 255")
        assertRejected(namespaced("ingress:\n- action: Allow\n  protocol: ICMP\n  icmp: 8"),
                       "state/test.yaml:8: spec.ingress[0].icmp must be a mapping, not \"8\"")
    }

    func testAddressFamiliesOfARule() {
        assertRejected(namespaced("""
            ingress:
            - action: Allow
              source: {nets: [10.0.0.0/8]}
              destination: {notNets: ["fd00::/8"]}
            """), "state/test.yaml:8: spec.ingress[0].destination.notNets[0] \"fd00::/8\" is IPv6 but "
                + "spec.ingress[0].source.nets[0] \"10.0.0.0/8\" is IPv4; a rule matches one address family (write one "
                + "rule per family)")
        assertRejected(namespaced("""
            ingress:
            - action: Allow
              ipVersion: 6
              source: {nets: [10.0.0.0/8]}
            """), "state/test.yaml:8: spec.ingress[0].source.nets[0] \"10.0.0.0/8\" is IPv4 but the rule's ipVersion is 6")
    }

    func testBadOrderAndTypes() {
        assertRejected(namespaced("order: \"100\""), "state/test.yaml:5: spec.order must be a number, not \"100\"")
        assertRejected(namespaced("order: .inf"), "state/test.yaml:5: spec.order must be a finite number, not \".inf\"")
        assertRejected(namespaced("order: [1]"), "state/test.yaml:5: spec.order must be a number, not a list")
        assertRejected(namespaced("types: [ingress]"),
                       "state/test.yaml:5: spec.types[0] \"ingress\" is not one of Ingress, Egress")
        assertRejected(namespaced("types:\n- Ingress\n- Ingress"),
                       "state/test.yaml:7: spec.types[1] \"Ingress\" is given more than once")
    }

    func testMetadataAndSpecAreChecked() {
        assertRejected("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: Web}\nspec: {}\n",
                       "state/test.yaml:3: metadata.name \"Web\" is not a valid name: must consist of lowercase letters, "
                       + "digits, '-' and '.', and each dot-separated part must start and end with a letter or digit")
        assertRejected("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: web, namespace: A}\nspec: {}\n",
                       "state/test.yaml:3: metadata.namespace \"A\" is not a valid namespace name: must consist of "
                       + "lowercase letters, digits and '-', and start and end with a letter or digit")
        assertRejected("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: web}\n",
                       "state/test.yaml:1: spec is required (write spec: {} for a policy with no rules)")
        assertRejected("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: web}\nspec: []\n",
                       "state/test.yaml:4: spec must be a mapping, not a list")
        assertRejected(namespaced("ingress:\n- action: Allow\n  source: [a]"),
                       "state/test.yaml:7: spec.ingress[0].source must be a mapping, not a list")
    }
}
