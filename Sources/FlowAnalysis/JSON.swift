// A small JSON writer: flow records and alerts become one line each, with their keys in a fixed
// order (so two runs write the same bytes and a reader can rely on `grep`), without Foundation.

/// A JSON value whose objects keep their keys in the order they were given.
public indirect enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    /// Non-finite numbers have no JSON spelling and are written as `null`; integral values up to
    /// 2^53 are written without a fraction (`3`, not `3.0`).
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// The value on one line: no spaces, no newline, keys in the given order.
    public var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    public func render(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .uint(let value): out += String(value)
        case .double(let value): out += JSONValue.number(value)
        case .string(let value): JSONValue.quote(value, into: &out)
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                value.render(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out += "," }
                JSONValue.quote(key, into: &out)
                out += ":"
                value.render(into: &out)
            }
            out += "}"
        }
    }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) <= 9_007_199_254_740_992 { return String(Int64(value)) }
        return String(value)
    }

    /// RFC 8259 string: `"` and `\` escaped, control characters as `\n`, `\t`, ... or `\u00XX`;
    /// U+2028 and U+2029 escaped too, so a line is safe to embed in JavaScript. Everything else is
    /// written as UTF-8. The agent's own JSON log lines are quoted with it as well.
    public static func quote(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// Labels as an object with its keys sorted, so equal label sets render equally.
    static func labels(_ labels: [String: String]) -> JSONValue {
        .object(labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
    }
}
