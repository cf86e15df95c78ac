import XCTest
@testable import FlowAnalysis

final class LogPrefixTests: XCTestCase {
    func testBuildsTheDocumentedTexts() {
        XCTAssertEqual(LogPrefix.defaultPolicy(action: .deny, reporter: .source).text, "palisade deny eg default ")
        XCTAssertEqual(LogPrefix.defaultPolicy(action: .allow, reporter: .destination).text, "palisade allow in default ")
        XCTAssertEqual(LogPrefix.quarantine(reporter: .destination).text, "palisade deny in quarantine ")
        XCTAssertEqual(LogPrefix.policyRule(verdict: .allow, reporter: .destination, policy: .id("shop/allow-web"), rule: 0).text,
                       "palisade allow in shop/allow-web 0 ")
        XCTAssertEqual(LogPrefix.policyRule(verdict: .log, reporter: .source, policy: .id("global/audit"), rule: 65535).text,
                       "palisade log eg global/audit 65535 ")
    }

    func testPolicyHashIsFNV1a64OfTheID() {
        // Computed independently (Python) for this id; PolicyCompiler's Naming.shortHash spells it the same way.
        XCTAssertEqual(PolicyReference.id("shop/allow-web").hashText, "d5260a8afe22ef40")
        XCTAssertEqual(PolicyReference.hash(of: ""), 0xcbf2_9ce4_8422_2325)
    }

    func testLongIDIsWrittenAsItsHashAndStillFits() throws {
        let id = String(repeating: "a", count: 30) + "/" + String(repeating: "b", count: 30)
        let prefix = LogPrefix.policyRule(verdict: .deny, reporter: .source, policy: .id(id), rule: 65535)
        XCTAssertEqual(prefix.text, "palisade deny eg #b5559ecda5a07bd8 65535 ")
        XCTAssertLessThanOrEqual(prefix.text.utf8.count, LogPrefix.maximumLength)
        let parsed = try LogPrefix(parsing: prefix.text)
        guard case .policyRule(.deny, .source, let reference, 65535) = parsed else {
            return XCTFail("parsed as \(parsed)")
        }
        XCTAssertEqual(reference, .hash(0xb555_9ecd_a5a0_7bd8))
        XCTAssertTrue(reference.refers(to: id))
        XCTAssertFalse(reference.refers(to: "shop/allow-web"))
        XCTAssertEqual(PolicyDirectory(policyIDs: ["shop/allow-web", id]).resolve(reference), id)
        XCTAssertEqual(PolicyDirectory(policyIDs: ["shop/allow-web"]).resolve(reference), "#b5559ecda5a07bd8",
                       "an unknown hash stays visible as a hash")
    }

    func testIDThatFitsExactlyStaysLiteralAndOneMoreByteIsHashed() {
        // "palisade allow eg " (18) + id + " 65535 " (7) = 63 when the id has 38 bytes.
        let fits = "ns/" + String(repeating: "x", count: 35)
        XCTAssertEqual(fits.utf8.count, 38)
        let literal = LogPrefix.policyRule(verdict: .allow, reporter: .source, policy: .id(fits), rule: 65535).text
        XCTAssertEqual(literal.utf8.count, 63)
        XCTAssertTrue(literal.contains(fits))
        let tooLong = fits + "x"
        let hashed = LogPrefix.policyRule(verdict: .allow, reporter: .source, policy: .id(tooLong), rule: 65535).text
        XCTAssertFalse(hashed.contains("ns/"))
        XCTAssertTrue(hashed.contains("#"))
        // A shorter rule index leaves room for a longer literal id.
        XCTAssertTrue(LogPrefix.policyRule(verdict: .allow, reporter: .source, policy: .id(tooLong), rule: 0).text.contains(tooLong))
    }

    func testIDWithUnsafeCharactersIsHashed() {
        for id in ["shop/web api", "shop/\"x\"", "noslash", "a/b/c", "shop/wéb"] {
            let text = LogPrefix.policyRule(verdict: .deny, reporter: .source, policy: .id(id), rule: 1).text
            XCTAssertEqual(text, "palisade deny eg #\(PolicyReference.id(id).hashText) 1 ", id)
        }
    }

    func testRoundTripOfEveryShape() throws {
        var prefixes: [LogPrefix] = [.quarantine(reporter: .source), .quarantine(reporter: .destination)]
        for reporter in Reporter.allCases {
            for action in FlowAction.allCases { prefixes.append(.defaultPolicy(action: action, reporter: reporter)) }
            for verdict in LogPrefix.Verdict.allCases {
                for rule: UInt16 in [0, 7, 10, 65535] {
                    prefixes.append(.policyRule(verdict: verdict, reporter: reporter, policy: .id("kube-system/allow-dns.v2_x"), rule: rule))
                    prefixes.append(.policyRule(verdict: verdict, reporter: reporter, policy: .hash(0x0123_4567_89ab_cdef), rule: rule))
                }
            }
        }
        for prefix in prefixes {
            XCTAssertLessThanOrEqual(prefix.text.utf8.count, 63, prefix.text)
            XCTAssertEqual(try LogPrefix(parsing: prefix.text), prefix, prefix.text)
            // Without the trailing space, and as NFLOG hands it over: bytes with the NUL.
            XCTAssertEqual(try LogPrefix(parsing: String(prefix.text.dropLast())), prefix)
            XCTAssertEqual(try LogPrefix(parsing: Array(prefix.text.utf8) + [0]), prefix)
        }
        XCTAssertEqual(Set(prefixes.map(\.text)).count, prefixes.count, "distinct prefixes, distinct texts")
    }

    func testActionAndReporter() throws {
        XCTAssertEqual(try LogPrefix(parsing: "palisade log in ns/p 3").action, nil)
        XCTAssertEqual(try LogPrefix(parsing: "palisade allow in ns/p 3").action, .allow)
        XCTAssertEqual(try LogPrefix(parsing: "palisade deny in quarantine").action, .deny)
        XCTAssertEqual(try LogPrefix(parsing: "palisade deny in quarantine").reporter, .destination)
        XCTAssertEqual(try LogPrefix(parsing: "palisade deny eg default").reporter, .source)
    }

    func testRejectsGarbage() {
        let garbage = [
            "",
            " ",
            "palisade",
            "palisade ",
            "palisade deny eg",                          // no subject
            "palisade shop/web in 3 ",                   // the old format: no verdict
            "palisade quarantine in ",                   // the old quarantine format
            "Palisade deny eg default",                  // keyword is case-sensitive
            "palisadex deny eg default",
            " palisade deny eg default",                 // leading space
            "palisade  deny eg default",                 // two spaces
            "palisade deny eg default  ",                // two trailing spaces
            "palisade drop eg default",                  // unknown verdict
            "palisade deny out default",                 // unknown direction
            "palisade deny eg default 3",                // default takes no rule
            "palisade allow eg quarantine",              // quarantine only denies
            "palisade log eg default",                   // a default does not log
            "palisade log eg quarantine",
            "palisade deny eg shop/web",                 // policy without rule
            "palisade deny eg shop/web 1 2",             // two rules
            "palisade deny eg shop/web -1",
            "palisade deny eg shop/web 01",              // leading zero
            "palisade deny eg shop/web 65536",           // out of range
            "palisade deny eg shop/web 1e3",
            "palisade deny eg shop/web x",
            "palisade deny eg web 1",                    // literal without a slash
            "palisade deny eg a/b/c 1",                  // two slashes
            "palisade deny eg /web 1",
            "palisade deny eg shop/ 1",
            "palisade deny eg sh\"op/web 1",
            "palisade deny eg #0123456789abcde 1",       // 15 hex digits
            "palisade deny eg #0123456789abcdef0 1",     // 17
            "palisade deny eg #0123456789ABCDEF 1",      // uppercase
            "palisade deny eg #0123456789abcdeg 1",
            "palisade deny eg #+123456789abcdef 1",
            "palisade\tdeny eg default",                 // tab
            "palisade deny eg default\n",
            "palisade deny eg shop/wéb 1",               // not ASCII
            "palisade deny eg ns/" + String(repeating: "x", count: 60) + " 1",   // longer than 63 bytes
        ]
        for text in garbage {
            XCTAssertThrowsError(try LogPrefix(parsing: text), "accepted \(text.debugDescription)") { error in
                XCTAssertTrue(error is LogPrefixError)
            }
        }
        XCTAssertThrowsError(try LogPrefix(parsing: [0x70, 0xff, 0x00]))
    }

    func testErrorSaysWhatIsWrong() {
        XCTAssertThrowsError(try LogPrefix(parsing: "palisade deny eg shop/web 65536")) { error in
            XCTAssertEqual("\(error)", "log prefix \"palisade deny eg shop/web 65536\" rule index \"65536\" is not a number from 0 to 65535 without leading zeros")
        }
        XCTAssertThrowsError(try LogPrefix(parsing: "kube-proxy: DROP ")) { error in
            XCTAssertTrue("\(error)".contains("is not a Palisade log rule"), "\(error)")
        }
    }

    func testDirectoryReportsCollisionsInsteadOfOverwriting() {
        var directory = PolicyDirectory(policyIDs: ["shop/a", "shop/a"])
        XCTAssertEqual(directory.collisions, [], "the same id twice is no collision")
        directory.insert("shop/b")
        XCTAssertEqual(directory.resolve(.hash(PolicyReference.hash(of: "shop/b"))), "shop/b")
        XCTAssertEqual(directory.resolve(.id("x/y")), "x/y")
    }
}
