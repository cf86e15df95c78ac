// NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST, as the agent uses them: while the owning socket lives,
// nothing else can change or delete the table (and `nft flush ruleset` leaves it alone); when the
// owner goes away the table stays in force, ownerless, and a new socket replaces it in one batch.
import Foundation
import NftablesModel
import NftablesNetlink
import XCTest

final class TableOwnershipTests: XCTestCase {
    private var namespace: TestNamespace!

    override func setUpWithError() throws {
        let namespace = try TestNamespace.create()
        self.namespace = namespace
        addTeardownBlock { namespace.remove() }
    }

    private func nft(_ arguments: String...) throws -> CommandResult {
        try Command.run(["ip", "netns", "exec", namespace.name, "nft"] + arguments)
    }

    func testOwnedPersistentTableResistsOthersAndOutlivesItsOwner() throws {
        let table = Table(name: "palisade", chains: [Chain(name: "c", rules: [Rule([.counter, .verdict(.accept)])])])
        var owner: NftablesConnection? = try NftablesConnection(netnsPath: namespace.path)
        try owner?.commit(table.replacementChanges(flags: [.owner, .persist], exists: false))
        XCTAssertEqual(try owner?.tableFlags(family: .inet, name: "palisade"), [.owner, .persist])

        // Others: refused, and `flush ruleset` skips the table.
        XCTAssertNotEqual(try nft("delete", "table", "inet", "palisade").status, 0)
        XCTAssertNotEqual(try nft("flush", "table", "inet", "palisade").status, 0)
        XCTAssertEqual(try nft("flush", "ruleset").status, 0)
        let other = try NftablesConnection(netnsPath: namespace.path)
        XCTAssertThrowsError(try other.commit(table.replacementChanges(flags: [.owner, .persist], exists: true))) { error in
            XCTAssertEqual((error as? NftablesError)?.code, EPERM)
        }
        XCTAssertEqual(try other.readTable(family: .inet, name: "palisade"), table)

        // The owner goes away (as with kill -9): the table stays, without an owner.
        owner = nil
        var flags = try other.tableFlags(family: .inet, name: "palisade")
        for _ in 0..<50 where flags != [.persist] {
            usleep(20_000)
            flags = try other.tableFlags(family: .inet, name: "palisade")
        }
        XCTAssertEqual(flags, [.persist])
        XCTAssertEqual(try other.readTable(family: .inet, name: "palisade"), table)

        // A new agent's socket replaces it in one batch and owns it from then on.
        var second = table
        second.chains["d"] = Chain(name: "d")
        try other.commit(second.replacementChanges(flags: [.owner, .persist], exists: true))
        XCTAssertEqual(try other.tableFlags(family: .inet, name: "palisade"), [.owner, .persist])
        XCTAssertEqual(try other.readTable(family: .inet, name: "palisade"), second)
        XCTAssertNotEqual(try nft("delete", "table", "inet", "palisade").status, 0)
    }
}
