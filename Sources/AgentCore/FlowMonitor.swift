#if canImport(Glibc)
import Glibc
#endif
import FlowAnalysis
import Foundation
import Logging
import NetworkAddress
import NftablesNetlink
import PolicyCompiler
import PolicyModel

/// Flow logs and anomaly detection, from the kernel up: the NFLOG group the ruleset logs to
/// (denied packets, and the first packet of allowed connections with `flowLogs: all`) and
/// conntrack's new/destroy events (with accounting switched on in the agent's namespace) go
/// through one bounded queue to one thread, which aggregates them into flow records per interval
/// (`<data>/flows.jsonl`), runs the detectors over every observation, writes their alerts
/// (`<data>/alerts.jsonl`) and, where configured, quarantines the workload through the agent's own
/// quarantine path, with the alert as the reason and the agent as the actor.
///
/// The readers never block: what does not fit the queue is dropped and counted, as are the
/// kernel's own losses (ENOBUFS).
public final class FlowMonitor: @unchecked Sendable {
    public struct Settings: Sendable {
        public var logGroup: UInt16
        public var interval: Duration = .seconds(15)
        public var dataDirectory: String
        public var rotateBytes = 16 << 20
        public var keepFiles = 5
        public var detectors = DetectorConfiguration()
        public var autoQuarantine: Set<DetectorKind> = []
        public var autoQuarantineSeverity: Severity = .high
        public var autoQuarantineDryRun = false
        public var queueCapacity = 65_536

        public init(logGroup: UInt16, dataDirectory: String) {
            self.logGroup = logGroup
            self.dataDirectory = dataDirectory
        }

        /// From the agent's configuration (keys flowIntervalSeconds ... autoQuarantineDryRun).
        public init(config: AgentConfig, dataDirectory: String) {
            self.init(logGroup: config.compiler.logGroup, dataDirectory: dataDirectory)
            interval = .seconds(config.flowIntervalSeconds)
            rotateBytes = config.flowLogRotateMegabytes << 20
            keepFiles = config.flowLogKeepFiles
            let enabled = Set(config.anomalyDetectors)
            var detectors = DetectorConfiguration()
            if !enabled.contains("portScan") { detectors.portScan = nil }
            if !enabled.contains("ipSweep") { detectors.ipSweep = nil }
            if !enabled.contains("connectionFlood") { detectors.connectionFlood = nil }
            if !enabled.contains("deniedSurge") { detectors.deniedSurge = nil }
            detectors.firstContact = enabled.contains("firstContact") ? FirstContactDetector.Parameters() : nil
            self.detectors = detectors
            autoQuarantine = Set(config.autoQuarantine.compactMap(DetectorKind.init(rawValue:)))
            autoQuarantineSeverity = Severity.allCases.first { "\($0)" == config.autoQuarantineSeverity } ?? .high
            autoQuarantineDryRun = config.autoQuarantineDryRun
        }
    }

    /// Counters for the metrics endpoint and `agentctl status`.
    public struct Counters: Sendable {
        public var packetLogs = 0
        public var connectionEvents = 0
        public var queueDrops = 0
        public var kernelLosses = 0
        public var records = 0
        public var alerts = 0
        public var autoQuarantines = 0
        public var droppedRecords = 0
        public init() {}
    }

    let settings: Settings
    private weak var agent: Agent?
    private let logger: Logger
    private let queue: BoundedQueue<FlowEvent>
    private var nflog: NflogReader?
    private var conntrack: ConntrackEventReader?
    private var thread: Thread?
    private let lock = NSLock()
    private var stopping = false
    private var counters = Counters()

    // Owned by the processing thread.
    private var aggregator: FlowAggregator
    private var suite: DetectorSuite
    private let flows: JSONLinesLog
    private let alerts: JSONLinesLog
    private var resolver = StaticEndpointResolver()
    private var resolverGeneration = -1

    public static func flowsPath(_ dataDirectory: String) -> String { dataDirectory + "/flows.jsonl" }
    public static func alertsPath(_ dataDirectory: String) -> String { dataDirectory + "/alerts.jsonl" }

    public init(settings: Settings, agent: Agent, logger: Logger) {
        self.settings = settings
        self.agent = agent
        self.logger = logger
        queue = BoundedQueue(capacity: settings.queueCapacity)
        aggregator = FlowAggregator(configuration: FlowAggregator.Configuration(interval: settings.interval))
        suite = DetectorSuite(configuration: settings.detectors)
        flows = JSONLinesLog(path: Self.flowsPath(settings.dataDirectory), maximumBytes: settings.rotateBytes, keep: settings.keepFiles)
        alerts = JSONLinesLog(path: Self.alertsPath(settings.dataDirectory), maximumBytes: settings.rotateBytes, keep: settings.keepFiles)
    }

    /// Binds the NFLOG group, joins conntrack's event groups (switching accounting on in this
    /// namespace) and starts the processing thread. Throws if the kernel side cannot be set up.
    public func start() throws {
        do { try ConntrackAccounting.enable() } catch {
            logger.warning("flows.conntrack.accounting_unavailable", metadata: ["error": "\(error)",
                                                                               "effect": "flow records carry no byte or packet counts"])
        }
        let queue = self.queue
        let nflog = try NflogReader(configuration: NflogReader.Configuration(group: settings.logGroup),
                                    onError: { [logger] error in logger.warning("flows.nflog.error", metadata: ["error": "\(error)"]) },
                                    deliver: { records in
            let now = Timestamp.now
            _ = queue.offer(records.map { .packet(PacketLogEvent(record: $0, time: now)) })
        })
        let conntrack = try ConntrackEventReader(onError: { [logger] error in logger.warning("flows.conntrack.error", metadata: ["error": "\(error)"]) },
                                                 deliver: { events in
            let now = Timestamp.now
            _ = queue.offer(events.compactMap { ConnectionEvent(event: $0, time: now).map(FlowEvent.conntrack) })
        })
        try nflog.start()
        try conntrack.start()
        self.nflog = nflog
        self.conntrack = conntrack
        let thread = Thread { [weak self] in self?.run() }
        thread.name = "palisade.flows"
        self.thread = thread
        thread.start()
        logger.info("flows.started", metadata: ["group": "\(settings.logGroup)", "interval": "\(settings.interval)",
                                                "detectors": "\(suite.enabled.map(\.rawValue).joined(separator: ","))",
                                                "autoQuarantine": "\(settings.autoQuarantine.map(\.rawValue).sorted().joined(separator: ","))"])
    }

    public func stop() {
        lock.withLock { stopping = true }
        nflog?.stop()
        conntrack?.stop()
        queue.close()
        while thread?.isFinished == false { usleep(10_000) }
    }

    public var snapshot: Counters {
        var result = lock.withLock { counters }
        result.queueDrops = queue.dropped
        result.kernelLosses = (nflog?.statistics.lostMessages ?? 0) + (conntrack?.statistics.lostMessages ?? 0)
        return result
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func run() {
        // Ticks on the monotonic clock (a wall-clock step must not stall them); records carry wall time.
        var lastTick = DispatchTime.now().uptimeNanoseconds
        var ticks = 0
        while !isStopping {
            let events = queue.take(maximum: 4096, timeoutMilliseconds: 200)
            if !events.isEmpty { refreshResolver() }
            var found: [Alert] = []
            var packets = 0, connections = 0
            for event in events {
                if case .packet = event { packets += 1 } else { connections += 1 }
                if let observation = aggregator.ingest(event, resolver: resolver) {
                    found += suite.observe(observation)
                }
            }
            let now = Timestamp.now
            let monotonic = DispatchTime.now().uptimeNanoseconds
            if monotonic >= lastTick + 1_000_000_000 {
                lastTick = monotonic
                for interval in aggregator.advance(to: now) { write(interval) }
                found += suite.advance(to: now)
                ticks += 1
                if ticks % 10 == 0 {
                    let counters = snapshot
                    logger.debug("flows.stats", metadata: [
                        "packetLogs": "\(counters.packetLogs)", "connectionEvents": "\(counters.connectionEvents)",
                        "records": "\(counters.records)", "alerts": "\(counters.alerts)", "queueDrops": "\(counters.queueDrops)",
                        "kernelLosses": "\(counters.kernelLosses)", "workloads": "\(resolver.workloads.count)"])
                }
            }
            lock.withLock {
                counters.packetLogs += packets
                counters.connectionEvents += connections
            }
            for alert in found { handle(alert) }
        }
        for interval in aggregator.flush() { write(interval) }
    }

    /// The workloads by address, taken from the agent again when its state changed.
    private func refreshResolver() {
        guard let agent, let snapshot = agent.flowWorkloads(newerThan: resolverGeneration) else { return }
        resolverGeneration = snapshot.generation
        resolver = StaticEndpointResolver(snapshot.workloads)
        aggregator.policies = PolicyDirectory(policyIDs: snapshot.policyIDs)
    }

    private func write(_ interval: FlowInterval) {
        for record in interval.records {
            do { try flows.append(record.jsonLine) } catch {
                logger.error("flows.write.failed", metadata: ["error": "\(error)"])
                break
            }
        }
        lock.withLock {
            counters.records += interval.records.count
            counters.droppedRecords += Int(clamping: interval.droppedEvents)
        }
    }

    private func handle(_ alert: Alert) {
        lock.withLock { counters.alerts += 1 }
        do { try alerts.append(alert.jsonLine) } catch {
            logger.error("alerts.write.failed", metadata: ["error": "\(error)"])
        }
        logger.warning("alert", metadata: ["detector": "\(alert.detector.rawValue)", "severity": "\(alert.severity)",
                                           "endpoint": "\(alert.endpoint)", "summary": "\(alert.summary)"])
        guard let agent else { return }
        // The configuration can change on SIGHUP: read it where it is written, on the agent's queue.
        let exemption = (try? agent.onQueue { agent.config.compiler.quarantineExemption }) ?? nil
        let policy = AutoQuarantinePolicy(
            detectors: settings.autoQuarantine, minimumSeverity: settings.autoQuarantineSeverity, dryRun: settings.autoQuarantineDryRun,
            isExempt: { workload in
                guard let exemption else { return false }
                var labels = workload.labels
                labels["projectcalico.org/namespace"] = workload.namespace
                labels["projectcalico.org/orchestrator"] = "k8s"
                return exemption.matches(labels)
            })
        switch policy.decide(alert) {
        case .quarantine(let workload, let reason):
            do {
                let outcome = try agent.quarantine(workload.id, reason: reason, futurePods: false, actor: .agent)
                lock.withLock { counters.autoQuarantines += 1 }
                logger.notice("alert.quarantined", metadata: ["pod": "\(workload.id)", "generation": "\(outcome.generation)"])
            } catch {
                // Already quarantined, gone meanwhile, or the kernel refused: the event record says which.
                logger.warning("alert.quarantine.failed", metadata: ["pod": "\(workload.id)", "error": "\(error)"])
            }
        case .dryRun(let workload, let reason):
            logger.notice("alert.quarantine.dry_run", metadata: ["pod": "\(workload.id)", "reason": "\(reason)"])
        case .none:
            break
        }
    }
}

extension PacketLogEvent {
    init(record: LogRecord, time: Timestamp) {
        self.init(time: time, prefix: record.prefix, source: record.source, destination: record.destination,
                  proto: IPProtocol(record.protocolNumber), sourcePort: record.sourcePort,
                  destinationPort: record.destinationPort, length: UInt32(clamping: record.length))
    }
}

extension ConnectionEvent {
    init?(event: ConntrackEvent, time: Timestamp) {
        let kind: ConnectionEvent.Kind
        switch event.kind {
        case .new: kind = .new
        case .destroy: kind = .destroy
        case .update: return nil
        }
        let entry = event.entry
        let proto = IPProtocol(entry.protocolNumber)
        self.init(time: time, kind: kind,
                  original: ConnectionTuple(source: entry.source, destination: entry.destination, proto: proto,
                                            sourcePort: entry.sourcePort, destinationPort: entry.destinationPort),
                  reply: ConnectionTuple(source: entry.replySource, destination: entry.replyDestination, proto: proto,
                                         sourcePort: event.replySourcePort, destinationPort: event.replyDestinationPort),
                  originalCounters: event.originalCounters.map { PacketCounters(packets: $0.packets, bytes: $0.bytes) },
                  replyCounters: event.replyCounters.map { PacketCounters(packets: $0.packets, bytes: $0.bytes) })
    }
}

extension Timestamp {
    static var now: Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }
}

extension Agent {
    /// The workloads by address and the policy ids, for the flow monitor: nil while the state has
    /// not changed since `generation`.
    func flowWorkloads(newerThan generation: Int) -> (generation: Int, workloads: [IPAddress: Workload], policyIDs: [String])? {
        try? onQueue { () -> (generation: Int, workloads: [IPAddress: Workload], policyIDs: [String])? in
            let current = self.stateGeneration
            guard current != generation else { return nil }
            let state = self.currentState
            var workloads: [IPAddress: Workload] = [:]
            for endpoint in state.endpoints {
                let workload = Workload(namespace: endpoint.namespace, name: endpoint.name, labels: endpoint.labels)
                for address in endpoint.addresses { workloads[address] = workload }
            }
            let ids = state.policies.map(\.id) + state.calicoPolicies.map(\.profileID)
            return (current, workloads, ids)
        }
    }
}

extension FlowMonitor {
    /// The answer to `flows` / `alerts`: lines of the file (and the rotated one before it), filtered.
    public static func answer(_ request: ControlRequest, dataDirectory: String) -> ControlResponse {
        let path = request.command == .alerts ? alertsPath(dataDirectory) : flowsPath(dataDirectory)
        let denied = request.denied ?? false
        let endpoint = request.endpoint
        let (lines, cursor) = JSONLinesLog.read(path: path, after: request.cursor.flatMap(JSONLinesLog.Cursor.init),
                                                limit: min(max(request.limit ?? 100, 1), 10_000)) { line in
            guard denied || endpoint != nil else { return true }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return false }
            if denied && object["action"] as? String != "deny" { return false }
            if let endpoint {
                // A flow names its workloads as source and destination, an alert as endpoint.
                let sides = ["source", "destination", "endpoint"].compactMap { object[$0] as? [String: Any] }
                return sides.contains { side in
                    "\(side["namespace"] as? String ?? "")/\(side["name"] as? String ?? "")" == endpoint
                }
            }
            return true
        }
        var response = ControlResponse(ok: true)
        response.lines = lines
        response.cursor = cursor.text
        return response
    }
}
