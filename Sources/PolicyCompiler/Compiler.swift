import NftablesModel
import PolicyModel

/// What applies to one endpoint in one direction.
public enum EndpointProfile: Hashable, Sendable {
    /// Selected by these policies (ids `namespace/name`, sorted): default deny plus their union.
    case policies([String])
    /// Selected by no policy: the namespace's or the agent's default.
    case defaultAllow
    case defaultDeny

    public var description: String {
        switch self {
        case .policies(let ids): return ids.joined(separator: ",")
        case .defaultAllow: return "(default allow)"
        case .defaultDeny: return "(default deny)"
        }
    }
}

/// One endpoint as compiled: where it is dispatched and what applies to it.
public struct CompiledEndpoint: Hashable, Sendable {
    public var endpoint: Endpoint
    /// The host-side interface; nil when the endpoint is not on this node.
    public var interface: String?
    public var ingress: EndpointProfile
    public var egress: EndpointProfile
    public var ingressChain: String?
    public var egressChain: String?
}

/// A problem in the desired state that the compiler worked around (it never fails).
public struct CompilerWarning: Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

public struct CompiledRuleset: Hashable, Sendable {
    public var table: Table
    public var endpoints: [CompiledEndpoint]
    public var warnings: [CompilerWarning]
}

/// Desired state in, nftables table out. Pure: no clock, files or kernel.
public enum PolicyCompiler {
    public static func compile(_ state: DesiredState, options: CompilerOptions = CompilerOptions()) -> CompiledRuleset {
        var builder = TableBuilder(state: state, options: options)
        return builder.build()
    }
}

struct TableBuilder {
    let state: DesiredState
    let options: CompilerOptions
    var chains: [String: Chain] = [:]
    var sets: [String: NftSet] = [:]
    var warnings: [CompilerWarning] = []

    init(state: DesiredState, options: CompilerOptions) {
        self.state = state
        self.options = options
    }

    mutating func build() -> CompiledRuleset {
        addFixedChains()
        var egressDispatch = NftSet(name: Layout.egressDispatch, keyType: .ifname, dataType: .verdict)
        var ingressDispatch = NftSet(name: Layout.ingressDispatch, keyType: .ifname, dataType: .verdict)
        var compiled: [CompiledEndpoint] = []
        var interfaceOwners: [String: String] = [:]

        for endpoint in state.endpoints {
            let ingress = profile(of: endpoint, .ingress)
            let egress = profile(of: endpoint, .egress)
            var entry = CompiledEndpoint(endpoint: endpoint, interface: nil, ingress: ingress, egress: egress,
                                         ingressChain: nil, egressChain: nil)
            if isLocal(endpoint) {
                let interface = endpoint.interface ?? Naming.derivedInterface(
                    prefix: options.interfacePrefix, namespace: endpoint.namespace, name: endpoint.name)
                if let owner = interfaceOwners[interface] {
                    warnings.append(CompilerWarning(message:
                        "\(endpoint.id): interface \(interface) is already used by \(owner); \(endpoint.id) is not dispatched"))
                } else {
                    interfaceOwners[interface] = endpoint.id
                    let ingressChain = endpointChain(ingress, .ingress)
                    let egressChain = endpointChain(egress, .egress)
                    ingressDispatch.elements.insert(.interface(interface, verdict: .jump(ingressChain)))
                    egressDispatch.elements.insert(.interface(interface, verdict: .jump(egressChain)))
                    entry.interface = interface
                    entry.ingressChain = ingressChain
                    entry.egressChain = egressChain
                }
            }
            compiled.append(entry)
        }
        sets[egressDispatch.name] = egressDispatch
        sets[ingressDispatch.name] = ingressDispatch
        let table = Table(family: .inet, name: options.tableName, chains: Array(chains.values), sets: Array(sets.values))
        return CompiledRuleset(table: table, endpoints: compiled, warnings: warnings)
    }

    func isLocal(_ endpoint: Endpoint) -> Bool {
        guard let node = options.nodeName, let endpointNode = endpoint.nodeName else { return true }
        return node == endpointNode
    }

    // MARK: Fixed chains

    mutating func addFixedChains() {
        let prefix = options.interfacePrefix
        let unknown = "fail closed: workload interface not in the dispatch map"
        var forwardRules = [Rule(Match.interfaceVmap(.input, map: Layout.egressDispatch))]
        if !prefix.isEmpty {
            forwardRules.append(Rule(Match.interfacePrefix(.input, prefix) + [.counter, .verdict(.drop)], comment: unknown))
        }
        forwardRules.append(Rule(Match.interfaceVmap(.output, map: Layout.ingressDispatch)))
        var toWorkloadRules = [Rule(Match.interfaceVmap(.output, map: Layout.ingressDispatch))]
        if !prefix.isEmpty {
            let outbound = Rule(Match.interfacePrefix(.output, prefix) + [.counter, .verdict(.drop)], comment: unknown)
            forwardRules.append(outbound)
            toWorkloadRules.append(outbound)
        }
        toWorkloadRules.append(Rule([.verdict(.accept)]))
        add(Chain(name: Layout.forwardChain, hook: ChainHook(point: .forward, priority: 0, policy: .accept),
                  rules: forwardRules))
        add(Chain(name: Layout.toWorkloadChain, rules: toWorkloadRules))
    }

    mutating func add(_ chain: Chain) { chains[chain.name] = chain }

    // MARK: Endpoint chains

    func profile(of endpoint: Endpoint, _ direction: Direction) -> EndpointProfile {
        let selecting = state.policies.filter {
            $0.namespace == endpoint.namespace && $0.policyTypes.contains(direction) && $0.podSelector.matches(endpoint.labels)
        }
        if !selecting.isEmpty { return .policies(selecting.map(\.id).sorted()) }
        let fallback = state.namespaces[endpoint.namespace]?.defaultPolicy ?? options.defaultPolicy
        return fallback == .allow ? .defaultAllow : .defaultDeny
    }

    /// The chain an endpoint's dispatch entry jumps to. Endpoints with the same profile share it,
    /// so the number of chains grows with the number of distinct policy combinations, not endpoints.
    mutating func endpointChain(_ profile: EndpointProfile, _ direction: Direction) -> String {
        let allowed: Verdict = direction == .ingress ? .accept : .goto(Layout.toWorkloadChain)
        let established = Rule(Match.ctState([.established, .related]) + [.verdict(allowed)])
        let invalid = Rule(Match.ctState([.invalid]) + [.verdict(.drop)])
        switch profile {
        case .defaultAllow:
            let name = direction == .ingress ? Layout.allowIngressChain : Layout.allowEgressChain
            add(Chain(name: name, rules: [Rule([.verdict(allowed)], comment: "selected by no policy: default allow")]))
            return name
        case .defaultDeny:
            let name = direction == .ingress ? Layout.denyIngressChain : Layout.denyEgressChain
            add(Chain(name: name, rules: [
                established, invalid,
                Rule([.counter, .verdict(.drop)], comment: "selected by no policy: default deny \(direction.rawValue)"),
            ]))
            return name
        case .policies(let ids):
            let name = "ep." + Naming.shortHash(direction.rawValue + ":" + ids.joined(separator: ",")) + "." + direction.short
            var rules = [established, invalid]
            for id in ids {
                guard let policy = state.policies.first(where: { $0.id == id }) else { continue }
                rules.append(Rule([.verdict(.jump(policyChain(policy, direction)))]))
            }
            rules.append(Rule([.counter, .verdict(.drop)], comment: "default deny \(direction.rawValue): \(ids.joined(separator: ","))"))
            add(Chain(name: name, rules: rules))
            return name
        }
    }

    // MARK: Policy chains

    /// The chain holding one policy's rules for one direction; a match allows the packet.
    mutating func policyChain(_ policy: NetworkPolicy, _ direction: Direction) -> String {
        let name = Naming.readable("pol.\(policy.namespace).\(policy.name)", fallbackPrefix: "pol.",
                                   suffix: "." + direction.short)
        if chains[name] != nil { return name }
        let allowed: Verdict = direction == .ingress ? .accept : .goto(Layout.toWorkloadChain)
        var rules: [Rule] = []
        for (ruleIndex, policyRule) in policy.rules(direction).enumerated() {
            let label = "\(policy.id) \(direction.rawValue) rule \(ruleIndex)"
            for condition in conditions(for: policyRule, of: policy, direction) {
                rules.append(Rule(condition + [.verdict(allowed)], comment: label))
            }
        }
        add(Chain(name: name, rules: rules))
        return name
    }

    /// Every combination of peer and port of one policy rule, as expression lists.
    mutating func conditions(for rule: PolicyRule, of policy: NetworkPolicy, _ direction: Direction) -> [[Expr]] {
        let peerSide: AddressSide = direction == .ingress ? .source : .destination
        let peers: [PeerMatch] = rule.peers.isEmpty ? [.any] : rule.peers.flatMap { peerMatches($0, policy, peerSide) }
        let ports: [PolicyPort?] = rule.ports.isEmpty ? [nil] : rule.ports
        var result: [[Expr]] = []
        for peer in peers {
            for port in ports {
                guard let port else {
                    result.append(peer.exprs)
                    continue
                }
                switch port.port {
                case nil:
                    result.append(peer.exprs + Match.l4proto(port.proto.number))
                case .number(let first)?:
                    let range = first...(port.endPort ?? first)
                    result.append(peer.exprs + Match.destinationPort(protocol: port.proto.number, range))
                case .named(let portName)?:
                    for (address, number) in namedPortTargets(portName, port.proto, policy, direction, peer)
                    where peer.family == nil || peer.family == address.family {
                        result.append(peer.exprs
                            + Match.address(.destination, in: CIDR(address: address, prefixLength: address.family.bitCount)!)
                            + Match.destinationPort(protocol: port.proto.number, number...number))
                    }
                }
            }
        }
        return result
    }

    /// Where a named port leads: for ingress, the policy's own selected endpoints; for egress, the
    /// endpoints the peer selects. Each pair is an address and the number the name has there.
    func namedPortTargets(_ portName: String, _ proto: PortProtocol, _ policy: NetworkPolicy,
                          _ direction: Direction, _ peer: PeerMatch) -> [(IPAddress, UInt16)] {
        let candidates: [Endpoint]
        if direction == .ingress {
            candidates = state.endpoints.filter {
                $0.namespace == policy.namespace && policy.podSelector.matches($0.labels)
            }
        } else if peer.isAnyPeer {
            candidates = state.endpoints
        } else {
            guard let selector = peer.selector else { return [] }   // an ipBlock names no pods
            candidates = state.endpoints.filter { selector.matches($0, state) }
        }
        var targets: [(IPAddress, UInt16)] = []
        for endpoint in candidates {
            guard let named = endpoint.namedPorts.first(where: { $0.name == portName && $0.proto == proto }) else { continue }
            for address in endpoint.addresses { targets.append((address, named.port)) }
        }
        return targets.sorted { $0.0 < $1.0 }
    }

    mutating func peerMatches(_ peer: PolicyPeer, _ policy: NetworkPolicy, _ side: AddressSide) -> [PeerMatch] {
        switch peer {
        case .selector(let pods, let namespaces):
            let selector = PeerSelector(policyNamespace: policy.namespace, pods: pods, namespaces: namespaces)
            return IPFamily.allCases.map { family in
                PeerMatch(family: family, selector: selector,
                          exprs: Match.address(side, family, inSet: selectorSet(selector, family)))
            }
        case .ipBlock(let cidr, let except):
            return cidr.subtracting(except).map { block in
                PeerMatch(family: block.family, selector: nil, exprs: Match.address(side, in: block))
            }
        }
    }

    /// The shared set of member addresses of one peer selector in one family.
    mutating func selectorSet(_ selector: PeerSelector, _ family: IPFamily) -> String {
        let name = "sel." + Naming.shortHash(selector.canonicalText) + (family == .ipv4 ? ".v4" : ".v6")
        if sets[name] != nil { return name }
        var set = NftSet(name: name, keyType: family == .ipv4 ? .ipv4Address : .ipv6Address)
        for endpoint in state.endpoints where selector.matches(endpoint, state) {
            for address in endpoint.addresses where address.family == family {
                set.elements.insert(.address(address))
            }
        }
        sets[name] = set
        return name
    }
}

/// One peer of a policy rule as a match on the peer's address.
struct PeerMatch {
    var family: IPFamily?
    var selector: PeerSelector?
    var exprs: [Expr]
    var isAnyPeer = false
    static let any = PeerMatch(family: nil, selector: nil, exprs: [], isAnyPeer: true)
}

/// A pod and/or namespace selector as Kubernetes scopes it: without a namespace selector, the
/// policy's own namespace; without a pod selector, every pod of the selected namespaces.
struct PeerSelector: Hashable {
    var policyNamespace: String
    var pods: LabelSelector?
    var namespaces: LabelSelector?

    func matches(_ endpoint: Endpoint, _ state: DesiredState) -> Bool {
        if let namespaces {
            guard namespaces.matches(state.namespaceLabels(endpoint.namespace)) else { return false }
        } else if endpoint.namespace != policyNamespace {
            return false
        }
        return pods?.matches(endpoint.labels) ?? true
    }

    var canonicalText: String {
        let scope = namespaces.map { "namespaces" + $0.canonicalText } ?? "namespace=" + policyNamespace
        return scope + " pods" + (pods?.canonicalText ?? "*")
    }
}

extension Direction {
    var short: String { self == .ingress ? "in" : "eg" }
}
