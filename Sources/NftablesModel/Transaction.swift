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
        var delta = TableDelta()
        delta.addedChains = chains.keys.filter { old.chains[$0] == nil }
        delta.addedSets = sets.keys.filter { old.sets[$0] == nil }
        for (setName, set) in sets {
            let previous = old.sets[setName]?.elements ?? []
            if previous == set.elements { continue }
            let removed = previous.subtracting(set.elements)
            let added = set.elements.subtracting(previous)
            if !removed.isEmpty { delta.removals[setName] = Array(removed) }
            if !added.isEmpty && old.sets[setName] != nil { delta.additions[setName] = Array(added) }
        }
        delta.deletedChains = old.chains.keys.filter { chains[$0] == nil }
        delta.flushedChains = delta.deletedChains.filter { !(old.chains[$0]?.rules.isEmpty ?? true) }
        for (chainName, chain) in chains {
            guard let previous = old.chains[chainName], previous.rules != chain.rules else { continue }
            delta.refilledChains.append(chainName)
            if !previous.rules.isEmpty { delta.flushedChains.append(chainName) }
        }
        delta.deletedSets = old.sets.keys.filter { sets[$0] == nil }
        return delta.changes(in: self)
    }
}

/// What differs between the table the kernel holds and the one wanted, by name; `changes(in:)`
/// turns it into one batch's changes. Order: new chains and sets first (so rules and verdicts can
/// name them), then elements (removals before additions, so a map key can change its verdict; a
/// new set gets all its elements at once), then flushes, then the rules of new and refilled
/// chains, then deletions (chains that are gone lost their rules first, so nothing they jump to or
/// look up is still in use when it is deleted).
public struct TableDelta: Sendable {
    public var addedChains: [String] = []
    public var addedSets: [String] = []
    /// Elements of existing sets.
    public var removals: [String: [SetElement]] = [:]
    public var additions: [String: [SetElement]] = [:]
    /// Chains whose rules go: those deleted (if they had rules) and those refilled.
    public var flushedChains: [String] = []
    /// Existing chains whose rules are replaced.
    public var refilledChains: [String] = []
    public var deletedChains: [String] = []
    public var deletedSets: [String] = []

    public init(addedChains: [String] = [], addedSets: [String] = [], removals: [String: [SetElement]] = [:],
                additions: [String: [SetElement]] = [:], flushedChains: [String] = [], refilledChains: [String] = [],
                deletedChains: [String] = [], deletedSets: [String] = []) {
        self.addedChains = addedChains; self.addedSets = addedSets; self.removals = removals; self.additions = additions
        self.flushedChains = flushedChains; self.refilledChains = refilledChains
        self.deletedChains = deletedChains; self.deletedSets = deletedSets
    }

    /// The changes, with chain, set and rule content taken from `table` (the wanted one).
    public func changes(in table: Table) -> [Change] {
        let name = table.name, family = table.family
        func sorted(_ elements: [SetElement]) -> [SetElement] { elements.sorted { $0.key.lexicographicallyPrecedes($1.key) } }
        var changes: [Change] = []
        for chainName in addedChains.sorted() {
            guard var header = table.chains[chainName] else { continue }
            header.rules = []
            changes.append(.addChain(table: name, family: family, chain: header))
        }
        let added = Set(addedSets)
        for setName in addedSets.sorted() {
            guard var header = table.sets[setName] else { continue }
            header.elements = []
            changes.append(.addSet(table: name, family: family, set: header))
        }
        for setName in Set(removals.keys).union(additions.keys).union(added).sorted() {
            guard let set = table.sets[setName] else { continue }
            if let removed = removals[setName], !removed.isEmpty, !added.contains(setName) {
                changes.append(.deleteElements(table: name, family: family, set: setName, keyType: set.keyType, elements: sorted(removed)))
            }
            let new = added.contains(setName) ? Array(set.elements) : additions[setName] ?? []
            if !new.isEmpty {
                changes.append(.addElements(table: name, family: family, set: setName, keyType: set.keyType, elements: sorted(new)))
            }
        }
        for chainName in flushedChains.sorted() {
            changes.append(.flushChain(table: name, family: family, chain: chainName))
        }
        for chainName in (addedChains + refilledChains).sorted() {
            for rule in table.chains[chainName]?.rules ?? [] {
                changes.append(.addRule(table: name, family: family, chain: chainName, rule: rule))
            }
        }
        for chainName in deletedChains.sorted() {
            changes.append(.deleteChain(table: name, family: family, chain: chainName))
        }
        for setName in deletedSets.sorted() {
            changes.append(.deleteSet(table: name, family: family, set: setName))
        }
        return changes
    }

    public var isEmpty: Bool {
        addedChains.isEmpty && addedSets.isEmpty && removals.values.allSatisfy(\.isEmpty) && additions.values.allSatisfy(\.isEmpty)
            && flushedChains.isEmpty && refilledChains.isEmpty && deletedChains.isEmpty && deletedSets.isEmpty
    }
}

/// A change the kernel would refuse, found by `Table.apply`.
public struct TransactionError: Error, Hashable, Sendable, CustomStringConvertible {
    public var change: String
    public var reason: String
    public var description: String { "\(change): \(reason)" }
}

extension Table {
    /// Applies one change to this table's content as the kernel would, refusing what it refuses:
    /// a rule or map element that names a chain or set that does not exist, deleting a chain that
    /// still has rules or that something jumps to, deleting a set a rule looks up, deleting an
    /// element that is not there. A model for tests of batch order; table-level changes are the
    /// caller's.
    public mutating func apply(_ change: Change) throws {
        func refuse(_ reason: String) -> TransactionError { TransactionError(change: change.summary, reason: reason) }
        func checkTargets(_ exprs: [Expr]) throws {
            for expr in exprs {
                switch expr {
                case .verdict(let verdict):
                    if let target = verdict.chain, chains[target] == nil { throw refuse("no chain \(target)") }
                case .lookup(_, let set, _, _):
                    if sets[set] == nil { throw refuse("no set \(set)") }
                default: break
                }
            }
        }
        func referenced(chain: String) -> Bool {
            chains.values.contains { $0.rules.contains { $0.exprs.contains { if case .verdict(let v) = $0 { return v.chain == chain }; return false } } }
                || sets.values.contains { $0.elements.contains { $0.verdict?.chain == chain } }
        }
        switch change {
        case .ensureTable, .addTable, .deleteTable:
            throw refuse("a table-level change")
        case .addChain(_, _, let chain):
            if chains[chain.name] != nil { throw refuse("chain exists") }
            chains[chain.name] = chain
        case .flushChain(_, _, let name):
            guard chains[name] != nil else { throw refuse("no chain \(name)") }
            chains[name]?.rules = []
        case .deleteChain(_, _, let name):
            guard let chain = chains[name] else { throw refuse("no chain \(name)") }
            if !chain.rules.isEmpty { throw refuse("chain has rules") }
            if referenced(chain: name) { throw refuse("chain is in use") }
            chains[name] = nil
        case .addRule(_, _, let chainName, let rule):
            guard chains[chainName] != nil else { throw refuse("no chain \(chainName)") }
            try checkTargets(rule.exprs)
            chains[chainName]?.rules.append(rule)
        case .addSet(_, _, let set):
            if sets[set.name] != nil { throw refuse("set exists") }
            sets[set.name] = set
        case .deleteSet(_, _, let name):
            guard sets[name] != nil else { throw refuse("no set \(name)") }
            let used = chains.values.contains { $0.rules.contains { $0.exprs.contains {
                if case .lookup(_, let set, _, _) = $0 { return set == name }; return false } } }
            if used { throw refuse("set is in use") }
            sets[name] = nil
        case .addElements(_, _, let setName, _, let elements):
            guard sets[setName] != nil else { throw refuse("no set \(setName)") }
            for element in elements {
                if let target = element.verdict?.chain, chains[target] == nil { throw refuse("no chain \(target)") }
                if sets[setName]!.elements.contains(where: { $0.key == element.key && $0.isIntervalEnd == element.isIntervalEnd }) {
                    throw refuse("element exists")
                }
                sets[setName]!.elements.insert(element)
            }
        case .deleteElements(_, _, let setName, _, let elements):
            guard sets[setName] != nil else { throw refuse("no set \(setName)") }
            for element in elements {
                // The kernel deletes by key.
                guard let present = sets[setName]!.elements.first(where: { $0.key == element.key && $0.isIntervalEnd == element.isIntervalEnd })
                else { throw refuse("no such element") }
                sets[setName]!.elements.remove(present)
            }
        }
    }
}
