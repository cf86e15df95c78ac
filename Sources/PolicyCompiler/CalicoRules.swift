import NftablesModel
import PolicyModel

/// projectcalico.org/v3 rules: every field present must match; the action (Allow, Deny, Log,
/// Pass) is added by the policy chain.
extension TableBuilder {
    mutating func calicoCondition(_ rule: CalicoRule, of policy: CalicoPolicy, _ direction: Direction) -> Condition {
        var condition = Condition.always
        if let proto = rule.proto {
            condition = condition.and(Condition(proto.family, Match.l4proto(proto.number)))
        }
        if let notProto = rule.notProto {
            condition = condition.and(Condition(nil, Match.notL4proto(notProto.number)))
        }
        let icmpProtocol = rule.proto?.number ?? 1
        if let icmp = rule.icmp {
            var exprs = Match.icmpField(protocol: icmpProtocol, code: false, icmp.type)
            if let code = icmp.code { exprs = RuleExprs.combine(exprs, Match.icmpField(protocol: icmpProtocol, code: true, code)) }
            condition = condition.and(Condition(rule.proto?.family, exprs))
        }
        if let notICMP = rule.notICMP {
            // not (type T and code C) = type != T, or type T with code != C.
            var negation = Condition(rule.proto?.family, Match.icmpField(protocol: icmpProtocol, code: false, notICMP.type, equal: false))
            if let code = notICMP.code {
                negation = negation.or(Condition(rule.proto?.family, RuleExprs.combine(
                    Match.icmpField(protocol: icmpProtocol, code: false, notICMP.type),
                    Match.icmpField(protocol: icmpProtocol, code: true, code, equal: false))))
            }
            condition = condition.and(negation)
        }
        condition = condition.and(entityCondition(rule.source, .source, rule, policy))
        condition = condition.and(entityCondition(rule.destination, .destination, rule, policy))
        return condition.restricted(to: rule.ipVersion)
    }

    /// The `source` or `destination` of a rule, matched against the packet's `side`.
    mutating func entityCondition(_ entity: CalicoEntityRule, _ side: AddressSide, _ rule: CalicoRule,
                                  _ policy: CalicoPolicy) -> Condition {
        var condition = Condition.always
        if !entity.nets.isEmpty { condition = condition.and(prefixCondition(entity.nets, side)) }
        if !entity.notNets.isEmpty { condition = condition.and(prefixCondition(entity.notNets, side, invert: true)) }
        // In a namespaced policy, selectors see the policy's namespace unless a namespaceSelector
        // widens them; in a global policy, every namespace.
        let scope = entity.namespaceSelector == nil ? policy.namespace : nil
        // As Calico converts rules: any selector field in a namespaced policy confines the peer to
        // the policy's namespace (unless a namespaceSelector says which), so `notSelector` alone
        // means "pods of this namespace that do not match", not "any address that does not match".
        if entity.selector != nil || entity.namespaceSelector != nil || (entity.notSelector != nil && scope != nil) {
            let selection = EndpointSelection.calico(namespace: scope, namespaceSelector: entity.namespaceSelector,
                                                     selector: entity.selector)
            condition = condition.and(selectionCondition(selection, side))
        }
        if let notSelector = entity.notSelector {
            let selection = EndpointSelection.calico(namespace: scope, namespaceSelector: entity.namespaceSelector,
                                                     selector: notSelector)
            condition = condition.and(selectionCondition(selection, side, invert: true))
        }
        // Ports need a port-bearing protocol; the decoder insists on one, and without it the
        // ports apply to TCP, UDP and SCTP alike.
        let protocols: [UInt8] = rule.proto.map { [$0.number] } ?? [6, 17, 132]
        if !entity.ports.isEmpty {
            var ports = Condition.never
            for proto in protocols {
                for port in entity.ports {
                    switch port {
                    case .range(let range):
                        ports = ports.or(Condition(nil, Match.port(side, protocol: proto, range)))
                    case .named(let name):
                        ports = ports.or(namedPortCondition(name, proto: proto, side, targets: .everything))
                    }
                }
            }
            condition = condition.and(ports)
        }
        if !entity.notPorts.isEmpty {
            var ranges: [ClosedRange<UInt16>] = []
            var names: [String] = []
            for port in entity.notPorts {
                switch port {
                case .range(let range): ranges.append(range)
                case .named(let name): names.append(name)
                }
            }
            var notPorts = Condition.never
            for proto in protocols {
                var forProtocol = Condition.always
                if !ranges.isEmpty {
                    forProtocol = forProtocol.and(Condition(nil, Match.port(side, protocol: proto, inSet: portSet(ranges), invert: true)))
                }
                for name in names {
                    forProtocol = forProtocol.and(namedPortCondition(name, proto: proto, side, targets: .everything, invert: true))
                }
                notPorts = notPorts.or(forProtocol)
            }
            condition = condition.and(notPorts)
        }
        return condition
    }
}

extension CalicoProtocol {
    /// ICMP is IPv4's, ICMPv6 IPv6's; other protocols exist in both families.
    var family: IPFamily? {
        switch self {
        case .icmp: return .ipv4
        case .icmpv6: return .ipv6
        default: return nil
        }
    }
}
