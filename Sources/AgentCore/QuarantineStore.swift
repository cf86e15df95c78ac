#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PolicyModel

/// Quarantines asked for through agentctl, kept as `palisade.dev/v1 Quarantine` documents in
/// `<data-dir>/quarantines/` — the same format as a Quarantine file in the state directory, so
/// both paths end in the same state and a restarted agent finds them again.
final class QuarantineStore {
    let directory: String
    private let loader: StateLoader

    init(directory: String) {
        self.directory = directory
        self.loader = StateLoader(directory: directory)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
    }

    /// The stored quarantines, and the files that could not be read (reported, never dropped silently).
    func load() -> (quarantines: [Quarantine], rejected: [RejectedFile]) {
        let scan = loader.scan()
        var rejected = scan.rejected
        if let error = scan.directoryError { rejected.append(RejectedFile(path: directory, line: 1, message: error)) }
        return (loader.desiredState().quarantines, rejected)
    }

    func path(for podID: String) -> String {
        directory + "/" + podID.replacingOccurrences(of: "/", with: ".") + ".yaml"
    }

    /// Writes the document durably: a temporary dotfile (ignored by the loader), fsync, rename,
    /// fsync of the directory.
    func write(_ quarantine: Quarantine) throws {
        let target = path(for: quarantine.podID)
        let temporary = directory + "/.tmp-" + UUID().uuidString
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigError("\(temporary): \(String(cString: strerror(errno)))") }
        let data = Array(quarantine.yaml.utf8)
        var written = 0
        while written < data.count {
            let count = data[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let error = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw ConfigError("\(temporary): \(error)")
            }
            written += count
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, target) == 0 else {
            let error = String(cString: strerror(errno))
            unlink(temporary)
            throw ConfigError("\(target): \(error)")
        }
        syncDirectory()
    }

    func remove(_ podID: String) throws {
        guard unlink(path(for: podID)) == 0 || errno == ENOENT else {
            throw ConfigError("\(path(for: podID)): \(String(cString: strerror(errno)))")
        }
        syncDirectory()
    }

    private func syncDirectory() {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
