import Foundation
import Logging

extension Agent {
    /// Takes a configuration file's new content (already parsed and validated): the keys that can
    /// change live are in force when this returns, with the state rescanned and the kernel
    /// reconciled; the others keep their running values and are reported as needing a restart.
    /// Records the reload in the event record.
    @discardableResult
    public func reloadConfiguration(_ file: AgentConfig, from path: String) throws -> ConfigReload {
        let reload = try onQueue { () -> ConfigReload in
            let reload = ConfigReload(running: config, file: file)
            config = reload.effective
            // Also what SIGHUP did before it reloaded anything: rescan the directory and reconcile.
            reconcileNow()
            return reload
        }
        var details = ["path": path]
        if !reload.applied.isEmpty { details["applied"] = reload.applied.joined(separator: ",") }
        if !reload.needsRestart.isEmpty { details["needsRestart"] = reload.needsRestart.joined(separator: ",") }
        logger.info("config.reloaded", metadata: [
            "path": "\(path)", "applied": "\(reload.applied.joined(separator: ","))",
            "needsRestart": "\(reload.needsRestart.joined(separator: ","))"])
        if !reload.needsRestart.isEmpty {
            logger.warning("config.reload.needs_restart", metadata: [
                "keys": "\(reload.needsRestart.joined(separator: ","))",
                "effect": "the running agent keeps the old values until it restarts"])
        }
        recordReload(Event(type: .configReloaded, actor: .agent, target: path, outcome: .applied,
                           generation: status().generation, details: details))
        return reload
    }

    /// A reload whose file did not read or validate: nothing changes, and the record says why.
    public func configurationReloadFailed(path: String, error: Error) {
        logger.error("config.reload.rejected", metadata: [
            "path": "\(path)", "error": "\(error)", "effect": "the running configuration stays in force"])
        recordReload(Event(type: .configReloaded, actor: .agent, target: path, outcome: .failed, error: "\(error)"))
    }

    private func recordReload(_ event: Event) {
        guard let events else { return }
        do { try events.append(event) } catch {
            logger.error("config.reload.unrecorded", metadata: ["error": "\(error)"])
        }
    }
}
