import NftablesModel
import PolicyCompiler
import PolicyModel
import XCTest

/// `explain` runs a packet through the compiled table, so these tests compile desired states and
/// check the verdicts and the rules and policies it names.
final class ExplainTests: XCTestCase {
    typealias C = CompilerTests
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    static let other = Endpoint(namespace: "shop", name: "other", labels: ["app": "other"],
                                addresses: [ip("198.18.0.13"), ip("2001:db8::13")], interface: "plother")
    static let endpoints = [C.db, C.web, C.gateway, other]
    static let namespaces = ["shop": C.shop, "edge": C.edge]

    static let dbFromWeb = NetworkPolicy(
        namespace: "shop", name: "db-from-web", podSelector: LabelSelector(matchLabels: ["app": "db"]),
        ingress: [PolicyRule(peers: [.selector(pods: LabelSelector(matchLabels: ["app": "web"]), namespaces: nil)],
                             ports: [PolicyPort(proto: .tcp, port: .number(5432))])])

    func compile(policies: [NetworkPolicy] = [], calico: [CalicoPolicy] = [], namespaces: [String: Namespace] = namespaces,
                 options: CompilerOptions = CompilerOptions()) -> CompiledRuleset {
        PolicyCompiler.compile(DesiredState(namespaces: namespaces, endpoints: Self.endpoints, policies: policies,
                                            calicoPolicies: calico), options: options)
    }

    func explain(_ source: String, _ destination: String, _ port: String, family: IPFamily? = nil,
                 ctState: CtStateSet = .new, in compiled: CompiledRuleset,
                 file: StaticString = #filePath, line: UInt = #line) throws -> ExplainResult {
        let source = try XCTUnwrap(ExplainTarget(source), file: file, line: line)
        let destination = try XCTUnwrap(ExplainTarget(destination), file: file, line: line)
        let flow = try XCTUnwrap(ExplainQuery.parsePort(port), file: file, line: line)
        let query = ExplainQuery(source: source, destination: destination, port: flow.port, proto: flow.proto,
                                 family: family, ctState: ctState)
        return try Explainer.explain(query, in: compiled)
    }

    func verdict(_ source: String, _ destination: String, _ port: String, family: IPFamily? = nil,
                 in compiled: CompiledRuleset, file: StaticString = #filePath, line: UInt = #line) -> ExplainVerdict? {
        do {
            return try explain(source, destination, port, family: family, in: compiled, file: file, line: line).verdict
        } catch {
            XCTFail("explain failed: \(error)", file: file, line: line)
            return nil
        }
    }

    // MARK: Kubernetes semantics

    func testNoPolicyAllowsAndSaysWhy() throws {
        let compiled = compile()
        let result = try explain("shop/web", "shop/db", "5432/tcp", in: compiled)
        XCTAssertEqual(result.verdict, .allow)
        XCTAssertEqual(result.policies, [])
        XCTAssertEqual(result.decidingRule?.comment, "selected by no policy: default allow")
        XCTAssertEqual(result.decidingRule?.chain, "allow-ingress")
        XCTAssertEqual(result.render(), """
            shop/web (198.18.0.11, plweb) -> shop/db (198.18.0.12, pldb) tcp/5432: ALLOW
              egress of shop/web: selected by no policy: default allow
              ingress of shop/db: selected by no policy: default allow

            """)
        XCTAssertEqual(verdict("edge/gateway", "shop/other", "80/udp", in: compiled), .allow)
    }

    func testDenyAllIngressInANamespace() throws {
        let denyAll = NetworkPolicy(namespace: "shop", name: "deny-all", podSelector: .everything, policyTypes: [.ingress])
        let compiled = compile(policies: [denyAll])
        let result = try explain("shop/web", "shop/db", "5432/tcp", in: compiled)
        XCTAssertEqual(result.verdict, .deny)
        XCTAssertEqual(result.decidingRule?.comment, "default deny ingress: shop/deny-all")
        XCTAssertEqual(result.decidingRule?.text, "log prefix \"palisade deny in default \" group 1 counter drop")
        XCTAssertEqual(result.policies, ["shop/deny-all"])
        XCTAssertEqual(result.sides.map(\.direction), [.egress, .ingress])
        XCTAssertEqual(result.sides[1].policiesConsidered, ["shop/deny-all"])
        XCTAssertEqual(result.render(), """
            shop/web (198.18.0.11, plweb) -> shop/db (198.18.0.12, pldb) tcp/5432: DENY
              egress of shop/web: selected by no policy: default allow
              ingress of shop/db: denied by default deny ingress: shop/deny-all (log prefix "palisade deny in default " group 1 counter drop); policies considered: shop/deny-all

            """)
        XCTAssertEqual(verdict("edge/gateway", "shop/web", "80/tcp", in: compiled), .deny)
        XCTAssertEqual(verdict("shop/web", "edge/gateway", "80/tcp", in: compiled), .allow, "egress and other namespaces are untouched")
        // A packet of a connection that is already established passes the ingress chain.
        XCTAssertEqual(try explain("shop/web", "shop/db", "5432/tcp", ctState: .established, in: compiled).verdict, .allow)
    }

    func testAllowFromPodSelector() throws {
        let compiled = compile(policies: [Self.dbFromWeb])
        let allowed = try explain("shop/web", "shop/db", "5432/tcp", in: compiled)
        XCTAssertEqual(allowed.verdict, .allow)
        XCTAssertEqual(allowed.decidingRule?.comment, "shop/db-from-web ingress rule 0")
        XCTAssertEqual(allowed.decidingRule?.chain, "pol.shop.db-from-web.in")
        XCTAssertEqual(allowed.policies, ["shop/db-from-web"])
        let lines = allowed.render().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[1], "  egress of shop/web: selected by no policy: default allow")
        XCTAssertTrue(lines[2].hasPrefix("  ingress of shop/db: allowed by shop/db-from-web ingress rule 0 (tcp dport 5432 ip saddr @sel."), lines[2])
        XCTAssertTrue(lines[2].hasSuffix(".v4 accept)"), lines[2])

        // Another peer, and the right peer on the wrong port.
        let otherPeer = try explain("shop/other", "shop/db", "5432/tcp", in: compiled)
        XCTAssertEqual(otherPeer.verdict, .deny)
        XCTAssertEqual(otherPeer.decidingRule?.comment, "default deny ingress: shop/db-from-web")
        XCTAssertEqual(otherPeer.policies, ["shop/db-from-web"], "the policy chain was entered, and no rule in it matched")
        XCTAssertEqual(verdict("shop/web", "shop/db", "5433/tcp", in: compiled), .deny)
        XCTAssertEqual(verdict("shop/web", "shop/db", "5432/udp", in: compiled), .deny)
        XCTAssertEqual(verdict("edge/gateway", "shop/db", "5432/tcp", in: compiled), .deny)
        // The same over IPv6: the selector's v6 set holds web's IPv6 address.
        let v6 = try explain("shop/web", "shop/db", "5432/tcp", family: .ipv6, in: compiled)
        XCTAssertEqual(v6.verdict, .allow)
        XCTAssertEqual(v6.source.address, Self.ip("2001:db8::11"))
        XCTAssertEqual(verdict("shop/other", "shop/db", "5432/tcp", family: .ipv6, in: compiled), .deny)
    }

    func testEgressDeny() throws {
        let dbNoEgress = NetworkPolicy(namespace: "shop", name: "db-no-egress",
                                       podSelector: LabelSelector(matchLabels: ["app": "db"]), policyTypes: [.egress])
        let compiled = compile(policies: [dbNoEgress])
        let result = try explain("shop/db", "shop/web", "80/tcp", in: compiled)
        XCTAssertEqual(result.verdict, .deny)
        XCTAssertEqual(result.decidingRule?.comment, "default deny egress: shop/db-no-egress")
        XCTAssertEqual(result.sides[0].decision?.comment, "default deny egress: shop/db-no-egress")
        XCTAssertNil(result.sides[1].chain, "the packet never reached web's ingress chain")
        XCTAssertTrue(result.render().contains("ingress of shop/web: not reached"), result.render())
        XCTAssertEqual(verdict("shop/web", "shop/db", "80/tcp", in: compiled), .allow, "ingress to db is not restricted")
        XCTAssertEqual(verdict("shop/db", "203.0.113.9", "443/tcp", in: compiled), .deny, "nor is the outside reachable")
    }

    func testAllowedEgressStillMeetsTheDestinationsIngress() throws {
        let webEgress = NetworkPolicy(namespace: "shop", name: "web-egress", podSelector: LabelSelector(matchLabels: ["app": "web"]),
                                      policyTypes: [.egress],
                                      egress: [PolicyRule(ports: [PolicyPort(proto: .tcp, port: .number(5432))])])
        let compiled = compile(policies: [webEgress, Self.dbFromWeb])
        let result = try explain("shop/web", "shop/db", "5432/tcp", in: compiled)
        XCTAssertEqual(result.verdict, .allow)
        XCTAssertEqual(result.sides[0].decision?.comment, "shop/web-egress egress rule 0")
        XCTAssertEqual(result.sides[1].decision?.comment, "shop/db-from-web ingress rule 0")
        XCTAssertEqual(result.policies, ["shop/web-egress", "shop/db-from-web"])
        // web may send to other:5432, and other's ingress is open.
        XCTAssertEqual(verdict("shop/web", "shop/other", "5432/tcp", in: compiled), .allow)
        XCTAssertEqual(verdict("shop/web", "shop/other", "80/tcp", in: compiled), .deny)
    }

    func testNamespaceDefaultDeny() throws {
        var locked = C.shop
        locked.defaultPolicy = .deny
        let compiled = compile(namespaces: ["shop": locked, "edge": C.edge])
        let result = try explain("shop/web", "shop/db", "5432/tcp", in: compiled)
        XCTAssertEqual(result.verdict, .deny)
        XCTAssertEqual(result.decidingRule?.comment, "selected by no policy: default deny egress")
        XCTAssertEqual(result.decidingRule?.chain, "deny-egress")
        XCTAssertEqual(result.policies, [])
        let inbound = try explain("edge/gateway", "shop/web", "80/tcp", in: compiled)
        XCTAssertEqual(inbound.verdict, .deny)
        XCTAssertEqual(inbound.decidingRule?.comment, "selected by no policy: default deny ingress")
        XCTAssertEqual(verdict("edge/gateway", "198.51.100.1", "443/tcp", in: compiled), .allow)
        XCTAssertEqual(try explain("edge/gateway", "shop/web", "80/tcp", ctState: .established, in: compiled).verdict, .allow)
    }

    func testIPBlockPeerFromAnOutsideAddress() throws {
        let fromNet = NetworkPolicy(
            namespace: "shop", name: "web-from-net", podSelector: LabelSelector(matchLabels: ["app": "web"]),
            ingress: [PolicyRule(peers: [.ipBlock(cidr: CIDR("198.51.100.0/24")!, except: [CIDR("198.51.100.128/25")!])],
                                 ports: [PolicyPort(proto: .tcp, port: .number(80))])])
        let compiled = compile(policies: [fromNet])
        let result = try explain("198.51.100.7", "shop/web", "80/tcp", in: compiled)
        XCTAssertEqual(result.verdict, .allow)
        XCTAssertEqual(result.source.placement, .outside)
        XCTAssertEqual(result.source.interface, "eth0")
        XCTAssertNil(result.source.endpointID)
        XCTAssertEqual(result.decidingRule?.comment, "shop/web-from-net ingress rule 0")
        XCTAssertTrue(result.render().hasPrefix("198.51.100.7 (outside, via eth0) -> shop/web (198.18.0.11, plweb) tcp/80: ALLOW\n"),
                      result.render())
        XCTAssertTrue(result.render().contains("egress of 198.51.100.7: outside address"), result.render())

        for (source, expected) in [("198.51.100.0", ExplainVerdict.allow), ("198.51.100.127", .allow),
                                   ("198.51.100.128", .deny), ("198.51.100.255", .deny), ("198.51.101.1", .deny),
                                   ("203.0.113.1", .deny)] {
            XCTAssertEqual(verdict(source, "shop/web", "80/tcp", in: compiled), expected, source)
        }
        XCTAssertEqual(verdict("198.51.100.7", "shop/web", "81/tcp", in: compiled), .deny)
        // An address of a known pod is that pod, with its interface.
        let fromPod = try explain("198.18.0.12", "shop/web", "80/tcp", in: compiled)
        XCTAssertEqual(fromPod.source.endpointID, "shop/db")
        XCTAssertEqual(fromPod.source.interface, "pldb")
        XCTAssertEqual(fromPod.verdict, .deny)
    }

    func testNamedPortResolvesPerDestination() throws {
        var web2 = C.web
        web2.name = "web-2"
        web2.interface = "plweb2"
        web2.addresses = [Self.ip("198.18.0.14")]
        web2.namedPorts = [NamedPort(name: "http", port: 8081, proto: .tcp)]
        let toHTTP = NetworkPolicy(namespace: "shop", name: "web-http", podSelector: LabelSelector(matchLabels: ["app": "web"]),
                                   ingress: [PolicyRule(ports: [PolicyPort(proto: .tcp, port: .named("http"))])])
        let compiled = PolicyCompiler.compile(DesiredState(namespaces: Self.namespaces, endpoints: Self.endpoints + [web2],
                                                           policies: [toHTTP]))
        let result = try explain("edge/gateway", "shop/web", "8080/tcp", in: compiled)
        XCTAssertEqual(result.verdict, .allow)
        XCTAssertEqual(result.decidingRule?.comment, "shop/web-http ingress rule 0")
        XCTAssertTrue(result.decidingRule?.text.contains("tcp dport") ?? false)
        XCTAssertEqual(verdict("edge/gateway", "shop/web", "8081/tcp", in: compiled), .deny, "8081 is http on web-2, not on web")
        XCTAssertEqual(verdict("edge/gateway", "shop/web-2", "8081/tcp", in: compiled), .allow)
        XCTAssertEqual(verdict("edge/gateway", "shop/web-2", "8080/tcp", in: compiled), .deny)
        XCTAssertEqual(verdict("edge/gateway", "shop/web", "8080/udp", in: compiled), .deny)
        XCTAssertEqual(verdict("shop/other", "shop/web", "8080/tcp", family: .ipv6, in: compiled), .allow)
        XCTAssertEqual(verdict("shop/other", "shop/web", "8081/tcp", family: .ipv6, in: compiled), .deny)
    }

    func testNamedPortInAnEgressRule() {
        let toHTTP = NetworkPolicy(namespace: "edge", name: "to-http", podSelector: .everything, policyTypes: [.egress],
                                   egress: [PolicyRule(ports: [PolicyPort(proto: .tcp, port: .named("http"))])])
        let compiled = compile(policies: [toHTTP])
        XCTAssertEqual(verdict("edge/gateway", "shop/web", "8080/tcp", in: compiled), .allow)
        XCTAssertEqual(verdict("edge/gateway", "shop/db", "8080/tcp", in: compiled), .deny, "db names no port http")
    }

    // MARK: Calico ordered policies

    func testCalicoDenyLogAndPass() throws {
        let compiled = compile(policies: [], calico: [CalicoCompilerTests.quarantineDeny, CalicoCompilerTests.shopRules])
        let ping = try explain("shop/db", "shop/web", "icmp", in: compiled)
        XCTAssertEqual(ping.verdict, .deny)
        XCTAssertEqual(ping.flowText, "icmp type 8 code 0")
        XCTAssertEqual(try explain("shop/db", "shop/web", "icmp", family: .ipv6, in: compiled).flowText, "icmpv6 type 128 code 0")
        // An echo reply is not type 8: it passes the Deny rule and meets web's default deny instead.
        let reply = try explain("shop/db", "shop/web", "icmp/0", in: compiled)
        XCTAssertEqual(reply.verdict, .deny)
        XCTAssertEqual(reply.decidingRule?.comment, "default deny ingress: gnp:deny-quarantined,cnp:shop/web-rules")
        XCTAssertEqual(ping.decidingRule?.comment, "cnp:shop/web-rules ingress rule 2 Deny")
        XCTAssertTrue(ping.policies.contains("gnp:deny-quarantined"))
        XCTAssertTrue(ping.policies.contains("cnp:shop/web-rules"))

        let http = try explain("shop/db", "shop/web", "80/tcp", in: compiled)
        XCTAssertEqual(http.verdict, .allow)
        XCTAssertEqual(http.decidingRule?.comment, "cnp:shop/web-rules ingress rule 3 Allow")
        XCTAssertTrue(http.steps.contains { if case .logged = $0.event { return true }; return false }, "the Log rule ran first")
        XCTAssertEqual(verdict("shop/db", "shop/web", "81/tcp", in: compiled), .deny, "notPorts 81")
        // Pass: 203.0.113.0/24 skips the ordered policies and meets web's no-policy default (allow).
        let passed = try explain("203.0.113.5", "shop/web", "9999/tcp", in: compiled)
        XCTAssertEqual(passed.verdict, .allow)
        XCTAssertEqual(passed.decidingRule?.chain, "allow-ingress")
        XCTAssertTrue(passed.steps.contains { $0.comment == "cnp:shop/web-rules ingress rule 1 Pass" })
        XCTAssertEqual(passed.sides[1].passedBy?.comment, "cnp:shop/web-rules ingress rule 1 Pass")
        XCTAssertTrue(passed.render().contains(
            "ingress of shop/web: passed on by cnp:shop/web-rules ingress rule 1 Pass (ip saddr @net."), passed.render())
        XCTAssertTrue(passed.render().contains("goto allow-ingress), then selected by no policy: default allow\n"), passed.render())
        XCTAssertEqual(verdict("198.51.100.5", "shop/web", "80/tcp", in: compiled), .deny, "notNets")
    }

    // MARK: Resolution

    func testUnknownEndpointSuggestsCloseNames() {
        let compiled = compile()
        let query = ExplainQuery(source: .endpoint(namespace: "shop", name: "wbe"), destination: .endpoint(namespace: "shop", name: "db"),
                                 port: 80)
        XCTAssertThrowsError(try Explainer.explain(query, in: compiled)) { error in
            guard case ExplainError.unknownEndpoint(let id, let suggestions)? = error as? ExplainError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(id, "shop/wbe")
            XCTAssertEqual(suggestions, ["shop/web"])
            XCTAssertEqual("\(error)", "no endpoint shop/wbe in the state; did you mean shop/web?")
        }
        let elsewhere = ExplainQuery(source: .endpoint(namespace: "edge", name: "web"), destination: .endpoint(namespace: "shop", name: "db"))
        XCTAssertThrowsError(try Explainer.explain(elsewhere, in: compiled)) { error in
            XCTAssertEqual((error as? ExplainError).map { "\($0)" }, "no endpoint edge/web in the state; did you mean shop/web?")
        }
        XCTAssertEqual(Explainer.closeMatches("shpo/db", ["shop/db", "shop/web", "edge/gateway"]), ["shop/db"])
        XCTAssertEqual(Explainer.closeMatches("shop/web", ["shop/web-1", "shop/web-2", "shop/db"]), ["shop/web-1", "shop/web-2"])
        XCTAssertEqual(Explainer.closeMatches("shop/zzz", ["shop/db", "shop/web"]), [])
    }

    func testFamilies() throws {
        let compiled = compile()
        XCTAssertThrowsError(try explain("edge/gateway", "shop/web", "80/tcp", family: .ipv6, in: compiled)) { error in
            XCTAssertEqual(error as? ExplainError, .noAddress(endpoint: "edge/gateway", family: .ipv6))
        }
        XCTAssertThrowsError(try explain("2001:db8::99", "edge/gateway", "80/tcp", in: compiled))
        let v6 = try explain("2001:db8::99", "shop/web", "80/tcp", in: compiled)
        XCTAssertEqual(v6.family, .ipv6)
        XCTAssertEqual(v6.destination.address, Self.ip("2001:db8::11"))
    }

    func testRemoteEndpointComesThroughTheOutsideInterface() throws {
        var remote = C.gateway
        remote.nodeName = "node-9"
        let compiled = PolicyCompiler.compile(DesiredState(namespaces: Self.namespaces, endpoints: [C.web, C.db, remote],
                                                           policies: [Self.dbFromWeb]),
                                              options: CompilerOptions(nodeName: "node-1"))
        let result = try explain("edge/gateway", "shop/db", "5432/tcp", in: compiled)
        XCTAssertEqual(result.source.placement, .remote)
        XCTAssertEqual(result.source.interface, "eth0")
        XCTAssertEqual(result.verdict, .deny)
        XCTAssertTrue(result.render().contains("egress of edge/gateway: not on this node"), result.render())
    }

    func testParsePort() {
        XCTAssertEqual(ExplainQuery.parsePort("5432/tcp")?.port, 5432)
        XCTAssertEqual(ExplainQuery.parsePort("53/UDP")?.proto, .udp)
        XCTAssertEqual(ExplainQuery.parsePort("80")?.proto, .tcp)
        XCTAssertEqual(ExplainQuery.parsePort("icmp/3/1")?.proto, .icmp(type: 3, code: 1))
        XCTAssertEqual(ExplainQuery.parsePort("icmp")?.proto, .icmp(type: nil, code: nil))
        XCTAssertNil(ExplainQuery.parsePort("80/gre"))
        XCTAssertNil(ExplainQuery.parsePort("70000/tcp"))
        XCTAssertNil(ExplainQuery.parsePort("icmp/x"))
        XCTAssertEqual(ExplainTarget("shop/web"), .endpoint(namespace: "shop", name: "web"))
        XCTAssertEqual(ExplainTarget("2001:db8::1"), .address(Self.ip("2001:db8::1")))
        XCTAssertNil(ExplainTarget("web"))
    }
}
