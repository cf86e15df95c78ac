import Foundation
import XCTest

/// A pod may send only from its own addresses. Without that check a pod could forge the address of
/// a pod that a policy admits and get its packets through: here b2 forges b1's address towards a2,
/// whose ingress admits only b1 (b2 simply puts b1's addresses on its own interface). What reaches
/// a2 is counted inside a2's own namespace.
final class SpoofingTests: EnforcementTestCase {
    static let onlyClientReachesDB = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: db-from-client, namespace: alpha}
        spec:
          podSelector: {matchLabels: {app: db}}
          ingress:
          - from:
            - namespaceSelector: {matchLabels: {team: beta}}
              podSelector: {matchLabels: {app: client}}
            ports: [{protocol: UDP, port: 5353}]

        """

    /// Sends `count` UDP datagrams from `pod` to a2:5353 with the given source address, which the
    /// pod must have on its interface.
    func send(from pod: String, source: String, count: Int = 5, _ family: AddressFamily) throws {
        let destination = lab.address(of: "a2", family)
        let script = """
            import socket, sys
            family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((sys.argv[1], 0))
            for _ in range(int(sys.argv[3])):
                s.sendto(b'spoof', (sys.argv[2], 5353))
            """
        let result = try Command.run(["ip", "netns", "exec", lab.netns(pod), "python3", "-c", script, source, destination, "\(count)"],
                                     timeout: 20)
        XCTAssertEqual(result.status, 0, "sending from \(pod) as \(source): \(result.stderr)")
    }

    /// Packets from `source` to UDP 5353 that reached a2's namespace (its input hook).
    func received(from source: String) throws -> Int {
        let listing = try Command.run(["ip", "netns", "exec", lab.netns("a2"), "nft", "list", "chain", "inet", "spy", "in"],
                                      timeout: 20).stdout
        for line in listing.split(separator: "\n") where line.contains(source) {
            if let range = line.range(of: #"packets (\d+)"#, options: .regularExpression) {
                return Int(line[range].split(separator: " ")[1]) ?? -1
            }
        }
        return -1
    }

    func testAPodCannotUseAnotherPodsAddress() throws {
        try applyPolicy("db-from-client", Self.onlyClientReachesDB)
        // The node's reverse-path filter would drop forged IPv4 sources by itself (IPv6 has none):
        // switch it off in the lab's node namespace, so that what is tested is the agent's check.
        _ = try Command.run(["ip", "netns", "exec", lab.nodeNamespace, "sh", "-c",
                             "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done"], timeout: 20)
        // A counter in a2's own namespace (the test's, not the agent's): what arrives, by source.
        let client4 = lab.address(of: "b1", .v4), client6 = lab.address(of: "b1", .v6)
        for command in [
            ["nft", "add", "table", "inet", "spy"],
            ["nft", "add", "chain", "inet", "spy", "in", "{ type filter hook input priority -10; }"],
            ["nft", "add", "rule", "inet", "spy", "in", "ip", "saddr", client4, "udp", "dport", "5353", "counter"],
            ["nft", "add", "rule", "inet", "spy", "in", "ip6", "saddr", client6, "udp", "dport", "5353", "counter"],
        ] {
            _ = try Command.run(["ip", "netns", "exec", lab.netns("a2")] + command, timeout: 20)
        }

        _ = try Command.run(["ip", "-n", lab.netns("b2"), "addr", "add", client4 + "/32", "dev", "eth0"], timeout: 20)
        _ = try Command.run(["ip", "-n", lab.netns("b2"), "-6", "addr", "add", client6 + "/128", "dev", "eth0", "nodad"], timeout: 20)
        for (family, client) in [(AddressFamily.v4, client4), (.v6, client6)] {
            // The real client gets through: the counter works and the policy admits b1.
            try send(from: "b1", source: client, family)
            XCTAssertEqual(try received(from: client), 5, "\(family): b1's own datagrams")
            // b2 forging b1's address does not.
            try send(from: "b2", source: client, count: 7, family)
            XCTAssertEqual(try received(from: client), 5, "\(family): b2's forged datagrams must not reach a2")
        }
        // And they were dropped by the source check, not by chance elsewhere.
        let forward = try Command.run(["ip", "netns", "exec", lab.nodeNamespace, "nft", "list", "chain", "inet", "palisade", "forward"],
                                      timeout: 20).stdout
        let dropped = forward.split(separator: "\n").filter { $0.contains("spoofed source address") }.compactMap { line -> Int? in
            guard let range = line.range(of: #"packets (\d+)"#, options: .regularExpression) else { return nil }
            return Int(line[range].split(separator: " ")[1])
        }
        XCTAssertEqual(dropped.reduce(0, +), 14, forward)
        // Allowed traffic still flows both ways.
        assertTraffic(allowed: [udp("b1", "a2"), udp("b1", "a2", port: 5353, .v6), tcp("a1", "b2"), tcp("b2", "a1")], denied: [udp("b2", "a2")])
    }
}
