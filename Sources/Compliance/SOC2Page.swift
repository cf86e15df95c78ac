import Foundation

/// The SOC 2 evidence page: one self-contained HTML file (inline CSS and SVG, no scripts, no
/// fetches) that states each control's status and why, with links to the CSV and JSON beside it.
enum SOC2Page {
    static func render(_ analysis: Analysis, _ assessment: SOC2Assessment, files: [ReportBundle.WrittenFile], generated: Date,
                       dataDirectory: String) -> String {
        let endpoints = analysis.endpoints
        let protected = endpoints.filter(\.isProtected).count
        let chain = analysis.evidence.chain
        let changes = analysis.policyChanges
        var body = "<h1>SOC 2 evidence: workload network access</h1>\n"
        body += "<p class=\"period\">\(HTML.escape(HTML.periodText(analysis.period)))<br>Generated \(HTML.escape(ReportTime.format(generated))) by "
            + "<code>agentctl report soc2</code> from the agent's records in <code>\(HTML.escape(dataDirectory))</code>: the event record, "
            + "the flow logs and the inventory, never from hand-kept state.</p>\n"
        body += chain.isIntact
            ? "<div class=\"banner good\">Audit chain verified: \(chain.records) records in \(chain.files) file(s), each linked to the one before by SHA-256.</div>\n"
            : "<div class=\"banner bad\">Audit chain BROKEN: \(HTML.escape(chain.breaks[0].description)). The record of changes cannot be relied on from that point.</div>\n"

        func tile(_ label: String, _ value: String, good: Bool?) -> String {
            let kind = good.map { $0 ? " good" : " bad" } ?? ""
            return "<div class=\"tile\(kind)\"><div class=\"label\">\(HTML.escape(label))</div><div class=\"value\">\(HTML.escape(value))</div></div>"
        }
        let notApplied = changes.filter { !$0.applied }.count
        body += "<div class=\"tiles\">"
            + tile("Endpoints in the period", String(endpoints.count), good: nil)
            + tile("Protected the whole period", "\(protected) of \(endpoints.count)", good: protected == endpoints.count)
            + tile("Policy changes", notApplied == 0 ? String(changes.count) : "\(changes.count) (\(notApplied) not applied)", good: notApplied == 0 ? nil : false)
            + tile("Audit chain", chain.isIntact ? "intact" : "broken", good: chain.isIntact)
            + "</div>\n"

        body += "<h2>Controls</h2>\n<div class=\"scroll\"><table class=\"controls\"><thead><tr><th>Control</th><th>What it asks</th><th>Status</th><th>Why</th><th>Evidence</th></tr></thead><tbody>\n"
        for control in assessment.controls {
            let kind = control.status == .met ? "met" : control.status == .partiallyMet ? "partial" : "notmet"
            body += "<tr><td>\(HTML.escape(control.id))</td><td>\(HTML.escape(control.title))</td>"
                + "<td><span class=\"status \(kind)\">\(HTML.escape(control.status.rawValue))</span></td>"
                + "<td><ul>" + control.findings.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul></td>"
                + "<td class=\"links\">" + control.evidence.map { "<a href=\"\(HTML.escape($0))\">\(HTML.escape($0))</a>" }.joined(separator: "<br>") + "</td></tr>\n"
        }
        body += "</tbody></table></div>\n"

        let daily = analysis.dailyProtection
        let coverage = SVGChart.bars(
            labels: daily.map(\.day),
            series: [SVGChart.Series(name: "protected", color: "#2f7d4f",
                                     values: daily.map { $0.endpoints == 0 ? nil : 100 * Double($0.protected) / Double($0.endpoints) })],
            maximum: 100, ticks: [0, 25, 50, 75, 100], unit: "%", title: "Endpoints protected in both directions, per day")
        let perDay = analysis.dailyPolicyChanges
        let most = perDay.map { $0.created + $0.modified + $0.deleted }.max() ?? 0
        let top = Double(max(most, 1))
        let step = max(1, Int((top / 4).rounded(.up)))
        let changesChart = SVGChart.bars(
            labels: perDay.map(\.day),
            series: [SVGChart.Series(name: "created", color: "#2f7d4f", values: perDay.map { Double($0.created) }),
                     SVGChart.Series(name: "modified", color: "#1f5fbf", values: perDay.map { Double($0.modified) }),
                     SVGChart.Series(name: "deleted", color: "#b42318", values: perDay.map { Double($0.deleted) })],
            maximum: Double(step * 4), ticks: (0...4).map { Double($0 * step) }, unit: "", title: "Policy changes per day")
        body += "<h2>Over the period</h2>\n<div class=\"charts\">"
            + "<div class=\"chart\"><h3>Protection coverage per day</h3><p class=\"muted\">Share of the endpoints present that day protected in both directions for all of it.</p>\(coverage)</div>"
            + "<div class=\"chart\"><h3>Policy changes per day</h3><p class=\"muted\">NetworkPolicy and GlobalNetworkPolicy objects created, modified, deleted (all outcomes).</p>\(changesChart)</div>"
            + "</div>\n"

        let unprotected = endpoints.filter { !$0.isProtected }
        body += "<h2>Endpoints not protected for the whole period</h2>\n"
        body += HTML.table(columns: ["endpoint", "ingressProtected", "egressProtected", "inPeriodFrom", "inPeriodTo", "policies"],
                           rows: unprotected.map { item in
                               [.text(item.endpoint.id), .boolean(item.ingressProtectedWholePeriod), .boolean(item.egressProtectedWholePeriod),
                                .time(item.window.from), .time(item.window.to == .distantFuture ? nil : item.window.to),
                                .list(item.endpoint.policies.map(ReportValue.text))]
                           })

        body += "<h2>Policy changes</h2>\n"
        body += HTML.table(columns: ["time", "change", "kind", "object", "actor", "outcome", "diff"], rows: changes.map { change in
            [.time(change.record.time), .text(change.change.rawValue), .text(change.kind), .text(change.object),
             .text(change.record.actor.description), .text(change.record.outcome + (change.record.error.map { ": \($0)" } ?? "")),
             .text(change.record.details?["diff"] ?? "")]
        })

        body += "<h2>Audit chain verification</h2>\n<p>Checked again from the files: every line is a record, <code>seq</code> counts up by one, and "
            + "<code>prev</code> is the SHA-256 of the line before (64 zeros for the first), across the rotated files in order.</p>\n"
        if chain.isIntact {
            body += "<p class=\"yes\">Intact: \(chain.records) records, last seq \(chain.lastSeq), \(chain.files) file(s).</p>\n"
        } else {
            body += "<p class=\"no\">Broken: \(chain.breaks.count) issue(s) in \(chain.records) records.</p><ul>"
                + chain.breaks.prefix(20).map { "<li><code>\(HTML.escape($0.description))</code></li>" }.joined() + "</ul>\n"
        }

        body += "<h2>Files</h2>\n<p>Beside this page (their SHA-256 is also in <a href=\"manifest.json\">manifest.json</a>):</p>\n"
        body += HTML.table(columns: ["file", "bytes", "sha256"], rows: files.map { [.text($0.name), .integer($0.size), .text($0.sha256)] })
            .replacingLinks(files.map(\.name))
        body += "<p>Read from the data directory:</p>\n"
        body += HTML.table(columns: ["file", "bytes", "sha256"], rows: analysis.evidence.inputs.map { [.text($0.name), .integer($0.size), .text($0.sha256)] })
        body += "<footer>Palisade node agent · statuses are computed from the records listed above; a control is met only when the evidence shows it for the whole period.</footer>\n"
        return HTML.page(title: "SOC 2 evidence " + ReportTime.day(analysis.period.from) + " to " + ReportTime.day(analysis.period.to), body: body)
    }
}

private extension String {
    /// Turns the file-name cells of a table into links to those files.
    func replacingLinks(_ names: [String]) -> String {
        var text = self
        for name in names {
            let escaped = HTML.escape(name)
            text = text.replacingOccurrences(of: "<td>\(escaped)</td>", with: "<td><a href=\"\(escaped)\">\(escaped)</a></td>")
        }
        return text
    }
}
