// The closed set of nf_tables expressions Palisade emits, one case per kernel expression.
// This mirrors what the kernel stores, so a table read back from the kernel decodes into the
// same values that were sent, and desired and actual state compare with ==.

/// nf_tables registers: 0 is the verdict register, 1...4 the 128-bit data registers
/// (NFT_REG_1...), 8...23 the 32-bit ones (NFT_REG32_00...).
public typealias Register = UInt32
public extension Register {
    static let verdictRegister: Register = 0
    static let reg1: Register = 1
}

/// NFT_META_* keys used by Palisade (values are the kernel's).
public enum MetaKey: UInt32, Hashable, Sendable, CaseIterable {
    case mark = 3          // NFT_META_MARK
    case iifname = 6       // NFT_META_IIFNAME
    case oifname = 7       // NFT_META_OIFNAME
    case nfproto = 15      // NFT_META_NFPROTO
    case l4proto = 16      // NFT_META_L4PROTO
}

/// NFT_CT_* keys used by Palisade.
public enum CtKey: UInt32, Hashable, Sendable, CaseIterable {
    case state = 0         // NFT_CT_STATE
}

/// NFT_PAYLOAD_*_HEADER bases.
public enum PayloadBase: UInt32, Hashable, Sendable, CaseIterable {
    case link = 0, network = 1, transport = 2
}

/// enum nft_cmp_ops.
public enum CmpOp: UInt32, Hashable, Sendable, CaseIterable {
    case eq = 0, neq = 1, lt = 2, lte = 3, gt = 4, gte = 5
}

/// A verdict, as in a rule's immediate or a verdict map's data.
public enum Verdict: Hashable, Sendable, CustomStringConvertible {
    case accept, drop, `return`, `continue`
    case jump(String)
    case goto(String)

    /// The kernel's verdict code (NF_DROP 0, NF_ACCEPT 1, NFT_CONTINUE -1, NFT_RETURN -5,
    /// NFT_JUMP -3, NFT_GOTO -4).
    public var code: Int32 {
        switch self {
        case .drop: return 0
        case .accept: return 1
        case .continue: return -1
        case .jump: return -3
        case .goto: return -4
        case .return: return -5
        }
    }

    public var chain: String? {
        switch self { case .jump(let c), .goto(let c): return c; default: return nil }
    }

    public init?(code: Int32, chain: String?) {
        switch code {
        case 0: self = .drop
        case 1: self = .accept
        case -1: self = .continue
        case -5: self = .return
        case -3: guard let chain else { return nil }; self = .jump(chain)
        case -4: guard let chain else { return nil }; self = .goto(chain)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .accept: return "accept"
        case .drop: return "drop"
        case .return: return "return"
        case .continue: return "continue"
        case .jump(let c): return "jump \(c)"
        case .goto(let c): return "goto \(c)"
        }
    }
}

public enum Expr: Hashable, Sendable {
    /// meta load: `[ meta load KEY => reg DREG ]`
    case meta(key: MetaKey, dreg: Register)
    /// payload load: `[ payload load LEN b @ BASE header + OFFSET => reg DREG ]`
    case payload(base: PayloadBase, offset: UInt32, length: UInt32, dreg: Register)
    /// `[ cmp OP reg SREG DATA ]`
    case cmp(sreg: Register, op: CmpOp, data: [UInt8])
    /// `[ bitwise reg DREG = ( reg SREG & MASK ) ^ XOR ]` (the mask/xor form, NFT_BITWISE_BOOL)
    case bitwise(sreg: Register, dreg: Register, mask: [UInt8], xor: [UInt8])
    /// `[ lookup reg SREG set NAME (dreg DREG) ]`; with dreg 0 a verdict map lookup.
    case lookup(sreg: Register, set: String, dreg: Register?, invert: Bool)
    /// ct load: `[ ct load KEY => reg DREG ]`
    case ct(key: CtKey, dreg: Register)
    /// An immediate verdict: `[ immediate reg 0 VERDICT ]`
    case verdict(Verdict)
    /// `[ counter ]`; the kernel's packet and byte counts are not part of the value.
    case counter
    /// `[ log group G prefix P ]`
    case log(group: UInt16?, prefix: String?)

    /// The kernel's expression name, as libnftnl calls it.
    public var kernelName: String {
        switch self {
        case .meta: return "meta"
        case .payload: return "payload"
        case .cmp: return "cmp"
        case .bitwise: return "bitwise"
        case .lookup: return "lookup"
        case .ct: return "ct"
        case .verdict: return "immediate"
        case .counter: return "counter"
        case .log: return "log"
        }
    }
}
