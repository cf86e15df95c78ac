import Foundation
import XCTest

extension XCTestCase {
    /// Compares text with Golden/NAME.nft; UPDATE_GOLDEN=1 rewrites the file instead (review the diff).
    func golden(_ name: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name).nft")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        XCTAssertEqual(text, expected, "golden \(name).nft differs; rerun with UPDATE_GOLDEN=1 after checking the change",
                       file: file, line: line)
    }
}
