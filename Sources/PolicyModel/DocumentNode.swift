// A YAML node on its way to becoming a model value: it carries the Kubernetes-style field path
// that reached it (`spec.ingress[0].from[1]`) and the line to blame, so that every check can say
// what is wrong and where without threading that context by hand.

import Yams

struct DocumentNode {
    let node: Node
    /// Field path from the object's root; empty for the object itself.
    let path: String
    /// The line of the key that introduced this value (or of the value for list items and roots).
    let line: Int
    let file: String

    static func root(_ node: Node, file: String) -> DocumentNode {
        DocumentNode(node: node, path: "", line: node.mark?.line ?? 1, file: file)
    }

    var location: SourceLocation { SourceLocation(file: file, line: line) }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// An error about this node; the message follows its path.
    func error(_ message: String) -> DocumentError {
        DocumentError(location: location, message: path.isEmpty ? message : "\(path) \(message)")
    }

    /// An error about a field of this mapping that is absent (reported at this mapping's line).
    func missing(_ key: String, advice: String? = nil) -> DocumentError {
        DocumentError(location: location,
                      message: "\(childPath(key)) is required" + (advice.map { " (\($0))" } ?? ""))
    }

    // MARK: Shape

    /// The resolved tag: plain `80` is an int, quoted "80" a string, `~` null.
    static func tagName(_ node: Node) -> Tag.Name { Tag.Name(rawValue: node.tag.rawValue) }

    /// An explicit `null`, `~` or nothing at all: Kubernetes treats it as an absent field.
    var isNull: Bool {
        // Resolving a tag runs the resolver's regular expressions: look at the text first.
        guard case .scalar(let scalar) = node, ["", "~", "null", "Null", "NULL"].contains(scalar.string) else {
            return false
        }
        return DocumentNode.tagName(node) == .null
    }

    var isMapping: Bool {
        if case .mapping = node { return true }
        return false
    }

    /// How the value reads in an error: its text for a scalar, its kind otherwise.
    var shapeDescription: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar): return isNull ? "null" : quoted(scalar.string)
        case .alias: return "an alias"
        }
    }

    func requireMapping() throws {
        guard isMapping else { throw error("must be a mapping, not \(shapeDescription)") }
    }

    // MARK: Mappings

    /// The entries of a mapping in document order, `<<` merge keys expanded. Null reads as empty.
    func entries() throws -> [(key: String, keyLine: Int, value: Node)] {
        if isNull { return [] }
        guard case .mapping(let mapping) = node else {
            throw error("must be a mapping, not \(shapeDescription)")
        }
        var seen: Set<String> = []
        var budget = DocumentNode.mergeBudget
        let pairs = DocumentNode.pairs(of: mapping, budget: &budget)
        if budget < 0 {
            throw error("merges more than \(DocumentNode.mergeBudget) keys through `<<`; write the mapping out")
        }
        return pairs.compactMap { pair in
            // Keys that are themselves lists or mappings are never Kubernetes fields: ignore them.
            guard case .scalar(let key) = pair.key, seen.insert(key.string).inserted else { return nil }
            return (key.string, key.mark?.line ?? line, pair.value)
        }
    }

    /// Aliases make merges compose: without a bound, a few lines could expand to billions of keys.
    static let mergeBudget = 10_000

    /// Explicit keys first, then merged ones. `entries()` keeps only the first of equal keys, so
    /// explicit keys win over merged keys and earlier merge sources over later ones, as YAML specifies.
    private static func pairs(of mapping: Node.Mapping, budget: inout Int) -> [(key: Node, value: Node)] {
        var explicit: [(key: Node, value: Node)] = []
        var merged: [(key: Node, value: Node)] = []
        budget -= mapping.count
        guard budget >= 0 else { return [] }
        for pair in mapping {
            guard case .scalar(let key) = pair.key, key.string == "<<", DocumentNode.tagName(pair.key) == .merge else {
                explicit.append(pair)
                continue
            }
            switch pair.value {
            case .mapping(let source):
                merged += pairs(of: source, budget: &budget)
            case .sequence(let sources):
                for case .mapping(let source) in sources { merged += pairs(of: source, budget: &budget) }
            default:
                break
            }
        }
        return explicit + merged
    }

    /// The value under `key`, or nil when the key is absent or its value is null.
    func field(_ key: String) throws -> DocumentNode? {
        guard let entry = try entries().first(where: { $0.key == key }) else { return nil }
        let child = DocumentNode(node: entry.value, path: childPath(key), line: entry.keyLine, file: file)
        return child.isNull ? nil : child
    }

    func requiredField(_ key: String, advice: String? = nil) throws -> DocumentNode {
        guard let child = try field(key) else { throw missing(key, advice: advice) }
        return child
    }

    /// The entries of a string map such as `labels`, each value addressed as `path[key]`.
    func mapEntries() throws -> [(key: String, keyLine: Int, value: DocumentNode)] {
        try entries().map { entry in
            (entry.key, entry.keyLine,
             DocumentNode(node: entry.value, path: "\(path)[\(entry.key)]", line: entry.keyLine, file: file))
        }
    }

    /// A field Palisade knows but does not enforce: rejected by name, so that a policy that loads is
    /// a policy enforced as written.
    func unsupported(_ reason: String) -> DocumentError {
        error("is not supported by Palisade: \(reason); remove it")
    }

    /// Fails closed on typos: every key of this mapping must be one of `valid`, because an unknown
    /// key inside a rule or selector is most often a misspelt field whose absence widens what is
    /// allowed (`form:` for `from:` admits every source). Fields Palisade knows but does not enforce
    /// are rejected with their reason, unless null. Checked in document order, so the first unknown
    /// key is reported, at its own line. `what` names the object: "a NetworkPolicy ingress rule".
    func checkFields(valid: [String], unsupported reasons: [String: String] = [:], of what: String) throws {
        for entry in try entries() where !valid.contains(entry.key) {
            let child = DocumentNode(node: entry.value, path: childPath(entry.key), line: entry.keyLine, file: file)
            if let reason = reasons[entry.key] {
                if child.isNull { continue }
                throw child.unsupported(reason)
            }
            throw child.error("is not a field of \(what) (valid: \(valid.joined(separator: ", ")))")
        }
    }

    // MARK: Lists

    /// The items of a list, each addressed as `path[i]`. Null reads as empty.
    func list() throws -> [DocumentNode] {
        if isNull { return [] }
        guard case .sequence(let sequence) = node else {
            throw error("must be a list, not \(shapeDescription)")
        }
        return sequence.enumerated().map { index, item in
            DocumentNode(node: item, path: "\(path)[\(index)]", line: item.mark?.line ?? line, file: file)
        }
    }

    // MARK: Scalars

    /// The text of a scalar. Numbers and booleans are accepted as written (`version: 2` is "2").
    func text() throws -> String {
        guard case .scalar(let scalar) = node, !isNull else {
            throw error("must be a string, not \(shapeDescription)")
        }
        return scalar.string
    }

    /// The text of a label-like value: any scalar, with null read as the empty string as
    /// Kubernetes' JSON decoding does.
    func labelText() throws -> String {
        if isNull { return "" }
        return try text()
    }

    /// A plain integer scalar (quoted "80" is a string, as in JSON).
    var isInteger: Bool {
        guard case .scalar = node else { return false }
        return DocumentNode.tagName(node) == .int
    }

    func integer() throws -> Int {
        guard isInteger else { throw error("must be an integer, not \(shapeDescription)") }
        guard let value = node.int else { throw error("\(node.scalar?.string ?? "") is out of range") }
        return value
    }

    func boolean() throws -> Bool {
        guard case .scalar = node, DocumentNode.tagName(node) == .bool, let value = node.bool else {
            throw error("must be true or false, not \(shapeDescription)")
        }
        return value
    }
}

/// A value quoted for an error message, with control characters escaped and long text cut short.
func quoted(_ text: String) -> String {
    let limit = 120
    var out = "\""
    for (index, scalar) in text.unicodeScalars.enumerated() {
        if index == limit {
            out += "…"
            break
        }
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
