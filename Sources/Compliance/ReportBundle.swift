import AgentCore
import Foundation

/// Writes a report into its output directory, with `manifest.json`: each file's size and SHA-256,
/// and those of the data-directory files it was computed from.
public enum ReportBundle {
    public enum Kind: String, CaseIterable, Sendable {
        case inventory
        case networkAccess = "network-access"
        case policyAudit = "policy-audit"
        case soc2
    }

    public enum Format: String, CaseIterable, Sendable {
        case json, csv, html
    }

    public struct WrittenFile: Hashable, Sendable {
        public var name: String
        public var size: Int
        public var sha256: String
    }

    public static let manifestName = "manifest.json"

    /// Renders the report and writes it with its manifest into `directory` (created if needed).
    /// `soc2` writes its page and, beside it, every other report as CSV and JSON; `format` is
    /// then ignored. Returns the files written, the manifest last.
    @discardableResult
    public static func write(_ kind: Kind, format: Format, analysis: Analysis, generated: Date, dataDirectory: String,
                             to directory: String) throws -> [WrittenFile] {
        var contents: [(name: String, text: String)] = []
        if kind == .soc2 {
            for table in [Reports.inventory(analysis), Reports.networkAccess(analysis), Reports.policyAudit(analysis)] {
                contents.append((table.name + ".csv", table.csv))
                contents.append((table.name + ".json", table.json))
            }
            let assessment = SOC2Assessment(analysis)
            contents.append(("soc2.json", json(assessment, analysis: analysis, generated: generated)))
            let beside = contents.map(describe)
            contents.append(("soc2.html", SOC2Page.render(analysis, assessment, files: beside, generated: generated, dataDirectory: dataDirectory)))
        } else {
            let table: ReportTable
            switch kind {
            case .inventory: table = Reports.inventory(analysis)
            case .networkAccess: table = Reports.networkAccess(analysis)
            case .policyAudit, .soc2: table = Reports.policyAudit(analysis)
            }
            switch format {
            case .json: contents.append((table.name + ".json", table.json))
            case .csv: contents.append((table.name + ".csv", table.csv))
            case .html: contents.append((table.name + ".html", table.html))
            }
        }
        let files = contents.map(describe)
        contents.append((manifestName, manifest(kind, files: files, analysis: analysis, generated: generated)))

        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ComplianceError("\(directory): cannot create the output directory: \(error.localizedDescription)")
        }
        for item in contents {
            let path = (directory as NSString).appendingPathComponent(item.name)
            do {
                try Data(item.text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw ComplianceError("\(path): cannot write the report: \(error.localizedDescription)")
            }
        }
        return contents.map(describe)
    }

    static func describe(_ item: (name: String, text: String)) -> WrittenFile {
        let data = Data(item.text.utf8)
        return WrittenFile(name: item.name, size: data.count, sha256: SHA256.hex(data))
    }

    static func manifest(_ kind: Kind, files: [WrittenFile], analysis: Analysis, generated: Date) -> String {
        func list(_ items: [(String, Int, String)]) -> ReportValue {
            .list(items.map { .record([ReportField("name", .text($0.0)), ReportField("size", .integer($0.1)), ReportField("sha256", .text($0.2))]) })
        }
        return ReportValue.record([
            ReportField("report", .text(kind.rawValue)),
            ReportField("generated", .time(generated)),
            ReportField("period", .record([ReportField("from", .time(analysis.period.from)), ReportField("to", .time(analysis.period.to))])),
            ReportField("files", list(files.map { ($0.name, $0.size, $0.sha256) })),
            ReportField("inputs", list(analysis.evidence.inputs.map { ($0.name, $0.size, $0.sha256) })),
        ]).json(indent: 0) + "\n"
    }

    /// The controls as data, for tools that read the bundle.
    static func json(_ assessment: SOC2Assessment, analysis: Analysis, generated: Date) -> String {
        let chain = analysis.evidence.chain
        return ReportValue.record([
            ReportField("report", .text("soc2")),
            ReportField("generated", .time(generated)),
            ReportField("period", .record([ReportField("from", .time(analysis.period.from)), ReportField("to", .time(analysis.period.to))])),
            ReportField("auditChain", .record([
                ReportField("intact", .boolean(chain.isIntact)), ReportField("records", .integer(chain.records)),
                ReportField("files", .integer(chain.files)), ReportField("lastSeq", .integer(Int(chain.lastSeq))),
                ReportField("breaks", .list(chain.breaks.map { .text($0.description) })),
            ])),
            ReportField("controls", .list(assessment.controls.map { control in
                .record([ReportField("id", .text(control.id)), ReportField("title", .text(control.title)),
                         ReportField("status", .text(control.status.rawValue)),
                         ReportField("findings", .list(control.findings.map(ReportValue.text))),
                         ReportField("evidence", .list(control.evidence.map(ReportValue.text)))])
            })),
        ]).json(indent: 0) + "\n"
    }
}
