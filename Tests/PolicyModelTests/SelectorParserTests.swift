import XCTest
@testable import PolicyModel

/// Calico selector expressions: what they parse to, what they match, and how bad ones are refused.
final class SelectorParserTests: XCTestCase {
    private func parse(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> SelectorExpression {
        do {
            return try SelectorParser.parse(text)
        } catch {
            XCTFail("\(quoted(text)) did not parse: \(error)", file: file, line: line)
            throw error
        }
    }

    /// Asserts that `text` is refused with exactly `message` at `column`.
    private func assertSyntaxError(_ text: String, _ message: String, column: Int,
                                   file: StaticString = #filePath, line: UInt = #line) {
        do {
            let expression = try SelectorParser.parse(text)
            XCTFail("expected \(message), parsed \(expression.canonicalText)", file: file, line: line)
        } catch let error as SelectorSyntaxError {
            XCTAssertEqual(error, SelectorSyntaxError(message: message, column: column), file: file, line: line)
        } catch {
            XCTFail("expected a SelectorSyntaxError, got \(error)", file: file, line: line)
        }
    }

    // MARK: Operators

    func testEveryOperator() throws {
        XCTAssertEqual(try parse("all()"), .all)
        XCTAssertEqual(try parse("has(app)"), .has("app"))
        XCTAssertEqual(try parse("!has(app)"), .not(.has("app")))
        XCTAssertEqual(try parse("app == 'web'"), .equals("app", "web"))
        XCTAssertEqual(try parse("app != 'web'"), .notEquals("app", "web"))
        XCTAssertEqual(try parse("app in {'web', 'api'}"), .inSet("app", ["api", "web"]))
        XCTAssertEqual(try parse("app not in {'web'}"), .notInSet("app", ["web"]))
        XCTAssertEqual(try parse("!(app == 'web')"), .not(.equals("app", "web")))
        XCTAssertEqual(try parse("a == 'x' && b == 'y'"), .and(.equals("a", "x"), .equals("b", "y")))
        XCTAssertEqual(try parse("a == 'x' || b == 'y'"), .or(.equals("a", "x"), .equals("b", "y")))
    }

    func testEmptyAndBlankSelectorsAreAll() throws {
        XCTAssertEqual(try parse(""), .all)
        XCTAssertEqual(try parse("   \t "), .all)
        XCTAssertEqual(try parse(" all( ) "), .all)
    }

    func testBothQuoteKindsAndValuesAsWritten() throws {
        XCTAssertEqual(try parse("app == \"web\""), .equals("app", "web"))
        XCTAssertEqual(try parse("app == 'it\"s'"), .equals("app", "it\"s"))
        XCTAssertEqual(try parse("app == \"it's\""), .equals("app", "it's"))
        XCTAssertEqual(try parse("note == 'two words && more'"), .equals("note", "two words && more"))
        XCTAssertEqual(try parse("app == ''"), .equals("app", ""))
        XCTAssertEqual(try parse("app in {\"web\", 'api'}"), .inSet("app", ["api", "web"]))
    }

    func testSetsAreSortedWithoutDuplicatesAndMayBeEmpty() throws {
        XCTAssertEqual(try parse("tier in {'b', 'a', 'b'}"), .inSet("tier", ["a", "b"]))
        XCTAssertEqual(try parse("tier in {}"), .inSet("tier", []))
        XCTAssertEqual(try parse("tier not in { }"), .notInSet("tier", []))
        XCTAssertEqual(try parse("tier in {'a',}"), .inSet("tier", ["a"]), "Calico allows a trailing comma")
    }

    func testLabelKeysWithPrefixesDotsDashesAndUnderscores() throws {
        XCTAssertEqual(try parse("projectcalico.org/name == 'web'"), .equals("projectcalico.org/name", "web"))
        XCTAssertEqual(try parse("has(kubernetes.io/metadata.name)"), .has("kubernetes.io/metadata.name"))
        XCTAssertEqual(try parse("my-label_2 != 'x'"), .notEquals("my-label_2", "x"))
        // Words that are operators elsewhere are labels where a label is expected.
        XCTAssertEqual(try parse("in == 'x' && not in {'y'} && has == 'z' && all == 'w'"),
                       .and(.and(.and(.equals("in", "x"), .inSet("not", ["y"])), .equals("has", "z")),
                            .equals("all", "w")))
        XCTAssertEqual(try parse("index in {'1'}"), .inSet("index", ["1"]))
    }

    func testWhitespaceAnywhere() throws {
        let expected = SelectorExpression.and(.not(.has("a")), .or(.inSet("b", ["x", "y"]), .notInSet("c", ["z"])))
        XCTAssertEqual(try parse("!has(a)&&(b in{'x','y'}||c not in{'z'})"), expected)
        XCTAssertEqual(try parse("  ! has ( a )  &&\n ( b  in  { 'x' , 'y' }\t||  c  not   in  { 'z' } )  "), expected)
    }

    // MARK: Precedence

    func testAndBindsTighterThanOr() throws {
        XCTAssertEqual(try parse("a == 'x' || b == 'y' && c == 'z'"),
                       .or(.equals("a", "x"), .and(.equals("b", "y"), .equals("c", "z"))))
        XCTAssertEqual(try parse("a == 'x' && b == 'y' || c == 'z'"),
                       .or(.and(.equals("a", "x"), .equals("b", "y")), .equals("c", "z")))
    }

    func testParenthesesOverridePrecedence() throws {
        XCTAssertEqual(try parse("(a == 'x' || b == 'y') && c == 'z'"),
                       .and(.or(.equals("a", "x"), .equals("b", "y")), .equals("c", "z")))
        XCTAssertEqual(try parse("((has(a)))"), .has("a"))
    }

    func testChainsGroupToTheLeft() throws {
        XCTAssertEqual(try parse("has(a) && has(b) && has(c)"), .and(.and(.has("a"), .has("b")), .has("c")))
        XCTAssertEqual(try parse("has(a) || has(b) || has(c)"), .or(.or(.has("a"), .has("b")), .has("c")))
    }

    func testNegationBindsTighterThanAnd() throws {
        XCTAssertEqual(try parse("!has(a) && has(b)"), .and(.not(.has("a")), .has("b")))
        XCTAssertEqual(try parse("!a == 'x'"), .not(.equals("a", "x")))
        XCTAssertEqual(try parse("!(has(a) && has(b))"), .not(.and(.has("a"), .has("b"))))
        XCTAssertEqual(try parse("!!has(a)"), .has("a"), "an even number of ! cancels out, as in Calico")
        XCTAssertEqual(try parse("! ! !has(a)"), .not(.has("a")))
    }

    func testCanonicalTextOfParsedExpressions() throws {
        XCTAssertEqual(try parse("a == \"x\" || b in {'z', 'y'} && !has(c)").canonicalText,
                       "(a == 'x' || (b in {'y','z'} && !(has(c))))")
    }

    // MARK: Matching

    func testMatches() throws {
        let web = ["app": "web", "tier": "frontend"]
        let db = ["app": "db", "quarantine": "true"]
        let none: [String: String] = [:]
        func check(_ text: String, web expectWeb: Bool, db expectDB: Bool, none expectNone: Bool,
                   file: StaticString = #filePath, line: UInt = #line) throws {
            let expression = try parse(text, file: file, line: line)
            XCTAssertEqual(expression.matches(web), expectWeb, "\(text) on web", file: file, line: line)
            XCTAssertEqual(expression.matches(db), expectDB, "\(text) on db", file: file, line: line)
            XCTAssertEqual(expression.matches(none), expectNone, "\(text) on no labels", file: file, line: line)
        }
        try check("", web: true, db: true, none: true)
        try check("all()", web: true, db: true, none: true)
        try check("has(tier)", web: true, db: false, none: false)
        try check("!has(tier)", web: false, db: true, none: true)
        try check("app == 'web'", web: true, db: false, none: false)
        try check("app != 'web'", web: false, db: true, none: true)   // true when the label is missing
        try check("app in {'web', 'api'}", web: true, db: false, none: false)
        try check("app not in {'web', 'api'}", web: false, db: true, none: true)  // true when the label is missing
        try check("quarantine == 'true'", web: false, db: true, none: false)
        try check("app == 'db' || tier == 'frontend'", web: true, db: true, none: false)
        try check("app == 'db' && quarantine != 'true'", web: false, db: false, none: false)
        try check("!(app == 'web' || has(quarantine))", web: false, db: false, none: true)
        try check("has(app) && (tier == 'frontend' || quarantine == 'true')", web: true, db: true, none: false)
        try check("tier in {}", web: false, db: false, none: false)
        try check("tier not in {}", web: true, db: true, none: true)
    }

    // MARK: Syntax errors

    func testSyntaxErrors() {
        assertSyntaxError("app = 'web'", "expected == but found \"=\"", column: 5)
        assertSyntaxError("app == web", "expected a quoted value after == but found \"web\"; write 'web'", column: 8)
        assertSyntaxError("app == 'web", "unterminated string: no closing ' for the one at column 8", column: 8)
        assertSyntaxError("app", "expected ==, !=, in or not in after label \"app\" but found the end of the selector",
                          column: 4)
        assertSyntaxError("app is 'web'", "expected ==, !=, in or not in after label \"app\" but found \"is\"", column: 5)
        assertSyntaxError("app == 'x' & b == 'y'", "expected && but found \"&\"", column: 12)
        assertSyntaxError("app == 'x' | b == 'y'", "expected || but found \"|\"", column: 12)
        assertSyntaxError("app == 'x' b == 'y'", "expected && or || but found \"b\"", column: 12)
        assertSyntaxError("app == 'x' &&", "expected a label, has(…), all(), ! or ( but found the end of the selector",
                          column: 14)
        assertSyntaxError("(has(a) || has(b)", "expected ) to close the ( at column 1 but found the end of the selector",
                          column: 18)
        assertSyntaxError("has(a))", "expected && or || but found \")\"", column: 7)
        assertSyntaxError("has()", "expected a label name after has( but found \")\"", column: 5)
        assertSyntaxError("has(a b)", "expected ) after has(a but found \"b\"", column: 7)
        assertSyntaxError("all(x)", "expected ) after all( but found \"x\"", column: 5)
        assertSyntaxError("app in ['a']", "expected { after in but found \"[\"", column: 8)
        assertSyntaxError("app in {'a' 'b'}", "expected , or } but found \"'\"", column: 13)
        assertSyntaxError("app in {a}", "expected a quoted value or } but found \"a\"", column: 9)
        assertSyntaxError("app not {'a'}", "expected in after not but found \"{\"", column: 9)
        assertSyntaxError("== 'x'", "expected a label, has(…), all(), ! or ( but found \"=\"", column: 1)
        assertSyntaxError("app == 'x' && @", "expected a label, has(…), all(), ! or ( but found \"@\"", column: 15)
    }

    func testUnsupportedCalicoFormsAreRefusedByName() {
        assertSyntaxError("global()", "global() is not supported by Palisade: it selects host endpoints and global "
                          + "network sets, which Palisade does not have", column: 1)
        assertSyntaxError("has(a) && global()", "global() is not supported by Palisade: it selects host endpoints and "
                          + "global network sets, which Palisade does not have", column: 11)
        assertSyntaxError("app contains 'we'", "\"contains\" is not supported by Palisade; use ==, !=, in or not in",
                          column: 5)
        assertSyntaxError("app starts with 'we'", "\"starts with\" is not supported by Palisade; use ==, !=, in or not in",
                          column: 5)
        assertSyntaxError("app  ends  with 'eb'", "\"ends with\" is not supported by Palisade; use ==, !=, in or not in",
                          column: 6)
        assertSyntaxError("hasLabel(app)", "hasLabel() is not a selector function; Palisade supports has(label) and all()",
                          column: 1)
        // `starts` without `with` is not the operator: the usual error names what was found.
        assertSyntaxError("app starts 'x'", "expected ==, !=, in or not in after label \"app\" but found \"starts\"",
                          column: 5)
    }

    func testDeepNestingIsRefused() {
        let deep = String(repeating: "(", count: 100) + "has(a)" + String(repeating: ")", count: 100)
        assertSyntaxError(deep, "parentheses are nested more than 64 deep", column: 65)
        let fine = String(repeating: "(", count: 64) + "has(a)" + String(repeating: ")", count: 64)
        XCTAssertEqual(try SelectorParser.parse(fine), .has("a"))
    }

    func testErrorDescriptionNamesTheColumn() {
        XCTAssertEqual(SelectorSyntaxError(message: "expected == but found \"=\"", column: 5).description,
                       "expected == but found \"=\" (column 5)")
    }
}
