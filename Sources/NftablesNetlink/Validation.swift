// Checks a Change before it is encoded: what the kernel would reject with a bare EINVAL (or what
// would not fit in a message) is reported here instead, naming the change and what is wrong.
import NftablesModel

enum Validation {
    /// Longest table, chain or set name, without its NUL (NFT_NAME_MAXLEN - 1).
    static let maxNameLength = 255
    /// Longest rule comment nft accepts (NFTNL_UDATA_COMMENT_MAXLEN).
    static let maxCommentLength = 128

    static func nameProblem(_ name: String, what: String) -> String? {
        let length = name.utf8.count
        if length == 0 { return "\(what) is empty" }
        if length > maxNameLength { return "\(what) is \(length) bytes, at most \(maxNameLength)" }
        if name.utf8.contains(0) { return "\(what) contains a NUL byte" }
        return nil
    }

    static func check(_ change: Change, index: Int) throws {
        func fail(_ problem: String?) throws {
            if let problem { throw NftablesError.invalid(change, index: index, problem) }
        }
        switch change {
        case .ensureTable(_, let name), .deleteTable(_, let name), .addTable(_, let name, _):
            try fail(nameProblem(name, what: "table name"))
        case .addChain(let table, _, let chain):
            try fail(nameProblem(table, what: "table name"))
            try fail(nameProblem(chain.name, what: "chain name"))
            if let hook = chain.hook, hook.policy != .accept, hook.policy != .drop {
                try fail("a base chain's policy is accept or drop, not \(hook.policy)")
            }
        case .flushChain(let table, _, let chain), .deleteChain(let table, _, let chain):
            try fail(nameProblem(table, what: "table name"))
            try fail(nameProblem(chain, what: "chain name"))
        case .addRule(let table, _, let chain, let rule):
            try fail(nameProblem(table, what: "table name"))
            try fail(nameProblem(chain, what: "chain name"))
            if rule.exprs.isEmpty { try fail("a rule needs at least one expression") }
            for (position, expr) in rule.exprs.enumerated() {
                if let problem = ExprCodec.problem(with: expr) { try fail("expression \(position): \(problem)") }
            }
            if let comment = rule.comment {
                if comment.utf8.count > maxCommentLength { try fail("comment is \(comment.utf8.count) bytes, at most \(maxCommentLength)") }
                if comment.utf8.contains(0) { try fail("comment contains a NUL byte") }
            }
        case .addSet(let table, _, let set):
            try fail(nameProblem(table, what: "table name"))
            try fail(nameProblem(set.name, what: "set name"))
            if let dataType = set.dataType, dataType != .verdict {
                try fail("only verdict maps are supported, not maps to \(dataType.rawValue)")
            }
            if set.keyType == .verdict { try fail("verdict is not a set key type") }
            if set.isInterval {
                if set.isMap { try fail("interval maps are not supported, only interval sets") }
                if !SetCodec.intervalKeyTypes.contains(set.keyType) {
                    try fail("interval sets of \(set.keyType.rawValue) keys are not supported (only ipv4_addr, ipv6_addr, inet_service)")
                }
            }
            if set.flags.rawValue & ~SetFlags.interval.rawValue != 0 {
                try fail("set flags 0x\(String(set.flags.rawValue, radix: 16)) are not supported (only interval)")
            }
        case .deleteSet(let table, _, let set):
            try fail(nameProblem(table, what: "table name"))
            try fail(nameProblem(set, what: "set name"))
        case .addElements(let table, _, let set, let keyType, let elements),
             .deleteElements(let table, _, let set, let keyType, let elements):
            try fail(nameProblem(table, what: "table name"))
            try fail(nameProblem(set, what: "set name"))
            let isMap = elements.first?.verdict != nil
            for element in elements {
                if element.key.count != Int(keyType.keyLength) {
                    try fail("element key \(hex(element.key)) is \(element.key.count) bytes; \(keyType.rawValue) keys are \(keyType.keyLength)"
                             + (keyType == .ifname ? " (the name NUL-padded)" : ""))
                }
                if (element.verdict != nil) != isMap {
                    try fail("elements mix map elements (with a verdict) and plain set elements")
                }
                if element.isIntervalEnd, element.verdict != nil {
                    try fail("an interval end element carries no verdict")
                }
                if let verdict = element.verdict {
                    if let chain = verdict.chain { try fail(nameProblem(chain, what: "element \(verdict) target")) }
                }
            }
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        "0x" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
