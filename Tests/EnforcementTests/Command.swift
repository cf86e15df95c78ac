import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a finished command did.
struct CommandResult {
    let arguments: [String]
    let status: Int32
    let stdout: String
    let stderr: String

    var succeeded: Bool { status == 0 }

    /// The command, its exit status and both outputs: what a failure message needs.
    var transcript: String {
        var text = "$ \(arguments.joined(separator: " "))\n(exit \(status))"
        if !stdout.isEmpty { text += "\nstdout:\n\(stdout)" }
        if !stderr.isEmpty { text += "\nstderr:\n\(stderr)" }
        return text
    }
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
}

/// Runs programs found on PATH, the way a shell would.
enum Command {
    /// Runs to completion (killed after `timeout` seconds) and captures both outputs.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:],
                    timeout: TimeInterval = 60) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()

        // Both pipes are drained while the command runs, so a chatty one never blocks.
        let reading = DispatchGroup()
        let outputData = DataBox()
        let errorData = DataBox()
        for (pipe, box) in [(output, outputData), (errors, errorData)] {
            reading.enter()
            DispatchQueue.global().async {
                box.data = pipe.fileHandleForReading.readDataToEndOfFile()
                reading.leave()
            }
        }
        let pid = process.processIdentifier
        let deadline = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: deadline)
        process.waitUntilExit()
        deadline.cancel()
        reading.wait()
        return CommandResult(arguments: arguments, status: process.terminationStatus,
                             stdout: String(decoding: outputData.data, as: UTF8.self),
                             stderr: String(decoding: errorData.data, as: UTF8.self))
    }

    /// Runs and throws, with the transcript, unless the command exits 0.
    @discardableResult
    static func check(_ arguments: [String], environment: [String: String] = [:],
                      timeout: TimeInterval = 60) throws -> CommandResult {
        let result = try run(arguments, environment: environment, timeout: timeout)
        guard result.succeeded else { throw CommandError(description: result.transcript) }
        return result
    }
}

/// Bytes handed from a reading thread to the waiting one (the DispatchGroup orders them).
private final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// A long-running program (an agent, an echo server, a probe loop) whose output goes to a
/// file, stopped by pid.
final class BackgroundProcess {
    let arguments: [String]
    let log: URL
    private let process = Process()

    init(_ arguments: [String], log: URL, environment: [String: String] = [:]) throws {
        self.arguments = arguments
        self.log = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try handle.close()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var terminationStatus: Int32 { process.terminationStatus }

    var output: String {
        (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    }

    func send(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the process to exit; false if it still runs after `timeout` seconds.
    @discardableResult
    func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// SIGTERM, then SIGKILL if it has not gone within `grace` seconds.
    func stop(grace: TimeInterval = 3) {
        guard process.isRunning else { return }
        send(SIGTERM)
        if !waitForExit(timeout: grace) {
            send(SIGKILL)
            waitForExit(timeout: 5)
        }
    }
}
