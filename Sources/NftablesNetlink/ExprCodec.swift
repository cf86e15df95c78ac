// Expr <-> libnftnl expression, one case per kernel expression, so that decode(encode(x)) == x.
// Registers are passed through as the kernel's raw NFT_REG_* numbers.
import CNftnl
import NftablesModel

enum ExprCodec {
    /// Largest cmp/bitwise operand the kernel accepts (NFT_DATA_VALUE_MAXLEN).
    static let maxDataLength = 64
    /// Longest log prefix, without its NUL (NF_LOG_PREFIXLEN - 1).
    static let maxLogPrefixLength = 127

    /// Why `expr` cannot be sent, or nil if it can.
    static func problem(with expr: Expr) -> String? {
        switch expr {
        case .cmp(_, _, let data):
            if data.isEmpty || data.count > maxDataLength { return "cmp data must be 1...\(maxDataLength) bytes, not \(data.count)" }
        case .bitwise(_, _, let mask, let xor):
            if mask.count != xor.count { return "bitwise mask (\(mask.count) bytes) and xor (\(xor.count) bytes) differ in length" }
            if mask.isEmpty || mask.count > maxDataLength { return "bitwise operands must be 1...\(maxDataLength) bytes, not \(mask.count)" }
        case .lookup(_, let set, _, _):
            return Validation.nameProblem(set, what: "lookup set name")
        case .verdict(let verdict):
            if let chain = verdict.chain { return Validation.nameProblem(chain, what: "\(verdict) target chain") }
        case .log(_, let prefix):
            if let prefix {
                if prefix.utf8.count > maxLogPrefixLength { return "log prefix is \(prefix.utf8.count) bytes, at most \(maxLogPrefixLength)" }
                if prefix.utf8.contains(0) { return "log prefix contains a NUL byte" }
            }
        case .payload(_, _, let length, _):
            if length == 0 || length > UInt32(maxDataLength) { return "payload length must be 1...\(maxDataLength), not \(length)" }
        case .meta, .ct, .counter:
            break
        }
        return nil
    }

    /// An upper bound of the expression's size inside a netlink message.
    static func encodedSizeBound(_ expr: Expr) -> Int {
        let fixed = 96  // nest headers, name attribute, up to five u32 attributes
        switch expr {
        case .cmp(_, _, let data): return fixed + data.count + 8
        case .bitwise(_, _, let mask, let xor): return fixed + mask.count + xor.count + 16
        case .lookup(_, let set, _, _): return fixed + set.utf8.count + 4
        case .verdict(let verdict): return fixed + (verdict.chain?.utf8.count ?? 0) + 16
        case .log(_, let prefix): return fixed + (prefix?.utf8.count ?? 0) + 4
        case .meta, .payload, .ct, .counter: return fixed
        }
    }

    static func encode(_ expr: Expr) throws -> NftnlExpr {
        let e = try NftnlExpr(expr.kernelName)
        switch expr {
        case .meta(let key, let dreg):
            e.set(NFTNL_EXPR_META_KEY, key.rawValue)
            e.set(NFTNL_EXPR_META_DREG, dreg)
        case .payload(let base, let offset, let length, let dreg):
            e.set(NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
            e.set(NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            e.set(NFTNL_EXPR_PAYLOAD_LEN, length)
            e.set(NFTNL_EXPR_PAYLOAD_DREG, dreg)
        case .cmp(let sreg, let op, let data):
            e.set(NFTNL_EXPR_CMP_SREG, sreg)
            e.set(NFTNL_EXPR_CMP_OP, op.rawValue)
            e.set(NFTNL_EXPR_CMP_DATA, bytes: data)
        case .bitwise(let sreg, let dreg, let mask, let xor):
            e.set(NFTNL_EXPR_BITWISE_SREG, sreg)
            e.set(NFTNL_EXPR_BITWISE_DREG, dreg)
            e.set(NFTNL_EXPR_BITWISE_LEN, UInt32(mask.count))
            e.set(NFTNL_EXPR_BITWISE_MASK, bytes: mask)
            e.set(NFTNL_EXPR_BITWISE_XOR, bytes: xor)
        case .lookup(let sreg, let set, let dreg, let invert):
            e.set(NFTNL_EXPR_LOOKUP_SREG, sreg)
            e.set(NFTNL_EXPR_LOOKUP_SET, set)
            if let dreg { e.set(NFTNL_EXPR_LOOKUP_DREG, dreg) }
            if invert { e.set(NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV.rawValue) }
        case .ct(let key, let dreg):
            e.set(NFTNL_EXPR_CT_KEY, key.rawValue)
            e.set(NFTNL_EXPR_CT_DREG, dreg)
        case .verdict(let verdict):
            e.set(NFTNL_EXPR_IMM_DREG, Register.verdictRegister)
            e.set(NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: verdict.code))
            if let chain = verdict.chain { e.set(NFTNL_EXPR_IMM_CHAIN, chain) }
        case .counter:
            break
        case .log(let group, let prefix):
            if let group { e.set(NFTNL_EXPR_LOG_GROUP, u16: group) }
            if let prefix { e.set(NFTNL_EXPR_LOG_PREFIX, prefix) }
        }
        return e
    }

    /// Decodes one expression of a rule read from the kernel. `context` names the rule for errors.
    static func decode(_ e: BorrowedExpr, context: String) throws -> Expr {
        let name = e.name
        func unsupported(_ why: String) -> NftablesError {
            NftablesError.unsupported(context, "expression \"\(name)\": \(why)")
        }
        func require<T>(_ value: T?, _ attribute: String) throws -> T {
            guard let value else { throw unsupported("no \(attribute)") }
            return value
        }

        switch name {
        case "meta":
            guard e.u32(NFTNL_EXPR_META_SREG) == nil else { throw unsupported("meta set is not modelled") }
            let raw = try require(e.u32(NFTNL_EXPR_META_KEY), "key")
            guard let key = MetaKey(rawValue: raw) else { throw unsupported("meta key \(raw) is not modelled") }
            return .meta(key: key, dreg: try require(e.u32(NFTNL_EXPR_META_DREG), "dreg"))
        case "payload":
            guard e.u32(NFTNL_EXPR_PAYLOAD_SREG) == nil else { throw unsupported("payload write is not modelled") }
            let rawBase = try require(e.u32(NFTNL_EXPR_PAYLOAD_BASE), "base")
            guard let base = PayloadBase(rawValue: rawBase) else { throw unsupported("payload base \(rawBase) is not modelled") }
            return .payload(base: base,
                            offset: try require(e.u32(NFTNL_EXPR_PAYLOAD_OFFSET), "offset"),
                            length: try require(e.u32(NFTNL_EXPR_PAYLOAD_LEN), "len"),
                            dreg: try require(e.u32(NFTNL_EXPR_PAYLOAD_DREG), "dreg"))
        case "cmp":
            let rawOp = try require(e.u32(NFTNL_EXPR_CMP_OP), "op")
            guard let op = CmpOp(rawValue: rawOp) else { throw unsupported("cmp op \(rawOp) is not modelled") }
            return .cmp(sreg: try require(e.u32(NFTNL_EXPR_CMP_SREG), "sreg"), op: op,
                        data: try require(e.bytes(NFTNL_EXPR_CMP_DATA), "data"))
        case "bitwise":
            if let op = e.u32(NFTNL_EXPR_BITWISE_OP), op != NFT_BITWISE_MASK_XOR.rawValue {
                throw unsupported("bitwise op \(op) (shift or register form) is not modelled")
            }
            return .bitwise(sreg: try require(e.u32(NFTNL_EXPR_BITWISE_SREG), "sreg"),
                            dreg: try require(e.u32(NFTNL_EXPR_BITWISE_DREG), "dreg"),
                            mask: try require(e.bytes(NFTNL_EXPR_BITWISE_MASK), "mask"),
                            xor: try require(e.bytes(NFTNL_EXPR_BITWISE_XOR), "xor"))
        case "lookup":
            let flags = e.u32(NFTNL_EXPR_LOOKUP_FLAGS) ?? 0
            guard flags & ~NFT_LOOKUP_F_INV.rawValue == 0 else { throw unsupported("lookup flags 0x\(String(flags, radix: 16))") }
            return .lookup(sreg: try require(e.u32(NFTNL_EXPR_LOOKUP_SREG), "sreg"),
                           set: try require(e.string(NFTNL_EXPR_LOOKUP_SET), "set"),
                           dreg: e.u32(NFTNL_EXPR_LOOKUP_DREG),
                           invert: flags & NFT_LOOKUP_F_INV.rawValue != 0)
        case "ct":
            guard e.u32(NFTNL_EXPR_CT_SREG) == nil else { throw unsupported("ct set is not modelled") }
            guard e.u32(NFTNL_EXPR_CT_DIR) == nil else { throw unsupported("ct direction is not modelled") }
            let raw = try require(e.u32(NFTNL_EXPR_CT_KEY), "key")
            guard let key = CtKey(rawValue: raw) else { throw unsupported("ct key \(raw) is not modelled") }
            return .ct(key: key, dreg: try require(e.u32(NFTNL_EXPR_CT_DREG), "dreg"))
        case "immediate":
            guard e.u32(NFTNL_EXPR_IMM_DREG) == Register.verdictRegister,
                  let code = e.u32(NFTNL_EXPR_IMM_VERDICT) else {
                throw unsupported("only verdicts (immediate to register 0) are modelled")
            }
            let chain = e.string(NFTNL_EXPR_IMM_CHAIN)
            guard let verdict = Verdict(code: Int32(bitPattern: code), chain: chain) else {
                throw unsupported("verdict code \(Int32(bitPattern: code)) is not modelled")
            }
            return .verdict(verdict)
        case "counter":
            return .counter
        case "log":
            // A log without group is a syslog log; the kernel reports its level (default warning, 4).
            if let level = e.u32(NFTNL_EXPR_LOG_LEVEL), level != 4 { throw unsupported("log level \(level) is not modelled") }
            if let flags = e.u32(NFTNL_EXPR_LOG_FLAGS), flags != 0 { throw unsupported("log flags are not modelled") }
            if let snaplen = e.u32(NFTNL_EXPR_LOG_SNAPLEN), snaplen != 0 { throw unsupported("log snaplen is not modelled") }
            if let threshold = e.u16(NFTNL_EXPR_LOG_QTHRESHOLD), threshold != 0 { throw unsupported("log queue-threshold is not modelled") }
            return .log(group: e.u16(NFTNL_EXPR_LOG_GROUP), prefix: e.string(NFTNL_EXPR_LOG_PREFIX))
        default:
            throw unsupported("not modelled")
        }
    }
}
