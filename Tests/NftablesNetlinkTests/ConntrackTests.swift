// ConntrackConnection against the real kernel: a client namespace A and a server namespace B
// joined by a veth, an nft rule in B that makes B track connections, long-lived TCP connections
// and UDP flows from A to B over IPv4 and IPv6, plus entries inserted with `conntrack -I` (NAT-like
// reply tuples, zones, ICMP). `conntrack -L` inside B is the independent oracle. Needs root
// (skipped otherwise, failed when CI=true). The codec and retry tests at the end need nothing.
import CNftnl
import Foundation
import NetworkAddress
import XCTest
@testable import NftablesNetlink

final class ConntrackTests: XCTestCase {
    private let clientV4 = IPAddress("198.18.0.1")!
    private let serverV4 = IPAddress("198.18.0.2")!
    private let clientV6 = IPAddress("2001:db8::1")!
    private let serverV6 = IPAddress("2001:db8::2")!
    /// Connections per family from A to B.
    private let tcpConnections = 4
    private let udpFlows = 3

    // MARK: Real kernel

    func testEntriesListWhatTheConntrackToolLists() throws {
        let lab = try makeLab()
        try insertEntries(lab.server, Self.bystanderEntries + Self.clientEntriesWithoutTraffic)
        let connection = try ConntrackConnection(netnsPath: lab.server.path)

        let listed = try connection.entries()
        let cli = try conntrackList(lab.server)
        XCTAssertEqual(listed.count, cli.count, "entries() vs conntrack -L")
        XCTAssertEqual(Set(listed.map(CLIEntry.init)), Set(cli))
        XCTAssertEqual(listed.filter { $0.family == .ipv4 }.count, cli.filter { $0.source.family == .ipv4 }.count)
        // The traffic is there, in both families, as TCP and UDP.
        for (client, server) in [(clientV4, serverV4), (clientV6, serverV6)] {
            let flows = listed.filter { $0.source == client && $0.destination == server }
            XCTAssertEqual(flows.filter { $0.protocolNumber == 6 && $0.destinationPort == 7000 }.count, tcpConnections, "\(client)")
            XCTAssertEqual(flows.filter { $0.protocolNumber == 17 && $0.destinationPort == 7001 }.count, udpFlows, "\(client)")
        }
        let natted = try XCTUnwrap(listed.first { $0.zone == 7 })
        XCTAssertEqual(natted.description, "udp 198.18.5.5:1000 -> 198.18.9.9:53 (reply 198.18.0.1 -> 198.18.5.5) zone 7")
        let echo = try XCTUnwrap(listed.first { $0.protocolNumber == 58 })
        XCTAssertNil(echo.sourcePort)
        XCTAssertEqual(echo.description, "icmpv6 2001:db8::1 -> 2001:db8::2")
    }

    func testDeletesExactlyTheEntriesOfTheAddressFamilyByFamily() throws {
        let lab = try makeLab()
        try insertEntries(lab.server, Self.bystanderEntries + Self.clientEntriesWithoutTraffic)
        let connection = try ConntrackConnection(netnsPath: lab.server.path)
        let before = try conntrackList(lab.server)
        let clientV4Entries = before.filter { $0.involves(clientV4) }
        let clientV6Entries = before.filter { $0.involves(clientV6) }
        // 4 TCP + 3 UDP of traffic, plus the NAT-like, zoned and ICMP entries inserted.
        XCTAssertEqual(clientV4Entries.count, tcpConnections + udpFlows + 3)
        XCTAssertEqual(clientV6Entries.count, tcpConnections + udpFlows + 1)

        let deletedV4 = try connection.deleteEntries(involving: [clientV4])
        let afterV4 = try conntrackList(lab.server)
        XCTAssertEqual(deletedV4, before.count - afterV4.count, "return value vs what conntrack -L saw disappear")
        XCTAssertEqual(deletedV4, clientV4Entries.count)
        XCTAssertEqual(Set(afterV4), Set(before).subtracting(clientV4Entries), "exactly A's IPv4 entries are gone")

        let deletedV6 = try connection.deleteEntries(involving: [clientV6])
        let afterV6 = try conntrackList(lab.server)
        XCTAssertEqual(deletedV6, afterV4.count - afterV6.count)
        XCTAssertEqual(deletedV6, clientV6Entries.count)
        XCTAssertEqual(Set(afterV6), Set(afterV4).subtracting(clientV6Entries))
        XCTAssertEqual(afterV6.count, Self.bystanderEntries.count, "only the bystanders are left")

        // Nothing of A's is left to delete.
        XCTAssertEqual(try connection.deleteEntries(involving: [clientV4, clientV6]), 0)
    }

    func testAnAddressWithoutEntriesDeletesNothing() throws {
        let lab = try makeLab()
        try insertEntries(lab.server, Self.bystanderEntries)
        let connection = try ConntrackConnection(netnsPath: lab.server.path)
        let before = try conntrackList(lab.server)
        XCTAssertFalse(before.isEmpty)

        XCTAssertEqual(try connection.deleteEntries(involving: [IPAddress("198.18.200.200")!, IPAddress("2001:db8:ffff::1")!]), 0)
        XCTAssertEqual(try connection.deleteEntries(involving: []), 0)
        XCTAssertEqual(Set(try conntrackList(lab.server)), Set(before))
    }

    /// An entry deleted by someone else between the dump and the delete answers ENOENT: not
    /// counted, no error, and the other deletes go through.
    func testEntriesThatVanishAfterTheDumpAreSkipped() throws {
        let namespace = try TestNamespace.create()
        addTeardownBlock { namespace.remove() }
        try insertEntries(namespace, Self.bystanderEntries + Self.clientEntriesWithoutTraffic)
        let connection = try ConntrackConnection(netnsPath: namespace.path)
        let dumped = try connection.dump(.ipv4) + connection.dump(.ipv6)
        XCTAssertEqual(dumped.count, Self.bystanderEntries.count + Self.clientEntriesWithoutTraffic.count)
        try check(namespace.run(["conntrack", "-D", "-s", "198.18.0.99"]))  // two of the bystanders, one zoned

        XCTAssertEqual(try connection.delete(dumped), dumped.count - 2)
        XCTAssertEqual(try conntrackList(namespace), [])
    }

    /// Thousands of entries: the dump spans many datagrams and the deletes many requests.
    func testLargeTableIsReadAndCleanedCompletely() throws {
        let namespace = try TestNamespace.create()
        addTeardownBlock { namespace.remove() }
        let count = 10_000
        let quarantined = IPAddress("198.18.1.1")!
        let lines = (0..<count).map { index -> String in
            let source = index % 2 == 0 ? "198.18.1.1" : "198.18.1.3"
            return "-I -s \(source) -d 198.18.\(2 + index / 250).\(index % 250 + 1) -p tcp --sport \(10_000 + index % 50_000) --dport 443 --state ESTABLISHED -t 600"
        }
        try insertEntries(namespace, lines)
        let connection = try ConntrackConnection(netnsPath: namespace.path)

        var clock = ContinuousClock.now
        let listed = try connection.entries()
        let listTime = ContinuousClock.now - clock
        XCTAssertEqual(listed.count, count)
        XCTAssertEqual(Set(listed.map(CLIEntry.init)), Set(try conntrackList(namespace)))

        // A dump abandoned after its first datagram (as after an error) does not disturb the next.
        var request = [UInt8](repeating: 0, count: 64)
        try request.withUnsafeMutableBytes { buffer in
            let length = try ConntrackRequest.dump(into: buffer, family: .ipv4, sequence: 1)
            try connection.socket.send(UnsafeRawBufferPointer(rebasing: buffer[..<length]), what: "abandoned dump")
        }
        var answer = [UInt8](repeating: 0, count: 64 * 1024)
        try answer.withUnsafeMutableBytes { buffer in
            guard case .bytes(let count) = try connection.socket.receive(into: buffer, wait: true) else { return XCTFail("no answer") }
            XCTAssertGreaterThan(count, 1000)
        }
        XCTAssertEqual(try connection.entries().count, count)

        clock = ContinuousClock.now
        let deleted = try connection.deleteEntries(involving: [quarantined])
        let deleteTime = ContinuousClock.now - clock
        XCTAssertEqual(deleted, count / 2)
        let left = try conntrackList(namespace)
        XCTAssertEqual(left.count, count / 2)
        XCTAssertFalse(left.contains { $0.involves(quarantined) })
        print("conntrack: listed \(count) entries in \(listTime), deleted \(deleted) of them in \(deleteTime)")
    }

    // MARK: Without root

    func testCutShortDumpsAreStartedAgainABoundedNumberOfTimes() throws {
        let overrun = NftablesError.system("recvmsg", code: ENOBUFS)
        var attempts: [Int] = []
        let result = try ConntrackConnection.repeatingCutShortDumps(attempts: 4, what: "dump") { attempt -> String in
            attempts.append(attempt)
            if attempt == 0 { throw overrun }
            if attempt == 1 { throw DumpInterrupted() }
            return "complete"
        }
        XCTAssertEqual(result, "complete")
        XCTAssertEqual(attempts, [0, 1, 2])

        attempts = []
        XCTAssertThrowsError(try ConntrackConnection.repeatingCutShortDumps(attempts: 4, what: "dump of the ipv4 conntrack table") { attempt -> Int in
            attempts.append(attempt)
            throw overrun
        }) { error in
            let error = error as? NftablesError
            XCTAssertEqual(error?.kind, .protocolViolation)
            XCTAssertEqual(error?.description, "nftables: dump of the ipv4 conntrack table: No buffer space available (ENOBUFS); the receive buffer overran in each of 4 attempts; the table could not be read completely, try again")
        }
        XCTAssertEqual(attempts, [0, 1, 2, 3])

        // Any other error ends the dump at once.
        attempts = []
        XCTAssertThrowsError(try ConntrackConnection.repeatingCutShortDumps(attempts: 4, what: "dump") { attempt -> Int in
            attempts.append(attempt)
            throw NftablesError.system("recvmsg", code: EBADF)
        })
        XCTAssertEqual(attempts, [0])
    }

    /// A dumped entry, built the way the kernel builds it, parses into the entry and gives back a
    /// delete request carrying the same original tuple and zone.
    func testDumpedEntryParsesAndBecomesADeleteOfItsOriginalTuple() throws {
        var message = [UInt8](repeating: 0, count: 1024)
        let (tuple, parsed) = try message.withUnsafeMutableBytes { buffer -> ([UInt8], DumpedConntrackEntry?) in
            let header = ConntrackRequest.putHeader(at: buffer.baseAddress!, type: IPCTNL_MSG_CT_NEW, flags: 0, family: .ipv6, sequence: 9)
            func putTuple(_ type: ctattr_type, source: IPAddress, destination: IPAddress, ports: (UInt16, UInt16)) {
                let tuple = mnl_attr_nest_start(header, Ctnetlink.attribute(type))
                let ip = mnl_attr_nest_start(header, Ctnetlink.attribute(CTA_TUPLE_IP))
                mnl_attr_put(header, Ctnetlink.attribute(CTA_IP_V6_SRC), 16, source.bytes)
                mnl_attr_put(header, Ctnetlink.attribute(CTA_IP_V6_DST), 16, destination.bytes)
                mnl_attr_nest_end(header, ip)
                let proto = mnl_attr_nest_start(header, Ctnetlink.attribute(CTA_TUPLE_PROTO))
                mnl_attr_put_u8(header, Ctnetlink.attribute(CTA_PROTO_NUM), 6)
                mnl_attr_put_u16(header, Ctnetlink.attribute(CTA_PROTO_SRC_PORT), ports.0.bigEndian)
                mnl_attr_put_u16(header, Ctnetlink.attribute(CTA_PROTO_DST_PORT), ports.1.bigEndian)
                mnl_attr_nest_end(header, proto)
                mnl_attr_nest_end(header, tuple)
            }
            let tupleStart = Int(header.pointee.nlmsg_len)
            putTuple(CTA_TUPLE_ORIG, source: clientV6, destination: serverV6, ports: (40_000, 443))
            let tupleEnd = Int(header.pointee.nlmsg_len)
            putTuple(CTA_TUPLE_REPLY, source: IPAddress("2001:db8::99")!, destination: clientV6, ports: (8443, 40_000))
            mnl_attr_put_u32(header, Ctnetlink.attribute(CTA_STATUS), UInt32(14).bigEndian)
            mnl_attr_put_u16(header, Ctnetlink.attribute(CTA_ZONE), UInt16(3).bigEndian)
            // The tuple's payload: past its own 4-byte attribute header.
            let tuple = Array(buffer[(tupleStart + 4)..<tupleEnd])
            return (tuple, try ConntrackParser.entry(header))
        }
        let dumped = try XCTUnwrap(parsed)
        XCTAssertEqual(dumped.entry.description, "tcp [2001:db8::1]:40000 -> [2001:db8::2]:443 (reply 2001:db8::99 -> 2001:db8::1) zone 3")
        XCTAssertEqual(dumped.entry.family, .ipv6)
        XCTAssertTrue(dumped.entry.involves([IPAddress("2001:db8::99")!]), "a reply address counts")
        XCTAssertFalse(dumped.entry.involves([clientV4, IPAddress("2001:db8::3")!]))
        XCTAssertEqual(dumped.originalTuple, tuple)
        XCTAssertEqual(dumped.zone, 3)

        var request = [UInt8](repeating: 0xee, count: ConntrackRequest.deleteLength(dumped))
        let length = try request.withUnsafeMutableBytes { try ConntrackRequest.delete(dumped, into: $0, sequence: 77) }
        XCTAssertEqual(length, request.count)
        XCTAssertEqual(request.count, 16 + 4 + 4 + tuple.count + 8)
        request.withUnsafeBytes { bytes in
            let header = bytes.load(as: nlmsghdr.self)
            XCTAssertEqual(header.nlmsg_type, UInt16(NFNL_SUBSYS_CTNETLINK) << 8 | UInt16(IPCTNL_MSG_CT_DELETE.rawValue))
            XCTAssertEqual(Int32(header.nlmsg_flags), NLM_F_REQUEST | NLM_F_ACK)
            XCTAssertEqual(header.nlmsg_seq, 77)
        }
        XCTAssertEqual(request[16], UInt8(AF_INET6), "nfgen_family")
        XCTAssertEqual(Array(request[20..<24]), [UInt8(truncatingIfNeeded: tuple.count + 4), UInt8((tuple.count + 4) >> 8),
                                                 UInt8(CTA_TUPLE_ORIG.rawValue), 0x80], "CTA_TUPLE_ORIG | NLA_F_NESTED")
        XCTAssertEqual(Array(request[24..<(24 + tuple.count)]), tuple)
        XCTAssertEqual(Array(request[(24 + tuple.count)...]), [6, 0, UInt8(CTA_ZONE.rawValue), 0, 0, 3, 0, 0], "CTA_ZONE 3, padded")

        // Without a tuple the kernel would flush the whole table: refused before anything is sent.
        let tupleless = DumpedConntrackEntry(entry: dumped.entry, originalTuple: [], zone: nil)
        var room = [UInt8](repeating: 0, count: 256)
        XCTAssertThrowsError(try room.withUnsafeMutableBytes { try ConntrackRequest.delete(tupleless, into: $0, sequence: 1) })
    }

    // MARK: The lab

    private struct Lab {
        let client: TestNamespace
        let server: TestNamespace
    }

    /// Entries that involve neither client address; they must survive every deletion.
    private static let bystanderEntries = [
        "-I -s 198.18.0.99 -d 198.18.0.2 -p tcp --sport 5555 --dport 80 --state ESTABLISHED -t 600",
        "-I -s 198.18.0.2 -d 198.18.0.98 -p udp --sport 53 --dport 6666 -t 600",
        "-I -s 2001:db8::99 -d 2001:db8::2 -p tcp --sport 5555 --dport 80 --state ESTABLISHED -t 600",
        "-I -s 198.18.0.99 -d 198.18.0.2 -p tcp --sport 5556 --dport 80 --state ESTABLISHED -t 600 -w 3",
    ]

    /// Entries of the client's addresses that traffic would not make: the client's address only in
    /// the reply tuple (as after DNAT to it), in a zone, and ICMP tuples without ports.
    private static let clientEntriesWithoutTraffic = [
        "-I -s 198.18.5.5 -d 198.18.9.9 -r 198.18.0.1 -q 198.18.5.5 -p udp --sport 1000 --dport 53 --reply-port-src 53 --reply-port-dst 1000 -t 600 -w 7",
        "-I -s 198.18.0.1 -d 198.18.0.77 -p tcp --sport 4000 --dport 22 --state ESTABLISHED -t 600 -w 3",
        "-I -s 198.18.0.1 -d 198.18.0.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 9 -t 600",
        "-I -s 2001:db8::1 -d 2001:db8::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5 -t 600",
    ]

    /// A (client) and B (server) joined by a veth; B tracks connections; A holds open TCP
    /// connections and UDP flows to B over both families. Everything is removed in teardown,
    /// also when the test fails.
    private func makeLab() throws -> Lab {
        let client = try TestNamespace.create()
        addTeardownBlock { client.remove() }
        let server = try TestNamespace.create()
        addTeardownBlock { server.remove() }

        try check(Command.run(["ip", "-n", client.name, "link", "add", "ct-a", "type", "veth", "peer", "name", "ct-b", "netns", server.name]))
        for (namespace, device, v4, v6) in [(client, "ct-a", clientV4, clientV6), (server, "ct-b", serverV4, serverV6)] {
            try check(namespace.run(["ip", "link", "set", "lo", "up"]))
            try check(namespace.run(["ip", "addr", "add", "\(v4)/24", "dev", device]))
            try check(namespace.run(["ip", "addr", "add", "\(v6)/64", "dev", device, "nodad"]))
            try check(namespace.run(["ip", "link", "set", device, "up"]))
        }
        // Any rule with a ct expression makes the namespace track connections.
        try check(server.run(["nft", "add", "table", "inet", "ct-test"]))
        try check(server.run(["nft", "add", "chain", "inet", "ct-test", "input", "{ type filter hook input priority 0; }"]))
        try check(server.run(["nft", "add", "rule", "inet", "ct-test", "input", "ct", "state", "established", "counter"]))
        // Idle UDP flows must outlive the test.
        try check(server.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=600", "net.netfilter.nf_conntrack_udp_timeout_stream=600"]))

        try startAndAwaitReady(server, script: Self.serverScript(v4: serverV4, v6: serverV6))
        try startAndAwaitReady(client, script: Self.clientScript(servers: [serverV4, serverV6], tcp: tcpConnections, udp: udpFlows))
        return Lab(client: client, server: server)
    }

    private static func serverScript(v4: IPAddress, v6: IPAddress) -> String {
        """
        import socket, threading
        held = []
        def tcp(family, address):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, 7000)); s.listen(64)
            while True:
                held.append(s.accept()[0])
        def udp(family, address):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((address, 7001))
            while True:
                data, peer = s.recvfrom(2048); s.sendto(data, peer)
        for family, address in ((socket.AF_INET, "\(v4)"), (socket.AF_INET6, "\(v6)")):
            threading.Thread(target=tcp, args=(family, address), daemon=True).start()
            threading.Thread(target=udp, args=(family, address), daemon=True).start()
        import time; time.sleep(0.2)
        print("ready", flush=True)
        threading.Event().wait()
        """
    }

    private static func clientScript(servers: [IPAddress], tcp: Int, udp: Int) -> String {
        """
        import socket, threading
        held = []
        for server in [\(servers.map { "\"\($0)\"" }.joined(separator: ", "))]:
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            for _ in range(\(tcp)):
                held.append(socket.create_connection((server, 7000), timeout=5))
            for _ in range(\(udp)):
                s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(5)
                s.sendto(b"ping", (server, 7001)); s.recv(16)
                held.append(s)
        print("ready", flush=True)
        threading.Event().wait()
        """
    }

    /// Starts `python3 -c script` inside the namespace, waits for it to print "ready", and stops it
    /// in teardown (registered before the namespace removal, so it runs first).
    private func startAndAwaitReady(_ namespace: TestNamespace, script: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace.name, "python3", "-c", script]
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        addTeardownBlock {
            process.terminate()
            process.waitUntilExit()
        }
        var seen = Data()
        let deadline = Date().addingTimeInterval(10)
        while !String(decoding: seen, as: UTF8.self).contains("ready") {
            guard process.isRunning, Date() < deadline else {
                let errorText = String(decoding: error.fileHandleForReading.availableData, as: UTF8.self)
                throw NSError(domain: "lab", code: 1, userInfo: [NSLocalizedDescriptionKey: "python in \(namespace.name) did not get ready: \(errorText)"])
            }
            seen += output.fileHandleForReading.availableData
        }
    }

    /// `conntrack -R` of `-I ...` lines, inside the namespace.
    private func insertEntries(_ namespace: TestNamespace, _ lines: [String]) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-ct-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try check(namespace.run(["conntrack", "-R", file.path]))
    }

    @discardableResult
    private func check(_ result: CommandResult) throws -> CommandResult {
        guard result.status == 0 else {
            throw NSError(domain: "command", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.error])
        }
        return result
    }

    // MARK: The oracle

    /// `conntrack -L -f ipv4` and `-f ipv6` inside the namespace, parsed.
    private func conntrackList(_ namespace: TestNamespace) throws -> [CLIEntry] {
        var entries: [CLIEntry] = []
        for family in ["ipv4", "ipv6"] {
            let result = try check(namespace.run(["conntrack", "-L", "-f", family]))
            for line in result.output.split(separator: "\n") where !line.isEmpty {
                entries.append(try XCTUnwrap(CLIEntry(line: String(line)), "cannot parse conntrack line: \(line)"))
            }
        }
        return entries
    }
}

/// One line of `conntrack -L`, reduced to what ConntrackEntry holds:
/// `tcp 6 431999 ESTABLISHED src=A dst=B sport=P dport=Q [UNREPLIED] src=B dst=A sport=Q dport=P [ASSURED] mark=0 zone=3 use=1`.
private struct CLIEntry: Hashable, CustomStringConvertible {
    let protocolNumber: UInt8
    let source: IPAddress
    let destination: IPAddress
    let sourcePort: UInt16?
    let destinationPort: UInt16?
    let replySource: IPAddress
    let replyDestination: IPAddress
    let zone: UInt16

    init?(line: String) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count > 2, let number = UInt8(fields[1]) else { return nil }
        var values: [String: [String]] = [:]
        for field in fields {
            guard let equals = field.firstIndex(of: "=") else { continue }
            values[String(field[..<equals]), default: []].append(String(field[field.index(after: equals)...]))
        }
        guard let sources = values["src"], let destinations = values["dst"], sources.count == 2, destinations.count == 2,
              let source = IPAddress(sources[0]), let destination = IPAddress(destinations[0]),
              let replySource = IPAddress(sources[1]), let replyDestination = IPAddress(destinations[1]) else { return nil }
        protocolNumber = number
        self.source = source
        self.destination = destination
        sourcePort = values["sport"]?.first.flatMap { UInt16($0) }
        destinationPort = values["dport"]?.first.flatMap { UInt16($0) }
        self.replySource = replySource
        self.replyDestination = replyDestination
        zone = values["zone"]?.first.flatMap { UInt16($0) } ?? 0
    }

    init(_ entry: ConntrackEntry) {
        protocolNumber = entry.protocolNumber
        source = entry.source
        destination = entry.destination
        sourcePort = entry.sourcePort
        destinationPort = entry.destinationPort
        replySource = entry.replySource
        replyDestination = entry.replyDestination
        zone = entry.zone
    }

    func involves(_ address: IPAddress) -> Bool {
        [source, destination, replySource, replyDestination].contains(address)
    }

    var description: String {
        "\(protocolNumber) \(source):\(sourcePort.map(String.init) ?? "-") -> \(destination):\(destinationPort.map(String.init) ?? "-") reply \(replySource) -> \(replyDestination) zone \(zone)"
    }
}
