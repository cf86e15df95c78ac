import XCTest
import Foundation
@testable import FlowAnalysis

final class JSONTests: XCTestCase {
    private func quoted(_ text: String) -> String {
        var out = ""
        JSONValue.quote(text, into: &out)
        return out
    }

    func testStringEscaping() {
        XCTAssertEqual(quoted("plain"), #""plain""#)
        XCTAssertEqual(quoted(#"say "hi""#), #""say \"hi\"""#)
        XCTAssertEqual(quoted(#"C:\path"#), #""C:\\path""#)
        XCTAssertEqual(quoted("a\nb\rc\td"), #""a\nb\rc\td""#)
        XCTAssertEqual(quoted("\u{08}\u{0C}"), #""\b\f""#)
        XCTAssertEqual(quoted("\u{00}\u{01}\u{1F}"), #""\u0000\u0001\u001f""#)
        XCTAssertEqual(quoted("\u{7F}"), "\"\u{7F}\"", "DEL needs no escape")
        XCTAssertEqual(quoted("line\u{2028}sep\u{2029}"), #""line\u2028sep\u2029""#)
        XCTAssertEqual(quoted("wéb 🚀"), "\"wéb 🚀\"", "non-ASCII is written as UTF-8")
        XCTAssertEqual(quoted("/"), #""/""#)
    }

    func testEscapedStringsParseBackWithAnIndependentParser() throws {
        // Foundation's parser as the oracle (tests may use Foundation; the module may not).
        var samples = ["\"", "\\", "\n\u{0}\u{1F}\u{7F}", "é\u{2028}\u{2029}🚀", "a\"b\\c", "\r\t\u{08}\u{0C}"]
        samples.append(String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self))
        let line = JSONValue.array(samples.map { .string($0) }).rendered
        let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String]
        XCTAssertEqual(parsed, samples)
    }

    func testNumbers() {
        XCTAssertEqual(JSONValue.double(3).rendered, "3")
        XCTAssertEqual(JSONValue.double(-2).rendered, "-2")
        XCTAssertEqual(JSONValue.double(62.5).rendered, "62.5")
        XCTAssertEqual(JSONValue.double(.infinity).rendered, "null")
        XCTAssertEqual(JSONValue.double(.nan).rendered, "null")
        XCTAssertEqual(JSONValue.uint(.max).rendered, "18446744073709551615")
        XCTAssertEqual(JSONValue.int(.min).rendered, "-9223372036854775808")
    }

    func testObjectsKeepTheirKeyOrder() {
        let value = JSONValue.object([("z", .int(1)), ("a", .array([.null, .bool(true), .bool(false)])), ("m", .object([]))])
        XCTAssertEqual(value.rendered, #"{"z":1,"a":[null,true,false],"m":{}}"#)
        XCTAssertEqual(JSONValue.object([("k\"ey", .string("v"))]).rendered, #"{"k\"ey":"v"}"#)
    }

    func testLabelsAreSorted() {
        XCTAssertEqual(JSONValue.labels(["b": "2", "a": "1", "c\n": "3"]).rendered, #"{"a":"1","b":"2","c\n":"3"}"#)
    }

    func testRFC3339() {
        XCTAssertEqual(Timestamp(nanoseconds: 0).rfc3339, "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.seconds(951_782_400).rfc3339, "2000-02-29T00:00:00.000Z")
        XCTAssertEqual(Timestamp.seconds(1_709_164_800).rfc3339, "2024-02-29T00:00:00.000Z")
        XCTAssertEqual(Timestamp.seconds(4_102_444_800).rfc3339, "2100-01-01T00:00:00.000Z")
        XCTAssertEqual(at(0).rfc3339, "2026-11-29T10:00:00.000Z")
        XCTAssertEqual(Timestamp(nanoseconds: t0 * 1_000_000_000 + 86_399_999_999_999).rfc3339,
                       "2026-11-30T09:59:59.999Z", "milliseconds are truncated, not rounded up")
        XCTAssertEqual(Timestamp.seconds(1_798_761_599).rfc3339, "2026-12-31T23:59:59.000Z")
    }

    func testTimestampArithmeticSaturates() {
        XCTAssertEqual(Timestamp(nanoseconds: 5) - .seconds(1), Timestamp(nanoseconds: 0))
        XCTAssertEqual(Timestamp(nanoseconds: .max - 1) + .seconds(1), Timestamp(nanoseconds: .max))
        XCTAssertEqual(at(14.999).alignedDown(to: .seconds(15)), at(0))
        XCTAssertEqual(at(15).alignedDown(to: .seconds(15)), at(15), "a boundary starts the next period")
    }

    func testFlowRecordLine() throws {
        let record = FlowRecord(
            start: at(0), end: at(15),
            key: FlowKey(source: .workload(web), destination: .workload(db), proto: .tcp, destinationPort: 5432),
            action: .allow,
            decisions: [PolicyDecision(reporter: .destination, decider: .policy(id: "data/allow-web", rule: 2))],
            forward: PacketCounters(packets: 10, bytes: 1200), reverse: PacketCounters(packets: 8, bytes: 9000),
            connectionsStarted: 3, connectionsCompleted: 2)
        XCTAssertEqual(record.jsonLine, """
            {"start":"2026-11-29T10:00:00.000Z","end":"2026-11-29T10:00:15.000Z",\
            "source":{"type":"workload","namespace":"shop","name":"web-1","labels":{"app":"web"}},\
            "destination":{"type":"workload","namespace":"data","name":"postgres-0","labels":{"app":"db","tier":"data"}},\
            "proto":"tcp","dport":5432,"action":"allow",\
            "policies":[{"reporter":"dst","decider":"policy","policy":"data/allow-web","rule":2}],\
            "forward":{"packets":10,"bytes":1200},"reverse":{"packets":8,"bytes":9000},\
            "connectionsStarted":3,"connectionsCompleted":2}
            """)
        XCTAssertFalse(record.jsonLine.contains("\n"))
        let object = try JSONSerialization.jsonObject(with: Data(record.jsonLine.utf8)) as? [String: Any]
        XCTAssertEqual(object?["dport"] as? Int, 5432)
    }

    func testDeniedICMPRecordFromOutside() {
        let record = FlowRecord(
            start: at(0), end: at(15),
            key: FlowKey(source: .network(ip("2001:db8::9")), destination: .workload(Workload(namespace: "a\"b", name: "x")),
                         proto: .icmpv6, destinationPort: nil),
            action: .deny,
            decisions: [PolicyDecision(reporter: .destination, decider: .defaultPolicy),
                        PolicyDecision(reporter: .source, decider: .quarantine)],
            forward: PacketCounters(packets: 1, bytes: 104))
        XCTAssertEqual(record.jsonLine, """
            {"start":"2026-11-29T10:00:00.000Z","end":"2026-11-29T10:00:15.000Z",\
            "source":{"type":"network","address":"2001:db8::9"},\
            "destination":{"type":"workload","namespace":"a\\"b","name":"x","labels":{}},\
            "proto":"icmpv6","dport":null,"action":"deny",\
            "policies":[{"reporter":"dst","decider":"default"},{"reporter":"src","decider":"quarantine"}],\
            "forward":{"packets":1,"bytes":104},"reverse":{"packets":0,"bytes":0},\
            "connectionsStarted":0,"connectionsCompleted":0}
            """)
    }

    func testAlertLine() {
        let alert = Alert(time: at(1.5), detector: .portScan, severity: .high, endpoint: .workload(scanner),
                          summary: "30 distinct destination ports in 10 s (threshold 25)",
                          evidence: Evidence(counts: [.init("distinctPorts", 30), .init("windowSeconds", 10), .init("rate", 2.5)],
                                             flows: [FlowSample(time: at(1), destination: host(7), proto: .udp,
                                                                destinationPort: 53, action: .deny)]))
        XCTAssertEqual(alert.jsonLine, """
            {"time":"2026-11-29T10:00:01.500Z","detector":"portScan","severity":"high",\
            "endpoint":{"type":"workload","namespace":"lab","name":"scanner","labels":{"app":"scanner"}},\
            "summary":"30 distinct destination ports in 10 s (threshold 25)",\
            "evidence":{"counts":{"distinctPorts":30,"windowSeconds":10,"rate":2.5},\
            "flows":[{"time":"2026-11-29T10:00:01.000Z","destination":{"type":"network","address":"203.0.113.7"},\
            "proto":"udp","dport":53,"action":"deny"}]}}
            """)
    }

    func testSeverityOrderAndNames() {
        XCTAssertEqual(Severity.allCases.sorted(), [.info, .low, .medium, .high, .critical])
        XCTAssertLessThan(Severity.medium, Severity.high)
        XCTAssertFalse(Severity.critical < Severity.info)
        XCTAssertEqual(Severity.allCases.map(\.name), ["info", "low", "medium", "high", "critical"])
        XCTAssertEqual(Severity(name: "medium"), .medium)
        XCTAssertNil(Severity(name: "Medium"))
    }
}
