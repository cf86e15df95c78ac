#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Watches a directory tree with inotify and calls `onChange` (on its own thread) after any
/// change below it, with the paths of the state files that changed — or nil when it cannot say
/// (a directory came or went, the event queue overflowed): then the whole tree needs a rescan. It
/// does not debounce: the reconciler coalesces events.
public final class DirectoryWatcher {
    private let root: String
    private let onChange: @Sendable (Set<String>?) -> Void
    private var fd: Int32 = -1
    private var watches: [Int32: String] = [:]
    private var thread: Thread?

    public init(root: String, onChange: @escaping @Sendable (Set<String>?) -> Void) {
        self.root = StateLoader.normalized(root)
        self.onChange = onChange
    }

    deinit { if fd >= 0 { close(fd) } }

    private static let mask: UInt32 = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM
        | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB)

    public func start() throws {
        fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw ConfigError("inotify_init1: \(String(cString: strerror(errno)))") }
        addWatches(below: root)
        let thread = Thread { [weak self] in self?.run() }
        thread.name = "palisade.watcher"
        self.thread = thread
        thread.start()
    }

    private func addWatches(below directory: String) {
        // inotify gives the same watch descriptor for the same directory: one seen before (through
        // a symlink loop, say) is not descended into again.
        let wd = inotify_add_watch(fd, directory, Self.mask)
        if wd >= 0 {
            if let known = watches[wd] {
                if known == directory && directory != root { return }
                if known != directory {
                    // The same directory under another path: through a symlink loop (the old path
                    // is still there) it is not descended into again; after a rename (the old path
                    // is gone) its watches follow it, or events would name files that are not there.
                    if FileManager.default.fileExists(atPath: known) { return }
                    for (other, path) in watches where path.hasPrefix(known + "/") {
                        watches[other] = directory + path.dropFirst(known.count)
                    }
                }
            }
            watches[wd] = directory
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where !name.hasPrefix(".") {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                addWatches(below: path)
            }
        }
    }

    private func run() {
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer, bufferSize)
            if count < 0 {
                if errno == EINTR { continue }
                // Without events only the periodic resync still picks up changes: say so.
                FileHandle.standardError.write(Data("palisade: inotify read failed (\(String(cString: strerror(errno)))); file changes are now seen only at the periodic resync or on agentctl sync\n".utf8))
                return
            }
            var offset = 0
            var rootGone = false
            var paths: Set<String>? = []
            while offset + MemoryLayout<inotify_event>.size <= count {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameLength = Int(event.len)
                if event.mask & UInt32(IN_ISDIR) != 0 && event.mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0,
                   let parent = watches[event.wd], nameLength > 0 {
                    let namePointer = buffer.advanced(by: offset + MemoryLayout<inotify_event>.size)
                        .assumingMemoryBound(to: CChar.self)
                    addWatches(below: parent + "/" + String(cString: namePointer))
                }
                if event.mask & UInt32(IN_IGNORED) != 0 {
                    watches[event.wd] = nil
                } else if event.mask & UInt32(IN_ISDIR | IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF) != 0 || event.wd < 0 {
                    paths = nil
                } else if nameLength > 0, let parent = watches[event.wd] {
                    let name = String(cString: buffer.advanced(by: offset + MemoryLayout<inotify_event>.size)
                        .assumingMemoryBound(to: CChar.self))
                    // Named as the loader names it (see StateLoader.listStateFiles).
                    if StateLoader.isStateFile(name) { paths?.insert(parent.hasSuffix("/") ? parent + name : parent + "/" + name) }
                } else if nameLength > 0 {
                    paths = nil
                }
                if event.mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 && watches[event.wd] == root {
                    rootGone = true
                }
                offset += MemoryLayout<inotify_event>.size + nameLength
            }
            if paths?.isEmpty != true { onChange(paths) }
            if rootGone { waitForRoot() }
        }
    }

    /// The state directory was removed or moved away: poll until it is back, then watch it again.
    private func waitForRoot() {
        while true {
            sleep(1)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue {
                addWatches(below: root)
                onChange(nil)
                return
            }
        }
    }
}
