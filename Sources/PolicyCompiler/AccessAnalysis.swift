import NetworkAddress
import PolicyModel

/// Who may reach an endpoint, and whom it may reach, in the coarse terms an access review asks
/// about: the internet (any address outside the cluster's networks) and other namespaces. Read
/// from the endpoint's profile and the allow rules of the policies in it. Deny rules and rule
/// order are not weighed, so an answer of "allowed" may be wider than what the packets meet
/// (never narrower): the safe side for a review.
public struct Access: Hashable, Sendable, Codable {
    public var ingressFromInternet: Bool
    public var egressToInternet: Bool
    public var ingressFromOtherNamespaces: Bool
    public var egressToOtherNamespaces: Bool

    public init(ingressFromInternet: Bool = false, egressToInternet: Bool = false,
                ingressFromOtherNamespaces: Bool = false, egressToOtherNamespaces: Bool = false) {
        self.ingressFromInternet = ingressFromInternet; self.egressToInternet = egressToInternet
        self.ingressFromOtherNamespaces = ingressFromOtherNamespaces; self.egressToOtherNamespaces = egressToOtherNamespaces
    }
}

/// Answers `Access` for endpoints of one state; endpoints with the same profile share the answer.
public struct AccessAnalyzer {
    /// The cluster's own networks by default: private and shared ranges, and the test ranges the lab uses.
    public static let defaultClusterNetworks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "198.18.0.0/15",
                                                "fc00::/7", "2001:db8::/32"].compactMap { CIDR($0) }
    let state: DesiredState
    let cluster: [CIDR]
    let kubernetes: [String: NetworkPolicy]
    let calico: [String: CalicoPolicy]
    private struct MemoKey: Hashable { var direction: Direction; var namespace: String; var profile: EndpointProfile }
    private var memo: [MemoKey: (internet: Bool, otherNamespaces: Bool)] = [:]

    public init(state: DesiredState, clusterNetworks: [CIDR] = AccessAnalyzer.defaultClusterNetworks) {
        self.state = state
        cluster = clusterNetworks
        kubernetes = Dictionary(state.policies.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        calico = Dictionary(state.calicoPolicies.map { ($0.profileID, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public mutating func access(of endpoint: CompiledEndpoint) -> Access {
        let ingress = reach(endpoint.ingress, .ingress, endpoint.endpoint.namespace)
        let egress = reach(endpoint.egress, .egress, endpoint.endpoint.namespace)
        return Access(ingressFromInternet: ingress.internet, egressToInternet: egress.internet,
                      ingressFromOtherNamespaces: ingress.otherNamespaces, egressToOtherNamespaces: egress.otherNamespaces)
    }

    mutating func reach(_ profile: EndpointProfile, _ direction: Direction, _ namespace: String) -> (internet: Bool, otherNamespaces: Bool) {
        let key = MemoKey(direction: direction, namespace: namespace, profile: profile)
        if let known = memo[key] { return known }
        let answer = Self.reach(profile, direction, namespace, state, cluster, kubernetes, calico)
        memo[key] = answer
        return answer
    }

    /// Whether some allow rule of the profile admits the internet / another namespace as the peer.
    static func reach(_ profile: EndpointProfile, _ direction: Direction, _ namespace: String, _ state: DesiredState,
                      _ cluster: [CIDR], _ kubernetes: [String: NetworkPolicy], _ calicoPolicies: [String: CalicoPolicy])
        -> (internet: Bool, otherNamespaces: Bool) {
        switch profile {
        case .defaultAllow: return (true, true)
        case .defaultDeny: return (false, false)
        case .policies(let ids, let passTo):
            var internet = false, others = false
            // A Calico Pass can end in the endpoint's default allow.
            if passTo == .allow { internet = true; others = true }
            for id in ids {
                if let policy = kubernetes[id] {
                    for rule in policy.rules(direction) {
                        if rule.peers.isEmpty { return (true, true) }
                        for peer in rule.peers {
                            switch peer {
                            case .ipBlock(let cidr, let except):
                                let nets = cidr.subtracting(except)
                                if nets.contains(where: { outside($0, cluster) }) { internet = true }
                                if nets.contains(where: { net in cluster.contains { $0.contains(net) || net.contains($0) } }) { others = true }
                            case .selector(_, let namespaces):
                                if let namespaces, crossesNamespaces(namespaces, from: namespace, state) { others = true }
                            }
                        }
                    }
                } else if let policy = calicoPolicies[id] {
                    for rule in policy.rules(direction) where rule.action == .allow {
                        let peer = direction == .ingress ? rule.source : rule.destination
                        let unscoped = peer.selector == nil && peer.namespaceSelector == nil && peer.nets.isEmpty
                        if unscoped { internet = true; others = true; continue }
                        if peer.nets.contains(where: { outside($0, cluster) }) { internet = true }
                        if !peer.nets.isEmpty { others = true }
                        if peer.namespaceSelector != nil || policy.isGlobal { others = true }
                    }
                }
            }
            return (internet, others)
        }
    }

    /// Whether a prefix holds addresses outside every cluster network.
    static func outside(_ net: CIDR, _ cluster: [CIDR]) -> Bool {
        !net.subtracting(cluster.filter { $0.address.family == net.address.family }).isEmpty
    }

    static func crossesNamespaces(_ selector: LabelSelector, from namespace: String, _ state: DesiredState) -> Bool {
        // An empty selector, or one that names a namespace other than the policy's own.
        if selector.matchLabels.isEmpty && selector.matchExpressions.isEmpty { return true }
        let names = Set(state.namespaces.keys).union(state.endpoints.map(\.namespace))
        return names.contains { $0 != namespace && selector.matches(state.namespaceLabels($0)) }
    }
}
