import NftablesModel
import PolicyCompiler
import PolicyModel
import XCTest

final class QuarantineCompilerTests: XCTestCase {
    typealias C = CompilerTests

    func testQuarantinedEndpointIsDispatchedToTheQuarantineChains() throws {
        var scanner = C.gateway
        scanner.labels["role"] = "forensics"
        let state = DesiredState(endpoints: [C.web, C.db, scanner],
                                 quarantines: [Quarantine(namespace: "shop", name: "web", reason: "C2 beaconing")])
        var options = CompilerOptions()
        options.quarantineExemption = .equals("role", "forensics")
        let compiled = PolicyCompiler.compile(state, options: options)
        let web = try XCTUnwrap(compiled.endpoints.first { $0.endpoint.name == "web" })
        XCTAssertEqual(web.ingressChain, "quarantine-ingress")
        XCTAssertEqual(web.egressChain, "quarantine-egress")
        XCTAssertEqual(web.quarantine?.reason, "C2 beaconing")
        XCTAssertNil(compiled.endpoints.first { $0.endpoint.name == "db" }?.quarantine)

        let ingress = try XCTUnwrap(compiled.table.chains["quarantine-ingress"]).rules.map(RulesetText.render)
        XCTAssertEqual(ingress.count, 3)
        XCTAssertTrue(ingress[0].hasPrefix("ip saddr @sel.") && ingress[0].hasSuffix("accept comment \"quarantine exemption\""), ingress[0])
        XCTAssertEqual(ingress[2], "log prefix \"palisade deny in quarantine \" group 1 counter drop comment \"quarantined\"")
        let egress = try XCTUnwrap(compiled.table.chains["quarantine-egress"]).rules.map(RulesetText.render)
        XCTAssertTrue(egress[0].hasPrefix("ct state established,related ip daddr @sel."), "the pod may only answer the scanner: \(egress[0])")
        // No established-state shortcut ahead of the quarantine: its chains start with the exemption or the drop.
        XCTAssertFalse(ingress.contains { $0.hasPrefix("ct state established,related accept") })

        let plain = PolicyCompiler.compile(state)
        XCTAssertEqual(plain.table.chains["quarantine-egress"]?.rules.count, 1, "without an exemption: log and drop only")
    }

    func testAQuarantineOfAPodThatIsNotHereChangesNothing() {
        let state = DesiredState(endpoints: [C.web], quarantines: [Quarantine(namespace: "shop", name: "gone", reason: "r")])
        let compiled = PolicyCompiler.compile(state)
        XCTAssertNil(compiled.table.chains["quarantine-ingress"])
        XCTAssertEqual(compiled.endpoints.first?.ingressChain, "allow-ingress")
    }
}
