@testable import AgentCore
import Foundation
import Logging
import XCTest

final class RolesTests: XCTestCase {
    static let sample = """
    grants:
    - users: [alice]
      verbs: [read]
    - groups: [secops]
      verbs: [read, quarantine, release]
    - users: ["1007"]
      groups: ["2500"]
      verbs: [sync]
    """

    let alice = Account(uid: 1001, userName: "alice", groupIDs: [1001], groupNames: ["alice"])
    let bob = Account(uid: 1002, userName: "bob", groupIDs: [1002], groupNames: ["bob"])
    let carol = Account(uid: 1003, userName: "carol", groupIDs: [1003, 2000], groupNames: ["carol", "secops"])

    func roles() throws -> Roles { try Roles.parse(Self.sample, path: "rbac.yaml") }

    func testParsesGrantsWithTheirLines() throws {
        let roles = try roles()
        XCTAssertEqual(roles.grants, [
            Roles.Grant(users: ["alice"], verbs: [.read], line: 2),
            Roles.Grant(groups: ["secops"], verbs: [.read, .quarantine, .release], line: 4),
            Roles.Grant(users: ["1007"], groups: ["2500"], verbs: [.sync], line: 6),
        ])
    }

    func testRootHasEveryVerbAndNobodyElseHasAnyWithoutAGrant() throws {
        let root = Account(uid: 0, userName: "root")
        XCTAssertEqual(Roles.none.verbs(for: root), Set(Verb.allCases))
        XCTAssertEqual(Roles.none.verbs(for: alice), [])
        XCTAssertEqual(try roles().verbs(for: bob), [])
    }

    func testAUserGrantByName() throws {
        XCTAssertEqual(try roles().verbs(for: alice), [.read])
        XCTAssertEqual(try roles().decide(.read, for: alice, rolesPath: "rbac.yaml"), .allowed)
    }

    func testASupplementaryGroupGrantByName() throws {
        XCTAssertEqual(try roles().verbs(for: carol), [.read, .quarantine, .release])
    }

    func testAPrimaryGroupCountsLikeAnyOther() throws {
        // dave's only group is his primary group, secops.
        let dave = Account(uid: 1004, userName: "dave", groupIDs: [2000], groupNames: ["secops"])
        XCTAssertEqual(try roles().verbs(for: dave), [.read, .quarantine, .release])
    }

    func testNumericUidAndGid() throws {
        let byUid = Account(uid: 1007, userName: "svc", groupIDs: [1007], groupNames: ["svc"])
        let byGid = Account(uid: 1008, userName: nil, groupIDs: [2500])
        XCTAssertEqual(try roles().verbs(for: byUid), [.sync])
        XCTAssertEqual(try roles().verbs(for: byGid), [.sync])
    }

    func testGrantsAddUp() throws {
        let erin = Account(uid: 1007, userName: "alice", groupIDs: [2000], groupNames: ["secops"])
        XCTAssertEqual(try roles().verbs(for: erin), Set(Verb.allCases))
    }

    func testRefusalSaysWhoWhatAndWhatTheyHave() throws {
        XCTAssertEqual(try roles().decide(.quarantine, for: alice, rolesPath: "/etc/palisade/rbac.yaml"),
                       .refused("permission denied: user alice (uid 1001) may not quarantine (grants: read); "
                                + "an administrator can grant it in /etc/palisade/rbac.yaml"))
        XCTAssertEqual(try roles().decide(.read, for: bob, rolesPath: "r.yaml"),
                       .refused("permission denied: user bob (uid 1002) may not read (grants: none); an administrator can grant it in r.yaml"))
        let nameless = Account(uid: 4242, userName: nil, groupIDs: [4242])
        XCTAssertEqual(Roles.none.decide(.sync, for: nameless, rolesPath: "r.yaml"),
                       .refused("permission denied: uid 4242 (no passwd entry) may not sync (grants: none); an administrator can grant it in r.yaml"))
        XCTAssertEqual(try roles().decide(.sync, for: carol, rolesPath: "r.yaml"),
                       .refused("permission denied: user carol (uid 1003) may not sync (grants: read, quarantine, release); an administrator can grant it in r.yaml"))
    }

    func testEmptyFilesGrantNothing() throws {
        XCTAssertEqual(try Roles.parse("", path: "r.yaml"), .none)
        XCTAssertEqual(try Roles.parse("# nobody yet\n", path: "r.yaml"), .none)
        XCTAssertEqual(try Roles.parse("grants:\n", path: "r.yaml"), .none)
        XCTAssertEqual(try Roles.parse("grants: []\n", path: "r.yaml"), .none)
    }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Roles.parse(text, path: "rbac.yaml"), file: file, line: line) { error in
            XCTAssertEqual("\(error)", expected, file: file, line: line)
        }
    }

    func testErrorsNameFileLineAndField() {
        assertError("grants:\n- users: [alice]\n  verbs: [read, write]\n",
                    "rbac.yaml:3: grants[0].verbs[1] \"write\" is not one of read, sync, quarantine, release")
        assertError("grants:\n- users: [alice]\n  verbs:\n  - read\n  - delete\n",
                    "rbac.yaml:5: grants[0].verbs[1] \"delete\" is not one of read, sync, quarantine, release")
        assertError("grants:\n- users: [alice]\n  verbs: [read]\n- user: [bob]\n  verbs: [read]\n",
                    "rbac.yaml:4: grants[1]: unknown key \"user\" (a grant has users, groups and verbs)")
        assertError("grants:\n- verbs: [read]\n",
                    "rbac.yaml:2: grants[0] names no users and no groups")
        assertError("grants:\n- users: [alice]\n",
                    "rbac.yaml:2: grants[0] grants no verbs: give verbs, some of read, sync, quarantine, release")
        assertError("grants:\n- users: alice\n  verbs: [read]\n",
                    "rbac.yaml:2: grants[0].users must be a list of user names or uids, like [alice]")
        assertError("grants:\n- groups: [secops, \"\"]\n  verbs: [read]\n",
                    "rbac.yaml:2: grants[0].groups[1] must be one of group names or gids")
        assertError("grants: {alice: read}\n", "rbac.yaml:1: grants must be a list")
        assertError("roles:\n- users: [alice]\n", "rbac.yaml:1: unknown key \"roles\" (the roles file has grants and namespaceOwners)")
        assertError("- users: [alice]\n", "rbac.yaml:1: the roles file must be a mapping with a grants list")
        assertError("grants:\n- alice\n", "rbac.yaml:2: grants[0] must be a mapping with users, groups and verbs")
    }

    func testASyntaxErrorNamesItsLine() {
        XCTAssertThrowsError(try Roles.parse("grants:\n- users: [alice\n  verbs: [read]\n", path: "rbac.yaml")) { error in
            XCTAssertTrue("\(error)".hasPrefix("rbac.yaml:"), "\(error)")
            XCTAssertTrue("\(error)".contains("not valid YAML"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"), "one line: \(error)")
        }
    }

    // MARK: - The file on disk

    func testTheFileIsReloadedWhenItChangesAndABrokenOneKeepsTheLastGoodRoles() throws {
        let directory = NSTemporaryDirectory() + "palisade-roles-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/rbac.yaml"
        let file = RolesFile(path: path, logger: Logger(label: "test"))

        XCTAssertEqual(file.current(), .none, "missing: root only")
        try "grants:\n- users: [alice]\n  verbs: [read]\n".write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertEqual(file.current().verbs(for: alice), [.read])
        // Same size, same second: the content decides, not the timestamp.
        try "grants:\n- users: [alice]\n  verbs: [sync]\n".write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertEqual(file.current().verbs(for: alice), [.sync])
        try "grants:\n- users: [alice]\n  verbs: [rread]\n".write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertEqual(file.current().verbs(for: alice), [.sync], "broken: the last good roles stay")
        XCTAssertEqual(file.error, "\(path):3: grants[0].verbs[0] \"rread\" is not one of read, sync, quarantine, release")
        try FileManager.default.removeItem(atPath: path)
        XCTAssertEqual(file.current(), .none, "removed: root only again")
        XCTAssertNil(file.error)

        let fresh = RolesFile(path: path, logger: Logger(label: "test"))
        try "grants: [".write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertEqual(fresh.current(), .none, "broken with nothing good before it: no grants")
        XCTAssertNotNil(fresh.error)
    }

    func testLookupOfRoot() {
        let root = Account.lookup(uid: 0, gid: 0)
        XCTAssertEqual(root.userName, "root")
        XCTAssertTrue(root.groupIDs.contains(0))
        XCTAssertTrue(root.groupNames.contains("root"))
        XCTAssertEqual(Account.lookup(uid: 3_999_999_999, gid: 3_999_999_999).userName, nil)
        XCTAssertEqual(Account.lookup(uid: 3_999_999_999, gid: 3_999_999_999).displayName, "3999999999")
    }

    // MARK: - Configuration keys

    func testConfigKeys() throws {
        let config = try AgentConfig.parse("rbacFile: /srv/rbac.yaml\nsocketGroup: secops\n", path: "c.yaml")
        XCTAssertEqual(config.rbacFile, "/srv/rbac.yaml")
        XCTAssertEqual(config.socketGroup, "secops")
        XCTAssertEqual(AgentConfig().rbacFile, "/etc/palisade/rbac.yaml")
        XCTAssertEqual(AgentConfig().socketGroup, "palisade")
        XCTAssertNil(try AgentConfig.parse("socketGroup: \"\"\n", path: "c.yaml").socketGroup)
        XCTAssertThrowsError(try AgentConfig.parse("rbacFile: rbac.yaml\n", path: "c.yaml")) { error in
            XCTAssertEqual("\(error)", "c.yaml:1: rbacFile \"rbac.yaml\" must be an absolute path")
        }
    }
}
