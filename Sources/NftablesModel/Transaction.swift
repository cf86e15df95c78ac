// Turning a desired table into an ordered list of changes for one nf_tables batch.

extension Table {
    /// The changes that replace whatever table of this name exists with exactly this one, in one
    /// transaction. Until the kernel commits the batch the old table stays in force; if the batch
    /// fails, nothing changes. `exists` says whether the table is there now: if unknown (nil), an
    /// ensure step first makes the delete unable to fail (only possible without flags: a flagless
    /// NEWTABLE on an owned table would try to drop its owner flag). Order inside the new table:
    /// chains (so jumps and map verdicts can name them), sets and maps, their elements, then rules.
    public func replacementChanges(flags: TableFlags = [], exists: Bool? = nil) -> [Change] {
        var changes: [Change] = []
        switch exists {
        case nil:
            changes = [.ensureTable(family: family, name: name), .deleteTable(family: family, name: name)]
        case true?:
            changes = [.deleteTable(family: family, name: name)]
        case false?:
            break
        }
        changes.append(flags.isEmpty && exists == nil
                       ? .ensureTable(family: family, name: name)
                       : .addTable(family: family, name: name, flags: flags))
        changes += creationChanges()
        return changes
    }

    /// The changes that create this table's content inside an existing, empty table.
    public func creationChanges() -> [Change] {
        var changes: [Change] = []
        let chainNames = chains.keys.sorted()
        for name in chainNames {
            guard var header = chains[name] else { continue }
            header.rules = []
            changes.append(.addChain(table: self.name, family: family, chain: header))
        }
        let setNames = sets.keys.sorted()
        for name in setNames {
            guard var header = sets[name] else { continue }
            header.elements = []
            changes.append(.addSet(table: self.name, family: family, set: header))
        }
        for name in setNames {
            guard let set = sets[name], !set.elements.isEmpty else { continue }
            let sorted = set.elements.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            changes.append(.addElements(table: self.name, family: family, set: name, keyType: set.keyType, elements: sorted))
        }
        for name in chainNames {
            for rule in chains[name]?.rules ?? [] {
                changes.append(.addRule(table: self.name, family: family, chain: name, rule: rule))
            }
        }
        return changes
    }
}

extension Table {
    /// The changes that turn `old` (what the kernel holds) into this table inside one batch, touching
    /// only what differs: set and map elements are added and removed one by one; a chain whose
    /// rules differ is flushed and refilled; chains and sets that are gone are deleted once nothing
    /// refers to them. Nil when only a replacement will do (another table, or a base chain whose hook
    /// changed). Order: new chains and sets first (so rules and verdicts can name them), then
    /// elements (removals before additions, so a map key can change its verdict), then rules, then
    /// deletions.
    public func changes(from old: Table) -> [Change]? {
        guard old.family == family, old.name == name else { return nil }
        for (chainName, chain) in chains {
            if let previous = old.chains[chainName], previous.hook != chain.hook { return nil }
        }
        for (setName, set) in sets {
            guard let previous = old.sets[setName] else { continue }
            if previous.keyType != set.keyType || previous.dataType != set.dataType || previous.flags != set.flags {
                return nil
            }
            // Editing an interval set element by element (a lone end, a split range) is fragile in
            // the kernel; such sets are named after their content, so a change means a new set anyway.
            if set.isInterval && previous.elements != set.elements { return nil }
        }
        // A removed map may still point at removed chains; replacing is simpler than ordering that.
        for (setName, set) in old.sets where sets[setName] == nil && set.isMap && !set.elements.isEmpty {
            return nil
        }
        var changes: [Change] = []
        let chainNames = chains.keys.sorted()
        let setNames = sets.keys.sorted()
        for chainName in chainNames where old.chains[chainName] == nil {
            guard var header = chains[chainName] else { continue }
            header.rules = []
            changes.append(.addChain(table: name, family: family, chain: header))
        }
        for setName in setNames where old.sets[setName] == nil {
            guard var header = sets[setName] else { continue }
            header.elements = []
            changes.append(.addSet(table: name, family: family, set: header))
        }
        for setName in setNames {
            guard let set = sets[setName] else { continue }
            let previous = old.sets[setName]?.elements ?? []
            let removed = previous.subtracting(set.elements)
            let added = set.elements.subtracting(previous)
            if !removed.isEmpty {
                changes.append(.deleteElements(table: name, family: family, set: setName, keyType: set.keyType,
                                               elements: removed.sorted { $0.key.lexicographicallyPrecedes($1.key) }))
            }
            if !added.isEmpty {
                changes.append(.addElements(table: name, family: family, set: setName, keyType: set.keyType,
                                            elements: added.sorted { $0.key.lexicographicallyPrecedes($1.key) }))
            }
        }
        // Chains that are gone lose their rules first, so nothing they jump to or look up is still
        // in use when it is deleted.
        for chainName in old.chains.keys.sorted() where chains[chainName] == nil && !(old.chains[chainName]?.rules.isEmpty ?? true) {
            changes.append(.flushChain(table: name, family: family, chain: chainName))
        }
        for chainName in chainNames {
            guard let chain = chains[chainName] else { continue }
            guard let previous = old.chains[chainName] else {
                for rule in chain.rules { changes.append(.addRule(table: name, family: family, chain: chainName, rule: rule)) }
                continue
            }
            if previous.rules == chain.rules { continue }
            if !previous.rules.isEmpty { changes.append(.flushChain(table: name, family: family, chain: chainName)) }
            for rule in chain.rules { changes.append(.addRule(table: name, family: family, chain: chainName, rule: rule)) }
        }
        for chainName in old.chains.keys.sorted() where chains[chainName] == nil {
            changes.append(.deleteChain(table: name, family: family, chain: chainName))
        }
        for setName in old.sets.keys.sorted() where sets[setName] == nil {
            changes.append(.deleteSet(table: name, family: family, set: setName))
        }
        return changes
    }
}
