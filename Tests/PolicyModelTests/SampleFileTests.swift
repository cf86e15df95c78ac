import Foundation
import XCTest
@testable import PolicyModel

/// The shape of real `kubectl get -o yaml` output loads as it is.
final class SampleFileTests: XCTestCase {
    private let path = "state/kubectl-get-all.yaml"

    private func sampleObjects() throws -> [StateObject] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/kubectl-get-all.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try DocumentDecoder.decode(text, path: path)
    }

    func testLoadsEveryObjectOfTheSample() throws {
        let objects = try sampleObjects()
        XCTAssertEqual(objects.map(\.kind), ["Namespace", "Pod", "Pod", "Pod", "Pod", "NetworkPolicy"])
    }

    func testNamespace() throws {
        let namespaces = try sampleObjects().compactMap(\.namespaceValue)
        XCTAssertEqual(namespaces, [
            Namespace(name: "shop", labels: ["kubernetes.io/metadata.name": "shop", "team": "storefront"],
                      defaultPolicy: nil, location: SourceLocation(file: path, line: 11)),
        ])
    }

    func testRunningPodIsAnEndpointWithBothAddressesAndNamedPorts() throws {
        let endpoints = try sampleObjects().compactMap(\.endpointValue)
        var expected = Endpoint(kind: .pod, namespace: "shop", name: "web-7d9f8b6c5d-x2k9p",
                                labels: ["app": "web", "pod-template-hash": "7d9f8b6c5d", "tier": "frontend"],
                                addresses: [ip("198.18.3.17"), ip("2001:db8:3::11")], interface: nil, nodeName: "node-3",
                                namedPorts: [NamedPort(name: "http", port: 8080, proto: .tcp),
                                             NamedPort(name: "metrics", port: 9090, proto: .tcp)],
                                location: SourceLocation(file: path, line: 26))
        expected.uid = "7c0e5f7a-1d2b-4c3d-8e9f-0a1b2c3d4e5f"
        XCTAssertEqual(endpoints, [expected])
    }

    func testPodsThatAreNotEndpointsAreSkippedWithTheirReason() throws {
        let skipped = try sampleObjects().compactMap(\.skippedValue)
        XCTAssertEqual(skipped, [
            SkippedPod(namespace: "shop", name: "node-exporter-4hq7t", reason: .hostNetwork,
                       location: SourceLocation(file: path, line: 96)),
            SkippedPod(namespace: "shop", name: "web-7d9f8b6c5d-pending", reason: .noAddress,
                       location: SourceLocation(file: path, line: 119)),
            SkippedPod(namespace: "shop", name: "db-backup-29311420-8xk2m", reason: .finished,
                       location: SourceLocation(file: path, line: 140)),
        ])
    }

    func testPolicy() throws {
        let policies = try sampleObjects().compactMap(\.policyValue)
        let expected = NetworkPolicy(
            namespace: "shop", name: "web-ingress",
            podSelector: LabelSelector(matchLabels: ["app": "web"]),
            policyTypes: [.ingress],
            ingress: [PolicyRule(
                peers: [
                    .selector(pods: LabelSelector(matchLabels: ["app": "ingress-gateway"]),
                              namespaces: LabelSelector(matchLabels: ["kubernetes.io/metadata.name": "edge"])),
                    .ipBlock(cidr: cidr("198.51.100.0/24"), except: [cidr("198.51.100.128/25")]),
                ],
                ports: [
                    PolicyPort(proto: .tcp, port: .named("http")),
                    PolicyPort(proto: .tcp, port: .number(9000), endPort: 9010),
                ])],
            egress: [],
            location: SourceLocation(file: path, line: 158))
        XCTAssertEqual(policies, [expected])
    }

    func testMergesIntoADesiredState() throws {
        let state = DesiredState(objects: try sampleObjects())
        XCTAssertEqual(state.namespaces.keys.sorted(), ["shop"])
        XCTAssertEqual(state.endpoints.map(\.id), ["shop/web-7d9f8b6c5d-x2k9p"])
        XCTAssertEqual(state.skippedPods.count, 3)
        XCTAssertEqual(state.policies.map(\.id), ["shop/web-ingress"])
    }
}

extension SampleFileTests {
    /// The sample has fields Palisade does not read in its metadata, status and pod specs, and a
    /// NetworkPolicy with every strict object (rules, peers, ipBlock, ports, selectors): none is an error.
    func testSampleHasNoErrorsWhenCollecting() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/kubectl-get-all.yaml")
        let result = DocumentDecoder.decodeCollectingErrors(try String(contentsOf: url, encoding: .utf8),
                                                            path: "state/kubectl-get-all.yaml")
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(result.objects.count, 6)
    }
}
