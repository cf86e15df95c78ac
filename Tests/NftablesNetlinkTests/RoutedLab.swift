// A small routed lab for the kernel readers: client -- router -- server, three throwaway network
// namespaces joined by two veth pairs, IPv4 and IPv6 from the benchmarking and documentation
// ranges, the router forwarding. Rules, sysctls and readers go into the router's namespace. Every
// namespace (and every process started in one) is removed in teardown, also when the test fails.
import Foundation
import NetworkAddress
import XCTest

struct RoutedLab {
    static let clientV4 = IPAddress("198.18.1.2")!
    static let serverV4 = IPAddress("198.18.2.2")!
    static let clientV6 = IPAddress("2001:db8:1::2")!
    static let serverV6 = IPAddress("2001:db8:2::2")!

    let client: TestNamespace
    let router: TestNamespace
    let server: TestNamespace
    /// The router's interface towards the client ("rc") and towards the server ("rs").
    let routerClientSideIndex: UInt32
    let routerServerSideIndex: UInt32

    static func make(for test: XCTestCase) throws -> RoutedLab {
        var namespaces: [TestNamespace] = []
        for _ in 0..<3 {
            let namespace = try TestNamespace.create()
            test.addTeardownBlock { namespace.remove() }
            namespaces.append(namespace)
        }
        let (client, router, server) = (namespaces[0], namespaces[1], namespaces[2])
        // No duplicate address detection on the interfaces about to be made (link-local ones
        // included): tentative addresses delay neighbour discovery and with it the first packets.
        for namespace in namespaces {
            try check(namespace.run(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]))
        }
        // Created inside the client and server namespaces, peers straight into the router's: no
        // interface ever exists in the test runner's own namespace.
        try check(Command.run(["ip", "-n", client.name, "link", "add", "c0", "type", "veth", "peer", "name", "rc", "netns", router.name]))
        try check(Command.run(["ip", "-n", server.name, "link", "add", "s0", "type", "veth", "peer", "name", "rs", "netns", router.name]))
        let addresses: [(TestNamespace, String, String, String)] = [
            (client, "c0", "198.18.1.2/24", "2001:db8:1::2/64"), (server, "s0", "198.18.2.2/24", "2001:db8:2::2/64"),
            (router, "rc", "198.18.1.1/24", "2001:db8:1::1/64"), (router, "rs", "198.18.2.1/24", "2001:db8:2::1/64"),
        ]
        for namespace in [client, router, server] {
            try check(namespace.run(["ip", "link", "set", "lo", "up"]))
        }
        for (namespace, device, v4, v6) in addresses {
            try check(namespace.run(["ip", "addr", "add", v4, "dev", device]))
            try check(namespace.run(["ip", "addr", "add", v6, "dev", device, "nodad"]))
            try check(namespace.run(["ip", "link", "set", device, "up"]))
        }
        for (namespace, v4, v6) in [(client, "198.18.1.1", "2001:db8:1::1"), (server, "198.18.2.1", "2001:db8:2::1")] {
            try check(namespace.run(["ip", "route", "add", "default", "via", v4]))
            try check(namespace.run(["ip", "-6", "route", "add", "default", "via", v6]))
        }
        try check(router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]))
        return RoutedLab(client: client, router: router, server: server,
                         routerClientSideIndex: try interfaceIndex(router, "rc"),
                         routerServerSideIndex: try interfaceIndex(router, "rs"))
    }

    /// `nft -f -` of `ruleset` in the router's namespace.
    func loadRouterRules(_ ruleset: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-lab-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).nft")
        try ruleset.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try Self.check(router.run(["nft", "-f", file.path]))
    }

    /// Runs `python3 -c script` in `namespace` to its end (at most `timeout` seconds); its output.
    @discardableResult
    func python(_ namespace: TestNamespace, _ script: String, timeout: Int = 60) throws -> String {
        try Self.check(namespace.run(["timeout", "\(timeout)", "python3", "-c", script])).output
    }

    /// Starts `python3 -c script` in `namespace`, waits until it prints "ready", and stops it in
    /// teardown (before the namespaces go).
    func startPython(_ namespace: TestNamespace, _ script: String, test: XCTestCase) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace.name, "python3", "-c", script]
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        test.addTeardownBlock {
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

    private static func interfaceIndex(_ namespace: TestNamespace, _ device: String) throws -> UInt32 {
        // `5: rc@if2: <BROADCAST,...`
        let line = try check(namespace.run(["ip", "-o", "link", "show", "dev", device])).output
        guard let index = UInt32(line.prefix { $0 != ":" }) else {
            throw NSError(domain: "lab", code: 2, userInfo: [NSLocalizedDescriptionKey: "no interface index in: \(line)"])
        }
        return index
    }

    @discardableResult
    static func check(_ result: CommandResult) throws -> CommandResult {
        guard result.status == 0 else {
            throw NSError(domain: "command", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.error + result.output])
        }
        return result
    }
}
