import Foundation
import Prometheus

/// The agent's metrics in the Prometheus text format (0.0.4), through swift-prometheus' collectors
/// and encoder. Its counters and histograms only ever grow, so each exposition feeds them what
/// changed since the previous snapshot; gauges are set to the snapshot's values. One exporter
/// follows one agent.
public final class MetricsExporter: @unchecked Sendable {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let lock = NSLock()
    // Owned by `lock`.
    private var families: [Family]
    private var previous = AgentMetrics()

    public init() {
        families = Self.makeFamilies()
    }

    /// HELP, TYPE and samples of every metric, in a fixed order.
    public func exposition(of metrics: AgentMetrics) -> String {
        lock.withLock {
            // Counters that went down belong to another agent: start again from zero.
            if families.contains(where: { !$0.grows(previous, metrics) }) {
                families = Self.makeFamilies()
                previous = AgentMetrics()
            }
            var text: [UInt8] = []
            for family in families {
                family.advance(previous, metrics)
                family.registry.emit(into: &text)
            }
            previous = metrics
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// One metric in a registry of its own: a registry keeps its metrics in a dictionary and emits
    /// them in an order that changes from one process to the next; one registry each keeps the
    /// order below, so scrapes diff cleanly and tests compare text.
    private struct Family {
        let registry: PrometheusCollectorRegistry
        /// Whether going from the first snapshot to the second only adds.
        let grows: (AgentMetrics, AgentMetrics) -> Bool
        let advance: (AgentMetrics, AgentMetrics) -> Void
    }

    private static func makeFamilies() -> [Family] {
        [
            histogram("reconcile_duration", unit: "seconds", \.reconcileSeconds,
                      "Duration of each reconcile: rescan of the state directory, compile, and kernel update."),
            histogram("compile_duration", unit: "seconds", \.compileSeconds,
                      "Duration of each compile of the desired state into a ruleset."),
            histogram("kernel_commit_duration", unit: "seconds", \.commitSeconds,
                      "Time from sending each nf_tables batch to the kernel's answer, for batches the kernel accepted."),
            histogram("batch_size", unit: "changes", \.batchChanges,
                      "Changes (netlink messages) in each nf_tables batch the kernel accepted."),
            counter("batches", \.batches, "nf_tables batches the kernel accepted."),
            counter("batches_failed", \.failedBatches,
                    "Reconciles whose nf_tables batch failed; the kernel keeps the rules that were in force."),
            counter("drift_repairs", \.driftRepairs,
                    "Times the agent's table was found changed or removed by someone else and restored."),
            counter("table_notifications", \.notifications,
                    "nf_tables change notifications about the agent's table that the agent did not cause."),
            gauge("endpoints", \.endpoints, "Endpoints (pods) in the desired state."),
            gauge("local_endpoints", \.localEndpoints, "Endpoints on this node, with a workload interface."),
            gauge("policies", \.policies, "Network policies in the desired state, Kubernetes and Calico."),
            gauge("quarantined_endpoints", \.quarantines, "Endpoints on this node in quarantine."),
            gauge("rejected_files", \.rejectedFiles,
                  "State files rejected as invalid; each keeps its last good content, if any, in force."),
            gauge("chains", \.chains, "Chains in the compiled ruleset."),
            gauge("sets", \.sets, "Sets and maps in the compiled ruleset."),
            gauge("set_elements", \.setElements, "Elements of the sets and maps in the compiled ruleset."),
            counter("flow_packet_logs", \.flowPacketLogs, "NFLOG messages of the ruleset's log rules the flow monitor took in."),
            counter("flow_connection_events", \.flowConnectionEvents, "Conntrack new and destroy events the flow monitor took in."),
            counter("flow_queue_drops", \.flowQueueDrops,
                    "Kernel events dropped because the flow monitor's queue was full (the monitor fell behind)."),
            counter("flow_kernel_losses", \.flowKernelLosses,
                    "Kernel messages lost before the flow monitor read them (NFLOG sequence gaps, ENOBUFS)."),
            counter("flow_records", \.flowRecords, "Flow records written to flows.jsonl."),
            counter("alerts", \.alerts, "Alerts of the anomaly detectors."),
            counter("auto_quarantines", \.autoQuarantines, "Workloads the agent quarantined on its own after an alert."),
        ]
    }

    private static func descriptor(_ name: String, unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "palisade", metricName: name, unitName: unit, helpText: help)
    }

    private static func counter(_ name: String, _ value: KeyPath<AgentMetrics, Int>, _ help: String) -> Family {
        let registry = PrometheusCollectorRegistry()
        let counter = registry.makeCounter(descriptor: descriptor(name, unit: "total", help))
        return Family(registry: registry,
                      grows: { $1[keyPath: value] >= $0[keyPath: value] },
                      advance: { counter.increment(by: Int64($1[keyPath: value] - $0[keyPath: value])) })
    }

    private static func gauge(_ name: String, _ value: KeyPath<AgentMetrics, Int>, _ help: String) -> Family {
        let registry = PrometheusCollectorRegistry()
        let gauge = registry.makeGauge(descriptor: descriptor(name, unit: "", help))
        return Family(registry: registry, grows: { _, _ in true }, advance: { gauge.set(to: Double($1[keyPath: value])) })
    }

    private static func histogram(_ name: String, unit: String, _ distribution: KeyPath<AgentMetrics, Distribution>,
                                  _ help: String) -> Family {
        let registry = PrometheusCollectorRegistry()
        let bounds = AgentMetrics()[keyPath: distribution].bounds
        let histogram = registry.makeValueHistogram(descriptor: descriptor(name, unit: unit, help), buckets: bounds)
        return Family(
            registry: registry,
            grows: { old, new in
                zip(old[keyPath: distribution].counts, new[keyPath: distribution].counts).allSatisfy { $1 >= $0 }
            },
            advance: { old, new in
                let before = old[keyPath: distribution]
                let after = new[keyPath: distribution]
                for bucket in after.counts.indices {
                    let added = after.counts[bucket] - before.counts[bucket]
                    guard added > 0 else { continue }
                    // The collector takes single observations. The bucket's new ones go in as their
                    // mean, which lies in the same bucket, so every bucket count and the sum come out
                    // as observed (the clamp only undoes rounding at a bound).
                    let mean = (after.sums[bucket] - before.sums[bucket]) / Double(added)
                    let lowest = bucket > 0 ? bounds[bucket - 1].nextUp : -Double.infinity
                    let highest = bucket < bounds.count ? bounds[bucket] : Double.infinity
                    let value = min(max(mean, lowest), highest)
                    for _ in 0..<added { histogram.record(value) }
                }
            })
    }
}
