import Dispatch
import Foundation
import NftablesModel
import NftablesNetlink
import PolicyCompiler
import PolicyModel

// palisade-bench ops N P K [JSON-FILE]
//
// The agent's own path for one change, in this process, against the kernel of the network
// namespace it runs in (scripts/bench runs it in a fresh one): a change handed to the compiler
// session as the reconcile loop hands it over (after the file is read), the session's edit, the
// batch through libnftnl/libmnl, the kernel's ACK. First the full programming of the state (compile
// and one batch), then K operations of each kind:
//   pod-add, pod-delete, pod-relabel, quarantine, release: the session edits its table in place;
//   policy-add, policy-change: a new session compiled from the whole state, and the difference
//   to the table in force (what the agent does when a policy file changes).
// Each timing starts when the change is handed over and ends when the kernel has acknowledged the
// batch; `edit` is the part before the batch is sent. At the end the kernel's table is read back
// and compared with the session's (a benchmark that left the kernel elsewhere would be worthless).
func runOperations(_ arguments: [String]) {
    guard arguments.count >= 3, let n = Int(arguments[0]), let p = Int(arguments[1]), let k = Int(arguments[2]), n >= 2, k >= 1 else {
        fail("usage: palisade-bench ops N P K [JSON-FILE]")
    }
    let synthetic = SyntheticState(endpoints: n, policies: p)
    var state = synthetic.build()
    let connection: NftablesConnection
    do { connection = try NftablesConnection() } catch { fail("netlink: \(error)") }

    func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    func ms(_ from: UInt64, _ to: UInt64) -> Double { Double(to - from) / 1e6 }
    func commit(_ changes: [Change]) {
        if changes.isEmpty { return }
        do { try connection.commit(changes) } catch { fail("commit: \(error)") }
    }

    // Full programming: compile, then one batch that creates the table.
    let compileStart = now()
    var session = CompilerSession(state: state)
    let compiled = now()
    let full = session.table.replacementChanges(flags: [], exists: false)
    commit(full)
    let programmed = now()
    let table = session.table
    let elements = table.sets.values.reduce(0) { $0 + $1.elements.count }
    let rules = table.chains.values.reduce(0) { $0 + $1.rules.count }

    var timings: [String: [Double]] = [:]
    var edits: [String: [Double]] = [:]
    var batchSizes: [String: [Int]] = [:]
    func endpointOperation(_ kind: String, _ changes: EndpointChanges) {
        let start = now()
        let batch = session.apply(changes)
        let edited = now()
        commit(batch)
        let acknowledged = now()
        timings[kind, default: []].append(ms(start, acknowledged))
        edits[kind, default: []].append(ms(start, edited))
        batchSizes[kind, default: []].append(batch.count)
    }
    func policyOperation(_ kind: String, _ policy: NetworkPolicy) {
        let start = now()
        var next = session.state
        next.policies.removeAll { $0.id == policy.id }
        next.policies.append(policy)
        next.policies.sort { $0.id < $1.id }
        let previous = session.table
        let fresh = CompilerSession(state: next)
        guard let batch = fresh.table.changes(from: previous) else { fail("\(kind): no incremental batch") }
        let edited = now()
        commit(batch)
        let acknowledged = now()
        session = fresh
        state = next
        timings[kind, default: []].append(ms(start, acknowledged))
        edits[kind, default: []].append(ms(start, edited))
        batchSizes[kind, default: []].append(batch.count)
    }

    for j in 0..<k {
        // A new pod with its own address and interface, then gone again.
        let added = synthetic.endpoint(n + j)
        endpointOperation("pod-add", EndpointChanges(endpoints: [added.id: added]))
        // An existing pod's app label changed (other policies select it), and back.
        let index = (j * 7919) % n
        let original = synthetic.endpoint(index)
        var relabelled = original
        let apps = SyntheticState.apps
        relabelled.labels["app"] = apps[(apps.firstIndex(of: original.labels["app"]!)! + 1) % apps.count]
        endpointOperation("pod-relabel", EndpointChanges(endpoints: [original.id: relabelled]))
        endpointOperation("pod-relabel", EndpointChanges(endpoints: [original.id: original]))
        endpointOperation("pod-delete", EndpointChanges(endpoints: [added.id: Endpoint?.none]))
        // Quarantine and release of an existing pod.
        let target = synthetic.endpoint((j * 104_729) % n)
        let quarantine = Quarantine(namespace: target.namespace, name: target.name, reason: "bench", podUID: target.uid)
        endpointOperation("quarantine", EndpointChanges(quarantines: session.state.quarantines + [quarantine]))
        endpointOperation("release", EndpointChanges(quarantines: session.state.quarantines.filter { $0.podID != target.id }))
    }
    // Policy operations recompile everything: fewer of them by default if K is large.
    for j in 0..<min(k, 50) {
        policyOperation("policy-add", synthetic.kubernetesPolicy(p + j))
        policyOperation("policy-change", synthetic.kubernetesPolicy(p + j, portShift: 1))
    }

    // The kernel must hold exactly what the session says.
    let kernel: Table?
    do { kernel = try connection.readTable(family: .inet, name: session.table.name) } catch { fail("read back: \(error)") }
    let matches = kernel == session.table

    func percentile(_ values: [Double], _ q: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)]
    }
    var report: [String: Any] = [
        "endpoints": n, "policies": p, "operationsPerKind": k,
        "compileSeconds": ms(compileStart, compiled) / 1000, "fullProgrammingSeconds": ms(compileStart, programmed) / 1000,
        "fullCommitSeconds": ms(compiled, programmed) / 1000, "fullBatchChanges": full.count,
        "chains": table.chains.count, "rules": rules, "sets": table.sets.count, "elements": elements,
        "kernelMatchesSession": matches,
    ]
    print(String(format: "ops N=%d P=%d: compile %.3f s, full programming (compile + one batch of %d changes) %.3f s; %d chains, %d rules, %d sets, %d elements",
                 n, p, ms(compileStart, compiled) / 1000, full.count, ms(compileStart, programmed) / 1000,
                 table.chains.count, rules, table.sets.count, elements))
    var kinds: [String: Any] = [:]
    for kind in ["pod-add", "pod-delete", "pod-relabel", "quarantine", "release", "policy-add", "policy-change"] {
        guard let values = timings[kind], let edit = edits[kind], let sizes = batchSizes[kind] else { continue }
        kinds[kind] = ["count": values.count, "medianMs": percentile(values, 0.5), "p99Ms": percentile(values, 0.99),
                       "maxMs": values.max()!, "editMedianMs": percentile(edit, 0.5), "editP99Ms": percentile(edit, 0.99),
                       "batchChangesMedian": sizes.sorted()[sizes.count / 2]]
        print(String(format: "  %-14@ n=%3d  to ACK median %7.3f ms  p99 %7.3f ms  (edit median %6.3f ms, p99 %6.3f ms; batch %d changes)",
                     kind as NSString, values.count, percentile(values, 0.5), percentile(values, 0.99),
                     percentile(edit, 0.5), percentile(edit, 0.99), sizes.sorted()[sizes.count / 2]))
    }
    report["operations"] = kinds
    print("  kernel table read back equals the session's: \(matches ? "yes" : "NO")")
    if arguments.count > 3 {
        do {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: arguments[3]))
        } catch { fail("\(arguments[3]): \(error)") }
    }
    if !matches { exit(1) }
}
