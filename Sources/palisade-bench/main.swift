import Dispatch
import NftablesModel
import PolicyCompiler
import PolicyModel

// palisade-bench compile N P: generate a synthetic node and time the compiler.
func seconds(_ work: () -> Void) -> Double {
    let start = DispatchTime.now()
    work()
    return Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

let arguments = CommandLine.arguments
let endpoints = arguments.count > 2 ? Int(arguments[2]) ?? 1000 : 1000
let policies = arguments.count > 3 ? Int(arguments[3]) ?? 100 : 100
var state = DesiredState()
let generate = seconds { state = SyntheticState(endpoints: endpoints, policies: policies).build() }
var compiled: CompiledRuleset?
let first = seconds { compiled = PolicyCompiler.compile(state) }
var times: [Double] = []
for _ in 0..<5 { times.append(seconds { compiled = PolicyCompiler.compile(state) }) }
let table = compiled!.table
let rules = table.chains.values.reduce(0) { $0 + $1.rules.count }
let elements = table.sets.values.reduce(0) { $0 + $1.elements.count }
var relabelled = state
relabelled.endpoints[0].labels["app"] = "other"
let relabel = seconds { _ = PolicyCompiler.compile(relabelled) }
var delta: [Change]?
let diff = seconds { delta = PolicyCompiler.compile(relabelled).table.changes(from: table) }
print("endpoints \(endpoints) policies \(policies): generate \(String(format: "%.3f", generate)) s, compile first \(String(format: "%.3f", first)) s, median \(String(format: "%.3f", times.sorted()[2])) s; chains \(table.chains.count) rules \(rules) sets \(table.sets.count) elements \(elements); relabel recompile \(String(format: "%.3f", relabel)) s, recompile+diff \(String(format: "%.3f", diff)) s (\(delta?.count ?? -1) changes)")
