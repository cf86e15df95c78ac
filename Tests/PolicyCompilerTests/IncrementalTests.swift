import NetworkAddress
import NftablesModel
import PolicyCompiler
import PolicyModel
import XCTest

/// The incremental path must end where a full compile of the same state ends, and its batches must
/// take the previous table there in an order the kernel accepts.
final class IncrementalTests: XCTestCase {
    /// A small deterministic generator (SplitMix64), so a failure can be replayed from its seed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    }

    static let namespaces = ["shop", "edge", "ops"]
    static let apps = ["web", "db", "cache", "api"]

    static func policies() -> (kubernetes: [NetworkPolicy], calico: [CalicoPolicy]) {
        let kubernetes = [
            NetworkPolicy(namespace: "shop", name: "db-from-web", podSelector: LabelSelector(matchLabels: ["app": "db"]),
                          ingress: [PolicyRule(peers: [.selector(pods: LabelSelector(matchLabels: ["app": "web"]), namespaces: nil)],
                                               ports: [PolicyPort(proto: .tcp, port: .number(5432))])]),
            NetworkPolicy(namespace: "shop", name: "web-named", podSelector: LabelSelector(matchLabels: ["app": "web"]),
                          ingress: [PolicyRule(peers: [.selector(pods: nil, namespaces: LabelSelector(matchLabels: ["zone": "dmz"]))],
                                               ports: [PolicyPort(proto: .tcp, port: .named("http"))])]),
            NetworkPolicy(namespace: "edge", name: "deny-all", podSelector: LabelSelector(), policyTypes: [.ingress, .egress]),
            NetworkPolicy(namespace: "ops", name: "api-egress", podSelector: LabelSelector(matchLabels: ["app": "api"]),
                          policyTypes: [.egress],
                          egress: [PolicyRule(peers: [.selector(pods: LabelSelector(matchLabels: ["tier": "gold"]),
                                                                      namespaces: LabelSelector())])]),
        ]
        let calico = [
            CalicoPolicy(namespace: nil, name: "gold-deny", order: 10, selector: .equals("tier", "gold"),
                         ingress: [CalicoRule(action: .deny, source: CalicoEntityRule(selector: .equals("app", "cache")))],
                         egress: [CalicoRule(action: .allow)]),
            CalicoPolicy(namespace: "shop", name: "cache-pass", order: 500, selector: .equals("app", "cache"), types: [.ingress],
                         ingress: [CalicoRule(action: .pass, source: CalicoEntityRule(nets: [CIDR("198.51.100.0/24")!])),
                                   CalicoRule(action: .allow, proto: .tcp, source: CalicoEntityRule(selector: .has("tier")))]),
        ]
        return (kubernetes, calico)
    }

    static func endpoint(_ random: inout Random, index: Int) -> Endpoint {
        let namespace = random.pick(namespaces)
        var labels = ["app": random.pick(apps)]
        if random.chance(40) { labels["tier"] = random.pick(["gold", "silver"]) }
        var addresses = [IPAddress("198.18.\(index / 200).\(index % 200 + 1)")!]
        if random.chance(50) { addresses.append(IPAddress("2001:db8::\(String(index, radix: 16))")!) }
        // Sometimes an address another endpoint has too (a stale pod), to exercise shared elements.
        if random.chance(10) { addresses = [IPAddress("198.18.9.\(random.below(4) + 1)")!] }
        var ports: [NamedPort] = []
        if random.chance(50) { ports.append(NamedPort(name: "http", port: UInt16(8000 + random.below(3)), proto: .tcp)) }
        // A few interfaces are shared (a collision) or lack the prefix.
        let interface: String? = random.chance(10) ? "pl-shared\(random.below(2))" : random.chance(5) ? "eth\(index)" : nil
        var endpoint = Endpoint(namespace: namespace, name: "pod\(index)", labels: labels, addresses: addresses,
                                interface: interface, nodeName: random.chance(10) ? "other-node" : "node-a", namedPorts: ports)
        if random.chance(30) { endpoint.uid = "uid-\(random.below(3))" }
        return endpoint
    }

    func testRandomChangeSequencesMatchAFullCompile() throws {
        for seed in UInt64(1)...UInt64(12) {
            try run(seed: seed, steps: 60)
        }
    }

    func run(seed: UInt64, steps: Int) throws {
        var random = Random(state: seed)
        let (kubernetes, calico) = Self.policies()
        var state = DesiredState(
            namespaces: ["shop": Namespace(name: "shop", labels: ["team": "storefront"]),
                         "edge": Namespace(name: "edge", labels: ["zone": "dmz"], defaultPolicy: .deny)],
            policies: kubernetes, calicoPolicies: calico)
        var nextIndex = 0
        for _ in 0..<random.below(12) {
            let endpoint = Self.endpoint(&random, index: nextIndex)
            nextIndex += 1
            state.setEndpoint(endpoint.id, endpoint)
        }
        var options = CompilerOptions()
        options.nodeName = "node-a"
        options.quarantineExemption = seed % 2 == 0 ? .equals("app", "api") : nil
        let session = CompilerSession(state: state, options: options)
        var kernel = session.table
        for step in 0..<steps {
            var changes = EndpointChanges()
            let existing = session.state.endpoints
            for _ in 0..<(1 + random.below(3)) {
                switch random.below(7) {
                case 0, 1:
                    let endpoint = Self.endpoint(&random, index: nextIndex)
                    nextIndex += 1
                    changes.endpoints[endpoint.id] = endpoint
                case 2 where !existing.isEmpty:
                    changes.endpoints[random.pick(existing).id] = .some(nil)
                case 3 where !existing.isEmpty:
                    var endpoint = random.pick(existing)
                    endpoint.labels["app"] = random.pick(Self.apps)
                    endpoint.labels["tier"] = random.chance(50) ? nil : random.pick(["gold", "silver"])
                    changes.endpoints[endpoint.id] = endpoint
                case 4 where !existing.isEmpty:
                    // Same name, new pod: other addresses, interface, uid.
                    let old = random.pick(existing)
                    var endpoint = Self.endpoint(&random, index: nextIndex)
                    nextIndex += 1
                    endpoint.namespace = old.namespace
                    endpoint.name = old.name
                    changes.endpoints[endpoint.id] = endpoint
                case 5 where !existing.isEmpty:
                    let target = random.pick(existing)
                    var quarantines = session.state.quarantines
                    if let index = quarantines.firstIndex(where: { $0.podID == target.id }) {
                        quarantines.remove(at: index)
                    } else {
                        quarantines.append(Quarantine(namespace: target.namespace, name: target.name, reason: "test",
                                                      podUID: random.chance(50) ? target.uid : "uid-other",
                                                      futurePods: random.chance(30)))
                    }
                    changes.quarantines = quarantines
                case 6 where !existing.isEmpty:
                    let target = random.pick(existing)
                    changes.endpoints[target.id] = .some(nil)
                    changes.skippedPods[target.id] = SkippedPod(namespace: target.namespace, name: target.name, reason: .noAddress)
                default:
                    break
                }
            }
            let batch = session.apply(changes)
            var expectedState = session.state
            expectedState.quarantines.sort { $0.podID < $1.podID }
            let full = PolicyCompiler.compile(expectedState, options: options)
            let context = "seed \(seed) step \(step)"
            XCTAssertEqual(session.table, full.table, context)
            if session.table != full.table {
                XCTFail("\(context): differs in chains \(Set(session.table.chains.keys).symmetricDifference(full.table.chains.keys)), sets \(Set(session.table.sets.keys).symmetricDifference(full.table.sets.keys)), elements of \(full.table.sets.keys.filter { session.table.sets[$0]?.elements != full.table.sets[$0]?.elements })")
                return
            }
            XCTAssertEqual(session.ruleset.endpoints, full.endpoints, context)
            XCTAssertEqual(session.ruleset.warnings, full.warnings, context)
            XCTAssertEqual(session.localEndpoints, full.endpoints.filter { $0.interface != nil }.count, context)
            XCTAssertEqual(session.quarantinedEndpoints, full.endpoints.filter { $0.interface != nil && $0.quarantine != nil }.count, context)
            XCTAssertEqual(session.setElements, full.table.sets.values.reduce(0) { $0 + $1.elements.count }, context)
            for change in batch {
                do { try kernel.apply(change) } catch {
                    XCTFail("\(context): the kernel model refuses \(error)")
                    return
                }
            }
            XCTAssertEqual(kernel, full.table, "\(context): the batch does not lead to the compiled table")
        }
    }

    /// A pod that joins a group that already has chains costs only element changes: no chain, rule
    /// or jump is added (the kernel re-validates the chain graph for every new jump).
    func testAPodLikeOthersCostsOnlyElements() {
        var random = Random(state: 99)
        let (kubernetes, calico) = Self.policies()
        var state = DesiredState(namespaces: [:], policies: kubernetes, calicoPolicies: calico)
        var template = Self.endpoint(&random, index: 0)
        template.namespace = "shop"
        template.labels = ["app": "web"]
        template.interface = nil
        template.nodeName = nil
        state.setEndpoint(template.id, template)
        let session = CompilerSession(state: state)
        var second = template
        second.name = "pod-second"
        second.addresses = [IPAddress("198.18.7.7")!]
        let batch = session.apply(EndpointChanges(endpoints: [second.id: second]))
        XCTAssertFalse(batch.isEmpty)
        for change in batch {
            switch change {
            case .addElements, .deleteElements: continue
            default: XCTFail("unexpected \(change.summary)")
            }
        }
        // And its removal takes exactly those elements out again.
        let removal = session.apply(EndpointChanges(endpoints: [second.id: Endpoint?.none]))
        XCTAssertEqual(removal.count, batch.count)
        XCTAssertTrue(session.apply(EndpointChanges()).isEmpty)
    }
}
