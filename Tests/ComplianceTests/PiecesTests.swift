@testable import Compliance
import Foundation
import XCTest

final class PiecesTests: XCTestCase {
    override class func tearDown() { Scenario.removeScratch() }

    func testTimesReadAndWrite() {
        XCTAssertEqual(ReportTime.parse("2026-11-29T12:00:00.123Z").map(ReportTime.format), "2026-11-29T12:00:00.123Z")
        XCTAssertEqual(ReportTime.parse("2026-11-29").map(ReportTime.format), "2026-11-29T00:00:00.000Z")
        XCTAssertEqual(ReportTime.parse("2026-11-29T13:30:00+01:30").map(ReportTime.format), "2026-11-29T12:00:00.000Z")
        XCTAssertEqual(ReportTime.parse("1969-12-31T23:59:59.5Z").map(ReportTime.format), "1969-12-31T23:59:59.500Z")
        XCTAssertEqual(ReportTime.parse("2024-02-29T00:00:00Z").map(ReportTime.day), "2024-02-29")
        XCTAssertNil(ReportTime.parse("2026-13-01"))
        XCTAssertNil(ReportTime.parse("yesterday"))
    }

    func testPeriodDays() throws {
        let period = Period(from: try XCTUnwrap(ReportTime.parse("2026-11-01T12:00:00Z")), to: try XCTUnwrap(ReportTime.parse("2026-11-03T06:00:00Z")))
        XCTAssertEqual(period.days.map { ReportTime.format($0.from) + " " + ReportTime.format($0.to) }, [
            "2026-11-01T12:00:00.000Z 2026-11-02T00:00:00.000Z",
            "2026-11-02T00:00:00.000Z 2026-11-03T00:00:00.000Z",
            "2026-11-03T00:00:00.000Z 2026-11-03T06:00:00.000Z",
        ])
    }

    func testCoverageNeedsProtectionWithoutAGap() throws {
        func time(_ hour: Int) -> Date { Date(timeIntervalSince1970: Double(hour) * 3600) }
        typealias Span = InventoryEndpoint.ProtectionSpan
        let window = Period(from: time(10), to: time(20))
        XCTAssertTrue(Coverage.isCovered(window, by: [Span(from: time(0), to: nil, protected: true)]))
        XCTAssertTrue(Coverage.isCovered(window, by: [Span(from: time(12), to: nil, protected: true), Span(from: time(9), to: time(12), protected: true)]))
        XCTAssertFalse(Coverage.isCovered(window, by: [Span(from: time(9), to: time(12), protected: true), Span(from: time(13), to: nil, protected: true)]),
                       "a gap from 12 to 13")
        XCTAssertFalse(Coverage.isCovered(window, by: [Span(from: time(11), to: nil, protected: true)]), "unprotected from 10 to 11")
        XCTAssertFalse(Coverage.isCovered(window, by: [Span(from: time(0), to: nil, protected: false)]))
        XCTAssertFalse(Coverage.isCovered(window, by: []))
    }

    func testCSVQuotesPerRFC4180() {
        XCTAssertEqual(CSVText.field("plain"), "plain")
        XCTAssertEqual(CSVText.field("a,b"), "\"a,b\"")
        XCTAssertEqual(CSVText.field("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(CSVText.field("two\nlines"), "\"two\nlines\"")
    }

    func testChainDetectsDeletionAndReordering() throws {
        let lines = Scenario().eventLines.map { Data(($0 + "\n").utf8) }
        func verify(_ lines: [Data]) -> AuditChainVerification {
            AuditChainVerification.verify([(name: "events.jsonl", data: lines.reduce(Data(), +))])
        }
        XCTAssertTrue(verify(lines).isIntact)
        var deleted = lines
        deleted.remove(at: 4)
        XCTAssertEqual(verify(deleted).breaks.first?.line, 5)
        XCTAssertEqual(verify(deleted).breaks.first?.seq, 6)
        var reordered = lines
        reordered.swapAt(6, 7)
        XCTAssertEqual(verify(reordered).breaks.first?.line, 7)
        let truncated = verify(lines.dropLast().map { $0 } + [lines[lines.count - 1].dropLast()])
        XCTAssertEqual(truncated.breaks.map(\.line), [12], "the last record lost its newline")
    }
}
