import AgentCore
@testable import Compliance
import Foundation

/// A scripted week on one node, written as the files the agent keeps in its data directory: pods
/// come and go, alice and bob change policies (one change fails), one quarantine and its release,
/// flows allowed and denied, and an inventory in which dev/scratch-1 is not protected.
struct Scenario {
    static let period = Period(from: time("2026-11-01T00:00:00.000Z"), to: time("2026-11-04T00:00:00.000Z"))

    /// Where the tests write, removed by `removeScratch` when a test class ends.
    static let scratch = NSTemporaryDirectory() + "compliance-tests-\(ProcessInfo.processInfo.processIdentifier)"

    static func removeScratch() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    static func time(_ text: String) -> Date {
        guard let date = ReportTime.parse(text) else { fatalError("bad fixture time \(text)") }
        return date
    }

    static let alice: [String: Any] = ["uid": 1001, "user": "alice", "pid": 0]
    static let bob: [String: Any] = ["uid": 1002, "user": "bob", "pid": 0]
    static let agentd: [String: Any] = ["uid": 0, "user": "agentd", "pid": 0]

    var events: [[String: Any]] = [
        ["time": "2026-10-31T23:00:00.000Z", "type": "agent.start", "actor": agentd, "outcome": "applied"],
        ["time": "2026-11-01T06:00:00.000Z", "type": "object.created", "actor": alice, "target": "shop/db-1", "outcome": "applied",
         "generation": 2, "details": ["kind": "Pod", "name": "shop/db-1", "diff": "+ name: db-1", "file": "/etc/palisade/state/db.yaml"]],
        ["time": "2026-11-01T09:00:00.000Z", "type": "object.created", "actor": alice, "target": "shop/allow-web", "outcome": "applied",
         "generation": 3, "details": ["kind": "NetworkPolicy", "name": "shop/allow-web", "diff": "+ name: allow-web\n+ podSelector.matchLabels[app]: web",
                                      "file": "/etc/palisade/state/allow-web.yaml"]],
        ["time": "2026-11-02T00:00:00.000Z", "type": "object.created", "actor": bob, "target": "dev/scratch-1", "outcome": "applied",
         "generation": 4, "details": ["kind": "Pod", "name": "dev/scratch-1", "diff": "+ name: scratch-1"]],
        ["time": "2026-11-02T09:30:00.000Z", "type": "object.updated", "actor": bob, "target": "shop/allow-web", "outcome": "applied",
         "generation": 5, "details": ["kind": "NetworkPolicy", "name": "shop/allow-web",
                                      "diff": "- ingress[0].ports[0].port: 80\n+ ingress[0].ports[0].port: 8080",
                                      "file": "/etc/palisade/state/allow-web.yaml"]],
        ["time": "2026-11-02T11:00:00.000Z", "type": "object.created", "actor": bob, "target": "deny-egress-internet", "outcome": "failed",
         "error": "kernel rejected the batch: No such file or directory", "generation": 5,
         "details": ["kind": "GlobalNetworkPolicy", "name": "deny-egress-internet", "diff": "+ name: deny-egress-internet",
                     "file": "/etc/palisade/state/gnp.yaml"]],
        ["time": "2026-11-02T12:00:00.000Z", "type": "quarantine", "actor": alice, "target": "shop/web-1", "reason": "beaconing",
         "command": "quarantine", "outcome": "applied", "generation": 6],
        ["time": "2026-11-02T14:00:00.000Z", "type": "release", "actor": alice, "target": "shop/web-1", "reason": "cleaned",
         "command": "release", "outcome": "applied", "generation": 7],
        ["time": "2026-11-03T08:00:00.000Z", "type": "object.deleted", "actor": alice, "target": "shop/old-policy", "outcome": "applied",
         "generation": 8, "details": ["kind": "NetworkPolicy", "name": "shop/old-policy", "diff": "- name: old-policy"]],
        ["time": "2026-11-03T18:00:00.000Z", "type": "object.deleted", "actor": alice, "target": "shop/db-1", "outcome": "applied",
         "generation": 9, "details": ["kind": "Pod", "name": "shop/db-1", "diff": "- name: db-1"]],
        ["time": "2026-11-03T20:00:00.000Z", "type": "drift.repaired", "actor": agentd, "outcome": "applied", "generation": 10],
        ["time": "2026-11-04T01:00:00.000Z", "type": "object.created", "actor": alice, "target": "shop/later", "outcome": "applied",
         "generation": 11, "details": ["kind": "NetworkPolicy", "name": "shop/later", "diff": "+ name: later"]],
    ]
    /// Records up to this seq go to the rotated file `events-000000000005.jsonl`.
    var rotatedThrough = 5

    var scratchProtected = false

    static func workload(_ namespace: String, _ name: String) -> String {
        #"{"labels":{},"name":"\#(name)","namespace":"\#(namespace)","type":"workload"}"#
    }
    static func network(_ address: String) -> String { #"{"address":"\#(address)","type":"network"}"# }
    static func flow(_ start: String, _ source: String, _ destination: String, _ port: Int, _ action: String, decider: String = "policy") -> String {
        #"{"start":"\#(start)","end":"\#(start.replacingOccurrences(of: ":00.000Z", with: ":10.000Z"))","source":\#(source),"destination":\#(destination),"proto":"tcp","dport":\#(port),"action":"\#(action)","policies":[{"reporter":"dst","decider":"\#(decider)"}],"forward":{"packets":3,"bytes":180},"reverse":{"packets":2,"bytes":120},"connectionsStarted":1,"connectionsCompleted":1}"#
    }

    var olderFlows: [String] = [
        flow("2026-10-30T10:00:00.000Z", workload("shop", "web-1"), workload("shop", "db-1"), 5432, "allow"),
        flow("2026-11-01T10:00:00.000Z", workload("shop", "web-1"), workload("shop", "db-1"), 5432, "allow"),
    ]
    var flows: [String] = [
        flow("2026-11-01T10:01:00.000Z", workload("shop", "web-1"), workload("shop", "db-1"), 5432, "allow"),
        flow("2026-11-02T08:00:00.000Z", network("203.0.113.50"), workload("shop", "web-1"), 80, "allow"),
        flow("2026-11-02T12:30:00.000Z", workload("shop", "web-1"), network("203.0.113.9"), 443, "deny", decider: "quarantine"),
        flow("2026-11-03T09:00:00.000Z", network("198.51.100.7"), workload("dev", "scratch-1"), 22, "allow"),
        flow("2026-11-03T09:05:00.000Z", network("198.51.100.7"), workload("shop", "db-1"), 5432, "deny"),
    ]

    var inventory: String {
        let scratch = scratchProtected ? "true" : "false"
        let scratchAccess = scratchProtected ? "false" : "true"
        return """
        {
          "updated": "2026-11-05T00:00:00.000Z",
          "clusterRanges": ["198.18.0.0/15", "2001:db8::/32"],
          "endpoints": [
            {"namespace": "shop", "name": "web-1", "firstSeen": "2026-10-20T00:00:00.000Z", "lastSeen": "2026-11-04T23:00:00.000Z",
             "present": true, "labels": {"app": "web", "tier": "front"},
             "labelHistory": [{"time": "2026-10-20T00:00:00.000Z", "labels": {"app": "web"}},
                              {"time": "2026-11-02T10:00:00.000Z", "labels": {"app": "web", "tier": "front"}}],
             "addresses": ["198.18.1.1", "2001:db8::1:1"], "interface": "pal-web1", "local": true,
             "policies": ["shop/allow-web", "gnp:deny-egress-internet"],
             "protection": {"ingress": [{"from": "2026-10-20T00:00:00.000Z", "to": null, "protected": true}],
                            "egress": [{"from": "2026-10-20T00:00:00.000Z", "to": null, "protected": true}]},
             "access": {"ingressFromInternet": true, "egressToInternet": false, "ingressFromOtherNamespaces": true, "egressToOtherNamespaces": false},
             "quarantines": [{"start": "2026-10-01T00:00:00.000Z", "end": "2026-10-02T00:00:00.000Z", "reason": "old", "actor": "alice"},
                             {"start": "2026-11-02T12:00:00.000Z", "end": "2026-11-02T14:00:00.000Z", "reason": "beaconing", "actor": "alice"}]},
            {"namespace": "shop", "name": "db-1", "firstSeen": "2026-11-01T06:00:00.000Z", "lastSeen": "2026-11-03T18:00:00.000Z",
             "present": false, "labels": {"app": "db"},
             "labelHistory": [{"time": "2026-11-01T06:00:00.000Z", "labels": {"app": "db"}}],
             "addresses": ["198.18.1.2"], "interface": "pal-db1", "local": true, "policies": ["shop/allow-web"],
             "protection": {"ingress": [{"from": "2026-11-01T06:00:00.000Z", "to": "2026-11-02T00:00:00.000Z", "protected": true},
                                        {"from": "2026-11-02T00:00:00.000Z", "to": null, "protected": true}],
                            "egress": [{"from": "2026-11-01T06:00:00.000Z", "to": null, "protected": true}]},
             "access": {"ingressFromInternet": false, "egressToInternet": false, "ingressFromOtherNamespaces": false, "egressToOtherNamespaces": false},
             "quarantines": []},
            {"namespace": "dev", "name": "scratch-1", "firstSeen": "2026-11-02T00:00:00.000Z", "lastSeen": "2026-11-04T23:00:00.000Z",
             "present": true, "labels": {"app": "scratch"},
             "labelHistory": [{"time": "2026-11-02T00:00:00.000Z", "labels": {"app": "scratch"}}],
             "addresses": ["198.18.2.1"], "interface": null, "local": false, "policies": [],
             "protection": {"ingress": [{"from": "2026-11-02T00:00:00.000Z", "to": null, "protected": \(scratch)}],
                            "egress": [{"from": "2026-11-02T00:00:00.000Z", "to": null, "protected": \(scratch)}]},
             "access": {"ingressFromInternet": \(scratchAccess), "egressToInternet": \(scratchAccess),
                        "ingressFromOtherNamespaces": \(scratchAccess), "egressToOtherNamespaces": \(scratchAccess)},
             "quarantines": []},
            {"namespace": "old", "name": "legacy-1", "firstSeen": "2026-09-01T00:00:00.000Z", "lastSeen": "2026-10-15T00:00:00.000Z",
             "present": false, "labels": {}, "labelHistory": [], "addresses": [], "interface": null, "local": true, "policies": [],
             "protection": {"ingress": [], "egress": []},
             "access": {"ingressFromInternet": true, "egressToInternet": true, "ingressFromOtherNamespaces": true, "egressToOtherNamespaces": true},
             "quarantines": []}
          ]
        }
        """
    }

    /// The event lines, chained: seq from 1, prev the SHA-256 of the line before.
    var eventLines: [String] {
        var previous = AuditChainVerification.genesisHash
        return events.enumerated().map { index, event in
            var record = event
            record["seq"] = index + 1
            record["prev"] = previous
            let data = (try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            previous = SHA256.hex(data)
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Writes the data directory; `edit` may change the event lines after they were chained.
    func write(edit: (inout [String]) -> Void = { _ in }) throws -> String {
        let directory = Self.scratch + "/data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var lines = eventLines
        edit(&lines)
        func put(_ name: String, _ lines: [String]) throws {
            try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        try put("events-" + String(repeating: "0", count: 12 - String(rotatedThrough).count) + String(rotatedThrough) + ".jsonl",
                Array(lines.prefix(rotatedThrough)))
        try put("events.jsonl", Array(lines.dropFirst(rotatedThrough)))
        try put("flows.jsonl.1", olderFlows)
        try put("flows.jsonl", flows)
        try Data(inventory.utf8).write(to: URL(fileURLWithPath: directory + "/inventory.json"))
        return directory
    }

    func analysis(edit: (inout [String]) -> Void = { _ in }) throws -> Analysis {
        Analysis(evidence: try Evidence.load(dataDirectory: try write(edit: edit)), period: Self.period)
    }
}
