import Foundation

/// A cell of a report, typed so JSON keeps numbers, booleans and lists, and CSV and HTML get text.
public indirect enum ReportValue: Hashable, Sendable {
    case text(String)
    case integer(Int)
    case boolean(Bool)
    case null
    case list([ReportValue])
    case record([ReportField])

    public static func time(_ date: Date?) -> ReportValue { date.map { .text(ReportTime.format($0)) } ?? .null }

    /// One line of text: lists joined by "; ", records as `name=value` pairs.
    public var text: String {
        switch self {
        case .text(let text): return text
        case .integer(let number): return String(number)
        case .boolean(let flag): return flag ? "true" : "false"
        case .null: return ""
        case .list(let items): return items.map(\.text).joined(separator: "; ")
        case .record(let fields): return fields.map { "\($0.name)=\($0.value.text)" }.joined(separator: " ")
        }
    }

    /// Pretty JSON, two spaces per level, keys in the order given.
    func json(indent: Int) -> String {
        let inner = String(repeating: "  ", count: indent + 1), outer = String(repeating: "  ", count: indent)
        switch self {
        case .text(let text): return JSONText.quote(text)
        case .integer(let number): return String(number)
        case .boolean(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .list(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + $0.json(indent: indent + 1) }.joined(separator: ",\n") + "\n" + outer + "]"
        case .record(let fields):
            if fields.isEmpty { return "{}" }
            return "{\n" + fields.map { inner + JSONText.quote($0.name) + ": " + $0.value.json(indent: indent + 1) }
                .joined(separator: ",\n") + "\n" + outer + "}"
        }
    }

    /// Labels and other string maps, keys sorted.
    public static func map(_ dictionary: [String: String]) -> ReportValue {
        .record(dictionary.keys.sorted().map { ReportField($0, .text(dictionary[$0] ?? "")) })
    }
}

public struct ReportField: Hashable, Sendable {
    public var name: String
    public var value: ReportValue
    public init(_ name: String, _ value: ReportValue) {
        self.name = name; self.value = value
    }
}

/// One report: a title, summary figures and a table, rendered as JSON, CSV or HTML.
public struct ReportTable: Hashable, Sendable {
    /// The file name without extension: `inventory`, `network-access`, `policy-audit`.
    public var name: String
    public var title: String
    public var period: Period
    public var summary: [ReportField]
    public var columns: [String]
    /// Cells in column order.
    public var rows: [[ReportValue]]

    public func row(_ index: Int) -> [String: ReportValue] {
        Dictionary(uniqueKeysWithValues: zip(columns, rows[index]))
    }

    public var json: String {
        let document = ReportValue.record([
            ReportField("report", .text(name)),
            ReportField("title", .text(title)),
            ReportField("period", .record([ReportField("from", .time(period.from)), ReportField("to", .time(period.to))])),
            ReportField("summary", .record(summary)),
            ReportField("columns", .list(columns.map(ReportValue.text))),
            ReportField("rows", .list(rows.map { .record(zip(columns, $0).map { ReportField($0.0, $0.1) }) })),
        ])
        return document.json(indent: 0) + "\n"
    }

    /// RFC 4180: a header line, CRLF line ends, fields quoted when they hold a comma, quote or line break.
    public var csv: String {
        ([columns] + rows.map { $0.map(\.text) }).map { $0.map(CSVText.field).joined(separator: ",") + "\r\n" }.joined()
    }

    public var html: String {
        var body = "<h1>\(HTML.escape(title))</h1>\n"
        body += "<p class=\"period\">\(HTML.escape(HTML.periodText(period)))</p>\n"
        if !summary.isEmpty {
            body += "<dl class=\"summary\">" + summary.map { "<div><dt>\(HTML.escape($0.name))</dt><dd>\(HTML.escape($0.value.text))</dd></div>" }.joined() + "</dl>\n"
        }
        body += HTML.table(columns: columns, rows: rows)
        return HTML.page(title: title, body: body)
    }
}

enum JSONText {
    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

enum CSVText {
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
