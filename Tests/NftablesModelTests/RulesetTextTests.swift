import NetworkAddress
import NftablesModel
import XCTest

/// The text renderer reads expression lists the way nft prints them; the expected strings are
/// what `nft list` prints for the same rules.
final class RulesetTextTests: XCTestCase {
    func render(_ exprs: [Expr], comment: String? = nil) -> String { RulesetText.render(Rule(exprs, comment: comment)) }

    func testMatches() {
        XCTAssertEqual(render(Match.interfaceVmap(.input, map: "egress-dispatch")), "iifname vmap @egress-dispatch")
        XCTAssertEqual(render(Match.interfacePrefix(.output, "pl") + [.counter, .verdict(.drop)]), "oifname \"pl*\" counter drop")
        XCTAssertEqual(render(Match.interfaceName(.input, "eth0") + [.verdict(.accept)]), "iifname \"eth0\" accept")
        XCTAssertEqual(render(Match.ctState([.established, .related]) + [.verdict(.goto("to-workload"))]),
                       "ct state established,related goto to-workload")
        XCTAssertEqual(render(Match.address(.source, .ipv4, inSet: "sel.x.v4") + Match.destinationPort(protocol: 6, 5432...5432)
                              + [.verdict(.accept)], comment: "shop/db ingress rule 0"),
                       "ip saddr @sel.x.v4 tcp dport 5432 accept comment \"shop/db ingress rule 0\"")
        XCTAssertEqual(render(Match.address(.destination, in: CIDR("2001:db8::/64")!) + Match.destinationPort(protocol: 17, 9000...9010)),
                       "ip6 daddr 2001:db8::/64 udp dport 9000-9010")
        XCTAssertEqual(render(Match.address(.source, in: CIDR("198.51.100.7/32")!) + Match.l4proto(132)),
                       "ip saddr 198.51.100.7 meta l4proto sctp")
        XCTAssertEqual(render([.log(group: 3, prefix: "deny \"x\""), .verdict(.drop)]), "log prefix \"deny \\\"x\\\"\" group 3 drop")
    }

    func testConcatenationsAndIntervals() {
        XCTAssertEqual(render(Match.destinationAddressPort(.ipv4, protocol: 6, inSet: "np.x.v4") + [.verdict(.accept)]),
                       "ip daddr . tcp dport @np.x.v4 accept")
        XCTAssertEqual(render(Match.destinationAddressPort(.ipv6, protocol: 17, inSet: "np.x.v6")),
                       "ip6 daddr . udp dport @np.x.v6")
        let blocks = [CIDR("198.51.100.0/25")!, CIDR("198.51.100.128/25")!, CIDR("203.0.113.8/29")!, CIDR("203.0.113.10/32")!]
        let set = NftSet(name: "net.x.v4", keyType: .ipv4Address, flags: .interval, elements: IntervalElements.elements(for: blocks))
        XCTAssertEqual(set.elements.count, 4, "two merged ranges, each a start and an end")
        XCTAssertEqual(RulesetText.render(set), [
            "set net.x.v4 {", "\ttype ipv4_addr", "\tflags interval",
            "\telements = { 198.51.100.0/24,", "\t\t     203.0.113.8/29 }", "}",
        ])
        let everything = IntervalElements.elements(for: [CIDR("0.0.0.0/0")!, CIDR("10.0.0.0/8")!])
        XCTAssertEqual(everything, [SetElement(key: [0, 0, 0, 0])], "a range to the top has no end element")
        let odd = IntervalElements.elements(for: [CIDR("198.18.0.1/32")!, CIDR("198.18.0.2/31")!])
        XCTAssertEqual(RulesetText.render(NftSet(name: "o", keyType: .ipv4Address, flags: .interval, elements: odd))[3],
                       "\telements = { 198.18.0.1-198.18.0.3 }")
        let pairs = NftSet(name: "p", keyType: .ipv4AddressService, elements: [.addressPort(IPAddress("198.18.0.1")!, 80)])
        XCTAssertEqual(RulesetText.render(pairs)[2], "\telements = { 198.18.0.1 . 80 }")
    }

    func testTableRenderingIsCanonical() {
        let map = NftSet(name: "ingress-dispatch", keyType: .ifname, dataType: .verdict,
                         elements: [.interface("plb", verdict: .jump("b")), .interface("pla", verdict: .accept)])
        let set = NftSet(name: "s", keyType: .ipv4Address, elements: [.address(IPAddress("198.18.0.2")!), .address(IPAddress("198.18.0.1")!)])
        let forward = Chain(name: "forward", hook: ChainHook(point: .forward), rules: [Rule(Match.interfaceVmap(.output, map: "ingress-dispatch"))])
        let table = Table(name: "t", chains: [Chain(name: "b"), forward], sets: [set, map])
        XCTAssertEqual(RulesetText.render(table), """
        table inet t {
        \tmap ingress-dispatch {
        \t\ttype ifname : verdict
        \t\telements = { "pla" : accept,
        \t\t\t     "plb" : jump b }
        \t}
        \tset s {
        \t\ttype ipv4_addr
        \t\telements = { 198.18.0.1,
        \t\t\t     198.18.0.2 }
        \t}
        \tchain forward {
        \t\ttype filter hook forward priority filter; policy accept;
        \t\toifname vmap @ingress-dispatch
        \t}
        \tchain b {
        \t}
        }

        """)
    }

    func testReplacementOrdersChainsBeforeMapsAndRulesLast() {
        let table = Table(name: "t", chains: [Chain(name: "a", rules: [Rule([.verdict(.accept)])])],
                          sets: [NftSet(name: "m", keyType: .ifname, dataType: .verdict, elements: [.interface("x", verdict: .jump("a"))])])
        let changes = table.replacementChanges()
        XCTAssertEqual(changes.count, 7)
        XCTAssertEqual(changes[0], .ensureTable(family: .inet, name: "t"))
        XCTAssertEqual(changes[1], .deleteTable(family: .inet, name: "t"))
        guard case .addChain = changes[3], case .addSet = changes[4], case .addElements = changes[5], case .addRule = changes[6] else {
            return XCTFail("unexpected order: \(changes.map(\.summary))")
        }
    }

    func testVerdictCodes() {
        for verdict in [Verdict.accept, .drop, .return, .continue, .jump("c"), .goto("c")] {
            XCTAssertEqual(Verdict(code: verdict.code, chain: verdict.chain), verdict)
        }
    }
}
