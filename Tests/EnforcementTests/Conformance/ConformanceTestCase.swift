import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The conformance lab of issue 3, built once per test class and shared by its scenarios:
///
///   namespaces x, y, z (labels `ns: x` etc.; `kubernetes.io/metadata.name` is *not* written,
///   the agent must imply it), each with pods a, b, c (labels `pod: a` etc.)
///     x/a 198.18.1.1 2001:db8:1::1 plxa   x/b 198.18.1.2 ...   x/c 198.18.1.3 ...
///     y/a 198.18.2.1 2001:db8:2::1 plya   ...
///     z/a 198.19.3.1 2001:db8:3::1 plza   ...   (z sits in 198.19.0.0/16)
///   every pod serves TCP and UDP echo on 80 and 81, with container ports named
///   serve-80-tcp, serve-80-udp, serve-81-tcp, serve-81-udp.
///
/// A scenario replaces the policy files (and, if it says so, extra pod or namespace labels,
/// extra container ports or a namespace's default policy), runs `agentctl sync`, empties the
/// node's conntrack table, probes every ordered pair of pods on the ports it names, all at once,
/// and compares each 9x9 matrix with the truth table written from the Kubernetes (or Calico)
/// documentation. Where `agentctl explain` exists it must agree with the packets on every cell.
class ConformanceTestCase: XCTestCase {
    /// Seconds a first attempt may take; a cell expected open that failed gets a second try.
    static let probeTimeout = 0.5
    static let retryTimeout = 2.0
    static let servePorts = [80, 81]

    /// One lab per test class, keyed by the class.
    private static var environments: [ObjectIdentifier: ConformanceEnvironment] = [:]
    private static var setUpErrors: [ObjectIdentifier: Error] = [:]

    var environment: ConformanceEnvironment!
    var lab: Lab { environment.lab }
    var agent: Agent { environment.agent }

    override class func setUp() {
        super.setUp()
        let key = ObjectIdentifier(self)
        guard self != ConformanceTestCase.self, environments[key] == nil, setUpErrors[key] == nil else { return }
        do {
            try EnforcementTestCase.requireRootAndBinaries()
            let started = Date()
            environments[key] = try ConformanceEnvironment()
            print("conformance lab for \(self) ready in \(String(format: "%.1f", Date().timeIntervalSince(started))) s "
                  + "(tag \(environments[key]!.lab.tag)); agentctl explain "
                  + (environments[key]!.explainAvailable ? "exists: every cell is cross-checked"
                     : "does not exist in this build: the explain cross-check is skipped"))
        } catch {
            setUpErrors[key] = error
        }
    }

    override class func tearDown() {
        let key = ObjectIdentifier(self)
        if let environment = environments.removeValue(forKey: key) {
            print("conformance lab for \(self): " + environment.timingSummary)
            environment.tearDown()
        }
        setUpErrors.removeValue(forKey: key)
        super.tearDown()
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        continueAfterFailure = true
        let key = ObjectIdentifier(type(of: self))
        if let error = Self.setUpErrors[key] { throw error }
        guard let environment = Self.environments[key] else {
            throw CommandError(description: "the conformance lab of \(type(of: self)) was not built")
        }
        self.environment = environment
    }

    // MARK: - Scenario steps

    /// A scenario's name for messages: the test method, without "test".
    var scenario: String {
        // "-[Class testX]" or "Class.testX".
        let method = name.split(whereSeparator: { $0 == " " || $0 == "." }).last.map(String.init) ?? name
        let trimmed = method.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return trimmed.hasPrefix("test") ? String(trimmed.dropFirst(4)) : trimmed
    }

    /// Replaces the policy files (and the per-scenario state) and syncs. A rejected file fails
    /// the scenario, with the agent's own words, but the scenario goes on to probe so that the
    /// failure also shows what the agent enforces instead.
    func apply(_ policies: [PolicyFile], _ state: ScenarioState = ScenarioState(),
               file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try environment.apply(policies, state)
        if !result.succeeded {
            XCTFail("[\(scenario)] agentctl sync did not accept the scenario's files:\n\(result.transcript)",
                    file: file, line: line)
        }
    }

    /// Probes every matrix named in `expected` at once and fails, naming the scenario, with an
    /// expected/observed/comparison table per matrix that differs; then cross-checks explain.
    func expectMatrices(_ expected: [ProbeKind: Reachability], step: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
        let label = step.isEmpty ? scenario : "\(scenario) (\(step))"
        let kinds = expected.keys.sorted()
        // explain is pure computation in the agent and the probes mostly wait for timeouts:
        // the two run side by side (so the probe times below are measured under that load).
        let explaining = environment.explainAvailable ? ExplainJob(environment, kinds) : nil
        let started = Date()
        var observed = environment.probe(kinds, timeout: Self.probeTimeout)
        let elapsed = Date().timeIntervalSince(started)
        // A cell expected open that failed once gets one slower try (a first packet to a fresh
        // neighbour can be slow); a cell expected closed must have failed the first time.
        var retry: [ProbeKind: [Reachability.Pair]] = [:]
        for kind in kinds {
            for m in observed[kind]!.mismatches(expected[kind]!) where m.expected {
                retry[kind, default: []].append(Reachability.Pair(from: m.from, to: m.to))
            }
        }
        var retried = 0
        if !retry.isEmpty {
            let again = environment.probe(retry, timeout: Self.retryTimeout)
            for (kind, pairs) in retry {
                for pair in pairs where again[kind]?.cells[pair] == true {
                    observed[kind]!.cells[pair] = true
                    retried += 1
                }
            }
        }
        let cells = kinds.count * ConformancePod.all.count * ConformancePod.all.count
        print(String(format: "[%@] %d matri%@ (%d cells: %@) probed in %.2f s, %.2f s per 81-cell matrix%@",
                     label, kinds.count, kinds.count == 1 ? "x" : "ces", cells,
                     kinds.map(\.description).joined(separator: ", "), elapsed, elapsed / Double(kinds.count),
                     retried > 0 ? "; \(retried) open cell(s) needed a second try" : ""))
        environment.record(matrices: kinds.count, seconds: elapsed)
        XCTAssertLessThan(elapsed, 10, "[\(label)] probing \(kinds.count) matrices at once took \(elapsed) s",
                          file: file, line: line)

        var failures: [String] = []
        for kind in kinds where !observed[kind]!.mismatches(expected[kind]!).isEmpty {
            failures.append("── \(kind) ──\n" + observed[kind]!.diff(expected[kind]!))
        }
        if !failures.isEmpty {
            XCTFail("[\(label)] the packets disagree with the truth table "
                    + "(. allowed, X blocked, = self: always allowed, never through the node)\n"
                    + failures.joined(separator: "\n\n") + "\n\nagentctl rules:\n" + environment.rulesText(),
                    file: file, line: line)
        }
        if let explaining {
            crossCheckExplain(observed, explained: explaining.wait(), kinds: kinds, label: label, file: file, line: line)
        }
    }

    /// apply + expectMatrices.
    func check(_ policies: [PolicyFile], _ state: ScenarioState = ScenarioState(),
               expect expected: [ProbeKind: Reachability],
               file: StaticString = #filePath, line: UInt = #line) throws {
        try apply(policies, state, file: file, line: line)
        expectMatrices(expected, file: file, line: line)
    }

    /// `agentctl explain SRC DST --port N/PROTO` for every cell but the self-cells (which never
    /// reach the node) must give the verdict the packets gave.
    func crossCheckExplain(_ observed: [ProbeKind: ObservedMatrix],
                           explained: [ProbeKind: (verdicts: [Reachability.Pair: (ConformanceEnvironment.ExplainVerdict, String)], seconds: Double)],
                           kinds: [ProbeKind], label: String, file: StaticString, line: UInt) {
        for kind in kinds {
            guard let (verdicts, seconds) = explained[kind] else { continue }
            print(String(format: "[%@] explain cross-check of %@: %d cells in %.2f s",
                         label, kind.description, verdicts.count, seconds))
            var disagreements: [String] = []
            var sample: String?
            let table = Reachability.render { from, to in
                if Reachability.isSelf(from, to) { return "=" }
                let pair = Reachability.Pair(from: from, to: to)
                let packets = observed[kind]!.cells[pair] ?? false
                guard let entry = verdicts[pair] else { return "?" }
                let (verdict, output) = entry
                if verdict != (packets ? .allow : .deny), sample == nil {
                    sample = output
                }
                switch verdict {
                case .allow, .deny:
                    let said = verdict == .allow
                    if said == packets { return said ? "." : "X" }
                    disagreements.append("  \(from) → \(to): explain says \(said ? "ALLOW" : "DENY"), the packets were \(packets ? "allowed" : "blocked")")
                    return said ? "A!" : "D!"
                case .error(let text):
                    disagreements.append("  \(from) → \(to): explain gave no verdict: \(text)")
                    return "?"
                }
            }
            if !disagreements.isEmpty {
                XCTFail("[\(label)] agentctl explain disagrees with the packets on \(kind) "
                        + "(. X agree, A! explain ALLOW but blocked, D! explain DENY but allowed, ? no verdict):\n"
                        + table + "\n" + disagreements.prefix(20).joined(separator: "\n")
                        + (disagreements.count > 20 ? "\n  ... and \(disagreements.count - 20) more" : "")
                        + "\n\nthe first of them in full:\n" + (sample ?? ""),
                        file: file, line: line)
            }
        }
    }

    // MARK: - Kernel oracle for what cannot be probed (SCTP, and ICMP as a second witness)

    /// Fails unless some rule in a chain whose name contains `chainPart` satisfies `predicate`.
    func assertKernelRule(inChainContaining chainPart: String, _ what: String,
                          file: StaticString = #filePath, line: UInt = #line,
                          where predicate: (NftRule, NftRuleset) -> Bool) {
        guard let ruleset = environment.kernelRules() else {
            XCTFail("[\(scenario)] table inet palisade is not in the kernel", file: file, line: line)
            return
        }
        let candidates = ruleset.rules.filter { $0.chain.contains(chainPart) }
        if candidates.contains(where: { predicate($0, ruleset) }) { return }
        let chains = ruleset.chains.sorted()
        XCTFail("[\(scenario)] no rule \(what) in a chain named like *\(chainPart)* "
                + "(\(candidates.count) rules in such chains; chains: \(chains.joined(separator: ", ")))\n"
                + "agentctl rules:\n" + environment.rulesText(), file: file, line: line)
    }
}

// MARK: - Scenario inputs

/// One policy file of a scenario.
struct PolicyFile {
    let name: String
    let yaml: String
}

/// networking.k8s.io/v1 NetworkPolicy `name` in namespace `ns`; `spec` is the body of `spec:`.
func networkPolicy(_ name: String, in ns: String, _ spec: String) -> PolicyFile {
    PolicyFile(name: name, yaml: """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: \(name)
          namespace: \(ns)
        spec:
        \(indent(spec))
        """)
}

/// projectcalico.org/v3 NetworkPolicy.
func calicoPolicy(_ name: String, in ns: String, _ spec: String) -> PolicyFile {
    PolicyFile(name: name, yaml: """
        apiVersion: projectcalico.org/v3
        kind: NetworkPolicy
        metadata:
          name: \(name)
          namespace: \(ns)
        spec:
        \(indent(spec))
        """)
}

/// projectcalico.org/v3 GlobalNetworkPolicy.
func globalNetworkPolicy(_ name: String, _ spec: String) -> PolicyFile {
    PolicyFile(name: name, yaml: """
        apiVersion: projectcalico.org/v3
        kind: GlobalNetworkPolicy
        metadata:
          name: \(name)
        spec:
        \(indent(spec))
        """)
}

private func indent(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n") + "\n"
}

/// The same truth table for several matrices: `same([.tcp(80), .udp(80)], r)`.
func same(_ kinds: [ProbeKind], _ reachability: Reachability) -> [ProbeKind: Reachability] {
    Dictionary(uniqueKeysWithValues: kinds.map { ($0, reachability) })
}

func + (lhs: [ProbeKind: Reachability], rhs: [ProbeKind: Reachability]) -> [ProbeKind: Reachability] {
    lhs.merging(rhs) { _, new in new }
}

/// What a scenario changes besides policies; everything returns to the base lab afterwards
/// (the next scenario writes the whole state again).
struct ScenarioState {
    /// Extra pod labels: ["x/b": ["foo": "bar"]].
    var podLabels: [String: [String: String]] = [:]
    /// Extra named container ports: ["x/a": [NamedPort("web", 80)]].
    var podPorts: [String: [NamedPort]] = [:]
    /// Extra namespace labels: ["y": ["env": "prod"]].
    var namespaceLabels: [String: [String: String]] = [:]
    /// `palisade.dev/default-policy` per namespace: ["y": "deny"].
    var namespaceDefaults: [String: String] = [:]

    init(podLabels: [String: [String: String]] = [:], podPorts: [String: [NamedPort]] = [:],
         namespaceLabels: [String: [String: String]] = [:], namespaceDefaults: [String: String] = [:]) {
        self.podLabels = podLabels
        self.podPorts = podPorts
        self.namespaceLabels = namespaceLabels
        self.namespaceDefaults = namespaceDefaults
    }
}

struct NamedPort: Hashable {
    let name: String
    let port: Int
    let proto: String

    init(_ name: String, _ port: Int, _ proto: String = "TCP") {
        self.name = name
        self.port = port
        self.proto = proto
    }

    /// The four ports every conformance pod declares.
    static let standard: [NamedPort] = ConformanceTestCase.servePorts.flatMap { port in
        [NamedPort("serve-\(port)-tcp", port, "TCP"), NamedPort("serve-\(port)-udp", port, "UDP")]
    }
}

// MARK: - The shared lab

final class ConformanceEnvironment {
    let work: URL
    let lab: Lab
    let state: StateDirectory
    let agent: Agent
    private(set) var explainAvailable = false
    private var servers: [BackgroundProcess] = []
    private var written: [String: String] = [:]
    private var batches: [(matrices: Int, seconds: Double)] = []

    func record(matrices: Int, seconds: Double) { batches.append((matrices, seconds)) }

    var timingSummary: String {
        let matrices = batches.map(\.matrices).reduce(0, +)
        let seconds = batches.map(\.seconds).reduce(0, +)
        guard matrices > 0 else { return "no matrix probed" }
        let single = batches.filter { $0.matrices == 1 }.map(\.seconds)
        return String(format: "%d probe batches, %d matrices of 81 cells in %.1f s of probing: %.2f s per matrix on average, "
                      + "slowest batch %.2f s; batches of a single matrix took %.2f-%.2f s",
                      batches.count, matrices, seconds, seconds / Double(matrices), batches.map(\.seconds).max() ?? 0,
                      single.min() ?? 0, single.max() ?? 0)
    }

    init() throws {
        let template = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-conformance.XXXXXX").path
        var buffer = Array(template.utf8CString)
        guard mkdtemp(&buffer) != nil else { throw CommandError(description: "mkdtemp failed: errno \(errno)") }
        work = URL(fileURLWithPath: String(cString: buffer))
        let labPods = ConformancePod.all.map {
            LabPod(name: $0.labName, namespace: $0.namespace, labels: ["pod": $0.name],
                   ipv4: $0.ipv4, ipv6: $0.ipv6, interface: $0.interface)
        }
        var madeLab: Lab?
        var madeAgent: Agent?
        do {
            let lab = try Lab(pods: labPods, work: work)
            madeLab = lab
            try Self.startServers(lab: lab, work: work, into: &servers)
            let state = try StateDirectory(url: work.appendingPathComponent("state"))
            let agent = try Agent(netns: lab.nodeNamespace, work: work, stateDirectory: state.url)
            madeAgent = agent
            self.lab = lab
            self.state = state
            self.agent = agent
            try writeState(ScenarioState())
            try agent.start()
            try agent.sync()
        } catch {
            if let madeAgent { print("agentd log of the failed conformance set-up:\n\(madeAgent.log.suffix(6000))") }
            madeAgent?.stop()
            for server in servers { server.stop(grace: 1) }
            madeLab?.tearDown()
            try? FileManager.default.removeItem(at: work)
            throw error
        }
        explainAvailable = Self.explainExists()
    }

    func tearDown() {
        agent.stop()
        for server in servers { server.stop(grace: 1) }
        lab.tearDown()
        try? FileManager.default.removeItem(at: work)
    }

    /// The lab's own servers echo on 8080/9090/5353; the conformance ports come on top.
    private static func startServers(lab: Lab, work: URL, into servers: inout [BackgroundProcess]) throws {
        for pod in ConformancePod.all {
            let ready = work.appendingPathComponent("ready-conformance-\(pod.labName)")
            var arguments = ["ip", "netns", "exec", lab.netns(pod.labName), "python3", Lab.probeScript, "serve"]
            arguments += ["--tcp"] + ConformanceTestCase.servePorts.map(String.init)
            arguments += ["--udp"] + ConformanceTestCase.servePorts.map(String.init)
            arguments += ["--ready-file", ready.path]
            servers.append(try BackgroundProcess(arguments, log: work.appendingPathComponent("server-conformance-\(pod.labName).log")))
        }
        for (index, pod) in ConformancePod.all.enumerated() {
            let ready = work.appendingPathComponent("ready-conformance-\(pod.labName)").path
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: ready) {
                guard Date() < deadline, servers[index].isRunning else {
                    throw CommandError(description: "echo server (80/81) in \(lab.netns(pod.labName)) did not start:\n"
                                       + servers[index].output)
                }
                usleep(20_000)
            }
        }
    }

    /// `agentctl explain --help` describes the subcommand once it exists; until then the
    /// argument parser answers with the top-level help.
    static func explainExists() -> Bool {
        guard let result = try? Command.run([Agent.agentctlPath, "explain", "--help"], timeout: 10) else { return false }
        let text = result.stdout + result.stderr
        return text.contains("agentctl explain") || text.lowercased().contains("usage: agentctl explain")
    }

    // MARK: State

    static func namespaceYAML(_ name: String, labels: [String: String], defaultPolicy: String?) -> String {
        // No kubernetes.io/metadata.name here: the agent must imply it, as Kubernetes does.
        var text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \(name)\n  labels:\n"
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { text += "    \(key): \"\(value)\"\n" }
        if let defaultPolicy { text += "  annotations:\n    palisade.dev/default-policy: \(defaultPolicy)\n" }
        return text
    }

    static func podYAML(_ pod: ConformancePod, labels: [String: String], ports: [NamedPort]) -> String {
        var text = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: \(pod.name)
              namespace: \(pod.namespace)
              annotations:
                palisade.dev/interface: \(pod.interface)
              labels:

            """
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { text += "    \(key): \"\(value)\"\n" }
        text += """
            spec:
              containers:
              - name: echo
                image: registry.example/echo:1
                ports:

            """
        for port in ports {
            text += "    - name: \(port.name)\n      containerPort: \(port.port)\n      protocol: \(port.proto)\n"
        }
        text += """
            status:
              phase: Running
              podIP: \(pod.ipv4)
              podIPs:
              - ip: \(pod.ipv4)
              - ip: "\(pod.ipv6)"

            """
        return text
    }

    /// Writes namespaces and pods as the scenario wants them, touching only files that change.
    func writeState(_ scenario: ScenarioState) throws {
        var files: [String: String] = [:]
        for ns in ConformancePod.namespaces {
            let labels = ["ns": ns].merging(scenario.namespaceLabels[ns] ?? [:]) { $1 }
            files["namespaces/\(ns).yaml"] = Self.namespaceYAML(ns, labels: labels, defaultPolicy: scenario.namespaceDefaults[ns])
        }
        for pod in ConformancePod.all {
            let labels = ["pod": pod.name].merging(scenario.podLabels[pod.description] ?? [:]) { $1 }
            files["pods/\(pod.namespace)-\(pod.name).yaml"] = Self.podYAML(
                pod, labels: labels, ports: NamedPort.standard + (scenario.podPorts[pod.description] ?? []))
        }
        for (path, text) in files.sorted(by: { $0.key < $1.key }) where written[path] != text {
            try state.write(path, text)
            written[path] = text
        }
    }

    /// Replaces every policy file and the per-scenario state, syncs, and forgets every tracked
    /// connection in the node, so that no flow of an earlier scenario passes as established.
    func apply(_ policies: [PolicyFile], _ scenario: ScenarioState) throws -> CommandResult {
        let directory = state.path("policies")
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: directory.path) {
            for name in existing { try FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
        }
        try writeState(scenario)
        for (index, policy) in policies.enumerated() {
            try state.write(String(format: "policies/%02d-%@.yaml", index, policy.name), policy.yaml)
        }
        let result = try agent.ctl(["sync"], timeout: 60)
        try Command.run(["ip", "netns", "exec", lab.nodeNamespace, "conntrack", "-F"], timeout: 10)
        return result
    }

    // MARK: Probing

    /// Every matrix at once: one probe.py per source pod, every destination and kind of it in
    /// parallel inside that process.
    func probe(_ kinds: [ProbeKind], timeout: Double) -> [ProbeKind: ObservedMatrix] {
        var wanted: [ProbeKind: [Reachability.Pair]] = [:]
        for kind in kinds {
            wanted[kind] = ConformancePod.all.flatMap { from in ConformancePod.all.map { Reachability.Pair(from: from, to: $0) } }
        }
        return probe(wanted, timeout: timeout)
    }

    func probe(_ wanted: [ProbeKind: [Reachability.Pair]], timeout: Double) -> [ProbeKind: ObservedMatrix] {
        var bySource: [ConformancePod: [(ProbeKind, ConformancePod)]] = [:]
        for (kind, pairs) in wanted {
            for pair in pairs { bySource[pair.from, default: []].append((kind, pair.to)) }
        }
        let sources = Array(bySource.keys)
        let lock = NSLock()
        var result: [ProbeKind: ObservedMatrix] = [:]
        for kind in wanted.keys { result[kind] = ObservedMatrix() }
        parallel(sources.count, width: sources.count) { index in
            let source = sources[index]
            let probes = bySource[source]!
            let targets = probes.map { $0.0.target($0.1) }
            let arguments = ["ip", "netns", "exec", self.lab.netns(source.labName), "python3", Lab.probeScript,
                             "check", "--timeout", String(timeout)] + targets
            let output = (try? Command.run(arguments, timeout: timeout + 20))?.stdout ?? ""
            var verdicts: [String: Bool] = [:]
            for line in output.split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count >= 2 { verdicts[String(words[1])] = words[0] == "ok" }
            }
            lock.lock()
            for (kind, to) in probes {
                result[kind]!.cells[Reachability.Pair(from: source, to: to)] = verdicts[kind.target(to)] ?? false
            }
            lock.unlock()
        }
        return result
    }

    // MARK: Explain

    enum ExplainVerdict: Equatable {
        case allow, deny
        case error(String)
    }

    /// explain for every non-self cell of one matrix; pods by name for v4, by address for v6.
    func explain(_ kind: ProbeKind) -> [Reachability.Pair: (ExplainVerdict, String)] {
        let pairs = ConformancePod.all.flatMap { from in
            ConformancePod.all.filter { $0 != from }.map { Reachability.Pair(from: from, to: $0) }
        }
        let lock = NSLock()
        var result: [Reachability.Pair: (ExplainVerdict, String)] = [:]
        parallel(pairs.count, width: 8) { index in
            let pair = pairs[index]
            let source = kind.family == .v4 ? pair.from.description : pair.from.ipv6
            let destination = kind.family == .v4 ? pair.to.description : pair.to.ipv6
            let verdict: ExplainVerdict
            var transcript = ""
            if let output = try? self.agent.ctl(["explain", source, destination, "--port", kind.explainPort], timeout: 20) {
                verdict = Self.parseVerdict(output)
                transcript = output.transcript
            } else {
                verdict = .error("agentctl did not run")
            }
            lock.lock()
            result[pair] = (verdict, transcript)
            lock.unlock()
        }
        return result
    }

    /// The verdict line: one that starts with "verdict" if there is one, else the first line
    /// that says ALLOW or DENY as a word.
    static func parseVerdict(_ output: CommandResult) -> ExplainVerdict {
        let found = verdictLine(output)
        // `agentctl explain --help`: exit 0 when allowed, 1 when denied, 2 when it cannot say.
        switch (found, output.status) {
        case (.allow, 1), (.deny, 0):
            return .error("the exit status \(output.status) contradicts the verdict line")
        default:
            return found
        }
    }

    static func verdictLine(_ output: CommandResult) -> ExplainVerdict {
        let lines = output.stdout.split(separator: "\n").map(String.init)
        func verdict(in line: String) -> ExplainVerdict? {
            let words = line.split(whereSeparator: { !$0.isLetter }).map(String.init)
            if let word = words.first(where: { $0 == "ALLOW" || $0 == "DENY" }) { return word == "ALLOW" ? .allow : .deny }
            return nil
        }
        let preferred = lines.filter { $0.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("verdict") }
        for line in preferred + lines {
            if let found = verdict(in: line) { return found }
        }
        let text = output.transcript.split(separator: "\n").prefix(6).joined(separator: " | ")
        return .error(text)
    }

    // MARK: Kernel

    func rulesText() -> String {
        guard let result = try? agent.ctl(["rules"]) else { return "(agentctl rules did not run)" }
        return result.succeeded ? result.stdout : result.transcript
    }

    func kernelRules() -> NftRuleset? {
        guard let result = try? Command.run(["ip", "netns", "exec", lab.nodeNamespace,
                                             "nft", "-j", "list", "table", "inet", "palisade"], timeout: 30),
              result.succeeded else { return nil }
        return try? NftRuleset(json: Data(result.stdout.utf8))
    }
}

/// `agentctl explain` for every cell of some matrices, on a thread of its own.
final class ExplainJob: @unchecked Sendable {
    typealias Result = [ProbeKind: (verdicts: [Reachability.Pair: (ConformanceEnvironment.ExplainVerdict, String)], seconds: Double)]
    private var result: Result = [:]
    private let done = DispatchSemaphore(value: 0)

    init(_ environment: ConformanceEnvironment, _ kinds: [ProbeKind]) {
        Thread.detachNewThread { [self] in
            var result: Result = [:]
            for kind in kinds {
                let started = Date()
                let verdicts = environment.explain(kind)
                result[kind] = (verdicts, Date().timeIntervalSince(started))
            }
            self.result = result
            self.done.signal()
        }
    }

    func wait() -> Result {
        done.wait()
        return result
    }
}

/// Runs `body(0..<count)` on up to `width` threads and returns when all are done.
func parallel(_ count: Int, width: Int, _ body: @escaping (Int) -> Void) {
    guard count > 0 else { return }
    let counter = SharedCounter()
    let group = DispatchGroup()
    for _ in 0..<min(width, count) {
        group.enter()
        Thread.detachNewThread {
            while true {
                let index = counter.next()
                guard index < count else { break }
                body(index)
            }
            group.leave()
        }
    }
    group.wait()
}

private final class SharedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}

// MARK: - Rules as nft -j prints them

/// The rules and sets of the table, from `nft -j list table`: what the kernel holds.
struct NftRuleset {
    let rules: [NftRule]
    let chains: [String]
    /// Set name → its elements as nft -j gives them.
    let sets: [String: [Any]]

    init(json: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: json) as? [String: Any],
              let objects = root["nftables"] as? [[String: Any]]
        else { throw CommandError(description: "nft -j printed no \"nftables\" array") }
        var rules: [NftRule] = []
        var sets: [String: [Any]] = [:]
        var chains: [String] = []
        for object in objects {
            if let chain = object["chain"] as? [String: Any], let name = chain["name"] as? String {
                chains.append(name)
            } else if let rule = object["rule"] as? [String: Any] {
                rules.append(NftRule(chain: rule["chain"] as? String ?? "", expr: rule["expr"] as? [Any] ?? [],
                                     comment: rule["comment"] as? String ?? ""))
            } else if let set = (object["set"] ?? object["map"]) as? [String: Any], let name = set["name"] as? String {
                sets[name] = set["elem"] as? [Any] ?? []
            }
        }
        self.rules = rules
        self.sets = sets
        self.chains = chains
    }
}

struct NftRule {
    let chain: String
    let expr: [Any]
    let comment: String

    /// The `match` statements: (left, right).
    var matches: [(left: Any, right: Any)] {
        expr.compactMap { statement in
            guard let match = (statement as? [String: Any])?["match"] as? [String: Any],
                  let left = match["left"], let right = match["right"] else { return nil }
            return (left, right)
        }
    }

    var verdicts: [String] {
        expr.compactMap { statement in
            guard let object = statement as? [String: Any] else { return nil }
            return ["accept", "drop", "goto", "jump", "return", "reject"].first { object[$0] != nil }
        }
    }

    /// Matches layer-4 protocol `name` (number `number`): `meta l4proto`, `ip protocol`,
    /// `ip6 nexthdr`, or a header field of that protocol (`sctp dport` implies it).
    func matchesProtocol(_ name: String, number: Int) -> Bool {
        for (left, right) in matches {
            let names = NftRule.leaves(left)
            let isProtocolKey = names.contains("l4proto") || names.contains("nexthdr")
                || (names.contains("protocol") && names.contains("ip"))
            if isProtocolKey && NftRule.covers(right, name: name, number: number, ruleset: nil) { return true }
            if let payload = (left as? [String: Any])?["payload"] as? [String: Any],
               payload["protocol"] as? String == name { return true }
            if NftRule.leaves(left).contains(name) { return true }    // e.g. a concat with a sctp field
        }
        return false
    }

    /// Matches destination port `port` (plain, range, anonymous or named set, or a concat
    /// set whose last component is the port).
    func matchesDestinationPort(_ port: Int, ruleset: NftRuleset) -> Bool {
        for (left, right) in matches where NftRule.leaves(left).contains("dport") {
            if NftRule.covers(right, name: nil, number: port, ruleset: ruleset) { return true }
        }
        return false
    }

    /// An ICMP type match (`icmp type echo-request` or its number).
    func matchesICMPType(_ name: String, number: Int) -> Bool {
        for (left, right) in matches {
            let names = NftRule.leaves(left)
            if names.contains("icmp") && names.contains("type"),
               NftRule.covers(right, name: name, number: number, ruleset: nil) { return true }
        }
        return false
    }

    /// Every string in a JSON value (keys and values).
    static func leaves(_ value: Any) -> Set<String> {
        var found: Set<String> = []
        func walk(_ value: Any) {
            if let text = value as? String { found.insert(text) }
            if let object = value as? [String: Any] {
                for (key, inner) in object { found.insert(key); walk(inner) }
            }
            if let array = value as? [Any] { array.forEach(walk) }
        }
        walk(value)
        return found
    }

    static func covers(_ right: Any, name: String?, number: Int, ruleset: NftRuleset?) -> Bool {
        if let value = right as? Int { return value == number }
        if let text = right as? String {
            if let name, text == name { return true }
            if text.hasPrefix("@"), let elements = ruleset?.sets[String(text.dropFirst())] {
                return elements.contains { covers($0, name: name, number: number, ruleset: ruleset) }
            }
            return Int(text) == number
        }
        if let array = right as? [Any] {    // a map element [key, value]
            return array.contains { covers($0, name: name, number: number, ruleset: ruleset) }
        }
        guard let object = right as? [String: Any] else { return false }
        if let range = object["range"] as? [Any], range.count == 2,
           let low = range[0] as? Int, let high = range[1] as? Int {
            return low <= number && number <= high
        }
        if let set = object["set"] as? [Any] {
            return set.contains { covers($0, name: name, number: number, ruleset: ruleset) }
        }
        if let element = object["elem"] as? [String: Any], let value = element["val"] {
            return covers(value, name: name, number: number, ruleset: ruleset)
        }
        if let concat = object["concat"] as? [Any], let last = concat.last {
            return covers(last, name: name, number: number, ruleset: ruleset)
        }
        return false
    }
}
