@testable import AgentCore
import Foundation
import XCTest

final class EventLogTests: XCTestCase {
    var directory: String!
    var path: String { directory + "/data/events.jsonl" }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "palisade-events-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    let alice = Actor(uid: 1001, user: "alice", pid: 4242)

    /// 2025-03-01T12:00:00.123Z, then one second more per call.
    final class Clock: @unchecked Sendable {
        var next = Date(timeIntervalSince1970: 1_740_830_400.123)
        func now() -> Date {
            defer { next += 1 }
            return next
        }
    }

    func makeLog(_ clock: Clock = Clock()) throws -> EventLog {
        try EventLog(path: path, now: { clock.now() })
    }

    func quarantine(_ target: String = "shop/web-1") -> Event {
        Event(type: .quarantine, actor: alice, target: target, reason: "beaconing to known C2", outcome: .applied,
              command: "quarantine", generation: 7)
    }

    func lines() throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
    }

    func write(_ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    func testAppendWritesOneChainedLinePerEvent() throws {
        let log = try makeLog()
        let first = try log.append(quarantine())
        let second = try log.append(Event(type: .refused, actor: Actor(uid: 1002, user: "bob", pid: 77), target: "shop/web-1",
                                          outcome: .refused, error: "permission denied: user bob (uid 1002) may not release (grants: none)",
                                          command: "release"))
        let text = try lines()
        XCTAssertEqual(text.count, 2)
        XCTAssertEqual(text[0], #"{"actor":{"pid":4242,"uid":1001,"user":"alice"},"command":"quarantine","generation":7,"#
                       + #""outcome":"applied","prev":"0000000000000000000000000000000000000000000000000000000000000000","#
                       + #""reason":"beaconing to known C2","seq":1,"target":"shop/web-1","time":"2025-03-01T12:00:00.123Z","type":"quarantine"}"#)
        XCTAssertEqual(first.seq, 1)
        XCTAssertEqual(first.prev, EventLog.genesisHash)
        XCTAssertEqual(second.seq, 2)
        XCTAssertEqual(second.prev, SHA256.hex(Array(text[0].utf8)))
        XCTAssertEqual(try EventLog.read(path: path), [first, second])
        XCTAssertEqual(EventTime.format(second.time), "2025-03-01T12:00:01.123Z")
        XCTAssertEqual(log.last, EventLog.Anchor(seq: 2, hash: SHA256.hex(Array(text[1].utf8))))
    }

    func testTheFileAndItsDirectoryAreCreatedPrivate() throws {
        _ = try makeLog()
        var status = stat()
        XCTAssertEqual(stat(path, &status), 0)
        XCTAssertEqual(status.st_mode & 0o777, 0o640)
        XCTAssertEqual(stat(directory + "/data", &status), 0)
        XCTAssertEqual(status.st_mode & 0o777, 0o750)
        XCTAssertEqual(EventLog.verify(path: path), EventLog.Verification(records: 0, issues: [], last: .genesis))
    }

    func testSeqContinuesAfterReopen() throws {
        var log: EventLog? = try makeLog()
        try log?.append(quarantine())
        try log?.append(quarantine("shop/db"))
        log = nil
        let reopened = try makeLog()
        let third = try reopened.append(Event(type: .release, actor: alice, target: "shop/web-1", outcome: .applied))
        XCTAssertEqual(third.seq, 3)
        XCTAssertEqual(third.prev, SHA256.hex(Array(try lines()[1].utf8)))
        let result = EventLog.verify(path: path)
        XCTAssertTrue(result.isIntact, "\(result.issues)")
        XCTAssertEqual(result.records, 3)
    }

    func testASecondWriterIsRefused() throws {
        let log = try makeLog()
        XCTAssertThrowsError(try makeLog()) { error in
            XCTAssertEqual("\(error)", "\(path): another writer holds the event record (is a second agent using this data directory?)")
        }
        log.close()
        XCTAssertNoThrow(try makeLog())
    }

    func testConcurrentAppendsKeepTheChain() throws {
        let log = try EventLog(path: path)
        DispatchQueue.concurrentPerform(iterations: 64) { index in
            _ = try? log.append(quarantine("shop/web-\(index)"))
        }
        let result = EventLog.verify(path: path)
        XCTAssertTrue(result.isIntact, "\(result.issues)")
        XCTAssertEqual(result.records, 64)
        XCTAssertEqual(Set(try EventLog.read(path: path).map(\.seq)), Set(1...64))
    }

    func writeFive() throws -> [String] {
        let log = try makeLog()
        for index in 1...5 { try log.append(quarantine("shop/web-\(index)")) }
        log.close()
        XCTAssertTrue(EventLog.verify(path: path).isIntact)
        return try lines()
    }

    func testEditingOneLineBreaksTheChainAtTheNextRecord() throws {
        var text = try writeFive()
        text[2] = text[2].replacingOccurrences(of: "\"user\":\"alice\"", with: "\"user\":\"mallory\"")
        try write(text)
        let result = EventLog.verify(path: path)
        XCTAssertEqual(result.issues.map(\.description), [
            "line 4 (seq 4): prev does not match the SHA-256 of line 3: the record before was changed, removed or reordered",
        ])
        XCTAssertEqual(result.records, 5)
    }

    func testEditingTheFirstLineIsDetectedToo() throws {
        var text = try writeFive()
        text[0] = text[0].replacingOccurrences(of: "beaconing", with: "routine")
        try write(text)
        XCTAssertEqual(EventLog.verify(path: path).issues.map(\.line), [2])
    }

    func testDeletingARecordIsDetected() throws {
        var text = try writeFive()
        text.remove(at: 1)
        try write(text)
        XCTAssertEqual(EventLog.verify(path: path).issues.map(\.description), [
            "line 2 (seq 3): seq 3 where 2 was expected: a record is missing, added or out of order",
            "line 2 (seq 3): prev does not match the SHA-256 of line 1: the record before was changed, removed or reordered",
        ])
    }

    func testReorderingIsDetected() throws {
        var text = try writeFive()
        text.swapAt(1, 2)
        try write(text)
        let issues = EventLog.verify(path: path).issues
        XCTAssertEqual(Set(issues.map(\.line)), [2, 3, 4])
    }

    func testAForgedRecordWithTheRightSeqButNoChainIsDetected() throws {
        var text = try writeFive()
        text[1] = text[1].replacingOccurrences(of: "\"prev\":\"", with: "\"prev\":\"f")
        try write(text)
        XCTAssertEqual(EventLog.verify(path: path).issues.first?.line, 2)
    }

    func testAFirstRecordMustStartTheChain() throws {
        var text = try writeFive()
        text.removeFirst()
        try write(text)
        XCTAssertEqual(EventLog.verify(path: path).issues.map(\.description), [
            "line 1 (seq 2): seq 2 where 1 was expected: a record is missing, added or out of order",
            "line 1 (seq 2): prev does not match the start of the chain (000000000000…): the record before was changed, removed or reordered",
        ])
    }

    func testAGarbageLineIsReportedAndReadFailsThere() throws {
        var text = try writeFive()
        text[3] = "not json"
        try write(text)
        XCTAssertEqual(EventLog.verify(path: path).issues.map(\.description), [
            "line 4: not an event record: not JSON",
            "line 5 (seq 5): prev does not match the SHA-256 of line 4: the record before was changed, removed or reordered",
        ])
        XCTAssertThrowsError(try EventLog.read(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path):4: not an event record: not JSON")
        }
    }

    func testACrashMidRecordIsClosedAndChainedOver() throws {
        let text = try writeFive()
        let torn = String(text[4].prefix(40))
        try (text[0..<4].joined(separator: "\n") + "\n" + torn).write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertEqual(EventLog.verify(path: path).issues.map(\.line), [5, 5], "incomplete and not a record")
        let log = try makeLog()
        let next = try log.append(quarantine("shop/web-6"))
        XCTAssertEqual(next.seq, 5, "continues after the last whole record")
        XCTAssertEqual(next.prev, SHA256.hex(Array(torn.utf8)))
        let result = EventLog.verify(path: path)
        XCTAssertEqual(result.issues.map(\.description), ["line 5: not an event record: not JSON"])
        XCTAssertEqual(result.records, 5)
    }

    func testVerifyingARotatedFileStartsAfterTheAnchorOfTheOneBefore() throws {
        _ = try writeFive()
        let anchor = EventLog.verify(path: path).last
        XCTAssertEqual(anchor.seq, 5)
        XCTAssertFalse(EventLog.verify(path: path, after: anchor).isIntact, "the file itself starts at the genesis")
    }

    func testAMissingFileIsAnIssue() {
        XCTAssertEqual(EventLog.verify(path: directory + "/none.jsonl").issues.map(\.message), ["cannot read \(directory!)/none.jsonl"])
    }

    func testTimestamps() {
        XCTAssertEqual(EventTime.format(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(EventTime.format(Date(timeIntervalSince1970: 1_740_830_400.1239)), "2025-03-01T12:00:00.123Z")
        XCTAssertEqual(EventTime.parse("2025-03-01T12:00:00.123Z"), Date(timeIntervalSince1970: 1_740_830_400.123))
        XCTAssertEqual(EventTime.parse("2025-03-01T12:00:00Z"), Date(timeIntervalSince1970: 1_740_830_400))
        XCTAssertEqual(EventTime.parse("2025-03-01T12:00:00.5Z"), Date(timeIntervalSince1970: 1_740_830_400.5))
        XCTAssertNil(EventTime.parse("2025-03-01 12:00:00Z"))
        XCTAssertNil(EventTime.parse("2025-03-01T12:00:00+01:00"))
        XCTAssertNil(EventTime.parse("2025-13-01T12:00:00Z"))
        for millis in stride(from: Int64(1_740_830_400_000), to: 1_740_830_401_000, by: 7) {
            let date = Date(timeIntervalSince1970: Double(millis) / 1000)
            XCTAssertEqual(EventTime.parse(EventTime.format(date)), date, "\(millis)")
        }
    }

    /// The inventory, status and quarantine times were ISO8601DateFormatter's: the text must not change.
    func testMillisecondTimesWriteWhatISO8601DateFormatterWrote() {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let whole = ISO8601DateFormatter()
        whole.formatOptions = [.withInternetDateTime]
        var millis: Int64 = 0
        while millis < 4_102_444_800_000 {   // 2100-01-01
            let date = Date(timeIntervalSince1970: Double(millis) / 1000)
            XCTAssertEqual(EventTime.format(milliseconds: millis), fractional.string(from: date), "\(millis)")
            XCTAssertEqual(EventTime.formatSeconds(date), whole.string(from: date), "\(millis)")
            XCTAssertEqual(EventTime.parseMilliseconds(EventTime.format(milliseconds: millis)), millis, "\(millis)")
            millis += 86_399_937   // a day less 63 ms: every time of day and millisecond comes round
        }
        XCTAssertEqual(EventTime.parseMilliseconds("2025-03-01T12:00:00.123Z"), 1_740_830_400_123)
        XCTAssertNil(EventTime.parseMilliseconds("2025-03-01T12:00:00+01:00"))
    }

    func testUnknownTypesAndFieldsOfLaterVersionsStillRead() throws {
        let log = try makeLog()
        try log.append(Event(type: EventType("policy.created"), actor: .agent, target: "shop/deny-all", outcome: .applied,
                             details: ["kind": "NetworkPolicy"]))
        log.close()
        var text = try lines()
        text[0] = text[0].replacingOccurrences(of: "{\"actor\"", with: "{\"future\":true,\"actor\"")
        try write(text)
        XCTAssertEqual(try EventLog.read(path: path).first?.type, .policyCreated)
        XCTAssertEqual(try EventLog.read(path: path).first?.actor, Actor(uid: 0, user: "agentd", pid: 0))
    }
}
