// Interval sets (prefixes, port ranges) and concatenated `address . inet_service` sets against the
// real kernel, each test in its own network namespace; `nft -j list table` is the oracle, and for
// the interval lookup real packets between two namespaces.
import Foundation
import XCTest
import NetworkAddress
import NftablesModel
@testable import NftablesNetlink

final class IntervalAndConcatSetTests: NamespacedConnectionTestCase {
    // MARK: Round trip

    func testRoundTripOfIntervalAndConcatenatedSets() throws {
        let table = Sample.intervalTable(name: tableName)
        try connection.commit(table.replacementChanges())
        let read = try XCTUnwrap(connection.readTable(family: .inet, name: tableName))
        for (name, set) in table.sets {
            XCTAssertEqual(read.sets[name], set, "set \(name)")
        }
        XCTAssertEqual(read.chains, table.chains)
        XCTAssertEqual(read, table)
    }

    /// `ifname . address` sets (which addresses an interface may send from) and the rule that
    /// looks the pair up, read back as sent and listed by nft as it would write them.
    func testInterfaceAddressSetsRoundTrip() throws {
        let v4 = NftSet(name: "src4", keyType: .ifnameIPv4Address,
                        elements: [.interfaceAddress("pla1", IPAddress("198.18.1.1")!), .interfaceAddress("plb1", IPAddress("198.18.2.1")!)])
        let v6 = NftSet(name: "src6", keyType: .ifnameIPv6Address, elements: [.interfaceAddress("pla1", IPAddress("2001:db8::1:1")!)])
        let forward = Chain(name: "forward", hook: ChainHook(point: .forward, priority: 0, policy: .accept), rules: [
            Rule(Match.interfacePrefix(.input, "pl") + Match.interfaceSourceAddress(.ipv4, inSet: "src4", invert: true) + [.counter, .verdict(.drop)]),
            Rule(Match.interfacePrefix(.input, "pl") + Match.interfaceSourceAddress(.ipv6, inSet: "src6", invert: true) + [.counter, .verdict(.drop)]),
        ])
        let table = Table(family: .inet, name: tableName, chains: [forward], sets: [v4, v6])
        try connection.commit(table.replacementChanges())
        let read = try XCTUnwrap(connection.readTable(family: .inet, name: tableName))
        XCTAssertEqual(read.sets["src4"], v4)
        XCTAssertEqual(read.sets["src6"], v6)
        XCTAssertEqual(read.chains["forward"], forward)
        let listing = try namespace.run(["nft", "list", "table", "inet", tableName]).output
        XCTAssertTrue(listing.contains(#"iifname . ip saddr != @src4"#), listing)
        XCTAssertTrue(listing.contains(#""pla1" . 198.18.1.1"#), listing)
        XCTAssertTrue(listing.contains(#""pla1" . 2001:db8::1:1"#), listing)
    }

    // MARK: Oracle

    func testNftListingShowsPrefixesRangesAndConcatenations() throws {
        let table = Sample.intervalTable(name: tableName)
        try connection.commit(table.replacementChanges())

        let items = try namespace.nftJSON(family: "inet", table: tableName)
        let listing = NftListing(items)
        XCTAssertEqual(listing.setElements["net"], ["198.51.100.0/24", "203.0.113.8/29", "198.18.0.64/26"])
        XCTAssertEqual(listing.setElements["net6"], ["2001:db8::1", "2001:db8:1::/48", "8000::/1"])
        XCTAssertEqual(listing.setElements["ports"], ["80", "1000-2000", "65000-65535"])
        XCTAssertEqual(listing.setElements["np"], ["198.18.0.1 . 80", "198.18.0.2 . 443"])
        XCTAssertEqual(listing.setElements["np6"], ["2001:db8::1 . 443"])
        XCTAssertEqual(listing.setElements["empty-net"] ?? [], [])
        XCTAssertEqual(listing.setElements["empty-np"] ?? [], [])

        // The JSON forms themselves, as other tools would consume them.
        let sets = Dictionary(uniqueKeysWithValues: items.compactMap { $0["set"] as? [String: Any] }.map { ($0["name"] as? String ?? "", $0) })
        let netJSON = try XCTUnwrap(sets["net"])
        XCTAssertEqual(netJSON["type"] as? String, "ipv4_addr")
        XCTAssertEqual(netJSON["flags"] as? [String], ["interval"])
        let prefixes = (netJSON["elem"] as? [Any] ?? []).compactMap { ($0 as? [String: Any])?["prefix"] as? [String: Any] }
        XCTAssertTrue(prefixes.contains { $0["addr"] as? String == "198.51.100.0" && $0["len"] as? Int == 24 }, "\(netJSON)")
        let ranges = (sets["ports"]?["elem"] as? [Any] ?? []).compactMap { ($0 as? [String: Any])?["range"] as? [Int] }
        XCTAssertEqual(Set(ranges.map { $0.map(String.init).joined(separator: "-") }), ["1000-2000", "65000-65535"])
        let npJSON = try XCTUnwrap(sets["np"])
        XCTAssertEqual(npJSON["type"] as? [String], ["ipv4_addr", "inet_service"])
        let concats = (npJSON["elem"] as? [Any] ?? []).compactMap { ($0 as? [String: Any])?["concat"] as? [Any] }
        XCTAssertTrue(concats.contains { $0.first as? String == "198.18.0.1" && $0.last as? Int == 80 }, "\(npJSON)")
        XCTAssertEqual(sets["np6"]?["type"] as? [String], ["ipv6_addr", "inet_service"])

        let text = try namespace.run(["nft", "list", "table", "inet", tableName])
        XCTAssertEqual(text.status, 0, text.error)
        for expected in [
            "type ipv4_addr . inet_service", "type ipv6_addr . inet_service", "flags interval",
            "elements = { 198.18.0.1 . 80,\n\t\t\t     198.18.0.2 . 443 }", "elements = { 2001:db8::1 . 443 }",
            "elements = { 80, 1000-2000, 65000-65535 }",
            "ip saddr @net drop comment \"interval v4\"", "ip6 daddr @net6 accept", "tcp dport != @ports drop",
            "ip daddr . tcp dport @np accept", "ip6 daddr . tcp dport @np6 accept", "ip daddr != @empty-net counter",
        ] {
            XCTAssertTrue(text.output.contains(expected), "missing \(expected) in\n\(text.output)")
        }
        // nft sorts and prints the ranges of an interval set as it would its own.
        XCTAssertTrue(text.output.contains("elements = { 198.18.0.64/26, 198.51.100.0/24,\n\t\t\t     203.0.113.8/29 }"), text.output)
    }

    /// nft loads its own listing of our table into a second namespace. It encodes interval sets
    /// with an extra interval end at key 0 in front of the first range; reading that back must still
    /// give exactly our table (the reader drops that element), and nft prints both alike.
    func testNftEncodesItsListingOfOurIntervalTableLikeWeDo() throws {
        let table = Sample.intervalTable(name: tableName)
        try connection.commit(table.replacementChanges())
        let listing = try namespace.run(["nft", "list", "table", "inet", tableName])
        XCTAssertEqual(listing.status, 0, listing.error)

        let other = try TestNamespace.create()
        addTeardownBlock { other.remove() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(other.name).nft")
        try listing.output.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let load = try other.run(["nft", "-f", file.path])
        XCTAssertEqual(load.status, 0, load.error)

        // The kernel does hold nft's extra element: the interval end at 0.0.0.0.
        let raw = try other.run(["nft", "--debug=netlink", "list", "set", "inet", tableName, "net"])
        XCTAssertTrue(raw.output.contains("element 00000000  : 1 [end]"), raw.output)

        let reencoded = try XCTUnwrap(NftablesConnection(netnsPath: other.path).readTable(family: .inet, name: tableName))
        for (name, set) in table.sets {
            XCTAssertEqual(reencoded.sets[name], set, "set \(name)")
        }
        XCTAssertEqual(reencoded, table)
        XCTAssertEqual(try other.run(["nft", "list", "table", "inet", tableName]).output, listing.output)
    }

    // MARK: Incremental element changes

    func testIntervalElementsAreAddedDeletedAndExtendedInLaterBatches() throws {
        var table = Table(family: .inet, name: tableName, sets: [
            NftSet(name: "net", keyType: .ipv4Address, flags: .interval,
                   elements: Set(Sample.range(Sample.ipv4(198, 51, 100, 0), Sample.ipv4(198, 51, 101, 0)))),
            NftSet(name: "ports", keyType: .inetService, flags: .interval,
                   elements: Set(Sample.range(Sample.port(80), Sample.port(81)))),
            NftSet(name: "np", keyType: .ipv4AddressService),
        ])
        try connection.commit(table.replacementChanges())
        XCTAssertEqual(try connection.readTable(family: .inet, name: tableName), table)

        // Add a range, and delete one (its start and its end element), in one batch.
        let added = Sample.range(Sample.ipv4(203, 0, 113, 8), Sample.ipv4(203, 0, 113, 16))
        let removed = Sample.range(Sample.ipv4(198, 51, 100, 0), Sample.ipv4(198, 51, 101, 0))
        try connection.commit([
            .deleteElements(table: tableName, family: .inet, set: "net", keyType: .ipv4Address, elements: removed),
            .addElements(table: tableName, family: .inet, set: "net", keyType: .ipv4Address, elements: added),
            .addElements(table: tableName, family: .inet, set: "np", keyType: .ipv4AddressService,
                         elements: [SetElement(key: Sample.addressPort(Sample.ipv4(198, 18, 0, 1), 80))]),
        ])
        table.sets["net"]?.elements = Set(added)
        table.sets["np"]?.elements = [SetElement(key: Sample.addressPort(Sample.ipv4(198, 18, 0, 1), 80))]
        XCTAssertEqual(try connection.readTable(family: .inet, name: tableName), table)
        var listing = NftListing(try namespace.nftJSON(family: "inet", table: tableName))
        XCTAssertEqual(listing.setElements["net"], ["203.0.113.8/29"])
        XCTAssertEqual(listing.setElements["np"], ["198.18.0.1 . 80"])

        // Grow 203.0.113.8/29 to 203.0.113.8-203.0.113.31 and add a range below it, as a diff of the
        // merged element sets: the old end goes, a new end comes, the start stays.
        var grown = table
        grown.sets["net"]?.elements = Set(Sample.range(Sample.ipv4(203, 0, 113, 8), Sample.ipv4(203, 0, 113, 32))
                                          + Sample.range(Sample.ipv4(198, 18, 0, 0), Sample.ipv4(198, 18, 2, 0)))
        grown.sets["ports"]?.elements = Set(Sample.range(Sample.port(80), Sample.port(91)) + Sample.range(Sample.port(65000), nil))
        try connection.commit(elementDiff(from: table, to: grown))
        XCTAssertEqual(try connection.readTable(family: .inet, name: tableName), grown)
        listing = NftListing(try namespace.nftJSON(family: "inet", table: tableName))
        XCTAssertEqual(listing.setElements["net"], ["203.0.113.8-203.0.113.31", "198.18.0.0/23"])
        XCTAssertEqual(listing.setElements["ports"], ["80-90", "65000-65535"])

        // Shrink back, and empty a set entirely.
        var shrunk = grown
        shrunk.sets["net"]?.elements = Set(Sample.range(Sample.ipv4(203, 0, 113, 8), Sample.ipv4(203, 0, 113, 16)))
        shrunk.sets["ports"]?.elements = []
        try connection.commit(elementDiff(from: grown, to: shrunk))
        XCTAssertEqual(try connection.readTable(family: .inet, name: tableName), shrunk)
        listing = NftListing(try namespace.nftJSON(family: "inet", table: tableName))
        XCTAssertEqual(listing.setElements["net"], ["203.0.113.8/29"])
        XCTAssertEqual(listing.setElements["ports"] ?? [], [])

        // Split 203.0.113.8/29 into .8/31 and .12/30. Adding only the new end (.10) and start (.12)
        // inside the range is refused by the kernel (EEXIST); with the range's end (.16) deleted
        // and added again in the same batch it works.
        var split = shrunk
        split.sets["net"]?.elements = Set(Sample.range(Sample.ipv4(203, 0, 113, 8), Sample.ipv4(203, 0, 113, 10))
                                          + Sample.range(Sample.ipv4(203, 0, 113, 12), Sample.ipv4(203, 0, 113, 16)))
        let end = SetElement(key: Sample.ipv4(203, 0, 113, 16), isIntervalEnd: true)
        try connection.commit([
            .deleteElements(table: tableName, family: .inet, set: "net", keyType: .ipv4Address, elements: [end]),
            .addElements(table: tableName, family: .inet, set: "net", keyType: .ipv4Address, elements: [
                end, SetElement(key: Sample.ipv4(203, 0, 113, 12)), SetElement(key: Sample.ipv4(203, 0, 113, 10), isIntervalEnd: true),
            ]),
        ])
        XCTAssertEqual(try connection.readTable(family: .inet, name: tableName), split)
        listing = NftListing(try namespace.nftJSON(family: "inet", table: tableName))
        XCTAssertEqual(listing.setElements["net"], ["203.0.113.8/31", "203.0.113.12/30"])
    }

    /// Deletes before adds, per set, as the compiler's diff would send them; the element lists in
    /// no particular order (the encoder sends interval elements in the order the kernel needs).
    private func elementDiff(from old: Table, to new: Table) -> [Change] {
        var deletes: [Change] = [], adds: [Change] = []
        for (name, set) in new.sets.sorted(by: { $0.key < $1.key }) {
            let before = old.sets[name]?.elements ?? []
            let gone = before.subtracting(set.elements), came = set.elements.subtracting(before)
            if !gone.isEmpty {
                deletes.append(.deleteElements(table: tableName, family: .inet, set: name, keyType: set.keyType, elements: Array(gone).shuffled()))
            }
            if !came.isEmpty {
                adds.append(.addElements(table: tableName, family: .inet, set: name, keyType: set.keyType, elements: Array(came).shuffled()))
            }
        }
        return deletes + adds
    }

    // MARK: What is still not modelled

    func testSetsBeyondTheModelStillReadAsUnsupported() throws {
        for definition in [
            "add set inet \(tableName) s { type ipv4_addr . inet_service; flags interval; }",
            "add set inet \(tableName) s { type ipv4_addr; flags timeout; }",
            "add map inet \(tableName) s { type ipv4_addr : verdict; flags interval; }",
            "add set inet \(tableName) s { type ipv4_addr; flags interval; elements = { * } }",
        ] {
            let setup = try namespace.run(["nft", "add table inet \(tableName); \(definition)"])
            guard setup.status == 0 else {
                XCTFail("nft refused \(definition): \(setup.error)")
                continue
            }
            XCTAssertThrowsError(try connection.readTable(family: .inet, name: tableName), definition) { error in
                XCTAssertEqual((error as? NftablesError)?.kind, .unsupported, "\(definition): \(error)")
            }
            XCTAssertEqual(try namespace.run(["nft", "delete", "table", "inet", tableName]).status, 0)
        }
    }

    func testIntervalMapsAndIntervalConcatenationsAreRefusedBeforeSending() throws {
        for set in [NftSet(name: "m", keyType: .ipv4Address, dataType: .verdict, flags: .interval),
                    NftSet(name: "c", keyType: .ipv4AddressService, flags: .interval),
                    NftSet(name: "i", keyType: .ifname, flags: .interval)] {
            XCTAssertThrowsError(try connection.commit(Table(name: tableName, sets: [set]).replacementChanges())) { error in
                XCTAssertEqual((error as? NftablesError)?.kind, .invalidChange, "\(error)")
            }
        }
        XCTAssertNil(try connection.readTable(family: .inet, name: tableName))
    }

    // MARK: Packets

    /// `ip saddr @net drop` / `ip6 saddr @net6 drop` on an input hook: a TCP SYN from an address
    /// inside a merged range gets no answer; from addresses below, between and above the ranges it
    /// reaches the stack (which answers with a reset: nothing listens).
    func testIntervalLookupDropsOnlyAddressesInsideTheRanges() throws {
        let peer = try TestNamespace.create()
        addTeardownBlock { peer.remove() }
        let link = "pnl\(String(UInt16.random(in: 0...UInt16.max), radix: 16))"
        for step in [
            ["ip", "link", "add", link + "a", "netns", namespace.name, "type", "veth", "peer", "name", link + "b", "netns", peer.name],
            ["ip", "-n", namespace.name, "addr", "add", "198.18.0.1/24", "dev", link + "a"],
            ["ip", "-n", namespace.name, "addr", "add", "2001:db8::1/64", "dev", link + "a", "nodad"],
            ["ip", "-n", namespace.name, "link", "set", link + "a", "up"],
            ["ip", "-n", peer.name, "addr", "add", "198.18.0.10/24", "dev", link + "b"],
            ["ip", "-n", peer.name, "addr", "add", "198.18.0.100/24", "dev", link + "b"],
            ["ip", "-n", peer.name, "addr", "add", "198.18.0.200/24", "dev", link + "b"],
            ["ip", "-n", peer.name, "addr", "add", "198.18.0.240/24", "dev", link + "b"],
            ["ip", "-n", peer.name, "addr", "add", "2001:db8::10/64", "dev", link + "b", "nodad"],
            ["ip", "-n", peer.name, "addr", "add", "2001:db8::100/64", "dev", link + "b", "nodad"],
            ["ip", "-n", peer.name, "link", "set", link + "b", "up"],
        ] {
            let result = try Command.run(step)
            XCTAssertEqual(result.status, 0, "\(step.joined(separator: " ")): \(result.error)")
        }

        // 198.18.0.64/27 and 198.18.0.96/27 merged, and 198.18.0.224/28: [.64, .128) and [.224, .240).
        let net = NftSet(name: "net", keyType: .ipv4Address, flags: .interval, elements: Set(
            Sample.range(Sample.ipv4(198, 18, 0, 64), Sample.ipv4(198, 18, 0, 128))
            + Sample.range(Sample.ipv4(198, 18, 0, 224), Sample.ipv4(198, 18, 0, 240))))
        let net6 = NftSet(name: "net6", keyType: .ipv6Address, flags: .interval, elements: Set(
            Sample.range(Sample.ipv6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100]), Sample.ipv6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200]))))
        let input = Chain(name: "input", hook: ChainHook(point: .input), rules: [
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [2]),
                  .payload(base: .network, offset: 12, length: 4, dreg: 1),
                  .lookup(sreg: 1, set: "net", dreg: nil, invert: false), .verdict(.drop)]),
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [10]),
                  .payload(base: .network, offset: 8, length: 16, dreg: 1),
                  .lookup(sreg: 1, set: "net6", dreg: nil, invert: false), .verdict(.drop)]),
        ])
        try connection.commit(Table(name: tableName, chains: [input], sets: [net, net6]).replacementChanges())

        let expectations: [(source: String, destination: String, reached: Bool)] = [
            ("198.18.0.10", "198.18.0.1", true),     // below the first range
            ("198.18.0.100", "198.18.0.1", false),   // inside the merged range
            ("198.18.0.200", "198.18.0.1", true),    // between the ranges
            ("198.18.0.240", "198.18.0.1", true),    // the first address after the last range
            ("2001:db8::10", "2001:db8::1", true),
            ("2001:db8::100", "2001:db8::1", false),
        ]
        for expectation in expectations {
            let outcome = try connect(in: peer, from: expectation.source, to: expectation.destination)
            XCTAssertEqual(outcome, expectation.reached ? "refused" : "timeout",
                           "\(expectation.source) -> \(expectation.destination)")
        }

        // The same addresses after the range moves: in a later batch, replace the v4 ranges.
        try connection.commit([
            .deleteElements(table: tableName, family: .inet, set: "net", keyType: .ipv4Address, elements: Array(net.elements)),
            .addElements(table: tableName, family: .inet, set: "net", keyType: .ipv4Address,
                         elements: Sample.range(Sample.ipv4(198, 18, 0, 0), Sample.ipv4(198, 18, 0, 16))),
        ])
        XCTAssertEqual(try connect(in: peer, from: "198.18.0.10", to: "198.18.0.1"), "timeout")
        XCTAssertEqual(try connect(in: peer, from: "198.18.0.100", to: "198.18.0.1"), "refused")
    }

    /// A TCP connect from the peer namespace to a closed port: "refused" if the SYN arrived,
    /// "timeout" if it was dropped.
    private func connect(in peer: TestNamespace, from source: String, to destination: String) throws -> String {
        let family = source.contains(":") ? "AF_INET6" : "AF_INET"
        let script = """
            import socket
            s = socket.socket(socket.\(family), socket.SOCK_STREAM); s.settimeout(0.5); s.bind(("\(source)", 0))
            try: s.connect(("\(destination)", 9)); print("open")
            except ConnectionRefusedError: print("refused")
            except socket.timeout: print("timeout")
            """
        let result = try peer.run(["python3", "-c", script])
        XCTAssertEqual(result.status, 0, result.error)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
