#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// An append-only file of JSON lines with size-based rotation: when the file would grow past
/// `maximumBytes` it becomes `NAME.1` (the older ones shift to `.2` ... `.keep`, the oldest goes),
/// and a new file starts. Lines are written whole with one write(2) each, so a reader never sees half
/// a line except the one being written. Not thread-safe: one writer.
final class JSONLinesLog {
    let path: String
    let maximumBytes: Int
    let keep: Int
    private var fd: Int32 = -1
    private var size = 0

    init(path: String, maximumBytes: Int, keep: Int) {
        self.path = path
        self.maximumBytes = max(4096, maximumBytes)
        self.keep = max(1, keep)
    }

    deinit { if fd >= 0 { close(fd) } }

    func append(_ line: String) throws {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        if fd < 0 { try open() }
        if size > 0 && size + bytes.count > maximumBytes { try rotate() }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ConfigError("\(path): write failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        size += bytes.count
    }

    private func open() throws {
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ConfigError("\(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    private func rotate() throws {
        close(fd)
        fd = -1
        unlink("\(path).\(keep)")
        if keep > 1 {
            for index in stride(from: keep - 1, through: 1, by: -1) { rename("\(path).\(index)", "\(path).\(index + 1)") }
        }
        rename(path, "\(path).1")
        try open()
    }

    /// Where a reader is: the file (by inode) and the byte offset after the last line it saw.
    struct Cursor: Codable, Hashable {
        var inode: UInt64
        var offset: Int
        var text: String { "\(inode):\(offset)" }
        init(inode: UInt64, offset: Int) { self.inode = inode; self.offset = offset }
        init?(_ text: String) {
            let parts = text.split(separator: ":")
            guard parts.count == 2, let inode = UInt64(parts[0]), let offset = Int(parts[1]), offset >= 0 else { return nil }
            self.init(inode: inode, offset: offset)
        }
    }

    /// Lines of the file at `path` that `keepLine` accepts: the last `limit` of the current file
    /// (and, if it has fewer, of the file before it), or, with a cursor, those written since (all of
    /// the current file if it rotated meanwhile). Returns the lines and the cursor to ask with next.
    static func read(path: String, after cursor: Cursor?, limit: Int, where keepLine: (String) -> Bool) -> (lines: [String], cursor: Cursor) {
        var info = stat()
        guard stat(path, &info) == 0 else { return ([], Cursor(inode: 0, offset: 0)) }
        let inode = UInt64(info.st_ino)
        guard let handle = FileHandle(forReadingAtPath: path) else { return ([], Cursor(inode: inode, offset: 0)) }
        defer { try? handle.close() }
        var start = 0
        if let cursor, cursor.inode == inode, cursor.offset <= Int(info.st_size) { start = cursor.offset }
        try? handle.seek(toOffset: UInt64(start))
        let data = (try? handle.readToEnd()) ?? Data()
        // Only whole lines: a line still being written is left for the next read.
        var lines: [String] = []
        var end = 0                  // bytes of `data` consumed
        var lineStart = data.startIndex
        while let newline = data[lineStart...].firstIndex(of: 0x0A) {
            let line = String(decoding: data[lineStart..<newline], as: UTF8.self)
            lineStart = data.index(after: newline)
            // A follower gets the oldest new lines first and comes back for the rest.
            if cursor != nil && limit > 0 && lines.count == limit { break }
            end = data.distance(from: data.startIndex, to: lineStart)
            if !line.isEmpty && keepLine(line) { lines.append(line) }
        }
        if cursor == nil && lines.count < limit {
            // The newest lines may straddle a rotation.
            let older = read(path: path + ".1", after: nil, limit: 0, where: keepLine).lines
            lines = older + lines
        }
        if cursor == nil && lines.count > limit && limit > 0 { lines = Array(lines.suffix(limit)) }
        return (lines, Cursor(inode: inode, offset: start + end))
    }
}
