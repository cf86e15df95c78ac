// Chain <-> libnftnl chain. A chain with a hook is a base chain of type filter; its rules travel
// separately (one NEWRULE each).
import CNftnl
import NftablesModel

enum ChainCodec {
    static let filterType = "filter"

    static func encode(table: String, family: TableFamily, chain: Chain) throws -> NftnlChain {
        let c = try NftnlChain()
        c.set(NFTNL_CHAIN_TABLE, table)
        c.set(NFTNL_CHAIN_NAME, chain.name)
        c.set(NFTNL_CHAIN_FAMILY, family.nfproto)
        if let hook = chain.hook {
            c.set(NFTNL_CHAIN_TYPE, filterType)
            c.set(NFTNL_CHAIN_HOOKNUM, hook.point.number)
            c.set(NFTNL_CHAIN_PRIO, signed: hook.priority)
            c.set(NFTNL_CHAIN_POLICY, UInt32(bitPattern: hook.policy.code))
        }
        return c
    }

    /// A chain naming only table (and chain), for DELCHAIN and GETCHAIN.
    static func reference(table: String, family: TableFamily, chain: String?) throws -> NftnlChain {
        let c = try NftnlChain()
        c.set(NFTNL_CHAIN_TABLE, table)
        if let chain { c.set(NFTNL_CHAIN_NAME, chain) }
        c.set(NFTNL_CHAIN_FAMILY, family.nfproto)
        return c
    }

    /// The chain header as read from the kernel (rules are added by the reader).
    static func decode(_ c: NftnlChain, table: String) throws -> Chain {
        guard let name = c.string(NFTNL_CHAIN_NAME) else {
            throw NftablesError.unsupported("a chain of table \(table)", "the kernel sent no name")
        }
        guard let hookNumber = c.u32(NFTNL_CHAIN_HOOKNUM) else { return Chain(name: name) }
        let what = "chain \(table) \(name)"
        let type = c.string(NFTNL_CHAIN_TYPE) ?? filterType
        guard type == filterType else { throw NftablesError.unsupported(what, "base chain type \(type) is not modelled") }
        guard let point = ChainHook.Point(number: hookNumber) else {
            throw NftablesError.unsupported(what, "hook \(hookNumber) is not modelled")
        }
        let policyCode = Int32(bitPattern: c.u32(NFTNL_CHAIN_POLICY) ?? UInt32(NF_ACCEPT))
        guard let policy = Verdict(code: policyCode, chain: nil), policy == .accept || policy == .drop else {
            throw NftablesError.unsupported(what, "policy \(policyCode) is not accept or drop")
        }
        return Chain(name: name, hook: ChainHook(point: point, priority: c.s32(NFTNL_CHAIN_PRIO) ?? 0, policy: policy))
    }
}
