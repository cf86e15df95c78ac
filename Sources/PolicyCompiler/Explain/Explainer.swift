// `explain`: which rules decide a flow, read off the compiled ruleset by running a packet through
// it (PacketTracer), so the answer is what the kernel does with these rules, not a second
// interpretation of the policies.
import NftablesModel
import PolicyModel

public enum ExplainError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownEndpoint(String, suggestions: [String])
    case noAddress(endpoint: String, family: IPFamily)
    case noCommonFamily(String, String)
    case familyMismatch(target: String, family: IPFamily)
    case trace(TraceError)

    public var description: String {
        switch self {
        case .unknownEndpoint(let id, let suggestions):
            let hint = suggestions.isEmpty ? "; `agentctl get endpoints` lists them" : "; did you mean \(suggestions.joined(separator: ", "))?"
            return "no endpoint \(id) in the state" + hint
        case .noAddress(let endpoint, let family):
            return "\(endpoint) has no \(family == .ipv4 ? "IPv4" : "IPv6") address"
        case .noCommonFamily(let a, let b):
            return "\(a) and \(b) share no address family"
        case .familyMismatch(let target, let family):
            return "\(target) is not an \(family == .ipv4 ? "IPv4" : "IPv6") address"
        case .trace(let error):
            return "the ruleset cannot be traced: \(error)"
        }
    }
}

public enum Explainer {
    /// Explains the first packet of a flow (conntrack state `query.ctState`, normally new) through
    /// the forward hook of the compiled table.
    public static func explain(_ query: ExplainQuery, in compiled: CompiledRuleset) throws -> ExplainResult {
        let source = try resolve(query.source, compiled)
        let destination = try resolve(query.destination, compiled)
        let family = try chooseFamily(query, source, destination)
        let sourceParty = try party(source, family, query)
        let destinationParty = try party(destination, family, query)

        let isPortProtocol: Bool
        let l4proto: UInt8
        var icmpType: UInt8?, icmpCode: UInt8?
        switch query.proto {
        case .port(let proto):
            isPortProtocol = true
            l4proto = proto.number
        case .icmp(let type, let code):
            isPortProtocol = false
            l4proto = family == .ipv4 ? 1 : 58
            icmpType = type ?? (family == .ipv4 ? 8 : 128)
            icmpCode = code ?? 0
        }
        let packet = TracePacket(
            inputInterface: sourceParty.interface, outputInterface: destinationParty.interface, family: family,
            source: sourceParty.address, destination: destinationParty.address, l4proto: l4proto,
            sourcePort: isPortProtocol ? ephemeralPort : nil, destinationPort: isPortProtocol ? query.port : nil,
            icmpType: icmpType, icmpCode: icmpCode, ctState: query.ctState)

        let trace: Trace
        do {
            trace = try PacketTracer.trace(compiled.table, packet: packet, hook: .forward)
        } catch let error as TraceError {
            throw ExplainError.trace(error)
        }

        let egress = ExplainSide(direction: .egress, party: sourceParty, chain: nil, decision: nil, passedBy: nil,
                                 policiesConsidered: profileIDs(source.endpoint, .egress, sourceParty))
        let ingress = ExplainSide(direction: .ingress, party: destinationParty, chain: nil, decision: nil, passedBy: nil,
                                  policiesConsidered: profileIDs(destination.endpoint, .ingress, destinationParty))
        let policyChains = ExplainPolicyChains(compiled)
        let sides = attribute(trace.steps, to: [
            (egress, sourceParty.placement == .local ? source.endpoint?.egressChain : nil),
            (ingress, destinationParty.placement == .local ? destination.endpoint?.ingressChain : nil),
        ], compiled, policyChains)

        let deciding = trace.steps.last { step in step.verdict == .accept || step.verdict == .drop }
        return ExplainResult(
            verdict: trace.verdict == .accept ? .allow : .deny,
            source: sourceParty, destination: destinationParty,
            proto: isPortProtocol ? query.proto : .icmp(type: icmpType, code: icmpCode),
            port: isPortProtocol ? query.port : nil, family: family,
            decidingRule: deciding.flatMap { step in step.verdict.map { ExplainRule(step, verdict: $0) } },
            policies: policiesMentioned(trace.steps, sides, policyChains),
            sides: sides, steps: trace.steps)
    }

    /// The source port of the explained connection: any ephemeral port; policies do not match on it.
    static let ephemeralPort: UInt16 = 40000

    // MARK: Resolving the parties

    struct Resolved {
        var target: ExplainTarget
        var endpoint: CompiledEndpoint?
        /// Given as an address.
        var address: IPAddress?
    }

    static func resolve(_ target: ExplainTarget, _ compiled: CompiledRuleset) throws -> Resolved {
        switch target {
        case .address(let address):
            let owner = compiled.endpoints.first { $0.endpoint.addresses.contains(address) }
            return Resolved(target: target, endpoint: owner, address: address)
        case .endpoint(let namespace, let name):
            if let found = compiled.endpoints.first(where: { $0.endpoint.namespace == namespace && $0.endpoint.name == name }) {
                return Resolved(target: target, endpoint: found, address: nil)
            }
            throw ExplainError.unknownEndpoint("\(namespace)/\(name)",
                                               suggestions: closeMatches("\(namespace)/\(name)", compiled.endpoints.map(\.endpoint.id)))
        }
    }

    /// IPv4 unless asked otherwise, an address given is IPv6, or an endpoint has only IPv6.
    static func chooseFamily(_ query: ExplainQuery, _ a: Resolved, _ b: Resolved) throws -> IPFamily {
        for side in [a, b] {
            if let address = side.address {
                if let wanted = query.family, wanted != address.family {
                    throw ExplainError.familyMismatch(target: "\(address)", family: wanted)
                }
                return address.family
            }
        }
        if let family = query.family { return family }
        let families = [a, b].compactMap { $0.endpoint.map { Set($0.endpoint.addresses.map(\.family)) } }
        let common = families.reduce(Set(IPFamily.allCases)) { $0.intersection($1) }
        if common.contains(.ipv4) { return .ipv4 }
        if common.contains(.ipv6) { return .ipv6 }
        throw ExplainError.noCommonFamily(a.target.description, b.target.description)
    }

    static func party(_ resolved: Resolved, _ family: IPFamily, _ query: ExplainQuery) throws -> ExplainParty {
        let endpoint = resolved.endpoint
        let address: IPAddress
        if let given = resolved.address {
            guard given.family == family else { throw ExplainError.familyMismatch(target: "\(given)", family: family) }
            address = given
        } else {
            guard let endpoint, let first = endpoint.endpoint.addresses.first(where: { $0.family == family }) else {
                throw ExplainError.noAddress(endpoint: resolved.target.description, family: family)
            }
            address = first
        }
        guard let endpoint else {
            return ExplainParty(endpointID: nil, address: address, interface: query.outsideInterface, placement: .outside)
        }
        guard let interface = endpoint.interface else {
            return ExplainParty(endpointID: endpoint.endpoint.id, address: address, interface: query.outsideInterface,
                                placement: .remote)
        }
        return ExplainParty(endpointID: endpoint.endpoint.id, address: address, interface: interface, placement: .local)
    }

    static func profileIDs(_ endpoint: CompiledEndpoint?, _ direction: Direction, _ party: ExplainParty) -> [String] {
        guard party.placement == .local, let endpoint else { return [] }
        return (direction == .ingress ? endpoint.ingress : endpoint.egress).policyIDs
    }

    /// Endpoints whose name is a small typo away (a transposition counts once) or starts with
    /// the wanted name (`web-1` for `web`), in the wanted namespace or one a typo away from it, or
    /// that have the wanted name in another namespace: at most three, closest first.
    public static func closeMatches(_ wanted: String, _ ids: [String]) -> [String] {
        func split(_ id: String) -> (String, String) {
            guard let slash = id.firstIndex(of: "/") else { return ("", id) }
            return (String(id[..<slash]), String(id[id.index(after: slash)...]))
        }
        func near(_ a: String, _ b: String) -> Int? {
            let distance = editDistance(a, b)
            return distance <= max(1, a.count / 3) ? distance : nil
        }
        let (wantedNamespace, wantedName) = split(wanted)
        let scored: [(String, Int)] = ids.compactMap { id in
            let (namespace, name) = split(id)
            let nameScore = name.hasPrefix(wantedName) || wantedName.hasPrefix(name) ? 1 : near(wantedName, name)
            if namespace != wantedNamespace && name == wantedName { return (id, 1) }
            guard let nameScore, let namespaceScore = near(wantedNamespace, namespace) else { return nil }
            return (id, nameScore + namespaceScore)
        }
        return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(3).map(\.0)
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }

    // MARK: Reading the trace

    /// Splits the steps between the two sides: a side's steps start where a verdict jumps (or
    /// goes) to its endpoint chain and run until the other side's chain is entered. Steps in base
    /// chains and in to-workload, the plumbing between the sides, belong to neither. A side's
    /// decision is its last step that ended its say: accept, drop, goto or return; a goto to
    /// another of its chains (a Calico Pass) is kept as `passedBy`.
    static func attribute(_ steps: [TraceStep], to sides: [(ExplainSide, String?)],
                          _ compiled: CompiledRuleset, _ policyChains: ExplainPolicyChains) -> [ExplainSide] {
        var result = sides.map(\.0)
        var current: Int?
        func isPlumbing(_ chain: String) -> Bool {
            compiled.table.chains[chain]?.hook != nil || chain == Layout.toWorkloadChain
        }
        for step in steps {
            if step.ruleIndex != nil, !isPlumbing(step.chain), let index = current, case .matched(let verdict) = step.event {
                switch verdict {
                case .accept, .drop, .goto, .return:
                    let rule = ExplainRule(step, verdict: verdict)
                    // A goto to another endpoint-side chain (a Calico Pass to the default) hands
                    // the decision on; remember who handed it.
                    if case .goto(let target) = verdict, !isPlumbing(target) { result[index].passedBy = rule }
                    result[index].decision = rule
                case .jump, .continue:
                    break
                }
                if let target = verdict.chain, let id = policyChains.id(ofChain: target),
                   !result[index].policiesConsidered.contains(id) {
                    result[index].policiesConsidered.append(id)
                }
            }
            if case .matched(let verdict) = step.event, let target = verdict.chain,
               let index = sides.firstIndex(where: { $0.1 == target }) {
                current = index
                result[index].chain = target
            }
        }
        for index in result.indices where result[index].passedBy == result[index].decision {
            result[index].passedBy = nil
        }
        return result
    }

    /// Policy ids from rule comments (`ns/name ingress rule 3`, `default deny egress: a/b,c/d`), from
    /// the policy chains entered, and from the profiles of the endpoint chains the packet met.
    static func policiesMentioned(_ steps: [TraceStep], _ sides: [ExplainSide], _ policyChains: ExplainPolicyChains) -> [String] {
        var ids: [String] = []
        func add(_ id: String) { if !id.isEmpty, !ids.contains(id) { ids.append(id) } }
        for step in steps {
            if let comment = step.comment { policyIDs(inComment: comment).forEach(add) }
            if case .matched(let verdict) = step.event, let target = verdict.chain, let id = policyChains.id(ofChain: target) {
                add(id)
            }
        }
        for side in sides where side.chain != nil { side.policiesConsidered.forEach(add) }
        return ids
    }

    static func policyIDs(inComment comment: String) -> [String] {
        let words = comment.split(separator: " ").map(String.init)
        // "<id> ingress rule N" / "<id> egress rule N"
        if words.count >= 4, ["ingress", "egress"].contains(words[1]), words[2] == "rule", Int(words[3]) != nil {
            return [words[0]]
        }
        // "default deny ingress: a/b,c/d"
        if comment.hasPrefix("default deny "), let colon = comment.firstIndex(of: ":") {
            return comment[comment.index(after: colon)...].split(separator: ",")
                .map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        }
        return []
    }
}

/// Which policy a policy chain belongs to. The compiler names them `pol.NS.NAME` (Kubernetes),
/// `cnp.NS.NAME` and `gnp.NAME` (Calico), or `pol.HASH` when too long, then `.in`/`.eg` and, for
/// a policy with a Pass rule, `.pass-allow`/`.pass-deny`. Ids come from the endpoint profiles.
struct ExplainPolicyChains {
    var idsByBase: [String: String] = [:]

    init(_ compiled: CompiledRuleset) {
        for endpoint in compiled.endpoints {
            for id in endpoint.ingress.policyIDs + endpoint.egress.policyIDs {
                let base = ExplainPolicyChains.base(ofID: id)
                idsByBase[base] = id
                // The name Naming.readable falls back to when `base` is too long.
                idsByBase["pol." + Naming.shortHash(base, digits: 16)] = id
            }
        }
    }

    static func base(ofID id: String) -> String {
        if id.hasPrefix("gnp:") { return "gnp." + id.dropFirst("gnp:".count) }
        if id.hasPrefix("cnp:") { return "cnp." + id.dropFirst("cnp:".count).replacingSlash() }
        return "pol." + id.replacingSlash()
    }

    func id(ofChain chain: String) -> String? {
        var base = Substring(chain)
        for suffix in [".pass-allow", ".pass-deny"] where base.hasSuffix(suffix) { base = base.dropLast(suffix.count) }
        guard base.hasSuffix(".in") || base.hasSuffix(".eg") else { return nil }
        return idsByBase[String(base.dropLast(3))]
    }
}

fileprivate extension StringProtocol {
    func replacingSlash() -> String { String(map { $0 == "/" ? "." : $0 }) }
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
