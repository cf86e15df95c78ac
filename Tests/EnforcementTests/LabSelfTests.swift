import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The lab, the probes and the nft oracle checked on their own, with no agent: a lab that
/// carried no traffic would make every "denied" assertion pass for nothing, and an oracle
/// that misread `nft -j` would make every kernel cross-check meaningless.
final class LabSelfTests: XCTestCase {
    private var work: URL!
    private var lab: Lab!

    private static let pods = [
        LabPod(name: "x", namespace: "n", labels: [:], ipv4: "198.18.3.1", ipv6: "2001:db8::3:1", interface: "plx"),
        LabPod(name: "y", namespace: "n", labels: [:], ipv4: "198.18.3.2", ipv6: "2001:db8::3:2", interface: "ply"),
        LabPod(name: "z", namespace: "n", labels: [:], ipv4: "198.18.4.1", ipv6: "2001:db8::4:1", interface: "plzed"),
    ]

    override func setUpWithError() throws {
        try super.setUpWithError()
        if getuid() != 0 {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw CommandError(description: "the lab tests need root, and CI=true: not skipping")
            }
            throw XCTSkip("the lab tests need root (network namespaces)")
        }
        work = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-lab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        lab = try Lab(pods: Self.pods, work: work)
    }

    override func tearDown() {
        lab?.tearDown()
        if let work { try? FileManager.default.removeItem(at: work) }
        super.tearDown()
    }

    private func flows(_ from: String, _ to: String, _ family: AddressFamily) -> [Flow] {
        [Flow(from: from, to: to, port: 8080, proto: .tcp, family: family),
         Flow(from: from, to: to, port: 5353, proto: .udp, family: family)]
    }

    func testLabCarriesV4AndV6TrafficBetweenEveryPairWithoutAnAgent() throws {
        var all: [Flow] = []
        for from in ["x", "y", "z"] {
            for to in ["x", "y", "z"] where to != from {
                all += flows(from, to, .v4) + flows(from, to, .v6)
            }
        }
        let outcome = lab.attempt(all)
        XCTAssertEqual(all.filter { outcome[$0] != true }, [], "flows that did not get through")
        XCTAssertNil(try lab.nftTable(), "a fresh node namespace has no palisade table")
        // A port nobody serves is refused, not silently lost: probes tell the two apart.
        XCTAssertFalse(lab.canConnect(from: "x", to: "y", port: 1, proto: .tcp))
    }

    func testHandWrittenRulesetBlocksAndTheOracleReadsIt() throws {
        let ruleset = """
            table inet palisade {
              map egress-dispatch { type ifname : verdict; elements = { "plx" : jump ep-x-egress, "ply" : jump ep-y-egress }; }
              map ingress-dispatch { type ifname : verdict; elements = { "plx" : jump ep-x-ingress, "ply" : jump ep-y-ingress }; }
              set sel.0001.v4 { type ipv4_addr; elements = { 198.18.3.1 }; }
              set sel.0001.v6 { type ipv6_addr; elements = { 2001:db8::3:1 }; }
              chain forward {
                type filter hook forward priority filter; policy accept;
                iifname vmap @egress-dispatch
                oifname vmap @ingress-dispatch
                iifname "pl*" iifname != { "plx", "ply" } drop
                oifname "pl*" oifname != { "plx", "ply" } drop
              }
              chain ep-x-egress { return; }
              chain ep-x-ingress { return; }
              chain ep-y-egress { return; }
              chain ep-y-ingress {
                ct state established,related return
                ip saddr @sel.0001.v4 tcp dport 8080 return
                ip6 saddr @sel.0001.v6 tcp dport 8080 return
                drop
              }
            }

            """
        let file = work.appendingPathComponent("hand.nft")
        try ruleset.write(to: file, atomically: true, encoding: .utf8)
        try Command.check(["ip", "netns", "exec", lab.nodeNamespace, "nft", "-f", file.path])

        let table = try XCTUnwrap(lab.nftTable())
        XCTAssertEqual(table.mapKeys("egress-dispatch"), ["plx", "ply"])
        XCTAssertEqual(table.maps["ingress-dispatch"]?["ply"], "jump ep-y-ingress")
        XCTAssertEqual(table.selectorSets(.v4).map(\.elements), [["198.18.3.1"]])
        XCTAssertEqual(table.selectorSets(.v6).map(\.elements), [["2001:db8::3:1"]])

        let tcpXY = Flow(from: "x", to: "y", port: 8080, proto: .tcp, family: .v4)
        let tcpXY6 = Flow(from: "x", to: "y", port: 8080, proto: .tcp, family: .v6)
        let denied = flows("x", "y", .v4).filter { $0.proto == .udp } + flows("z", "x", .v4)
            + flows("x", "z", .v6) + [Flow(from: "x", to: "y", port: 9090, proto: .tcp, family: .v4)]
        let outcome = lab.attempt([tcpXY, tcpXY6] + flows("y", "x", .v4) + denied)
        XCTAssertEqual(outcome[tcpXY], true)
        XCTAssertEqual(outcome[tcpXY6], true)
        XCTAssertEqual(flows("y", "x", .v4).filter { outcome[$0] != true }, [], "x's ingress is open")
        XCTAssertEqual(denied.filter { outcome[$0] != false }, [], "flows the ruleset drops got through")

        // The probe loop counts what gets through, and nothing where nothing does.
        let closed = try lab.startWatch(Flow(from: "x", to: "y", port: 5353, proto: .udp, family: .v4))
        let open = try lab.startWatch(tcpXY, interval: 0.02)
        usleep(500_000)
        let closedSummary = try closed.finish()
        let openSummary = try open.finish()
        XCTAssertEqual(closedSummary.breaches, 0)
        XCTAssertGreaterThan(closedSummary.attempts, 20)
        XCTAssertGreaterThan(openSummary.breaches, 5)
    }
}
