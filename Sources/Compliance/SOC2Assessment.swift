import Foundation

/// Where each SOC 2 common criterion stands on the evidence of the period, and why.
public struct SOC2Assessment: Sendable {
    public enum Status: String, Hashable, Sendable {
        case met = "met"
        case partiallyMet = "partially met"
        case notMet = "not met"
    }

    public struct Control: Hashable, Sendable {
        public var id: String
        public var title: String
        public var status: Status
        /// Why the status is what it is: each finding names the endpoints, changes or records concerned.
        public var findings: [String]
        /// The files beside the page that hold the evidence.
        public var evidence: [String]
    }

    public var controls: [Control]

    public func control(_ id: String) -> Control? { controls.first { $0.id == id } }

    public init(_ analysis: Analysis) {
        let endpoints = analysis.endpoints
        let names: ([Analysis.EndpointInScope]) -> String = { $0.map(\.endpoint.id).joined(separator: ", ") }
        let chain = analysis.evidence.chain
        let chainFinding = chain.isIntact
            ? "The audit chain is intact: \(chain.records) records in \(chain.files) file(s), last seq \(chain.lastSeq)."
            : "The audit chain is BROKEN (\(chain.breaks.count) issue(s)); first: \(chain.breaks[0].description). Records after it cannot be trusted."
        var controls: [Control] = []

        // CC6.1: access restricted to what is authorised — every endpoint under policy all the time.
        let ingressOpen = endpoints.filter { !$0.ingressProtectedWholePeriod }
        let egressOpen = endpoints.filter { !$0.egressProtectedWholePeriod }
        var cc61: [String] = []
        let cc61Status: Status
        if analysis.evidence.inventory == nil {
            cc61Status = .notMet
            cc61.append("No inventory: \(analysis.evidence.inventoryProblem ?? "inventory.json missing"). Protection cannot be shown.")
        } else if endpoints.isEmpty {
            cc61Status = .met
            cc61.append("No endpoint existed during the period.")
        } else {
            if !ingressOpen.isEmpty { cc61.append("Ingress not protected for the whole period: \(names(ingressOpen)).") }
            if !egressOpen.isEmpty { cc61.append("Egress not protected for the whole period: \(names(egressOpen)).") }
            let protected = endpoints.filter(\.isProtected).count
            cc61.append("\(protected) of \(endpoints.count) endpoints were protected in both directions (selected by a policy or under namespace default-deny) for all of their time in the period.")
            cc61Status = ingressOpen.isEmpty && egressOpen.isEmpty ? .met : (ingressOpen.isEmpty ? .partiallyMet : .notMet)
        }
        controls.append(Control(id: "CC6.1", title: "Logical access to workloads is restricted by network policy", status: cc61Status,
                                findings: cc61, evidence: ["inventory.csv", "inventory.json"]))

        // CC6.6: the boundary against sources outside the system.
        let fromInternet = endpoints.filter { $0.endpoint.access?.ingressFromInternet == true }
        let deniedFromOutside = analysis.flowsInPeriod.filter { $0.action != "allow" && !$0.source.isWorkload }.count
        var cc66: [String] = []
        let cc66Status: Status
        if !ingressOpen.isEmpty {
            cc66Status = .notMet
            cc66.append("Open to any source, the internet included, for part of the period (ingress not protected): \(names(ingressOpen)).")
        } else if !fromInternet.isEmpty {
            cc66Status = .partiallyMet
            cc66.append("Reachable from the internet by policy (confirm each is authorised): \(names(fromInternet)).")
        } else {
            cc66Status = analysis.evidence.inventory == nil ? .notMet : .met
            cc66.append(analysis.evidence.inventory == nil ? "No inventory to show the boundary." : "No endpoint accepts connections from outside the cluster ranges.")
        }
        cc66.append("\(deniedFromOutside) flow record(s) from outside the cluster's workloads were denied during the period.")
        controls.append(Control(id: "CC6.6", title: "Boundary protection against sources outside the system", status: cc66Status,
                                findings: cc66, evidence: ["network-access.csv", "network-access.json"]))

        // CC6.7: what may leave: egress restricted.
        let toInternet = endpoints.filter { $0.endpoint.access?.egressToInternet == true }
        var cc67: [String] = []
        let cc67Status: Status
        if !egressOpen.isEmpty {
            cc67Status = .notMet
            cc67.append("May send anywhere for part of the period (egress not protected): \(names(egressOpen)).")
        } else if !toInternet.isEmpty {
            cc67Status = .partiallyMet
            cc67.append("May send to the internet by policy (confirm each is authorised): \(names(toInternet)).")
        } else {
            cc67Status = analysis.evidence.inventory == nil ? .notMet : .met
            cc67.append(analysis.evidence.inventory == nil ? "No inventory to show egress restrictions." : "No endpoint may send to addresses outside the cluster ranges.")
        }
        let deniedEgress = analysis.flowsInPeriod.filter { $0.action != "allow" && $0.source.isWorkload }.count
        cc67.append("\(deniedEgress) flow record(s) sent by workloads were denied during the period.")
        controls.append(Control(id: "CC6.7", title: "Transmission of data restricted to authorised destinations", status: cc67Status,
                                findings: cc67, evidence: ["network-access.csv", "network-access.json"]))

        // CC6.8: detect and contain unauthorised or malicious software — quarantine.
        let isolation = analysis.eventsInPeriod.filter { $0.type == "quarantine" || $0.type == "release" }
        let failedIsolation = isolation.filter { $0.outcome == "failed" }
        var cc68: [String] = []
        cc68.append("\(isolation.filter { $0.type == "quarantine" && $0.outcome == "applied" }.count) quarantine(s) and "
                    + "\(isolation.filter { $0.type == "release" && $0.outcome == "applied" }.count) release(s) applied; "
                    + "\(isolation.filter { $0.outcome == "refused" }.count) refused as unauthorised.")
        for record in isolation where record.outcome == "applied" {
            cc68.append("\(ReportTime.format(record.time)) \(record.type) \(record.target ?? "") by \(record.actor.user)"
                        + (record.reason.map { ": \($0)" } ?? ""))
        }
        for record in failedIsolation {
            cc68.append("FAILED \(record.type) of \(record.target ?? "") at \(ReportTime.format(record.time)): \(record.error ?? "no error recorded")")
        }
        controls.append(Control(id: "CC6.8", title: "Unauthorised or malicious software is detected and contained", status: failedIsolation.isEmpty ? .met : .notMet,
                                findings: cc68, evidence: ["inventory.csv", "policy-audit.csv"]))

        // CC7.1: configuration monitored: running inventory, drift detected and repaired.
        var cc71: [String] = []
        let cc71Status: Status
        if let inventory = analysis.evidence.inventory {
            cc71.append("Inventory of \(inventory.endpoints.count) endpoint(s), updated \(ReportTime.format(inventory.updated)); \(endpoints.count) in the period.")
            if analysis.workloadsMissingFromInventory.isEmpty {
                cc71Status = .met
            } else {
                cc71Status = .partiallyMet
                cc71.append("Workloads in the flow logs but not in the inventory: \(analysis.workloadsMissingFromInventory.joined(separator: ", ")).")
            }
        } else {
            cc71Status = .notMet
            cc71.append("No inventory: \(analysis.evidence.inventoryProblem ?? "inventory.json missing").")
        }
        cc71.append("\(analysis.eventsInPeriod.filter { $0.type == "drift.repaired" }.count) drift repair(s) and "
                    + "\(analysis.eventsInPeriod.filter { $0.type == "file.rejected" }.count) rejected file(s) recorded.")
        controls.append(Control(id: "CC7.1", title: "Configuration and inventory are monitored for changes", status: cc71Status,
                                findings: cc71, evidence: ["inventory.csv", "inventory.json"]))

        // CC7.2–7.4: events monitored, evaluated, responded to; the record must be trustworthy.
        var cc72: [String] = [chainFinding]
        let cc72Status: Status
        if !chain.isIntact {
            cc72Status = .notMet
        } else if analysis.flowsInPeriod.isEmpty {
            cc72Status = .partiallyMet
            cc72.append("No flow records in the period: traffic monitoring is not evidenced.")
        } else {
            cc72Status = .met
        }
        cc72.append("\(analysis.flowsInPeriod.count) flow record(s), \(analysis.flowsInPeriod.filter { $0.action != "allow" }.count) denied; "
                    + "\(analysis.eventsInPeriod.filter { $0.type == "quarantine" }.count) quarantine event(s) as incident response.")
        if !analysis.evidence.unreadableLines.isEmpty {
            cc72.append("\(analysis.evidence.unreadableLines.count) unreadable line(s) in the evidence, first: \(analysis.evidence.unreadableLines[0]).")
        }
        controls.append(Control(id: "CC7.2–7.4", title: "Security events are monitored, evaluated and responded to", status: cc72Status,
                                findings: cc72, evidence: ["network-access.csv", "manifest.json"]))

        // CC8.1: every change recorded with who, when, what, and applied as recorded.
        let changes = analysis.policyChanges
        let notApplied = changes.filter { !$0.applied }
        var cc81: [String] = ["\(changes.count) policy change(s) recorded with actor, time and diff, by "
                              + Set(changes.map(\.record.actor.user)).sorted().joined(separator: ", ").ifEmpty("nobody") + "."]
        let cc81Status: Status
        if !chain.isIntact {
            cc81Status = .notMet
            cc81.append(chainFinding)
        } else if !notApplied.isEmpty {
            cc81Status = .partiallyMet
        } else {
            cc81Status = .met
        }
        for change in notApplied {
            cc81.append("\(change.record.outcome.uppercased()): \(change.change.rawValue) \(change.kind) \(change.object) by \(change.record.actor.user) "
                        + "at \(ReportTime.format(change.record.time))" + (change.record.error.map { ": \($0)" } ?? ""))
        }
        controls.append(Control(id: "CC8.1", title: "Changes to network policy are authorised, recorded and applied", status: cc81Status,
                                findings: cc81, evidence: ["policy-audit.csv", "policy-audit.json"]))
        self.controls = controls
    }

}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
