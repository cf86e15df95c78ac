import Foundation
import NetworkAddress
import PolicyModel

/// The baseline of `scripts/bench datapath`: the synthetic node's policies expanded the way an
/// iptables-style agent would, into one chain of linear per-rule matches with no sets or maps.
///
/// For every endpoint (all are local to the node), every policy that selects it and every rule of
/// that policy, one rule per (peer address, port): ingress `ip saddr PEER ip daddr EP tcp dport P
/// accept`, egress `ip saddr EP ip daddr PEER …`. IPv4 only (iptables keeps IPv6 in ip6tables);
/// named ports resolved against the destination endpoint; an ipBlock's `except` becomes `ip saddr
/// != X` in the same rule; Calico Deny rules become drops, Log and Pass are left out. The chain
/// starts, as iptables rulesets do, with `ct state established,related accept` and `ct state invalid
/// drop` (as Palisade's endpoint chains), so only a connection's first packet walks the list, and after at most `cap` expanded rules it ends in the
/// one rule that admits the benchmark's real client → server port, then a drop: a new connection
/// between the real pods walks every rule before it is accepted.
struct LinearRuleset {
    enum Action: String { case accept, drop }

    /// One peer: an address or network, and networks carved out of it.
    struct Peer {
        var match: String
        var except: [String] = []
        var endpoint: Endpoint?
    }

    enum Port {
        case any(String)                    // a protocol, every port: `meta l4proto tcp`
        case range(String, UInt16, UInt16)  // proto, first, last
        case named(String, String?)         // name, protocol (nil: Calico, the rule's protocol)
    }

    struct Rule {
        var action: Action
        var peers: [Peer]?          // nil: any peer
        var ports: [Port]           // empty: any protocol and port
        var proto: String?          // Calico: the rule's protocol, for named ports
    }

    struct Policy {
        var selects: (Endpoint) -> Bool
        var ingress: [Rule]
        var egress: [Rule]
    }

    let state: DesiredState
    private(set) var policies: [Policy] = []

    static func v4(_ endpoint: Endpoint) -> String? {
        endpoint.addresses.first { $0.family == .ipv4 }.map { "\($0)" }
    }

    init(_ state: DesiredState) {
        self.state = state
        var byNamespace: [String: [Endpoint]] = [:]
        for endpoint in state.endpoints { byNamespace[endpoint.namespace, default: []].append(endpoint) }
        let namespaceNames = state.namespaces.keys.sorted()
        func labels(_ namespace: String) -> [String: String] {
            var result = state.namespaces[namespace]?.labels ?? [:]
            result["kubernetes.io/metadata.name"] = namespace
            return result
        }
        func endpointPeers(_ namespaces: [String], _ matches: (Endpoint) -> Bool) -> [Peer] {
            namespaces.flatMap { byNamespace[$0] ?? [] }.filter(matches).compactMap { endpoint in
                Self.v4(endpoint).map { Peer(match: $0, endpoint: endpoint) }
            }
        }

        for policy in state.policies {
            func rule(_ rule: PolicyRule) -> Rule {
                var peers: [Peer]? = nil
                if !rule.peers.isEmpty {
                    peers = []
                    for peer in rule.peers {
                        switch peer {
                        case .selector(let pods, let namespaces):
                            let spaces = namespaces.map { selector in namespaceNames.filter { selector.matches(labels($0)) } } ?? [policy.namespace]
                            peers! += endpointPeers(spaces) { pods?.matches($0.labels) ?? true }
                        case .ipBlock(let cidr, let except):
                            if cidr.family == .ipv4 {
                                peers!.append(Peer(match: "\(cidr)", except: except.filter { $0.family == .ipv4 }.map { "\($0)" }))
                            }
                        }
                    }
                }
                let ports: [Port] = rule.ports.map { port in
                    let proto = port.proto.rawValue.lowercased()
                    switch port.port {
                    case nil: return .any(proto)
                    case .number(let first)?: return .range(proto, first, port.endPort ?? first)
                    case .named(let name)?: return .named(name, proto)
                    }
                }
                return Rule(action: .accept, peers: peers, ports: ports, proto: nil)
            }
            policies.append(Policy(
                selects: { $0.namespace == policy.namespace && policy.podSelector.matches($0.labels) },
                ingress: policy.policyTypes.contains(.ingress) ? policy.ingress.map(rule) : [],
                egress: policy.policyTypes.contains(.egress) ? policy.egress.map(rule) : []))
        }

        for policy in state.calicoPolicies {
            func spaces(_ selector: SelectorExpression?) -> [String] {
                if let selector { return namespaceNames.filter { selector.matches(labels($0)) } }
                return policy.namespace.map { [$0] } ?? namespaceNames
            }
            func rule(_ rule: CalicoRule, _ direction: Direction) -> Rule? {
                let action: Action
                switch rule.action {
                case .allow: action = .accept
                case .deny: action = .drop
                case .log, .pass: return nil
                }
                if rule.ipVersion == .ipv6 { return nil }
                let peerSide = direction == .ingress ? rule.source : rule.destination
                var peers: [Peer]? = nil
                let excepts = peerSide.notNets.filter { $0.family == .ipv4 }.map { "\($0)" }
                if let selector = peerSide.selector {
                    let nets = peerSide.nets.filter { $0.family == .ipv4 }
                    peers = endpointPeers(spaces(peerSide.namespaceSelector)) { endpoint in
                        selector.matches(endpoint.labels) && !(peerSide.notSelector?.matches(endpoint.labels) ?? false)
                            && (nets.isEmpty || nets.contains { net in endpoint.addresses.contains { net.contains($0) } })
                    }
                } else if !peerSide.nets.isEmpty {
                    peers = peerSide.nets.filter { $0.family == .ipv4 }.map { Peer(match: "\($0)", except: excepts) }
                } else if peerSide.namespaceSelector != nil {
                    peers = endpointPeers(spaces(peerSide.namespaceSelector)) { _ in true }
                }
                let proto: String? = rule.proto.flatMap { p in
                    switch p.number { case 6: return "tcp"; case 17: return "udp"; case 132: return "sctp"; default: return nil }
                }
                var ports: [Port] = rule.destination.ports.map { port in
                    switch port {
                    case .range(let range): return .range(proto ?? "tcp", range.lowerBound, range.upperBound)
                    case .named(let name): return .named(name, nil)
                    }
                }
                if ports.isEmpty, let proto { ports = [.any(proto)] }
                return Rule(action: action, peers: peers, ports: ports, proto: proto)
            }
            policies.append(Policy(
                selects: { endpoint in
                    let inNamespace = policy.namespace.map { endpoint.namespace == $0 }
                        ?? (policy.namespaceSelector?.matches(labels(endpoint.namespace)) ?? true)
                    return inNamespace && policy.selector.matches(endpoint.labels)
                },
                ingress: policy.types.contains(.ingress) ? policy.ingress.compactMap { rule($0, .ingress) } : [],
                egress: policy.types.contains(.egress) ? policy.egress.compactMap { rule($0, .egress) } : []))
        }
    }

    /// The port matches of `ports` against the endpoint that owns the port (the destination).
    static func resolve(_ ports: [Port], on destination: Endpoint?, proto: String?) -> [String] {
        if ports.isEmpty { return [""] }
        return ports.compactMap { port in
            switch port {
            case .any(let p): return " meta l4proto \(p)"
            case .range(let p, let first, let last): return first == last ? " \(p) dport \(first)" : " \(p) dport \(first)-\(last)"
            case .named(let name, let p):
                guard let destination, let named = destination.namedPorts.first(where: { $0.name == name }) else { return nil }
                let np = named.proto.rawValue.lowercased()
                if let wanted = p ?? proto, wanted != np { return nil }
                return " \(np) dport \(named.port)"
            }
        }
    }

    /// Expands every rule; writes at most `cap` of them through `emit`; returns how many the
    /// complete expansion has.
    func expand(cap: Int, emit: (String) -> Void) -> Int {
        var total = 0
        var emitted = 0
        func add(_ n: Int, _ lines: () -> [String]) {
            total += n
            guard emitted < cap, n > 0 else { return }
            for line in lines().prefix(cap - emitted) { emit(line); emitted += 1 }
        }
        let anyPeer = [Peer(match: "")]
        for endpoint in state.endpoints {
            guard let own = Self.v4(endpoint) else { continue }
            for policy in policies where policy.selects(endpoint) {
                for rule in policy.ingress {
                    let ports = Self.resolve(rule.ports, on: endpoint, proto: rule.proto)
                    let peers = rule.peers ?? anyPeer
                    add(peers.count * ports.count) {
                        peers.flatMap { peer -> [String] in
                            let source = peer.match.isEmpty ? "" : "ip saddr \(peer.match) " + peer.except.map { "ip saddr != \($0) " }.joined()
                            return ports.map { "\(source)ip daddr \(own)\($0) \(rule.action.rawValue)" }
                        }
                    }
                }
                for rule in policy.egress {
                    let peers = rule.peers ?? anyPeer
                    let hasNamed = rule.ports.contains { if case .named = $0 { return true } else { return false } }
                    let shared = hasNamed ? nil : Self.resolve(rule.ports, on: nil, proto: rule.proto)
                    let count = shared.map { $0.count * peers.count }
                        ?? peers.reduce(0) { $0 + Self.resolve(rule.ports, on: $1.endpoint, proto: rule.proto).count }
                    add(count) {
                        peers.flatMap { peer -> [String] in
                            let target = peer.match.isEmpty ? "" : " ip daddr \(peer.match)" + peer.except.map { " ip daddr != \($0)" }.joined()
                            return (shared ?? Self.resolve(rule.ports, on: peer.endpoint, proto: rule.proto)).map {
                                "ip saddr \(own)\(target)\($0) \(rule.action.rawValue)"
                            }
                        }
                    }
                }
            }
        }
        return total
    }

    /// The table as nft text: `table ip NAME`, chain forward in the forward hook.
    func render(name: String, cap: Int, client: String, server: String, port: UInt16) -> (text: String, rules: Int, total: Int) {
        var lines: [String] = []
        lines.reserveCapacity(min(cap, 1_000_000) + 8)
        let total = expand(cap: cap) { lines.append("\t\t" + $0) }
        let rules = lines.count
        var text = "# palisade-bench render-linear: \(state.endpoints.count) endpoints, \(state.policies.count + state.calicoPolicies.count) policies "
        text += "expanded to \(total) linear IPv4 rules; \(rules) of them here (cap \(cap)), then the real pods' rule\n"
        text += "table ip \(name) {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
        text += "\t\tct state established,related accept\n\t\tct state invalid drop\n"
        text += lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
        text += "\t\tip saddr \(client) ip daddr \(server) tcp dport \(port) counter accept comment \"the benchmark's real pods\"\n"
        text += "\t\tcounter drop\n\t}\n}\n"
        return (text, rules, total)
    }
}

/// palisade-bench render-linear N P FILE CAP CLIENT_V4 SERVER_V4 PORT: the linear baseline of the
/// synthetic node (N endpoints, P policies) as `table ip palisade-linear`, at most CAP expanded
/// rules before the real pods' rule; prints "linear rules R of T (cap C) ...".
func renderLinear(_ arguments: [String]) {
    guard arguments.count == 7, let cap = Int(arguments[3]), cap >= 0, let port = UInt16(arguments[6]),
          IPAddress(arguments[4])?.family == .ipv4, IPAddress(arguments[5])?.family == .ipv4 else {
        fail("usage: palisade-bench render-linear N P FILE CAP CLIENT_V4 SERVER_V4 PORT")
    }
    let (n, p) = size(arguments[0...1])
    let linear = LinearRuleset(SyntheticState(endpoints: n, policies: p).build())
    let rendered = linear.render(name: "palisade-linear", cap: cap, client: arguments[4], server: arguments[5], port: port)
    do { try rendered.text.write(toFile: arguments[2], atomically: true, encoding: .utf8) } catch { fail("\(arguments[2]): \(error)") }
    print("linear rules \(rendered.rules) of \(rendered.total) (cap \(cap)) to \(arguments[2]) (\(rendered.text.utf8.count) bytes)")
}
