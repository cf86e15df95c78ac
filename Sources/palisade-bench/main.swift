import Dispatch
import Foundation
import NftablesModel
import PolicyCompiler
import PolicyModel

// palisade-bench compile N P             generate a synthetic node and time the compiler
// palisade-bench write-state DIR N P     write it as YAML files the agent loads (pods/, policies/)
// palisade-bench write-ops DIR N P K     K files per incremental operation (for scripts/bench scale)
// palisade-bench render N P FILE         compile it and write the table as nft text for `nft -f`
// palisade-bench flows EVENTS [WORKLOADS]   the flow monitor's pipeline (aggregation, detectors, JSON) on one core
// palisade-bench ops N P K [JSON]        the agent's path for K changes of each kind, to the kernel's ACK
//                                        (run it inside a throwaway network namespace: see Operations.swift)
func seconds(_ work: () -> Void) -> Double {
    let start = DispatchTime.now()
    work()
    return Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("palisade-bench: \(message)\n".utf8))
    exit(2)
}

func size(_ arguments: ArraySlice<String>) -> (Int, Int) {
    let values = arguments.map { Int($0) }
    guard values.count == 2, let n = values[0], let p = values[1], n >= 1, p >= 0 else { fail("N and P must be numbers") }
    return (n, p)
}

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "compile"

switch mode {
case "write-state":
    guard arguments.count == 5 else { fail("usage: palisade-bench write-state DIR N P") }
    let (n, p) = size(arguments[3...4])
    let synthetic = SyntheticState(endpoints: n, policies: p)
    do { try synthetic.writeFiles(to: arguments[2]) } catch { fail("\(arguments[2]): \(error)") }
    print("wrote \(synthetic.namespaceCount) namespaces, \(n) pod files, \(p) policy files to \(arguments[2])")

case "write-ops":
    guard arguments.count == 6, let k = Int(arguments[5]), k >= 1 else { fail("usage: palisade-bench write-ops DIR N P K") }
    let (n, p) = size(arguments[3...4])
    let synthetic = SyntheticState(endpoints: n, policies: p)
    let dir = arguments[2]
    do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var lines: [String] = []
        for j in 0..<k {
            // A new pod (index n + j: its own address and interface), and its file name.
            let added = synthetic.endpoint(n + j)
            try SyntheticState.write(SyntheticState.podYAML(added), to: "\(dir)/pod-add-\(j).yaml")
            // An existing pod with its app label changed (a different set of policies selects it).
            let index = (j * max(1, n / k)) % n
            var relabelled = synthetic.endpoint(index)
            relabelled.labels["app"] = SyntheticState.apps[(SyntheticState.apps.firstIndex(of: relabelled.labels["app"]!)! + 1) % SyntheticState.apps.count]
            try SyntheticState.write(SyntheticState.podYAML(relabelled), to: "\(dir)/pod-relabel-\(j).yaml")
            // A new policy, and the same policy with another port.
            try SyntheticState.write(synthetic.policyYAML(p + j), to: "\(dir)/policy-add-\(j).yaml")
            try SyntheticState.write(synthetic.policyYAML(p + j, portShift: 1), to: "\(dir)/policy-change-\(j).yaml")
            let policyName = synthetic.policyFileName(p + j)
            lines.append([String(j), SyntheticState.podFileName(added), added.interface!,
                          SyntheticState.podFileName(relabelled), relabelled.interface!, policyName].joined(separator: " "))
        }
        // One line per j: J ADDED-POD-FILE ADDED-IFNAME RELABELLED-POD-FILE RELABELLED-IFNAME POLICY-FILE
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/index", atomically: true, encoding: .utf8)
    } catch { fail("\(dir): \(error)") }

case "render":
    guard arguments.count == 5 else { fail("usage: palisade-bench render N P FILE") }
    let (n, p) = size(arguments[2...3])
    let state = SyntheticState(endpoints: n, policies: p).build()
    let table = PolicyCompiler.compile(state).table
    let text = NftText.loadable(RulesetText.render(table))
    do { try text.write(toFile: arguments[4], atomically: true, encoding: .utf8) } catch { fail("\(arguments[4]): \(error)") }
    print("rendered \(table.chains.count) chains, \(table.sets.count) sets to \(arguments[4]) (\(text.utf8.count) bytes)")

case "flows":
    runFlowPipeline(Array(arguments.dropFirst(2)))

case "ops":
    runOperations(Array(arguments.dropFirst(2)))

case "render-linear":
    renderLinear(Array(arguments.dropFirst(2)))

case "compile":
    let endpoints = arguments.count > 2 ? Int(arguments[2]) ?? 1000 : 1000
    let policies = arguments.count > 3 ? Int(arguments[3]) ?? 100 : 100
    var state = DesiredState()
    let generate = seconds { state = SyntheticState(endpoints: endpoints, policies: policies).build() }
    var compiled: CompiledRuleset?
    let first = seconds { compiled = PolicyCompiler.compile(state) }
    var times: [Double] = []
    for _ in 0..<5 {
        // The previous result is freed before the clock starts: freeing it is not compiling.
        compiled = nil
        times.append(seconds { compiled = PolicyCompiler.compile(state) })
    }
    let table = compiled!.table
    let rules = table.chains.values.reduce(0) { $0 + $1.rules.count }
    let elements = table.sets.values.reduce(0) { $0 + $1.elements.count }
    var relabelled = state
    relabelled.endpoints[0].labels["app"] = "other"
    let relabel = seconds { _ = PolicyCompiler.compile(relabelled) }
    var delta: [Change]?
    let diff = seconds { delta = PolicyCompiler.compile(relabelled).table.changes(from: table) }
    print("endpoints \(endpoints) policies \(policies): generate \(String(format: "%.3f", generate)) s, compile first \(String(format: "%.3f", first)) s, median \(String(format: "%.3f", times.sorted()[2])) s; chains \(table.chains.count) rules \(rules) sets \(table.sets.count) elements \(elements); relabel recompile \(String(format: "%.3f", relabel)) s, recompile+diff \(String(format: "%.3f", diff)) s (\(delta?.count ?? -1) changes)")

default:
    fail("unknown mode '\(mode)' (compile, write-state, write-ops, render)")
}
