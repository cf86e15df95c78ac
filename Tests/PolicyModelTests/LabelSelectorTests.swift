import XCTest
@testable import PolicyModel

final class LabelSelectorTests: XCTestCase {
    private let web = ["app": "web", "tier": "frontend"]
    private let db = ["app": "db"]
    private let none: [String: String] = [:]

    func testEmptySelectorMatchesEverything() {
        XCTAssertTrue(LabelSelector.everything.matches(web))
        XCTAssertTrue(LabelSelector.everything.matches(none))
    }

    func testMatchLabels() {
        let selector = LabelSelector(matchLabels: ["app": "web"])
        XCTAssertTrue(selector.matches(web))
        XCTAssertFalse(selector.matches(db))
        XCTAssertFalse(selector.matches(none))
    }

    func testIn() {
        let selector = LabelSelector(matchExpressions: [.init(key: "app", op: .in, values: ["web", "api"])])
        XCTAssertTrue(selector.matches(web))
        XCTAssertFalse(selector.matches(db))
        XCTAssertFalse(selector.matches(none), "In needs the key")
    }

    func testNotIn() {
        let selector = LabelSelector(matchExpressions: [.init(key: "app", op: .notIn, values: ["web"])])
        XCTAssertFalse(selector.matches(web))
        XCTAssertTrue(selector.matches(db))
        XCTAssertTrue(selector.matches(none), "NotIn matches objects without the key")
    }

    func testExists() {
        let selector = LabelSelector(matchExpressions: [.init(key: "tier", op: .exists)])
        XCTAssertTrue(selector.matches(web))
        XCTAssertFalse(selector.matches(db))
    }

    func testDoesNotExist() {
        let selector = LabelSelector(matchExpressions: [.init(key: "tier", op: .doesNotExist)])
        XCTAssertFalse(selector.matches(web))
        XCTAssertTrue(selector.matches(db))
        XCTAssertTrue(selector.matches(none))
    }

    func testLabelsAndExpressionsAreANDed() {
        let selector = LabelSelector(matchLabels: ["app": "web"],
                                     matchExpressions: [.init(key: "tier", op: .in, values: ["backend"])])
        XCTAssertFalse(selector.matches(web))
        XCTAssertTrue(selector.matches(["app": "web", "tier": "backend"]))
    }

    func testDecodedSelectorMatches() throws {
        let policy = try singlePolicy("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: p}
            spec:
              podSelector:
                matchLabels: {app: web}
                matchExpressions:
                - {key: tier, operator: NotIn, values: [backend]}
                - {key: example.com/canary, operator: DoesNotExist}
            """)
        XCTAssertTrue(policy.podSelector.matches(web))
        XCTAssertFalse(policy.podSelector.matches(["app": "web", "tier": "backend"]))
        XCTAssertFalse(policy.podSelector.matches(["app": "web", "example.com/canary": ""]))
        XCTAssertEqual(policy.namespace, "default")
    }

    func testCanonicalTextIsOrderIndependent() {
        let a = LabelSelector(matchLabels: ["b": "2", "a": "1"],
                              matchExpressions: [.init(key: "x", op: .in, values: ["q", "p"]), .init(key: "y", op: .exists)])
        let b = LabelSelector(matchLabels: ["a": "1", "b": "2"],
                              matchExpressions: [.init(key: "y", op: .exists), .init(key: "x", op: .in, values: ["p", "q"])])
        XCTAssertEqual(a.canonicalText, b.canonicalText)
        XCTAssertEqual(a.canonicalText, "{a=1;b=2;x In (p,q);y Exists ()}")
    }
}
