import Foundation
import PolicyModel

/// A file of the state directory that could not be used.
public struct RejectedFile: Codable, Hashable, Sendable {
    public var path: String
    public var line: Int
    public var message: String
    public var description: String { "\(path):\(line): \(message)" }
}

/// Reads the state directory into desired state, keeping the last good content of every file:
/// a file that stops parsing keeps contributing what it held before, and is reported as rejected.
public final class StateLoader {
    public let directory: String
    private struct FileState {
        var content: Data?
        var objects: [StateObject]?        // last good objects, if any
        var rejection: RejectedFile?
    }
    private var files: [String: FileState] = [:]

    public init(directory: String) {
        self.directory = directory
    }

    public struct Result: Sendable {
        public var state: DesiredState
        public var rejected: [RejectedFile]
        /// Rejected files that have no last good content (their objects are missing from `state`).
        public var rejectedWithoutLastGood: [RejectedFile]
        public var fileCount: Int
        /// Files whose outcome changed in this scan (newly rejected or newly accepted), for logging.
        public var newlyRejected: [RejectedFile]
        public var directoryError: String?
    }

    /// Whether a path is a state file: yaml/yml/json, not hidden, not an editor's temp file.
    public static func isStateFile(_ name: String) -> Bool {
        if name.hasPrefix(".") || name.hasPrefix("#") || name.hasSuffix("~") { return false }
        let lower = name.lowercased()
        return lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") || lower.hasSuffix(".json")
    }

    /// Rescans the directory. Files whose bytes did not change are not parsed again.
    public func scan() -> Result {
        var seen: Set<String> = []
        var newlyRejected: [RejectedFile] = []
        var directoryError: String?
        let paths: [String]
        do {
            paths = try listStateFiles()
        } catch {
            directoryError = "\(directory): \(error.localizedDescription)"
            paths = files.keys.sorted()   // keep what we had: an unreadable directory costs no enforcement
            seen = Set(paths)
        }
        for path in paths where directoryError == nil {
            seen.insert(path)
            let data = FileManager.default.contents(atPath: path)
            if let known = files[path], let data, known.content == data { continue }
            var entry = files[path] ?? FileState(content: nil, objects: nil, rejection: nil)
            entry.content = data
            do {
                guard let data else {
                    throw DocumentError(location: SourceLocation(file: path, line: 1), message: "cannot read the file")
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw DocumentError(location: SourceLocation(file: path, line: 1), message: "the file is not UTF-8 text")
                }
                let objects = try DocumentDecoder.decode(text, path: path)
                // A file truncated to zero bytes is most likely being rewritten in place
                // (`kubectl get ... > file`): dropping its objects would open what they closed, so
                // keep them until the file has content again.
                if data.isEmpty, let previous = entry.objects, !previous.isEmpty {
                    throw DocumentError(location: SourceLocation(file: path, line: 1),
                                        message: "the file is empty; its \(previous.count) objects stay in force until it has content again (delete the file to remove them)")
                }
                entry.objects = objects
                entry.rejection = nil
            } catch let error as DocumentError {
                let rejection = RejectedFile(path: path, line: error.location.line, message: error.message)
                if entry.rejection != rejection { newlyRejected.append(rejection) }
                entry.rejection = rejection
            } catch {
                let rejection = RejectedFile(path: path, line: 1, message: "\(error)")
                if entry.rejection != rejection { newlyRejected.append(rejection) }
                entry.rejection = rejection
            }
            files[path] = entry
        }
        for path in files.keys where !seen.contains(path) { files[path] = nil }

        var objects: [StateObject] = []
        var rejected: [RejectedFile] = []
        var withoutLastGood: [RejectedFile] = []
        for path in files.keys.sorted() {
            let entry = files[path]!
            objects += entry.objects ?? []
            if let rejection = entry.rejection {
                rejected.append(rejection)
                if entry.objects == nil { withoutLastGood.append(rejection) }
            }
        }
        return Result(state: DesiredState(objects: objects), rejected: rejected,
                      rejectedWithoutLastGood: withoutLastGood, fileCount: files.count,
                      newlyRejected: newlyRejected, directoryError: directoryError)
    }

    private func listStateFiles() throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConfigError("the state directory does not exist or is not a directory")
        }
        var result: [String] = []
        var pending = [directory]
        // Each directory once, by its real path: a symlink loop must not make the scan endless.
        var visited: Set<String> = []
        while let current = pending.popLast() {
            guard visited.insert(URL(fileURLWithPath: current).resolvingSymlinksInPath().path).inserted else { continue }
            let names = try FileManager.default.contentsOfDirectory(atPath: current)
            for name in names where !name.hasPrefix(".") {
                let path = current.hasSuffix("/") ? current + name : current + "/" + name
                var childIsDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &childIsDirectory) else { continue }
                if childIsDirectory.boolValue {
                    pending.append(path)
                } else if Self.isStateFile(name) {
                    result.append(path)
                }
            }
        }
        return result.sorted()
    }

    public var knownFiles: [String] { files.keys.sorted() }
}
