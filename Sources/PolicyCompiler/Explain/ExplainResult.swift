// The answer to an explain query, and its short human rendering.
import NftablesModel
import PolicyModel

public enum ExplainVerdict: String, Hashable, Sendable {
    case allow, deny
}

/// One resolved party of the flow.
public struct ExplainParty: Hashable, Sendable, CustomStringConvertible {
    public enum Placement: String, Hashable, Sendable {
        /// A workload with an interface (and chains) on this node.
        case local
        /// A known workload whose traffic reaches this node through the outside interface.
        case remote
        /// An address that is no known workload.
        case outside
    }
    /// `namespace/name`; nil for an outside address.
    public var endpointID: String?
    public var address: IPAddress
    /// The interface the packet uses on this node.
    public var interface: String
    public var placement: Placement

    public var description: String {
        switch placement {
        case .local: return "\(endpointID ?? "\(address)") (\(address), \(interface))"
        case .remote: return "\(endpointID ?? "\(address)") (\(address), not on this node, via \(interface))"
        case .outside: return "\(address) (outside, via \(interface))"
        }
    }
}

/// A rule (or a base chain's policy) that produced a verdict.
public struct ExplainRule: Hashable, Sendable {
    public var chain: String
    /// nil: the base chain's policy.
    public var ruleIndex: Int?
    /// The rule in nft syntax, without its comment.
    public var text: String
    public var comment: String?
    public var verdict: Verdict

    init(_ step: TraceStep, verdict: Verdict) {
        chain = step.chain; ruleIndex = step.ruleIndex; text = step.ruleText; comment = step.comment
        self.verdict = verdict
    }

    /// `shop/db-from-web ingress rule 0 (ip saddr @sel... tcp dport 5432 accept)`; a comment
    /// that explains itself (a default) stands alone.
    var label: String {
        let position = ruleIndex.map { "\(chain) rule \($0)" } ?? "the policy of chain \(chain)"
        guard let comment else { return "\(position) (\(text))" }
        if comment.hasPrefix("selected by no policy") { return comment }
        return "\(comment) (\(text))"
    }
}

/// What one endpoint's chain for one direction made of the packet.
public struct ExplainSide: Hashable, Sendable {
    public var direction: Direction
    public var party: ExplainParty
    /// The endpoint chain the packet was dispatched to; nil if it never got there (or has none here).
    public var chain: String?
    /// The rule of that chain (or of a policy chain it jumped to) that let the packet on or dropped it.
    public var decision: ExplainRule?
    /// A rule that handed the decision to another chain of the side (a Calico Pass to the default).
    public var passedBy: ExplainRule?
    /// Policies that select the endpoint in this direction, and any whose chain the packet entered.
    public var policiesConsidered: [String]
}

public struct ExplainResult: Hashable, Sendable {
    public var verdict: ExplainVerdict
    public var source: ExplainParty
    public var destination: ExplainParty
    /// As traced: an ICMP type and code left open in the query are filled in (echo request).
    public var proto: ExplainProtocol
    public var port: UInt16?
    public var family: IPFamily
    /// The last rule that accepted or dropped the packet (nil only if no base chain saw it).
    public var decidingRule: ExplainRule?
    /// Policy ids named by the comments of matched rules, by the policy chains entered and by the
    /// profiles of the endpoint chains traversed, in the order met.
    public var policies: [String]
    /// The source's egress and the destination's ingress.
    public var sides: [ExplainSide]
    public var steps: [TraceStep]

    /// `tcp/5432`, `udp`, `icmp type 8 code 0`, `icmpv6 type 128 code 0`.
    public var flowText: String {
        switch proto {
        case .port:
            return port.map { "\(proto)/\($0)" } ?? "\(proto)"
        case .icmp:
            let text = "\(proto)"
            return family == .ipv6 ? "icmpv6" + text.dropFirst("icmp".count) : text
        }
    }

    /// A short explanation: the verdict, what each side's chain did, and for a deny which rule
    /// dropped the packet and which policies were considered. `verbose` adds every trace step.
    public func render(verbose: Bool = false) -> String {
        var lines = ["\(source) -> \(destination) \(flowText): \(verdict == .allow ? "ALLOW" : "DENY")"]
        for side in sides {
            lines.append("  " + sideLine(side))
        }
        let sideRules = Set(sides.compactMap(\.decision))
        if let deciding = decidingRule, !sideRules.contains(deciding) {
            let how = deciding.verdict == .drop ? "denied by" : "allowed by"
            lines.append("  decided in chain \(deciding.chain): \(how) \(deciding.label)")
        }
        if verbose {
            lines.append("  trace:")
            lines += steps.map { "    \($0)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func sideLine(_ side: ExplainSide) -> String {
        let who = side.party.endpointID ?? "\(side.party.address)"
        let head = "\(side.direction.rawValue) of \(who): "
        switch side.party.placement {
        case .outside:
            return head + "outside address, no \(side.direction.rawValue) chain on this node"
        case .remote:
            return head + "not on this node, its own node enforces its \(side.direction.rawValue)"
        case .local:
            break
        }
        guard side.chain != nil else { return head + "not reached" }
        guard let decision = side.decision else {
            return head + "no rule decided in \(side.chain ?? "?")"
        }
        var text: String
        switch decision.verdict {
        case .drop: text = "denied by " + decision.label
        case .return, .continue, .jump: text = "passed on by " + decision.label
        case .accept, .goto:
            text = decision.comment?.hasPrefix("selected by no policy") == true
                ? decision.label : "allowed by " + decision.label
        }
        if let via = side.passedBy {
            text = "passed on by \(via.label), then " + text
        }
        if decision.verdict == .drop, !side.policiesConsidered.isEmpty {
            text += "; policies considered: " + side.policiesConsidered.joined(separator: ", ")
        }
        return head + text
    }
}
