import XCTest
@testable import PolicyModel

/// `decodeCollectingErrors`: every bad document of a file is reported, and the good ones still load.
final class CollectingErrorsTests: XCTestCase {
    private let path = "state/test.yaml"
    private func at(_ line: Int) -> SourceLocation { SourceLocation(file: path, line: line) }

    func testFirstAndThirdDocumentsBadSecondDecoded() {
        let text = """
            apiVersion: v1
            kind: Namespace
            metadata:
              name: Shop
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: edge}
            ---
            apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: {name: deny-all}
            spec:
              ingress:
              - action: Reject
            """
        let result = DocumentDecoder.decodeCollectingErrors(text, path: path)
        XCTAssertEqual(result.objects, [.namespace(Namespace(name: "edge", location: at(6)))])
        XCTAssertEqual(result.errors.map(\.description), [
            "state/test.yaml:4: metadata.name \"Shop\" is not a valid name: must consist of lowercase letters, digits "
                + "and '-', and start and end with a letter or digit",
            "state/test.yaml:15: spec.ingress[0].action \"Reject\" is not one of Allow, Deny, Log, Pass",
        ])
        // `decode` still throws the first of them.
        assertRejected(text, result.errors[0].description)
    }

    func testEachBadListItemIsReported() {
        let result = DocumentDecoder.decodeCollectingErrors("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Namespace
            - apiVersion: v1
              kind: Namespace
              metadata: {name: shop}
            - 42
            """, path: path)
        XCTAssertEqual(result.objects, [.namespace(Namespace(name: "shop", location: at(6)))])
        XCTAssertEqual(result.errors.map(\.description), [
            "state/test.yaml:4: metadata.name is required",
            "state/test.yaml:9: items[2] must be a mapping with apiVersion and kind, not \"42\"",
        ])
    }

    func testSyntaxErrorEndsTheFileButKeepsWhatCameBefore() {
        let result = DocumentDecoder.decodeCollectingErrors("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: -bad}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: edge}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: [unclosed}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: never-read}
            """, path: path)
        XCTAssertEqual(result.objects, [.namespace(Namespace(name: "edge", location: at(5)))])
        XCTAssertEqual(result.errors.map(\.location.line), [3, 11])
        XCTAssertTrue(result.errors[1].message.hasPrefix("invalid YAML: "), result.errors[1].message)
    }

    func testGoodFileHasNoErrors() {
        let result = DocumentDecoder.decodeCollectingErrors("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: shop}
            ---
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: {name: web, namespace: shop}
            spec: {}
            """, path: path)
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(result.objects.map(\.kind), ["Namespace", "NetworkPolicy"])
    }

    func testUnsupportedAPIVersionIsReportedAndTheRestStillLoads() {
        let result = DocumentDecoder.decodeCollectingErrors("""
            apiVersion: networking.k8s.io/v1beta1
            kind: NetworkPolicy
            metadata: {name: web, namespace: shop}
            spec: {podSelector: {}}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: edge}
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: db, namespace: shop}
            spec:
              podSelector: {matchLabels: {app: db}}
              ingress:
              - form: [{podSelector: {}}]
            """, path: path)
        XCTAssertEqual(result.objects, [.namespace(Namespace(name: "edge", location: at(6)))])
        XCTAssertEqual(result.errors.map(\.description), [
            "state/test.yaml:1: apiVersion \"networking.k8s.io/v1beta1\" of NetworkPolicy is not supported: "
                + "use networking.k8s.io/v1",
            "state/test.yaml:16: spec.ingress[0].form is not a field of a NetworkPolicy ingress rule (valid: from, ports)",
        ])
    }
}
