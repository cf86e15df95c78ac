import XCTest
@testable import PolicyModel

/// Decodes `text` as if it were the file `path`.
func decode(_ text: String, path: String = "state/test.yaml") throws -> [StateObject] {
    try DocumentDecoder.decode(text, path: path)
}

/// Asserts that decoding fails with exactly `expected` (`path:line: message`).
func assertRejected(_ text: String, _ expected: String, path: String = "state/test.yaml",
                    file: StaticString = #filePath, line: UInt = #line) {
    do {
        let objects = try DocumentDecoder.decode(text, path: path)
        XCTFail("expected \(expected), decoded \(objects)", file: file, line: line)
    } catch let error as DocumentError {
        XCTAssertEqual(error.description, expected, file: file, line: line)
    } catch {
        XCTFail("expected a DocumentError, got \(error)", file: file, line: line)
    }
}

extension StateObject {
    var namespaceValue: Namespace? { if case .namespace(let value) = self { return value }; return nil }
    var endpointValue: Endpoint? { if case .endpoint(let value) = self { return value }; return nil }
    var skippedValue: SkippedPod? { if case .skippedPod(let value) = self { return value }; return nil }
    var policyValue: NetworkPolicy? { if case .networkPolicy(let value) = self { return value }; return nil }
}

/// The one policy a text decodes to.
func singlePolicy(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> NetworkPolicy {
    let objects = try decode(text)
    let policies = objects.compactMap(\.policyValue)
    XCTAssertEqual(objects.count, 1, file: file, line: line)
    return try XCTUnwrap(policies.first, file: file, line: line)
}

func ip(_ text: String) -> IPAddress { IPAddress(text)! }
func cidr(_ text: String) -> CIDR { CIDR(text)! }
