// readTable(): the table as the kernel holds it, in model values. Chains, rules, sets and each
// set's elements come from separate dumps; the ruleset generation is read before and after, and
// the whole read is repeated if anything changed in between, so the result is one consistent state.
//
// Set element dumps have a second hazard: a hash set that just grew is resized by a kernel worker
// shortly after the commit, and a dump that spans the resize resumes its walk in the new order,
// skipping some elements and repeating as many others (seen here: 44,685 of 50,000 elements read
// right after the commit). A dump that yields a key twice is therefore read again.
import CNftnl
import Glibc
import NftablesModel

extension NftablesConnection {
    static let readAttempts = 6

    /// Reads the table back: chains with hook, priority and policy; rules in kernel order, decoded
    /// into [Expr] with their comments; sets and maps with all elements. nil if there is no such table.
    /// Throws `.unsupported` when the table holds something the model cannot express.
    public func readTable(family: TableFamily, name: String) throws -> Table? {
        for attempt in 0..<Self.readAttempts {
            if attempt > 0 { usleep(useconds_t(min(25_000 << (attempt - 1), 400_000))) }
            let before = try generation()
            let table: Table?
            do {
                table = try readTableOnce(family: family, name: name)
            } catch is DumpInterrupted {
                continue
            }
            if try generation() == before { return table }
        }
        throw NftablesError(kind: .protocolViolation, operation: "reading table \(family.rawValue) \(name)",
                            detail: "the ruleset changed during each of \(Self.readAttempts) attempts; try again")
    }

    /// The ruleset generation: it changes with every committed transaction.
    func generation() throws -> UInt32 {
        var id: UInt32?
        try request(NFT_MSG_GETGEN, family: UInt32(NFPROTO_UNSPEC), dump: false, what: "get ruleset generation",
                    build: { _ in }) { header in
            let generation = try NftnlGeneration()
            guard nftnl_gen_nlmsg_parse(header, generation.pointer) >= 0 else { return }
            id = generation.id
        }
        guard let id else {
            throw NftablesError(kind: .protocolViolation, operation: "get ruleset generation", detail: "no generation id in the answer")
        }
        return id
    }

    private func readTableOnce(family: TableFamily, name: String) throws -> Table? {
        guard try tableExists(family: family, name: name) else { return nil }
        let what = "table \(family.rawValue) \(name)"

        var chains: [String: Chain] = [:]
        let chainFilter = try ChainCodec.reference(table: name, family: family, chain: nil)
        try dump(NFT_MSG_GETCHAIN, family: family, what: "list chains of \(what)",
                 build: { nftnl_chain_nlmsg_build_payload($0, chainFilter.pointer) }) { header in
            let chain = try NftnlChain()
            guard nftnl_chain_nlmsg_parse(header, chain.pointer) >= 0 else { throw Self.parseError("chain", what) }
            guard chain.string(NFTNL_CHAIN_TABLE) == name, chain.u32(NFTNL_CHAIN_FAMILY) == family.nfproto else { return }
            let decoded = try ChainCodec.decode(chain, table: name)
            chains[decoded.name] = decoded
        }

        let ruleFilter = try RuleCodec.reference(table: name, family: family, chain: nil)
        try dump(NFT_MSG_GETRULE, family: family, what: "list rules of \(what)",
                 build: { nftnl_rule_nlmsg_build_payload($0, ruleFilter.pointer) }) { header in
            let rule = try NftnlRule()
            guard nftnl_rule_nlmsg_parse(header, rule.pointer) >= 0 else { throw Self.parseError("rule", what) }
            guard rule.string(NFTNL_RULE_TABLE) == name, rule.u32(NFTNL_RULE_FAMILY) == family.nfproto else { return }
            let (chain, decoded) = try RuleCodec.decode(rule, table: name)
            // A rule of a chain the chain dump did not show: the ruleset changed in between.
            guard chains[chain] != nil else { throw DumpInterrupted() }
            chains[chain]?.rules.append(decoded)
        }

        var sets: [NftSet] = []
        let setFilter = try SetCodec.reference(table: name, family: family, set: nil)
        try dump(NFT_MSG_GETSET, family: family, what: "list sets of \(what)",
                 build: { nftnl_set_nlmsg_build_payload($0, setFilter.pointer) }) { header in
            let set = try NftnlSet()
            guard nftnl_set_nlmsg_parse(header, set.pointer) >= 0 else { throw Self.parseError("set", what) }
            guard set.string(NFTNL_SET_TABLE) == name, set.u32(NFTNL_SET_FAMILY) == family.nfproto else { return }
            sets.append(try SetCodec.decode(set, table: name))
        }

        for index in sets.indices {
            sets[index].elements = try readElements(family: family, table: name, set: sets[index].name)
        }
        return Table(family: family, name: name, chains: Array(chains.values), sets: sets)
    }

    /// The table's NFT_TABLE_F_* flags, or nil if it does not exist.
    public func tableFlags(family: TableFamily, name: String) throws -> TableFlags? {
        let table = try NftnlTable()
        table.set(NFTNL_TABLE_NAME, name)
        table.set(NFTNL_TABLE_FAMILY, family.nfproto)
        var flags: UInt32 = 0
        do {
            try request(NFT_MSG_GETTABLE, family: family.nfproto, dump: false, what: "get table \(family.rawValue) \(name)",
                        build: { nftnl_table_nlmsg_build_payload($0, table.pointer) }) { header in
                let answer = try NftnlTable()
                if nftnl_table_nlmsg_parse(header, answer.pointer) == 0 { flags = answer.u32(NFTNL_TABLE_FLAGS) ?? 0 }
            }
            return TableFlags(rawValue: flags)
        } catch let error as NftablesError where error.kind == .rejected && error.code == ENOENT {
            return nil
        }
    }

    private func tableExists(family: TableFamily, name: String) throws -> Bool {
        let table = try NftnlTable()
        table.set(NFTNL_TABLE_NAME, name)
        table.set(NFTNL_TABLE_FAMILY, family.nfproto)
        do {
            try request(NFT_MSG_GETTABLE, family: family.nfproto, dump: false, what: "get table \(family.rawValue) \(name)",
                        build: { nftnl_table_nlmsg_build_payload($0, table.pointer) }) { _ in }
            return true
        } catch let error as NftablesError where error.kind == .rejected && error.code == ENOENT {
            return false
        }
    }

    private func readElements(family: TableFamily, table: String, set name: String) throws -> Set<SetElement> {
        var elements = Set<SetElement>()
        var yielded = 0
        let what = "list elements of set \(family.rawValue) \(table) \(name)"
        let reference = try SetCodec.reference(table: table, family: family, set: name)
        try dump(NFT_MSG_GETSETELEM, family: family, what: what,
                 build: { nftnl_set_elems_nlmsg_build_payload($0, reference.pointer) }) { header in
            let carrier = try NftnlSet()
            guard nftnl_set_elems_nlmsg_parse(header, carrier.pointer) >= 0 else { throw Self.parseError("set elements", what) }
            for element in carrier.elements() {
                guard let decoded = try SetCodec.decodeElement(BorrowedSetElement(pointer: element), set: name) else { continue }
                elements.insert(decoded)
                yielded += 1
            }
        }
        // Keys are unique in a set: a repeated one means the walk was disturbed (see the top).
        guard yielded == elements.count else { throw DumpInterrupted() }
        return elements
    }

    private func dump(_ type: nf_tables_msg_types, family: TableFamily, what: String,
                      build: (UnsafeMutablePointer<nlmsghdr>) -> Void,
                      handle: (UnsafePointer<nlmsghdr>) throws -> Void) throws {
        try request(type, family: family.nfproto, dump: true, what: what, build: build, handle: handle)
    }

    static func parseError(_ object: String, _ what: String) -> NftablesError {
        NftablesError(kind: .protocolViolation, operation: what, code: palisadeErrno(),
                      detail: "libnftnl could not parse a \(object) message")
    }
}
