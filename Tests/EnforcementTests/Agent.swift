import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The real agentd, started inside a lab's node namespace with its own state directory,
/// socket and data directory, and the real agentctl to talk to it.
final class Agent {
    let binDirectory: URL
    let netns: String
    let stateDirectory: URL
    let socket: URL
    let dataDirectory: URL
    let configuration: URL
    let work: URL
    private(set) var process: BackgroundProcess?
    private var starts = 0

    /// `PALISADE_BIN_DIR`, else the debug build of this checkout.
    static var binDirectory: URL {
        if let directory = ProcessInfo.processInfo.environment["PALISADE_BIN_DIR"], !directory.isEmpty {
            return URL(fileURLWithPath: directory)
        }
        return Lab.repository.appendingPathComponent(".build/debug")
    }

    static var agentctlPath: String { binDirectory.appendingPathComponent("agentctl").path }
    static var agentdPath: String { binDirectory.appendingPathComponent("agentd").path }

    init(netns: String, work: URL, stateDirectory: URL) throws {
        self.binDirectory = Self.binDirectory
        self.netns = netns
        self.work = work
        self.stateDirectory = stateDirectory
        self.socket = work.appendingPathComponent("agentd.sock")
        self.dataDirectory = work.appendingPathComponent("data")
        self.configuration = work.appendingPathComponent("agentd.yaml")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        try """
        defaultPolicy: allow
        tableName: palisade
        interfacePrefix: pl

        """.write(to: configuration, atomically: true, encoding: .utf8)
    }

    /// Starts agentd (`ip netns exec NODE agentd ...`: the pid is agentd's own, since ip
    /// execs it) and waits until it answers `status`.
    func start(timeout: TimeInterval = 20) throws {
        starts += 1
        let arguments = ["ip", "netns", "exec", netns, Self.agentdPath,
                         "--state-dir", stateDirectory.path, "--socket", socket.path,
                         "--data-dir", dataDirectory.path, "--config", configuration.path]
        let process = try BackgroundProcess(arguments, log: work.appendingPathComponent("agentd-\(starts).log"))
        self.process = process
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let result = try? ctl(["status", "-o", "json"], timeout: 5), result.succeeded { return }
            guard process.isRunning else {
                throw CommandError(description: "agentd exited (\(process.terminationStatus)) before answering:\n"
                                   + process.output)
            }
            guard Date() < deadline else {
                throw CommandError(description: "agentd did not answer `status` within \(timeout) s:\n"
                                   + process.output)
            }
            usleep(50_000)
        }
    }

    /// kill -9: no chance to clean anything up.
    func kill9() {
        guard let process else { return }
        process.send(SIGKILL)
        process.waitForExit(timeout: 5)
    }

    func stop() {
        process?.stop(grace: 3)
    }

    var log: String {
        guard starts > 0 else { return "" }
        return (1...starts).map { start in
            let url = work.appendingPathComponent("agentd-\(start).log")
            return "--- agentd run \(start) ---\n" + ((try? String(contentsOf: url, encoding: .utf8)) ?? "")
        }.joined(separator: "\n")
    }

    /// `agentctl --socket SOCKET ARGS...`, as the command-line contract spells it.
    @discardableResult
    func ctl(_ arguments: [String], timeout: TimeInterval = 30) throws -> CommandResult {
        try Command.run([Self.agentctlPath, "--socket", socket.path] + arguments,
                        environment: ["PALISADE_SOCKET": socket.path], timeout: timeout)
    }

    /// `agentctl sync`: returns once the kernel matches the directory; throws unless exit 0.
    func sync() throws {
        let result = try ctl(["sync"], timeout: 60)
        guard result.succeeded else {
            throw CommandError(description: "agentctl sync failed:\n\(result.transcript)")
        }
    }

    /// `agentctl status -o json`, decoded.
    func status() throws -> [String: Any] {
        let result = try ctl(["status", "-o", "json"])
        guard result.succeeded,
              let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else { throw CommandError(description: "agentctl status -o json:\n\(result.transcript)") }
        return object
    }

    /// Waits until `status` reports inSync (after a start the agent reconciles on its own).
    func waitUntilInSync(timeout: TimeInterval = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: Any] = [:]
        while Date() < deadline {
            if let status = try? self.status() {
                last = status
                if status["inSync"] as? Bool == true { return }
            }
            usleep(50_000)
        }
        throw CommandError(description: "agentd not in sync after \(timeout) s; last status: \(last)")
    }
}
