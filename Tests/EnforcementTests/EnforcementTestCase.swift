import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Base of the enforcement tests: each test gets a fresh lab (four pods in two namespaces,
/// plus one "rogue" pod whose interface has the workload prefix but that no state file
/// names), a state directory holding the namespaces and the four pods, and a running agentd
/// in the node namespace that has synced it. tearDown removes all of it, also on failure.
///
///   alpha (team=alpha):  a1 app=web  198.18.1.1 2001:db8::1:1 pla1
///                        a2 app=db   198.18.1.2 2001:db8::1:2 pla2
///   beta  (team=beta):   b1 app=client 198.18.2.1 2001:db8::2:1 plb1
///                        b2 app=web  198.18.2.2 2001:db8::2:2 plb2
///   (not in the state):  rogue       198.18.9.1 2001:db8::9:1 plrogue
///
/// Every pod echoes on TCP 8080 and 9090 and UDP 5353.
class EnforcementTestCase: XCTestCase {
    static let knownPods = [
        LabPod(name: "a1", namespace: "alpha", labels: ["app": "web"],
               ipv4: "198.18.1.1", ipv6: "2001:db8::1:1", interface: "pla1"),
        LabPod(name: "a2", namespace: "alpha", labels: ["app": "db"],
               ipv4: "198.18.1.2", ipv6: "2001:db8::1:2", interface: "pla2"),
        LabPod(name: "b1", namespace: "beta", labels: ["app": "client"],
               ipv4: "198.18.2.1", ipv6: "2001:db8::2:1", interface: "plb1"),
        LabPod(name: "b2", namespace: "beta", labels: ["app": "web"],
               ipv4: "198.18.2.2", ipv6: "2001:db8::2:2", interface: "plb2"),
    ]
    static let roguePod = LabPod(name: "rogue", namespace: "alpha", labels: ["app": "rogue"],
                                 ipv4: "198.18.9.1", ipv6: "2001:db8::9:1", interface: "plrogue")
    static let knownInterfaces = Set(knownPods.map(\.interface))

    var work: URL!
    var lab: Lab!
    var state: StateDirectory!
    var agent: Agent!

    override func setUpWithError() throws {
        try super.setUpWithError()
        try Self.requireRootAndBinaries()
        continueAfterFailure = true
        let template = FileManager.default.temporaryDirectory
            .appendingPathComponent("palisade-enforcement.XXXXXX").path
        var buffer = Array(template.utf8CString)
        guard mkdtemp(&buffer) != nil else { throw CommandError(description: "mkdtemp failed: errno \(errno)") }
        work = URL(fileURLWithPath: String(cString: buffer))
        do {
            lab = try Lab(pods: Self.knownPods + [Self.roguePod], work: work)
            state = try StateDirectory(url: work.appendingPathComponent("state"))
            try writeNamespaces()
            for pod in Self.knownPods {
                try state.write("pods/\(pod.name).yaml", Manifest.pod(pod))
            }
            agent = try Agent(netns: lab.nodeNamespace, work: work, stateDirectory: state.url)
            try agent.start()
            try agent.sync()
        } catch {
            if let agent { print("agentd log of the failed set-up of \(name):\n\(agent.log.suffix(6000))") }
            cleanUp()
            throw error
        }
    }

    override func tearDown() {
        if let run = testRun, run.totalFailureCount > 0, let agent {
            print("agentd log of the failed test \(name):\n\(agent.log.suffix(6000))")
        }
        cleanUp()
        super.tearDown()
    }

    private func cleanUp() {
        agent?.stop()
        lab?.tearDown()
        if let work { try? FileManager.default.removeItem(at: work) }
        agent = nil
        lab = nil
        work = nil
    }

    /// Root is needed for network namespaces: skipped without it, except in CI, where a
    /// skipped enforcement suite would pass for a green one.
    static func requireRootAndBinaries() throws {
        if getuid() != 0 {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw CommandError(description: "the enforcement tests need root, and CI=true: not skipping")
            }
            throw XCTSkip("the enforcement tests need root (network namespaces): run scripts/test as root")
        }
        for binary in [Agent.agentdPath, Agent.agentctlPath] where !FileManager.default.isExecutableFile(atPath: binary) {
            throw CommandError(description: "\(binary) is missing: run `swift build` first, or set PALISADE_BIN_DIR")
        }
    }

    // MARK: - State

    func writeNamespaces(alphaDefault: String? = nil, betaDefault: String? = nil) throws {
        let documents = [
            Manifest.namespace("alpha", labels: ["team": "alpha"], defaultPolicy: alphaDefault),
            Manifest.namespace("beta", labels: ["team": "beta"], defaultPolicy: betaDefault),
        ]
        try state.write("namespaces.yaml", documents.joined(separator: "---\n"))
    }

    /// Writes policies/NAME.yaml and syncs.
    func applyPolicy(_ name: String, _ yaml: String) throws {
        try state.write("policies/\(name).yaml", yaml)
        try agent.sync()
    }

    // MARK: - Traffic

    func tcp(_ from: String, _ to: String, port: Int = 8080, _ family: AddressFamily = .v4) -> Flow {
        Flow(from: from, to: to, port: port, proto: .tcp, family: family)
    }

    func udp(_ from: String, _ to: String, port: Int = 5353, _ family: AddressFamily = .v4) -> Flow {
        Flow(from: from, to: to, port: port, proto: .udp, family: family)
    }

    /// TCP 8080 and UDP 5353 from one pod to another, in each family given.
    func both(_ from: String, _ to: String, _ families: AddressFamily...) -> [Flow] {
        (families.isEmpty ? [.v4] : families).flatMap { [tcp(from, to, $0), udp(from, to, $0)] }
    }

    /// Sends every flow for real, all at once, and fails listing each flow whose fate
    /// differs from the expectation. A flow expected through gets one more try (the first
    /// packet to a fresh neighbour may be slow); a denied one must time out every time.
    func assertTraffic(allowed: [Flow] = [], denied: [Flow] = [], _ context: String = "",
                       file: StaticString = #filePath, line: UInt = #line) {
        let outcome = lab.attempt(allowed + denied)
        var blocked = allowed.filter { outcome[$0] != true }
        if !blocked.isEmpty {
            let retry = lab.attempt(blocked, timeout: 2)
            blocked = blocked.filter { retry[$0] != true }
        }
        let leaked = denied.filter { outcome[$0] != false }
        guard !blocked.isEmpty || !leaked.isEmpty else { return }
        var message = context.isEmpty ? "" : "\(context): "
        if !blocked.isEmpty {
            message += "expected through but blocked: \(blocked.map(\.description).joined(separator: ", ")). "
        }
        if !leaked.isEmpty {
            message += "expected denied but got through: \(leaked.map(\.description).joined(separator: ", ")). "
        }
        message += "\nKernel table:\n\(nftText())"
        XCTFail(message, file: file, line: line)
    }

    /// The table as `nft list` prints it, for failure messages.
    func nftText() -> String {
        let result = try? Command.run(["ip", "netns", "exec", lab.nodeNamespace,
                                       "nft", "list", "table", "inet", "palisade"])
        return result.map { $0.succeeded ? $0.stdout : $0.transcript } ?? "(nft did not run)"
    }

    // MARK: - Kernel oracle

    func kernelTable(file: StaticString = #filePath, line: UInt = #line) throws -> NftTable {
        guard let table = try lab.nftTable() else {
            XCTFail("table inet palisade is not in the kernel", file: file, line: line)
            throw CommandError(description: "table inet palisade is missing")
        }
        return table
    }

    /// Both dispatch maps are keyed by exactly these interfaces.
    func assertDispatchMaps(hold interfaces: Set<String>, file: StaticString = #filePath, line: UInt = #line) throws {
        let table = try kernelTable(file: file, line: line)
        for map in ["egress-dispatch", "ingress-dispatch"] {
            XCTAssertEqual(table.mapKeys(map), interfaces, "keys of map \(map)", file: file, line: line)
        }
    }

    /// Some selector set of the family holds exactly these addresses.
    func assertSelectorSet(_ family: AddressFamily, holds addresses: Set<String>,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let sets = try kernelTable(file: file, line: line).selectorSets(family)
        XCTAssertTrue(sets.contains { $0.elements == addresses },
                      "no \(family.rawValue) selector set holds exactly \(addresses.sorted()); the sets are "
                      + sets.map { "\($0.name): \($0.elements.sorted())" }.joined(separator: "; "),
                      file: file, line: line)
    }

    func addresses(_ pods: [String], _ family: AddressFamily) -> Set<String> {
        Set(pods.map { lab.address(of: $0, family) })
    }
}
