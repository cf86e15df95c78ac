// Turns [Change] into the messages of one batch: every change is validated first, then encoded
// with libnftnl into the batch buffer. Element lists are split into messages of at most ~60 KB
// (their nest length is a u16); an empty element list sends nothing (the kernel rejects it).
// Interval set elements are sent in ascending key order (see SetCodec.kernelOrder).
import CNftnl
import NftablesModel

enum ChangeEncoder {
    static let create = Int32(NLM_F_CREATE)
    static let ack = Int32(NLM_F_ACK)
    static let append = Int32(NLM_F_APPEND)

    static func encode(_ changes: [Change], into batch: Batch) throws {
        for (index, change) in changes.enumerated() {
            try Validation.check(change, index: index)
        }
        for (index, change) in changes.enumerated() {
            try encode(change, index: index, into: batch)
        }
    }

    static func encode(_ change: Change, index: Int, into batch: Batch) throws {
        switch change {
        case .ensureTable(let family, let name), .deleteTable(let family, let name):
            let table = try NftnlTable()
            table.set(NFTNL_TABLE_NAME, name)
            table.set(NFTNL_TABLE_FAMILY, family.nfproto)
            let isEnsure: Bool
            if case .ensureTable = change { isEnsure = true } else { isEnsure = false }
            // No NLM_F_EXCL: an existing table is left as it is.
            try batch.append(isEnsure ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE, family: family.nfproto,
                             flags: isEnsure ? create | ack : ack, change: index, sizeBound: 128 + name.utf8.count) {
                nftnl_table_nlmsg_build_payload($0, table.pointer)
            }

        case .addTable(let family, let name, let flags):
            let table = try NftnlTable()
            table.set(NFTNL_TABLE_NAME, name)
            table.set(NFTNL_TABLE_FAMILY, family.nfproto)
            table.set(NFTNL_TABLE_FLAGS, flags.rawValue)
            try batch.append(NFT_MSG_NEWTABLE, family: family.nfproto, flags: create | ack, change: index,
                             sizeBound: 160 + name.utf8.count) {
                nftnl_table_nlmsg_build_payload($0, table.pointer)
            }

        case .addChain(let table, let family, let chain):
            let c = try ChainCodec.encode(table: table, family: family, chain: chain)
            try batch.append(NFT_MSG_NEWCHAIN, family: family.nfproto, flags: create | ack, change: index,
                             sizeBound: 256 + table.utf8.count + chain.name.utf8.count) {
                nftnl_chain_nlmsg_build_payload($0, c.pointer)
            }

        case .deleteChain(let table, let family, let chain):
            let c = try ChainCodec.reference(table: table, family: family, chain: chain)
            try batch.append(NFT_MSG_DELCHAIN, family: family.nfproto, flags: ack, change: index,
                             sizeBound: 128 + table.utf8.count + chain.utf8.count) {
                nftnl_chain_nlmsg_build_payload($0, c.pointer)
            }

        case .flushChain(let table, let family, let chain):
            // DELRULE naming a chain and no rule handle removes all of the chain's rules.
            let r = try RuleCodec.reference(table: table, family: family, chain: chain)
            try batch.append(NFT_MSG_DELRULE, family: family.nfproto, flags: ack, change: index,
                             sizeBound: 128 + table.utf8.count + chain.utf8.count) {
                nftnl_rule_nlmsg_build_payload($0, r.pointer)
            }

        case .addRule(let table, let family, let chain, let rule):
            let r = try RuleCodec.encode(table: table, family: family, chain: chain, rule: rule)
            let bound = 512 + table.utf8.count + chain.utf8.count + rule.exprs.reduce(0) { $0 + ExprCodec.encodedSizeBound($1) }
            try batch.append(NFT_MSG_NEWRULE, family: family.nfproto, flags: create | append | ack, change: index,
                             sizeBound: bound) {
                nftnl_rule_nlmsg_build_payload($0, r.pointer)
            }

        case .addSet(let table, let family, let set):
            let s = try SetCodec.encode(table: table, family: family, set: set, id: UInt32(truncatingIfNeeded: index + 1))
            try batch.append(NFT_MSG_NEWSET, family: family.nfproto, flags: create | ack, change: index,
                             sizeBound: 384 + table.utf8.count + set.name.utf8.count) {
                nftnl_set_nlmsg_build_payload($0, s.pointer)
            }

        case .deleteSet(let table, let family, let set):
            let s = try SetCodec.reference(table: table, family: family, set: set)
            try batch.append(NFT_MSG_DELSET, family: family.nfproto, flags: ack, change: index,
                             sizeBound: 128 + table.utf8.count + set.utf8.count) {
                nftnl_set_nlmsg_build_payload($0, s.pointer)
            }

        case .addElements(let table, let family, let set, _, let elements),
             .deleteElements(let table, let family, let set, _, let elements):
            let isAdd: Bool
            if case .addElements = change { isAdd = true } else { isAdd = false }
            for chunk in SetCodec.chunks(SetCodec.kernelOrder(elements)) {
                let carrier = try SetCodec.elementCarrier(table: table, family: family, set: set,
                                                          elements: chunk, withData: isAdd)
                let bound = 256 + table.utf8.count + set.utf8.count + chunk.reduce(0) { $0 + SetCodec.encodedSize($1) }
                try batch.append(isAdd ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, family: family.nfproto,
                                 flags: isAdd ? create | ack : ack, change: index, sizeBound: bound) {
                    nftnl_set_elems_nlmsg_build_payload($0, carrier.pointer)
                }
            }
        }
    }
}
