// Table.changes(from:) against the real kernel: the delta between two versions of a table is
// one valid batch (chains removed while maps still pointed at them, sets removed while rules
// used them, verdicts of map keys changed) and leaves exactly the new version.
import Foundation
import NftablesModel
import NftablesNetlink
import XCTest

final class IncrementalChangeTests: NamespacedConnectionTestCase {
    func testDeltasBetweenVersionsCommitAndLeaveTheNewVersion() throws {
        let first = Sample.fullTable(name: "palisade")
        var second = Sample.secondVersion(name: "palisade")
        second.chains["forward"]?.hook = first.chains["forward"]?.hook   // a hook change needs a replacement
        var third = first
        third.sets["egress-dispatch"]?.elements = [
            SetElement(key: Sample.ifname("veth-a"), verdict: .goto("quarantine")),    // same key, new verdict
            SetElement(key: Sample.ifname("veth-b"), verdict: .jump("ep-1-egress")),
            SetElement(key: Sample.ifname("veth-e"), verdict: .jump("pol-1-egress")),
        ]
        third.chains["pol-1-egress"]?.rules.removeLast()
        third.sets["sel-a-v4"]?.elements.insert(SetElement(key: Sample.ipv4(198, 18, 0, 9)))

        try connection.commit(first.replacementChanges(exists: false))
        for (from, to, label) in [(first, second, "first to second"), (second, first, "second to first"),
                                  (first, third, "first to third"), (third, first, "third to first")] {
            let delta = try XCTUnwrap(to.changes(from: from), label)
            XCTAssertFalse(delta.isEmpty, label)
            try connection.commit(delta)
            XCTAssertEqual(try connection.readTable(family: .inet, name: "palisade"), to, label)
        }
        XCTAssertEqual(first.changes(from: first), [], "no difference, no change")
    }

    func testAMapVerdictSwapIsOneDeleteAndOneAddOfThatKey() throws {
        let table = Sample.fullTable(name: "palisade")
        var swapped = table
        swapped.sets["egress-dispatch"]?.elements.remove(SetElement(key: Sample.ifname("veth-a"), verdict: .jump("ep-1-egress")))
        swapped.sets["egress-dispatch"]?.elements.insert(SetElement(key: Sample.ifname("veth-a"), verdict: .goto("quarantine")))
        let delta = try XCTUnwrap(swapped.changes(from: table))
        XCTAssertEqual(delta, [
            .deleteElements(table: "palisade", family: .inet, set: "egress-dispatch", keyType: .ifname,
                            elements: [SetElement(key: Sample.ifname("veth-a"), verdict: .jump("ep-1-egress"))]),
            .addElements(table: "palisade", family: .inet, set: "egress-dispatch", keyType: .ifname,
                         elements: [SetElement(key: Sample.ifname("veth-a"), verdict: .goto("quarantine"))]),
        ])
        try connection.commit(table.replacementChanges(exists: false))
        try connection.commit(delta)
        XCTAssertEqual(try connection.readTable(family: .inet, name: "palisade"), swapped)
    }
}
