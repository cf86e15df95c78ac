import FlowAnalysis
import NftablesModel
import PolicyModel

/// One conjunction of matches, possibly tied to an address family (because it matches addresses
/// of that family).
struct Alternative: Hashable {
    var family: IPFamily?
    var exprs: [Expr]
    static let always = Alternative(family: nil, exprs: [])
}

/// A disjunction of conjunctions: a rule condition that becomes one nft rule per alternative.
/// `[]` never matches; `[.always]` always does.
struct Condition: Hashable {
    var alternatives: [Alternative]
    static let always = Condition(alternatives: [.always])
    static let never = Condition(alternatives: [])

    init(alternatives: [Alternative]) { self.alternatives = alternatives }
    init(_ family: IPFamily?, _ exprs: [Expr]) { alternatives = [Alternative(family: family, exprs: exprs)] }

    /// Both must hold: every pair of alternatives whose families agree.
    func and(_ other: Condition) -> Condition {
        var result: [Alternative] = []
        for a in alternatives {
            for b in other.alternatives {
                if let fa = a.family, let fb = b.family, fa != fb { continue }
                result.append(Alternative(family: a.family ?? b.family, exprs: RuleExprs.combine(a.exprs, b.exprs)))
            }
        }
        return Condition(alternatives: result)
    }

    func or(_ other: Condition) -> Condition { Condition(alternatives: alternatives + other.alternatives) }

    static func any(_ conditions: [Condition]) -> Condition {
        conditions.reduce(.never) { $0.or($1) }
    }

    /// Keeps only alternatives that can apply to the family (family-neutral ones get the family's
    /// dependency so that they do not match the other family).
    func restricted(to family: IPFamily?) -> Condition {
        guard let family else { return self }
        return Condition(alternatives: alternatives.compactMap { alternative in
            if let own = alternative.family { return own == family ? alternative : nil }
            return Alternative(family: family, exprs: RuleExprs.combine(Match.family(family), alternative.exprs))
        })
    }
}

enum RuleExprs {
    /// Concatenates two expression lists, leaving out a protocol dependency (`meta nfproto X` /
    /// `meta l4proto X`) that the first list already checks.
    static func combine(_ first: [Expr], _ second: [Expr]) -> [Expr] {
        var result = first
        var index = 0
        while index < second.count {
            if index + 1 < second.count, case .meta(let key, _) = second[index], key == .nfproto || key == .l4proto,
               case .cmp = second[index + 1], containsPair(result, second[index], second[index + 1]) {
                index += 2
                continue
            }
            result.append(second[index])
            index += 1
        }
        return result
    }

    static func containsPair(_ exprs: [Expr], _ a: Expr, _ b: Expr) -> Bool {
        guard exprs.count >= 2 else { return false }
        for index in 0..<(exprs.count - 1) where exprs[index] == a && exprs[index + 1] == b { return true }
        return false
    }
}

/// A set of endpoints named by a policy: a Kubernetes peer or a Calico selection. Sets of their
/// addresses are shared by every rule naming the same endpoints.
enum EndpointSelection: Hashable {
    case kubernetes(PeerSelector)
    /// Calico: endpoints of `namespace` (nil: any namespace) whose namespace matches
    /// `namespaceSelector` (nil: any) and whose labels match `selector` (nil: any).
    case calico(namespace: String?, namespaceSelector: SelectorExpression?, selector: SelectorExpression?)
    /// The endpoints a Kubernetes policy applies to (for named ports on ingress).
    case policyTargets(namespace: String, selector: LabelSelector)
    case everything

    func matches(_ endpoint: Endpoint, _ state: DesiredState) -> Bool {
        switch self {
        case .kubernetes(let peer):
            return peer.matches(endpoint, state)
        case .calico(let namespace, let namespaceSelector, let selector):
            if let namespace, endpoint.namespace != namespace { return false }
            if let namespaceSelector, !namespaceSelector.matches(CalicoLabels.namespace(endpoint.namespace, state)) {
                return false
            }
            return selector.map { CalicoLabels.matches($0, endpoint) } ?? true
        case .policyTargets(let namespace, let selector):
            return endpoint.namespace == namespace && selector.matches(endpoint.labels)
        case .everything:
            return true
        }
    }

    var canonicalText: String {
        switch self {
        case .kubernetes(let peer): return "k8s:" + peer.canonicalText
        case .calico(let namespace, let namespaceSelector, let selector):
            // Each part length-prefixed: selector texts may contain anything inside their quotes.
            func part(_ text: String?) -> String { text.map { "\($0.utf8.count):\($0)" } ?? "*" }
            return "calico:ns=\(part(namespace)) nsSelector=\(part(namespaceSelector?.canonicalText)) selector=\(part(selector?.canonicalText))"
        case .policyTargets(let namespace, let selector): return "targets:\(namespace) \(selector.canonicalText)"
        case .everything: return "everything"
        }
    }
}

/// The labels Calico selectors see: pods carry `projectcalico.org/namespace`, namespaces
/// `projectcalico.org/name`, besides their own labels (and Kubernetes' implied name label).
enum CalicoLabels {
    /// Whether a selector matches the endpoint's Calico labels, without building them.
    static func matches(_ selector: SelectorExpression, _ endpoint: Endpoint) -> Bool {
        selector.matches { key in
            switch key {
            case "projectcalico.org/namespace": return endpoint.namespace
            case "projectcalico.org/orchestrator": return "k8s"
            default: return endpoint.labels[key]
            }
        }
    }

    static func namespace(_ name: String, _ state: DesiredState) -> [String: String] {
        var labels = state.namespaceLabels(name)
        labels["projectcalico.org/name"] = name
        return labels
    }
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
    /// Who reports a flow judged in this direction: the source's egress, the destination's ingress.
    var reporter: Reporter { self == .ingress ? .destination : .source }
}
