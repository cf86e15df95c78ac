import FlowAnalysis
import NftablesModel
import PolicyModel

/// What applies to one endpoint in one direction.
public enum EndpointProfile: Hashable, Sendable {
    /// Selected by these policies, in evaluation order (Calico order, Kubernetes policies at
    /// 1000; ties by id): default deny at the end. `passTo` is where a Calico `Pass` leads: the
    /// endpoint's no-policy default (nil when no policy here has a Pass rule).
    case policies([String], passTo: DefaultPolicy? = nil)
    /// Selected by no policy: the namespace's or the agent's default.
    case defaultAllow
    case defaultDeny

    public var description: String {
        switch self {
        case .policies(let ids, _): return ids.joined(separator: ",")
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
    /// The quarantine in force for this endpoint: its dispatch entries lead to the quarantine chains.
    public var quarantine: Quarantine? {
        get { quarantineBox?.value }
        set { quarantineBox = newValue.map(QuarantineBox.init) }
    }
    /// Boxed: few endpoints are quarantined, and inline the quarantine would make every compiled
    /// endpoint some 140 bytes larger (a session holds one per pod).
    private var quarantineBox: QuarantineBox?

    init(endpoint: Endpoint, interface: String?, ingress: EndpointProfile, egress: EndpointProfile,
         ingressChain: String?, egressChain: String?, quarantine: Quarantine?) {
        self.endpoint = endpoint; self.interface = interface; self.ingress = ingress; self.egress = egress
        self.ingressChain = ingressChain; self.egressChain = egressChain
        self.quarantineBox = quarantine.map(QuarantineBox.init)
    }
}

/// A quarantine behind one reference, compared and hashed by value.
final class QuarantineBox: Hashable, Sendable {
    let value: Quarantine
    init(_ value: Quarantine) { self.value = value }
    static func == (a: QuarantineBox, b: QuarantineBox) -> Bool { a.value == b.value }
    func hash(into hasher: inout Hasher) { hasher.combine(value) }
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

/// A policy of either dialect, as the endpoint chains see it: an id, an order, and a chain.
struct OrderedPolicy {
    enum Source {
        case kubernetes(NetworkPolicy)
        case calico(CalicoPolicy)
    }
    var source: Source
    var id: String
    var order: Double

    /// Kubernetes policies sit at order 1000 among Calico's ordered policies, as in Calico; a
    /// Calico policy without an order comes after every ordered one.
    static let kubernetesOrder = 1000.0

    init(_ policy: NetworkPolicy) {
        source = .kubernetes(policy)
        id = policy.id
        order = Self.kubernetesOrder
    }

    init(_ policy: CalicoPolicy) {
        source = .calico(policy)
        id = policy.profileID
        order = policy.order ?? .infinity
    }

    func hasPass(_ direction: Direction) -> Bool {
        guard case .calico(let policy) = source else { return false }
        return policy.rules(direction).contains { $0.action == .pass }
    }
}

public extension CalicoPolicy {
    /// How profiles, comments and explain name the policy: `cnp:NAMESPACE/NAME` or `gnp:NAME`
    /// (Kubernetes policies are plain `NAMESPACE/NAME`).
    var profileID: String { isGlobal ? "gnp:\(name)" : "cnp:\(namespace ?? "")/\(name)" }
}

public extension EndpointProfile {
    var policyIDs: [String] {
        if case .policies(let ids, _) = self { return ids }
        return []
    }
}


struct TableBuilder {
    var state: DesiredState
    let options: CompilerOptions
    var chains: [String: Chain] = [:]
    var sets: [String: NftSet] = [:]
    /// What each derived kernel name stands for. Names are hashes of their meaning; if two meanings
    /// ever hash alike (or a crafted policy tries to make them), the second gets another name
    /// instead of silently sharing the first one's set or chain.
    var meanings: [String: String] = [:]
    /// Endpoint chains already built, by profile: most endpoints share one.
    var chainOfProfile: [Direction: [EndpointProfile: String]] = [:]
    let policiesByID: [String: OrderedPolicy]
    /// Indices into `state.policies` / `state.calicoPolicies` by namespace (global Calico policies
    /// apart), so finding an endpoint's policies looks only at those that can select it.
    let kubernetesByNamespace: [String: [Int]]
    let calicoByNamespace: [String: [Int]]
    let calicoGlobal: [Int]

    // What an incremental update needs to know about the objects built so far.
    /// The sets whose elements are endpoint addresses (or address . named port), by name: the
    /// sets a pod's change can edit.
    var memberships: [String: Membership] = [:]
    /// Local endpoints (by id) that claim each interface.
    var claimants: [String: [String]] = [:]
    /// How many dispatch entries lead to each chain, and how many references the rules of the
    /// chains built so far make to each chain and set: what nothing refers to any more goes
    /// (`collect`), as a full compile would not have built it.
    var dispatchUsers: [String: Int] = [:]
    var references: [String: Int] = [:]
    /// Chains and sets built since the journal was last cleared, in order.
    var newChains: [String] = []
    var newSets: [String] = []
    /// Every profile seen, so endpoints share their storage.
    var profiles: Set<EndpointProfile> = []
    /// Endpoint indices by namespace, while a full build runs (indices change with later edits).
    var endpointsOfNamespace: [String: [Int]]?
    /// The warning about each endpoint, by id (of the last build).
    var warningOf: [String: CompilerWarning] = [:]

    struct Membership {
        var selection: EndpointSelection
        var family: IPFamily
        /// For an `address . port` set: the container port's name and protocol.
        var namedPort: (name: String, proto: UInt8)?
    }

    init(state: DesiredState, options: CompilerOptions) {
        self.state = state
        self.options = options
        var byID: [String: OrderedPolicy] = [:]
        for policy in state.policies { byID[OrderedPolicy(policy).id] = OrderedPolicy(policy) }
        for policy in state.calicoPolicies { byID[OrderedPolicy(policy).id] = OrderedPolicy(policy) }
        policiesByID = byID
        var kubernetes: [String: [Int]] = [:]
        for index in state.policies.indices { kubernetes[state.policies[index].namespace, default: []].append(index) }
        kubernetesByNamespace = kubernetes
        var calico: [String: [Int]] = [:]
        var global: [Int] = []
        for index in state.calicoPolicies.indices {
            if let namespace = state.calicoPolicies[index].namespace {
                calico[namespace, default: []].append(index)
            } else {
                global.append(index)
            }
        }
        calicoByNamespace = calico
        calicoGlobal = global
    }

    mutating func build() -> CompiledRuleset {
        var byNamespace: [String: [Int]] = [:]
        for index in state.endpoints.indices { byNamespace[state.endpoints[index].namespace, default: []].append(index) }
        endpointsOfNamespace = byNamespace
        defer { endpointsOfNamespace = nil }
        addFixedChains()
        putSet(NftSet(name: Layout.quarantinedInterfaces, keyType: .ifname))
        putSet(NftSet(name: Layout.egressDispatch, keyType: .ifname, dataType: .verdict))
        putSet(NftSet(name: Layout.ingressDispatch, keyType: .ifname, dataType: .verdict))
        putSet(NftSet(name: Layout.sourceAddresses(.ipv4), keyType: .ifnameIPv4Address))
        putSet(NftSet(name: Layout.sourceAddresses(.ipv6), keyType: .ifnameIPv6Address))
        // One element per local endpoint in each (two per address family): room for all at once.
        for name in [Layout.ingressDispatch, Layout.egressDispatch, Layout.sourceAddresses(.ipv4), Layout.sourceAddresses(.ipv6)] {
            sets[name]?.elements.reserveCapacity(state.endpoints.count)
        }
        for endpoint in state.endpoints where isLocal(endpoint) {
            claimants[interface(of: endpoint), default: []].append(endpoint.id)
        }
        var compiled: [CompiledEndpoint] = []
        var warnings: [CompilerWarning] = []
        compiled.reserveCapacity(state.endpoints.count)
        for endpoint in state.endpoints {
            let (entry, warning) = compileEndpoint(endpoint)
            compiled.append(entry)
            if let warning {
                warnings.append(warning)
                warningOf[endpoint.id] = warning
            }
        }
        return CompiledRuleset(table: table, endpoints: compiled, warnings: warnings)
    }

    var table: Table {
        var table = Table(family: .inet, name: options.tableName)
        table.chains = chains
        table.sets = sets
        return table
    }

    /// One endpoint: its profiles, and (if it is dispatched here) its dispatch entries, which go
    /// into the dispatch maps. Which interface it may claim depends on `claimants`.
    mutating func compileEndpoint(_ endpoint: Endpoint) -> (CompiledEndpoint, CompilerWarning?) {
        // One stored copy of each distinct profile: ten thousand endpoints share a few hundred.
        let computed = profiles(of: endpoint)
        let ingress = profiles.insert(computed.ingress).memberAfterInsert
        let egress = profiles.insert(computed.egress).memberAfterInsert
        var entry = CompiledEndpoint(endpoint: endpoint, interface: nil, ingress: ingress, egress: egress,
                                     ingressChain: nil, egressChain: nil, quarantine: state.quarantine(of: endpoint))
        guard isLocal(endpoint) else { return (entry, nil) }
        // Which local endpoint claims which interface. An interface claimed twice is dispatched to
        // nobody (the prefix rule then drops its packets): letting one claimant win would let a pod
        // take over another's interface, quarantine included. An interface without the workload
        // prefix is not dispatched either: the agent only governs workload interfaces.
        let interface = interface(of: endpoint)
        let owners = claimants[interface] ?? []
        if owners.count > 1 {
            return (entry, CompilerWarning(message:
                "\(endpoint.id): interface \(interface) is also claimed by \(owners.filter { $0 != endpoint.id }.sorted().joined(separator: ", ")); none of them is dispatched (their traffic is dropped)"))
        }
        if !options.interfacePrefix.isEmpty && !interface.hasPrefix(options.interfacePrefix) {
            return (entry, CompilerWarning(message:
                "\(endpoint.id): interface \(interface) does not start with the workload prefix \(options.interfacePrefix); it is not dispatched"))
        }
        // A quarantined endpoint's entries jump straight to the quarantine chains, ahead of the
        // established-state check: live connections stop as well.
        let ingressChain = entry.quarantine == nil ? endpointChain(ingress, .ingress) : quarantineChain(.ingress)
        let egressChain = entry.quarantine == nil ? endpointChain(egress, .egress) : quarantineChain(.egress)
        entry.interface = interface
        entry.ingressChain = ingressChain
        entry.egressChain = egressChain
        for element in entry.dispatchElements { sets[element.set]?.elements.insert(element.element) }
        dispatchUsers[ingressChain, default: 0] += 1
        dispatchUsers[egressChain, default: 0] += 1
        return (entry, nil)
    }

    /// Takes an endpoint's dispatch entries out of the maps. Returns the chains that lost their
    /// last dispatch entry (candidates for `collect`).
    mutating func removeDispatch(of entry: CompiledEndpoint) -> [String] {
        var orphaned: [String] = []
        for element in entry.dispatchElements { sets[element.set]?.elements.remove(element.element) }
        for chain in [entry.ingressChain, entry.egressChain].compactMap({ $0 }) {
            let users = (dispatchUsers[chain] ?? 1) - 1
            dispatchUsers[chain] = users > 0 ? users : nil
            if users <= 0 { orphaned.append(chain) }
        }
        return orphaned
    }

    /// Stores a set and notes it in the journal.
    mutating func putSet(_ set: NftSet) {
        sets[set.name] = set
        newSets.append(set.name)
    }

    func interface(of endpoint: Endpoint) -> String {
        endpoint.interface ?? Naming.derivedInterface(prefix: options.interfacePrefix, namespace: endpoint.namespace, name: endpoint.name)
    }

    func isLocal(_ endpoint: Endpoint) -> Bool {
        guard let node = options.nodeName, let endpointNode = endpoint.nodeName else { return true }
        return node == endpointNode
    }

    // MARK: Fixed chains

    mutating func addFixedChains() {
        let prefix = options.interfacePrefix
        let unknown = "fail closed: workload interface not in the dispatch map"
        var forwardRules: [Rule] = []
        if !prefix.isEmpty {
            // A workload sends only from its own addresses: rules that trust a source address
            // (every ingress rule naming pods) would otherwise trust a forged one.
            for family in IPFamily.allCases {
                forwardRules.append(Rule(Match.interfacePrefix(.input, prefix)
                                         + Match.interfaceSourceAddress(family, inSet: Layout.sourceAddresses(family), invert: true)
                                         + [.counter, .verdict(.drop)], comment: "spoofed source address"))
            }
        }
        forwardRules.append(Rule(Match.interfaceVmap(.input, map: Layout.egressDispatch)))
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
        // A quarantined pod is cut off from its node too (kubelet, hostNetwork services), whatever
        // nodeToWorkload says: these base chains see the node's own traffic, which forward does not.
        let toQuarantined = Rule(Match.interfaceInSet(.output, Layout.quarantinedInterfaces) + [.counter, .verdict(.drop)],
                                 comment: "quarantined: nothing from the node")
        let fromQuarantined = Rule(Match.interfaceInSet(.input, Layout.quarantinedInterfaces) + [.counter, .verdict(.drop)],
                                   comment: "quarantined: nothing to the node")
        add(Chain(name: Layout.inputChain, hook: ChainHook(point: .input, priority: 0, policy: .accept), rules: [fromQuarantined]))
        if options.nodeToWorkload == .policy {
            // Traffic the node itself sends to its pods (kubelet probes among it) is judged by the
            // pods' ingress policy like any other source.
            var outputRules = [toQuarantined, Rule(Match.interfaceVmap(.output, map: Layout.ingressDispatch))]
            if !prefix.isEmpty {
                outputRules.append(Rule(Match.interfacePrefix(.output, prefix) + [.counter, .verdict(.drop)], comment: unknown))
            }
            add(Chain(name: Layout.outputChain, hook: ChainHook(point: .output, priority: 0, policy: .accept), rules: outputRules))
        } else {
            add(Chain(name: Layout.outputChain, hook: ChainHook(point: .output, priority: 0, policy: .accept), rules: [toQuarantined]))
        }
    }

    mutating func add(_ chain: Chain) {
        guard chains.updateValue(chain, forKey: chain.name) == nil else { return }
        newChains.append(chain.name)
        for target in Self.targets(of: chain) { references[target, default: 0] += 1 }
    }

    /// The chains a chain's rules jump or go to and the sets they look up, once per reference.
    static func targets(of chain: Chain) -> [String] {
        var targets: [String] = []
        for rule in chain.rules {
            for expr in rule.exprs {
                switch expr {
                case .verdict(let verdict): if let target = verdict.chain { targets.append(target) }
                case .lookup(_, let set, _, _): targets.append(set)
                default: break
                }
            }
        }
        return targets
    }

    /// The name for an object that means `meaning`, derived from `base`: `base` itself unless it
    /// already stands for something else. `isNew` says whether the object still has to be built.
    mutating func claim(_ base: String, meaning: String) -> (name: String, isNew: Bool) {
        var name = base
        var attempt = 1
        while let existing = meanings[name] {
            if existing == meaning { return (name, false) }
            attempt += 1
            name = base + ".\(attempt)"
        }
        meanings[name] = meaning
        return (name, true)
    }

    // MARK: Quarantine

    /// Logs and drops everything, except (optionally) traffic with endpoints the configured
    /// exemption selector names, such as a forensics scanner: it may reach the quarantined pod, and
    /// the pod may answer it, but not open connections to it.
    mutating func quarantineChain(_ direction: Direction) -> String {
        let name = direction == .ingress ? Layout.quarantineIngressChain : Layout.quarantineEgressChain
        if chains[name] != nil { return name }
        var rules: [Rule] = []
        if let exemption = options.quarantineExemption {
            let selection = EndpointSelection.calico(namespace: nil, namespaceSelector: nil, selector: exemption)
            let peerSide: AddressSide = direction == .ingress ? .source : .destination
            let replies = direction == .ingress ? Condition.always : Condition(nil, Match.ctState([.established, .related]))
            for alternative in replies.and(selectionCondition(selection, peerSide)).alternatives {
                rules.append(Rule(alternative.exprs + [.verdict(allowed(direction))], comment: "quarantine exemption"))
            }
        }
        rules.append(Rule([.log(group: options.logGroup, prefix: LogPrefix.quarantine(reporter: direction.reporter).text), .counter,
                           .verdict(.drop)], comment: "quarantined"))
        add(Chain(name: name, rules: rules))
        return name
    }

    // MARK: Endpoint chains

    func defaultPolicy(of endpoint: Endpoint) -> DefaultPolicy {
        state.namespaces[endpoint.namespace]?.defaultPolicy ?? options.defaultPolicy
    }

    /// Which policies select the endpoint, for both directions in one pass over the policies of
    /// its namespace (a selector matches or not whatever the direction).
    func profiles(of endpoint: Endpoint) -> (ingress: EndpointProfile, egress: EndpointProfile) {
        typealias Selecting = (order: Double, id: String, passes: Bool)
        var ingress: [Selecting] = [], egress: [Selecting] = []
        // Members are read in place (state.policies[index].x): copying the policy values out of the
        // array costs more than the matching itself at ten thousand endpoints.
        for index in kubernetesByNamespace[endpoint.namespace] ?? [] {
            let types = state.policies[index].policyTypes
            guard !types.isEmpty, state.policies[index].podSelector.matches(endpoint.labels) else { continue }
            if types.contains(.ingress) { ingress.append((OrderedPolicy.kubernetesOrder, state.policies[index].id, false)) }
            if types.contains(.egress) { egress.append((OrderedPolicy.kubernetesOrder, state.policies[index].id, false)) }
        }
        var namespaceLabels: [String: String]?
        func addCalico(_ indices: [Int]) {
            for index in indices {
                let types = state.calicoPolicies[index].types
                guard !types.isEmpty else { continue }
                if let namespaceSelector = state.calicoPolicies[index].namespaceSelector {
                    if namespaceLabels == nil { namespaceLabels = CalicoLabels.namespace(endpoint.namespace, state) }
                    guard namespaceSelector.matches(namespaceLabels!) else { continue }
                }
                guard CalicoLabels.matches(state.calicoPolicies[index].selector, endpoint) else { continue }
                let order = state.calicoPolicies[index].order ?? .infinity
                for direction in types {
                    let entry = (order, state.calicoPolicies[index].profileID,
                                 state.calicoPolicies[index].rules(direction).contains { $0.action == .pass })
                    if direction == .ingress { ingress.append(entry) } else { egress.append(entry) }
                }
            }
        }
        addCalico(calicoByNamespace[endpoint.namespace] ?? [])
        addCalico(calicoGlobal)
        let fallback = defaultPolicy(of: endpoint)
        func profile(_ selecting: inout [Selecting]) -> EndpointProfile {
            if selecting.isEmpty { return fallback == .allow ? .defaultAllow : .defaultDeny }
            selecting.sort { ($0.order, $0.id) < ($1.order, $1.id) }
            let passes = selecting.contains { $0.passes }
            return .policies(selecting.map(\.id), passTo: passes ? fallback : nil)
        }
        return (profile(&ingress), profile(&egress))
    }

    func allowed(_ direction: Direction) -> Verdict {
        direction == .ingress ? .accept : .goto(Layout.toWorkloadChain)
    }

    mutating func defaultChain(_ policy: DefaultPolicy, _ direction: Direction) -> String {
        let established = Rule(Match.ctState([.established, .related]) + [.verdict(allowed(direction))])
        let invalid = Rule(Match.ctState([.invalid]) + [.verdict(.drop)])
        switch policy {
        case .allow:
            let name = direction == .ingress ? Layout.allowIngressChain : Layout.allowEgressChain
            // The established rule changes no verdict; it makes the chain use conntrack, which the
            // kernel only tracks connections for in a namespace once some rule needs it (and the
            // flow log needs conntrack's events for every connection, allowed ones included).
            add(Chain(name: name, rules: [
                established,
                Rule(flowLog(.defaultPolicy(action: .allow, reporter: direction.reporter), allowed: true)
                     + [.verdict(allowed(direction))], comment: "selected by no policy: default allow"),
            ]))
            return name
        case .deny:
            let name = direction == .ingress ? Layout.denyIngressChain : Layout.denyEgressChain
            add(Chain(name: name, rules: [
                established, invalid,
                Rule(flowLog(.defaultPolicy(action: .deny, reporter: direction.reporter), allowed: false) + [.counter, .verdict(.drop)],
                     comment: "selected by no policy: default deny \(direction.rawValue)"),
            ]))
            return name
        }
    }

    /// The chain an endpoint's dispatch entry jumps to. Endpoints with the same profile share it,
    /// so the number of chains grows with the number of distinct policy combinations, not endpoints.
    mutating func endpointChain(_ profile: EndpointProfile, _ direction: Direction) -> String {
        if let known = chainOfProfile[direction]?[profile] { return known }
        let name = buildEndpointChain(profile, direction)
        chainOfProfile[direction, default: [:]][profile] = name
        return name
    }

    mutating func buildEndpointChain(_ profile: EndpointProfile, _ direction: Direction) -> String {
        switch profile {
        case .defaultAllow: return defaultChain(.allow, direction)
        case .defaultDeny: return defaultChain(.deny, direction)
        case .policies(let ids, let passTo):
            let key = direction.rawValue + ":" + ids.joined(separator: "\u{0}") + ":" + (passTo?.rawValue ?? "")
            let (name, isNew) = claim("ep." + Naming.shortHash(key) + "." + direction.short, meaning: "endpoint " + key)
            if !isNew { return name }
            var rules = [
                Rule(Match.ctState([.established, .related]) + [.verdict(allowed(direction))]),
                Rule(Match.ctState([.invalid]) + [.verdict(.drop)]),
            ]
            for id in ids {
                guard let policy = policiesByID[id] else { continue }
                let entry = policyEntry(policy, direction)
                // A policy none of whose rules can match here is not entered at all.
                if entry.isEmpty { continue }
                let target = policyChain(policy, direction, passTo: passTo)
                for condition in entry { rules.append(Rule(condition + [.verdict(.jump(target))])) }
            }
            rules.append(Rule(flowLog(.defaultPolicy(action: .deny, reporter: direction.reporter), allowed: false) + [.counter, .verdict(.drop)],
                              comment: "default deny \(direction.rawValue): \(ids.joined(separator: ","))"))
            add(Chain(name: name, rules: rules))
            return name
        }
    }

    /// The conditions under which the endpoint chain enters a policy's chain, one rule each: no
    /// condition (always) for a Calico policy and for a Kubernetes policy with a rule open to every
    /// port; none at all for a Kubernetes policy with no rules in this direction (it only makes the
    /// endpoint default-deny, which the endpoint chain's last rule does); else one per protocol its
    /// rules name, on the ports they name (`meta l4proto tcp th dport 8080`, a range, or a port
    /// set; the protocol alone when a rule names a port by name or none). A packet to another
    /// port then costs one compare instead of a jump through the policy's chain and its rules.
    mutating func policyEntry(_ policy: OrderedPolicy, _ direction: Direction) -> [[Expr]] {
        guard case .kubernetes(let k8s) = policy.source else { return [[]] }
        let rules = k8s.rules(direction)
        var ranges: [UInt8: [ClosedRange<UInt16>]] = [:]
        var anyPort: Set<UInt8> = []
        for rule in rules {
            if rule.ports.isEmpty { return [[]] }
            for port in rule.ports {
                let proto = port.proto.number
                if case .number(let first)? = port.port {
                    ranges[proto, default: []].append(first...max(first, port.endPort ?? first))
                } else {
                    anyPort.insert(proto)
                }
            }
        }
        var entry: [[Expr]] = []
        for proto in Set(ranges.keys).union(anyPort).sorted() {
            if anyPort.contains(proto) {
                entry.append(Match.l4proto(proto))
            } else if let protoRanges = ranges[proto], protoRanges.count == 1 {
                entry.append(Match.port(.destination, protocol: proto, protoRanges[0]))
            } else {
                entry.append(Match.port(.destination, protocol: proto, inSet: portSet(ranges[proto] ?? [])))
            }
        }
        return entry
    }

    // MARK: Policy chains

    /// The chain holding one policy's rules for one direction. A Kubernetes rule that matches
    /// allows; a Calico rule does what its action says; no match returns to the endpoint chain,
    /// which goes on with the next policy.
    mutating func policyChain(_ policy: OrderedPolicy, _ direction: Direction, passTo: DefaultPolicy?) -> String {
        let passTarget = policy.hasPass(direction) ? passTo : nil
        let base: String
        switch policy.source {
        case .kubernetes(let k8s): base = "pol.\(k8s.namespace).\(k8s.name)"
        case .calico(let calico): base = calico.isGlobal ? "gnp.\(calico.name)" : "cnp.\(calico.namespace ?? "").\(calico.name)"
        }
        let suffix = "." + direction.short + (passTarget.map { ".pass-" + $0.rawValue } ?? "")
        let (name, isNew) = claim(Naming.readable(base, fallbackPrefix: "pol.", suffix: suffix),
                                  meaning: "policy \(policy.id) \(suffix)")
        if !isNew { return name }
        var rules: [Rule] = []
        switch policy.source {
        case .kubernetes(let k8s):
            for (index, rule) in k8s.rules(direction).enumerated() {
                let comment = "\(policy.id) \(direction.rawValue) rule \(index)"
                let log = flowLog(policyPrefix(.allow, policy.id, direction, index), allowed: true)
                for alternative in kubernetesCondition(rule, of: k8s, direction).alternatives {
                    rules.append(Rule(alternative.exprs + log + [.verdict(allowed(direction))], comment: comment))
                }
            }
        case .calico(let calico):
            for (index, rule) in calico.rules(direction).enumerated() {
                let comment = "\(policy.id) \(direction.rawValue) rule \(index) \(rule.action.rawValue)"
                let action: [Expr]
                switch rule.action {
                case .allow: action = flowLog(policyPrefix(.allow, policy.id, direction, index), allowed: true) + [.verdict(allowed(direction))]
                case .deny: action = flowLog(policyPrefix(.deny, policy.id, direction, index), allowed: false) + [.counter, .verdict(.drop)]
                case .log: action = [.log(group: options.logGroup, prefix: policyPrefix(.log, policy.id, direction, index).text)]
                case .pass: action = [.verdict(.goto(defaultChain(passTarget ?? .allow, direction)))]
                }
                for alternative in calicoCondition(rule, of: calico, direction).alternatives {
                    rules.append(Rule(alternative.exprs + action, comment: comment))
                }
            }
        }
        add(Chain(name: name, rules: rules))
        return name
    }

    /// The NFLOG prefix of a policy rule (FlowAnalysis.LogPrefix: at most 63 bytes).
    func policyPrefix(_ verdict: LogPrefix.Verdict, _ id: String, _ direction: Direction, _ index: Int) -> LogPrefix {
        .policyRule(verdict: verdict, reporter: direction.reporter, policy: .id(id), rule: UInt16(clamping: index))
    }

    /// The log expression a verdict gets for the flow log, as configured (none when off).
    func flowLog(_ prefix: LogPrefix, allowed: Bool) -> [Expr] {
        switch options.flowLogs {
        case .off: return []
        case .denied: return allowed ? [] : [.log(group: options.logGroup, prefix: prefix.text)]
        case .all: return [.log(group: options.logGroup, prefix: prefix.text)]
        }
    }
}
