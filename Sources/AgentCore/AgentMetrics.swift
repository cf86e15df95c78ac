/// What the agent counts and measures, as plain values; the metrics endpoint exports them.
public struct AgentMetrics: Sendable, Hashable {
    /// Reconciles run (file events, syncs, resyncs, notifications, quarantines).
    public var reconciles = 0
    /// nf_tables batches the kernel accepted, and batches it refused.
    public var batches = 0
    public var failedBatches = 0
    /// Changes (messages) in the last batch.
    public var lastBatchChanges = 0 { didSet { batchChanges.observe(Double(lastBatchChanges)) } }
    public var lastReconcileSeconds = 0.0 { didSet { reconcileSeconds.observe(lastReconcileSeconds) } }
    public var lastCompileSeconds = 0.0 { didSet { compileSeconds.observe(lastCompileSeconds) } }
    /// From sending the batch to the kernel's answer.
    public var lastCommitSeconds = 0.0 { didSet { commitSeconds.observe(lastCommitSeconds) } }
    /// Times the table was found changed by someone else and restored.
    public var driftRepairs = 0
    /// nf_tables change notifications about the table that were not the agent's own.
    public var notifications = 0
    public var endpoints = 0
    public var localEndpoints = 0
    public var policies = 0
    public var quarantines = 0
    public var rejectedFiles = 0
    public var chains = 0
    public var sets = 0
    public var setElements = 0
    /// The flow monitor's counters (zero without one).
    public var flowPacketLogs = 0
    public var flowConnectionEvents = 0
    public var flowQueueDrops = 0
    public var flowKernelLosses = 0
    public var flowRecords = 0
    public var alerts = 0
    public var autoQuarantines = 0

    // Every value given to a `last…` property above is also recorded here, so each reconcile and
    // each batch is counted in its distribution without the reconciler doing anything more.
    /// Reconcile durations (seconds), one per reconcile.
    public private(set) var reconcileSeconds = Distribution(bounds: Distribution.secondsBounds)
    /// Compile durations (seconds), one per reconcile.
    public private(set) var compileSeconds = Distribution(bounds: Distribution.secondsBounds)
    /// Kernel commit durations (seconds), one per accepted batch.
    public private(set) var commitSeconds = Distribution(bounds: Distribution.secondsBounds)
    /// Changes per accepted batch.
    public private(set) var batchChanges = Distribution(bounds: Distribution.changesBounds)

    public init() {}
}

/// Observations of one quantity, counted in fixed buckets. Each bucket keeps its own count and
/// sum (not cumulative, unlike Prometheus), so the difference between two snapshots says exactly
/// what was observed in between, bucket by bucket.
public struct Distribution: Sendable, Hashable {
    /// Upper bounds, ascending. A value belongs to the first bucket whose bound is at least the
    /// value (Prometheus' `le`); one more bucket past the last bound holds the rest.
    public let bounds: [Double]
    /// Observations per bucket: `bounds.count + 1` entries.
    public private(set) var counts: [Int]
    /// Sum of the observations per bucket: `bounds.count + 1` entries.
    public private(set) var sums: [Double]

    public init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count + 1)
        sums = Array(repeating: 0, count: bounds.count + 1)
    }

    public var count: Int { counts.reduce(0, +) }
    public var sum: Double { sums.reduce(0, +) }

    public mutating func observe(_ value: Double) {
        let bucket = bounds.firstIndex { value <= $0 } ?? bounds.count
        counts[bucket] += 1
        sums[bucket] += value
    }

    /// From 100 µs to 10 s: a one-pod change takes well under a millisecond, a full load of a
    /// big node a second or more.
    public static let secondsBounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Powers of four from 1 to about a million changes: one set element up to a full reload.
    public static let changesBounds: [Double] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262_144, 1_048_576]
}
