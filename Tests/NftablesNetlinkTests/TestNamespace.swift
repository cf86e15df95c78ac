// A throwaway network namespace per test, so no test ever touches the machine's own ruleset.
// Names carry the pid and a random tag; namespaces left behind by a crashed run (its pid gone)
// are removed on the next run.
import Foundation
import NftablesNetlink
import XCTest

struct CommandResult {
    let status: Int32
    let output: String
    let error: String
}

enum Command {
    @discardableResult
    static func run(_ arguments: [String]) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + (environment["PATH"] ?? "")
        process.environment = environment
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus,
                             output: String(decoding: outputData, as: UTF8.self),
                             error: String(decoding: errorData, as: UTF8.self))
    }
}

struct TestNamespace {
    static let prefix = "palisade-nltest-"
    let name: String
    var path: String { "/var/run/netns/\(name)" }

    /// Skips (or, with CI=true, fails) when not root; otherwise creates a fresh namespace.
    static func create() throws -> TestNamespace {
        guard geteuid() == 0 else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("NftablesNetlinkTests need root (network namespaces, CAP_NET_ADMIN)")
                throw XCTSkip("not root")
            }
            throw XCTSkip("NftablesNetlinkTests need root (network namespaces, CAP_NET_ADMIN)")
        }
        removeStale()
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let namespace = TestNamespace(name: "\(prefix)\(getpid())-\(tag)")
        let result = try Command.run(["ip", "netns", "add", namespace.name])
        guard result.status == 0 else {
            throw XCTSkip("cannot create a network namespace: \(result.error)")
        }
        return namespace
    }

    func remove() {
        _ = try? Command.run(["ip", "netns", "delete", name])
    }

    /// Runs a command inside the namespace.
    func run(_ arguments: [String]) throws -> CommandResult {
        try Command.run(["ip", "netns", "exec", name] + arguments)
    }

    /// `nft -j list table FAMILY NAME` in this namespace, parsed: the oracle that is not our code.
    func nftJSON(family: String, table: String) throws -> [[String: Any]] {
        let result = try run(["nft", "-j", "list", "table", family, table])
        guard result.status == 0 else {
            throw NSError(domain: "nft", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.error])
        }
        let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8))
        guard let root = json as? [String: Any], let items = root["nftables"] as? [[String: Any]] else {
            throw NSError(domain: "nft", code: 0, userInfo: [NSLocalizedDescriptionKey: "unexpected JSON: \(result.output.prefix(200))"])
        }
        return items
    }

    private static func removeStale() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns") else { return }
        for name in names where name.hasPrefix(prefix) {
            let pidText = name.dropFirst(prefix.count).prefix { $0 != "-" }
            guard let pid = Int32(pidText), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? Command.run(["ip", "netns", "delete", name])
        }
    }
}

/// What `nft -j` says about one table, reduced to what the tests compare.
struct NftListing {
    var chains: Set<String> = []
    var baseChains: [String: (hook: String, prio: Int, policy: String)] = [:]
    /// Set name -> elements as nft prints them (addresses as text).
    var setElements: [String: Set<String>] = [:]
    /// Map name -> key -> verdict text ("jump chain", "drop", ...).
    var mapElements: [String: [String: String]] = [:]
    /// Chain -> comments of its rules, in order (nil for a rule without comment).
    var comments: [String: [String?]] = [:]
    var ruleCounts: [String: Int] = [:]

    init(_ items: [[String: Any]]) {
        for item in items {
            if let chain = item["chain"] as? [String: Any], let name = chain["name"] as? String {
                chains.insert(name)
                if let hook = chain["hook"] as? String {
                    baseChains[name] = (hook, chain["prio"] as? Int ?? 0, chain["policy"] as? String ?? "")
                }
            }
            if let set = item["set"] as? [String: Any], let name = set["name"] as? String {
                let elements = (set["elem"] as? [Any] ?? []).map(NftListing.elementText)
                setElements[name] = Set(elements)
            }
            if let map = item["map"] as? [String: Any], let name = map["name"] as? String {
                var entries: [String: String] = [:]
                for case let pair as [Any] in map["elem"] as? [Any] ?? [] where pair.count == 2 {
                    entries["\(pair[0])"] = NftListing.verdictText(pair[1])
                }
                mapElements[name] = entries
            }
            if let rule = item["rule"] as? [String: Any], let chain = rule["chain"] as? String {
                comments[chain, default: []].append(rule["comment"] as? String)
                ruleCounts[chain, default: 0] += 1
            }
        }
    }

    /// A set element as nft's text would print it: `{"prefix": {"addr": "198.51.100.0", "len": 24}}`
    /// -> "198.51.100.0/24", `{"range": [80, 90]}` -> "80-90", `{"concat": ["198.18.0.1", 80]}` ->
    /// "198.18.0.1 . 80"; plain values as they are.
    static func elementText(_ value: Any) -> String {
        guard let object = value as? [String: Any], let (kind, argument) = object.first else { return "\(value)" }
        switch kind {
        case "prefix":
            guard let prefix = argument as? [String: Any] else { break }
            return "\(prefix["addr"] ?? "?")/\(prefix["len"] ?? "?")"
        case "range":
            guard let bounds = argument as? [Any], bounds.count == 2 else { break }
            return elementText(bounds[0]) + "-" + elementText(bounds[1])
        case "concat":
            guard let parts = argument as? [Any] else { break }
            return parts.map(elementText).joined(separator: " . ")
        case "elem":
            // An element with attributes (timeout, comment...): its value.
            if let attributes = argument as? [String: Any], let inner = attributes["val"] { return elementText(inner) }
        default:
            break
        }
        return "\(value)"
    }

    /// `{"jump": {"target": "c"}}` -> "jump c"; `{"drop": null}` -> "drop".
    static func verdictText(_ value: Any) -> String {
        guard let object = value as? [String: Any], let (verdict, argument) = object.first else { return "\(value)" }
        if let target = (argument as? [String: Any])?["target"] as? String { return "\(verdict) \(target)" }
        return verdict
    }
}

/// A test that gets its own network namespace and a connection programming it; both go away
/// after the test, also when it fails.
class NamespacedConnectionTestCase: XCTestCase {
    var namespace: TestNamespace!
    var connection: NftablesConnection!
    let tableName = "palisade"

    override func setUpWithError() throws {
        let namespace = try TestNamespace.create()
        self.namespace = namespace
        addTeardownBlock { namespace.remove() }
        connection = try NftablesConnection(netnsPath: namespace.path)
    }

    override func tearDown() {
        connection = nil
        super.tearDown()
    }
}
