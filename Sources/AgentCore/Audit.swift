#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PolicyModel

/// The audit trail of desired-state changes (issue 7): every object of the state directory that
/// is created, updated or deleted becomes an event in the event record, with the object's kind,
/// namespace and name, the file and its owner as the actor, a readable diff of what changed, the
/// generation it was applied in and whether the kernel accepted it.
///
/// Across restarts the agent compares with what it last recorded (`<data>/audit-objects.json`: a
/// digest per object), so a restart logs only what changed while it was down, not every object
/// again.
enum AuditText {
    /// The object as `path: value` lines, in a stable order: nested fields by name, list items by
    /// index, dictionary entries by key. Where the object came from (`location`) is left out.
    static func lines(of object: StateObject) -> [String] {
        switch object {
        case .namespace(let value): return lines(of: value, path: "")
        case .endpoint(let value): return lines(of: value, path: "")
        case .skippedPod(let value): return lines(of: value, path: "")
        case .networkPolicy(let value): return lines(of: value, path: "")
        case .calicoPolicy(let value): return lines(of: value, path: "")
        case .quarantine(let value): return lines(of: value, path: "")
        }
    }

    static func lines(of value: Any, path: String) -> [String] {
        let mirror = Mirror(reflecting: value)
        func joined(_ label: String) -> String { path.isEmpty ? label : path + "." + label }
        switch mirror.displayStyle {
        case .optional:
            guard let child = mirror.children.first else { return [] }
            return lines(of: child.value, path: path)
        case .struct, .class:
            if mirror.children.isEmpty { return ["\(path): \(value)"] }
            return mirror.children.flatMap { child -> [String] in
                guard let label = child.label, label != "location" else { return [] }
                return lines(of: child.value, path: joined(label))
            }
        case .collection:
            let items = Array(mirror.children)
            if items.isEmpty { return [] }
            return items.enumerated().flatMap { lines(of: $0.element.value, path: "\(path)[\($0.offset)]") }
        case .set:
            return mirror.children.map { "\($0.value)" }.sorted().map { "\(path)[]: \($0)" }
        case .dictionary:
            var entries: [(String, Any)] = []
            for child in mirror.children {
                let pair = Array(Mirror(reflecting: child.value).children)
                guard pair.count == 2 else { continue }
                entries.append(("\(pair[0].value)", pair[1].value))
            }
            return entries.sorted { $0.0 < $1.0 }.flatMap { lines(of: $0.1, path: "\(path)[\($0.0)]") }
        case .enum:
            // A case with a payload: its name, then the payload's fields.
            guard let child = mirror.children.first, let label = child.label else { return ["\(path): \(value)"] }
            let payload = lines(of: child.value, path: joined(label))
            return payload.isEmpty ? ["\(path): \(label)"] : payload
        default:
            return ["\(path): \(value)"]
        }
    }

    /// A readable diff: removed lines with `-`, added ones with `+`, at most `limit` characters.
    static func diff(_ before: StateObject?, _ after: StateObject?, limit: Int = 4000) -> String {
        diff(lines: before.map(lines(of:)) ?? [], after.map(lines(of:)) ?? [], limit: limit)
    }

    static func diff(lines old: [String], _ new: [String], limit: Int = 4000) -> String {
        let oldSet = Set(old), newSet = Set(new)
        let text = (old.filter { !newSet.contains($0) }.map { "- " + $0 } + new.filter { !oldSet.contains($0) }.map { "+ " + $0 })
            .joined(separator: "\n")
        return text.count > limit ? String(text.prefix(limit)) + "\n… (cut at \(limit) characters)" : text
    }

    /// A digest of the object's lines, to tell a changed object from an unchanged one across
    /// restarts (64 bits of SHA-256: this detects change, it does not guard against forgery).
    static func digest(_ object: StateObject) -> String { digest(lines: lines(of: object)) }

    static func digest(lines: [String]) -> String {
        String(SHA256.hex(Data(lines.joined(separator: "\n").utf8)).prefix(16))
    }
}

extension StateObject {
    var location: SourceLocation? {
        switch self {
        case .namespace(let value): return value.location
        case .endpoint(let value): return value.location
        case .skippedPod(let value): return value.location
        case .networkPolicy(let value): return value.location
        case .calicoPolicy(let value): return value.location
        case .quarantine(let value): return value.location
        }
    }

    /// `namespace/name`, or the name of a cluster-wide object.
    var auditName: String {
        switch self {
        case .namespace(let value): return value.name
        case .endpoint(let value): return value.id
        case .skippedPod(let value): return "\(value.namespace)/\(value.name)"
        case .networkPolicy(let value): return value.id
        case .calicoPolicy(let value): return value.namespace.map { "\($0)/\(value.name)" } ?? value.name
        case .quarantine(let value): return value.podID
        }
    }
}

/// What the audit trail last recorded of each object: its digest, file and owner. Persisted in
/// the data directory, written atomically.
struct AuditSnapshot: Codable {
    struct Entry: Codable, Equatable {
        var digest: String
        var kind: String
        var file: String?
    }
    var objects: [String: Entry] = [:]

    static func load(_ path: String) -> AuditSnapshot? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(AuditSnapshot.self, from: data)
    }

    /// Written one object at a time (the same JSON as encoding the whole), beside the file and
    /// then renamed over it.
    func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = Data("{\"objects\":{".utf8)
        var first = true
        try JSONFile.stream(to: path) { write in
            for key in objects.keys.sorted() {
                guard let entry = objects[key] else { continue }
                if !first { data.append(UInt8(ascii: ",")) }
                first = false
                data.append(try encoder.encode(key))
                data.append(UInt8(ascii: ":"))
                data.append(try encoder.encode(entry))
                if data.count >= 1 << 16 {
                    try write(data)
                    data.removeAll(keepingCapacity: true)
                }
            }
            data.append(Data("}}".utf8))
            try write(data)
        }
    }
}

/// A JSON file of the agent's, replaced whole: written in pieces by `body` beside it, then renamed
/// over it.
enum JSONFile {
    static func stream(to path: String, _ body: (_ write: (Data) throws -> Void) throws -> Void) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o640]),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw ConfigError("\(temporary): cannot write")
        }
        do {
            try body { try handle.write(contentsOf: $0) }
            try handle.close()
        } catch {
            try? handle.close()
            throw error
        }
        guard rename(temporary, path) == 0 else { throw ConfigError("\(path): \(String(cString: strerror(errno)))") }
    }

}

/// The owner of a file as the audit trail names actors: uid and user name.
enum FileOwner {
    static func actor(of path: String?) -> Actor {
        guard let path else { return Actor(uid: 0, user: "unknown", pid: 0) }
        var info = stat()
        guard stat(path, &info) == 0 else {
            // The file is gone (a delete): its directory's owner is the best witness left.
            let directory = (path as NSString).deletingLastPathComponent
            guard stat(directory, &info) == 0 else { return Actor(uid: 0, user: "unknown", pid: 0) }
            return Actor(uid: info.st_uid, user: UserDatabase.user(uid: info.st_uid)?.name ?? String(info.st_uid), pid: 0)
        }
        return Actor(uid: info.st_uid, user: UserDatabase.user(uid: info.st_uid)?.name ?? String(info.st_uid), pid: 0)
    }
}

extension EventType {
    public static let objectCreated = EventType("object.created")
    public static let objectUpdated = EventType("object.updated")
    public static let objectDeleted = EventType("object.deleted")
}

extension Agent {
    var auditSnapshotPath: String { dataDirectory + "/audit-objects.json" }

    /// Records the desired-state changes of one reconcile in the event record (one write, one
    /// fsync), with the outcome of the kernel update: applied, or failed (the last good rules stay).
    func recordAudit(_ changes: [ObjectChange], rejected: [RejectedFile], drift: Bool, complete: Bool, currentKeys: () -> [String]) {
        guard let events else { return }
        var snapshot = auditSnapshot ?? AuditSnapshot.load(auditSnapshotPath) ?? AuditSnapshot()
        let firstRun = auditSnapshot == nil
        let outcome: Outcome = lastError == nil ? .applied : .failed
        let generation = self.generation
        var records: [Event] = []
        // What the snapshot learns from the records not yet written: it advances only once they
        // are on disk, so a change whose record could not be written is recorded at the next start.
        var pending: [(key: String, entry: AuditSnapshot.Entry?)] = []
        var writeFailed = false
        func flush() {
            do {
                try events.append(contentsOf: records)
                for (key, entry) in pending { snapshot.objects[key] = entry }
            } catch {
                writeFailed = true
                logger.error("audit.write.failed", metadata: ["error": "\(error)", "events": "\(records.count)"])
            }
            records.removeAll(keepingCapacity: true)
            pending.removeAll(keepingCapacity: true)
        }
        func event(_ type: EventType, _ object: StateObject, key: String, diff: String, note: String? = nil) -> Event {
            var details = ["kind": object.kind, "name": object.auditName, "diff": diff]
            if let file = object.location?.file { details["file"] = file }
            if let note { details["note"] = note }
            return Event(type: type, actor: FileOwner.actor(of: object.location?.file), target: object.auditName,
                         outcome: outcome, error: outcome == .failed ? lastError : nil, generation: generation, details: details)
        }
        for change in changes {
            guard let object = change.after ?? change.before else { continue }
            let known = snapshot.objects[change.key]
            if let after = change.after {
                let afterLines = AuditText.lines(of: after)
                let digest = AuditText.digest(lines: afterLines)
                // The same content as recorded (a restart reading the file again): nothing happened.
                if known?.digest == digest { continue }
                let note = change.before == nil && known != nil ? "changed while the agent was not running; the earlier content is not known" : nil
                records.append(event(known == nil ? .objectCreated : .objectUpdated, after, key: change.key,
                                     diff: AuditText.diff(lines: change.before.map(AuditText.lines(of:)) ?? [], afterLines), note: note))
                // Thousands of objects at a first start: write as we go rather than hold them all.
                if outcome == .applied { pending.append((change.key, .init(digest: digest, kind: after.kind, file: after.location?.file))) }
                if records.count >= 1000 { flush() }
            } else {
                records.append(event(.objectDeleted, object, key: change.key, diff: AuditText.diff(change.before, nil)))
                if outcome == .applied { pending.append((change.key, nil)) }
            }
        }
        // After a restart: what was recorded and is gone now was deleted while the agent was down
        // (only when the whole directory was read and every file of it understood).
        if firstRun && complete {
            let present = Set(currentKeys())
            for (key, entry) in snapshot.objects where !present.contains(key) {
                records.append(Event(type: .objectDeleted, actor: FileOwner.actor(of: entry.file), target: String(key.split(separator: " ", maxSplits: 1).last ?? ""),
                                     outcome: outcome, generation: generation,
                                     details: ["kind": entry.kind, "note": "deleted while the agent was not running", "file": entry.file ?? ""]))
                if outcome == .applied { pending.append((key, nil)) }
            }
        }
        for rejection in rejected {
            records.append(Event(type: .fileRejected, actor: FileOwner.actor(of: rejection.path), target: rejection.path,
                                 outcome: .refused, error: rejection.message, details: ["line": "\(rejection.line)"]))
        }
        if drift {
            records.append(Event(type: .driftRepaired, actor: .agent, target: "inet \(config.compiler.tableName)", outcome: outcome,
                                 error: outcome == .failed ? lastError : nil, generation: generation))
        }
        defer { auditSnapshot = snapshot }
        guard !records.isEmpty || firstRun else { return }
        flush()
        let now = Date()
        if !writeFailed && (firstRun || now.timeIntervalSince(auditSnapshotSaved ?? .distantPast) >= 10) {
            do {
                try snapshot.save(auditSnapshotPath)
                auditSnapshotSaved = now
            } catch {
                logger.warning("audit.snapshot.failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
