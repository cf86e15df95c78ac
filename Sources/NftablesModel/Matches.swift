// Building blocks for rules, each the exact expression sequence nft itself emits for the same
// match, so that `nft list` prints our rules in its own syntax.
import NetworkAddress

public enum InterfaceSide: Hashable, Sendable {
    case input, output
    var metaKey: MetaKey { self == .input ? .iifname : .oifname }
}

public enum AddressSide: Hashable, Sendable {
    case source, destination
}

/// Conntrack state bits (NF_CT_STATE_*_BIT).
public struct CtStateSet: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let invalid = CtStateSet(rawValue: 1)
    public static let established = CtStateSet(rawValue: 2)
    public static let related = CtStateSet(rawValue: 4)
    public static let new = CtStateSet(rawValue: 8)
    public static let untracked = CtStateSet(rawValue: 64)

    static let names: [(CtStateSet, String)] = [
        (.invalid, "invalid"), (.established, "established"), (.related, "related"),
        (.new, "new"), (.untracked, "untracked"),
    ]
}

public enum Match {
    /// `iifname vmap @MAP` / `oifname vmap @MAP`
    public static func interfaceVmap(_ side: InterfaceSide, map: String) -> [Expr] {
        [.meta(key: side.metaKey, dreg: .reg1), .lookup(sreg: .reg1, set: map, dreg: .verdictRegister, invert: false)]
    }

    /// `iifname @SET`: the interface is in an ifname set.
    public static func interfaceInSet(_ side: InterfaceSide, _ set: String) -> [Expr] {
        [.meta(key: side.metaKey, dreg: .reg1), .lookup(sreg: .reg1, set: set, dreg: nil, invert: false)]
    }

    /// `iifname "PREFIX*"`: compares only the prefix's bytes.
    public static func interfacePrefix(_ side: InterfaceSide, _ prefix: String) -> [Expr] {
        [.meta(key: side.metaKey, dreg: .reg1), .cmp(sreg: .reg1, op: .eq, data: Array(prefix.utf8))]
    }

    /// `iifname "NAME"`: the full name, NUL-padded to IFNAMSIZ.
    public static func interfaceName(_ side: InterfaceSide, _ name: String) -> [Expr] {
        [.meta(key: side.metaKey, dreg: .reg1), .cmp(sreg: .reg1, op: .eq, data: Bytes.ifname(name))]
    }

    /// `ct state S1,S2`
    public static func ctState(_ states: CtStateSet) -> [Expr] {
        [.ct(key: .state, dreg: .reg1),
         .bitwise(sreg: .reg1, dreg: .reg1, mask: Bytes.hostU32(states.rawValue), xor: Bytes.hostU32(0)),
         .cmp(sreg: .reg1, op: .neq, data: Bytes.hostU32(0))]
    }

    /// `meta nfproto ipv4|ipv6`: the dependency of every address match in an inet table.
    public static func family(_ family: IPFamily) -> [Expr] {
        [.meta(key: .nfproto, dreg: .reg1), .cmp(sreg: .reg1, op: .eq, data: [family == .ipv4 ? 2 : 10])]
    }

    static func addressPayload(_ side: AddressSide, _ family: IPFamily) -> Expr {
        switch (family, side) {
        case (.ipv4, .source): return .payload(base: .network, offset: 12, length: 4, dreg: .reg1)
        case (.ipv4, .destination): return .payload(base: .network, offset: 16, length: 4, dreg: .reg1)
        case (.ipv6, .source): return .payload(base: .network, offset: 8, length: 16, dreg: .reg1)
        case (.ipv6, .destination): return .payload(base: .network, offset: 24, length: 16, dreg: .reg1)
        }
    }

    /// `ip saddr @SET` / `ip6 daddr != @SET`
    public static func address(_ side: AddressSide, _ family: IPFamily, inSet set: String, invert: Bool = false) -> [Expr] {
        Match.family(family) + [addressPayload(side, family), .lookup(sreg: .reg1, set: set, dreg: nil, invert: invert)]
    }

    /// `ip saddr 198.51.100.0/24` (a bare address when the prefix is a host prefix)
    public static func address(_ side: AddressSide, in cidr: CIDR) -> [Expr] {
        var exprs = Match.family(cidr.family) + [addressPayload(side, cidr.family)]
        if cidr.prefixLength < cidr.family.bitCount {
            let zero = [UInt8](repeating: 0, count: cidr.address.bytes.count)
            exprs.append(.bitwise(sreg: .reg1, dreg: .reg1, mask: cidr.maskBytes, xor: zero))
        }
        exprs.append(.cmp(sreg: .reg1, op: .eq, data: cidr.address.bytes))
        return exprs
    }

    /// `ip daddr . tcp dport @SET` (a concatenated `address . inet_service` set). As nft does, the
    /// address goes to register 1 and the port to the 32-bit register right after the address
    /// (9 after an IPv4 address, 2 — the kernel's name for 32-bit register 12 — after IPv6).
    public static func destinationAddressPort(_ family: IPFamily, protocol number: UInt8, inSet set: String) -> [Expr] {
        addressPort(.destination, family, protocol: number, inSet: set)
    }

    /// `ip saddr . tcp sport @SET` / `ip6 daddr . udp dport != @SET`
    public static func addressPort(_ side: AddressSide, _ family: IPFamily, protocol number: UInt8, inSet set: String,
                                   invert: Bool = false) -> [Expr] {
        let portRegister: Register = family == .ipv4 ? 9 : 2
        return Match.family(family) + l4proto(number) + [
            addressPayload(side, family),
            .payload(base: .transport, offset: side == .source ? 0 : 2, length: 2, dreg: portRegister),
            .lookup(sreg: .reg1, set: set, dreg: nil, invert: invert),
        ]
    }

    /// `iifname . ip saddr != @SET`: the pair of input interface and source address is (not) in a
    /// concatenated `ifname . address` set. The name fills register 1 (16 bytes); the address goes
    /// to the register right after it: 16-byte register 2 (the kernel names 32-bit register 12 so
    /// too, being 16-byte aligned), for either family.
    public static func interfaceSourceAddress(_ family: IPFamily, inSet set: String, invert: Bool = false) -> [Expr] {
        let addressRegister: Register = 2
        let load: Expr = family == .ipv4 ? .payload(base: .network, offset: 12, length: 4, dreg: addressRegister)
                                         : .payload(base: .network, offset: 8, length: 16, dreg: addressRegister)
        return Match.family(family) + [
            .meta(key: InterfaceSide.input.metaKey, dreg: .reg1),
            load,
            .lookup(sreg: .reg1, set: set, dreg: nil, invert: invert),
        ]
    }

    /// `tcp dport 80`, `udp sport 9000-9010`, with its `meta l4proto` dependency.
    public static func port(_ side: AddressSide, protocol number: UInt8, _ range: ClosedRange<UInt16>) -> [Expr] {
        var exprs = l4proto(number) + [.payload(base: .transport, offset: side == .source ? 0 : 2, length: 2, dreg: .reg1)]
        if range.lowerBound == range.upperBound {
            exprs.append(.cmp(sreg: .reg1, op: .eq, data: Bytes.bigEndianU16(range.lowerBound)))
        } else {
            exprs.append(.cmp(sreg: .reg1, op: .gte, data: Bytes.bigEndianU16(range.lowerBound)))
            exprs.append(.cmp(sreg: .reg1, op: .lte, data: Bytes.bigEndianU16(range.upperBound)))
        }
        return exprs
    }

    /// `tcp dport @SET` / `tcp dport != @SET` for an (interval) inet_service set.
    public static func port(_ side: AddressSide, protocol number: UInt8, inSet set: String, invert: Bool = false) -> [Expr] {
        l4proto(number) + [
            .payload(base: .transport, offset: side == .source ? 0 : 2, length: 2, dreg: .reg1),
            .lookup(sreg: .reg1, set: set, dreg: nil, invert: invert),
        ]
    }

    /// `meta l4proto != N`
    public static func notL4proto(_ number: UInt8) -> [Expr] {
        [.meta(key: .l4proto, dreg: .reg1), .cmp(sreg: .reg1, op: .neq, data: [number])]
    }

    /// `icmp type 8` / `icmpv6 code != 0` (protocol 1 or 58), with the l4proto dependency.
    public static func icmpField(protocol number: UInt8, code: Bool, _ value: UInt8, equal: Bool = true) -> [Expr] {
        l4proto(number) + [
            .payload(base: .transport, offset: code ? 1 : 0, length: 1, dreg: .reg1),
            .cmp(sreg: .reg1, op: equal ? .eq : .neq, data: [value]),
        ]
    }

    /// `ip saddr @SET` where SET is an interval set of prefixes (the lookup is the same as for a
    /// plain set; the set's flags make it a range match).
    public static func address(_ side: AddressSide, _ family: IPFamily, inIntervalSet set: String) -> [Expr] {
        address(side, family, inSet: set)
    }

    /// `meta l4proto N`
    public static func l4proto(_ number: UInt8) -> [Expr] {
        [.meta(key: .l4proto, dreg: .reg1), .cmp(sreg: .reg1, op: .eq, data: [number])]
    }

    /// `tcp dport 80` or `tcp dport 9000-9010`, with its `meta l4proto` dependency.
    public static func destinationPort(protocol number: UInt8, _ range: ClosedRange<UInt16>) -> [Expr] {
        port(.destination, protocol: number, range)
    }
}

/// Byte encodings the kernel expects.
public enum Bytes {
    public static let interfaceNameSize = 16

    public static func ifname(_ name: String) -> [UInt8] {
        var bytes = Array(name.utf8.prefix(interfaceNameSize - 1))
        bytes += [UInt8](repeating: 0, count: interfaceNameSize - bytes.count)
        return bytes
    }

    public static func ifnameString(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A u32 in the machine's byte order (ct state, marks): little endian on the platforms Swift runs on here.
    public static func hostU32(_ value: UInt32) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    public static func hostU32(from bytes: [UInt8]) -> UInt32? {
        guard bytes.count == 4 else { return nil }
        return UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    }

    public static func bigEndianU16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

    public static func bigEndianU16(from bytes: [UInt8]) -> UInt16? {
        guard bytes.count == 2 else { return nil }
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }
}

public extension SetElement {
    static func interface(_ name: String, verdict: Verdict) -> SetElement {
        SetElement(key: Bytes.ifname(name), verdict: verdict)
    }
    static func address(_ address: IPAddress) -> SetElement {
        SetElement(key: address.bytes)
    }
}
