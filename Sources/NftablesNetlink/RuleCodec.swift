// Rule <-> libnftnl rule: the expressions, and the comment as the userdata TLV
// NFTNL_UDATA_RULE_COMMENT (a NUL-terminated string), where `nft list` finds it.
import CNftnl
import NftablesModel

enum RuleCodec {
    static func encode(table: String, family: TableFamily, chain: String, rule: Rule) throws -> NftnlRule {
        let r = try NftnlRule()
        r.set(NFTNL_RULE_TABLE, table)
        r.set(NFTNL_RULE_CHAIN, chain)
        r.set(NFTNL_RULE_FAMILY, family.nfproto)
        for expr in rule.exprs {
            r.add(try ExprCodec.encode(expr))
        }
        if let comment = rule.comment {
            let userdata = try NftnlUserdata()
            guard userdata.put(NFTNL_UDATA_RULE_COMMENT.rawValue, string: comment) else {
                throw NftablesError(kind: .invalidChange, operation: "add rule \(table) \(chain)",
                                    detail: "comment does not fit in the rule's userdata")
            }
            userdata.withBytes { r.set(NFTNL_RULE_USERDATA, bytes: $0) }
        }
        return r
    }

    /// A rule naming only table and chain: DELRULE with it flushes the chain, GETRULE dumps a table.
    static func reference(table: String, family: TableFamily, chain: String?) throws -> NftnlRule {
        let r = try NftnlRule()
        r.set(NFTNL_RULE_TABLE, table)
        if let chain { r.set(NFTNL_RULE_CHAIN, chain) }
        r.set(NFTNL_RULE_FAMILY, family.nfproto)
        return r
    }

    /// Decodes a rule read from the kernel into (its chain, the rule).
    static func decode(_ r: NftnlRule, table: String) throws -> (chain: String, rule: Rule) {
        guard let chain = r.string(NFTNL_RULE_CHAIN) else {
            throw NftablesError.unsupported("a rule of table \(table)", "the kernel sent no chain")
        }
        let context = "rule \(r.u64Handle.map { "handle \($0) " } ?? "")in chain \(table) \(chain)"
        var exprs: [Expr] = []
        for pointer in r.expressions() {
            exprs.append(try ExprCodec.decode(BorrowedExpr(pointer: pointer), context: context))
        }
        return (chain, Rule(exprs, comment: comment(in: r.bytes(NFTNL_RULE_USERDATA) ?? [])))
    }

    static func comment(in userdata: [UInt8]) -> String? {
        for (type, value) in NftnlUserdata.parse(userdata) where UInt32(type) == NFTNL_UDATA_RULE_COMMENT.rawValue {
            let text = value.last == 0 ? value.dropLast() : value[...]
            return String(decoding: text, as: UTF8.self)
        }
        return nil
    }
}

extension NftnlRule {
    var u64Handle: UInt64? {
        guard nftnl_rule_is_set(pointer, UInt16(NFTNL_RULE_HANDLE.rawValue)) else { return nil }
        return nftnl_rule_get_u64(pointer, UInt16(NFTNL_RULE_HANDLE.rawValue))
    }
}
