import Foundation
import Logging

/// The roles file as the control server sees it: read again on every request and parsed anew
/// when its bytes change, so a grant or a revocation counts from the next request on, with no
/// signal to send and no window in which a stale grant outlives an edit.
///
/// A missing file means no grants (root only). A file that does not parse keeps the last good
/// roles in force (none, if it never parsed), and is logged once per broken version.
public final class RolesFile: @unchecked Sendable {
    public let path: String
    private let logger: Logger
    private let lock = NSLock()
    // Guarded by `lock`.
    private var lastBytes: Data?
    private var lastMissing = false
    private var roles = Roles.none
    private var lastError: String?

    public init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// The roles in force now (reading the file if it changed).
    public func current() -> Roles {
        lock.lock()
        defer { lock.unlock() }
        guard let bytes = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                // Unreadable is broken, not absent: like a file that does not parse.
                if lastError == nil || lastBytes != nil {
                    lastError = "\(path): cannot read the roles file"
                    logger.error("control.roles.unreadable", metadata: ["path": "\(path)", "effect": "\(keptEffect)"])
                }
                lastBytes = nil
                lastMissing = false
                return roles
            }
            if !lastMissing {
                logger.notice("control.roles.missing", metadata: ["path": "\(path)",
                    "effect": "no grants: only root may use the control socket"])
            }
            lastMissing = true
            lastBytes = nil
            lastError = nil
            roles = .none
            return roles
        }
        lastMissing = false
        if bytes == lastBytes { return roles }
        lastBytes = bytes
        do {
            roles = try Roles.parse(String(decoding: bytes, as: UTF8.self), path: path)
            lastError = nil
            logger.info("control.roles.loaded", metadata: ["path": "\(path)", "grants": "\(roles.grants.count)"])
        } catch {
            lastError = "\(error)"
            logger.error("control.roles.invalid", metadata: ["error": "\(error)", "effect": "\(keptEffect)"])
        }
        return roles
    }

    private var keptEffect: String {
        roles.grants.isEmpty ? "no grants: only root may use the control socket"
                             : "the last good roles (\(roles.grants.count) grants) stay in force"
    }

    /// Why the file on disk is not the one in force, if it is broken.
    public var error: String? {
        lock.lock()
        defer { lock.unlock() }
        return lastError
    }
}
