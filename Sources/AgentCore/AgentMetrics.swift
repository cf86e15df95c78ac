/// What the agent counts and measures, as plain values; the metrics endpoint exports them.
public struct AgentMetrics: Sendable, Hashable {
    /// Reconciles run (file events, syncs, resyncs, notifications, quarantines).
    public var reconciles = 0
    /// nf_tables batches the kernel accepted, and batches it refused.
    public var batches = 0
    public var failedBatches = 0
    /// Changes (messages) in the last batch.
    public var lastBatchChanges = 0
    public var lastReconcileSeconds = 0.0
    public var lastCompileSeconds = 0.0
    /// From sending the batch to the kernel's answer.
    public var lastCommitSeconds = 0.0
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
    public init() {}
}
