import XCTest
import NetworkAddress
@testable import FlowAnalysis

// Synthetic streams for the flow tests: addresses from the lab's ranges, times in whole seconds
// or milliseconds so that boundaries are exact.

func ip(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPAddress {
    guard let address = IPAddress(text) else {
        XCTFail("bad test address \(text)", file: file, line: line)
        return IPAddress(bytes: [0, 0, 0, 0])!
    }
    return address
}

func seconds(_ value: Double) -> Timestamp {
    Timestamp(nanoseconds: UInt64((value * 1_000_000_000).rounded()))
}

/// A fixed start well after the epoch (2026-11-29T10:00:00Z), aligned to every window used here.
let t0: UInt64 = 1_795_946_400

func at(_ offset: Double) -> Timestamp {
    Timestamp(nanoseconds: t0 * 1_000_000_000 + UInt64((offset * 1_000_000_000).rounded()))
}

let web = Workload(namespace: "shop", name: "web-1", labels: ["app": "web"])
let api = Workload(namespace: "shop", name: "api-1", labels: ["app": "api"])
let db = Workload(namespace: "data", name: "postgres-0", labels: ["app": "db", "tier": "data"])
let scanner = Workload(namespace: "lab", name: "scanner", labels: ["app": "scanner"])

/// An observation of one connection attempt from `source` to `destination` on `port`.
func attempt(_ time: Double, from source: Workload, to destination: FlowPeer, port: UInt16?,
             proto: IPProtocol = .tcp, action: FlowAction = .allow, count: UInt64 = 1) -> FlowObservation {
    FlowObservation(time: at(time), key: FlowKey(source: .workload(source), destination: destination,
                                                 proto: proto, destinationPort: port),
                    action: action, attempts: count)
}

func host(_ n: Int) -> FlowPeer { .network(IPAddress(bytes: [203, 0, 113, UInt8(n % 256)])!) }
