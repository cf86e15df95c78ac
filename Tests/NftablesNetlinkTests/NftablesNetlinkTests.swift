// Real-kernel tests: each test gets its own network namespace and programs it through
// NftablesConnection(netnsPath:); `nft -j list table` inside that namespace is the independent
// oracle. Needs root (skipped otherwise, failed when CI=true).
import Foundation
import XCTest
import NftablesModel
@testable import NftablesNetlink

final class NftablesNetlinkTests: NamespacedConnectionTestCase {
    // MARK: 1. Round trip

    func testRoundTripOfEveryExpressionSetAndMap() throws {
        let table = Sample.fullTable(name: tableName)
        try connection.commit(table.replacementChanges())
        let read = try XCTUnwrap(connection.readTable(family: .inet, name: tableName))
        assertEqualTables(read, table)
    }

    // MARK: 2. Independent oracle

    func testNftListingShowsWhatWasCommitted() throws {
        let rootTablesBefore = try Command.run(["nft", "list", "tables"])
        let table = Sample.fullTable(name: tableName)
        try connection.commit(table.replacementChanges())

        let listing = NftListing(try namespace.nftJSON(family: "inet", table: tableName))
        XCTAssertEqual(listing.chains, Set(table.chains.keys))
        let forward = try XCTUnwrap(listing.baseChains["forward"])
        XCTAssertEqual(forward.hook, "forward")
        XCTAssertEqual(forward.prio, 0)
        XCTAssertEqual(forward.policy, "accept")
        let input = try XCTUnwrap(listing.baseChains["input"])
        XCTAssertEqual(input.prio, -10)
        XCTAssertEqual(input.policy, "drop")

        XCTAssertEqual(listing.setElements["sel-a-v4"], ["198.18.0.5", "198.18.0.6", "10.0.0.1"])
        XCTAssertEqual(listing.setElements["sel-a-v6"], ["2001:db8::5", "2001:db8::6"])
        XCTAssertEqual(listing.setElements["ports"], ["443"])
        XCTAssertEqual(listing.mapElements["egress-dispatch"], [
            "veth-a": "jump ep-1-egress", "veth-b": "goto quarantine", "veth-c": "drop", "veth-d": "accept",
        ])
        XCTAssertEqual(listing.mapElements["ingress-dispatch"] ?? [:], [:])

        for (name, chain) in table.chains {
            XCTAssertEqual(listing.comments[name] ?? [], chain.rules.map(\.comment), "comments of chain \(name)")
        }

        let text = try namespace.run(["nft", "list", "table", "inet", tableName])
        XCTAssertEqual(text.status, 0, text.error)
        XCTAssertTrue(text.output.contains("comment \"policy shop/web\""), text.output)
        XCTAssertTrue(text.output.contains("\"veth-a\" : jump ep-1-egress"), text.output)
        XCTAssertTrue(text.output.contains("iifname vmap @egress-dispatch"), text.output)
        XCTAssertTrue(text.output.contains("ct state established,related return"), text.output)
        XCTAssertTrue(text.output.contains("log prefix \"palisade deny ep-1: \" group 5"), text.output)
        XCTAssertTrue(text.output.contains("type ifname : verdict"), text.output)
        // The machine's own (root namespace) ruleset is not touched.
        let rootTablesAfter = try Command.run(["nft", "list", "tables"])
        XCTAssertEqual(rootTablesAfter.output, rootTablesBefore.output)
    }

    /// Differential check of the encodings: nft parses its own listing of our table and encodes it
    /// again in a second namespace; reading that back must give our table, and nft must print both
    /// namespaces alike. Only the register choice of one rule differs (nft always uses reg 1).
    func testNftEncodesItsListingOfOurTableExactlyLikeWeDo() throws {
        let table = Sample.fullTable(name: tableName)
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

        let reencoded = try XCTUnwrap(NftablesConnection(netnsPath: other.path).readTable(family: .inet, name: tableName))
        var expected = table
        let registerNine = expected.chains["pol-1-egress"]?.rules[1].exprs ?? []
        expected.chains["pol-1-egress"]?.rules[1].exprs = registerNine.map { expr in
            switch expr {
            case .payload(let base, let offset, let length, 9): return .payload(base: base, offset: offset, length: length, dreg: 1)
            case .cmp(9, let op, let data): return .cmp(sreg: 1, op: op, data: data)
            default: return expr
            }
        }
        assertEqualTables(reencoded, expected)
        XCTAssertEqual(try other.run(["nft", "list", "table", "inet", tableName]).output, listing.output)
    }

    // MARK: 3. A failing batch changes nothing

    func testFailingBatchNamesTheChangeAndLeavesTheTableAsItWas() throws {
        let table = Sample.fullTable(name: tableName)
        try connection.commit(table.replacementChanges())
        let before = try namespace.nftJSON(family: "inet", table: tableName)

        let badRule = Rule([.counter, .verdict(.jump("no-such-chain"))], comment: "broken")
        let changes: [Change] = [
            .addChain(table: tableName, family: .inet, chain: Chain(name: "extra")),
            .addElements(table: tableName, family: .inet, set: "sel-a-v4", keyType: .ipv4Address,
                         elements: [SetElement(key: Sample.ipv4(192, 0, 2, 1))]),
            .addRule(table: tableName, family: .inet, chain: "extra", rule: Rule([.counter, .verdict(.accept)])),
            .addRule(table: tableName, family: .inet, chain: "extra", rule: badRule),
            .addRule(table: tableName, family: .inet, chain: "forward", rule: Rule([.verdict(.drop)])),
        ]
        XCTAssertThrowsError(try connection.commit(changes)) { error in
            guard let error = error as? NftablesError else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(error.kind, .rejected)
            XCTAssertEqual(error.changeIndex, 3)
            XCTAssertEqual(error.code, ENOENT)
            XCTAssertTrue(error.description.contains(changes[3].summary), error.description)
            XCTAssertTrue(error.description.contains("No such file or directory"), error.description)
        }

        let read = try XCTUnwrap(connection.readTable(family: .inet, name: tableName))
        assertEqualTables(read, table)
        let after = try namespace.nftJSON(family: "inet", table: tableName)
        XCTAssertEqual(NftListing(after).chains, NftListing(before).chains)
        XCTAssertEqual(NftListing(after).setElements, NftListing(before).setElements)
        XCTAssertEqual(NftListing(after).ruleCounts, NftListing(before).ruleCounts)
        XCTAssertFalse(NftListing(after).chains.contains("extra"))

        // The connection is still usable after a rejected batch.
        try connection.commit([.addChain(table: tableName, family: .inet, chain: Chain(name: "extra"))])
        XCTAssertNotNil(try connection.readTable(family: .inet, name: tableName)?.chains["extra"])
    }

    func testInvalidChangeIsRefusedBeforeSending() throws {
        try connection.commit(Sample.fullTable(name: tableName).replacementChanges())
        let short = Change.addElements(table: tableName, family: .inet, set: "egress-dispatch", keyType: .ifname,
                                       elements: [SetElement(key: Array("veth-x".utf8), verdict: .drop)])
        XCTAssertThrowsError(try connection.commit([.addChain(table: tableName, family: .inet, chain: Chain(name: "x")), short])) { error in
            guard let error = error as? NftablesError else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(error.kind, .invalidChange)
            XCTAssertEqual(error.changeIndex, 1)
            XCTAssertTrue(error.description.contains("NUL-padded"), error.description)
        }
        XCTAssertNil(try connection.readTable(family: .inet, name: tableName)?.chains["x"])
    }

    // MARK: 4. Replace

    func testReplacementReplacesTheWholeTableAndWorksWhenAbsent() throws {
        XCTAssertNil(try connection.readTable(family: .inet, name: tableName))
        let first = Sample.fullTable(name: tableName)
        try connection.commit(first.replacementChanges())   // the table does not exist yet
        assertEqualTables(try XCTUnwrap(connection.readTable(family: .inet, name: tableName)), first)

        let second = Sample.secondVersion(name: tableName)
        try connection.commit(second.replacementChanges())
        assertEqualTables(try XCTUnwrap(connection.readTable(family: .inet, name: tableName)), second)

        let listing = NftListing(try namespace.nftJSON(family: "inet", table: tableName))
        XCTAssertEqual(listing.chains, ["forward", "ep-2-egress"])
        XCTAssertEqual(Set(listing.setElements.keys), ["sel-b-v4"])
        XCTAssertEqual(listing.mapElements["egress-dispatch"], ["veth-z": "jump ep-2-egress"])
        XCTAssertEqual(listing.baseChains["forward"]?.policy, "drop")

        // And back again: idempotent replacement of an equal table.
        try connection.commit(first.replacementChanges())
        try connection.commit(first.replacementChanges())
        assertEqualTables(try XCTUnwrap(connection.readTable(family: .inet, name: tableName)), first)
    }

    // MARK: Incremental changes

    func testElementAndChainChanges() throws {
        var table = Sample.fullTable(name: tableName)
        try connection.commit(table.replacementChanges())

        let veth = Sample.ifname("veth-a")
        let changes: [Change] = [
            // Swap a map element to another verdict: delete and add in one batch.
            .deleteElements(table: tableName, family: .inet, set: "egress-dispatch", keyType: .ifname,
                            elements: [SetElement(key: veth, verdict: .jump("ep-1-egress"))]),
            .addElements(table: tableName, family: .inet, set: "egress-dispatch", keyType: .ifname,
                         elements: [SetElement(key: veth, verdict: .jump("quarantine"))]),
            .deleteElements(table: tableName, family: .inet, set: "sel-a-v4", keyType: .ipv4Address,
                            elements: [SetElement(key: Sample.ipv4(10, 0, 0, 1))]),
            .addElements(table: tableName, family: .inet, set: "sel-a-v4", keyType: .ipv4Address,
                         elements: [SetElement(key: Sample.ipv4(10, 0, 0, 2))]),
            .addElements(table: tableName, family: .inet, set: "sel-a-v4", keyType: .ipv4Address, elements: []),
            .flushChain(table: tableName, family: .inet, chain: "pol-1-egress"),
            .addRule(table: tableName, family: .inet, chain: "pol-1-egress", rule: Rule([.verdict(.accept)], comment: "new")),
            .deleteChain(table: tableName, family: .inet, chain: "unused"),
            .deleteSet(table: tableName, family: .inet, set: "ports"),
        ]
        try connection.commit(changes)

        table.sets["egress-dispatch"]?.elements.remove(SetElement(key: veth, verdict: .jump("ep-1-egress")))
        table.sets["egress-dispatch"]?.elements.insert(SetElement(key: veth, verdict: .jump("quarantine")))
        table.sets["sel-a-v4"]?.elements.remove(SetElement(key: Sample.ipv4(10, 0, 0, 1)))
        table.sets["sel-a-v4"]?.elements.insert(SetElement(key: Sample.ipv4(10, 0, 0, 2)))
        table.chains["pol-1-egress"]?.rules = [Rule([.verdict(.accept)], comment: "new")]
        table.chains["unused"] = nil
        table.sets["ports"] = nil
        assertEqualTables(try XCTUnwrap(connection.readTable(family: .inet, name: tableName)), table)

        try connection.commit([])  // no-op
        try connection.commit([.deleteTable(family: .inet, name: tableName)])
        XCTAssertNil(try connection.readTable(family: .inet, name: tableName))
    }

    // MARK: 5. A big batch

    func testFiftyThousandElementsInOneBatch() throws {
        var elements = Set<SetElement>()
        for index in 0..<50_000 {
            elements.insert(SetElement(key: [10, UInt8(index >> 16), UInt8((index >> 8) & 0xff), UInt8(index & 0xff)]))
        }
        let table = Table(family: .inet, name: tableName,
                          chains: [Chain(name: "forward", hook: ChainHook(point: .forward), rules: [
                              Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [2]),
                                    .payload(base: .network, offset: 12, length: 4, dreg: 1),
                                    .lookup(sreg: 1, set: "big", dreg: nil, invert: false), .verdict(.drop)]),
                          ])],
                          sets: [NftSet(name: "big", keyType: .ipv4Address, elements: elements)])
        let changes = table.replacementChanges()
        XCTAssertGreaterThan(SetCodec.chunks(Array(elements)).count, 1, "elements must be split into several messages")
        try connection.commit(changes)

        // Read at once: the set's hash table is still being resized by the kernel (see TableReader).
        let read = try XCTUnwrap(connection.readTable(family: .inet, name: tableName))
        XCTAssertEqual(read.sets["big"]?.elements.count, 50_000)
        XCTAssertTrue(read == table, "the table read back differs from the one committed")
        let listing = NftListing(try namespace.nftJSON(family: "inet", table: tableName))
        XCTAssertEqual(listing.setElements["big"]?.count, 50_000)
    }

    // MARK: 6. Missing table

    func testReadingAMissingTableReturnsNil() throws {
        XCTAssertNil(try connection.readTable(family: .inet, name: "no-such-table"))
        try connection.commit(Sample.secondVersion(name: tableName).replacementChanges())
        XCTAssertNil(try connection.readTable(family: .inet, name: "no-such-table"))
        XCTAssertNil(try connection.readTable(family: .ip, name: tableName), "same name, other family")
        XCTAssertNotNil(try connection.readTable(family: .inet, name: tableName))
    }

    func testOpeningAMissingNamespaceFailsAndLeavesTheThreadWhereItWas() throws {
        let link = { try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net") }
        let original = try link()
        XCTAssertThrowsError(try NftablesConnection(netnsPath: "/var/run/netns/palisade-nltest-does-not-exist"))
        XCTAssertEqual(try link(), original)
        _ = try NftablesConnection(netnsPath: namespace.path)
        XCTAssertEqual(try link(), original)
    }

    // MARK: Helpers

    /// Compares chain by chain and set by set first, so a failure says where the tables differ.
    private func assertEqualTables(_ actual: Table, _ expected: Table, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(actual.chains.keys), Set(expected.chains.keys), "chains", file: file, line: line)
        for (name, chain) in expected.chains {
            guard let got = actual.chains[name] else { continue }
            XCTAssertEqual(got.hook, chain.hook, "hook of \(name)", file: file, line: line)
            XCTAssertEqual(got.rules.count, chain.rules.count, "rule count of \(name)", file: file, line: line)
            for (index, (a, b)) in zip(got.rules, chain.rules).enumerated() where a != b {
                XCTFail("chain \(name) rule \(index):\n  got      \(a)\n  expected \(b)", file: file, line: line)
            }
        }
        XCTAssertEqual(Set(actual.sets.keys), Set(expected.sets.keys), "sets", file: file, line: line)
        for (name, set) in expected.sets {
            XCTAssertEqual(actual.sets[name], set, "set \(name)", file: file, line: line)
        }
        XCTAssertEqual(actual, expected, file: file, line: line)
    }
}
