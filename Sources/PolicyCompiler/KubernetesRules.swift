import NftablesModel
import PolicyModel

/// networking.k8s.io/v1 NetworkPolicy rules: a rule allows when the packet comes from (ingress)
/// or goes to (egress) one of its peers, on one of its ports. No peers: any peer; no ports: any.
extension TableBuilder {
    mutating func kubernetesCondition(_ rule: PolicyRule, of policy: NetworkPolicy, _ direction: Direction) -> Condition {
        let peerSide: AddressSide = direction == .ingress ? .source : .destination
        var peers = Condition.always
        if !rule.peers.isEmpty {
            peers = Condition.any(rule.peers.map { peerCondition($0, policy, peerSide) })
        }
        guard !rule.ports.isEmpty else { return peers }
        // A named port is resolved on the destination pod, whichever it is: the `address . port`
        // set holds the pair for every pod that names such a port, and the peer condition (or the
        // endpoint chain, for ingress) already says which destinations are meant.
        var ports = Condition.never
        for port in rule.ports {
            switch port.port {
            case nil:
                ports = ports.or(Condition(nil, Match.l4proto(port.proto.number)))
            case .number(let first)?:
                ports = ports.or(Condition(nil, Match.port(.destination, protocol: port.proto.number, first...(port.endPort ?? first))))
            case .named(let name)?:
                ports = ports.or(namedPortCondition(name, proto: port.proto.number, .destination, targets: .everything))
            }
        }
        // Ports first: a packet to another port is turned away by two compares, before the set lookup
        // of the peers (most packets that walk a policy chain are not for it).
        return ports.and(peers)
    }

    mutating func peerCondition(_ peer: PolicyPeer, _ policy: NetworkPolicy, _ side: AddressSide) -> Condition {
        switch peer {
        case .selector(let pods, let namespaces):
            let selection = EndpointSelection.kubernetes(PeerSelector(policyNamespace: policy.namespace, pods: pods, namespaces: namespaces))
            return selectionCondition(selection, side)
        case .ipBlock(let cidr, let except):
            return prefixCondition(cidr.subtracting(except), side)
        }
    }
}
