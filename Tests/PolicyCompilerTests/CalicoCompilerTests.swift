import FlowAnalysis
import NftablesModel
import PolicyCompiler
import PolicyModel
import XCTest

/// Calico-style ordered policies: order, actions, and how they interleave with Kubernetes
/// policies (order 1000).
final class CalicoCompilerTests: XCTestCase {
    typealias C = CompilerTests

    static let quarantineDeny = CalicoPolicy(
        namespace: nil, name: "deny-quarantined", order: 10, selector: .all,
        ingress: [CalicoRule(action: .deny, source: CalicoEntityRule(selector: .equals("quarantine", "true")))],
        egress: [CalicoRule(action: .allow)])

    static let shopRules = CalicoPolicy(
        namespace: "shop", name: "web-rules", order: 500, selector: .equals("app", "web"), types: [.ingress],
        ingress: [
            CalicoRule(action: .log, proto: .tcp),
            CalicoRule(action: .pass, source: CalicoEntityRule(nets: [CIDR("203.0.113.0/24")!])),
            CalicoRule(action: .deny, proto: .icmp, icmp: ICMPMatch(type: 8)),
            CalicoRule(action: .allow, proto: .tcp,
                       source: CalicoEntityRule(notNets: [CIDR("198.51.100.0/24")!], namespaceSelector: .has("team")),
                       destination: CalicoEntityRule(ports: [.range(80...81), .named("http")], notPorts: [.range(81...81)])),
        ])

    func testOrderAndActionsGolden() throws {
        let kubernetes = NetworkPolicy(namespace: "shop", name: "web-k8s", podSelector: LabelSelector(matchLabels: ["app": "web"]),
                                       ingress: [PolicyRule(ports: [PolicyPort(proto: .tcp, port: .number(8080))])])
        let state = DesiredState(namespaces: ["shop": C.shop, "edge": C.edge], endpoints: [C.db, C.web, C.gateway],
                                 policies: [kubernetes], calicoPolicies: [Self.quarantineDeny, Self.shopRules])
        let compiled = PolicyCompiler.compile(state)
        try golden("calico", RulesetText.render(compiled.table))

        let web = try XCTUnwrap(compiled.endpoints.first { $0.endpoint.name == "web" })
        XCTAssertEqual(web.ingress, .policies(["gnp:deny-quarantined", "cnp:shop/web-rules", "shop/web-k8s"], passTo: .allow))
        // Egress: only the global policy says anything about egress.
        XCTAssertEqual(web.egress, .policies(["gnp:deny-quarantined"]))
        let chain = try XCTUnwrap(compiled.table.chains[try XCTUnwrap(web.ingressChain)])
        XCTAssertEqual(chain.rules.compactMap { rule -> String? in
            if case .verdict(.jump(let target)) = rule.exprs.last { return target }
            return nil
        }, ["gnp.deny-quarantined.in", "cnp.shop.web-rules.in.pass-allow", "pol.shop.web-k8s.in"])
        let policyChain = try XCTUnwrap(compiled.table.chains["cnp.shop.web-rules.in.pass-allow"])
        // Calico ids hold a ':', outside the literal alphabet of the prefix: the id's hash stands in.
        XCTAssertEqual(policyChain.rules.first?.exprs.last,
                       .log(group: 1, prefix: "palisade log in #\(String(PolicyReference.hash(of: "cnp:shop/web-rules"), radix: 16)) 0 "))
        XCTAssertEqual(policyChain.rules[1].exprs.last, .verdict(.goto("allow-ingress")))
    }

    func testPassLeadsToTheNamespaceDefault() {
        var locked = C.shop
        locked.defaultPolicy = .deny
        let compiled = PolicyCompiler.compile(DesiredState(namespaces: ["shop": locked], endpoints: [C.web],
                                                           calicoPolicies: [Self.shopRules]))
        XCTAssertEqual(compiled.endpoints.first?.ingress, .policies(["cnp:shop/web-rules"], passTo: .deny))
        let passRule = compiled.table.chains["cnp.shop.web-rules.in.pass-deny"]?.rules[1]
        XCTAssertEqual(passRule?.exprs.last, .verdict(.goto("deny-ingress")))
    }

    func testPoliciesWithoutOrderComeLastAndTiesGoByName() {
        let unordered = CalicoPolicy(namespace: "shop", name: "a-unordered", selector: .all, ingress: [CalicoRule(action: .allow)])
        let late = CalicoPolicy(namespace: "shop", name: "b", order: 2000, selector: .all, ingress: [CalicoRule(action: .allow)])
        let early = CalicoPolicy(namespace: "shop", name: "z", order: 5, selector: .all, ingress: [CalicoRule(action: .allow)])
        let kubernetes = NetworkPolicy(namespace: "shop", name: "k", podSelector: .everything)
        let compiled = PolicyCompiler.compile(DesiredState(endpoints: [C.web], policies: [kubernetes],
                                                           calicoPolicies: [unordered, late, early]))
        XCTAssertEqual(compiled.endpoints.first?.ingress, .policies(["cnp:shop/z", "shop/k", "cnp:shop/b", "cnp:shop/a-unordered"]))
    }

    func testNotSelectorAloneStaysInsideTheNamespace() {
        // Calico confines a namespaced rule's notSelector to the policy's namespace: "pods of shop
        // that are not web", not "every address that is not web".
        let policy = CalicoPolicy(namespace: "shop", name: "not-web", order: 1, selector: .equals("app", "db"),
                                  ingress: [CalicoRule(action: .allow, source: CalicoEntityRule(notSelector: .equals("app", "web")))])
        let compiled = PolicyCompiler.compile(DesiredState(namespaces: ["shop": C.shop, "edge": C.edge],
                                                           endpoints: [C.db, C.web, C.gateway], calicoPolicies: [policy]))
        let rules = compiled.table.chains["cnp.shop.not-web.in"]?.rules ?? []
        XCTAssertEqual(rules.count, 2)
        let v4 = rules.first { $0.exprs.contains(.payload(base: .network, offset: 12, length: 4, dreg: 1)) }
        let lookups = v4?.exprs.compactMap { expr -> (String, Bool)? in
            if case .lookup(_, let set, _, let invert) = expr { return (set, invert) }
            return nil
        } ?? []
        XCTAssertEqual(lookups.map(\.1), [false, true], "in the namespace's set, and not in the web set")
        XCTAssertEqual(compiled.table.sets[lookups[0].0]?.elements.count, 2, "shop's two pods")
        XCTAssertEqual(compiled.table.sets[lookups[1].0]?.elements, [.address(C.ip("198.18.0.11"))])
    }

    func testSelectorsThatPrintAlikeDoNotShareASet() throws {
        // `role in {"x','y"}` once printed like `role in {'x','y'}`: a crafted policy could then
        // hand its empty set to another policy's Deny rule. The texts are escaped now, and a name
        // that already stands for something else is never reused.
        let crafted = CalicoPolicy(namespace: "aaa", name: "crafted", order: 1, selector: .all,
                                   ingress: [CalicoRule(action: .allow, source: CalicoEntityRule(
                                       selector: .inSet("role", ["x','y"]), namespaceSelector: .all))])
        let victim = CalicoPolicy(namespace: "shop", name: "db", order: 2, selector: .equals("app", "db"),
                                  ingress: [CalicoRule(action: .deny, source: CalicoEntityRule(
                                      selector: .inSet("role", ["x", "y"]), namespaceSelector: .all))])
        var attacker = C.gateway
        attacker.labels["role"] = "x"
        let compiled = PolicyCompiler.compile(DesiredState(endpoints: [C.db, attacker], calicoPolicies: [crafted, victim]))
        let deny = try XCTUnwrap(compiled.table.chains["cnp.shop.db.in"]?.rules.first)
        let set = deny.exprs.compactMap { expr -> String? in
            if case .lookup(_, let name, _, _) = expr { return name }
            return nil
        }.first
        XCTAssertEqual(compiled.table.sets[set ?? ""]?.elements, [.address(C.ip("198.18.0.21"))])
    }

    func testSelectorsScopeAndImpliedLabels() {
        // A global policy selects by namespace through projectcalico.org/namespace; a namespaced
        // policy's rule selector sees only its own namespace unless a namespaceSelector widens it.
        let global = CalicoPolicy(namespace: nil, name: "edge-only", order: 1, selector: .equals("projectcalico.org/namespace", "edge"),
                                  ingress: [CalicoRule(action: .allow, source: CalicoEntityRule(selector: .has("app")))])
        let local = CalicoPolicy(namespace: "shop", name: "local", order: 1, selector: .all,
                                 ingress: [CalicoRule(action: .allow, source: CalicoEntityRule(selector: .has("app")))])
        let compiled = PolicyCompiler.compile(DesiredState(namespaces: ["shop": C.shop, "edge": C.edge],
                                                           endpoints: [C.db, C.web, C.gateway], calicoPolicies: [global, local]))
        XCTAssertEqual(compiled.endpoints.first { $0.endpoint.name == "gateway" }?.ingress, .policies(["gnp:edge-only"]))
        XCTAssertEqual(compiled.endpoints.first { $0.endpoint.name == "web" }?.ingress, .policies(["cnp:shop/local"]))
        let v4Sets = compiled.table.sets.values.filter { $0.name.hasPrefix("sel.") && $0.keyType == .ipv4Address }
        let memberships = Set(v4Sets.map { $0.elements.count })
        XCTAssertEqual(memberships, [3, 2], "the global rule sees all three pods, the namespaced one the two in shop")
    }
}
