// Codec round trips without the kernel (no root needed): encode into libnftnl objects, decode back.
import XCTest
import NftablesModel
@testable import NftablesNetlink

final class CodecTests: XCTestCase {
    static let everyExpression: [Expr] = [
        .meta(key: .iifname, dreg: 1), .meta(key: .oifname, dreg: 2), .meta(key: .mark, dreg: 9),
        .meta(key: .nfproto, dreg: 1), .meta(key: .l4proto, dreg: 1),
        .payload(base: .link, offset: 12, length: 2, dreg: 1),
        .payload(base: .network, offset: 12, length: 4, dreg: 1),
        .payload(base: .transport, offset: 2, length: 2, dreg: 10),
        .cmp(sreg: 1, op: .eq, data: [1, 2, 3, 4]), .cmp(sreg: 1, op: .neq, data: [0]),
        .cmp(sreg: 1, op: .lt, data: [0, 80]), .cmp(sreg: 1, op: .lte, data: [0, 80]),
        .cmp(sreg: 1, op: .gt, data: [0, 80]), .cmp(sreg: 1, op: .gte, data: Array(repeating: 7, count: 16)),
        .bitwise(sreg: 1, dreg: 1, mask: [6, 0, 0, 0], xor: [0, 0, 0, 0]),
        .bitwise(sreg: 1, dreg: 2, mask: [255, 255, 255, 0], xor: [0, 0, 0, 1]),
        .lookup(sreg: 1, set: "s", dreg: nil, invert: false),
        .lookup(sreg: 1, set: "s", dreg: nil, invert: true),
        .lookup(sreg: 1, set: "vmap", dreg: 0, invert: false),
        .ct(key: .state, dreg: 1),
        .verdict(.accept), .verdict(.drop), .verdict(.return), .verdict(.continue),
        .verdict(.jump("chain-a")), .verdict(.goto("chain-b")),
        .counter,
        .log(group: nil, prefix: nil), .log(group: 5, prefix: nil), .log(group: nil, prefix: "p: "),
        .log(group: 0, prefix: "both "),
    ]

    func testEveryExpressionDecodesToItself() throws {
        for expr in Self.everyExpression {
            let encoded = try ExprCodec.encode(expr)
            let decoded = try ExprCodec.decode(BorrowedExpr(pointer: encoded.pointer), context: "test")
            XCTAssertEqual(decoded, expr)
        }
    }

    func testRuleWithCommentDecodesToItself() throws {
        let rule = Rule(Self.everyExpression, comment: "a comment with \"quotes\" and ünïcode")
        let encoded = try RuleCodec.encode(table: "t", family: .inet, chain: "c", rule: rule)
        let (chain, decoded) = try RuleCodec.decode(encoded, table: "t")
        XCTAssertEqual(chain, "c")
        XCTAssertEqual(decoded, rule)
        let plain = Rule([.counter])
        XCTAssertEqual(try RuleCodec.decode(try RuleCodec.encode(table: "t", family: .inet, chain: "c", rule: plain), table: "t").rule, plain)
    }

    func testSetHeadersDecodeToThemselves() throws {
        for set in [NftSet(name: "a", keyType: .ipv4Address), NftSet(name: "b", keyType: .ipv6Address),
                    NftSet(name: "c", keyType: .ifname, dataType: .verdict), NftSet(name: "d", keyType: .inetService)] {
            XCTAssertEqual(try SetCodec.decode(try SetCodec.encode(table: "t", family: .inet, set: set), table: "t"), set)
        }
    }

    func testChainHeadersDecodeToThemselves() throws {
        for chain in [Chain(name: "plain"),
                      Chain(name: "fw", hook: ChainHook(point: .forward, priority: -150, policy: .drop)),
                      Chain(name: "in", hook: ChainHook(point: .input, priority: 10, policy: .accept))] {
            XCTAssertEqual(try ChainCodec.decode(try ChainCodec.encode(table: "t", family: .inet, chain: chain), table: "t"), chain)
        }
    }

    func testElementChunksStayUnderTheNetlinkNestLimit() {
        let elements = (0..<20_000).map { SetElement(key: Sample.ifname("v\($0)"), verdict: .jump("chain-with-a-long-name-\($0)")) }
        let chunks = SetCodec.chunks(elements)
        XCTAssertGreaterThan(chunks.count, 1)
        XCTAssertEqual(chunks.reduce(0) { $0 + $1.count }, elements.count)
        for chunk in chunks {
            XCTAssertLessThanOrEqual(chunk.reduce(0) { $0 + SetCodec.encodedSize($1) }, SetCodec.elementBytesPerMessage)
        }
        XCTAssertTrue(SetCodec.chunks([]).isEmpty)
    }

    func testErrorDescriptionNamesOperationAndErrno() {
        let change = Change.addRule(table: "t", family: .inet, chain: "c", rule: Rule([.verdict(.jump("x"))]))
        let error = NftablesError(kind: .rejected, operation: change.summary, changeIndex: 4, code: ENOENT, detail: "rolled back")
        XCTAssertTrue(error.description.contains(change.summary))
        XCTAssertTrue(error.description.contains("No such file or directory (ENOENT)"))
        XCTAssertTrue(error.description.contains("#4"))
    }
}
