import Foundation

/// The evidence of one period, worked out once; every report and the SOC 2 page are views of it.
public struct Analysis: Sendable {
    /// An endpoint that existed at some time during the period.
    public struct EndpointInScope: Hashable, Sendable {
        public var endpoint: InventoryEndpoint
        /// The part of the period the endpoint existed in.
        public var window: Period
        public var ingressProtectedWholePeriod: Bool
        public var egressProtectedWholePeriod: Bool
        public var labelChanges: Int
        public var quarantines: [InventoryEndpoint.QuarantineSpan]
        public var isProtected: Bool { ingressProtectedWholePeriod && egressProtectedWholePeriod }
    }

    /// What the flow logs show between an endpoint and one peer during the period.
    public struct PeerTally: Hashable, Sendable {
        /// `ingress`: the peer sent to the endpoint; `egress`: the endpoint sent to the peer.
        public var direction: String
        public var peer: String
        public var peerType: String
        /// Flow records (one flow over one aggregation interval) by action.
        public var allowed: Int
        public var denied: Int
    }

    public enum ChangeKind: String, Hashable, Sendable {
        case created, modified, deleted
    }

    /// One change of a network policy, from the event record.
    public struct PolicyChange: Hashable, Sendable {
        public var change: ChangeKind
        public var record: AuditRecord
        public var kind: String { record.details?["kind"] ?? "" }
        public var object: String { record.details?["name"] ?? record.target ?? "" }
        public var applied: Bool { record.outcome == "applied" }
    }

    public var period: Period
    public var evidence: Evidence
    public var endpoints: [EndpointInScope]
    public var peers: [String: [PeerTally]]
    public var policyChanges: [PolicyChange]
    /// Events of the period, in record order.
    public var eventsInPeriod: [AuditRecord]
    public var flowsInPeriod: [FlowLogRecord]
    /// Workloads the flow logs name that the inventory does not know.
    public var workloadsMissingFromInventory: [String]

    /// Object kinds that change who may talk to whom.
    public static let policyKinds: Set<String> = ["NetworkPolicy", "NetworkPolicy (Calico)", "GlobalNetworkPolicy"]

    public init(evidence: Evidence, period: Period) {
        self.period = period
        self.evidence = evidence
        let inventoryEndpoints = (evidence.inventory?.endpoints ?? []).sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        endpoints = inventoryEndpoints.compactMap { Self.assess($0, in: period) }

        eventsInPeriod = evidence.events.filter { period.contains($0.time) }
        policyChanges = eventsInPeriod.compactMap { record -> PolicyChange? in
            guard let kind = record.details?["kind"], Self.policyKinds.contains(kind) else { return nil }
            switch record.type {
            case "object.created": return PolicyChange(change: .created, record: record)
            case "object.updated": return PolicyChange(change: .modified, record: record)
            case "object.deleted": return PolicyChange(change: .deleted, record: record)
            default: return nil
            }
        }

        flowsInPeriod = evidence.flows.filter { period.contains($0.start) }
        var tallies: [String: [String: PeerTally]] = [:]
        let known = Set(inventoryEndpoints.map(\.id))
        var missing = Set<String>()
        for flow in flowsInPeriod {
            let allowed = flow.action == "allow"
            func count(endpoint: FlowPeer, peer: FlowPeer, direction: String) {
                guard endpoint.isWorkload else { return }
                guard known.contains(endpoint.id) else { missing.insert(endpoint.id); return }
                let key = direction + " " + peer.id
                var tally = tallies[endpoint.id, default: [:]][key]
                    ?? PeerTally(direction: direction, peer: peer.id, peerType: peer.type, allowed: 0, denied: 0)
                if allowed { tally.allowed += 1 } else { tally.denied += 1 }
                tallies[endpoint.id, default: [:]][key] = tally
            }
            count(endpoint: flow.source, peer: flow.destination, direction: "egress")
            count(endpoint: flow.destination, peer: flow.source, direction: "ingress")
        }
        peers = tallies.mapValues { $0.values.sorted { ($0.direction, $0.peer) < ($1.direction, $1.peer) } }
        workloadsMissingFromInventory = missing.sorted()
    }

    static func assess(_ endpoint: InventoryEndpoint, in period: Period) -> EndpointInScope? {
        // [firstSeen, lastSeen] is closed: an endpoint last seen at the first instant of the period was there.
        guard endpoint.firstSeen < period.to, endpoint.lifetimeEnd >= period.from else { return nil }
        let lower = max(period.from, endpoint.firstSeen)
        let window = Period(from: lower, to: max(lower, min(period.to, endpoint.lifetimeEnd)))
        let changes = endpoint.labelHistory.sorted { $0.time < $1.time }.dropFirst().filter { period.contains($0.time) }.count
        let quarantines = endpoint.quarantines.filter { $0.start < period.to && ($0.end ?? .distantFuture) > period.from }
        return EndpointInScope(endpoint: endpoint, window: window,
                               ingressProtectedWholePeriod: Coverage.isCovered(window, by: endpoint.protection.ingress),
                               egressProtectedWholePeriod: Coverage.isCovered(window, by: endpoint.protection.egress),
                               labelChanges: changes, quarantines: quarantines)
    }

    /// Per UTC day of the period: endpoints that existed that day, and those protected in both
    /// directions for all of their time in that day.
    public var dailyProtection: [(day: String, endpoints: Int, protected: Int)] {
        period.days.map { day in
            var present = 0, protected = 0
            for item in endpoints {
                guard let window = day.clipped(from: item.endpoint.firstSeen, to: item.endpoint.lifetimeEnd)
                        ?? (day.contains(item.endpoint.firstSeen) ? Period(from: item.endpoint.firstSeen, to: item.endpoint.firstSeen) : nil)
                else { continue }
                present += 1
                if Coverage.isCovered(window, by: item.endpoint.protection.ingress)
                    && Coverage.isCovered(window, by: item.endpoint.protection.egress) { protected += 1 }
            }
            return (ReportTime.day(day.from), present, protected)
        }
    }

    /// Per UTC day of the period: policy changes by kind (all outcomes).
    public var dailyPolicyChanges: [(day: String, created: Int, modified: Int, deleted: Int)] {
        period.days.map { day in
            let changes = policyChanges.filter { day.contains($0.record.time) }
            return (ReportTime.day(day.from), changes.filter { $0.change == .created }.count,
                    changes.filter { $0.change == .modified }.count, changes.filter { $0.change == .deleted }.count)
        }
    }
}

/// Whether protection intervals cover a window without a gap.
enum Coverage {
    static func isCovered(_ window: Period, by spans: [InventoryEndpoint.ProtectionSpan]) -> Bool {
        let protected = spans.filter(\.protected).sorted { $0.from < $1.from }
        // A window of no length (seen once, at one instant): protected at that instant.
        if window.from == window.to {
            return protected.contains { $0.from <= window.from && ($0.to ?? .distantFuture) > window.from }
        }
        var covered = window.from
        for span in protected where span.from <= covered {
            covered = max(covered, span.to ?? .distantFuture)
            if covered >= window.to { return true }
        }
        return covered >= window.to
    }
}
