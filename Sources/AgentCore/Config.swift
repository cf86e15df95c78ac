import Foundation
import NetworkAddress
import Logging
import PolicyCompiler
import PolicyModel
import Yams

/// The agent's configuration file (`/etc/palisade/agent.yaml`, `--config FILE`, YAML). Every key
/// is optional; `AgentConfig.annotatedDefault` is the documented text of all of them with their
/// defaults (what `agentd --print-default-config` prints and `Packaging/examples/agentd.yaml` holds).
/// `AgentConfig.fields` says which keys a reload (SIGHUP) applies at once and which need a restart.
public struct AgentConfig: Hashable, Sendable {
    public var compiler = CompilerOptions()
    /// The desired state: namespaces, pods, policies (`--state-dir` takes precedence).
    public var stateDirectory = "/etc/palisade/state"
    /// The agent's own records: event record, quarantines (`--data-dir` takes precedence).
    public var dataDirectory = "/var/lib/palisade"
    public var debounceMilliseconds = 20
    /// The longest a burst of file events can delay its reconcile.
    public var maxDelayMilliseconds = 1000
    /// The shortest time between two reconciles caused by file events.
    public var minIntervalMilliseconds = 100
    /// How often the table is read back and repaired if it differs (0: never).
    public var resyncSeconds = 60
    /// Create the table owned by the agent and persistent (NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST).
    public var ownTable = true
    /// The roles file: which users and groups may use which verbs on the control socket.
    public var rbacFile = "/etc/palisade/rbac.yaml"
    /// The control socket's group (mode 0660), so members can reach the socket at all; the roles
    /// file then decides what each may do. Nil: the socket is root's alone (mode 0600).
    public var socketGroup: String? = "palisade"
    /// Where the Prometheus metrics endpoint listens; nil: no endpoint.
    public var metricsAddress: MetricsAddress?
    /// The cluster's own networks: for the access review, anything outside them is the internet.
    public var clusterNetworks: [CIDR] = AccessAnalyzer.defaultClusterNetworks
    /// Flow records: the interval they aggregate, and the size and number of the rotated files.
    public var flowIntervalSeconds = 15
    public var flowLogRotateMegabytes = 16
    public var flowLogKeepFiles = 5
    /// The anomaly detectors that run over the flows, and those whose alerts (at or above the
    /// severity) quarantine the workload on their own; dry run: only say what would be done.
    public var anomalyDetectors: [String] = ["portScan", "ipSweep", "connectionFlood", "deniedSurge"]
    public var autoQuarantine: [String] = []
    public var autoQuarantineSeverity = "high"
    public var autoQuarantineDryRun = false
    /// How log messages are written to standard error (`--log-format` takes precedence).
    public var logFormat = LogFormat.text
    /// The least severe level that is logged.
    public var logLevel = Logger.Level.info

    public enum LogFormat: String, Hashable, Sendable, CaseIterable {
        /// One human-readable line per message.
        case text
        /// One JSON object per line (`JSONLogHandler`), for log collectors.
        case json
    }

    public init() {}

    public static func load(path: String) throws -> AgentConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError("\(path): cannot read the configuration file")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> AgentConfig {
        var config = AgentConfig()
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw ConfigError("\(path): not valid YAML: \(error)")
        }
        guard let node else { return config }
        guard let mapping = node.mapping else { throw ConfigError("\(path):1: the configuration must be a mapping") }
        // A key given twice is an error of the YAML parser already, naming the key.
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            let line = value.mark.map { $0.line } ?? 1
            let where_ = "\(path):\(line)"
            guard let scalar = value.scalar else { throw ConfigError("\(where_): \(key) must be a single value, not a list or mapping") }
            // `key:` with nothing (or ~, null) after it: an empty text, which only the optional keys accept.
            let isNull = scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
            let text = isNull ? "" : scalar.string
            if isNull && !Self.optionalKeys.contains(key) && Self.fields.contains(where: { $0.key == key }) {
                throw ConfigError("\(where_): \(key) has no value (leave the key out for the default)")
            }
            switch key {
            case "defaultPolicy":
                guard let policy = DefaultPolicy(rawValue: text) else {
                    throw ConfigError("\(where_): defaultPolicy \"\(text)\" is not one of allow, deny")
                }
                config.compiler.defaultPolicy = policy
            case "tableName":
                guard !text.isEmpty, text.count < 64, text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    throw ConfigError("\(where_): tableName \"\(text)\" must be 1-63 letters, digits, _ or -")
                }
                config.compiler.tableName = text
            case "interfacePrefix":
                guard text.count < 15, !text.contains("/"), !text.contains(" ") else {
                    throw ConfigError("\(where_): interfacePrefix \"\(text)\" must be shorter than 15 characters without / or spaces")
                }
                config.compiler.interfacePrefix = text
            case "nodeName":
                config.compiler.nodeName = text.isEmpty ? nil : text
            case "debounceMilliseconds":
                guard let value = Int(text), (0...60_000).contains(value) else {
                    throw ConfigError("\(where_): debounceMilliseconds must be a number from 0 to 60000")
                }
                config.debounceMilliseconds = value
            case "nodeToWorkload":
                guard let value = CompilerOptions.NodeTraffic(rawValue: text) else {
                    throw ConfigError("\(where_): nodeToWorkload \"\(text)\" is not one of allow, policy")
                }
                config.compiler.nodeToWorkload = value
            case "logGroup":
                guard let value = UInt16(text) else {
                    throw ConfigError("\(where_): logGroup must be a number from 0 to 65535")
                }
                config.compiler.logGroup = value
            case "quarantineExemption":
                do {
                    config.compiler.quarantineExemption = text.isEmpty ? nil : try SelectorParser.parse(text)
                } catch {
                    throw ConfigError("\(where_): quarantineExemption \"\(text)\" is not a valid selector: \(error)")
                }
            case "ownTable":
                guard let value = Bool(text) else {
                    throw ConfigError("\(where_): ownTable must be true or false")
                }
                config.ownTable = value
            case "maxDelayMilliseconds", "minIntervalMilliseconds":
                guard let value = Int(text), (0...60_000).contains(value) else {
                    throw ConfigError("\(where_): \(key) must be a number from 0 to 60000")
                }
                if key == "maxDelayMilliseconds" { config.maxDelayMilliseconds = value } else { config.minIntervalMilliseconds = value }
            case "resyncSeconds":
                guard let value = Int(text), (0...86_400).contains(value) else {
                    throw ConfigError("\(where_): resyncSeconds must be a number from 0 to 86400")
                }
                config.resyncSeconds = value
            case "rbacFile":
                guard text.hasPrefix("/") else {
                    throw ConfigError("\(where_): rbacFile \"\(text)\" must be an absolute path")
                }
                config.rbacFile = text
            case "socketGroup":
                guard !text.contains(":"), !text.contains("/"), !text.contains(" ") else {
                    throw ConfigError("\(where_): socketGroup \"\(text)\" must be a group name or gid (empty: root only)")
                }
                config.socketGroup = text.isEmpty ? nil : text
            case "metricsAddress":
                do {
                    config.metricsAddress = text.isEmpty ? nil : try MetricsAddress(parsing: text)
                } catch {
                    throw ConfigError("\(where_): metricsAddress \"\(text)\" \(error): the endpoint has no authentication, "
                                      + "so only a local address makes sense, such as 127.0.0.1:9464 or \"[::1]:9464\" (\"\": off)")
                }
            case "stateDirectory", "dataDirectory":
                guard text.hasPrefix("/") else {
                    throw ConfigError("\(where_): \(key) \"\(text)\" must be an absolute path")
                }
                if key == "stateDirectory" { config.stateDirectory = text } else { config.dataDirectory = text }
            case "logFormat":
                guard let format = LogFormat(rawValue: text) else {
                    throw ConfigError("\(where_): logFormat \"\(text)\" is not one of text, json")
                }
                config.logFormat = format
            case "logLevel":
                guard let level = Logger.Level(rawValue: text) else {
                    throw ConfigError("\(where_): logLevel \"\(text)\" is not one of "
                                      + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
                }
                config.logLevel = level
            case "clusterNetworks":
                var networks: [CIDR] = []
                for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
                    guard let cidr = CIDR(part) else {
                        throw ConfigError("\(where_): clusterNetworks: \"\(part)\" is not a network prefix such as 10.0.0.0/8")
                    }
                    networks.append(cidr)
                }
                config.clusterNetworks = networks
            case "flowLogs":
                guard let value = CompilerOptions.FlowLogs(rawValue: text) else {
                    throw ConfigError("\(where_): flowLogs \"\(text)\" is not one of off, denied, all")
                }
                config.compiler.flowLogs = value
            case "flowIntervalSeconds", "flowLogRotateMegabytes", "flowLogKeepFiles":
                let range = key == "flowIntervalSeconds" ? 1...3600 : key == "flowLogKeepFiles" ? 1...100 : 1...4096
                guard let value = Int(text), range.contains(value) else {
                    throw ConfigError("\(where_): \(key) must be a number from \(range.lowerBound) to \(range.upperBound)")
                }
                switch key {
                case "flowIntervalSeconds": config.flowIntervalSeconds = value
                case "flowLogRotateMegabytes": config.flowLogRotateMegabytes = value
                default: config.flowLogKeepFiles = value
                }
            case "anomalyDetectors", "autoQuarantine":
                let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                let known = ["portScan", "ipSweep", "connectionFlood", "deniedSurge", "firstContact"]
                if let unknown = names.first(where: { !known.contains($0) }) {
                    throw ConfigError("\(where_): \(key): \"\(unknown)\" is not one of \(known.joined(separator: ", "))")
                }
                if key == "anomalyDetectors" { config.anomalyDetectors = names } else { config.autoQuarantine = names }
            case "autoQuarantineSeverity":
                let levels = ["info", "low", "medium", "high", "critical"]
                guard levels.contains(text) else {
                    throw ConfigError("\(where_): autoQuarantineSeverity \"\(text)\" is not one of \(levels.joined(separator: ", "))")
                }
                config.autoQuarantineSeverity = text
            case "autoQuarantineDryRun":
                guard let value = Bool(text) else { throw ConfigError("\(where_): autoQuarantineDryRun must be true or false") }
                config.autoQuarantineDryRun = value
            default:
                let hint = Self.closestKey(to: key).map { " (did you mean \($0)?)" } ?? ""
                throw ConfigError("\(where_): unknown configuration key \"\(key)\"\(hint)")
            }
        }
        return config
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
