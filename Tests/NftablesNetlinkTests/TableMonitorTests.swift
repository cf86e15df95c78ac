// TableMonitor against the real kernel, in a throwaway network namespace: what `nft` does to the
// watched table is reported within a second, once per transaction; other tables (also one with the
// same name in another family) are not; neither are transactions of the agent's own socket (by
// port id) or process (by pid); lost notifications (ENOBUFS) are reported as a change.
import Foundation
import XCTest
import NftablesModel
@testable import NftablesNetlink

/// Counts onChange calls from the monitor's thread.
final class ChangeCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func increment() {
        lock.lock()
        value += 1
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    /// Waits until at least `target` changes were counted; returns the seconds it took, or nil.
    func wait(for target: Int, timeout: TimeInterval = 1) -> TimeInterval? {
        let started = Date()
        while Date().timeIntervalSince(started) < timeout {
            if count >= target { return Date().timeIntervalSince(started) }
            usleep(2_000)
        }
        return count >= target ? Date().timeIntervalSince(started) : nil
    }
}

final class TableMonitorTests: XCTestCase {
    private var namespace: TestNamespace!
    private var monitors: [TableMonitor] = []

    override func setUpWithError() throws {
        let namespace = try TestNamespace.create()
        self.namespace = namespace
        addTeardownBlock { namespace.remove() }
    }

    override func tearDown() {
        monitors.forEach { $0.stop() }
        monitors = []
        super.tearDown()
    }

    private func monitor(_ table: String = "palisade", ignoringPortIDs: Set<UInt32> = [], ignoringProcessID: Int32? = nil,
                         receiveBufferBytes: Int = 8 << 20, start: Bool = true) throws -> ChangeCounter {
        let counter = ChangeCounter()
        let monitor = try TableMonitor(family: .inet, table: table, netnsPath: namespace.path,
                                       ignoringPortIDs: ignoringPortIDs, ignoringProcessID: ignoringProcessID,
                                       receiveBufferBytes: receiveBufferBytes,
                                       onError: { error in XCTFail("monitor error: \(error)") },
                                       onChange: { counter.increment() })
        if start { try monitor.start() }
        monitors.append(monitor)
        return counter
    }

    private func nft(_ command: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try namespace.run(["nft", command])
        XCTAssertEqual(result.status, 0, "nft \(command): \(result.error)", file: file, line: line)
    }

    /// Runs `command` and expects exactly one more change within a second (and no second one after).
    private func expectOneChange(_ counter: ChangeCounter, _ command: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let before = counter.count
        try nft(command, file: file, line: line)
        let took = counter.wait(for: before + 1)
        XCTAssertNotNil(took, "no change reported within 1 s of `nft \(command)`", file: file, line: line)
        usleep(150_000)
        XCTAssertEqual(counter.count, before + 1, "`nft \(command)` is one transaction", file: file, line: line)
    }

    /// Runs commands that must not be reported: nothing for 300 ms after the last.
    private func expectNoChange(_ counter: ChangeCounter, _ commands: [String],
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let before = counter.count
        for command in commands { try nft(command, file: file, line: line) }
        usleep(300_000)
        XCTAssertEqual(counter.count, before, "reported a change for \(commands)", file: file, line: line)
    }

    func testNftChangesToTheWatchedTableAreReportedOncePerTransaction() throws {
        let counter = try monitor()
        try expectOneChange(counter, "add table inet palisade")
        try expectOneChange(counter, "add chain inet palisade c")
        try expectOneChange(counter, "add rule inet palisade c tcp dport 22 counter drop")
        try expectOneChange(counter, "add set inet palisade s { type ipv4_addr; }")
        try expectOneChange(counter, "add element inet palisade s { 198.18.0.1, 198.18.0.2 }")
        try expectOneChange(counter, "flush table inet palisade")
        try expectOneChange(counter, "delete chain inet palisade c")
        try expectOneChange(counter, "delete table inet palisade")
        // Several objects in one `nft -f` transaction: still one report.
        try expectOneChange(counter, "add table inet palisade; add chain inet palisade a; add chain inet palisade b")
        try expectOneChange(counter, "flush ruleset")
    }

    func testChangesToOtherTablesAreNotReported() throws {
        let counter = try monitor()
        try expectNoChange(counter, [
            "add table inet other", "add chain inet other c", "add rule inet other c counter accept",
            "flush table inet other", "delete table inet other",
            // The same name in another family is another table.
            "add table ip palisade", "add chain ip palisade c", "delete table ip palisade",
        ])
        // The monitor was listening all along: a change to its table right after is reported.
        try expectOneChange(counter, "add table inet palisade")
        // A transaction touching both is reported.
        try expectOneChange(counter, "add table inet other; add chain inet palisade x")
    }

    func testTheAgentsOwnTransactionsAreNotReported() throws {
        let ours = try NftablesConnection(netnsPath: namespace.path)
        let theirs = try NftablesConnection(netnsPath: namespace.path)
        XCTAssertNotEqual(ours.portID, theirs.portID)
        let byPort = try monitor(ignoringPortIDs: [ours.portID])
        let byProcess = try monitor(ignoringProcessID: getpid())

        var table = Table(name: "palisade", chains: [Chain(name: "c", rules: [Rule([.counter, .verdict(.accept)])])])
        try ours.commit(table.replacementChanges(exists: false))
        table.chains["d"] = Chain(name: "d")
        try ours.commit(table.replacementChanges(exists: true))
        usleep(300_000)
        XCTAssertEqual(byPort.count, 0, "the agent's own socket's transactions were reported")
        XCTAssertEqual(byProcess.count, 0, "the agent's own process's transactions were reported")

        // Another socket of the same process: a foreign port id, but the same pid.
        table.chains["e"] = Chain(name: "e")
        try theirs.commit(table.replacementChanges(exists: true))
        XCTAssertNotNil(byPort.wait(for: 1), "another socket's transaction was not reported")
        usleep(300_000)
        XCTAssertEqual(byPort.count, 1)
        XCTAssertEqual(byProcess.count, 0)

        // Another process: reported by both.
        try nft("flush table inet palisade")
        XCTAssertNotNil(byPort.wait(for: 2))
        XCTAssertNotNil(byProcess.wait(for: 1))
    }

    func testLostNotificationsAreReportedAsAChange() throws {
        // A receive buffer far too small, and nobody reading yet: the notifications of a large
        // transaction on another table overflow it. Had none been lost, nothing would be reported.
        let counter = try monitor(receiveBufferBytes: 4096, start: false)
        let rules = (0..<500).map { "add rule inet other c tcp dport \(1000 + $0) counter drop" }
        let script = (["add table inet other", "add chain inet other c"] + rules).joined(separator: "\n")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-monitor-\(getpid()).nft")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try namespace.run(["nft", "-f", file.path])
        XCTAssertEqual(result.status, 0, result.error)
        try monitors[0].start()
        XCTAssertNotNil(counter.wait(for: 1), "ENOBUFS was not reported as a change")
    }

    func testStopEndsTheThreadAndNothingIsReportedAfterwards() throws {
        let counter = try monitor()
        try expectOneChange(counter, "add table inet palisade")
        monitors[0].stop()
        monitors[0].stop()
        try expectNoChange(counter, ["add chain inet palisade c"])
    }

    /// Unknown types, other subsystems, truncated and attribute-less messages: never a crash; a
    /// message of the table's family that names no table counts as touching it (fail safe).
    func testUnknownAndMalformedMessagesAreTolerated() {
        func message(type: UInt16, family: UInt8 = 1, pid: UInt32 = 4242, attributes: [(UInt16, [UInt8])] = []) -> [UInt8] {
            var payload: [UInt8] = [family, 0, 0, 0]
            for (kind, value) in attributes {
                let length = 4 + value.count
                payload += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(kind & 0xff), UInt8(kind >> 8)] + value
                payload += [UInt8](repeating: 0, count: (4 - length % 4) % 4)
            }
            let length = 16 + payload.count
            var bytes = withUnsafeBytes(of: UInt32(length).littleEndian, Array.init)
            bytes += withUnsafeBytes(of: type.littleEndian, Array.init) + [0, 0]
            bytes += withUnsafeBytes(of: UInt32(1).littleEndian, Array.init) + withUnsafeBytes(of: pid.littleEndian, Array.init)
            return bytes + payload
        }
        // NFNL_SUBSYS_NFTABLES = 10; NFT_MSG_NEWRULE = 6, NFT_MSG_NEWGEN = 15.
        let nftables: UInt16 = 10 << 8
        let newRule: UInt16 = nftables | 6, generation: UInt16 = nftables | 15
        let name = Array("palisade".utf8) + [0]
        let newGeneration = message(type: generation, family: 0,
                                    attributes: [(1, [0, 0, 0, 7]), (2, [0, 0, 0x10, 0x92])])

        func reports(_ datagrams: [[UInt8]]) -> Int {
            var transaction = TableMonitor.Transaction()
            var total = 0
            for datagram in datagrams {
                total += datagram.withUnsafeBytes {
                    TableMonitor.process($0, transaction: &transaction, family: .inet, table: "palisade",
                                         ignoredPortIDs: [1], ignoredProcessID: 1)
                }
            }
            return total
        }

        XCTAssertEqual(reports([message(type: newRule, attributes: [(1, name)]) + newGeneration]), 1)
        // Split across datagrams.
        XCTAssertEqual(reports([message(type: newRule, attributes: [(1, name)]), newGeneration]), 1)
        // Unknown nf_tables types, another subsystem, a control message: nothing.
        XCTAssertEqual(reports([message(type: nftables | 200, attributes: [(1, name)]) + message(type: 0x0301)
                                + message(type: 3) + newGeneration]), 0)
        // A rule notification naming no table, in the watched family: assumed to touch it.
        XCTAssertEqual(reports([message(type: newRule) + newGeneration]), 1)
        // ... in another family: not ours.
        XCTAssertEqual(reports([message(type: newRule, family: 2) + newGeneration]), 0)
        // Our own port id, or our own pid in NFTA_GEN_PROC_PID: not reported.
        XCTAssertEqual(reports([message(type: newRule, attributes: [(1, name)])
                                + message(type: generation, family: 0, pid: 1)]), 0)
        XCTAssertEqual(reports([message(type: newRule, attributes: [(1, name)])
                                + message(type: generation, family: 0,
                                          attributes: [(2, [0, 0, 0, 1])])]), 0)
        // Truncated, garbage, empty: no crash.
        let whole = message(type: newRule, attributes: [(1, name)])
        for cut in 0..<whole.count { _ = reports([Array(whole.prefix(cut))]) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0...96, using: &generator)
            var garbage = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if count >= 6 { garbage[4] = UInt8.random(in: 0...40, using: &generator); garbage[5] = 10 }
            _ = reports([garbage])
        }
        // A bad attribute length inside an otherwise well-formed message.
        var badAttribute = whole
        badAttribute[20] = 0xff
        _ = reports([badAttribute + newGeneration])
    }
}
