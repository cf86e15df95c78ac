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
            var header = chains[name]!
            header.rules = []
            changes.append(.addChain(table: self.name, family: family, chain: header))
        }
        let setNames = sets.keys.sorted()
        for name in setNames {
            var header = sets[name]!
            header.elements = []
            changes.append(.addSet(table: self.name, family: family, set: header))
        }
        for name in setNames {
            let set = sets[name]!
            if set.elements.isEmpty { continue }
            let sorted = set.elements.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            changes.append(.addElements(table: self.name, family: family, set: name, keyType: set.keyType, elements: sorted))
        }
        for name in chainNames {
            for rule in chains[name]!.rules {
                changes.append(.addRule(table: self.name, family: family, chain: name, rule: rule))
            }
        }
        return changes
    }
}
