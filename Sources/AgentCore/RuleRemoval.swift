#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NftablesModel
import NftablesNetlink

extension EventType {
    /// Palisade's table was deleted on purpose (`agentd --remove-rules`, `agentctl uninstall --yes`).
    public static let rulesRemoved = EventType("rules.removed")
}

/// Taking Palisade off a node: deleting its table, which stopping the agent never does. Only with
/// the agent stopped — a running agent would put the table back within a second — and always
/// recorded in the event record.
public enum RuleRemoval {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Checks that no agent serves the socket or holds the event record, then deletes the table and
    /// records that. Returns whether there was a table to delete.
    public static func removeOffline(config: AgentConfig, socketPath: String,
                                     logger: Logger = Logger(label: "palisade.removal", factory: { _ in SwiftLogNoOpLogHandler() })) throws -> Bool {
        if let probe = try? UnixSocket.connect(socketPath) {
            close(probe)
            throw Failure("agentd is running (it answers on \(socketPath)) and would restore the table: "
                          + "stop it first (systemctl stop agentd, or remove the DaemonSet), then run this again")
        }
        let events: EventLog
        do {
            events = try EventLog(path: (config.dataDirectory as NSString).appendingPathComponent("events.jsonl"), logger: logger)
        } catch {
            throw Failure("\(error); stop the agent first, or name its data directory with --data-dir")
        }
        defer { events.close() }
        let connection: NftablesConnection
        do { connection = try NftablesConnection() } catch {
            throw Failure("cannot open a netlink socket to nf_tables (root or CAP_NET_ADMIN needed): \(error)")
        }
        return try removeTable(named: config.compiler.tableName, dataplane: connection, events: events,
                               actor: currentProcess(), logger: logger)
    }

    /// Deletes table `inet <name>` in one batch and records the outcome, also when it fails or there
    /// was nothing to delete.
    public static func removeTable(named name: String, dataplane: Dataplane, events: EventLog, actor: Peer,
                                   logger: Logger) throws -> Bool {
        let table = "inet \(name)"
        func record(_ outcome: Outcome, error: String? = nil, existed: Bool) throws {
            try events.append(Event(type: .rulesRemoved, actor: Actor(actor), target: table, outcome: outcome,
                                    error: error, details: ["existed": "\(existed)"]))
        }
        let flags: TableFlags?
        do { flags = try dataplane.tableFlags(family: .inet, name: name) } catch {
            try record(.failed, error: "\(error)", existed: true)
            throw Failure("cannot read table \(table): \(error)")
        }
        guard let flags else {
            try record(.applied, existed: false)
            logger.info("rules.remove.absent", metadata: ["table": "\(table)"])
            return false
        }
        do {
            try dataplane.commit([.deleteTable(family: .inet, name: name)])
        } catch let error as NftablesError where error.code == EPERM && flags.contains(.owner) {
            let message = "table \(table) is owned by a running agent's netlink socket: stop agentd first"
            try record(.failed, error: message, existed: true)
            throw Failure(message)
        } catch {
            try record(.failed, error: "\(error)", existed: true)
            throw Failure("deleting table \(table) failed, it stays in force: \(error)")
        }
        try record(.applied, existed: true)
        logger.notice("rules.removed", metadata: ["table": "\(table)"])
        return true
    }

    /// The user running this command, as the event record names actors.
    public static func currentProcess() -> Peer {
        let uid = getuid()
        return Peer(uid: uid, gid: getgid(), pid: getpid(), userName: UserDatabase.user(uid: uid)?.name ?? String(uid))
    }
}
