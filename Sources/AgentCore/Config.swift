import Foundation
import PolicyCompiler
import PolicyModel
import Yams

/// The agent's configuration file (`--config FILE`, YAML). Every key is optional.
///
///     defaultPolicy: allow        # or deny: endpoints selected by no policy
///     tableName: palisade         # table inet <tableName>
///     interfacePrefix: pl         # host-side workload interfaces; unknown ones are dropped
///     nodeName: node-3            # only pods with this spec.nodeName (or none) are local
///     debounceMilliseconds: 200   # quiet time after a file event before a rescan
///     maxDelayMilliseconds: 1000  # a burst of events delays its reconcile at most this long
///     minIntervalMilliseconds: 100  # at least this long between reconciles caused by file events
///     resyncSeconds: 60           # read the table back this often and repair drift (0: never)
///     ownTable: true              # only the agent may change its table while it runs (kernel >= 6.9)
///     nodeToWorkload: allow       # the node's own traffic to its pods (kubelet probes): allow, or policy
///     logGroup: 1                 # NFLOG group of Calico `Log` rules
///     quarantineExemption: "role == 'forensics'"   # pods that may still reach quarantined ones
///     rbacFile: /etc/palisade/rbac.yaml   # who may use which control verbs (see `Roles`)
///     socketGroup: palisade       # group of the control socket (mode 0660); "" or a missing group: root only
///     metricsAddress: 127.0.0.1:9464   # Prometheus metrics at http://ADDRESS/metrics; absent or "": off
public struct AgentConfig: Hashable, Sendable {
    public var compiler = CompilerOptions()
    public var debounceMilliseconds = 200
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
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            let line = value.mark.map { $0.line } ?? 1
            let where_ = "\(path):\(line)"
            guard let text = value.string else { throw ConfigError("\(where_): \(key) must be a scalar") }
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
            default:
                throw ConfigError("\(where_): unknown configuration key \"\(key)\"")
            }
        }
        return config
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
