import NetworkAddress
import NftablesModel
import XCTest

/// The tracer interprets the table model as nf_tables does. Each test hand-builds a small table
/// around one expression kind or one piece of chain-traversal semantics.
final class PacketTracerTests: XCTestCase {
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    /// A TCP SYN from plweb (198.18.0.11:40000) to pldb (198.18.0.12:5432).
    static let syn = TracePacket(inputInterface: "plweb", outputInterface: "pldb",
                                 source: ip("198.18.0.11"), destination: ip("198.18.0.12"), l4proto: 6,
                                 sourcePort: 40000, destinationPort: 5432)

    func table(policy: Verdict = .accept, _ forward: [Rule], chains: [Chain] = [], sets: [NftSet] = []) -> Table {
        Table(name: "t", chains: [Chain(name: "forward", hook: ChainHook(point: .forward, policy: policy), rules: forward)] + chains,
              sets: sets)
    }

    func verdict(_ table: Table, _ packet: TracePacket = syn, hook: ChainHook.Point = .forward,
                 file: StaticString = #filePath, line: UInt = #line) -> Verdict? {
        do {
            return try PacketTracer.trace(table, packet: packet, hook: hook).verdict
        } catch {
            XCTFail("trace failed: \(error)", file: file, line: line)
            return nil
        }
    }

    /// The verdict of a one-rule forward chain (policy accept) whose rule is `exprs` + drop:
    /// drop means every expression passed.
    func matches(_ exprs: [Expr], _ packet: TracePacket = syn, sets: [NftSet] = [],
                 file: StaticString = #filePath, line: UInt = #line) -> Bool {
        verdict(table([Rule(exprs + [.verdict(.drop)])], sets: sets), packet, file: file, line: line) == .drop
    }

    // MARK: Loads and compares

    func testMetaInterfaceNamesExactAndPrefix() {
        XCTAssertTrue(matches(Match.interfaceName(.input, "plweb")))
        XCTAssertFalse(matches(Match.interfaceName(.input, "plwe")), "a full-name compare includes the NUL padding")
        XCTAssertTrue(matches(Match.interfacePrefix(.input, "plw")))
        XCTAssertTrue(matches(Match.interfaceName(.output, "pldb")))
        XCTAssertFalse(matches(Match.interfacePrefix(.output, "eth")))
        var noInput = Self.syn
        noInput.inputInterface = nil
        XCTAssertTrue(matches(Match.interfaceName(.input, ""), noInput), "no device loads an empty name")
    }

    func testMetaNfprotoL4protoAndMark() {
        XCTAssertTrue(matches(Match.family(.ipv4)))
        XCTAssertFalse(matches(Match.family(.ipv6)))
        XCTAssertTrue(matches(Match.l4proto(6)))
        XCTAssertFalse(matches(Match.l4proto(17)))
        var marked = Self.syn
        marked.mark = 0x10
        let markIs10: [Expr] = [.meta(key: .mark, dreg: .reg1), .cmp(sreg: .reg1, op: .eq, data: Bytes.hostU32(0x10))]
        XCTAssertTrue(matches(markIs10, marked))
        XCTAssertFalse(matches(markIs10))
        // `meta mark & 0x10 == 0x10` through a bitwise on the host-order word.
        var both = Self.syn
        both.mark = 0x11
        let bit: [Expr] = [.meta(key: .mark, dreg: .reg1),
                           .bitwise(sreg: .reg1, dreg: .reg1, mask: Bytes.hostU32(0x10), xor: Bytes.hostU32(0)),
                           .cmp(sreg: .reg1, op: .eq, data: Bytes.hostU32(0x10))]
        XCTAssertTrue(matches(bit, both))
        XCTAssertFalse(matches(bit))
    }

    func testPayloadAddressesAndPortsBothFamilies() {
        XCTAssertTrue(matches(Match.address(.source, in: CIDR("198.18.0.11/32")!)))
        XCTAssertTrue(matches(Match.address(.destination, in: CIDR("198.18.0.0/24")!)))
        XCTAssertFalse(matches(Match.address(.destination, in: CIDR("198.18.1.0/24")!)))
        XCTAssertTrue(matches(Match.destinationPort(protocol: 6, 5432...5432)))
        XCTAssertFalse(matches(Match.destinationPort(protocol: 6, 5433...5433)))
        XCTAssertTrue(matches(Match.l4proto(6) + [.payload(base: .transport, offset: 0, length: 2, dreg: .reg1),
                                                  .cmp(sreg: .reg1, op: .eq, data: Bytes.bigEndianU16(40000))]))

        let v6 = TracePacket(inputInterface: "plweb", outputInterface: "pldb", source: Self.ip("2001:db8::11"),
                             destination: Self.ip("2001:db8::12"), l4proto: 17, sourcePort: 40000, destinationPort: 53)
        XCTAssertTrue(matches(Match.family(.ipv6), v6))
        XCTAssertTrue(matches(Match.address(.source, in: CIDR("2001:db8::11/128")!), v6))
        XCTAssertTrue(matches(Match.address(.destination, in: CIDR("2001:db8::/64")!), v6))
        XCTAssertFalse(matches(Match.address(.source, in: CIDR("2001:db8:1::/48")!), v6))
        XCTAssertTrue(matches(Match.destinationPort(protocol: 17, 53...53), v6))
        XCTAssertFalse(matches(Match.destinationPort(protocol: 6, 53...53), v6), "the l4proto dependency fails for tcp")
        // An IPv4 address rule never matches an IPv6 packet: its nfproto dependency breaks first.
        XCTAssertFalse(matches(Match.address(.source, in: CIDR("0.0.0.0/0")!), v6))
    }

    func testPortRangesCompareBigEndianBytes() {
        // 256 is 0x0100: a numeric compare on host-order bytes would put it below 255 (0x00ff).
        for (port, inRange) in [(255, false), (256, true), (300, true), (1024, true), (1025, false)] as [(UInt16, Bool)] {
            var packet = Self.syn
            packet.destinationPort = port
            XCTAssertEqual(matches(Match.destinationPort(protocol: 6, 256...1024), packet), inRange, "port \(port)")
        }
        let lt: [Expr] = [.payload(base: .transport, offset: 2, length: 2, dreg: .reg1),
                          .cmp(sreg: .reg1, op: .lt, data: Bytes.bigEndianU16(5432))]
        let gt: [Expr] = [.payload(base: .transport, offset: 2, length: 2, dreg: .reg1),
                          .cmp(sreg: .reg1, op: .gt, data: Bytes.bigEndianU16(5431))]
        let neq: [Expr] = [.payload(base: .transport, offset: 2, length: 2, dreg: .reg1),
                           .cmp(sreg: .reg1, op: .neq, data: Bytes.bigEndianU16(5432))]
        XCTAssertFalse(matches(lt))
        XCTAssertTrue(matches(gt))
        XCTAssertFalse(matches(neq))
    }

    func testIcmpTypeAndCode() {
        let ping = TracePacket(inputInterface: "plweb", outputInterface: "pldb", source: Self.ip("198.18.0.11"),
                               destination: Self.ip("198.18.0.12"), l4proto: 1, icmpType: 8, icmpCode: 0)
        let type8: [Expr] = Match.l4proto(1) + [.payload(base: .transport, offset: 0, length: 1, dreg: .reg1),
                                                .cmp(sreg: .reg1, op: .eq, data: [8])]
        let code3: [Expr] = Match.l4proto(1) + [.payload(base: .transport, offset: 1, length: 1, dreg: .reg1),
                                                .cmp(sreg: .reg1, op: .eq, data: [3])]
        XCTAssertTrue(matches(type8, ping))
        XCTAssertFalse(matches(code3, ping))
        XCTAssertFalse(matches(Match.destinationPort(protocol: 6, 80...80), ping))
    }

    func testCtStateEstablishedVersusNew() {
        var reply = Self.syn
        reply.ctState = .established
        XCTAssertTrue(matches(Match.ctState([.established, .related]), reply))
        XCTAssertFalse(matches(Match.ctState([.established, .related])))
        XCTAssertTrue(matches(Match.ctState([.new])))
        XCTAssertFalse(matches(Match.ctState([.invalid])))
    }

    func testAPortLoadWithoutATransportHeaderBreaksTheRule() {
        var portless = Self.syn
        portless.destinationPort = nil
        XCTAssertFalse(matches([.payload(base: .transport, offset: 2, length: 2, dreg: .reg1),
                                .cmp(sreg: .reg1, op: .eq, data: [0, 0])], portless))
        XCTAssertTrue(matches(Match.l4proto(6), portless))
    }

    // MARK: Registers

    func testThirtyTwoBitRegistersViewTheDataRegisters() {
        // ip saddr -> reg 1 (bytes 0..3 = 32-bit reg 8), read back through reg 8; reg 9 is bytes 4..7.
        let viaReg8: [Expr] = [.payload(base: .network, offset: 12, length: 4, dreg: .reg1),
                               .cmp(sreg: 8, op: .eq, data: Self.ip("198.18.0.11").bytes)]
        XCTAssertTrue(matches(viaReg8))
        // Source and destination as one 8-byte load into reg 1: daddr lands in reg 9.
        let both: [Expr] = [.payload(base: .network, offset: 12, length: 8, dreg: .reg1),
                            .cmp(sreg: 9, op: .eq, data: Self.ip("198.18.0.12").bytes)]
        XCTAssertTrue(matches(both))
        // reg 2 is 32-bit reg 12.
        let reg2: [Expr] = [.payload(base: .network, offset: 16, length: 4, dreg: 12),
                            .cmp(sreg: 2, op: .eq, data: Self.ip("198.18.0.12").bytes)]
        XCTAssertTrue(matches(reg2))
        // A network-header load may run on into the transport header: offset 20 of an IPv4 header
        // without options is the source port.
        let sportFromNetwork: [Expr] = [.payload(base: .network, offset: 20, length: 2, dreg: .reg1),
                                        .cmp(sreg: .reg1, op: .eq, data: Bytes.bigEndianU16(40000))]
        XCTAssertTrue(matches(sportFromNetwork))
    }

    func testShortLoadsZeroTheRestOfTheirWord() {
        // A 16-byte ifname load leaves garbage-free bytes; then a 1-byte l4proto load into reg 8
        // must zero bytes 1..3 of that word, as nft_reg_store8 does.
        let exprs: [Expr] = [.meta(key: .iifname, dreg: .reg1), .meta(key: .l4proto, dreg: 8),
                             .cmp(sreg: 8, op: .eq, data: [6, 0, 0, 0])]
        XCTAssertTrue(matches(exprs))
    }

    func testBitwiseWritesItsDestinationRegister() {
        // daddr & 255.255.0.0 into reg 2; reg 1 keeps the unmasked address.
        let exprs: [Expr] = [.payload(base: .network, offset: 16, length: 4, dreg: .reg1),
                             .bitwise(sreg: .reg1, dreg: 2, mask: [255, 255, 0, 0], xor: [0, 0, 0, 0]),
                             .cmp(sreg: 2, op: .eq, data: [198, 18, 0, 0]),
                             .cmp(sreg: .reg1, op: .eq, data: [198, 18, 0, 12])]
        XCTAssertTrue(matches(exprs))
        let xor: [Expr] = [.payload(base: .network, offset: 16, length: 4, dreg: .reg1),
                           .bitwise(sreg: .reg1, dreg: .reg1, mask: [255, 255, 255, 255], xor: [0, 0, 0, 0xff]),
                           .cmp(sreg: .reg1, op: .eq, data: [198, 18, 0, 0xf3])]
        XCTAssertTrue(matches(xor))
    }

    func testBadRegisterIsATraceError() {
        let table = self.table([Rule([.meta(key: .l4proto, dreg: 5), .verdict(.drop)])])
        XCTAssertThrowsError(try PacketTracer.trace(table, packet: Self.syn, hook: .forward)) { error in
            XCTAssertEqual(error as? TraceError, .badRegister(5, chain: "forward", rule: 0))
        }
        let overrun = self.table([Rule([.meta(key: .iifname, dreg: 23), .verdict(.drop)])])
        XCTAssertThrowsError(try PacketTracer.trace(overrun, packet: Self.syn, hook: .forward))
    }

    // MARK: Sets and maps

    func testPlainSetLookupAndInvert() {
        let set = NftSet(name: "web", keyType: .ipv4Address, elements: [.address(Self.ip("198.18.0.11"))])
        XCTAssertTrue(matches(Match.address(.source, .ipv4, inSet: "web"), sets: [set]))
        XCTAssertFalse(matches(Match.address(.destination, .ipv4, inSet: "web"), sets: [set]))
        let notIn: [Expr] = Match.family(.ipv4) + [.payload(base: .network, offset: 16, length: 4, dreg: .reg1),
                                                   .lookup(sreg: .reg1, set: "web", dreg: nil, invert: true)]
        XCTAssertTrue(matches(notIn, sets: [set]), "ip daddr != @web")
        let sourceNotIn: [Expr] = Match.family(.ipv4) + [.payload(base: .network, offset: 12, length: 4, dreg: .reg1),
                                                         .lookup(sreg: .reg1, set: "web", dreg: nil, invert: true)]
        XCTAssertFalse(matches(sourceNotIn, sets: [set]))
    }

    func testIntervalSetBoundaries() {
        // 198.51.100.0/25 and 10.0.0.0/8: [198.51.100.0, 198.51.100.128) and [10.0.0.0, 11.0.0.0).
        let set = NftSet(name: "net", keyType: .ipv4Address, flags: .interval,
                         elements: IntervalElements.elements(for: [CIDR("198.51.100.0/25")!, CIDR("10.0.0.0/8")!]))
        let cases: [(String, Bool)] = [
            ("198.51.100.0", true),     // start: inclusive
            ("198.51.100.127", true),
            ("198.51.100.128", false),  // end element: exclusive
            ("198.51.99.255", false),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("9.255.255.255", false),
            ("0.0.0.0", false),         // below every element
        ]
        for (address, expected) in cases {
            var packet = Self.syn
            packet.source = Self.ip(address)
            XCTAssertEqual(matches(Match.address(.source, .ipv4, inIntervalSet: "net"), packet, sets: [set]), expected, address)
        }
    }

    func testOpenEndedIntervalRunsToTheTopOfTheKeySpace() {
        let set = NftSet(name: "top", keyType: .ipv4Address, flags: .interval,
                         elements: IntervalElements.elements(for: [CIDR("224.0.0.0/3")!]))
        XCTAssertEqual(set.elements.count, 1, "a range reaching 255.255.255.255 has no end element")
        for (address, expected) in [("255.255.255.255", true), ("224.0.0.0", true), ("223.255.255.255", false)] {
            var packet = Self.syn
            packet.destination = Self.ip(address)
            XCTAssertEqual(matches(Match.address(.destination, .ipv4, inIntervalSet: "top"), packet, sets: [set]), expected, address)
        }
    }

    func testAdjacentRangesStartWinsOverAnEndWithTheSameKey() {
        // Unmerged [10.0.0.0, 10.0.1.0) and [10.0.1.0, 10.0.2.0): 10.0.1.0 is both an end and a start.
        let set = NftSet(name: "adj", keyType: .ipv4Address, flags: .interval, elements: [
            SetElement(key: [10, 0, 0, 0]), SetElement(key: [10, 0, 1, 0], isIntervalEnd: true),
            SetElement(key: [10, 0, 1, 0]), SetElement(key: [10, 0, 2, 0], isIntervalEnd: true),
        ])
        for (address, expected) in [("10.0.1.0", true), ("10.0.1.255", true), ("10.0.2.0", false)] {
            var packet = Self.syn
            packet.source = Self.ip(address)
            XCTAssertEqual(matches(Match.address(.source, .ipv4, inSet: "adj"), packet, sets: [set]), expected, address)
        }
    }

    func testIPv6IntervalSet() {
        let set = NftSet(name: "net6", keyType: .ipv6Address, flags: .interval,
                         elements: IntervalElements.elements(for: CIDR("2001:db8::/32")!.subtracting([CIDR("2001:db8::/48")!])))
        for (address, expected) in [("2001:db8::1", false), ("2001:db8:1::1", true), ("2001:db9::", false)] {
            let packet = TracePacket(inputInterface: "a", outputInterface: "b", source: Self.ip(address),
                                     destination: Self.ip("2001:db8::12"), l4proto: 6, sourcePort: 1, destinationPort: 2)
            XCTAssertEqual(matches(Match.address(.source, .ipv6, inIntervalSet: "net6"), packet, sets: [set]), expected, address)
        }
    }

    func testConcatenatedAddressPortSetBothFamilies() {
        let v4 = NftSet(name: "np.v4", keyType: .ipv4AddressService,
                        elements: [.addressPort(Self.ip("198.18.0.12"), 5432), .addressPort(Self.ip("198.18.0.13"), 8080)])
        XCTAssertTrue(matches(Match.destinationAddressPort(.ipv4, protocol: 6, inSet: "np.v4"), sets: [v4]))
        var otherPort = Self.syn
        otherPort.destinationPort = 8080
        XCTAssertFalse(matches(Match.destinationAddressPort(.ipv4, protocol: 6, inSet: "np.v4"), otherPort, sets: [v4]),
                       "8080 is the port of .13, not of .12")
        XCTAssertFalse(matches(Match.destinationAddressPort(.ipv4, protocol: 17, inSet: "np.v4"), sets: [v4]))

        // IPv6: the address fills reg 1, the port goes to reg 2 (32-bit reg 12).
        let v6 = NftSet(name: "np.v6", keyType: .ipv6AddressService, elements: [.addressPort(Self.ip("2001:db8::12"), 5432)])
        let packet = TracePacket(inputInterface: "plweb", outputInterface: "pldb", source: Self.ip("2001:db8::11"),
                                 destination: Self.ip("2001:db8::12"), l4proto: 6, sourcePort: 40000, destinationPort: 5432)
        XCTAssertTrue(matches(Match.destinationAddressPort(.ipv6, protocol: 6, inSet: "np.v6"), packet, sets: [v6]))
        var wrong = packet
        wrong.destinationPort = 5433
        XCTAssertFalse(matches(Match.destinationAddressPort(.ipv6, protocol: 6, inSet: "np.v6"), wrong, sets: [v6]))
        // The port loaded into the wrong register (reg 10 instead of 9) builds a different key.
        let misplaced: [Expr] = [.payload(base: .network, offset: 16, length: 4, dreg: .reg1),
                                 .payload(base: .transport, offset: 2, length: 2, dreg: 10),
                                 .lookup(sreg: .reg1, set: "np.v4", dreg: nil, invert: false)]
        XCTAssertFalse(matches(misplaced, sets: [v4]))
    }

    func testVerdictMapDispatch() {
        let dispatch = NftSet(name: "dispatch", keyType: .ifname, dataType: .verdict, elements: [
            .interface("plweb", verdict: .jump("web")), .interface("plother", verdict: .drop),
        ])
        let web = Chain(name: "web", rules: [Rule([.verdict(.drop)], comment: "web out")])
        let table = self.table([Rule(Match.interfaceVmap(.input, map: "dispatch")), Rule([.verdict(.accept)], comment: "fallthrough")],
                               chains: [web], sets: [dispatch])
        let trace = try? PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace?.verdict, .drop)
        XCTAssertEqual(trace?.steps.map(\.chain), ["forward", "web"])
        XCTAssertEqual(trace?.steps.first?.event, .matched(.jump("web")))
        XCTAssertEqual(trace?.steps.first?.ruleText, "iifname vmap @dispatch")
        XCTAssertEqual(trace?.steps.last?.comment, "web out")

        var other = Self.syn
        other.inputInterface = "plother"
        XCTAssertEqual(verdict(table, other), .drop)
        var unknown = Self.syn
        unknown.inputInterface = "eth0"
        let missed = try? PacketTracer.trace(table, packet: unknown, hook: .forward)
        XCTAssertEqual(missed?.verdict, .accept)
        XCTAssertEqual(missed?.steps.map(\.comment), ["fallthrough"], "a vmap miss breaks the rule")
    }

    func testMissingSetAndChainAreTraceErrors() {
        let noSet = table([Rule(Match.address(.source, .ipv4, inSet: "ghost") + [.verdict(.drop)])])
        XCTAssertThrowsError(try PacketTracer.trace(noSet, packet: Self.syn, hook: .forward)) { error in
            XCTAssertEqual(error as? TraceError, .missingSet("ghost", chain: "forward", rule: 0))
        }
        let noChain = table([Rule([.verdict(.jump("ghost"))])])
        XCTAssertThrowsError(try PacketTracer.trace(noChain, packet: Self.syn, hook: .forward)) { error in
            XCTAssertEqual(error as? TraceError, .missingChain("ghost", from: "forward"))
        }
    }

    // MARK: Chain traversal

    func testJumpReturnsToTheRuleAfterTheJump() throws {
        let sub = Chain(name: "sub", rules: [Rule([.counter], comment: "counted")])   // ends: implicit return
        let table = self.table(policy: .accept, [Rule([.verdict(.jump("sub"))]), Rule([.verdict(.drop)], comment: "after")],
                               chains: [sub])
        let trace = try PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.verdict, .drop)
        XCTAssertEqual(trace.steps.map(\.comment), [nil, "counted", "after"])
        XCTAssertEqual(trace.steps[1].event, .matched(.continue))
    }

    func testExplicitReturn() throws {
        let sub = Chain(name: "sub", rules: [Rule([.verdict(.return)]), Rule([.verdict(.accept)], comment: "skipped")])
        let table = self.table([Rule([.verdict(.jump("sub"))]), Rule([.verdict(.drop)], comment: "after")], chains: [sub])
        let trace = try PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.verdict, .drop)
        XCTAssertEqual(trace.steps.map(\.comment), [nil, nil, "after"])
    }

    func testGotoThenImplicitReturnGoesToTheFrameBelow() throws {
        // forward: jump a; drop "after a".  a: goto b; accept "never".  b: (nothing matches).
        // The end of b returns past a (goto left no frame for it) to the rule after `jump a`.
        let a = Chain(name: "a", rules: [Rule([.verdict(.goto("b"))]), Rule([.verdict(.accept)], comment: "never")])
        let b = Chain(name: "b", rules: [Rule(Match.l4proto(17) + [.verdict(.accept)], comment: "udp only")])
        let table = self.table([Rule([.verdict(.jump("a"))]), Rule([.counter, .verdict(.drop)], comment: "after a")], chains: [a, b])
        let trace = try PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.verdict, .drop)
        XCTAssertEqual(trace.steps.map(\.chain), ["forward", "a", "forward"])
        XCTAssertEqual(trace.steps.last?.comment, "after a")
    }

    func testGotoFromTheBaseChainEndsInThePolicy() throws {
        let b = Chain(name: "b", rules: [])
        let table = self.table(policy: .drop, [Rule([.verdict(.goto("b"))]), Rule([.verdict(.accept)], comment: "never")], chains: [b])
        let trace = try PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.verdict, .drop)
        XCTAssertEqual(trace.steps.last?.event, .policy(.drop))
        XCTAssertNil(trace.steps.last?.ruleIndex)
    }

    func testReturnFromTheBaseChainIsItsPolicy() throws {
        let dropping = table(policy: .drop, [Rule([.verdict(.return)]), Rule([.verdict(.accept)], comment: "never")])
        let trace = try PacketTracer.trace(dropping, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.verdict, .drop)
        XCTAssertEqual(trace.steps.map(\.event), [.matched(.return), .policy(.drop)])
        XCTAssertEqual(verdict(table(policy: .accept, [Rule([.verdict(.return)]), Rule([.verdict(.drop)])])), .accept)
        XCTAssertEqual(verdict(table(policy: .drop, [])), .drop, "an empty base chain is its policy")
    }

    func testNestedJumpsUnwindInOrder() throws {
        let inner = Chain(name: "inner", rules: [Rule([.verdict(.return)])])
        let outer = Chain(name: "outer", rules: [Rule([.verdict(.jump("inner"))]), Rule([.counter], comment: "outer after inner")])
        let table = self.table(policy: .drop, [Rule([.verdict(.jump("outer"))]), Rule([.counter], comment: "forward after outer")],
                               chains: [inner, outer])
        let trace = try PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.steps.compactMap(\.comment), ["outer after inner", "forward after outer"])
        XCTAssertEqual(trace.verdict, .drop)
    }

    func testAVerdictEndsTheRuleAndLogContinuesIt() throws {
        let table = self.table([
            Rule([.log(group: 2, prefix: "seen "), .counter], comment: "log only"),
            Rule([.verdict(.accept), .verdict(.drop)], comment: "first verdict wins"),
        ])
        let trace = try PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.verdict, .accept)
        XCTAssertEqual(trace.steps.map(\.event), [.logged(prefix: "seen ", group: 2), .matched(.continue), .matched(.accept)])
    }

    func testCycleIsATraceErrorNotAHang() {
        let a = Chain(name: "a", rules: [Rule([.verdict(.goto("b"))])])
        let b = Chain(name: "b", rules: [Rule([.verdict(.goto("a"))])])
        XCTAssertThrowsError(try PacketTracer.trace(table([Rule([.verdict(.jump("a"))])], chains: [a, b]),
                                                    packet: Self.syn, hook: .forward))
        let selfJump = Chain(name: "loop", rules: [Rule([.verdict(.jump("loop"))])])
        XCTAssertThrowsError(try PacketTracer.trace(table([Rule([.verdict(.jump("loop"))])], chains: [selfJump]),
                                                    packet: Self.syn, hook: .forward))
    }

    // MARK: Hooks, priorities, families

    func testBaseChainsRunInPriorityOrderAcceptPassesOn() throws {
        let early = Chain(name: "z-early", hook: ChainHook(point: .forward, priority: -10, policy: .accept),
                          rules: [Rule([.verdict(.accept)], comment: "early")])
        let late = Chain(name: "a-late", hook: ChainHook(point: .forward, priority: 10, policy: .accept),
                         rules: [Rule([.verdict(.drop)], comment: "late")])
        let other = Chain(name: "out", hook: ChainHook(point: .output, policy: .drop), rules: [])
        let table = Table(name: "t", chains: [late, early, other])
        let trace = try PacketTracer.trace(table, packet: Self.syn, hook: .forward)
        XCTAssertEqual(trace.verdict, .drop, "an accept in one base chain hands the packet to the next")
        XCTAssertEqual(trace.steps.map(\.comment), ["early", "late"])
        XCTAssertEqual(try PacketTracer.trace(table, packet: Self.syn, hook: .output).verdict, .drop)
        XCTAssertEqual(try PacketTracer.trace(table, packet: Self.syn, hook: .input).verdict, .accept, "no base chain: accept")
    }

    func testAnIPFamilyTableDoesNotSeeIPv6() throws {
        let table = Table(family: .ip, name: "t", chains: [Chain(name: "f", hook: ChainHook(point: .forward, policy: .drop))])
        let v6 = TracePacket(inputInterface: "a", outputInterface: "b", source: Self.ip("2001:db8::1"),
                             destination: Self.ip("2001:db8::2"), l4proto: 6, sourcePort: 1, destinationPort: 2)
        XCTAssertEqual(try PacketTracer.trace(table, packet: v6, hook: .forward).verdict, .accept)
        XCTAssertEqual(try PacketTracer.trace(table, packet: Self.syn, hook: .forward).verdict, .drop)
    }

    func testStepsCarryTheRenderedRuleAndComment() throws {
        let table = self.table([Rule(Match.destinationPort(protocol: 6, 5432...5432) + [.verdict(.accept)], comment: "db")])
        let step = try XCTUnwrap(try PacketTracer.trace(table, packet: Self.syn, hook: .forward).steps.first)
        XCTAssertEqual(step.chain, "forward")
        XCTAssertEqual(step.ruleIndex, 0)
        XCTAssertEqual(step.ruleText, "tcp dport 5432 accept")
        XCTAssertEqual(step.comment, "db")
        XCTAssertEqual(step.description, "forward[0] tcp dport 5432 accept # db => accept")
    }
}
