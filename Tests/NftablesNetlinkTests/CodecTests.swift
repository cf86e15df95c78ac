// Codec round trips without the kernel (no root needed): encode into libnftnl objects, decode back.
import CNftnl
import XCTest
import NetworkAddress
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

    func testIntervalAndConcatenatedSetHeadersDecodeToThemselves() throws {
        for set in [NftSet(name: "a", keyType: .ipv4Address, flags: .interval), NftSet(name: "b", keyType: .ipv6Address, flags: .interval),
                    NftSet(name: "c", keyType: .inetService, flags: .interval),
                    NftSet(name: "d", keyType: .ipv4AddressService), NftSet(name: "e", keyType: .ipv6AddressService)] {
            let encoded = try SetCodec.encode(table: "t", family: .inet, set: set)
            XCTAssertEqual(try SetCodec.decode(encoded, table: "t"), set)
            XCTAssertEqual(encoded.u32(NFTNL_SET_FLAGS), set.isInterval ? 4 : 0)
            XCTAssertEqual(encoded.u32(NFTNL_SET_KEY_TYPE), set.keyType.nftTypeId)
            XCTAssertEqual(encoded.u32(NFTNL_SET_KEY_LEN), set.keyType.keyLength)
            // As nft writes them: the key byte order is big endian (2), or 0 for a concatenation.
            let order = NftnlUserdata.parse(encoded.bytes(NFTNL_SET_USERDATA) ?? []).first { $0.type == 0 }?.value
            XCTAssertEqual(order, set.keyType.concatenatedParts == nil ? [2, 0, 0, 0] : [0, 0, 0, 0], set.name)
        }
        XCTAssertEqual(SetDataType.ipv4AddressService.nftTypeId, 0x1cd, "nft's id of ipv4_addr . inet_service")
    }

    func testConcatenationFieldLengthsAreChecked() throws {
        let set = NftSet(name: "np", keyType: .ipv4AddressService)
        for (fields, accepted) in [([UInt8](arrayLiteral: 4, 2), true), ([4, 4], false)] {
            let encoded = try SetCodec.encode(table: "t", family: .inet, set: set)
            fields.withUnsafeBytes { encoded.set(NFTNL_SET_DESC_CONCAT, bytes: $0) }
            if accepted {
                XCTAssertEqual(try SetCodec.decode(encoded, table: "t"), set)
            } else {
                XCTAssertThrowsError(try SetCodec.decode(encoded, table: "t")) { error in
                    XCTAssertEqual((error as? NftablesError)?.kind, .unsupported)
                }
            }
        }
    }

    /// The compiler builds these with the model's helpers; the samples the kernel tests use are
    /// written out byte by byte. Both must agree.
    func testModelHelpersBuildWhatTheKernelTestsUse() throws {
        let cidrs = ["198.18.0.64/27", "198.18.0.96/27", "198.51.100.0/24", "203.0.113.8/29"].compactMap { CIDR($0) }
        XCTAssertEqual(IntervalElements.elements(for: cidrs), Sample.intervalTable(name: "t").sets["net"]?.elements)
        let v6 = ["2001:db8::1/128", "2001:db8:1::/48", "8000::/1"].compactMap { CIDR($0) }
        XCTAssertEqual(IntervalElements.elements(for: v6), Sample.intervalTable(name: "t").sets["net6"]?.elements)
        XCTAssertEqual(SetElement.addressPort(try XCTUnwrap(IPAddress("198.18.0.1")), 80),
                       SetElement(key: Sample.addressPort(Sample.ipv4(198, 18, 0, 1), 80)))
        let rules = Sample.intervalTable(name: "t").chains["input"]?.rules.map(\.exprs) ?? []
        XCTAssertEqual(Match.address(.source, .ipv4, inIntervalSet: "net") + [.verdict(.drop)], rules.first)
        XCTAssertEqual(Match.destinationAddressPort(.ipv4, protocol: 6, inSet: "np") + [.verdict(.accept)], rules[3])
        XCTAssertEqual(Match.destinationAddressPort(.ipv6, protocol: 6, inSet: "np6") + [.verdict(.accept)], rules[4])
    }

    func testIntervalElementsKeepTheirEndFlagAndNftsLeadingEndIsDropped() throws {
        let elements = [SetElement(key: [198, 51, 100, 0]), SetElement(key: [198, 51, 101, 0], isIntervalEnd: true),
                        SetElement(key: [0, 0, 0, 0], isIntervalEnd: true)]
        for withData in [true, false] {
            let carrier = try SetCodec.elementCarrier(table: "t", family: .inet, set: "s", elements: elements[...], withData: withData)
            let decoded = try carrier.elements().map { try SetCodec.decodeElement(BorrowedSetElement(pointer: $0), set: "s") }
            XCTAssertEqual(decoded, [elements[0], elements[1], nil])
        }
        // A start element at key 0 is a range start like any other.
        let zeroStart = try SetCodec.elementCarrier(table: "t", family: .inet, set: "s",
                                                    elements: [SetElement(key: [0, 0, 0, 0])], withData: true)
        XCTAssertEqual(try zeroStart.elements().map { try SetCodec.decodeElement(BorrowedSetElement(pointer: $0), set: "s") },
                       [SetElement(key: [0, 0, 0, 0])])
        XCTAssertEqual(SetCodec.encodedSize(elements[1]), SetCodec.encodedSize(elements[0]) + 8)
    }

    func testIntervalElementsGoToTheKernelInAscendingOrder() {
        let s10 = SetElement(key: [10, 0, 0, 0]), e20 = SetElement(key: [20, 0, 0, 0], isIntervalEnd: true)
        let s20 = SetElement(key: [20, 0, 0, 0]), e30 = SetElement(key: [30, 0, 0, 0], isIntervalEnd: true)
        XCTAssertEqual(SetCodec.kernelOrder([e30, s20, e20, s10]), [s10, e20, s20, e30])
        XCTAssertEqual(SetCodec.kernelOrder([s20, e30, e20, s10]), [s10, e20, s20, e30])
        // Lists without interval ends (plain sets, maps) keep their order.
        XCTAssertEqual(SetCodec.kernelOrder([s20, s10]), [s20, s10])
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
