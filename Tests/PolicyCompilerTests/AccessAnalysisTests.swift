import NetworkAddress
import PolicyCompiler
import PolicyModel
import XCTest

/// The access review's coarse answers, from profiles and allow rules.
final class AccessAnalysisTests: XCTestCase {
    typealias C = CompilerTests

    func access(_ policies: [NetworkPolicy], calico: [CalicoPolicy] = [], of name: String = "db") throws -> Access {
        let state = DesiredState(namespaces: ["shop": C.shop, "edge": C.edge], endpoints: [C.db, C.web, C.gateway],
                                 policies: policies, calicoPolicies: calico)
        let compiled = PolicyCompiler.compile(state)
        var analyzer = AccessAnalyzer(state: state)
        return analyzer.access(of: try XCTUnwrap(compiled.endpoints.first { $0.endpoint.name == name }))
    }

    func testUnselectedEndpointsAreOpenAndDenyAllClosesThem() throws {
        XCTAssertEqual(try access([]), Access(ingressFromInternet: true, egressToInternet: true,
                                              ingressFromOtherNamespaces: true, egressToOtherNamespaces: true))
        let denyAll = NetworkPolicy(namespace: "shop", name: "deny-all", podSelector: .everything, policyTypes: [.ingress, .egress])
        XCTAssertEqual(try access([denyAll]), Access())
    }

    func testPeersDecide() throws {
        let sameNamespace = NetworkPolicy(namespace: "shop", name: "from-web", podSelector: LabelSelector(matchLabels: ["app": "db"]),
                                          ingress: [PolicyRule(peers: [.selector(pods: LabelSelector(matchLabels: ["app": "web"]), namespaces: nil)])])
        var result = try access([sameNamespace])
        XCTAssertFalse(result.ingressFromInternet)
        XCTAssertFalse(result.ingressFromOtherNamespaces)
        XCTAssertTrue(result.egressToInternet, "egress is not selected: default allow")

        let fromEdge = NetworkPolicy(namespace: "shop", name: "from-edge", podSelector: LabelSelector(matchLabels: ["app": "db"]),
                                     ingress: [PolicyRule(peers: [.selector(pods: nil, namespaces: LabelSelector(matchLabels: ["zone": "dmz"]))])])
        result = try access([fromEdge])
        XCTAssertTrue(result.ingressFromOtherNamespaces)
        XCTAssertFalse(result.ingressFromInternet)

        let fromPartner = NetworkPolicy(namespace: "shop", name: "partner", podSelector: LabelSelector(matchLabels: ["app": "db"]),
                                        ingress: [PolicyRule(peers: [.ipBlock(cidr: CIDR("203.0.113.0/24")!, except: [])])])
        result = try access([fromPartner])
        XCTAssertTrue(result.ingressFromInternet)
        XCTAssertFalse(result.ingressFromOtherNamespaces)

        let fromCluster = NetworkPolicy(namespace: "shop", name: "cluster", podSelector: LabelSelector(matchLabels: ["app": "db"]),
                                        ingress: [PolicyRule(peers: [.ipBlock(cidr: CIDR("198.18.0.0/16")!, except: [])])])
        result = try access([fromCluster])
        XCTAssertFalse(result.ingressFromInternet, "inside the cluster's networks")
        XCTAssertTrue(result.ingressFromOtherNamespaces)

        let anyPeer = NetworkPolicy(namespace: "shop", name: "any", podSelector: LabelSelector(matchLabels: ["app": "db"]),
                                    ingress: [PolicyRule(ports: [PolicyPort(proto: .tcp, port: .number(5432))])])
        XCTAssertTrue(try access([anyPeer]).ingressFromInternet, "no peers: everyone, on that port")
    }
}
