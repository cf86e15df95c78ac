// Tables used by the tests, written with raw expressions (not the compiler's helpers) so that the
// netlink layer is tested on its own terms: every Expr case, both set kinds, a verdict map.
import NftablesModel

enum Sample {
    static func ifname(_ name: String) -> [UInt8] {
        Array(name.utf8) + [UInt8](repeating: 0, count: 16 - name.utf8.count)
    }
    static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] { [a, b, c, d] }
    static func ipv6(_ last: UInt8) -> [UInt8] { [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [last] }
    static func hostU32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    static func port(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

    /// `ct state S` (bits established 2, related 4, invalid 1): ct state is host byte order.
    static func ctState(_ bits: UInt32) -> [Expr] {
        [.ct(key: .state, dreg: 1),
         .bitwise(sreg: 1, dreg: 1, mask: hostU32(bits), xor: hostU32(0)),
         .cmp(sreg: 1, op: .neq, data: hostU32(0))]
    }

    /// One of everything: a forward base chain dispatching through ifname verdict maps, endpoint
    /// and policy chains using every Expr case, ipv4 and ipv6 sets, comments.
    static func fullTable(name: String) -> Table {
        let forward = Chain(name: "forward", hook: ChainHook(point: .forward, priority: 0, policy: .accept), rules: [
            Rule([.meta(key: .iifname, dreg: 1), .lookup(sreg: 1, set: "egress-dispatch", dreg: 0, invert: false)],
                 comment: "egress dispatch"),
            Rule([.meta(key: .oifname, dreg: 1), .lookup(sreg: 1, set: "ingress-dispatch", dreg: 0, invert: false)]),
        ])
        let input = Chain(name: "input", hook: ChainHook(point: .input, priority: -10, policy: .drop), rules: [
            Rule(ctState(2 | 4) + [.verdict(.accept)]),
            Rule([.meta(key: .iifname, dreg: 1), .cmp(sreg: 1, op: .eq, data: ifname("lo")), .verdict(.accept)]),
        ])
        let egress = Chain(name: "ep-1-egress", rules: [
            Rule(ctState(2 | 4) + [.verdict(.return)], comment: "established and related: pass on"),
            Rule(ctState(1) + [.counter, .verdict(.drop)]),
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [2]),
                  .payload(base: .network, offset: 16, length: 4, dreg: 1),
                  .lookup(sreg: 1, set: "sel-a-v4", dreg: nil, invert: false),
                  .verdict(.jump("pol-1-egress"))], comment: "policy shop/web"),
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [10]),
                  .payload(base: .network, offset: 24, length: 16, dreg: 1),
                  .lookup(sreg: 1, set: "sel-a-v6", dreg: nil, invert: true),
                  .verdict(.goto("quarantine"))]),
            Rule([.meta(key: .mark, dreg: 1),
                  .bitwise(sreg: 1, dreg: 1, mask: hostU32(0x10), xor: hostU32(0)),
                  .cmp(sreg: 1, op: .eq, data: hostU32(0x10)), .verdict(.return)]),
            Rule([.log(group: 5, prefix: "palisade deny ep-1: "), .verdict(.drop)], comment: "default deny"),
        ])
        let policy = Chain(name: "pol-1-egress", rules: [
            Rule([.meta(key: .l4proto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [6]),
                  .payload(base: .transport, offset: 2, length: 2, dreg: 1),
                  .cmp(sreg: 1, op: .gte, data: port(8000)), .cmp(sreg: 1, op: .lte, data: port(8080)),
                  .counter, .verdict(.accept)]),
            Rule([.meta(key: .l4proto, dreg: 1), .cmp(sreg: 1, op: .neq, data: [17]),
                  .payload(base: .transport, offset: 0, length: 2, dreg: 9),
                  .cmp(sreg: 9, op: .lt, data: port(1024)), .verdict(.continue)]),
            Rule([.meta(key: .l4proto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [17]),
                  .payload(base: .transport, offset: 2, length: 2, dreg: 1),
                  .cmp(sreg: 1, op: .gt, data: port(53)), .log(group: nil, prefix: "udp high port "), .verdict(.return)]),
            Rule([.meta(key: .oifname, dreg: 1), .cmp(sreg: 1, op: .eq, data: Array("veth".utf8)),
                  .log(group: 3, prefix: nil), .verdict(.return)]),
        ])
        let quarantine = Chain(name: "quarantine", rules: [
            Rule([.log(group: 7, prefix: "palisade quarantine: "), .counter, .verdict(.drop)], comment: "quarantine"),
        ])
        let empty = Chain(name: "unused")
        let v4 = NftSet(name: "sel-a-v4", keyType: .ipv4Address, elements: [
            SetElement(key: ipv4(198, 18, 0, 5)), SetElement(key: ipv4(198, 18, 0, 6)), SetElement(key: ipv4(10, 0, 0, 1)),
        ])
        let v6 = NftSet(name: "sel-a-v6", keyType: .ipv6Address, elements: [
            SetElement(key: ipv6(5)), SetElement(key: ipv6(6)),
        ])
        let egressMap = NftSet(name: "egress-dispatch", keyType: .ifname, dataType: .verdict, elements: [
            SetElement(key: ifname("veth-a"), verdict: .jump("ep-1-egress")),
            SetElement(key: ifname("veth-b"), verdict: .goto("quarantine")),
            SetElement(key: ifname("veth-c"), verdict: .drop),
            SetElement(key: ifname("veth-d"), verdict: .accept),
        ])
        let ingressMap = NftSet(name: "ingress-dispatch", keyType: .ifname, dataType: .verdict)
        let emptySet = NftSet(name: "ports", keyType: .inetService, elements: [SetElement(key: port(443))])
        return Table(family: .inet, name: name, chains: [forward, input, egress, policy, quarantine, empty],
                     sets: [v4, v6, egressMap, ingressMap, emptySet])
    }

    /// A different version of the same table: chains and sets removed, added and changed.
    static func secondVersion(name: String) -> Table {
        let forward = Chain(name: "forward", hook: ChainHook(point: .forward, priority: 5, policy: .drop), rules: [
            Rule([.meta(key: .iifname, dreg: 1), .lookup(sreg: 1, set: "egress-dispatch", dreg: 0, invert: false)]),
        ])
        let egress = Chain(name: "ep-2-egress", rules: [
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [2]),
                  .payload(base: .network, offset: 12, length: 4, dreg: 1),
                  .lookup(sreg: 1, set: "sel-b-v4", dreg: nil, invert: false), .verdict(.accept)], comment: "v2"),
            Rule([.verdict(.drop)]),
        ])
        let v4 = NftSet(name: "sel-b-v4", keyType: .ipv4Address, elements: [SetElement(key: ipv4(198, 18, 1, 1))])
        let map = NftSet(name: "egress-dispatch", keyType: .ifname, dataType: .verdict, elements: [
            SetElement(key: ifname("veth-z"), verdict: .jump("ep-2-egress")),
        ])
        return Table(family: .inet, name: name, chains: [forward, egress], sets: [v4, map])
    }
}

extension Sample {
    static func ipv6(_ groups: [UInt16]) -> [UInt8] {
        groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
    /// `address . port` key of a concatenated set: the address, the port, two bytes of padding.
    static func addressPort(_ address: [UInt8], _ port: UInt16) -> [UInt8] { address + Sample.port(port) + [0, 0] }
    /// An interval [start, endExclusive): a start element and, unless the range reaches the top of
    /// the key space (nil), an end element flagged NFT_SET_ELEM_INTERVAL_END.
    static func range(_ start: [UInt8], _ endExclusive: [UInt8]?) -> [SetElement] {
        [SetElement(key: start)] + (endExclusive.map { [SetElement(key: $0, isIntervalEnd: true)] } ?? [])
    }

    /// Interval sets of every key type the compiler uses (merged ranges, a single host, a range up
    /// to the top of the key space), both concatenated sets, empty ones of each kind, and the rules
    /// that use them: `ip saddr @net`, `ip6 daddr @net6`, `tcp dport != @ports`,
    /// `ip daddr . tcp dport @np`, `ip6 daddr . tcp dport @np6`.
    static func intervalTable(name: String) -> Table {
        let net = NftSet(name: "net", keyType: .ipv4Address, flags: .interval, elements: Set(
            range(ipv4(198, 51, 100, 0), ipv4(198, 51, 101, 0))           // 198.51.100.0/24
            + range(ipv4(203, 0, 113, 8), ipv4(203, 0, 113, 16))          // 203.0.113.8/29
            + range(ipv4(198, 18, 0, 64), ipv4(198, 18, 0, 128))))        // /27 + /27 merged: 198.18.0.64/26
        let net6 = NftSet(name: "net6", keyType: .ipv6Address, flags: .interval, elements: Set(
            range(ipv6(1), ipv6(2))                                                     // 2001:db8::1
            + range(ipv6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0]), ipv6([0x2001, 0xdb8, 2, 0, 0, 0, 0, 0]))  // 2001:db8:1::/48
            + range(ipv6([0x8000, 0, 0, 0, 0, 0, 0, 0]), nil)))                          // 8000::/1, up to the top
        let ports = NftSet(name: "ports", keyType: .inetService, flags: .interval, elements: Set(
            range(port(80), port(81)) + range(port(1000), port(2001)) + range(port(65000), nil)))
        let np = NftSet(name: "np", keyType: .ipv4AddressService, elements: [
            SetElement(key: addressPort(ipv4(198, 18, 0, 1), 80)), SetElement(key: addressPort(ipv4(198, 18, 0, 2), 443)),
        ])
        let np6 = NftSet(name: "np6", keyType: .ipv6AddressService, elements: [SetElement(key: addressPort(ipv6(1), 443))])
        let emptyInterval = NftSet(name: "empty-net", keyType: .ipv4Address, flags: .interval)
        let emptyConcat = NftSet(name: "empty-np", keyType: .ipv4AddressService)

        let input = Chain(name: "input", hook: ChainHook(point: .input, priority: 0, policy: .accept), rules: [
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [2]),
                  .payload(base: .network, offset: 12, length: 4, dreg: 1),
                  .lookup(sreg: 1, set: "net", dreg: nil, invert: false), .verdict(.drop)], comment: "interval v4"),
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [10]),
                  .payload(base: .network, offset: 24, length: 16, dreg: 1),
                  .lookup(sreg: 1, set: "net6", dreg: nil, invert: false), .verdict(.accept)]),
            Rule([.meta(key: .l4proto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [6]),
                  .payload(base: .transport, offset: 2, length: 2, dreg: 1),
                  .lookup(sreg: 1, set: "ports", dreg: nil, invert: true), .verdict(.drop)]),
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [2]),
                  .meta(key: .l4proto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [6]),
                  .payload(base: .network, offset: 16, length: 4, dreg: 1),
                  .payload(base: .transport, offset: 2, length: 2, dreg: 9),
                  .lookup(sreg: 1, set: "np", dreg: nil, invert: false), .verdict(.accept)]),
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [10]),
                  .meta(key: .l4proto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [6]),
                  .payload(base: .network, offset: 24, length: 16, dreg: 1),
                  .payload(base: .transport, offset: 2, length: 2, dreg: 2),
                  .lookup(sreg: 1, set: "np6", dreg: nil, invert: false), .verdict(.accept)]),
            Rule([.meta(key: .nfproto, dreg: 1), .cmp(sreg: 1, op: .eq, data: [2]),
                  .payload(base: .network, offset: 16, length: 4, dreg: 1),
                  .lookup(sreg: 1, set: "empty-net", dreg: nil, invert: true), .counter]),
        ])
        return Table(family: .inet, name: name, chains: [input], sets: [net, net6, ports, np, np6, emptyInterval, emptyConcat])
    }
}
