import Foundation
import NftablesModel
import PolicyCompiler
import PolicyModel
import XCTest

/// The compiler is a pure function: these tests compare its output with golden nft text and check
/// the decisions behind it (which chains an endpoint is dispatched to, who is in which set).
final class CompilerTests: XCTestCase {
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    static let shop = Namespace(name: "shop", labels: ["team": "storefront"])
    static let edge = Namespace(name: "edge", labels: ["zone": "dmz"])
    static let web = Endpoint(namespace: "shop", name: "web", labels: ["app": "web"],
                              addresses: [ip("198.18.0.11"), ip("2001:db8::11")], interface: "plweb",
                              namedPorts: [NamedPort(name: "http", port: 8080, proto: .tcp)])
    static let db = Endpoint(namespace: "shop", name: "db", labels: ["app": "db"],
                             addresses: [ip("198.18.0.12"), ip("2001:db8::12")], interface: "pldb")
    static let gateway = Endpoint(namespace: "edge", name: "gateway", labels: ["app": "gateway"],
                                  addresses: [ip("198.18.0.21")], interface: "plgw")

    func testNoPolicyEverythingDefaultAllow() throws {
        let state = DesiredState(namespaces: ["shop": Self.shop], endpoints: [Self.db, Self.web])
        let compiled = PolicyCompiler.compile(state)
        try golden("no-policy", RulesetText.render(compiled.table))
        XCTAssertEqual(compiled.endpoints.map(\.ingress), [.defaultAllow, .defaultAllow])
        XCTAssertEqual(compiled.table.sets["ingress-dispatch"]?.elements,
                       [.interface("pldb", verdict: .jump("allow-ingress")), .interface("plweb", verdict: .jump("allow-ingress"))])
    }

    func testPoliciesIngressEgressAndSets() throws {
        let dbIngress = NetworkPolicy(
            namespace: "shop", name: "db-from-web",
            podSelector: LabelSelector(matchLabels: ["app": "db"]),
            ingress: [PolicyRule(peers: [.selector(pods: LabelSelector(matchLabels: ["app": "web"]), namespaces: nil)],
                                 ports: [PolicyPort(proto: .tcp, port: .number(5432))])])
        let webIngress = NetworkPolicy(
            namespace: "shop", name: "web-from-edge",
            podSelector: LabelSelector(matchLabels: ["app": "web"]),
            ingress: [PolicyRule(
                peers: [.selector(pods: nil, namespaces: LabelSelector(matchLabels: ["zone": "dmz"])),
                        .ipBlock(cidr: CIDR("198.51.100.0/24")!, except: [CIDR("198.51.100.128/25")!])],
                ports: [PolicyPort(proto: .tcp, port: .named("http")),
                        PolicyPort(proto: .tcp, port: .number(9000), endPort: 9010)])])
        let dbNoEgress = NetworkPolicy(namespace: "shop", name: "db-no-egress",
                                       podSelector: LabelSelector(matchLabels: ["app": "db"]), policyTypes: [.egress])
        let state = DesiredState(namespaces: ["shop": Self.shop, "edge": Self.edge],
                                 endpoints: [Self.db, Self.web, Self.gateway],
                                 policies: [dbNoEgress, dbIngress, webIngress])
        let compiled = PolicyCompiler.compile(state)
        try golden("policies", RulesetText.render(compiled.table))

        let db = try XCTUnwrap(compiled.endpoints.first { $0.endpoint.name == "db" })
        XCTAssertEqual(db.ingress, .policies(["shop/db-from-web"]))
        XCTAssertEqual(db.egress, .policies(["shop/db-no-egress"]))
        let gateway = try XCTUnwrap(compiled.endpoints.first { $0.endpoint.name == "gateway" })
        XCTAssertEqual(gateway.ingress, .defaultAllow)

        // The web selector's set holds web's addresses only; the dmz namespace set holds the gateway.
        let webSets = compiled.table.sets.values.filter { set in set.elements.contains(.address(Self.ip("198.18.0.11"))) }
        XCTAssertEqual(webSets.count, 1)
        XCTAssertEqual(webSets.first?.elements, [.address(Self.ip("198.18.0.11"))])
        let gatewaySets = compiled.table.sets.values.filter { $0.elements.contains(.address(Self.ip("198.18.0.21"))) }
        XCTAssertEqual(gatewaySets.map(\.elements), [[.address(Self.ip("198.18.0.21"))]])

        // The db egress chain has no allow rule at all: its only exits are established traffic and
        // drop. The policy has no egress rules, so there is no chain to enter (nor one built).
        let dbEgressChain = try XCTUnwrap(compiled.table.chains[try XCTUnwrap(db.egressChain)])
        XCTAssertNil(compiled.table.chains["pol.shop.db-no-egress.eg"])
        XCTAssertEqual(dbEgressChain.rules.count, 3)
        XCTAssertEqual(dbEgressChain.rules.last?.exprs, [.log(group: 1, prefix: "palisade deny eg default "), .counter, .verdict(.drop)])

        // A policy is entered only for the protocols and ports its rules name.
        let dbIngressChain = try XCTUnwrap(compiled.table.chains[try XCTUnwrap(db.ingressChain)])
        XCTAssertEqual(dbIngressChain.rules.map { RulesetText.render($0) }.filter { $0.contains("jump") },
                       ["tcp dport 5432 jump pol.shop.db-from-web.in"])
    }

    /// The endpoint chain enters a Kubernetes policy only on the protocols and ports its rules
    /// name; a rule open to every port (or a Calico policy) means an unconditional jump.
    func testPoliciesAreEnteredOnlyOnTheirPorts() throws {
        func policy(_ name: String, _ rules: [PolicyRule]) -> NetworkPolicy {
            NetworkPolicy(namespace: "shop", name: name, podSelector: LabelSelector(matchLabels: ["app": "db"]), ingress: rules)
        }
        let anyone: [PolicyPeer] = []   // no peers: every source
        let policies = [
            policy("a-two-ports", [PolicyRule(peers: anyone, ports: [PolicyPort(proto: .tcp, port: .number(5432))]),
                                   PolicyRule(peers: anyone, ports: [PolicyPort(proto: .tcp, port: .number(6432))])]),
            policy("b-range-and-udp", [PolicyRule(peers: anyone, ports: [PolicyPort(proto: .tcp, port: .number(9000), endPort: 9010),
                                                                         PolicyPort(proto: .udp, port: .number(53))])]),
            policy("c-named-and-protocol", [PolicyRule(peers: anyone, ports: [PolicyPort(proto: .tcp, port: .named("http")),
                                                                              PolicyPort(proto: .sctp)])]),
            policy("d-some-ports-then-all", [PolicyRule(peers: anyone, ports: [PolicyPort(proto: .tcp, port: .number(22))]),
                                             PolicyRule(peers: anyone)]),
        ]
        let state = DesiredState(namespaces: ["shop": Self.shop], endpoints: [Self.db], policies: policies)
        let compiled = PolicyCompiler.compile(state)
        let db = try XCTUnwrap(compiled.endpoints.first)
        let chain = try XCTUnwrap(compiled.table.chains[try XCTUnwrap(db.ingressChain)])
        let entries = chain.rules.map { RulesetText.render($0) }.filter { $0.contains("jump") }
        XCTAssertEqual(entries.count, 6, "\(entries)")
        let portSet = try XCTUnwrap(entries.first?.split(separator: " ").first { $0.hasPrefix("@port.") }.map { String($0.dropFirst()) })
        XCTAssertEqual(entries, [
            "tcp dport @\(portSet) jump pol.shop.a-two-ports.in",
            "tcp dport 9000-9010 jump pol.shop.b-range-and-udp.in",
            "udp dport 53 jump pol.shop.b-range-and-udp.in",
            "meta l4proto tcp jump pol.shop.c-named-and-protocol.in",
            "meta l4proto sctp jump pol.shop.c-named-and-protocol.in",
            "jump pol.shop.d-some-ports-then-all.in",
        ])
        XCTAssertEqual(compiled.table.sets[portSet]?.elements, IntervalElements.elements(forPorts: [5432...5432, 6432...6432]))

        // What the guards let through is what the policies allow: traced on the compiled tables,
        // with and without the policy open to every port.
        let withoutD = PolicyCompiler.compile(DesiredState(namespaces: ["shop": Self.shop], endpoints: [Self.db],
                                                           policies: Array(policies.dropLast()))).table
        let accepts = { (table: Table, proto: UInt8, port: UInt16) -> Bool in
            let packet = TracePacket(inputInterface: "eth0", outputInterface: "pldb", source: Self.ip("198.18.0.99"),
                                     destination: Self.ip("198.18.0.12"), l4proto: proto, sourcePort: 40000, destinationPort: port)
            return (try? PacketTracer.trace(table, packet: packet, hook: .forward).verdict) == .accept
        }
        for (proto, port) in [(6, 5432), (6, 6432), (6, 9000), (6, 9010), (17, 53), (132, 7)] as [(UInt8, UInt16)] {
            XCTAssertTrue(accepts(compiled.table, proto, port), "\(proto)/\(port)")
            XCTAssertTrue(accepts(withoutD, proto, port), "\(proto)/\(port)")
        }
        for (proto, port) in [(6, 22), (6, 1234), (17, 54), (6, 8999)] as [(UInt8, UInt16)] {
            XCTAssertTrue(accepts(compiled.table, proto, port), "d opens every port: \(proto)/\(port)")
            XCTAssertFalse(accepts(withoutD, proto, port), "\(proto)/\(port)")
        }
    }

    func testNamespaceDefaultDenyAndConfiguredDefault() {
        var locked = Self.shop
        locked.defaultPolicy = .deny
        let state = DesiredState(namespaces: ["shop": locked, "edge": Self.edge], endpoints: [Self.web, Self.gateway])
        let compiled = PolicyCompiler.compile(state)
        let web = compiled.endpoints.first { $0.endpoint.name == "web" }
        XCTAssertEqual(web?.ingress, .defaultDeny)
        XCTAssertEqual(web?.egress, .defaultDeny)
        XCTAssertEqual(web?.ingressChain, "deny-ingress")
        XCTAssertEqual(compiled.endpoints.first { $0.endpoint.name == "gateway" }?.ingress, .defaultAllow)

        let strict = PolicyCompiler.compile(DesiredState(endpoints: [Self.gateway]),
                                            options: CompilerOptions(defaultPolicy: .deny))
        XCTAssertEqual(strict.endpoints.first?.egressChain, "deny-egress")
    }

    func testEndpointsWithTheSamePoliciesShareChains() {
        let all = NetworkPolicy(namespace: "shop", name: "all", podSelector: .everything,
                                ingress: [PolicyRule(ports: [PolicyPort(proto: .udp, port: .number(53))])])
        let state = DesiredState(endpoints: [Self.web, Self.db], policies: [all])
        let compiled = PolicyCompiler.compile(state)
        XCTAssertEqual(Set(compiled.endpoints.compactMap(\.ingressChain)).count, 1)
        XCTAssertEqual(compiled.table.chains.keys.filter { $0.hasPrefix("ep.") }.count, 1)
    }

    func testInterfacesDerivedConflictsAndNodeFilter() {
        var unnamed = Self.web
        unnamed.interface = nil
        var twin = Self.db
        twin.interface = "plweb"
        var remote = Self.gateway
        remote.nodeName = "node-9"
        let compiled = PolicyCompiler.compile(DesiredState(endpoints: [Self.web, twin, unnamed, remote]),
                                              options: CompilerOptions(nodeName: "node-1"))
        let derived = compiled.endpoints.first { $0.endpoint.interface == nil }?.interface
        XCTAssertEqual(derived?.hasPrefix("pl"), true)
        XCTAssertLessThanOrEqual(derived?.count ?? 99, 15)
        XCTAssertEqual(compiled.warnings.count, 2, "both endpoints claiming plweb must be reported")
        XCTAssertTrue(compiled.endpoints.filter { $0.endpoint.interface == "plweb" }.allSatisfy { $0.interface == nil },
                      "a contested interface is dispatched to nobody: its packets meet the prefix drop rule")
        XCTAssertNil(compiled.endpoints.first { $0.endpoint.name == "gateway" }?.interface, "a pod of another node is not dispatched here")
        XCTAssertEqual(compiled.table.sets["egress-dispatch"]?.elements.map { Bytes.ifnameString($0.key) }, [derived ?? "?"])

        var foreign = Self.db
        foreign.interface = "eth0"
        let unprefixed = PolicyCompiler.compile(DesiredState(endpoints: [foreign]))
        XCTAssertNil(unprefixed.endpoints.first?.interface, "a pod cannot claim an interface without the workload prefix")
        XCTAssertEqual(unprefixed.warnings.count, 1)
    }

    func testFailClosedRulesFollowThePrefix() {
        let compiled = PolicyCompiler.compile(DesiredState(), options: CompilerOptions(interfacePrefix: "cali"))
        let forward = compiled.table.chains["forward"]!.rules.map(RulesetText.render)
        XCTAssertEqual(forward, [
            "iifname \"cali*\" iifname . ip saddr != @source-addresses-v4 counter drop comment \"spoofed source address\"",
            "iifname \"cali*\" iifname . ip6 saddr != @source-addresses-v6 counter drop comment \"spoofed source address\"",
            "iifname vmap @egress-dispatch",
            "iifname \"cali*\" counter drop comment \"fail closed: workload interface not in the dispatch map\"",
            "oifname vmap @ingress-dispatch",
            "oifname \"cali*\" counter drop comment \"fail closed: workload interface not in the dispatch map\"",
        ])
        // Without a prefix every interface could be a workload's: no source check (it would drop
        // the uplink's traffic), and no fail-closed rule.
        let unprefixed = PolicyCompiler.compile(DesiredState(), options: CompilerOptions(interfacePrefix: ""))
        XCTAssertEqual(unprefixed.table.chains["forward"]!.rules.map(RulesetText.render),
                       ["iifname vmap @egress-dispatch", "oifname vmap @ingress-dispatch"])
    }

    /// Each dispatched endpoint's addresses are the only sources its interface may use; the
    /// tracer drops a packet from that interface with another pod's address.
    func testSourceAddressesBindToTheInterface() throws {
        let compiled = PolicyCompiler.compile(DesiredState(namespaces: ["shop": Self.shop], endpoints: [Self.db, Self.web]))
        XCTAssertEqual(compiled.table.sets["source-addresses-v4"]?.elements,
                       [.interfaceAddress("pldb", Self.ip("198.18.0.12")), .interfaceAddress("plweb", Self.ip("198.18.0.11"))])
        XCTAssertEqual(compiled.table.sets["source-addresses-v6"]?.elements.count, 2)
        func verdict(from interface: String, source: String) throws -> Verdict? {
            let packet = TracePacket(inputInterface: interface, outputInterface: "pldb", source: Self.ip(source),
                                     destination: Self.ip("198.18.0.12"), l4proto: 6, sourcePort: 40000, destinationPort: 5432)
            return try PacketTracer.trace(compiled.table, packet: packet, hook: .forward).verdict
        }
        XCTAssertEqual(try verdict(from: "plweb", source: "198.18.0.11"), .accept)
        XCTAssertEqual(try verdict(from: "plweb", source: "198.18.0.99"), .drop, "a forged source")
        XCTAssertEqual(try verdict(from: "plweb", source: "198.18.0.12"), .drop, "another pod's address")
    }

    func testNamedPortsResolvePerDestination() {
        var otherWeb = Self.web
        otherWeb.name = "web-2"
        otherWeb.interface = "plweb2"
        otherWeb.addresses = [Self.ip("198.18.0.13")]
        otherWeb.namedPorts = [NamedPort(name: "http", port: 8081, proto: .tcp)]
        // Egress to any peer on port "http": each pod that names a port http, at its own number.
        let egress = NetworkPolicy(namespace: "edge", name: "to-http", podSelector: .everything, policyTypes: [.egress],
                                   egress: [PolicyRule(ports: [PolicyPort(proto: .tcp, port: .named("http"))])])
        let compiled = PolicyCompiler.compile(DesiredState(endpoints: [Self.web, otherWeb, Self.gateway], policies: [egress]))
        let rules = compiled.table.chains["pol.edge.to-http.eg"]?.rules.map(RulesetText.render) ?? []
        XCTAssertEqual(rules.count, 2)
        XCTAssertTrue(rules[0].hasPrefix("ip daddr . tcp dport @np."), rules[0])
        XCTAssertTrue(rules[1].hasPrefix("ip6 daddr . tcp dport @np."), rules[1])
        let v4 = compiled.table.sets.values.first { $0.keyType == .ipv4AddressService }
        XCTAssertEqual(v4?.elements, [.addressPort(Self.ip("198.18.0.11"), 8080), .addressPort(Self.ip("198.18.0.13"), 8081)])
        let v6 = compiled.table.sets.values.first { $0.keyType == .ipv6AddressService }
        XCTAssertEqual(v6?.elements, [.addressPort(Self.ip("2001:db8::11"), 8080)])
    }

    func testCompilationIsDeterministic() {
        let policy = NetworkPolicy(namespace: "shop", name: "p", podSelector: .everything,
                                   ingress: [PolicyRule(peers: [.selector(pods: .everything, namespaces: .everything)])])
        let a = PolicyCompiler.compile(DesiredState(endpoints: [Self.web, Self.db, Self.gateway], policies: [policy]))
        let b = PolicyCompiler.compile(DesiredState(endpoints: [Self.gateway, Self.db, Self.web], policies: [policy]))
        XCTAssertEqual(a.table, b.table)
        XCTAssertEqual(RulesetText.render(a.table), RulesetText.render(b.table))
    }
}
