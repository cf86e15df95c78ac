@testable import AgentCore
import Foundation
import XCTest

/// The flow and alert files: rotation, and reading them as `agentctl flows --follow` does.
final class JSONLinesLogTests: XCTestCase {
    func testRotationFollowingAndLimits() throws {
        let directory = NSTemporaryDirectory() + "palisade-jsonl-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/flows.jsonl"
        let log = JSONLinesLog(path: path, maximumBytes: 4096, keep: 2)
        for index in 0..<10 { try log.append("{\"n\":\(index)}") }

        // The newest lines, at most `limit`.
        var (lines, cursor) = JSONLinesLog.read(path: path, after: nil, limit: 3) { _ in true }
        XCTAssertEqual(lines, ["{\"n\":7}", "{\"n\":8}", "{\"n\":9}"])
        // Following: nothing new, then the oldest new lines first, `limit` at a time, none skipped.
        XCTAssertEqual(JSONLinesLog.read(path: path, after: cursor, limit: 3) { _ in true }.lines, [])
        for index in 10..<15 { try log.append("{\"n\":\(index)}") }
        (lines, cursor) = JSONLinesLog.read(path: path, after: cursor, limit: 3) { _ in true }
        XCTAssertEqual(lines, ["{\"n\":10}", "{\"n\":11}", "{\"n\":12}"])
        (lines, cursor) = JSONLinesLog.read(path: path, after: cursor, limit: 3) { _ in true }
        XCTAssertEqual(lines, ["{\"n\":13}", "{\"n\":14}"])
        // A line being written (no newline yet) waits for the next read.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        handle.write(Data("{\"n\":".utf8))
        try handle.close()
        let partial = JSONLinesLog.read(path: path, after: cursor, limit: 10) { _ in true }
        XCTAssertEqual(partial.lines, [])
        XCTAssertEqual(partial.cursor, cursor)

        // Rotation: at the size limit the file becomes .1 (and .1 becomes .2); reading without a
        // cursor reaches into the file before; a follower of the old file starts the new one.
        let big = String(repeating: "x", count: 1000)
        let rotating = JSONLinesLog(path: directory + "/alerts.jsonl", maximumBytes: 4096, keep: 2)
        for index in 0..<12 { try rotating.append("{\"n\":\(index),\"pad\":\"\(big)\"}") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/alerts.jsonl.1"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/alerts.jsonl.2"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/alerts.jsonl.3"), "keep: 2")
        let newest = JSONLinesLog.read(path: directory + "/alerts.jsonl", after: nil, limit: 5) { _ in true }.lines
        XCTAssertEqual(newest.count, 5)
        XCTAssertTrue(newest.last?.hasPrefix("{\"n\":11,") ?? false)
        // Filters.
        XCTAssertEqual(JSONLinesLog.read(path: path, after: nil, limit: 100) { $0.contains("\"n\":1") }.lines.count, 6)
    }
}
