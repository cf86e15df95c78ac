extension AgentConfig {
    /// Where agentd looks for its configuration when `--config` is not given. A missing file there
    /// means the defaults; a missing file named with `--config` is an error.
    public static let defaultPath = "/etc/palisade/agent.yaml"

    /// Every key with its default and what it does: what `agentd --print-default-config` prints, and,
    /// byte for byte, `Packaging/examples/agentd.yaml` and the Debian package's `/etc/palisade/agent.yaml`
    /// (tests check both, and that the text parses to `AgentConfig()`).
    public static let annotatedDefault = """
        # Palisade agent configuration: /etc/palisade/agent.yaml, or agentd --config FILE.
        # Every key is optional; the values below are the defaults (agentd --print-default-config
        # prints this text). An unknown key or a bad value stops the agent with an error naming it.
        # SIGHUP (systemctl reload agentd) reads the file again: a bad file is logged and ignored;
        # keys marked [restart] keep their old value until the agent restarts, the others apply at once.

        # Where things are. The command line (--state-dir, --data-dir) wins over these.
        stateDirectory: /etc/palisade/state   # [restart] desired state: namespaces, pods, policies (YAML/JSON)
        dataDirectory: /var/lib/palisade      # [restart] event record (events.jsonl) and quarantines

        # Enforcement.
        tableName: palisade           # [restart] the one nftables table (family inet) the agent owns
        interfacePrefix: pl           # workload interfaces; unknown ones with this prefix are dropped
        defaultPolicy: allow          # pods selected by no policy, in namespaces without the annotation: allow or deny
        # nodeName: node-3            # only pods with this spec.nodeName (or none) are local; unset: every pod
        nodeToWorkload: allow         # the node's own traffic to its pods: allow, or judge it by ingress policy
        logGroup: 1                   # NFLOG group of Calico Log rules and of the quarantine chains
        # quarantineExemption: "role == 'forensics'"   # pods that may still reach quarantined ones; unset: none
        ownTable: true                # [restart] NFT_TABLE_F_OWNER|PERSIST: only the agent changes its table while it runs

        # Reconcile timing.
        debounceMilliseconds: 20      # quiet time after a file event before the changed files are read
        maxDelayMilliseconds: 1000    # a burst of file events delays its reconcile at most this long
        minIntervalMilliseconds: 100  # at least this long between reconciles caused by file events
        resyncSeconds: 60             # [restart] read the table back this often and restore it if it differs (0: never)

        # Control socket (its path: agentd --socket, default /run/palisade/agentd.sock).
        rbacFile: /etc/palisade/rbac.yaml   # [restart] who may read, sync, quarantine, release (root may do all)
        socketGroup: palisade         # [restart] group of the control socket (0660); without that group, or "": root only

        # Observability.
        logFormat: text               # [restart] text (one readable line per message) or json (JSON lines); --log-format wins
        logLevel: info                # trace, debug, info, notice, warning, error or critical
        # metricsAddress: 127.0.0.1:9464   # [restart] Prometheus text on GET /metrics; unset: off

        # Inventory and access review (<dataDirectory>/inventory.json; agentctl report).
        clusterNetworks: 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,198.18.0.0/15,fc00::/7,2001:db8::/32   # [restart] the rest is "the internet"

        # Flow logs and anomaly detection (<dataDirectory>/flows.jsonl and alerts.jsonl; agentctl flows, alerts).
        flowLogs: denied              # log rules for the flow log: off, denied (drops), or all (also each allowed connection)
        flowIntervalSeconds: 15       # [restart] flow records aggregate this long
        flowLogRotateMegabytes: 16    # [restart] flows.jsonl and alerts.jsonl rotate at this size...
        flowLogKeepFiles: 5           # [restart] ...keeping this many older files
        anomalyDetectors: portScan,ipSweep,connectionFlood,deniedSurge   # [restart] also: firstContact
        autoQuarantine: ""            # [restart] detectors whose alerts quarantine on their own, e.g. portScan,connectionFlood
        autoQuarantineSeverity: high  # [restart] the least severe alert that does (info, low, medium, high, critical)
        autoQuarantineDryRun: false   # [restart] true: only log what would be quarantined

        """
}
