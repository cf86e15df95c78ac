import Foundation

/// The three table reports of `agentctl report`, each a view of one `Analysis`.
public enum Reports {
    public static func inventory(_ analysis: Analysis) -> ReportTable {
        let rows: [[ReportValue]] = analysis.endpoints.map { item in
            let endpoint = item.endpoint
            return [
                .text(endpoint.namespace), .text(endpoint.name),
                .time(endpoint.firstSeen), .time(endpoint.lastSeen), .boolean(endpoint.present),
                .map(endpoint.labels), .integer(item.labelChanges),
                .list(endpoint.addresses.map(ReportValue.text)), endpoint.interface.map(ReportValue.text) ?? .null,
                .boolean(endpoint.local),
                .boolean(item.ingressProtectedWholePeriod), .boolean(item.egressProtectedWholePeriod),
                .list(endpoint.policies.map(ReportValue.text)),
                .list(item.quarantines.map(quarantine)),
            ]
        }
        let protected = analysis.endpoints.filter(\.isProtected).count
        return ReportTable(
            name: "inventory", title: "Endpoint inventory", period: analysis.period,
            summary: [
                ReportField("endpoints", .integer(analysis.endpoints.count)),
                ReportField("protectedWholePeriod", .integer(protected)),
                ReportField("notProtectedWholePeriod", .integer(analysis.endpoints.count - protected)),
                ReportField("quarantined", .integer(analysis.endpoints.filter { !$0.quarantines.isEmpty }.count)),
                ReportField("inventoryUpdated", .time(analysis.evidence.inventory?.updated)),
            ],
            columns: ["namespace", "name", "firstSeen", "lastSeen", "present", "labels", "labelChanges", "addresses", "interface",
                      "local", "ingressProtectedWholePeriod", "egressProtectedWholePeriod", "policies", "quarantines"],
            rows: rows)
    }

    static func quarantine(_ span: InventoryEndpoint.QuarantineSpan) -> ReportValue {
        .record([ReportField("start", .time(span.start)), ReportField("end", .time(span.end)),
                 ReportField("reason", span.reason.map(ReportValue.text) ?? .null),
                 ReportField("actor", span.actor.map(ReportValue.text) ?? .null)])
    }

    public static func networkAccess(_ analysis: Analysis) -> ReportTable {
        func access(_ item: Analysis.EndpointInScope, _ flag: KeyPath<InventoryEndpoint.Access, Bool>) -> ReportValue {
            item.endpoint.access.map { .boolean($0[keyPath: flag]) } ?? .null
        }
        let rows: [[ReportValue]] = analysis.endpoints.map { item in
            let peers = analysis.peers[item.endpoint.id] ?? []
            return [
                .text(item.endpoint.namespace), .text(item.endpoint.name),
                .boolean(item.ingressProtectedWholePeriod), .boolean(item.egressProtectedWholePeriod),
                access(item, \.ingressFromInternet), access(item, \.egressToInternet),
                access(item, \.ingressFromOtherNamespaces), access(item, \.egressToOtherNamespaces),
                .integer(peers.reduce(0) { $0 + $1.allowed }), .integer(peers.reduce(0) { $0 + $1.denied }),
                .list(peers.map { tally in
                    .record([ReportField("direction", .text(tally.direction)), ReportField("peer", .text(tally.peer)),
                             ReportField("peerType", .text(tally.peerType)),
                             ReportField("allowed", .integer(tally.allowed)), ReportField("denied", .integer(tally.denied))])
                }),
            ]
        }
        let flows = analysis.flowsInPeriod
        return ReportTable(
            name: "network-access", title: "Network access", period: analysis.period,
            summary: [
                ReportField("endpoints", .integer(analysis.endpoints.count)),
                ReportField("ingressFromInternet", .integer(analysis.endpoints.filter { $0.endpoint.access?.ingressFromInternet == true }.count)),
                ReportField("egressToInternet", .integer(analysis.endpoints.filter { $0.endpoint.access?.egressToInternet == true }.count)),
                ReportField("flowRecords", .integer(flows.count)),
                ReportField("allowedFlowRecords", .integer(flows.filter { $0.action == "allow" }.count)),
                ReportField("deniedFlowRecords", .integer(flows.filter { $0.action != "allow" }.count)),
                ReportField("clusterRanges", .list((analysis.evidence.inventory?.clusterRanges ?? []).map(ReportValue.text))),
            ],
            columns: ["namespace", "name", "ingressProtected", "egressProtected", "ingressFromInternet", "egressToInternet",
                      "ingressFromOtherNamespaces", "egressToOtherNamespaces", "allowedFlows", "deniedFlows", "peersSeen"],
            rows: rows)
    }

    public static func policyAudit(_ analysis: Analysis) -> ReportTable {
        let changes = analysis.policyChanges
        func applied(_ kind: Analysis.ChangeKind) -> Int { changes.filter { $0.change == kind && $0.applied }.count }
        var byActor: [String: Int] = [:]
        for change in changes { byActor[change.record.actor.user, default: 0] += 1 }
        let rows: [[ReportValue]] = changes.map { change in
            let record = change.record
            return [
                .integer(Int(record.seq)), .time(record.time), .text(change.change.rawValue), .text(change.kind), .text(change.object),
                .text(record.actor.user), .integer(Int(record.actor.uid)), .text(record.outcome),
                record.generation.map(ReportValue.integer) ?? .null, record.error.map(ReportValue.text) ?? .null,
                record.details?["file"].map(ReportValue.text) ?? .null, record.details?["note"].map(ReportValue.text) ?? .null,
                .text(record.details?["diff"] ?? ""),
            ]
        }
        return ReportTable(
            name: "policy-audit", title: "Network policy changes", period: analysis.period,
            summary: [
                ReportField("created", .integer(applied(.created))),
                ReportField("modified", .integer(applied(.modified))),
                ReportField("deleted", .integer(applied(.deleted))),
                ReportField("notApplied", .integer(changes.filter { !$0.applied }.count)),
                ReportField("rejectedFiles", .integer(analysis.eventsInPeriod.filter { $0.type == "file.rejected" }.count)),
                ReportField("byActor", .record(byActor.keys.sorted().map { ReportField($0, .integer(byActor[$0] ?? 0)) })),
            ],
            columns: ["seq", "time", "change", "kind", "object", "actor", "uid", "outcome", "generation", "error", "file", "note", "diff"],
            rows: rows)
    }
}
