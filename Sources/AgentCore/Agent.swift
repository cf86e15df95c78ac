#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NftablesModel
import NftablesNetlink
import PolicyCompiler
import PolicyModel

/// The reconcile loop: the one place that writes to the kernel. File events and control requests
/// only mark the state dirty; work happens on one serial queue, coalesced.
public final class Agent: @unchecked Sendable {
    public internal(set) var config: AgentConfig
    public let stateDirectory: String
    /// Where the agent's records live (event record, quarantines, inventory, flows).
    public let dataDirectory: String
    private let dataplane: Dataplane
    private let loader: StateLoader
    let logger: Logger
    private let queue = DispatchQueue(label: "palisade.reconcile")
    private var watcher: DirectoryWatcher?

    // Owned by `queue`.
    var lastScan: StateLoader.Result?
    /// The compiled desired state; its table is what the kernel holds when `applied` is true. Pod
    /// and quarantine changes edit it in place (the session owns the only copy of the state and
    /// the table, so an edit copies nothing).
    private var session: CompilerSession?
    /// Whether the kernel holds the session's table (the last batch was acknowledged).
    private var applied = false
    /// State files inotify named since the last reconcile; `rescanAll` when it could not name them.
    private var pendingPaths: Set<String> = []
    private var rescanAll = false
    /// Quarantines agentctl stored, as last read from the store.
    private var stored: (quarantines: [Quarantine], rejected: [RejectedFile]) = ([], [])
    private var trimScheduled = false
    lazy var inventory = Inventory(path: dataDirectory + "/inventory.json", clusterNetworks: config.clusterNetworks)
    var inventoryStarted = false
    var inventoryQuarantined: Set<String> = []
    var auditSnapshot: AuditSnapshot?
    var auditSnapshotSaved: Date?
    var generation = 0
    /// Counts reconciles that changed the desired state (what the flow monitor resolves against).
    var stateGeneration = 0
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
        self.dataDirectory = dataDirectory
        self.dataplane = dataplane
        self.loader = StateLoader(directory: stateDirectory)
        // Who may change which namespace's policies, from the roles file (read again when it changes).
        let roles = RolesFile(path: config.rbacFile, logger: logger)
        loader.authorize = { uid, objects in
            let current = roles.current()
            guard !current.namespaceOwners.isEmpty else { return nil }
            let account = Account.lookup(uid: uid, gid: UserDatabase.user(uid: uid)?.primaryGroup ?? uid)
            for object in objects {
                let namespace: String??
                switch object {
                case .networkPolicy(let policy): namespace = .some(policy.namespace)
                case .calicoPolicy(let policy): namespace = .some(policy.namespace)
                default: namespace = nil
                }
                guard let namespace else { continue }
                if let refusal = current.policyChangeRefusal(namespace: namespace, by: account) { return refusal }
            }
            return nil
        }
        self.quarantineStore = QuarantineStore(directory: dataDirectory + "/quarantines")
        self.connectionTracker = connectionTracker
        self.logger = logger
    }

    private var tableName: String { config.compiler.tableName }

    /// First reconcile, then watch the directory. Throws only when the directory cannot be watched.
    public func start() throws {
        queue.sync { reconcile(.startup) }
        let watcher = DirectoryWatcher(root: stateDirectory) { [weak self] paths in self?.fileEvent(paths) }
        try watcher.start()
        self.watcher = watcher
        // What changed between the first scan and the watches: read everything once more.
        fileEvent(nil)
        if config.resyncSeconds > 0 {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            let interval = DispatchTimeInterval.seconds(config.resyncSeconds)
            timer.schedule(deadline: .now() + interval, repeating: interval)
            timer.setEventHandler { [weak self] in self?.reconcile(.resync) }
            timer.resume()
            resyncTimer = timer
        }
    }

    /// A file changed: reconcile after the configured quiet time, but never later than a second
    /// after the first event of a burst.
    private func fileEvent(_ paths: Set<String>?) {
        queue.async { [self] in
            if let paths { pendingPaths.formUnion(paths) } else { rescanAll = true }
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
            let work = DispatchWorkItem { [weak self] in self?.reconcile(.files) }
            pendingWork = work
            queue.asyncAfter(deadline: .now() + delay, execute: work)
        }
    }

    /// Rescan and reconcile now; returns the status once the kernel has been updated and read back.
    public func syncNow() -> StatusReport {
        queue.sync {
            reconcile(.sync)
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
            guard let session else { throw ConfigError("the agent has not compiled its state yet") }
            return try Explainer.explain(query, in: session.ruleset)
        }
    }

    public func rows(kind: String) -> [[String: String]]? {
        queue.sync { Rows.make(kind: kind, state: currentState, compiled: session?.ruleset) }
    }

    // MARK: Reconcile (on `queue`)

    /// Runs work on the reconcile queue and returns its result.
    func onQueue<T>(_ work: () throws -> T) throws -> T {
        try queue.sync { try work() }
    }

    /// From inside the queue: read everything again and reconcile (compiling anew if the
    /// configuration changed).
    func reconcileNow() { reconcile(.sync) }

    /// From inside the queue: take in the file changes inotify reported so far (quarantine and
    /// release look at the newest state first).
    func reconcilePending() { reconcile(.files) }

    /// From inside the queue, after agentctl's quarantine store changed.
    func reconcileQuarantines() { reconcile(.quarantineStore) }

    /// For tests: runs on the reconcile queue.
    func onQueueForTests<T>(_ work: () -> T) -> T { queue.sync { work() } }
    func currentStateForTests() -> DesiredState { queue.sync { currentState } }

    /// The desired state as last scanned, quarantines included.
    var currentState: DesiredState { session?.state ?? DesiredState() }

    /// Something changed the agent's table in the kernel (a change notification that was not the
    /// agent's own): check and, if it differs, restore it at once rather than at the next resync.
    public func kernelTableChanged() {
        queue.async { [self] in
            metrics.notifications += 1
            reconcile(.notification)
        }
    }

    /// Counters and gauges for the metrics endpoint, as of the last reconcile.
    public func metricsSnapshot() -> AgentMetrics {
        var snapshot = queue.sync { metrics }
        if let flows = flowCounters?() {
            snapshot.flowPacketLogs = flows.packetLogs
            snapshot.flowConnectionEvents = flows.connectionEvents
            snapshot.flowQueueDrops = flows.queueDrops
            snapshot.flowKernelLosses = flows.kernelLosses
            snapshot.flowRecords = flows.records
            snapshot.alerts = flows.alerts
            snapshot.autoQuarantines = flows.autoQuarantines
        }
        return snapshot
    }

    /// The flow monitor's counters, when one runs (set by agentd).
    public var flowCounters: (@Sendable () -> FlowMonitor.Counters)? {
        get { flowCountersLock.withLock { flowCountersSource } }
        set { flowCountersLock.withLock { flowCountersSource = newValue } }
    }
    private var flowCountersSource: (@Sendable () -> FlowMonitor.Counters)?
    private let flowCountersLock = NSLock()

    /// Why a reconcile runs; it decides how much is read again and whether the kernel's copy is checked.
    enum Reason {
        /// Start-up: read everything, replace the table.
        case startup
        /// inotify events: read the files they name (everything if it could not name them).
        case files
        /// agentctl's quarantine store changed (and whatever files changed meanwhile).
        case quarantineStore
        /// The periodic resync, `agentctl sync`, a change notification from the kernel: read
        /// everything and compare the kernel's table with the desired one.
        case resync, sync, notification

        var checksKernel: Bool { self == .resync || self == .sync || self == .notification }
    }

    private func reconcile(_ reason: Reason) {
        // This reconcile takes in whatever a scheduled one would have: that one need not run.
        pendingWork?.cancel()
        pendingWork = nil
        firstPendingEvent = nil
        let started = DispatchTime.now()
        var compiledAnew = false
        var scannedAll = false
        var audited: StateLoader.Result?
        var drifted = false
        defer {
            if let audited {
                recordAudit(audited.changes, rejected: audited.newlyRejected, drift: drifted,
                            complete: audited.complete && audited.directoryError == nil && audited.rejectedWithoutLastGood.isEmpty,
                            currentKeys: { loader.currentKeys })
                updateInventory(audited.changes, everything: compiledAnew || !inventoryStarted)
            }
            // Reading, compiling and sending everything leaves much freed memory in malloc's arenas
            // (the YAML parser's, the batch's): hand it back, or the resident size keeps that peak.
            // Reading every file (a resync, `agentctl sync`) leaves as much without any compile.
            if compiledAnew || scannedAll { scheduleTrim() }
            lastReconcileEnd = Date()
            metrics.reconciles += 1
            metrics.lastReconcileSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        }
        // Read what changed: every file at start-up and on resyncs, else those inotify named.
        let scan: StateLoader.Result
        if reason == .startup || reason == .resync || reason == .sync || rescanAll || lastScan == nil {
            scan = loader.scan()
            scannedAll = true
            rescanAll = false
        } else {
            scan = loader.update(paths: pendingPaths)
        }
        pendingPaths = []
        if !scan.changes.isEmpty || session == nil || reason == .quarantineStore { stateGeneration += 1 }
        audited = scan
        lastScan = scan
        lastScan?.changes = []   // used below through `scan`; not worth keeping
        for rejection in scan.newlyRejected {
            logger.warning("state.file.rejected", metadata: ["file": "\(rejection.path)", "line": "\(rejection.line)",
                                                            "error": "\(rejection.message)"])
        }
        if let error = scan.directoryError {
            logger.error("state.directory.unreadable", metadata: ["error": "\(error)"])
        }
        // Quarantines from agentctl join those from the state directory; one from a file takes
        // precedence when both name the same pod.
        if reason != .files || session == nil { stored = quarantineStore.load() }
        metrics.rejectedFiles = scan.rejected.count + stored.rejected.count

        // After a restart the agent has no last good copy of a file that is broken now. Replacing the
        // table without that file's objects could open access it used to deny, so keep the table that
        // is in force until the file is fixed.
        if !applied && session == nil && (!scan.rejectedWithoutLastGood.isEmpty || scan.directoryError != nil || !stored.rejected.isEmpty) {
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
                // The next reconcile must read everything again, not only what changes next.
                rescanAll = true
                return
            }
        }
        holding = false

        // Workload and quarantine changes edit the compiled state; anything else compiles it anew.
        var compileAll = true
        if let session, reason != .startup, session.options == config.compiler, let changes = endpointChanges(scan, session) {
            compileAll = false
            if !changes.isEmpty {
                let compileStarted = DispatchTime.now()
                let batch = session.apply(changes)
                metrics.lastCompileSeconds = Double(DispatchTime.now().uptimeNanoseconds - compileStarted.uptimeNanoseconds) / 1e9
                if applied && !batch.isEmpty {
                    do {
                        try commit(batch)
                        committed(session, incremental: true)
                    } catch {
                        // The kernel refused the edit: trust neither it nor the edited session;
                        // compile everything and replace the table as a whole.
                        logger.warning("reconcile.incremental.failed", metadata: ["error": "\(error)", "changes": "\(batch.count)"])
                        metrics.failedBatches += 1
                        applied = false
                        compileAll = true
                    }
                }
            }
            if !compileAll && applied && !reason.checksKernel {
                updateGauges(session)
                lastError = nil
                return
            }
        }
        if compileAll {
            let compileStarted = DispatchTime.now()
            var state = loader.desiredState()
            var quarantines = state.quarantines
            for quarantine in stored.quarantines where !quarantines.contains(where: { $0.podID == quarantine.podID }) {
                quarantines.append(quarantine)
            }
            state.quarantines = quarantines.sorted { $0.podID < $1.podID }
            let previous = applied ? session?.table : nil
            session = nil
            let fresh = CompilerSession(state: state, options: config.compiler)
            metrics.lastCompileSeconds = Double(DispatchTime.now().uptimeNanoseconds - compileStarted.uptimeNanoseconds) / 1e9
            session = fresh
            compiledAnew = true
            if reason != .startup, let previous, let delta = fresh.table.changes(from: previous) {
                applied = false
                do {
                    if !delta.isEmpty { try commit(delta) }
                    applied = true
                    if !delta.isEmpty { committed(fresh, incremental: true) }
                } catch {
                    logger.warning("reconcile.incremental.failed", metadata: ["error": "\(error)", "changes": "\(delta.count)"])
                }
            } else {
                applied = false
            }
        }
        guard let session else { return }
        updateGauges(session)

        // At start-up the table is always replaced, so whatever was there (an older version, a
        // tampered copy) is gone in the same atomic step. Later, if the kernel's copy is checked
        // and differs, someone else changed or removed our table: put it back whole, and say so.
        if applied && reason.checksKernel && !kernelMatches(session.table) {
            repairs += 1
            metrics.driftRepairs = repairs
            drifted = true
            applied = false
            logger.warning("reconcile.drift", metadata: ["repairs": "\(repairs)"])
        }
        if applied {
            lastError = nil
            return
        }
        do {
            try replace(with: session.table)
            applied = true
            committed(session, incremental: false)
        } catch {
            lastError = "\(error)"
            metrics.failedBatches += 1
            logger.error("reconcile.failed", metadata: ["error": "\(error)"])
        }
    }

    /// Brings the inventory up to date: every endpoint after a full compile, else those that changed.
    private func updateInventory(_ changes: [ObjectChange], everything: Bool) {
        guard let session, events != nil else { return }
        if everything {
            inventory.update(from: session, ids: nil)
        } else {
            var ids = Set<String>()
            for change in changes {
                let parts = change.key.split(separator: " ", maxSplits: 1)
                if parts.count == 2, parts[0] == "Pod" || parts[0] == "Endpoint" || parts[0] == "Quarantine" { ids.insert(String(parts[1])) }
            }
            for quarantine in session.state.quarantines { ids.insert(quarantine.podID) }
            ids.formUnion(inventoryQuarantined)
            guard !ids.isEmpty else { return }
            inventory.update(from: session, ids: ids)
        }
        inventoryQuarantined = Set(session.state.quarantines.map(\.podID))
        do {
            try inventory.save(force: !inventoryStarted || everything)
            inventoryStarted = true
        } catch {
            logger.warning("inventory.write.failed", metadata: ["error": "\(error)"])
        }
    }

    /// The changes of a scan (and of agentctl's quarantine store) as workload changes the session
    /// can take in place; nil when something else changed (a namespace, a policy), which needs a
    /// full compile.
    private func endpointChanges(_ scan: StateLoader.Result, _ session: CompilerSession) -> EndpointChanges? {
        var changes = EndpointChanges()
        var fileQuarantines: [String: Quarantine?] = [:]
        for change in scan.changes {
            switch change.after ?? change.before {
            case .endpoint, .skippedPod:
                guard let id = change.key.split(separator: " ", maxSplits: 1).last.map(String.init) else { return nil }
                switch change.after {
                case .endpoint(let endpoint)?:
                    changes.endpoints[id] = endpoint
                    if case .skippedPod? = change.before { changes.skippedPods[id] = .some(nil) }
                case .skippedPod(let pod)?:
                    changes.skippedPods[id] = pod
                    if case .endpoint? = change.before { changes.endpoints[id] = .some(nil) }
                default:
                    if case .endpoint? = change.before { changes.endpoints[id] = .some(nil) } else { changes.skippedPods[id] = .some(nil) }
                }
            case .quarantine(let quarantine):
                if case .quarantine(let after)? = change.after { fileQuarantines[quarantine.podID] = after } else {
                    fileQuarantines[quarantine.podID] = .some(nil)
                }
            default:
                return nil
            }
        }
        // The quarantines in force: those of files (as changed now), then the stored ones for pods
        // no file names.
        var fromFiles = session.state.quarantines.filter { $0.location?.file.hasPrefix(quarantineStore.directory + "/") != true }
        for (podID, quarantine) in fileQuarantines {
            fromFiles.removeAll { $0.podID == podID }
            if let quarantine { fromFiles.append(quarantine) }
        }
        var merged = fromFiles
        for quarantine in stored.quarantines where !merged.contains(where: { $0.podID == quarantine.podID }) {
            merged.append(quarantine)
        }
        merged.sort { $0.podID < $1.podID }
        if merged != session.state.quarantines { changes.quarantines = merged }
        return changes
    }

    /// Trims a moment after the reconcile, once its temporaries (and the first answers' ones) are gone.
    private func scheduleTrim() {
        guard !trimScheduled else { return }
        trimScheduled = true
        queue.asyncAfter(deadline: .now() + 1) { [weak self] in
            self?.trimScheduled = false
            Malloc.trim()
        }
    }

    /// Bookkeeping after the kernel took a batch.
    private func committed(_ session: CompilerSession, incremental: Bool) {
        generation += 1
        lastApplied = Date()
        lastError = nil
        logger.info("reconcile.applied", metadata: [
            "generation": "\(generation)", "incremental": "\(incremental)", "endpoints": "\(session.state.endpoints.count)",
            "policies": "\(session.state.policies.count + session.state.calicoPolicies.count)",
            "changes": "\(metrics.lastBatchChanges)",
        ])
    }

    private func updateGauges(_ session: CompilerSession) {
        let state = session.state
        metrics.endpoints = state.endpoints.count
        metrics.localEndpoints = session.localEndpoints
        metrics.policies = state.policies.count + state.calicoPolicies.count
        metrics.quarantines = session.quarantinedEndpoints
        metrics.chains = session.chainCount
        metrics.sets = session.setCount
        metrics.setElements = session.setElements
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
    private func replace(with table: Table) throws {
        let owned = ownTable ?? config.ownTable
        let flags: TableFlags = owned ? [.owner, .persist] : []
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
        let state = currentState
        let inSync: Bool
        if holding || lastScan?.directoryError != nil {
            inSync = false
        } else if let session {
            inSync = kernelMatches(session.table)
        } else {
            inSync = false
        }
        return StatusReport(
            inSync: inSync, generation: generation, table: "inet \(tableName)", stateDirectory: stateDirectory,
            lastApplied: lastApplied.map(EventTime.formatSeconds),
            endpoints: state.endpoints.count,
            localEndpoints: session?.localEndpoints ?? 0,
            skippedPods: state.skippedPods.count, policies: state.policies.count + state.calicoPolicies.count,
            namespaces: Set(state.namespaces.keys).union(state.endpoints.map(\.namespace)).count,
            files: lastScan?.fileCount ?? 0, driftRepairs: repairs, rejectedFiles: (lastScan?.rejected ?? []) + stored.rejected,
            warnings: (session?.warnings.map(\.message) ?? []) + (lastScan?.directoryError.map { [$0] } ?? []),
            lastError: lastError)
    }
}
