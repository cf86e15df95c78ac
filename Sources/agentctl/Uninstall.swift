import AgentCore
import ArgumentParser
import Foundation

extension Agentctl {
    struct Uninstall: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete Palisade's table from this node (needs --yes); the agent must be stopped first.",
            discussion: """
                Stopping agentd leaves its rules in force, so that a node is never open by accident. This \
                removes them: it deletes table inet <tableName> in one step, after checking that no agent \
                answers on the socket (a running agent would restore the table), and writes the removal to \
                the event record. It is the same as `agentd --remove-rules`. Exit status 0 done (or no table), \
                1 without --yes, 2 when it could not be done (the table stays).
                """)
        @OptionGroup var global: GlobalOptions
        @Flag(name: .long, help: "Really delete the table: traffic is no longer filtered by Palisade.") var yes = false
        @Option(name: .long, help: "The agent's configuration (for tableName and dataDirectory); default \(AgentConfig.defaultPath) if it exists.")
        var config: String?
        @Option(name: .long, help: "The agent's data directory, where the removal is recorded; default: from the configuration.")
        var dataDir: String?

        func run() throws {
            var agentConfig = AgentConfig()
            let path = config ?? (FileManager.default.fileExists(atPath: AgentConfig.defaultPath) ? AgentConfig.defaultPath : nil)
            if let path {
                do { agentConfig = try AgentConfig.load(path: path) } catch {
                    printError("agentctl: \(error)")
                    throw Exit.unreachable
                }
            }
            if let dataDir { agentConfig.dataDirectory = dataDir }
            let table = "table inet \(agentConfig.compiler.tableName)"
            guard yes else {
                printError("agentctl: uninstall deletes \(table) and leaves this node unfiltered by Palisade; "
                           + "stop agentd first, then run `agentctl uninstall --yes`")
                throw Exit.notOK
            }
            do {
                let removed = try RuleRemoval.removeOffline(config: agentConfig, socketPath: global.socket)
                print(removed ? "\(table) deleted: this node no longer enforces Palisade policy"
                              : "\(table) does not exist: nothing to delete")
            } catch {
                printError("agentctl: \(error)")
                throw Exit.unreachable
            }
        }
    }
}
