#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PolicyModel

/// A file of the state directory that could not be used.
public struct RejectedFile: Codable, Hashable, Sendable {
    public var path: String
    public var line: Int
    public var message: String
    public var description: String { "\(path):\(line): \(message)" }
}

/// One object whose effective value changed in a scan: nil before (created) or after (deleted).
public struct ObjectChange: Sendable {
    public var key: String
    public var before: StateObject?
    public var after: StateObject?
}

/// Reads the state directory into desired state, keeping the last good content of every file:
/// a file that stops parsing keeps contributing what it held before, and is reported as rejected.
/// It keeps an index of which file defines which object, so a scan of a few changed files costs
/// those files, not the directory, and says which objects changed.
public final class StateLoader {
    public let directory: String
    private struct FileState {
        /// Length and a keyed hash of the bytes last read: enough to skip an unchanged file
        /// without keeping every file's bytes in memory.
        var digest: ContentDigest?
        /// The file's owner when read: with namespace owners in force, a new owner can change the verdict.
        var owner: UInt32?
        var objects: [StateObject]?        // last good objects, if any
        var rejection: RejectedFile?
    }
    private var files: [String: FileState] = [:]
    /// Where each object (by `key`) is defined: file and position, in path order. Later
    /// definitions win (as in `DesiredState(objects:)`), except for quarantines, where the first does.
    private struct Definition: Comparable {
        var path: String
        var ordinal: Int
        static func < (a: Definition, b: Definition) -> Bool { (a.path, a.ordinal) < (b.path, b.ordinal) }
    }
    private var definitions: [String: [Definition]] = [:]
    /// The keys each file defines (the reverse of `definitions`).
    private var keysOfPath: [String: [String]] = [:]
    private var rejectedPaths: Set<String> = []
    /// The objects the files changed in the current scan held before it (for the "before" side).
    private var previousObjects: [String: [StateObject]] = [:]

    /// Checks who may change what a file holds: given the file's owner uid and its objects, nil to
    /// accept, else why the file is rejected (its last good content stays in force).
    public var authorize: ((_ ownerUID: UInt32, _ objects: [StateObject]) -> String?)?

    public init(directory: String) {
        self.directory = Self.normalized(directory)
    }

    /// A directory path without a trailing slash (but "/"), so file paths are named one way only.
    static func normalized(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }

    public struct Result: Sendable {
        public var rejected: [RejectedFile]
        /// Rejected files that have no last good content (their objects are missing from the state).
        public var rejectedWithoutLastGood: [RejectedFile]
        public var fileCount: Int
        /// Files whose outcome changed in this scan (newly rejected or newly accepted), for logging.
        public var newlyRejected: [RejectedFile]
        public var directoryError: String?
        /// The objects whose effective value changed, by key.
        public var changes: [ObjectChange]
        /// Whether this was a scan of the whole directory.
        public var complete: Bool
    }

    /// Whether a path is a state file: yaml/yml/json, not hidden, not an editor's temp file.
    public static func isStateFile(_ name: String) -> Bool {
        if name.hasPrefix(".") || name.hasPrefix("#") || name.hasSuffix("~") { return false }
        let lower = name.lowercased()
        return lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") || lower.hasSuffix(".json")
    }

    /// The identity of an object: one value per key is in force.
    public static func key(_ object: StateObject) -> String {
        switch object {
        case .namespace(let namespace): return "Namespace " + namespace.name
        case .endpoint(let endpoint): return "Pod " + endpoint.id
        case .skippedPod(let pod): return "Pod \(pod.namespace)/\(pod.name)"
        case .networkPolicy(let policy): return "NetworkPolicy " + policy.id
        case .calicoPolicy(let policy): return policy.kind + " " + policy.id
        case .quarantine(let quarantine): return "Quarantine " + quarantine.podID
        }
    }

    /// Rescans the directory. Files whose bytes did not change are not parsed again.
    public func scan() -> Result {
        var changed: Set<String> = []
        var newlyRejected: [RejectedFile] = []
        var directoryError: String?
        do {
            let paths = try listStateFiles()
            let listed = Set(paths)
            for path in paths where read(path, &newlyRejected) { changed.insert(path) }
            for path in files.keys where !listed.contains(path) {
                previousObjects[path] = files[path]?.objects ?? []
                files[path] = nil
                changed.insert(path)
            }
        } catch {
            // Keep what we had: an unreadable directory costs no enforcement.
            directoryError = "\(directory): \(error.localizedDescription)"
        }
        return finish(changed, newlyRejected, directoryError, complete: true)
    }

    /// Reads only these paths (files that inotify says were written, created or removed).
    public func update(paths: Set<String>) -> Result {
        var changed: Set<String> = []
        var newlyRejected: [RejectedFile] = []
        for path in paths {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            var isDirectory: ObjCBool = false
            if Self.isStateFile(name), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                if read(path, &newlyRejected) { changed.insert(path) }
            } else if files[path] != nil {
                previousObjects[path] = files[path]?.objects ?? []
                files[path] = nil
                changed.insert(path)
            }
        }
        return finish(changed, newlyRejected, nil, complete: false)
    }

    /// The keys of every object in force now.
    public var currentKeys: [String] { Array(definitions.keys) }

    /// The desired state the directory describes now.
    public func desiredState() -> DesiredState {
        var objects: [StateObject] = []
        objects.reserveCapacity(definitions.count)
        for key in definitions.keys {
            if let object = effective(key) { objects.append(object) }
        }
        return DesiredState(objects: objects)
    }

    /// Reads one file; returns whether its objects changed.
    private func read(_ path: String, _ newlyRejected: inout [RejectedFile]) -> Bool {
        let data = FileManager.default.contents(atPath: path)
        let digest = data.map(ContentDigest.init)
        var owner: UInt32?
        if authorize != nil {
            var info = stat()
            if stat(path, &info) == 0 { owner = info.st_uid }
        }
        if let known = files[path], let digest, known.digest == digest, known.owner == owner { return false }
        var entry = files[path] ?? FileState(digest: nil, owner: nil, objects: nil, rejection: nil)
        let before = entry.objects
        previousObjects[path] = before ?? []
        entry.digest = digest
        entry.owner = owner
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
            if let authorize, let owner, let refusal = authorize(owner, objects) {
                throw DocumentError(location: SourceLocation(file: path, line: 1), message: refusal)
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
        if entry.rejection != nil { rejectedPaths.insert(path) } else { rejectedPaths.remove(path) }
        return before != entry.objects || before == nil
    }

    /// Updates the index for the files whose objects changed and says which objects changed.
    private func finish(_ changed: Set<String>, _ newlyRejected: [RejectedFile], _ directoryError: String?,
                        complete: Bool) -> Result {
        for path in rejectedPaths where files[path] == nil { rejectedPaths.remove(path) }
        // Which keys each changed file defined, and defines now.
        var touched: Set<String> = []
        var added: [String: [Definition]] = [:]
        for path in changed {
            touched.formUnion(keysOfPath[path] ?? [])
            var keys: [String] = []
            for (ordinal, object) in (files[path]?.objects ?? []).enumerated() {
                let key = Self.key(object)
                keys.append(key)
                added[key, default: []].append(Definition(path: path, ordinal: ordinal))
            }
            touched.formUnion(keys)
            keysOfPath[path] = keys.isEmpty ? nil : keys
        }
        var before: [String: StateObject] = [:]
        for key in touched { before[key] = effective(key, previous: true) }
        previousObjects = [:]
        for key in touched {
            var list = (definitions[key] ?? []).filter { !changed.contains($0.path) }
            list += added[key] ?? []
            list.sort()
            definitions[key] = list.isEmpty ? nil : list
        }
        var changes: [ObjectChange] = []
        for key in touched.sorted() {
            let after = effective(key)
            if before[key] != after { changes.append(ObjectChange(key: key, before: before[key], after: after)) }
        }
        var rejected: [RejectedFile] = []
        var withoutLastGood: [RejectedFile] = []
        for path in rejectedPaths.sorted() {
            guard let entry = files[path], let rejection = entry.rejection else { continue }
            rejected.append(rejection)
            if entry.objects == nil { withoutLastGood.append(rejection) }
        }
        return Result(rejected: rejected, rejectedWithoutLastGood: withoutLastGood, fileCount: files.count,
                      newlyRejected: newlyRejected, directoryError: directoryError, changes: changes, complete: complete)
    }

    /// The value in force for a key; with `previous`, as it was before the files of this scan changed.
    private func effective(_ key: String, previous: Bool = false) -> StateObject? {
        guard let list = definitions[key], let definition = key.hasPrefix("Quarantine ") ? list.first : list.last else { return nil }
        let held = previous ? previousObjects[definition.path] ?? files[definition.path]?.objects : files[definition.path]?.objects
        guard let objects = held, definition.ordinal < objects.count else { return nil }
        return objects[definition.ordinal]
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

/// The length of some bytes and a hash of them keyed for this process (Swift's `Hasher`, seeded
/// at random per process, so file content cannot be crafted to collide).
struct ContentDigest: Hashable {
    var count: Int
    var hash: Int
    init(_ data: Data) {
        count = data.count
        var hasher = Hasher()
        data.withUnsafeBytes { hasher.combine(bytes: $0) }
        hash = hasher.finalize()
    }
}
