import Dispatch
import FlowAnalysis
import Foundation
import NetworkAddress

// palisade-bench flows EVENTS [WORKLOADS]
//
// The agent's flow pipeline on one core, without the kernel: EVENTS synthetic events (three in
// four conntrack new/destroy pairs of allowed connections, one in four denied-packet logs with
// Palisade's prefixes) among WORKLOADS pods (default 200), each talking to four peers, every 50th
// event a probe of a new port (so the scan detectors see scanners), fed through the
// FlowAggregator (15 s intervals of event time, 1,000 events a simulated second), the default
// detectors and the JSON encoding of every record and alert, as the flow monitor's thread does.
// Prints events per second of wall time. The kernel side (NFLOG reading) is measured by
// NflogReaderTests.testBenchmarkIngestRate (PALISADE_NFLOG_BENCH=1).
func runFlowPipeline(_ arguments: [String]) {
    guard let count = arguments.first.flatMap(Int.init), count > 0 else { fail("usage: palisade-bench flows EVENTS [WORKLOADS]") }
    let workloadCount = arguments.count > 1 ? Int(arguments[1]) ?? 200 : 200
    var workloads: [IPAddress: Workload] = [:]
    var addresses: [IPAddress] = []
    for index in 0..<workloadCount {
        let address = IPAddress(bytes: [198, 18, UInt8(index / 250), UInt8(index % 250 + 1)])!
        workloads[address] = Workload(namespace: "ns\(index % 10)", name: "pod-\(index)", labels: ["app": "a\(index % 7)"])
        addresses.append(address)
    }
    let resolver = StaticEndpointResolver(workloads)
    let policy = "ns1/allow-web"
    var aggregator = FlowAggregator(policies: PolicyDirectory(policyIDs: [policy]))
    var suite = DetectorSuite()
    var random = SystemRandomNumberGenerator()

    // Events are built first, so the timing covers the pipeline only.
    var events: [FlowEvent] = []
    events.reserveCapacity(count)
    let start = Timestamp.seconds(1_800_000_000)
    for index in 0..<count {
        let time = start + .milliseconds(index)   // 1,000 events per simulated second
        // Each workload talks to four peers of its own, as services do.
        let sourceIndex = Int.random(in: 0..<addresses.count, using: &random)
        let source = addresses[sourceIndex]
        let destination = addresses[(sourceIndex * 7 + Int.random(in: 1...4, using: &random)) % addresses.count]
        // Every 50th source scans: a new port each time.
        let port: UInt16 = index % 50 == 0 ? UInt16(1024 + index % 30_000) : 8080
        if index % 4 == 3 {
            let prefix = index % 8 == 3 ? LogPrefix.defaultPolicy(action: .deny, reporter: .destination).text
                                        : LogPrefix.policyRule(verdict: .deny, reporter: .source, policy: .id(policy), rule: 0).text
            events.append(.packet(PacketLogEvent(time: time, prefix: prefix, source: source, destination: destination, proto: .tcp,
                                                 sourcePort: 40000, destinationPort: port, length: 60)))
        } else {
            let tuple = ConnectionTuple(source: source, destination: destination, proto: .tcp, sourcePort: UInt16(10_000 + index % 50_000),
                                        destinationPort: port)
            let reply = ConnectionTuple(source: destination, destination: source, proto: .tcp, sourcePort: port,
                                        destinationPort: tuple.sourcePort)
            let ended = index % 2 == 0
            events.append(.conntrack(ConnectionEvent(time: time, kind: ended ? .destroy : .new, original: tuple, reply: reply,
                                                     originalCounters: ended ? PacketCounters(packets: 6, bytes: 600) : nil,
                                                     replyCounters: ended ? PacketCounters(packets: 4, bytes: 1200) : nil)))
        }
    }

    var records = 0, alerts = 0, bytes = 0
    let began = DispatchTime.now()
    for (index, event) in events.enumerated() {
        if let observation = aggregator.ingest(event, resolver: resolver) {
            for alert in suite.observe(observation) { alerts += 1; bytes += alert.jsonLine.utf8.count }
        }
        if index % 1000 == 999 {
            let now = event.time
            for interval in aggregator.advance(to: now) {
                for record in interval.records { records += 1; bytes += record.jsonLine.utf8.count }
            }
            for alert in suite.advance(to: now) { alerts += 1; bytes += alert.jsonLine.utf8.count }
        }
    }
    for interval in aggregator.flush() {
        for record in interval.records { records += 1; bytes += record.jsonLine.utf8.count }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - began.uptimeNanoseconds) / 1e9
    print(String(format: "flows: %d events among %d workloads in %.3f s = %.0f events/s on one core; %d records, %d alerts, %d bytes of JSON",
                 count, workloadCount, seconds, Double(count) / seconds, records, alerts, bytes))
}
