#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NetworkAddress
import PolicyCompiler
import PolicyModel

/// The running inventory of workloads (issue 7, SOC 2 CC7.1): every endpoint ever seen, with
/// first and last seen, labels and their history, addresses, interface, the policies applied, when
/// its ingress and egress were protected (selected by a policy or under a default deny) and when
/// not, what it may reach in coarse terms (`Access`), and its quarantines. Kept in
/// `<data>/inventory.json`, written atomically, at most every few seconds and at start.
final class Inventory {
    // The file's shape (times as RFC 3339 text); in memory the same with times in milliseconds.
    struct Interval: Codable, Equatable {
        var from: String
        var to: String?
        var protected: Bool
    }
    struct LabelChange: Codable, Equatable {
        var time: String
        var labels: [String: String]
    }
    struct QuarantinePeriod: Codable, Equatable {
        var start: String
        var end: String?
        var reason: String
        var actor: String
    }
    struct Entry: Codable {
        var namespace: String
        var name: String
        var firstSeen: String
        var lastSeen: String
        var present: Bool
        var labels: [String: String]
        var labelHistory: [LabelChange]
        var addresses: [String]
        var interface: String?
        var local: Bool
        var policies: [String]
        var protection: [String: [Interval]]
        var access: Access
        var quarantines: [QuarantinePeriod]
    }
    struct File: Codable {
        var updated: String
        var clusterRanges: [String]
        var endpoints: [Entry]
    }

    /// One endpoint in memory: ten thousand of them must stay small.
    struct Record {
        struct Span { var from: Int64; var to: Int64?; var protected: Bool }
        struct Quarantined { var start: Int64; var end: Int64?; var reason: String; var actor: String }
        var namespace: String
        var name: String
        var firstSeen: Int64
        var lastSeen: Int64
        var present: Bool
        var labels: [String: String]
        var labelHistory: [(time: Int64, labels: [String: String])]
        var addresses: [IPAddress]
        var interface: String?
        var local: Bool
        var policies: [String]
        var ingress: [Span]
        var egress: [Span]
        var access: Access
        var quarantines: [Quarantined]
    }

    let path: String
    let clusterNetworks: [CIDR]
    private var entries: [String: Record] = [:]
    private var saved: Date?
    private var dirty = false

    init(path: String, clusterNetworks: [CIDR] = AccessAnalyzer.defaultClusterNetworks) {
        self.path = path
        self.clusterNetworks = clusterNetworks
        if let data = FileManager.default.contents(atPath: path) {
            if let file = try? JSONDecoder().decode(File.self, from: data) {
                for entry in file.endpoints { entries["\(entry.namespace)/\(entry.name)"] = Record(entry) }
            } else {
                // Keep what cannot be read for a person to look at, rather than write over its history.
                _ = rename(path, path + ".unreadable-\(Self.now())")
            }
        }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    static func text(_ milliseconds: Int64) -> String { EventTime.format(milliseconds: milliseconds) }
    static func milliseconds(_ text: String) -> Int64 { EventTime.parseMilliseconds(text) ?? 0 }

    /// Brings the entries of these endpoints up to date (`nil` ids: every endpoint of the session;
    /// the ones not in it any more are then marked gone).
    func update(from session: CompilerSession, ids: Set<String>?) {
        let time = Self.now()
        var analyzer = AccessAnalyzer(state: session.state, clusterNetworks: clusterNetworks)
        let state = session.state
        let targets: [String] = ids.map(Array.init) ?? state.endpoints.map(\.id)
        for id in targets {
            guard let compiled = session.endpoint(id) else {
                gone(id, at: time)
                continue
            }
            observe(compiled, access: analyzer.access(of: compiled), quarantine: compiled.quarantine, at: time)
        }
        if ids == nil {
            let present = Set(targets)
            for id in entries.keys where !present.contains(id) { gone(id, at: time) }
        }
        dirty = true
    }

    private func observe(_ compiled: CompiledEndpoint, access: Access, quarantine: Quarantine?, at time: Int64) {
        let endpoint = compiled.endpoint
        let id = endpoint.id
        var entry = entries[id] ?? Record(namespace: endpoint.namespace, name: endpoint.name, firstSeen: time, lastSeen: time,
                                          present: true, labels: endpoint.labels, labelHistory: [(time, endpoint.labels)],
                                          addresses: [], interface: nil, local: false, policies: [],
                                          ingress: [], egress: [], access: access, quarantines: [])
        if !entry.present { entry.present = true }
        if entry.labels != endpoint.labels {
            entry.labels = endpoint.labels
            entry.labelHistory.append((time, endpoint.labels))
        }
        entry.lastSeen = time
        entry.addresses = endpoint.addresses
        entry.interface = compiled.interface ?? endpoint.interface
        entry.local = compiled.interface != nil
        for policy in compiled.ingress.policyIDs + compiled.egress.policyIDs where !entry.policies.contains(policy) {
            entry.policies.append(policy)
        }
        entry.access = access
        func track(_ spans: inout [Record.Span], _ profile: EndpointProfile) {
            let protected: Bool
            switch profile {
            case .defaultAllow: protected = false
            case .defaultDeny, .policies: protected = true
            }
            if let last = spans.last, last.to == nil, last.protected == protected { return }
            if !spans.isEmpty, spans[spans.count - 1].to == nil { spans[spans.count - 1].to = time }
            spans.append(Record.Span(from: time, to: nil, protected: protected))
        }
        track(&entry.ingress, compiled.ingress)
        track(&entry.egress, compiled.egress)
        let open = entry.quarantines.last.map { $0.end == nil } ?? false
        if let quarantine, !open {
            entry.quarantines.append(Record.Quarantined(start: time, end: nil, reason: quarantine.reason,
                                                        actor: quarantine.requestedBy ?? "state directory"))
        } else if quarantine == nil, open {
            entry.quarantines[entry.quarantines.count - 1].end = time
        }
        entries[id] = entry
    }

    private func gone(_ id: String, at time: Int64) {
        guard var entry = entries[id], entry.present else { return }
        entry.present = false
        entry.lastSeen = time
        if !entry.ingress.isEmpty, entry.ingress[entry.ingress.count - 1].to == nil { entry.ingress[entry.ingress.count - 1].to = time }
        if !entry.egress.isEmpty, entry.egress[entry.egress.count - 1].to == nil { entry.egress[entry.egress.count - 1].to = time }
        if let last = entry.quarantines.last, last.end == nil { entry.quarantines[entry.quarantines.count - 1].end = time }
        entries[id] = entry
    }

    /// Writes the file if something changed and the last write is `interval` seconds old (or `force`).
    func save(force: Bool = false, interval: TimeInterval = 10) throws {
        guard dirty || force else { return }
        let now = Date()
        if !force, let saved, now.timeIntervalSince(saved) < interval { return }
        // Present endpoints were seen up to now.
        let time = Self.now()
        // By position: assigning by key while iterating the dictionary would copy all of it.
        for index in entries.indices where entries.values[index].present { entries.values[index].lastSeen = time }
        try write(updated: Self.text(time))
        saved = now
        dirty = false
    }

    var count: Int { entries.count }

    /// Writes the file one endpoint at a time (the shape of `File`, keys sorted), beside it and
    /// then renamed over it: ten thousand entries never sit in memory as one JSON document.
    private func write(updated: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try JSONFile.stream(to: path) { write in
            var chunk = Data("{\"clusterRanges\":".utf8) + (try encoder.encode(clusterNetworks.map(\.description)))
            chunk.append(Data(",\"endpoints\":[".utf8))
            var first = true
            for id in entries.keys.sorted() {
                guard let record = entries[id] else { continue }
                if !first { chunk.append(UInt8(ascii: ",")) }
                first = false
                chunk.append(try encoder.encode(Entry(record)))
                if chunk.count >= 1 << 16 {
                    try write(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            chunk.append(Data("],\"updated\":".utf8))
            chunk.append(try encoder.encode(updated))
            chunk.append(UInt8(ascii: "}"))
            try write(chunk)
        }
    }
}

extension Inventory.Entry {
    init(_ record: Inventory.Record) {
        func spans(_ list: [Inventory.Record.Span]) -> [Inventory.Interval] {
            list.map { Inventory.Interval(from: Inventory.text($0.from), to: $0.to.map(Inventory.text), protected: $0.protected) }
        }
        self.init(namespace: record.namespace, name: record.name, firstSeen: Inventory.text(record.firstSeen),
                  lastSeen: Inventory.text(record.lastSeen), present: record.present, labels: record.labels,
                  labelHistory: record.labelHistory.map { Inventory.LabelChange(time: Inventory.text($0.time), labels: $0.labels) },
                  addresses: record.addresses.map(\.description), interface: record.interface, local: record.local,
                  policies: record.policies, protection: ["ingress": spans(record.ingress), "egress": spans(record.egress)],
                  access: record.access,
                  quarantines: record.quarantines.map {
                      Inventory.QuarantinePeriod(start: Inventory.text($0.start), end: $0.end.map(Inventory.text), reason: $0.reason, actor: $0.actor)
                  })
    }
}

extension Inventory.Record {
    init(_ entry: Inventory.Entry) {
        func spans(_ list: [Inventory.Interval]?) -> [Span] {
            (list ?? []).map { Span(from: Inventory.milliseconds($0.from), to: $0.to.map(Inventory.milliseconds), protected: $0.protected) }
        }
        self.init(namespace: entry.namespace, name: entry.name, firstSeen: Inventory.milliseconds(entry.firstSeen),
                  lastSeen: Inventory.milliseconds(entry.lastSeen), present: entry.present, labels: entry.labels,
                  labelHistory: entry.labelHistory.map { (Inventory.milliseconds($0.time), $0.labels) },
                  addresses: entry.addresses.compactMap(IPAddress.init), interface: entry.interface, local: entry.local,
                  policies: entry.policies, ingress: spans(entry.protection["ingress"]), egress: spans(entry.protection["egress"]),
                  access: entry.access,
                  quarantines: entry.quarantines.map {
                      Quarantined(start: Inventory.milliseconds($0.start), end: $0.end.map(Inventory.milliseconds), reason: $0.reason, actor: $0.actor)
                  })
    }
}
