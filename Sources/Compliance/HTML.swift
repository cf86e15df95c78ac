import Foundation

/// Self-contained HTML: inline CSS, no scripts, no fetches, so a page reads the same from an
/// evidence archive years later.
enum HTML {
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    static func periodText(_ period: Period) -> String {
        "Period \(ReportTime.format(period.from)) to \(ReportTime.format(period.to)) (UTC; the end is excluded)"
    }

    static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        \(css)
        </style>
        </head>
        <body>
        <main>
        \(body)
        </main>
        </body>
        </html>

        """
    }

    /// A cell: booleans as yes/no badges, diffs as coloured lines, lists one item a line.
    static func cell(_ value: ReportValue, column: String) -> String {
        switch value {
        case .boolean(let flag):
            return flag ? "<span class=\"yes\">yes</span>" : "<span class=\"no\">no</span>"
        case .null:
            return "<span class=\"none\">–</span>"
        case .list(let items):
            if items.isEmpty { return "<span class=\"none\">–</span>" }
            return items.map { escape($0.text) }.joined(separator: "<br>")
        case .text(let text) where column == "diff":
            return diff(text)
        case .text(let text) where isTime(text):
            return "<span class=\"nowrap\">\(escape(text))</span>"
        default:
            let text = value.text
            return text.isEmpty ? "<span class=\"none\">–</span>" : escape(text)
        }
    }

    /// A time as `ReportTime` writes it, kept on one line.
    static func isTime(_ text: String) -> Bool {
        text.utf8.count == 24 && text.hasSuffix("Z") && ReportTime.parse(text) != nil
    }

    static func diff(_ text: String) -> String {
        guard !text.isEmpty else { return "<span class=\"none\">–</span>" }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let kind = line.hasPrefix("+") ? "add" : line.hasPrefix("-") ? "del" : "ctx"
            return "<span class=\"\(kind)\">\(escape(String(line)))</span>"
        }
        // Each line is a block of its own: a newline between them would add an empty line.
        return "<pre class=\"diff\">" + lines.joined() + "</pre>"
    }

    static func table(columns: [String], rows: [[ReportValue]], caption: String? = nil) -> String {
        var html = "<div class=\"scroll\"><table>\n"
        if let caption { html += "<caption>\(escape(caption))</caption>\n" }
        html += "<thead><tr>" + columns.map { "<th>\(escape(heading($0)))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        if rows.isEmpty {
            html += "<tr><td colspan=\"\(columns.count)\" class=\"none\">No rows in this period.</td></tr>\n"
        }
        for row in rows {
            html += "<tr>" + zip(columns, row).map { "<td>\(cell($0.1, column: $0.0))</td>" }.joined() + "</tr>\n"
        }
        return html + "</tbody></table></div>\n"
    }

    /// `ingressProtectedWholePeriod` → `ingress protected whole period`.
    static func heading(_ column: String) -> String {
        var result = ""
        for character in column {
            if character.isUppercase { result += " " + character.lowercased() } else { result.append(character) }
        }
        return result
    }

    static let css = """
    :root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --met: #1b7f3b; --partial: #a86400; --notmet: #b42318; }
    * { box-sizing: border-box; }
    body { margin: 0; background: #f4f6f9; color: var(--ink); font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
    main { max-width: 1100px; margin: 0 auto; padding: 28px 32px 48px; background: #fff; min-height: 100vh; }
    h1 { font-size: 24px; margin: 0 0 4px; }
    h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
    h3 { font-size: 15px; margin: 18px 0 6px; }
    p { margin: 6px 0; }
    .period, .muted { color: var(--muted); }
    a { color: #1f5fbf; }
    .scroll { overflow-x: auto; }
    table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 13px; }
    caption { text-align: left; font-weight: bold; padding: 4px 0; }
    th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
    th { background: #eef1f6; font-weight: 600; white-space: nowrap; }
    tbody tr:nth-child(even) td { background: #fafbfd; }
    .yes { color: var(--met); font-weight: 600; }
    .no { color: var(--notmet); font-weight: 600; }
    .none { color: #9aa3b2; }
    pre.diff { margin: 0; font: 12px/1.35 "DejaVu Sans Mono", monospace; white-space: pre-wrap; }
    pre.diff .add { color: #116329; background: #e6ffec; display: block; }
    pre.diff .del { color: #82071e; background: #ffebe9; display: block; }
    dl.summary { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
    dl.summary div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 130px; }
    dt { color: var(--muted); font-size: 12px; }
    dd { margin: 0; font-size: 18px; font-weight: 600; }
    .tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 16px 0; }
    .tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
    .tile .label { color: var(--muted); font-size: 12px; }
    .tile .value { font-size: 22px; font-weight: 700; }
    .tile.bad { border-color: var(--notmet); } .tile.bad .value { color: var(--notmet); }
    .tile.good .value { color: var(--met); }
    .status { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 700; font-size: 12px; color: #fff; white-space: nowrap; }
    .status.met { background: var(--met); } .status.partial { background: var(--partial); } .status.notmet { background: var(--notmet); }
    table.controls td:first-child { font-weight: 700; white-space: nowrap; }
    table.controls ul { margin: 4px 0 0; padding-left: 18px; }
    .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
    .chart { border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
    .chart svg { width: 100%; height: auto; display: block; }
    .banner { padding: 10px 14px; border-radius: 6px; margin: 10px 0; font-weight: 600; }
    .banner.bad { background: #fdecea; color: var(--notmet); border: 1px solid #f5c2bd; }
    .banner.good { background: #e8f5ec; color: var(--met); border: 1px solid #b7dfc3; }
    .nowrap, td.links { white-space: nowrap; }
    code { font: 12px "DejaVu Sans Mono", monospace; background: #f0f2f6; padding: 1px 4px; border-radius: 3px; }
    footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
    """
}
