import Foundation
import XCTest

/// One workload of the lab: a network namespace joined to the node by a veth pair.
struct LabPod: Hashable {
    let name: String
    /// The Kubernetes namespace the pod claims in its state file.
    let namespace: String
    let labels: [String: String]
    let ipv4: String
    let ipv6: String
    /// The host-side interface, in the node namespace.
    let interface: String

    var spec: String { "\(name)=\(ipv4),\(ipv6),\(interface)" }
}

enum TransportProtocol: String {
    case tcp, udp
}

enum AddressFamily: String {
    case v4, v6
}

/// One attempt at a round trip: a fresh connection (TCP) or datagram (UDP) from a pod to a
/// port of another pod, answered by that pod's echo server.
struct Flow: Hashable, CustomStringConvertible {
    let from: String
    let to: String
    let port: Int
    let proto: TransportProtocol
    let family: AddressFamily

    var description: String { "\(from) → \(to) \(port)/\(proto.rawValue) \(family.rawValue)" }
}

/// The routed lab of DESIGN.md ("Test lab"), built by scripts/lab under a random tag, with
/// probe.py echo servers in every pod. Everything it creates lives in namespaces named
/// pal-<tag>-*, and `tearDown()` removes them (and what runs inside them).
final class Lab {
    static let tcpPorts = [8080, 9090]
    static let udpPorts = [5353]

    let tag: String
    let work: URL
    private(set) var pods: [String: LabPod] = [:]
    private var servers: [String: BackgroundProcess] = [:]
    private var isDown = false

    static var repository: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var labScript: String { repository.appendingPathComponent("scripts/lab").path }
    static var probeScript: String { repository.appendingPathComponent("scripts/probe.py").path }

    var nodeNamespace: String { "pal-\(tag)-node" }

    func netns(_ pod: String) -> String { "pal-\(tag)-\(pod)" }

    /// Builds the lab and starts the echo servers; on any failure removes what it made.
    init(pods: [LabPod], work: URL) throws {
        // scripts/test exports a per-run prefix so that it can sweep up after a crash.
        let requested = ProcessInfo.processInfo.environment["PALISADE_LAB_TAG_PREFIX"] ?? "e"
        let prefix = String(requested.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(6))
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        tag = prefix + String((0..<(12 - prefix.count)).map { _ in alphabet.randomElement()! })
        self.work = work
        do {
            try add(pods)
        } catch {
            tearDown()
            throw error
        }
    }

    /// Adds pods to a running lab (scripts/lab up is idempotent) and starts their servers.
    func add(_ newPods: [LabPod]) throws {
        try Command.check([Self.labScript, "up", tag] + newPods.map(\.spec), timeout: 60)
        for pod in newPods {
            pods[pod.name] = pod
            let ready = work.appendingPathComponent("ready-\(pod.name)")
            try? FileManager.default.removeItem(at: ready)
            var arguments = ["ip", "netns", "exec", netns(pod.name), "python3", Self.probeScript, "serve"]
            arguments += ["--tcp"] + Self.tcpPorts.map(String.init)
            arguments += ["--udp"] + Self.udpPorts.map(String.init)
            arguments += ["--ready-file", ready.path]
            servers[pod.name] = try BackgroundProcess(
                arguments, log: work.appendingPathComponent("server-\(pod.name).log"))
        }
        for pod in newPods {
            let ready = work.appendingPathComponent("ready-\(pod.name)").path
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: ready) {
                guard Date() < deadline, servers[pod.name]?.isRunning == true else {
                    throw CommandError(description: "echo server in \(netns(pod.name)) did not start:\n"
                                       + (servers[pod.name]?.output ?? ""))
                }
                usleep(20_000)
            }
        }
    }

    /// Stops the servers and removes every namespace of this lab. Safe to call twice.
    func tearDown() {
        guard !isDown else { return }
        isDown = true
        for server in servers.values { server.stop(grace: 1) }
        // scripts/lab down also stops anything still running inside the namespaces.
        if let result = try? Command.run([Self.labScript, "down", tag], timeout: 60), !result.succeeded {
            print("lab: tear-down of \(tag) failed:\n\(result.transcript)")
        }
    }

    func address(of pod: String, _ family: AddressFamily) -> String {
        guard let pod = pods[pod] else { return "unknown-pod-\(pod)" }
        return family == .v4 ? pod.ipv4 : pod.ipv6
    }

    private func target(_ flow: Flow) -> String {
        let host = address(of: flow.to, flow.family)
        let bracketed = flow.family == .v6 ? "[\(host)]" : host
        return "\(flow.proto.rawValue):\(bracketed):\(flow.port)"
    }

    /// Tries every flow once, all at the same time (one probe.py per source pod, every
    /// target of it in parallel), and says which got their echo back.
    func attempt(_ flows: [Flow], timeout: TimeInterval = 1.0) -> [Flow: Bool] {
        let bySource = Dictionary(grouping: flows, by: \.from)
        let sources = Array(bySource.keys)
        let lock = NSLock()
        var outcome: [Flow: Bool] = [:]
        DispatchQueue.concurrentPerform(iterations: sources.count) { index in
            let source = sources[index]
            let group = bySource[source] ?? []
            let targets = group.map(target)
            let arguments = ["ip", "netns", "exec", netns(source), "python3", Self.probeScript,
                             "check", "--timeout", String(timeout)] + targets
            let result = try? Command.run(arguments, timeout: timeout + 20)
            var verdicts: [String: Bool] = [:]
            for line in (result?.stdout ?? "").split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count >= 2 { verdicts[String(words[1])] = words[0] == "ok" }
            }
            lock.lock()
            for flow in group { outcome[flow] = verdicts[target(flow)] ?? false }
            lock.unlock()
        }
        return outcome
    }

    /// One round trip from pod `from` to pod `to`.
    func canConnect(from: String, to: String, port: Int, proto: TransportProtocol,
                    family: AddressFamily = .v4, timeout: TimeInterval = 1.0) -> Bool {
        let flow = Flow(from: from, to: to, port: port, proto: proto, family: family)
        return attempt([flow], timeout: timeout)[flow] ?? false
    }

    /// Starts a tight probe loop (probe.py watch) from one pod against a port of another:
    /// a new attempt every `interval` (default 5 ms for TCP, 2 ms for UDP). Stop it with
    /// `Watch.finish()`.
    func startWatch(_ flow: Flow, interval: TimeInterval? = nil) throws -> Watch {
        let name = "watch-\(flow.from)-\(flow.to)-\(flow.port)-\(flow.proto.rawValue)-\(flow.family.rawValue)"
        let stopFile = work.appendingPathComponent("\(name).stop")
        let arguments = ["ip", "netns", "exec", netns(flow.from), "python3", Self.probeScript, "watch",
                         address(of: flow.to, flow.family), String(flow.port),
                         "--proto", flow.proto.rawValue,
                         "--interval", String(interval ?? (flow.proto == .tcp ? 0.005 : 0.002)),
                         "--timeout", "0.5", "--stop-file", stopFile.path]
        let process = try BackgroundProcess(arguments, log: work.appendingPathComponent("\(name).log"))
        return Watch(flow: flow, process: process, stopFile: stopFile)
    }

    /// `nft -j list table inet NAME` in the node namespace: the kernel's own account of the
    /// rules, independent of what the agent reports. Nil if the table does not exist.
    func nftTable(_ name: String = "palisade") throws -> NftTable? {
        let result = try Command.run(["ip", "netns", "exec", nodeNamespace,
                                      "nft", "-j", "list", "table", "inet", name], timeout: 30)
        guard result.succeeded else { return nil }
        return try NftTable(json: Data(result.stdout.utf8))
    }
}

/// A running probe loop and, once finished, what it counted.
final class Watch {
    let flow: Flow
    let process: BackgroundProcess
    let stopFile: URL

    init(flow: Flow, process: BackgroundProcess, stopFile: URL) {
        self.flow = flow
        self.process = process
        self.stopFile = stopFile
    }

    struct Summary {
        let attempts: Int
        let breaches: Int
        let firstBreachAfter: Double?
    }

    /// Stops the loop and reads its summary.
    func finish() throws -> Summary {
        _ = FileManager.default.createFile(atPath: stopFile.path, contents: nil)
        if !process.waitForExit(timeout: 10) { process.stop(grace: 1) }
        let output = process.output
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let attempts = object["attempts"] as? Int,
              let breaches = object["breaches"] as? Int
        else { throw CommandError(description: "probe loop \(flow) printed no summary:\n\(output)") }
        return Summary(attempts: attempts, breaches: breaches,
                       firstBreachAfter: object["first_breach_after"] as? Double)
    }
}
