// Canonical nft text for rules, sets, chains and tables. Rules are rendered from their
// expressions, the way nft's own listing reads them back, so desired and kernel state print alike.
import NetworkAddress

public enum RulesetText {
    /// A rule in nft syntax, e.g. `ip saddr @sel.ab12.v4 tcp dport 5432 accept comment "..."`.
    public static func render(_ rule: Rule) -> String {
        var renderer = RuleRenderer(rule.exprs)
        var words = renderer.render()
        if let comment = rule.comment { words.append("comment \(quoted(comment))") }
        return words.joined(separator: " ")
    }

    public static func render(_ table: Table) -> String {
        var lines = ["table \(table.family.rawValue) \(table.name) {"]
        for name in table.sets.keys.sorted() {
            lines += render(table.sets[name]!).map { "\t" + $0 }
        }
        let chainNames = table.chains.keys.sorted { a, b in
            let baseA = table.chains[a]!.hook != nil, baseB = table.chains[b]!.hook != nil
            return baseA != baseB ? baseA : a < b
        }
        for name in chainNames {
            lines += render(table.chains[name]!).map { "\t" + $0 }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    public static func render(_ chain: Chain) -> [String] {
        var lines = ["chain \(chain.name) {"]
        if let hook = chain.hook {
            lines.append("\ttype filter hook \(hook.point.rawValue) priority \(priorityName(hook.priority)); policy \(hook.policy);")
        }
        lines += chain.rules.map { "\t" + render($0) }
        lines.append("}")
        return lines
    }

    public static func render(_ set: NftSet) -> [String] {
        var lines = ["\(set.isMap ? "map" : "set") \(set.name) {"]
        var type = "\ttype \(set.keyType.rawValue)"
        if let data = set.dataType { type += " : \(data.rawValue)" }
        lines.append(type)
        if set.isInterval { lines.append("\tflags interval") }
        let elements = set.isInterval ? intervalTexts(set) : set.elements.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { element -> String in
            var text = formatKey(element.key, as: set.keyType)
            if let verdict = element.verdict { text += " : \(verdict)" }
            return text
        }
        for (index, element) in elements.enumerated() {
            let lead = index == 0 ? "\telements = { " : "\t\t     "
            let tail = index == elements.count - 1 ? " }" : ","
            lines.append(lead + element + tail)
        }
        lines.append("}")
        return lines
    }

    static func priorityName(_ priority: Int32) -> String {
        if priority == 0 { return "filter" }
        return priority > 0 ? "filter + \(priority)" : "filter - \(-priority)"
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
    }

    static func formatKey(_ bytes: [UInt8], as type: SetDataType) -> String {
        switch type {
        case .ipv4Address, .ipv6Address:
            return IPAddress(bytes: bytes).map { "\($0)" } ?? hex(bytes)
        case .ifname:
            return quoted(Bytes.ifnameString(bytes))
        case .inetService:
            return Bytes.bigEndianU16(from: bytes).map { "\($0)" } ?? hex(bytes)
        case .verdict:
            return hex(bytes)
        case .ipv4AddressService, .ipv6AddressService:
            let addressLength = type == .ipv4AddressService ? 4 : 16
            guard bytes.count == addressLength + 4, let address = IPAddress(bytes: Array(bytes.prefix(addressLength))),
                  let port = Bytes.bigEndianU16(from: Array(bytes[addressLength..<(addressLength + 2)])) else {
                return hex(bytes)
            }
            return "\(address) . \(port)"
        case .ifnameIPv4Address, .ifnameIPv6Address:
            let addressLength = type == .ifnameIPv4Address ? 4 : 16
            guard bytes.count == 16 + addressLength, let address = IPAddress(bytes: Array(bytes.suffix(addressLength))) else {
                return hex(bytes)
            }
            return quoted(Bytes.ifnameString(Array(bytes.prefix(16)))) + " . \(address)"
        }
    }

    /// An interval set's elements as nft lists them: prefixes where a range is one, else `a-b`.
    static func intervalTexts(_ set: NftSet) -> [String] {
        let sorted = set.elements.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var texts: [String] = []
        var index = 0
        while index < sorted.count {
            let start = sorted[index]
            if start.isIntervalEnd { index += 1; continue }   // a stray end: nothing starts there
            var endExclusive: [UInt8]?
            if index + 1 < sorted.count, sorted[index + 1].isIntervalEnd {
                endExclusive = sorted[index + 1].key
                index += 2
            } else {
                index += 1
            }
            texts.append(rangeText(start.key, endExclusive, as: set.keyType))
        }
        return texts
    }

    static func rangeText(_ start: [UInt8], _ endExclusive: [UInt8]?, as type: SetDataType) -> String {
        // The last key in the range: one before the end, or all ones.
        var last = endExclusive ?? [UInt8](repeating: 0xff, count: start.count)
        if endExclusive != nil {
            var index = last.count - 1
            while index >= 0 {
                if last[index] == 0 { last[index] = 0xff; index -= 1 } else { last[index] -= 1; break }
            }
        }
        if let address = IPAddress(bytes: start) {
            // A prefix: start has zeros and last has ones in the same host bits.
            let bits = start.count * 8
            var length = bits
            while length > 0 {
                let bit = length - 1
                let mask = UInt8(0x80 >> (bit % 8))
                if start[bit / 8] & mask == 0 && last[bit / 8] & mask != 0 { length -= 1 } else { break }
            }
            let prefixMatches = (0..<length).allSatisfy { bit in
                let mask = UInt8(0x80 >> (bit % 8))
                return start[bit / 8] & mask == last[bit / 8] & mask
            }
            if prefixMatches {
                return length == bits ? "\(address)" : "\(address)/\(length)"
            }
            return "\(address)-\(IPAddress(bytes: last).map { "\($0)" } ?? hex(last))"
        }
        if start == last { return formatKey(start, as: type) }
        return formatKey(start, as: type) + "-" + formatKey(last, as: type)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        "0x" + bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}

/// Reads an expression list the way nft does: loads into register 1 followed by the comparison
/// that uses them, with the implicit protocol dependencies left out.
private struct RuleRenderer {
    enum Operand {
        case meta(MetaKey)
        case address(String, IPFamily)      // "ip saddr"
        case port(String)                  // "tcp dport"
        case ctState
        case raw(String)
    }

    let exprs: [Expr]
    var words: [String] = []
    var operand: Operand?
    var concatenated: [Operand] = []
    var prefixMask: [UInt8]?
    var transport = "th"

    init(_ exprs: [Expr]) { self.exprs = exprs }

    mutating func render() -> [String] {
        var index = 0
        while index < exprs.count {
            index += step(at: index)
        }
        return words
    }

    /// Renders the expression at `index` (and any it absorbs); returns how many it consumed.
    mutating func step(at index: Int) -> Int {
        let next: Expr? = index + 1 < exprs.count ? exprs[index + 1] : nil
        switch exprs[index] {
        case .meta(let key, _):
            // Dependencies nft leaves implicit: nfproto before an address, l4proto before a port.
            if case .cmp(_, .eq, let data)? = next, data.count == 1 {
                let later = exprs[(index + 2)...]
                if key == .nfproto, later.contains(where: { if case .payload(.network, _, _, _) = $0 { return true }; return false }) {
                    return 2
                }
                if key == .l4proto, later.contains(where: { if case .payload(.transport, _, _, _) = $0 { return true }; return false }) {
                    transport = RuleRenderer.protocolName(data[0]) ?? "th"
                    return 2
                }
            }
            operand = .meta(key)
            prefixMask = nil
            return 1
        case .payload(let base, let offset, let length, let dreg):
            let loaded = RuleRenderer.payloadOperand(base: base, offset: offset, length: length, transport: transport)
            if dreg != .reg1, operand != nil {
                // A further part of a concatenation, looked up together with register 1.
                concatenated.append(loaded)
            } else {
                operand = loaded
                concatenated = []
            }
            prefixMask = nil
            return 1
        case .ct(let key, _):
            operand = key == .state ? .ctState : .raw("ct")
            return 1
        case .bitwise(_, _, let mask, _):
            if case .ctState? = operand, case .cmp(_, .neq, _)? = next {
                words.append("ct state " + RuleRenderer.ctStateNames(Bytes.hostU32(from: mask) ?? 0))
                operand = nil
                return 2
            }
            prefixMask = mask
            return 1
        case .cmp(_, let op, let data):
            // A range: `>= low` then `<= high` on the same operand.
            if op == .gte, case .cmp(_, .lte, let high)? = next {
                words.append("\(operandText()) \(value(data))-\(value(high))")
                return 2
            }
            let opText = RuleRenderer.opText(op)
            var text = value(data)
            if let mask = prefixMask, case .address = operand {
                text += "/\(mask.reduce(0) { $0 + $1.nonzeroBitCount })"
            }
            words.append([operandText(), opText, text].filter { !$0.isEmpty }.joined(separator: " "))
            return 1
        case .lookup(_, let set, let dreg, let invert):
            let op = invert ? "!= " : ""
            if !concatenated.isEmpty {
                let parts = [operandText()] + concatenated.map { RuleRenderer.text(of: $0) }
                words.append(parts.joined(separator: " . ") + " \(op)@\(set)")
                concatenated = []
                return 1
            }
            if dreg == .verdictRegister {
                words.append("\(operandText()) \(op)vmap @\(set)")
            } else {
                words.append("\(operandText()) \(op)@\(set)")
            }
            return 1
        case .verdict(let verdict):
            words.append(verdict.description)
            return 1
        case .counter:
            words.append("counter")
            return 1
        case .log(let group, let prefix):
            var text = "log"
            if let prefix { text += " prefix \(RulesetText.quoted(prefix))" }
            if let group { text += " group \(group)" }
            words.append(text)
            return 1
        }
    }

    func operandText() -> String {
        operand.map(RuleRenderer.text(of:)) ?? "?"
    }

    static func text(of operand: Operand) -> String {
        switch operand {
        case .meta(let key):
            switch key {
            case .iifname: return "iifname"
            case .oifname: return "oifname"
            case .nfproto: return "meta nfproto"
            case .l4proto: return "meta l4proto"
            case .mark: return "meta mark"
            }
        case .address(let text, _): return text
        case .port(let text): return text
        case .ctState: return "ct state"
        case .raw(let text): return text
        }
    }

    func value(_ data: [UInt8]) -> String {
        switch operand {
        case .meta(let key)?:
            switch key {
            case .iifname, .oifname:
                let name = Bytes.ifnameString(data)
                // A compare shorter than IFNAMSIZ is a prefix match, written with a trailing *.
                return RulesetText.quoted(data.count < Bytes.interfaceNameSize ? name + "*" : name)
            case .nfproto: return data == [2] ? "ipv4" : data == [10] ? "ipv6" : RulesetText.hex(data)
            case .l4proto: return data.count == 1 ? (RuleRenderer.protocolName(data[0]) ?? "\(data[0])") : RulesetText.hex(data)
            case .mark: return Bytes.hostU32(from: data).map { "0x" + String($0, radix: 16) } ?? RulesetText.hex(data)
            }
        case .address?:
            return IPAddress(bytes: data).map { "\($0)" } ?? RulesetText.hex(data)
        case .port?:
            return Bytes.bigEndianU16(from: data).map { "\($0)" } ?? RulesetText.hex(data)
        case .raw(let text)? where data.count == 1 && (text.hasSuffix(" type") || text.hasSuffix(" code")):
            return "\(data[0])"
        default:
            return RulesetText.hex(data)
        }
    }

    static func opText(_ op: CmpOp) -> String {
        switch op {
        case .eq: return ""
        case .neq: return "!="
        case .lt: return "<"
        case .lte: return "<="
        case .gt: return ">"
        case .gte: return ">="
        }
    }

    static func protocolName(_ number: UInt8) -> String? {
        switch number {
        case 6: return "tcp"
        case 17: return "udp"
        case 132: return "sctp"
        case 1: return "icmp"
        case 58: return "icmpv6"
        default: return nil
        }
    }

    static func payloadOperand(base: PayloadBase, offset: UInt32, length: UInt32, transport: String) -> Operand {
        switch (base, offset, length) {
        case (.network, 12, 4): return .address("ip saddr", .ipv4)
        case (.network, 16, 4): return .address("ip daddr", .ipv4)
        case (.network, 8, 16): return .address("ip6 saddr", .ipv6)
        case (.network, 24, 16): return .address("ip6 daddr", .ipv6)
        case (.transport, 0, 2): return .port("\(transport) sport")
        case (.transport, 2, 2): return .port("\(transport) dport")
        case (.transport, 0, 1) where transport.hasPrefix("icmp"): return .raw("\(transport) type")
        case (.transport, 1, 1) where transport.hasPrefix("icmp"): return .raw("\(transport) code")
        default:
            let baseName = base == .network ? "nh" : base == .transport ? "th" : "ll"
            return .raw("@\(baseName),\(offset * 8),\(length * 8)")
        }
    }

    static func ctStateNames(_ bits: UInt32) -> String {
        let names = CtStateSet.names.filter { bits & $0.0.rawValue != 0 }.map { $0.1 }
        return names.isEmpty ? "0x0" : names.joined(separator: ",")
    }
}
