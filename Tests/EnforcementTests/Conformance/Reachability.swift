import Foundation

/// One of the nine pods of the conformance lab, named the Kubernetes way: `x/a`.
struct ConformancePod: Hashable, Comparable, CustomStringConvertible {
    let namespace: String
    let name: String

    static let namespaces = ["x", "y", "z"]
    static let names = ["a", "b", "c"]
    /// x/a, x/b, x/c, y/a, ... z/c: rows and columns of every table, in this order.
    static let all: [ConformancePod] = namespaces.flatMap { ns in names.map { ConformancePod(namespace: ns, name: $0) } }

    init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// "x/a".
    init(_ id: String) {
        let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
        precondition(parts.count == 2, "a conformance pod is NAMESPACE/NAME, not \(id)")
        self.init(namespace: parts[0], name: parts[1])
    }

    var description: String { "\(namespace)/\(name)" }

    /// The scripts/lab name of the pod's network namespace and echo servers: "xa".
    var labName: String { namespace + name }
    var interface: String { "pl" + labName }

    private var nsIndex: Int { Self.namespaces.firstIndex(of: namespace)! + 1 }
    private var podIndex: Int { Self.names.firstIndex(of: name)! + 1 }

    /// x and y live in 198.18.0.0/16, z in 198.19.0.0/16 (both inside the /15 the lab may use),
    /// so that a /16 ipBlock tells the namespaces apart: x/b is 198.18.1.2, z/c 198.19.3.3.
    var ipv4: String { "\(namespace == "z" ? "198.19" : "198.18").\(nsIndex).\(podIndex)" }
    /// 2001:db8:<ns>::<pod>: x/b is 2001:db8:1::2, one /48 per namespace.
    var ipv6: String { "2001:db8:\(nsIndex)::\(podIndex)" }

    func address(_ family: AddressFamily) -> String { family == .v4 ? ipv4 : ipv6 }

    /// "x/a" matches "x/a", "x/*", "*/a" and "*/*".
    func matches(_ pattern: String) -> Bool {
        let parts = pattern.split(separator: "/", maxSplits: 1).map(String.init)
        precondition(parts.count == 2, "a pod pattern is NAMESPACE/NAME with * for any, not \(pattern)")
        return (parts[0] == "*" || parts[0] == namespace) && (parts[1] == "*" || parts[1] == name)
    }

    static func < (lhs: ConformancePod, rhs: ConformancePod) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }
}

/// The truth table of one scenario for one port and protocol, written the way the Kubernetes
/// e2e `Reachability` is: start from everything allowed (or everything blocked) and overwrite
/// cells, in order, with what the policies say. A pod talking to itself never crosses the node's
/// forward hook, so the self-cells are always allowed whatever is written into them.
struct Reachability: CustomStringConvertible {
    private var cells: [Pair: Bool]

    struct Pair: Hashable {
        let from: ConformancePod
        let to: ConformancePod
    }

    /// Every cell `allowed` (self-cells are allowed in any case).
    init(_ allowed: Bool) {
        var cells: [Pair: Bool] = [:]
        for from in ConformancePod.all {
            for to in ConformancePod.all { cells[Pair(from: from, to: to)] = allowed }
        }
        self.cells = cells
    }

    /// `Reachability(true) { $0.isolateIngress("x/*") }`.
    init(_ allowed: Bool, _ edit: (inout Reachability) -> Void) {
        self.init(allowed)
        edit(&self)
    }

    static let allAllowed = Reachability(true)
    static let allBlocked = Reachability(false)

    func allowed(from: ConformancePod, to: ConformancePod) -> Bool {
        from == to ? true : cells[Pair(from: from, to: to)]!
    }

    static func isSelf(_ from: ConformancePod, _ to: ConformancePod) -> Bool { from == to }

    // MARK: Writing expectations (patterns: "x/a", "x/*", "*/a", "*/*")

    /// Every cell from a pod matching `from` to a pod matching `to`.
    mutating func expectPeer(from: String, to: String, _ allowed: Bool) {
        for pair in cells.keys where pair.from.matches(from) && pair.to.matches(to) {
            cells[pair] = allowed
        }
    }

    /// Everything into the pods matching `to`, from anywhere.
    mutating func expectIngress(to: String, _ allowed: Bool) { expectPeer(from: "*/*", to: to, allowed) }
    /// Everything out of the pods matching `from`, to anywhere.
    mutating func expectEgress(from: String, _ allowed: Bool) { expectPeer(from: from, to: "*/*", allowed) }

    /// The pods matching `pattern` accept nothing (a default-deny ingress policy selects them).
    mutating func isolateIngress(_ pattern: String) { expectIngress(to: pattern, false) }
    /// The pods matching `pattern` send nothing (a default-deny egress policy selects them).
    mutating func isolateEgress(_ pattern: String) { expectEgress(from: pattern, false) }
    /// Both directions.
    mutating func isolate(_ pattern: String) {
        isolateIngress(pattern)
        isolateEgress(pattern)
    }

    /// Into `to` only from the listed sources: everything else into `to` is blocked.
    mutating func expectIngress(to: String, onlyFrom sources: [String]) {
        isolateIngress(to)
        for source in sources { expectPeer(from: source, to: to, true) }
    }

    /// Out of `from` only to the listed destinations.
    mutating func expectEgress(from: String, onlyTo destinations: [String]) {
        isolateEgress(from)
        for destination in destinations { expectPeer(from: from, to: destination, true) }
    }

    /// A cell is allowed only if it is in both: the source's egress side and the destination's
    /// ingress side written as two tables, as Kubernetes requires both to allow a connection.
    static func && (lhs: Reachability, rhs: Reachability) -> Reachability {
        var result = lhs
        for (pair, value) in lhs.cells { result.cells[pair] = value && rhs.cells[pair]! }
        return result
    }

    // MARK: Reading it

    /// The table, rows = sources, columns = destinations: `.` allowed, `X` blocked, `=` the self
    /// cell (always allowed: a pod's traffic to itself does not go through the node).
    var description: String {
        Reachability.render { from, to in
            Reachability.isSelf(from, to) ? "=" : (allowed(from: from, to: to) ? "." : "X")
        }
    }

    static func render(_ cell: (ConformancePod, ConformancePod) -> String) -> String {
        let pods = ConformancePod.all
        var lines = ["from\\to " + pods.map { $0.description.padding(toLength: 4, withPad: " ", startingAt: 0) }.joined()]
        for from in pods {
            var line = from.description.padding(toLength: 8, withPad: " ", startingAt: 0)
            for to in pods { line += cell(from, to).padding(toLength: 4, withPad: " ", startingAt: 0) }
            lines.append(line.trimmingCharacters(in: .whitespaces))
        }
        return lines.joined(separator: "\n")
    }
}

/// Which probe a matrix is made of.
enum ProbeProtocol: String, Hashable, Comparable {
    case tcp, udp, icmp

    static func < (lhs: ProbeProtocol, rhs: ProbeProtocol) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One port, protocol and family: one 9x9 matrix of a scenario.
struct ProbeKind: Hashable, Comparable, CustomStringConvertible {
    let port: Int
    let proto: ProbeProtocol
    let family: AddressFamily

    static func tcp(_ port: Int, _ family: AddressFamily = .v4) -> ProbeKind { ProbeKind(port: port, proto: .tcp, family: family) }
    static func udp(_ port: Int, _ family: AddressFamily = .v4) -> ProbeKind { ProbeKind(port: port, proto: .udp, family: family) }
    /// An echo request (ping); the port is meaningless.
    static func icmp(_ family: AddressFamily = .v4) -> ProbeKind { ProbeKind(port: 0, proto: .icmp, family: family) }

    var description: String {
        proto == .icmp ? "icmp \(family == .v4 ? "(echo request)" : "v6 (echo request)")"
            : "\(proto.rawValue)/\(port)\(family == .v6 ? " v6" : "")"
    }

    static func < (lhs: ProbeKind, rhs: ProbeKind) -> Bool {
        (lhs.family.rawValue, lhs.proto, lhs.port) < (rhs.family.rawValue, rhs.proto, rhs.port)
    }

    /// `agentctl explain --port`: `80/tcp`, or the echo request `icmp/8` (`icmpv6/128`).
    var explainPort: String {
        guard proto == .icmp else { return "\(port)/\(proto.rawValue)" }
        return family == .v4 ? "icmp/8" : "icmpv6/128"
    }

    /// probe.py's TARGET for a destination pod.
    func target(_ to: ConformancePod) -> String {
        let host = to.address(family)
        let bracketed = family == .v6 ? "[\(host)]" : host
        return "\(proto.rawValue):\(bracketed):\(port)"
    }
}

/// What a matrix probe saw: for every (source, destination) whether the echo came back.
struct ObservedMatrix {
    var cells: [Reachability.Pair: Bool] = [:]

    func allowed(from: ConformancePod, to: ConformancePod) -> Bool {
        cells[Reachability.Pair(from: from, to: to)] ?? false
    }

    var description: String {
        Reachability.render { from, to in
            let open = allowed(from: from, to: to)
            if Reachability.isSelf(from, to) { return open ? "=" : "=X" }
            return open ? "." : "X"
        }
    }

    /// The cells that differ from the expectation (self-cells included: a blocked self-cell
    /// means the lab itself is broken).
    func mismatches(_ expected: Reachability) -> [(from: ConformancePod, to: ConformancePod, expected: Bool)] {
        var result: [(ConformancePod, ConformancePod, Bool)] = []
        for from in ConformancePod.all {
            for to in ConformancePod.all where allowed(from: from, to: to) != expected.allowed(from: from, to: to) {
                result.append((from, to, expected.allowed(from: from, to: to)))
            }
        }
        return result
    }

    /// "expected", "observed" and "comparison" tables, as the Kubernetes e2e prints them.
    func diff(_ expected: Reachability) -> String {
        let comparison = Reachability.render { from, to in
            self.allowed(from: from, to: to) == expected.allowed(from: from, to: to) ? "." : "X"
        }
        let all = mismatches(expected)
        var list = all.prefix(20).map { m in
            "  \(m.from) → \(m.to): expected \(m.expected ? "allowed" : "blocked"), got \(m.expected ? "blocked" : "allowed")"
        }
        if all.count > 20 { list.append("  ... and \(all.count - 20) more") }
        return "expected:\n\(expected)\n\nobserved:\n\(description)\n\n"
            + "comparison (X = differs):\n\(comparison)\n\n" + list.joined(separator: "\n")
    }
}
