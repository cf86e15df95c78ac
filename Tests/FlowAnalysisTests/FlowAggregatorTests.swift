import XCTest
import NetworkAddress
@testable import FlowAnalysis

final class FlowAggregatorTests: XCTestCase {
    private let webIP = ip("198.18.1.1"), apiIP = ip("198.18.1.2"), dbIP = ip("198.18.2.1")
    private let outside = ip("203.0.113.9")
    private var resolver: StaticEndpointResolver {
        StaticEndpointResolver([webIP: web, apiIP: api, dbIP: db])
    }

    private func packet(_ time: Double, _ prefix: String, from source: IPAddress, to destination: IPAddress,
                        port: UInt16 = 5432, proto: IPProtocol = .tcp, length: UInt32 = 60) -> PacketLogEvent {
        PacketLogEvent(time: at(time), prefix: prefix, source: source, destination: destination, proto: proto,
                       sourcePort: 40000, destinationPort: port, length: length)
    }

    private func connection(_ time: Double, _ kind: ConnectionEvent.Kind, from source: IPAddress, to destination: IPAddress,
                            port: UInt16 = 5432, forward: PacketCounters? = nil, reverse: PacketCounters? = nil) -> ConnectionEvent {
        ConnectionEvent(time: at(time), kind: kind,
                       original: ConnectionTuple(source: source, destination: destination, proto: .tcp,
                                                 sourcePort: 40000, destinationPort: port),
                       reply: ConnectionTuple(source: destination, destination: source, proto: .tcp,
                                              sourcePort: port, destinationPort: 40000),
                       originalCounters: forward, replyCounters: reverse)
    }

    func testAggregatesConnectionsDenialsAndAttribution() throws {
        var aggregator = FlowAggregator()
        let allowed = FlowKey(source: .workload(web), destination: .workload(db), proto: .tcp, destinationPort: 5432)
        let denied = FlowKey(source: .workload(api), destination: .workload(db), proto: .tcp, destinationPort: 5432)

        let logged = aggregator.ingest(packet(1, "palisade allow in data/allow-web 2 ", from: webIP, to: dbIP), resolver: resolver)
        XCTAssertEqual(logged?.attempts, 0, "an allowed packet is logged to name the policy; conntrack counts it")
        XCTAssertEqual(logged?.decision, PolicyDecision(reporter: .destination, decider: .policy(id: "data/allow-web", rule: 2)))
        XCTAssertEqual(aggregator.ingest(connection(1, .new, from: webIP, to: dbIP), resolver: resolver)?.attempts, 1)
        _ = aggregator.ingest(connection(2, .new, from: webIP, to: dbIP), resolver: resolver)
        let ended = aggregator.ingest(connection(3, .destroy, from: webIP, to: dbIP,
                                                 forward: PacketCounters(packets: 6, bytes: 500),
                                                 reverse: PacketCounters(packets: 4, bytes: 3000)), resolver: resolver)
        XCTAssertEqual(ended?.attempts, 0)
        let deny = aggregator.ingest(packet(4, "palisade deny in default ", from: apiIP, to: dbIP, length: 60), resolver: resolver)
        XCTAssertEqual(deny, FlowObservation(time: at(4), key: denied, action: .deny, attempts: 1,
                                             decision: PolicyDecision(reporter: .destination, decider: .defaultPolicy)))
        _ = aggregator.ingest(packet(5, "palisade deny in default ", from: apiIP, to: dbIP, length: 80), resolver: resolver)
        // A second decision from the same reporter does not replace the first; one from the other side joins it.
        _ = aggregator.ingest(packet(6, "palisade allow in data/other 0 ", from: webIP, to: dbIP), resolver: resolver)
        _ = aggregator.ingest(packet(6, "palisade allow eg shop/egress 1 ", from: webIP, to: dbIP), resolver: resolver)

        XCTAssertEqual(aggregator.advance(to: at(14.999)), [], "the interval [0, 15) is still open")
        let intervals = aggregator.advance(to: at(15))
        XCTAssertEqual(intervals.count, 1)
        let interval = try XCTUnwrap(intervals.first)
        XCTAssertEqual(interval.start, at(0))
        XCTAssertEqual(interval.end, at(15))
        XCTAssertEqual(interval.droppedEvents, 0)
        XCTAssertEqual(interval.records, [
            FlowRecord(start: at(0), end: at(15), key: allowed, action: .allow,
                       decisions: [PolicyDecision(reporter: .source, decider: .policy(id: "shop/egress", rule: 1)),
                                   PolicyDecision(reporter: .destination, decider: .policy(id: "data/allow-web", rule: 2))],
                       forward: PacketCounters(packets: 6, bytes: 500), reverse: PacketCounters(packets: 4, bytes: 3000),
                       connectionsStarted: 2, connectionsCompleted: 1),
            FlowRecord(start: at(0), end: at(15), key: denied, action: .deny,
                       decisions: [PolicyDecision(reporter: .destination, decider: .defaultPolicy)],
                       forward: PacketCounters(packets: 2, bytes: 140)),
        ])
        XCTAssertEqual(aggregator.advance(to: at(100)), [], "nothing is written twice")
        XCTAssertEqual(aggregator.statistics.aggregatedEvents, 8)
    }

    func testEventExactlyOnTheBoundaryOpensTheNextInterval() throws {
        var aggregator = FlowAggregator()
        _ = aggregator.ingest(connection(14.999_999_999, .new, from: webIP, to: dbIP), resolver: resolver)
        _ = aggregator.ingest(connection(15, .new, from: webIP, to: dbIP), resolver: resolver)
        // The second event closed [0, 15) by itself; advance collects it, [15, 30) stays open.
        let first = aggregator.advance(to: at(15))
        XCTAssertEqual(first.map(\.start), [at(0)])
        XCTAssertEqual(first.first?.records.first?.connectionsStarted, 1)
        let second = aggregator.advance(to: at(30))
        XCTAssertEqual(second.map(\.start), [at(15)])
        XCTAssertEqual(second.first?.records.first?.connectionsStarted, 1)
        XCTAssertEqual(second.first?.records.first?.end, at(30))
        XCTAssertEqual(aggregator.statistics.lateEvents, 0)
    }

    func testConfiguredIntervalLength() {
        var aggregator = FlowAggregator(configuration: .init(interval: .seconds(60)))
        _ = aggregator.ingest(connection(59, .new, from: webIP, to: dbIP), resolver: resolver)
        XCTAssertEqual(aggregator.advance(to: at(59.5)), [])
        XCTAssertEqual(aggregator.advance(to: at(60)).map(\.end), [at(60)])
    }

    func testBoundedFlowsPerIntervalWithCountedDrops() throws {
        var aggregator = FlowAggregator(configuration: .init(maximumFlowsPerInterval: 3))
        for port in 1...5 as ClosedRange<UInt16> {
            let observation = aggregator.ingest(connection(1, .new, from: webIP, to: dbIP, port: port), resolver: resolver)
            XCTAssertEqual(observation?.key.destinationPort, port, "detectors see every event, also those not aggregated")
            XCTAssertLessThanOrEqual(aggregator.openFlowCount, 3)
        }
        // A flow already held keeps aggregating when the table is full.
        _ = aggregator.ingest(connection(2, .new, from: webIP, to: dbIP, port: 1), resolver: resolver)
        XCTAssertEqual(aggregator.openFlowCount, 3)
        XCTAssertEqual(aggregator.statistics.droppedEvents, 2)
        let interval = try XCTUnwrap(aggregator.advance(to: at(15)).first)
        XCTAssertEqual(interval.records.map(\.key.destinationPort), [1, 2, 3])
        XCTAssertEqual(interval.records.first?.connectionsStarted, 2)
        XCTAssertEqual(interval.droppedEvents, 2)
        // The next interval starts empty: the bound is per interval.
        _ = aggregator.ingest(connection(16, .new, from: webIP, to: dbIP, port: 5), resolver: resolver)
        XCTAssertEqual(aggregator.advance(to: at(30)).first?.records.map(\.key.destinationPort), [5])
        XCTAssertEqual(aggregator.statistics.droppedEvents, 2)
    }

    func testManyFlowsStayBounded() {
        var aggregator = FlowAggregator(configuration: .init(maximumFlowsPerInterval: 100, maximumPendingIntervals: 2))
        var dropped: UInt64 = 0
        for second in 0..<60 {
            for n in 0..<500 {
                let destination = IPAddress(bytes: [10, UInt8(n / 256), UInt8(n % 256), UInt8(second)])!
                _ = aggregator.ingest(connection(Double(second), .new, from: webIP, to: destination, port: UInt16(n)), resolver: resolver)
                XCTAssertLessThanOrEqual(aggregator.openFlowCount, 100)
            }
            if second % 15 == 14 {
                let intervals = aggregator.advance(to: at(Double(second + 1)))
                XCTAssertEqual(intervals.map(\.records.count), [100])
                dropped += intervals.reduce(0) { $0 + $1.droppedEvents }
            }
        }
        XCTAssertEqual(dropped, 4 * (15 * 500 - 100))
        XCTAssertEqual(aggregator.statistics.droppedEvents, dropped)
    }

    func testUncollectedIntervalsAreBoundedAndCounted() {
        var aggregator = FlowAggregator(configuration: .init(maximumPendingIntervals: 2))
        for interval in 0..<5 {
            _ = aggregator.ingest(connection(Double(interval * 15), .new, from: webIP, to: dbIP), resolver: resolver)
            _ = aggregator.ingest(connection(Double(interval * 15), .new, from: apiIP, to: dbIP), resolver: resolver)
        }
        // Four intervals closed by later events and the fifth by this call; only the newest two are kept.
        let intervals = aggregator.advance(to: at(75))
        XCTAssertEqual(intervals.map(\.start), [at(45), at(60)])
        XCTAssertEqual(aggregator.statistics.droppedRecords, 6)
    }

    func testLateEventsGoToTheOpenIntervalAndNeverReopenAClosedOne() throws {
        var aggregator = FlowAggregator()
        _ = aggregator.ingest(connection(5, .new, from: webIP, to: dbIP), resolver: resolver)
        XCTAssertEqual(aggregator.advance(to: at(15)).count, 1)
        // [0, 15) is closed: an event timed inside it counts in the next interval instead.
        _ = aggregator.ingest(connection(10, .new, from: webIP, to: dbIP), resolver: resolver)
        XCTAssertEqual(aggregator.statistics.lateEvents, 1)
        let intervals = aggregator.advance(to: at(30))
        XCTAssertEqual(intervals.map(\.start), [at(15)])
        XCTAssertEqual(intervals.first?.records.first?.start, at(15))
        // Late within an open interval too.
        _ = aggregator.ingest(connection(31, .new, from: webIP, to: dbIP), resolver: resolver)
        _ = aggregator.ingest(connection(29, .new, from: webIP, to: dbIP), resolver: resolver)
        XCTAssertEqual(aggregator.statistics.lateEvents, 2)
        XCTAssertEqual(aggregator.flush().first?.records.first?.connectionsStarted, 2)
    }

    func testForeignPrefixesCalicoLogRulesAndTheNodesOwnConnectionsAreNotFlows() {
        var aggregator = FlowAggregator()
        XCTAssertNil(aggregator.ingest(packet(1, "kube-proxy DROP ", from: webIP, to: dbIP), resolver: resolver))
        XCTAssertEqual(aggregator.statistics.unrecognisedPrefixes, 1)
        XCTAssertTrue("\(aggregator.lastPrefixError.map { "\($0)" } ?? "")".contains("kube-proxy"))
        XCTAssertNil(aggregator.ingest(packet(1, "palisade log eg shop/audit 0 ", from: webIP, to: dbIP), resolver: resolver))
        let nodeIP = ip("192.0.2.10")
        XCTAssertNil(aggregator.ingest(connection(1, .new, from: nodeIP, to: outside, port: 443), resolver: resolver))
        XCTAssertEqual(aggregator.statistics.ignoredEvents, 2)
        XCTAssertEqual(aggregator.flush(), [])

        var keepAll = FlowAggregator(configuration: .init(ignoreConnectionsWithoutWorkload: false))
        XCTAssertEqual(keepAll.ingest(connection(1, .new, from: nodeIP, to: outside, port: 443), resolver: resolver)?.key.source,
                       .network(nodeIP))
    }

    func testUnknownAddressesAreNetworkPeersAndICMPHasNoPort() {
        var aggregator = FlowAggregator()
        let observation = aggregator.ingest(packet(1, "palisade deny in default ", from: outside, to: webIP, port: 8, proto: .icmp),
                                            resolver: resolver)
        XCTAssertEqual(observation?.key, FlowKey(source: .network(outside), destination: .workload(web), proto: .icmp, destinationPort: nil))
    }

    func testDNATUsesTheReplyTupleForTheRealDestination() {
        var aggregator = FlowAggregator()
        let serviceIP = ip("10.96.0.10")
        let event = ConnectionEvent(time: at(1), kind: .new,
                                   original: ConnectionTuple(source: webIP, destination: serviceIP, proto: .tcp,
                                                             sourcePort: 40000, destinationPort: 80),
                                   reply: ConnectionTuple(source: dbIP, destination: webIP, proto: .tcp,
                                                          sourcePort: 5432, destinationPort: 40000))
        XCTAssertEqual(aggregator.ingest(.conntrack(event), resolver: resolver)?.key,
                       FlowKey(source: .workload(web), destination: .workload(db), proto: .tcp, destinationPort: 5432))
    }

    func testHashedPolicyIsResolvedThroughTheDirectory() throws {
        let longID = "a-very-long-namespace-name/an-equally-long-policy-name-for-db"
        let prefix = LogPrefix.policyRule(verdict: .deny, reporter: .source, policy: .id(longID), rule: 4).text
        XCTAssertTrue(prefix.contains("#"))
        var aggregator = FlowAggregator(policies: PolicyDirectory(policyIDs: [longID]))
        let observation = aggregator.ingest(.packet(packet(1, prefix, from: webIP, to: dbIP)), resolver: resolver)
        XCTAssertEqual(observation?.decision?.decider, .policy(id: longID, rule: 4))
        aggregator.policies = PolicyDirectory()
        let unknown = aggregator.ingest(packet(2, prefix, from: webIP, to: dbIP), resolver: resolver)
        XCTAssertEqual(unknown?.decision?.decider, .policy(id: "#" + PolicyReference.id(longID).hashText, rule: 4))
    }

    func testRecordsAsObservations() {
        let record = FlowRecord(start: at(0), end: at(15),
                                key: FlowKey(source: .workload(web), destination: .workload(db), proto: .tcp, destinationPort: 5432),
                                action: .deny, forward: PacketCounters(packets: 7, bytes: 420), connectionsStarted: 0)
        XCTAssertEqual(FlowObservation(record: record).attempts, 7)
        var allowed = record
        allowed.action = .allow
        allowed.connectionsStarted = 3
        XCTAssertEqual(FlowObservation(record: allowed).attempts, 3)
        XCTAssertEqual(FlowObservation(record: allowed).time, at(0))
    }
}
