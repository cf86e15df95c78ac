// ConntrackEventReader against the real kernel: with accounting switched on in the router's
// namespace (and only there), TCP connections from the client through the router to the server,
// over IPv4 and IPv6, must be reported as NEW when they start and as DESTROY, with the same id and
// non-zero packet and byte counters each way, when their entry goes. Entries are deleted with
// `conntrack -D` rather than left to expire: an expired entry is reaped by the kernel's garbage
// collector, which on a quiet machine runs only about once a minute. Needs root.
import Foundation
import Glibc
import NetworkAddress
import XCTest
@testable import NftablesNetlink

final class ConntrackEventReaderTests: XCTestCase {
    func testConnectionsAreReportedAsNewAndDestroyWithCounters() throws {
        let lab = try RoutedLab.make(for: self)
        let ownNamespaceAccounting = try String(contentsOfFile: "/proc/sys/net/netfilter/nf_conntrack_acct", encoding: .utf8)
        try ConntrackAccounting.enable(netnsPath: lab.router.path)
        XCTAssertTrue(try ConntrackAccounting.isEnabled(netnsPath: lab.router.path))
        XCTAssertEqual(try RoutedLab.check(lab.router.run(["sysctl", "-n", "net.netfilter.nf_conntrack_acct"])).output, "1\n",
                       "sysctl inside the namespace agrees")
        XCTAssertEqual(try String(contentsOfFile: "/proc/sys/net/netfilter/nf_conntrack_acct", encoding: .utf8), ownNamespaceAccounting,
                       "the test runner's own namespace is untouched")
        XCTAssertFalse(try ConntrackAccounting.isEnabled(netnsPath: lab.client.path), "nor is any other namespace")

        // Any rule with a ct expression makes the router track connections.
        try lab.loadRouterRules("""
            table inet ct-events-test {
                chain forward {
                    type filter hook forward priority 0; policy accept;
                    ct state new counter
                }
            }
            """)
        let queue = BoundedQueue<ConntrackEvent>(capacity: 1000)
        let errors = ErrorLog()
        let reader = try ConntrackEventReader(netnsPath: lab.router.path, onError: { errors.append($0) }) { queue.offer($0) }
        try reader.start()
        defer { reader.stop() }

        try lab.startPython(lab.server, """
            import socket, threading
            def echo(c):
                while True:
                    data = c.recv(65536)
                    if not data: break
                    c.sendall(data)
                c.close()
            def serve(family, address):
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, 7200)); s.listen(16)
                while True:
                    threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()
            for family, address in ((socket.AF_INET, "\(RoutedLab.serverV4)"), (socket.AF_INET6, "\(RoutedLab.serverV6)")):
                threading.Thread(target=serve, args=(family, address), daemon=True).start()
            import time; time.sleep(0.2)
            print("ready", flush=True)
            threading.Event().wait()
            """, test: self)
        try lab.python(lab.client, """
            import socket
            for family, server, port in ((socket.AF_INET, "\(RoutedLab.serverV4)", 43000), (socket.AF_INET6, "\(RoutedLab.serverV6)", 43001)):
                t = socket.socket(family, socket.SOCK_STREAM); t.bind(("", port)); t.settimeout(5)
                t.connect((server, 7200)); t.sendall(b"x" * 1000)
                echoed = 0
                while echoed < 1000: echoed += len(t.recv(4096))
                t.shutdown(socket.SHUT_WR)
                while t.recv(4096): pass
                t.close()
            """)

        let connections: [(IPAddress, IPAddress, UInt16)] = [
            (RoutedLab.clientV4, RoutedLab.serverV4, 43000), (RoutedLab.clientV6, RoutedLab.serverV6, 43001),
        ]
        func isOurs(_ event: ConntrackEvent, _ connection: (IPAddress, IPAddress, UInt16)) -> Bool {
            event.entry.source == connection.0 && event.entry.destination == connection.1
                && event.entry.sourcePort == connection.2 && event.entry.destinationPort == 7200
        }
        var events = collect(queue, seconds: 5) { events in
            connections.allSatisfy { connection in events.contains { $0.kind == .new && isOurs($0, connection) } }
        }
        for connection in connections {
            let started = events.filter { $0.kind == .new && isOurs($0, connection) }
            XCTAssertEqual(started.count, 1, "one NEW for \(connection) in \(events)")
            guard let new = started.first else { continue }
            XCTAssertEqual(new.entry.protocolNumber, 6)
            XCTAssertEqual(new.entry.replySource, connection.1)
            XCTAssertEqual(new.entry.replyDestination, connection.0)
            XCTAssertEqual(new.replySourcePort, 7200)
            XCTAssertEqual(new.replyDestinationPort, connection.2)
            XCTAssertNotNil(new.id)
            XCTAssertNil(new.originalCounters, "the kernel sends counters only with DESTROY")
        }
        XCTAssertFalse(events.contains { $0.kind == .destroy }, "the entries are still there (TIME_WAIT)")

        for family in ["ipv4", "ipv6"] {
            try RoutedLab.check(lab.router.run(["conntrack", "-D", "-f", family, "-p", "tcp", "--dport", "7200"]))
        }
        events += collect(queue, seconds: 5) { events in
            connections.allSatisfy { connection in events.contains { $0.kind == .destroy && isOurs($0, connection) } }
        }
        for connection in connections {
            let new = events.first { $0.kind == .new && isOurs($0, connection) }
            guard let destroy = events.first(where: { $0.kind == .destroy && isOurs($0, connection) }) else {
                XCTFail("no DESTROY for \(connection) in \(events)")
                continue
            }
            XCTAssertEqual(destroy.id, new?.id, "the same entry")
            let original = try XCTUnwrap(destroy.originalCounters, "counters with nf_conntrack_acct=1")
            let reply = try XCTUnwrap(destroy.replyCounters)
            // SYN, ACK, data, FIN, ACK at least, carrying the 1000 bytes each way.
            XCTAssertGreaterThanOrEqual(original.packets, 4)
            XCTAssertGreaterThan(original.bytes, 1000)
            XCTAssertGreaterThanOrEqual(reply.packets, 3)
            XCTAssertGreaterThan(reply.bytes, 1000)
            print("conntrack events: \(destroy)")
        }
        let statistics = reader.statistics
        XCTAssertEqual(statistics.overruns, 0)
        XCTAssertEqual(statistics.unreadable, 0)
        XCTAssertEqual(errors.messages, [])
        XCTAssertEqual(queue.dropped, 0)
    }

    /// Takes events until `done` holds for what was taken, or `seconds` passed.
    /// The reader rests between drains, so a burst of connections reaches `deliver` in a few
    /// batches, not one call per event; and `stop()` does not wait out a rest.
    func testBurstsAreDeliveredInBatchesAndStopIsPrompt() throws {
        let lab = try RoutedLab.make(for: self)
        try lab.loadRouterRules("""
            table inet ct-events-test {
                chain forward {
                    type filter hook forward priority 0; policy accept;
                    ct state new counter
                }
            }
            """)
        let queue = BoundedQueue<[ConntrackEvent]>(capacity: 10_000)
        var configuration = ConntrackEventReader.Configuration()
        configuration.pauseMilliseconds = 200
        let reader = try ConntrackEventReader(configuration: configuration, netnsPath: lab.router.path) { _ = queue.offer([$0]) }
        try reader.start()
        // 40 connections to a closed port of the server, 3 ms apart: each is a NEW event (the SYN)
        // and a DESTROY event (the RST ends the entry). A reader that woke per event would deliver
        // them in dozens of calls; this one rests 200 ms after its first drain, by which time all
        // have queued.
        try lab.python(lab.client, """
            import socket, time
            for port in range(44000, 44040):
                time.sleep(0.003)
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("", port)); t.settimeout(2)
                try: t.connect(("\(RoutedLab.serverV4)", 7299))
                except ConnectionRefusedError: pass
                t.close()
            """)
        var batches: [[ConntrackEvent]] = []
        let deadline = Date().addingTimeInterval(5)
        while batches.joined().filter({ (44000..<44040).contains($0.entry.sourcePort ?? 0) }).count < 80, Date() < deadline {
            batches += queue.take(timeoutMilliseconds: 100)
        }
        let ours = batches.map { $0.filter { (44000..<44040).contains($0.entry.sourcePort ?? 0) } }.filter { !$0.isEmpty }
        XCTAssertEqual(ours.joined().count, 80, "every NEW and DESTROY arrives")
        XCTAssertLessThanOrEqual(ours.count, 8, "80 events in \(ours.count) deliveries: \(ours.map(\.count))")

        let started = Date()
        reader.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.15, "stop() cuts the 200 ms rest short")
    }

    private func collect(_ queue: BoundedQueue<ConntrackEvent>, seconds: Int, until done: ([ConntrackEvent]) -> Bool) -> [ConntrackEvent] {
        var events: [ConntrackEvent] = []
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        while !done(events), Date() < deadline {
            events += queue.take(timeoutMilliseconds: 100)
        }
        return events
    }
}

final class ErrorLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    func append(_ error: Error) {
        lock.lock()
        stored.append("\(error)")
        lock.unlock()
    }

    var messages: [String] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}
