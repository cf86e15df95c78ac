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
        let elements = set.elements.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { element -> String in
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
        }
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
        let afterNext: Expr? = index + 2 < exprs.count ? exprs[index + 2] : nil
        switch exprs[index] {
        case .meta(let key, _):
            // Dependencies nft leaves implicit: nfproto before an address, l4proto before a port.
            if case .cmp(_, .eq, let data)? = next, data.count == 1 {
                if key == .nfproto, case .payload(.network, _, _, _)? = afterNext { return 2 }
                if key == .l4proto, case .payload(.transport, _, _, _)? = afterNext {
                    transport = RuleRenderer.protocolName(data[0]) ?? "th"
                    return 2
                }
            }
            operand = .meta(key)
            prefixMask = nil
            return 1
        case .payload(let base, let offset, let length, _):
            operand = RuleRenderer.payloadOperand(base: base, offset: offset, length: length, transport: transport)
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
        switch operand {
        case .meta(let key)?:
            switch key {
            case .iifname: return "iifname"
            case .oifname: return "oifname"
            case .nfproto: return "meta nfproto"
            case .l4proto: return "meta l4proto"
            case .mark: return "meta mark"
            }
        case .address(let text, _)?: return text
        case .port(let text)?: return text
        case .ctState?: return "ct state"
        case .raw(let text)?: return text
        case nil: return "?"
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
