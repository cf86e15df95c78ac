#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// The durable, append-only event record: JSON lines, each written with one `write` on an
/// O_APPEND descriptor and fsync'd before `append` returns, so an event the agent reports has
/// reached the disk. Records form a hash chain: `seq` counts up by one and `prev` is the SHA-256
/// of the previous line's bytes (without the newline), so `verify` finds any record changed,
/// removed, inserted or moved, except a change to the last line, which nothing follows yet.
///
/// One writer: appends are serialised by a lock, and an exclusive flock keeps a second agent
/// (or a second `EventLog` in this one) from interleaving its own chain into the file.
public final class EventLog: @unchecked Sendable {
    public static let genesisHash = String(repeating: "0", count: 64)

    /// Where a chain stands: the last record's seq and the hash of its line. A fresh file starts
    /// after `.genesis`; a rotated file would start after the last anchor of the one before.
    public struct Anchor: Hashable, Sendable {
        public var seq: UInt64
        public var hash: String
        public init(seq: UInt64, hash: String) { self.seq = seq; self.hash = hash }
        public static let genesis = Anchor(seq: 0, hash: EventLog.genesisHash)
    }

    public let path: String
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let lock = NSLock()
    // Guarded by `lock`.
    private var fd: Int32
    private var tail: Anchor

    /// Opens (creating it and its directory if missing) and reads the last record, so `seq`
    /// continues where the previous run stopped. A last line cut short by a crash is closed with
    /// a newline and chained over as it is; `verify` reports it.
    public init(path: String, logger: Logger = Logger(label: "palisade.events"),
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.path = path
        self.logger = logger
        self.now = now
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
            } catch {
                throw EventLogError("\(directory): cannot create the directory for the event record: \(error)")
            }
        }
        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw EventLogError("\(path): cannot open the event record: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            Glibc.close(fd)
            fd = -1
            if code == EWOULDBLOCK {
                throw EventLogError("\(path): another writer holds the event record (is a second agent using this data directory?)")
            }
            throw EventLogError("\(path): cannot lock the event record: \(String(cString: strerror(code)))")
        }
        tail = .genesis
        do {
            tail = try recoverTail()
            if tail == .genesis { syncDirectory(directory.isEmpty ? "." : directory) }
        } catch {
            Glibc.close(fd)
            fd = -1
            throw error
        }
    }

    deinit { close() }

    /// Releases the file (and its lock); later appends fail.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    /// The last record written: its seq and line hash.
    public var last: Anchor {
        lock.lock()
        defer { lock.unlock() }
        return tail
    }

    /// Stamps the event with the next `seq`, the time and the previous line's hash, writes it as
    /// one line and fsyncs. Returns the record as written.
    @discardableResult
    public func append(_ event: Event) throws -> Event {
        try append(contentsOf: [event])[0]
    }

    /// Appends the events in order, chained, with one write and one fsync: they are on disk
    /// together when this returns. Before writing, a file at or past `rotateBytes` is closed and
    /// renamed `events-<last seq>.jsonl`; the new file's first record chains on from its last.
    @discardableResult
    public func append(contentsOf events: [Event]) throws -> [Event] {
        guard !events.isEmpty else { return [] }
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { throw EventLogError("\(path): the event record is closed") }
        try rotateIfNeeded()
        var records: [Event] = []
        var bytes = Data()
        var anchor = tail
        let time = EventTime.truncatedToMilliseconds(now())
        for event in events {
            var record = event
            record.seq = anchor.seq + 1
            record.prev = anchor.hash
            record.time = time
            let line: Data
            do { line = try Self.encoder.encode(record) } catch {
                throw EventLogError("\(path): cannot encode a \(record.type) event: \(error)")
            }
            bytes.append(line)
            bytes.append(UInt8(ascii: "\n"))
            anchor = Anchor(seq: record.seq, hash: SHA256.hex(line))
            records.append(record)
        }
        do {
            try writeAll(bytes)
            guard fsync(fd) == 0 else { throw EventLogError("\(path): fsync: \(String(cString: strerror(errno)))") }
        } catch {
            // Part of the lines may be on disk: chain on from whatever the file now ends with.
            if let recovered = try? recoverTail() { tail = recovered }
            logger.error("events.append.failed", metadata: ["path": "\(path)", "type": "\(records[0].type)", "error": "\(error)"])
            throw error
        }
        tail = anchor
        return records
    }

    /// Rotation: at this size the file is set aside before the next append (0: never).
    public var rotateBytes = 64 << 20

    private func rotateIfNeeded() throws {
        guard rotateBytes > 0 else { return }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) >= rotateBytes, tail.seq > 0 else { return }
        let directory = (path as NSString).deletingLastPathComponent
        let rotated = Self.rotatedPath(path, lastSeq: tail.seq)
        guard rename(path, rotated) == 0 else {
            throw EventLogError("\(path): cannot rotate to \(rotated): \(String(cString: strerror(errno)))")
        }
        let next = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard next >= 0 else {
            let error = String(cString: strerror(errno))
            // Put the file back, so the record goes on where it was (unrotated) rather than not at all.
            _ = rename(rotated, path)
            throw EventLogError("\(path): cannot open a new file after rotating: \(error)")
        }
        _ = flock(next, LOCK_EX | LOCK_NB)
        Glibc.close(fd)
        fd = next
        syncDirectory(directory.isEmpty ? "." : directory)
        logger.info("events.rotated", metadata: ["to": "\(rotated)", "lastSeq": "\(tail.seq)"])
    }

    /// `<dir>/events-000000001234.jsonl` for a file whose last record has seq 1234.
    static func rotatedPath(_ path: String, lastSeq: UInt64) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        let base = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let digits = String(lastSeq)
        return (directory.isEmpty ? "" : directory + "/") + base + "-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".jsonl"
    }

    /// The files of the record, oldest first: the rotated ones, then the current one.
    public static func files(of path: String) -> [String] {
        let directory = (path as NSString).deletingLastPathComponent
        let base = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        let rotated = names.filter { $0.hasPrefix(base + "-") && $0.hasSuffix(".jsonl") }.sorted()
        return rotated.map { (directory.isEmpty ? "" : directory + "/") + $0 } + [path]
    }

    /// Verifies the whole record, rotated files included, each chaining on from the one before.
    public static func verifyAll(path: String) -> (verification: Verification, file: String?) {
        var anchor = Anchor.genesis
        var records = 0
        for file in files(of: path) where FileManager.default.fileExists(atPath: file) {
            let result = verify(path: file, after: anchor)
            records += result.records
            if !result.isIntact { return (Verification(records: records, issues: result.issues, last: result.last), file) }
            anchor = result.last
        }
        return (Verification(records: records, issues: [], last: anchor), nil)
    }

    // MARK: - Reading and verifying

    /// Every record of the file, in order; throws at the first line that is not a record.
    public static func read(path: String) throws -> [Event] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EventLogError("\(path): cannot read the event record")
        }
        var events: [Event] = []
        for (index, line) in lines(of: data).enumerated() {
            do {
                events.append(try decoder.decode(Event.self, from: line.bytes))
            } catch {
                throw EventLogError("\(path):\(index + 1): not an event record: \(describe(error))")
            }
        }
        return events
    }

    /// One line as a record, or nil if it is not one.
    public static func decode(_ line: Data) -> Event? {
        try? decoder.decode(Event.self, from: line)
    }

    public struct Issue: Hashable, Sendable, CustomStringConvertible {
        /// 1-based line in the file.
        public var line: Int
        /// The record's seq, if the line decodes.
        public var seq: UInt64?
        public var message: String
        public var description: String { "line \(line)\(seq.map { " (seq \($0))" } ?? ""): \(message)" }
    }

    public struct Verification: Hashable, Sendable {
        public var records: Int
        public var issues: [Issue]
        /// Where the chain ends: the next file of a rotation starts after it.
        public var last: Anchor
        public var isIntact: Bool { issues.isEmpty }
    }

    /// Checks the chain: every line is a record, `seq` counts up by one from `anchor.seq + 1`, and
    /// each `prev` is the SHA-256 of the line before it (of `anchor.hash` for the first line).
    /// Never throws: an unreadable file is an issue too.
    public static func verify(path: String, after anchor: Anchor = .genesis) -> Verification {
        guard let data = FileManager.default.contents(atPath: path) else {
            return Verification(records: 0, issues: [Issue(line: 0, seq: nil, message: "cannot read \(path)")], last: anchor)
        }
        var issues: [Issue] = []
        // Nil after a line that is not a record: it may have held the seq that comes next.
        var expectedSeq: UInt64? = anchor.seq + 1
        var previousHash = anchor.hash
        var previousLine = 0
        var records = 0
        var lastSeq = anchor.seq
        for (index, line) in lines(of: data).enumerated() {
            let number = index + 1
            defer {
                previousHash = SHA256.hex(line.bytes)
                previousLine = number
            }
            if !line.terminated {
                issues.append(Issue(line: number, seq: nil, message: "the last record is incomplete (no newline at the end)"))
            }
            let event: Event
            do { event = try decoder.decode(Event.self, from: line.bytes) } catch {
                issues.append(Issue(line: number, seq: nil, message: "not an event record: \(describe(error))"))
                expectedSeq = nil
                continue
            }
            records += 1
            if let expectedSeq, event.seq != expectedSeq {
                issues.append(Issue(line: number, seq: event.seq,
                                    message: "seq \(event.seq) where \(expectedSeq) was expected: a record is missing, added or out of order"))
            } else if expectedSeq == nil, event.seq <= lastSeq {
                issues.append(Issue(line: number, seq: event.seq,
                                    message: "seq \(event.seq) does not follow seq \(lastSeq): a record is out of order"))
            }
            if event.prev != previousHash {
                let what = previousLine == 0 ? "the start of the chain (\(previousHash.prefix(12))…)"
                                             : "the SHA-256 of line \(previousLine)"
                issues.append(Issue(line: number, seq: event.seq,
                                    message: "prev does not match \(what): the record before was changed, removed or reordered"))
            }
            expectedSeq = event.seq + 1
            lastSeq = event.seq
        }
        return Verification(records: records, issues: issues, last: Anchor(seq: lastSeq, hash: previousHash))
    }

    // MARK: - Private

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(EventTime.format(date))
        }
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = EventTime.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "time \"\(text)\" is not RFC 3339 UTC")
            }
            return date
        }
        return decoder
    }()

    /// One line of a JSON-lines file: its bytes without the newline, and whether a newline ended
    /// it (a last line without one may be a record cut short).
    public struct Line {
        public var bytes: Data
        public var terminated: Bool
    }

    /// The file's lines without their newlines; an empty last piece (after the final newline) is not
    /// a line. Also what the audit chain verifier and the evidence reports read files with.
    public static func lines(of data: Data) -> [Line] {
        var result: [Line] = []
        var start = data.startIndex
        while start < data.endIndex {
            if let newline = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
                result.append(Line(bytes: Data(data[start..<newline]), terminated: true))
                start = newline + 1
            } else {
                result.append(Line(bytes: Data(data[start...]), terminated: false))
                break
            }
        }
        return result
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "no \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not JSON" : "\(path): \(context.debugDescription)"
        default: return "\(error)"
        }
    }

    private func writeAll(_ data: Data) throws {
        var offset = 0
        while offset < data.count {
            let written = data.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return write(fd, base.advanced(by: offset), data.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw EventLogError("\(path): write: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Reads where the chain ends. The last line's hash is what the next record chains to, record
    /// or not; the seq is the last one of a line that decodes (0 if none does).
    private func recoverTail() throws -> Anchor {
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw EventLogError("\(path): stat: \(String(cString: strerror(errno)))") }
        let size = Int(status.st_size)
        if size == 0 {
            // A file started by a rotation chains on from the last record of the newest rotated one.
            guard let rotated = Self.files(of: path).dropLast().last,
                  let data = FileManager.default.contents(atPath: rotated),
                  let last = Self.lines(of: data).last(where: { $0.terminated }) else { return .genesis }
            let seq = (try? Self.decoder.decode(Event.self, from: last.bytes))?.seq ?? 0
            return Anchor(seq: seq, hash: SHA256.hex(last.bytes))
        }
        var end = size
        if try readBytes(at: size - 1, count: 1) != Data([UInt8(ascii: "\n")]) {
            logger.warning("events.incomplete_last_record", metadata: [
                "path": "\(path)", "effect": "closed with a newline and chained over; verify reports it"])
            try writeAll(Data([UInt8(ascii: "\n")]))
            guard fsync(fd) == 0 else { throw EventLogError("\(path): fsync: \(String(cString: strerror(errno)))") }
            end += 1
        }
        let lastLine = try readLastLine(endingBefore: end)
        let hash = SHA256.hex(lastLine)
        if let event = try? Self.decoder.decode(Event.self, from: lastLine) {
            return Anchor(seq: event.seq, hash: hash)
        }
        // Rare: the last line is not a record. Find the last seq in the whole file.
        logger.warning("events.last_line_not_a_record", metadata: ["path": "\(path)"])
        let data = FileManager.default.contents(atPath: path) ?? Data()
        let seq = Self.lines(of: data).reversed().lazy.compactMap { try? Self.decoder.decode(Event.self, from: $0.bytes) }.first?.seq
        return Anchor(seq: seq ?? 0, hash: hash)
    }

    /// The bytes of the line that ends with the newline at `end - 1`.
    private func readLastLine(endingBefore end: Int) throws -> Data {
        let lineEnd = end - 1
        var start = lineEnd
        var line = Data()
        let chunk = 64 * 1024
        while start > 0 {
            let from = max(0, start - chunk)
            let piece = try readBytes(at: from, count: start - from)
            if let newline = piece.lastIndex(of: UInt8(ascii: "\n")) {
                line = piece[(newline + 1)...] + line
                return Data(line)
            }
            line = piece + line
            start = from
        }
        return Data(line)
    }

    /// A new file's directory entry is durable only once its directory is synced.
    private func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        Glibc.close(descriptor)
    }

    private func readBytes(at offset: Int, count: Int) throws -> Data {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress!.advanced(by: done), count - done, off_t(offset + done))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw EventLogError("\(path): read: \(String(cString: strerror(errno)))")
            }
            if got == 0 { break }
            done += got
        }
        return Data(buffer[0..<done])
    }
}

public struct EventLogError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// RFC 3339 timestamps in UTC with milliseconds (`2025-03-01T12:00:00.123Z`): fixed width, so
/// they also sort as text.
enum EventTime {
    static func truncatedToMilliseconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds(date)) / 1000)
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    static func format(_ date: Date) -> String { format(milliseconds: milliseconds(date)) }

    /// The time `total` milliseconds after the epoch. Foundation's ISO8601DateFormatter writes the
    /// same text, but through ICU, whose date, calendar and zone tables then stay resident (about 4 MB of agentd).
    static func format(milliseconds total: Int64) -> String {
        var seconds = time_t(total >= 0 ? total / 1000 : (total - 999) / 1000)
        let millis = Int(total - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// Without the fraction (`2025-03-01T12:00:00Z`), the seconds cut, not rounded.
    static func formatSeconds(_ date: Date) -> String {
        var text = format(date)
        text.removeSubrange(text.index(text.endIndex, offsetBy: -5)..<text.index(before: text.endIndex))
        return text
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: the form `format` writes (any number of fraction digits).
    static func parse(_ text: String) -> Date? {
        parseMilliseconds(text).map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    /// As `parse`, in whole milliseconds after the epoch (no detour through a floating-point Date).
    static func parseMilliseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard bytes[index] >= 48, bytes[index] <= 57 else { return nil }
                value = value * 10 + Int(bytes[index] - 48)
            }
            return value
        }
        func separator(_ index: Int, _ character: Character) -> Bool { bytes[index] == character.asciiValue }
        guard separator(4, "-"), separator(7, "-"), separator(10, "T"), separator(13, ":"), separator(16, ":"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var millis = 0
        let zone = bytes.count - 1
        if zone > 19 {
            // Only the first three fraction digits count: the record's own precision.
            guard separator(19, "."), zone > 20, zone <= 29, number(20..<zone) != nil,
                  let digits = number(20..<min(zone, 23)) else { return nil }
            millis = digits * [100, 10, 1][min(zone, 23) - 21]
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        // Milliseconds as `format` wrote them, so a record read back equals the one appended.
        return Int64(seconds) * 1000 + Int64(millis)
    }
}
