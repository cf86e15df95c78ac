import Foundation
import Logging
import NftablesModel
import NftablesNetlink
import PolicyCompiler
import PolicyModel

/// The reconcile loop: the one place that writes to the kernel. File events and control requests
/// only mark the state dirty; work happens on one serial queue, coalesced.
public final class Agent: @unchecked Sendable {
    public let config: AgentConfig
    public let stateDirectory: String
    private let dataplane: Dataplane
    private let loader: StateLoader
    let logger: Logger
    private let queue = DispatchQueue(label: "palisade.reconcile")
    private var watcher: DirectoryWatcher?

    // Owned by `queue`.
    var lastScan: StateLoader.Result?
    var compiled: CompiledRuleset?
    private var applied: Table?
    var generation = 0
    private var lastApplied: Date?
    var lastError: String?
    private var holding = false
    private var pendingWork: DispatchWorkItem?
    private var repairs = 0
    private var metrics = AgentMetrics()
    private var lastReconcileEnd: Date?
    private var resyncTimer: DispatchSourceTimer?
    private var firstPendingEvent: Date?

    let quarantineStore: QuarantineStore
    /// Deletes a quarantined workload's conntrack entries; nil where there is no kernel (tests).
    let connectionTracker: ConnectionTracker?

    /// The durable record of quarantines and releases (and refusals, written by the control server).
    let events: EventLog?

    public init(config: AgentConfig, stateDirectory: String, dataDirectory: String, dataplane: Dataplane,
                connectionTracker: ConnectionTracker? = nil, events: EventLog? = nil, logger: Logger) {
        self.events = events
        self.config = config
        self.stateDirectory = stateDirectory
        self.dataplane = dataplane
        self.loader = StateLoader(directory: stateDirectory)
        self.quarantineStore = QuarantineStore(directory: dataDirectory + "/quarantines")
        self.connectionTracker = connectionTracker
        self.logger = logger
    }

    private var tableName: String { config.compiler.tableName }

    /// First reconcile, then watch the directory. Throws only when the directory cannot be watched.
    public func start() throws {
        queue.sync { reconcile(startup: true) }
        let watcher = DirectoryWatcher(root: stateDirectory) { [weak self] in self?.fileEvent() }
        try watcher.start()
        self.watcher = watcher
        if config.resyncSeconds > 0 {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            let interval = DispatchTimeInterval.seconds(config.resyncSeconds)
            timer.schedule(deadline: .now() + interval, repeating: interval)
            timer.setEventHandler { [weak self] in self?.reconcile(startup: false) }
            timer.resume()
            resyncTimer = timer
        }
    }

    /// A file changed: reconcile after the configured quiet time, but never later than a second
    /// after the first event of a burst.
    private func fileEvent() {
        queue.async { [self] in
            let now = Date()
            if firstPendingEvent == nil { firstPendingEvent = now }
            pendingWork?.cancel()
            // Wait for a quiet moment, but not longer than the maximum after the first event of a
            // burst, and never sooner than the minimum interval after the last reconcile: a burst
            // of a thousand file writes becomes a few batches, not a thousand.
            let quiet = Double(config.debounceMilliseconds) / 1000
            let waited = now.timeIntervalSince(firstPendingEvent ?? now)
            var delay = max(0, min(quiet, Double(config.maxDelayMilliseconds) / 1000 - waited))
            if let last = lastReconcileEnd {
                delay = max(delay, Double(config.minIntervalMilliseconds) / 1000 - now.timeIntervalSince(last))
            }
            let work = DispatchWorkItem { [weak self] in self?.reconcile(startup: false) }
            pendingWork = work
            queue.asyncAfter(deadline: .now() + delay, execute: work)
        }
    }

    /// Rescan and reconcile now; returns the status once the kernel has been updated and read back.
    public func syncNow() -> StatusReport {
        queue.sync {
            reconcile(startup: false)
            return makeStatus()
        }
    }

    public func status() -> StatusReport {
        queue.sync { makeStatus() }
    }

    /// The table as the kernel holds it, in nft syntax.
    public func kernelRules() throws -> String {
        try queue.sync {
            guard let table = try dataplane.readTable(family: .inet, name: tableName) else {
                return "# table inet \(tableName) does not exist\n"
            }
            return RulesetText.render(table)
        }
    }

    /// Which policies and rules decide a flow, from the ruleset the agent compiled last (what it
    /// applied, unless the last batch failed).
    public func explain(_ query: ExplainQuery) throws -> ExplainResult {
        try queue.sync {
            guard let compiled else { throw ConfigError("the agent has not compiled its state yet") }
            return try Explainer.explain(query, in: compiled)
        }
    }

    public func rows(kind: String) -> [[String: String]]? {
        queue.sync { Rows.make(kind: kind, scan: lastScan, compiled: compiled) }
    }

    // MARK: Reconcile (on `queue`)

    /// Runs work on the reconcile queue and returns its result.
    func onQueue<T>(_ work: () throws -> T) throws -> T {
        try queue.sync { try work() }
    }

    /// A reconcile from inside the queue (quarantine, release).
    func reconcileNow() { reconcile(startup: false) }

    /// The desired state as last scanned, quarantines included.
    var currentState: DesiredState { lastScan?.state ?? DesiredState() }

    /// Something changed the agent's table in the kernel (a change notification that was not the
    /// agent's own): check and, if it differs, restore it at once rather than at the next resync.
    public func kernelTableChanged() {
        queue.async { [self] in
            metrics.notifications += 1
            reconcile(startup: false)
        }
    }

    /// Counters and gauges for the metrics endpoint, as of the last reconcile.
    public func metricsSnapshot() -> AgentMetrics {
        queue.sync { metrics }
    }

    private func reconcile(startup: Bool) {
        pendingWork = nil
        firstPendingEvent = nil
        let started = DispatchTime.now()
        defer {
            lastReconcileEnd = Date()
            metrics.reconciles += 1
            metrics.lastReconcileSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        }
        var scan = loader.scan()
        // Quarantines from agentctl join those from the state directory; one from a file takes
        // precedence when both name the same pod.
        let stored = quarantineStore.load()
        var quarantines = scan.state.quarantines
        for quarantine in stored.quarantines where !quarantines.contains(where: { $0.podID == quarantine.podID }) {
            quarantines.append(quarantine)
        }
        scan.state.quarantines = quarantines.sorted { $0.podID < $1.podID }
        scan.rejected += stored.rejected
        lastScan = scan
        for rejection in scan.newlyRejected {
            logger.warning("state.file.rejected", metadata: ["file": "\(rejection.path)", "line": "\(rejection.line)",
                                                            "error": "\(rejection.message)"])
        }
        if let error = scan.directoryError {
            logger.error("state.directory.unreadable", metadata: ["error": "\(error)"])
        }
        let compileStarted = DispatchTime.now()
        let result = PolicyCompiler.compile(scan.state, options: config.compiler)
        metrics.lastCompileSeconds = Double(DispatchTime.now().uptimeNanoseconds - compileStarted.uptimeNanoseconds) / 1e9
        compiled = result
        metrics.endpoints = scan.state.endpoints.count
        metrics.localEndpoints = result.endpoints.filter { $0.interface != nil }.count
        metrics.policies = scan.state.policies.count + scan.state.calicoPolicies.count
        metrics.quarantines = result.endpoints.filter { $0.quarantine != nil && $0.interface != nil }.count
        metrics.rejectedFiles = scan.rejected.count
        metrics.chains = result.table.chains.count
        metrics.sets = result.table.sets.count
        metrics.setElements = result.table.sets.values.reduce(0) { $0 + $1.elements.count }

        // After a restart the agent has no last good copy of a file that is broken now. Replacing the
        // table without that file's objects could open access it used to deny, so keep the table that
        // is in force until the file is fixed.
        if applied == nil && (!scan.rejectedWithoutLastGood.isEmpty || scan.directoryError != nil || !stored.rejected.isEmpty) {
            // If the kernel cannot even say whether the table exists, assume it does: holding is
            // the safe side.
            var exists = true
            do { exists = try dataplane.tableFlags(family: .inet, name: tableName) != nil } catch {}
            if exists {
                if !holding {
                    logger.warning("reconcile.holding", metadata: ["reason": "files rejected at start-up; previous rules stay in force"])
                }
                holding = true
                lastError = "holding the rules in force: \(scan.rejectedWithoutLastGood.count + stored.rejected.count) file(s) rejected since start-up"
                return
            }
        }
        holding = false

        // At start-up the table is always replaced, so whatever was there (an older version, a
        // tampered copy) is gone in the same atomic step.
        var incremental = !startup
        if !startup, let applied, applied == result.table {
            if kernelMatches(result.table) {
                lastError = nil
                return
            }
            // Someone else changed or removed our table: put it back whole, and say so.
            repairs += 1
            metrics.driftRepairs = repairs
            incremental = false
            logger.warning("reconcile.drift", metadata: ["repairs": "\(repairs)"])
        }
        do {
            try replace(with: result.table, incremental: incremental)
            applied = result.table
            generation += 1
            lastApplied = Date()
            lastError = nil
            logger.info("reconcile.applied", metadata: [
                "generation": "\(generation)", "endpoints": "\(result.endpoints.count)",
                "policies": "\(scan.state.policies.count + scan.state.calicoPolicies.count)", "chains": "\(result.table.chains.count)",
                "sets": "\(result.table.sets.count)",
            ])
        } catch {
            lastError = "\(error)"
            metrics.failedBatches += 1
            // When the kernel's answers were lost, the batch may or may not have been applied:
            // forget what was applied, so the next reconcile replaces the table as a whole.
            if let failure = error as? NftablesError, failure.kind == .protocolViolation { applied = nil }
            logger.error("reconcile.failed", metadata: ["error": "\(error)"])
        }
    }

    /// Commits one batch, timing it for the metrics.
    private func commit(_ changes: [Change]) throws {
        let started = DispatchTime.now()
        try dataplane.commit(changes)
        metrics.batches += 1
        metrics.lastBatchChanges = changes.count
        metrics.lastCommitSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
    }

    /// Whether the table is created owned by this agent's netlink socket and persistent; turned off
    /// for good if the kernel refuses the flags (kernels before 6.9 have no NFT_TABLE_F_PERSIST, and
    /// an owned table without it would vanish with the agent: fail open).
    private var ownTable: Bool?

    /// One batch that deletes the table in force (if any) and creates the new one. With ownership,
    /// nothing but this agent's socket can change or delete the table while the agent runs
    /// (`nft flush ruleset` skips it); when the agent dies the table stays, ownerless, and the next
    /// agent replaces it in one batch.
    private func replace(with table: Table, incremental: Bool) throws {
        let owned = ownTable ?? config.ownTable
        let flags: TableFlags = owned ? [.owner, .persist] : []
        // While the kernel holds what this agent applied last, send only the difference; if that
        // batch fails (someone changed the table after all), replace the table as a whole.
        if incremental, let applied, let delta = table.changes(from: applied) {
            if delta.isEmpty { return }
            do {
                try commit(delta)
                return
            } catch {
                logger.warning("reconcile.incremental.failed", metadata: ["error": "\(error)", "changes": "\(delta.count)"])
            }
        }
        let existing = try dataplane.tableFlags(family: .inet, name: tableName)
        do {
            try commit(table.replacementChanges(flags: flags, exists: existing != nil))
            ownTable = owned
        } catch let error as NftablesError where owned && ownTable == nil
                    && (error.code == EINVAL || error.code == EOPNOTSUPP) && error.changeIndex == (existing != nil ? 1 : 0) {
            logger.warning("table.owner.unsupported", metadata: ["error": "\(error)"])
            ownTable = false
            try commit(table.replacementChanges(flags: [], exists: existing != nil))
        }
    }

    private func kernelMatches(_ table: Table) -> Bool {
        guard let actual = try? dataplane.readTable(family: .inet, name: tableName) else { return false }
        return actual == table
    }

    private func makeStatus() -> StatusReport {
        let state = lastScan?.state ?? DesiredState()
        let inSync: Bool
        if holding || lastScan?.directoryError != nil {
            inSync = false
        } else if let compiled {
            inSync = kernelMatches(compiled.table)
        } else {
            inSync = false
        }
        let formatter = ISO8601DateFormatter()
        return StatusReport(
            inSync: inSync, generation: generation, table: "inet \(tableName)", stateDirectory: stateDirectory,
            lastApplied: lastApplied.map { formatter.string(from: $0) },
            endpoints: state.endpoints.count,
            localEndpoints: compiled?.endpoints.filter { $0.interface != nil }.count ?? 0,
            skippedPods: state.skippedPods.count, policies: state.policies.count + state.calicoPolicies.count,
            namespaces: Set(state.namespaces.keys).union(state.endpoints.map(\.namespace)).count,
            files: lastScan?.fileCount ?? 0, driftRepairs: repairs, rejectedFiles: lastScan?.rejected ?? [],
            warnings: (compiled?.warnings.map(\.message) ?? []) + (lastScan?.directoryError.map { [$0] } ?? []),
            lastError: lastError)
    }
}
