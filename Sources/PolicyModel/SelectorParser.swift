// Calico selector expressions (`app == 'web' && !has(canary)`) parsed into SelectorExpression.
// The grammar is Calico's, minus what Palisade cannot enforce: global(), contains, starts with and
// ends with are refused by name rather than read as something else.

/// Why a selector does not parse: what is wrong and the 1-based column where it was noticed.
public struct SelectorSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var column: Int

    public init(message: String, column: Int) {
        self.message = message
        self.column = column
    }

    public var description: String { "\(message) (column \(column))" }
}

public enum SelectorParser {
    /// Parses a Calico selector. The empty (or blank) selector is `all()`, as in Calico.
    ///
    /// `!` binds tighter than `&&`, which binds tighter than `||`; `&&` and `||` group to the left.
    /// Values inside `in {…}` are kept sorted and without duplicates, as Calico keeps them.
    public static func parse(_ text: String) throws -> SelectorExpression {
        var scanner = SelectorScanner(text)
        scanner.skipWhitespace()
        if scanner.atEnd { return .all }
        let expression = try scanner.orExpression(depth: 0)
        scanner.skipWhitespace()
        guard scanner.atEnd else {
            throw scanner.error("expected && or || but found \(scanner.foundDescription)")
        }
        return expression
    }
}

/// A recursive-descent parser over the selector's Unicode scalars. Calico's tokens depend on what
/// came before (`in` after a label is an operator, elsewhere a label), so scanning and parsing are one.
private struct SelectorScanner {
    private let scalars: [Unicode.Scalar]
    private var position = 0

    /// Parentheses deeper than this are refused, so that a hostile selector cannot exhaust the stack.
    static let maximumDepth = 64

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    var atEnd: Bool { position >= scalars.count }
    private var current: Unicode.Scalar? { atEnd ? nil : scalars[position] }
    private func peek(_ offset: Int) -> Unicode.Scalar? {
        position + offset < scalars.count ? scalars[position + offset] : nil
    }

    /// An error at `column` (1-based), or at the current position.
    func error(_ message: String, column: Int? = nil) -> SelectorSyntaxError {
        SelectorSyntaxError(message: message, column: column ?? position + 1)
    }

    /// What sits at the current position, for "expected X but found Y".
    var foundDescription: String {
        guard let current else { return "the end of the selector" }
        if SelectorScanner.isLabelCharacter(current) {
            return quoted(String(String.UnicodeScalarView(scalars[position..<labelEnd(from: position)])))
        }
        return quoted(String(current))
    }

    static func isLabelCharacter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
            || c == "_" || c == "." || c == "/" || c == "-"
    }

    mutating func skipWhitespace() {
        while let current, current.properties.isWhitespace { position += 1 }
    }

    private func labelEnd(from start: Int) -> Int {
        var end = start
        while end < scalars.count, SelectorScanner.isLabelCharacter(scalars[end]) { end += 1 }
        return end
    }

    /// Consumes a label (`[A-Za-z0-9_./-]+`) if one starts here.
    private mutating func label() -> String? {
        let end = labelEnd(from: position)
        guard end > position else { return nil }
        defer { position = end }
        return String(String.UnicodeScalarView(scalars[position..<end]))
    }

    /// Consumes `text` if the input continues with it.
    private mutating func consume(_ text: String) -> Bool {
        let wanted = Array(text.unicodeScalars)
        guard position + wanted.count <= scalars.count,
              Array(scalars[position..<position + wanted.count]) == wanted else { return false }
        position += wanted.count
        return true
    }

    /// Consumes `word` if it is the whole next label-like word (so `in` does not match `index`).
    private mutating func consumeWord(_ word: String) -> Bool {
        let start = position
        guard consume(word) else { return false }
        if let current, SelectorScanner.isLabelCharacter(current) {
            position = start
            return false
        }
        return true
    }

    // MARK: Grammar

    mutating func orExpression(depth: Int) throws -> SelectorExpression {
        var expression = try andExpression(depth: depth)
        while true {
            skipWhitespace()
            if consume("||") {
                expression = .or(expression, try andExpression(depth: depth))
            } else if current == "|" {
                throw error("expected || but found \"|\"")
            } else {
                return expression
            }
        }
    }

    private mutating func andExpression(depth: Int) throws -> SelectorExpression {
        var expression = try unary(depth: depth)
        while true {
            skipWhitespace()
            if consume("&&") {
                expression = .and(expression, try unary(depth: depth))
            } else if current == "&" {
                throw error("expected && but found \"&\"")
            } else {
                return expression
            }
        }
    }

    /// Any number of `!` before an operation; an even number cancels out, as in Calico.
    private mutating func unary(depth: Int) throws -> SelectorExpression {
        var negated = false
        while true {
            skipWhitespace()
            guard current == "!", peek(1) != "=" else { break }
            position += 1
            negated.toggle()
        }
        let operation = try self.operation(depth: depth)
        return negated ? .not(operation) : operation
    }

    private mutating func operation(depth: Int) throws -> SelectorExpression {
        skipWhitespace()
        let start = position
        if consume("(") {
            guard depth < SelectorScanner.maximumDepth else {
                throw error("parentheses are nested more than \(SelectorScanner.maximumDepth) deep", column: start + 1)
            }
            let inner = try orExpression(depth: depth + 1)
            skipWhitespace()
            guard consume(")") else {
                throw error("expected ) to close the ( at column \(start + 1) but found \(foundDescription)")
            }
            return inner
        }
        guard let name = label() else {
            throw error("expected a label, has(…), all(), ! or ( but found \(foundDescription)")
        }
        skipWhitespace()
        if consume("(") {
            return try function(name, column: start + 1)
        }
        return try comparison(key: name, keyColumn: start + 1)
    }

    /// `has(key)` and `all()`; `global()` and anything else are refused.
    private mutating func function(_ name: String, column: Int) throws -> SelectorExpression {
        skipWhitespace()
        switch name {
        case "all":
            guard consume(")") else { throw error("expected ) after all( but found \(foundDescription)") }
            return .all
        case "has":
            let keyColumn = position + 1
            guard let key = label() else {
                throw error("expected a label name after has( but found \(foundDescription)", column: keyColumn)
            }
            skipWhitespace()
            guard consume(")") else { throw error("expected ) after has(\(key) but found \(foundDescription)") }
            return .has(key)
        case "global":
            throw error("global() is not supported by Palisade: it selects host endpoints and global network "
                        + "sets, which Palisade does not have", column: column)
        default:
            throw error("\(name)() is not a selector function; Palisade supports has(label) and all()",
                        column: column)
        }
    }

    /// `key == 'v'`, `key != 'v'`, `key in {…}`, `key not in {…}`.
    private mutating func comparison(key: String, keyColumn: Int) throws -> SelectorExpression {
        let operatorColumn = position + 1
        if consume("==") { return .equals(key, try value(after: "==")) }
        if consume("!=") { return .notEquals(key, try value(after: "!=")) }
        if current == "=" { throw error("expected == but found \"=\"") }
        if consumeWord("in") { return .inSet(key, try set(after: "in")) }
        if consumeWord("not") {
            skipWhitespace()
            guard consumeWord("in") else { throw error("expected in after not but found \(foundDescription)") }
            return .notInSet(key, try set(after: "not in"))
        }
        let unsupported = "is not supported by Palisade; use ==, !=, in or not in"
        if consumeWord("contains") {
            throw error("\"contains\" \(unsupported)", column: operatorColumn)
        }
        for word in ["starts", "ends"] where consumeWord(word) {
            skipWhitespace()
            if consumeWord("with") { throw error("\"\(word) with\" \(unsupported)", column: operatorColumn) }
            position = operatorColumn - 1
        }
        throw error("expected ==, !=, in or not in after label \(quoted(key)) but found \(foundDescription)")
    }

    /// A string literal in single or double quotes; Calico has no escapes, so it ends at the next quote.
    private mutating func value(after op: String) throws -> String {
        skipWhitespace()
        guard let quote = current, quote == "'" || quote == "\"" else {
            if let current, SelectorScanner.isLabelCharacter(current) {
                let bare = String(String.UnicodeScalarView(scalars[position..<labelEnd(from: position)]))
                throw error("expected a quoted value after \(op) but found \(quoted(bare)); write '\(bare)'")
            }
            throw error("expected a quoted value after \(op) but found \(foundDescription)")
        }
        let start = position
        position += 1
        while let current, current != quote { position += 1 }
        guard !atEnd else {
            throw error("unterminated string: no closing \(quote) for the one at column \(start + 1)", column: start + 1)
        }
        position += 1
        return String(String.UnicodeScalarView(scalars[(start + 1)..<(position - 1)]))
    }

    /// `{'a', "b"}`: sorted, duplicates dropped. Empty sets and a trailing comma are allowed, as in Calico.
    private mutating func set(after op: String) throws -> [String] {
        skipWhitespace()
        guard consume("{") else { throw error("expected { after \(op) but found \(foundDescription)") }
        var values: Set<String> = []
        while true {
            skipWhitespace()
            if consume("}") { break }
            guard current == "'" || current == "\"" else {
                throw error("expected a quoted value or } but found \(foundDescription)")
            }
            values.insert(try value(after: "{"))
            skipWhitespace()
            if consume(",") { continue }
            guard consume("}") else { throw error("expected , or } but found \(foundDescription)") }
            break
        }
        return values.sorted()
    }
}
