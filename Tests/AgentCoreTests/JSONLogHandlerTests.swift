@testable import AgentCore
import Foundation
import Logging
import XCTest

final class JSONLogHandlerTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var collected: [String] = []
        var all: [String] { lock.lock(); defer { lock.unlock() }; return collected }
        func append(_ line: String) { lock.lock(); collected.append(line); lock.unlock() }
    }

    func makeLogger(_ lines: Lines, level: SharedLogLevel = SharedLogLevel(.info)) -> Logger {
        let output = LogOutput { lines.append($0) }
        let time = Date(timeIntervalSince1970: 1_772_366_400.123)  // 2026-03-01T12:00:00.123Z
        return Logger(label: "palisade.agentd") { JSONLogHandler(label: $0, level: level, output: output, now: { time }) }
    }

    func testOneObjectPerLineWithTimeLevelLabelMessageAndMetadata() throws {
        let lines = Lines()
        var logger = makeLogger(lines)
        logger[metadataKey: "node"] = "n1"
        logger.info("reconcile.applied", metadata: ["generation": "3", "chains": .stringConvertible(12)])
        XCTAssertEqual(lines.all, [
            #"{"time":"2026-03-01T12:00:00.123Z","level":"info","label":"palisade.agentd","message":"reconcile.applied","metadata":{"chains":"12","generation":"3","node":"n1"}}"# + "\n",
        ])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["time", "level", "label", "message", "metadata"])
    }

    func testEscapesAndNestedMetadataStayValidJSON() throws {
        let lines = Lines()
        let logger = makeLogger(lines)
        logger.warning("state.file.rejected", metadata: [
            "error": "pods.yaml:3: \"name\" is\tmissing\nsecond line \u{1}",
            "files": ["a.yaml", "b \\ c"],
            "where": ["line": "3", "path": "/etc/palisade/state/pods.yaml"],
        ])
        logger.error("no.metadata")
        XCTAssertEqual(lines.all.count, 2)
        for line in lines.all {
            XCTAssertTrue(line.hasSuffix("}\n"))
            XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "one line per message: \(line)")
        }
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        let metadata = try XCTUnwrap(first["metadata"] as? [String: Any])
        XCTAssertEqual(metadata["error"] as? String, "pods.yaml:3: \"name\" is\tmissing\nsecond line \u{1}")
        XCTAssertEqual(metadata["files"] as? [String], ["a.yaml", "b \\ c"])
        XCTAssertEqual((metadata["where"] as? [String: String])?["path"], "/etc/palisade/state/pods.yaml")
        XCTAssertEqual(first["level"] as? String, "warning")
        XCTAssertTrue(lines.all[1].hasSuffix(#""message":"no.metadata","metadata":{}}"# + "\n"))
    }

    func testTheSharedLevelChangesEveryLoggerWhileItRuns() {
        let lines = Lines()
        let level = SharedLogLevel(.info)
        let logger = makeLogger(lines, level: level)
        logger.debug("hidden")
        level.value = .debug
        logger.debug("shown")
        var quiet = logger
        quiet.logLevel = .error
        quiet.warning("hidden too")
        logger.warning("shown too")
        XCTAssertEqual(lines.all.map { $0.contains("\"shown") }, [true, true])
    }

    func testTheFormatPicksTheHandler() {
        let level = SharedLogLevel(.notice)
        XCTAssertTrue(AgentConfig.LogFormat.json.handlerFactory(level: level)("x") is JSONLogHandler)
        XCTAssertTrue(AgentConfig.LogFormat.text.handlerFactory(level: level)("x") is TextLogHandler)
        XCTAssertEqual(AgentConfig.LogFormat.text.handlerFactory(level: level)("x").logLevel, .notice)
    }
}
