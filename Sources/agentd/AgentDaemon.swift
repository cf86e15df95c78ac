import AgentCore
import ArgumentParser
import Dispatch
import Foundation
import Logging
import NftablesNetlink
import PolicyCompiler
import PolicyModel

extension AgentConfig.LogFormat: ExpressibleByArgument {}

@main
struct AgentDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentd",
        abstract: "Palisade node agent: enforces the network policy of a state directory with nftables.",
        discussion: """
            Runs in the current network namespace. SIGTERM stops it and leaves the rules in force; SIGHUP \
            reads the configuration file again (keys that cannot change live are logged as needing a \
            restart) and rescans the state directory. The configuration is /etc/palisade/agent.yaml \
            unless --config names another file; without either, the defaults apply \
            (see --print-default-config). A command-line option wins over the file.
            """)

    @Option(name: .long, help: "Directory of desired state (YAML/JSON); default: stateDirectory of the configuration, /etc/palisade/state.")
    var stateDir: String?

    @Option(name: .long, help: "Control socket path (env PALISADE_SOCKET).")
    var socket = ControlClient.defaultSocketPath

    @Option(name: .long, help: "Directory for the agent's own records; default: dataDirectory of the configuration, /var/lib/palisade.")
    var dataDir: String?

    @Option(name: .long, help: "Configuration file (YAML); default \(AgentConfig.defaultPath) if it exists.")
    var config: String?

    @Option(name: .long, help: "Log lines as text (readable) or json (one object per line); default: logFormat of the configuration, text.")
    var logFormat: AgentConfig.LogFormat?

    @Flag(name: .long, help: "Print the configuration file with every key, its default and what it does, and exit.")
    var printDefaultConfig = false

    @Flag(name: .long, help: "Read and check the configuration, print the problem or \"ok\", and exit.")
    var checkConfig = false

    @Flag(name: .long, help: "Delete Palisade's table (opening the node) and exit; the agent must be stopped. Recorded in the event record.")
    var removeRules = false

    func validate() throws {
        if [printDefaultConfig, checkConfig, removeRules].filter({ $0 }).count > 1 {
            throw ValidationError("--print-default-config, --check-config and --remove-rules exclude each other")
        }
    }

    /// The file that was read (nil: none, the defaults) and the configuration with the command line applied.
    func resolveConfiguration() throws -> (path: String?, config: AgentConfig) {
        let path = config ?? (FileManager.default.fileExists(atPath: AgentConfig.defaultPath) ? AgentConfig.defaultPath : nil)
        do {
            let file = try path.map { try AgentConfig.load(path: $0) } ?? AgentConfig()
            return (path, withCommandLine(file))
        } catch {
            // EX_CONFIG, so that a supervisor (and a person) can tell a bad file from a crash.
            FileHandle.standardError.write(Data("agentd: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }

    /// A command-line option wins over the file, at start and at every reload.
    func withCommandLine(_ file: AgentConfig) -> AgentConfig {
        var config = file
        if let stateDir { config.stateDirectory = stateDir }
        if let dataDir { config.dataDirectory = dataDir }
        if let logFormat { config.logFormat = logFormat }
        return config
    }

    func run() throws {
        if printDefaultConfig {
            print(AgentConfig.annotatedDefault, terminator: "")
            return
        }
        let (configPath, agentConfig) = try resolveConfiguration()
        if checkConfig {
            print("\(configPath ?? "no configuration file (\(AgentConfig.defaultPath) does not exist), defaults"): ok")
            return
        }
        Malloc.limitArenas(2)
        // A control client that goes away before its answer is written (a probe, a timed-out
        // liveness check) must cost a failed write, not the agent: SIGPIPE's default ends the process.
        signal(SIGPIPE, SIG_IGN)
        let logLevel = SharedLogLevel(agentConfig.logLevel)
        LoggingSystem.bootstrap(agentConfig.logFormat.handlerFactory(level: logLevel))
        let logger = Logger(label: "palisade.agentd")
        if removeRules {
            do {
                let removed = try RuleRemoval.removeOffline(config: agentConfig, socketPath: socket, logger: logger)
                let table = "table inet \(agentConfig.compiler.tableName)"
                print(removed ? "\(table) deleted: this node no longer enforces Palisade policy" : "\(table) does not exist: nothing to delete")
            } catch {
                FileHandle.standardError.write(Data("agentd: \(error)\n".utf8))
                throw ExitCode.failure
            }
            return
        }
        let stateDir = agentConfig.stateDirectory
        let dataDir = agentConfig.dataDirectory
        logger.info("config.loaded", metadata: ["path": "\(configPath ?? "none: defaults")"])
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o750])
        let events = try EventLog(path: (dataDir as NSString).appendingPathComponent("events.jsonl"), logger: logger)

        let connection = try NftablesConnection()
        let agent = Agent(config: agentConfig, stateDirectory: stateDir, dataDirectory: dataDir, dataplane: connection,
                          connectionTracker: try? ConntrackConnection(), events: events, logger: logger)
        try agent.start()
        // Drift repair within a second: a change notification for the agent's table that the
        // agent's own socket did not commit makes it compare and restore the table at once. If
        // the monitor cannot start, the periodic resync still repairs.
        let monitorLogger = logger
        var monitor: TableMonitor?
        do {
            let tableMonitor = try TableMonitor(
                table: agentConfig.compiler.tableName, ignoringPortIDs: [connection.portID],
                onError: { error in monitorLogger.warning("table.monitor.error", metadata: ["error": "\(error)"]) },
                onChange: { agent.kernelTableChanged() })
            try tableMonitor.start()
            monitor = tableMonitor
            logger.info("table.monitor.started", metadata: ["table": "inet \(agentConfig.compiler.tableName)"])
        } catch {
            logger.error("table.monitor.unavailable", metadata: [
                "error": "\(error)", "resyncSeconds": "\(agentConfig.resyncSeconds)"])
        }
        // Flow logs and anomaly detection: without them (NFLOG group taken, no conntrack events)
        // the agent still enforces, and says why.
        var flowMonitor: FlowMonitor?
        if agentConfig.compiler.flowLogs != .off {
            let monitor = FlowMonitor(settings: .init(config: agentConfig, dataDirectory: dataDir), agent: agent, logger: logger)
            do {
                try monitor.start()
                flowMonitor = monitor
                agent.flowCounters = { [weak monitor] in monitor?.snapshot ?? FlowMonitor.Counters() }
            } catch {
                logger.error("flows.unavailable", metadata: ["error": "\(error)", "group": "\(agentConfig.compiler.logGroup)"])
            }
        }
        let server = ControlServer(path: socket, rolesFile: agentConfig.rbacFile, socketGroup: agentConfig.socketGroup,
                                   events: events, logger: logger) { request, peer in
            AgentDaemon.handle(request, peer: peer, agent: agent)
        }
        try server.start()
        if let address = agentConfig.metricsAddress {
            // Enforcement does not depend on the metrics: without them the agent runs on, and says why.
            do {
                try MetricsServer(address: address, agent: agent, logger: logger).start()
            } catch {
                logger.error("metrics.unavailable", metadata: ["error": "\(error)"])
            }
        }
        _ = try? events.append(Event(type: .agentStart, actor: .agent, outcome: .applied, generation: agent.status().generation,
                                     details: ["stateDirectory": stateDir, "table": "inet \(agentConfig.compiler.tableName)"]))
        logger.info("agent.started", metadata: ["state": "\(stateDir)", "socket": "\(socket)",
                                               "table": "inet \(agentConfig.compiler.tableName)"])

        var sources: [DispatchSourceSignal] = []
        for stopSignal in [SIGTERM, SIGINT] {
            signal(stopSignal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: stopSignal, queue: .main)
            source.setEventHandler {
                // The rules stay in the kernel: stopping the agent never opens the node.
                logger.info("agent.stopping", metadata: ["signal": "\(stopSignal)"])
                _ = try? events.append(Event(type: .agentStop, actor: .agent, outcome: .applied,
                                             details: ["signal": "\(stopSignal)", "rules": "left in force"]))
                server.stop()
                Foundation.exit(0)
            }
            source.resume()
            sources.append(source)
        }
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { reload(agent: agent, startedWith: configPath, logLevel: logLevel, logger: logger) }
        hangup.resume()
        sources.append(hangup)
        withExtendedLifetime((sources, monitor, flowMonitor)) { dispatchMain() }
    }

    /// SIGHUP: the file read at start (or the default one, if it has appeared since) again, checked
    /// before anything changes; then a rescan, as SIGHUP did before there was a file to reload.
    func reload(agent: Agent, startedWith startPath: String?, logLevel: SharedLogLevel, logger: Logger) {
        let path = startPath ?? (FileManager.default.fileExists(atPath: AgentConfig.defaultPath) ? AgentConfig.defaultPath : nil)
        guard let path else {
            logger.info("config.reload.no_file", metadata: ["path": "\(AgentConfig.defaultPath)", "effect": "defaults stay; state rescanned"])
            _ = agent.syncNow()
            return
        }
        let file: AgentConfig
        do { file = withCommandLine(try AgentConfig.load(path: path)) } catch {
            agent.configurationReloadFailed(path: path, error: error)
            _ = agent.syncNow()
            return
        }
        do {
            logLevel.value = try agent.reloadConfiguration(file, from: path).effective.logLevel
        } catch {
            agent.configurationReloadFailed(path: path, error: error)
        }
    }

    static func explain(_ request: ControlRequest, agent: Agent) -> ControlResponse {
        guard let sourceText = request.source, let source = ExplainTarget(sourceText) else {
            return ControlResponse(ok: false, error: "explain: the source \"\(request.source ?? "")\" is neither NAMESPACE/NAME nor an IP address")
        }
        guard let destinationText = request.destination, let destination = ExplainTarget(destinationText) else {
            return ControlResponse(ok: false, error: "explain: the destination \"\(request.destination ?? "")\" is neither NAMESPACE/NAME nor an IP address")
        }
        guard let parsed = ExplainQuery.parsePort(request.port ?? "") else {
            return ControlResponse(ok: false, error: "explain: --port \"\(request.port ?? "")\" is not PORT/PROTO (5432/tcp, 53/udp), icmp[/TYPE[/CODE]]")
        }
        var family: IPFamily?
        if let text = request.family {
            guard let value = IPFamily(rawValue: text) else {
                return ControlResponse(ok: false, error: "explain: family \"\(text)\" is not ipv4 or ipv6")
            }
            family = value
        }
        let query = ExplainQuery(source: source, destination: destination, port: parsed.port, proto: parsed.proto,
                                 family: family, ctState: request.established == true ? .established : .new)
        do {
            let result = try agent.explain(query)
            return ControlResponse(ok: true, text: result.render(verbose: request.verbose ?? false),
                                   verdict: result.verdict == .allow ? "ALLOW" : "DENY")
        } catch {
            return ControlResponse(ok: false, error: "explain: \(error)")
        }
    }

    static func handle(_ request: ControlRequest, peer: Peer, agent: Agent) -> ControlResponse {
        switch request.command {
        case .status:
            return ControlResponse(ok: true, status: agent.status())
        case .sync:
            return ControlResponse(ok: true, status: agent.syncNow())
        case .rules:
            do {
                return ControlResponse(ok: true, text: try agent.kernelRules())
            } catch {
                return ControlResponse(ok: false, error: "reading the table back failed: \(error)")
            }
        case .explain:
            return explain(request, agent: agent)
        case .quarantine, .release:
            guard let target = request.target, target.split(separator: "/").count == 2 else {
                return ControlResponse(ok: false, error: "\(request.command.rawValue): the target must be NAMESPACE/NAME", exitCode: 2)
            }
            do {
                let outcome = request.command == .quarantine
                    ? try agent.quarantine(target, reason: request.reason ?? "", futurePods: request.futurePods ?? false, actor: peer)
                    : try agent.release(target, actor: peer)
                return ControlResponse(ok: true, text: outcome.message)
            } catch let refusal as OperationRefusal {
                return ControlResponse(ok: false, error: refusal.description, exitCode: refusal.exitCode)
            } catch {
                return ControlResponse(ok: false, error: "\(error)", exitCode: 2)
            }
        case .flows, .alerts:
            return FlowMonitor.answer(request, dataDirectory: agent.dataDirectory)
        case .get:
            guard let kind = request.kind, let rows = agent.rows(kind: kind) else {
                return ControlResponse(ok: false, error: "unknown kind \"\(request.kind ?? "")\": use endpoints, policies, namespaces or quarantines")
            }
            return ControlResponse(ok: true, rows: rows)
        }
    }
}
