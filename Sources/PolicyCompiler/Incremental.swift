import NetworkAddress
import NftablesModel
import PolicyModel

/// What changed in the desired state, when only workloads and quarantines changed (namespaces,
/// policies and options are as they were: anything else needs a full compile).
public struct EndpointChanges: Sendable {
    /// Endpoints by id ("namespace/name"): the new value, or nil when it is gone.
    public var endpoints: [String: Endpoint?] = [:]
    /// Pods that are not endpoints (hostNetwork, no address yet, finished), by id: the new value or nil.
    public var skippedPods: [String: SkippedPod?] = [:]
    /// The whole new list of quarantines, when it changed.
    public var quarantines: [Quarantine]?

    public init(endpoints: [String: Endpoint?] = [:], skippedPods: [String: SkippedPod?] = [:], quarantines: [Quarantine]? = nil) {
        self.endpoints = endpoints; self.skippedPods = skippedPods; self.quarantines = quarantines
    }

    public var isEmpty: Bool { endpoints.isEmpty && skippedPods.isEmpty && quarantines == nil }
}

/// A compiled ruleset that follows workload changes without recompiling: a pod added, removed,
/// relabelled or quarantined edits the elements of the sets and maps it belongs to (and, for a
/// combination of policies not seen before, adds that combination's chains), and says which
/// kernel changes that takes. The result is the same table a full compile of the new state gives
/// (tests check this on random change sequences); policies, namespaces and options are fixed for
/// the life of a session.
public final class CompilerSession {
    private var builder: TableBuilder
    /// Compiled endpoints by id, and their warnings.
    private var entries: [String: CompiledEndpoint] = [:]
    private var warningOf: [String: CompilerWarning] = [:]
    /// Endpoint ids by address: which endpoints can put an address into a set.
    private var holders: [IPAddress: [String]] = [:]
    public private(set) var localEndpoints = 0
    public private(set) var quarantinedEndpoints = 0
    /// Elements of all sets and maps (each set knows its count: cheap).
    public var setElements: Int { builder.sets.values.reduce(0) { $0 + $1.elements.count } }

    public init(state: DesiredState, options: CompilerOptions = CompilerOptions()) {
        var state = state
        if !state.endpoints.isSorted(by: \.id) { state.endpoints.sort { $0.id < $1.id } }
        if !state.skippedPods.isSorted(by: \.id) { state.skippedPods.sort { $0.id < $1.id } }
        builder = TableBuilder(state: state, options: options)
        let ruleset = builder.build()
        for entry in ruleset.endpoints {
            entries[entry.endpoint.id] = entry
            count(entry, +1)
        }
        warningOf = builder.warningOf
        for endpoint in state.endpoints { hold(endpoint, true) }
        builder.newChains = []
        builder.newSets = []
    }

    public var state: DesiredState { builder.state }
    public var options: CompilerOptions { builder.options }
    public var table: Table { builder.table }
    public var chainCount: Int { builder.chains.count }
    public var setCount: Int { builder.sets.count }

    /// The compiled ruleset (endpoints in state order), as a full compile would return it. Made
    /// on each call, not kept: its list of endpoints repeats what the session holds by id (some
    /// 5 MB at 10,000 pods), for the occasional explain or listing.
    public var ruleset: CompiledRuleset {
        var endpoints: [CompiledEndpoint] = []
        endpoints.reserveCapacity(entries.count)
        for endpoint in builder.state.endpoints {
            if let entry = entries[endpoint.id] { endpoints.append(entry) }
        }
        return CompiledRuleset(table: builder.table, endpoints: endpoints, warnings: warnings)
    }

    /// The compiler's warnings, in state order.
    public var warnings: [CompilerWarning] {
        warningOf.isEmpty ? [] : builder.state.endpoints.compactMap { warningOf[$0.id] }
    }

    public func endpoint(_ id: String) -> CompiledEndpoint? { entries[id] }

    /// Applies workload changes and returns the kernel changes that take the table there, for one
    /// batch (empty when nothing in the table changes). The session holds the new table at once:
    /// if the batch fails, drop the session and compile in full.
    public func apply(_ changes: EndpointChanges) -> [Change] {
        builder.newChains = []
        builder.newSets = []
        // No copy of the state is kept: a second reference to its arrays would make the first edit
        // below copy all of them. Only namespaces matter to selections, and they do not change here.
        let oldQuarantines = builder.state.quarantines

        // Which endpoints to compile again: the changed ones, those a quarantine change covers, and
        // every claimant of an interface a changed endpoint leaves or takes (a collision may end
        // or begin).
        var affected = Set(changes.endpoints.keys)
        if let quarantines = changes.quarantines {
            let before = Set(oldQuarantines.map(\.podID)), after = Set(quarantines.map(\.podID))
            for podID in before.symmetricDifference(after) { affected.insert(podID) }
            // The same pod id with another quarantine (another uid, futurePods): recompute too.
            let old = Dictionary(oldQuarantines.map { ($0.podID, $0) }, uniquingKeysWith: { first, _ in first })
            for quarantine in quarantines where old[quarantine.podID] != nil && old[quarantine.podID] != quarantine {
                affected.insert(quarantine.podID)
            }
        }
        var oldEndpoints: [String: Endpoint] = [:]
        for id in changes.endpoints.keys {
            if let old = builder.state.endpoint(id) { oldEndpoints[id] = old }
        }
        for (id, new) in changes.endpoints {
            if let old = oldEndpoints[id], builder.isLocal(old) {
                let interface = builder.interface(of: old)
                builder.claimants[interface]?.removeAll { $0 == id }
                if builder.claimants[interface]?.isEmpty == true { builder.claimants[interface] = nil }
                affected.formUnion(builder.claimants[interface] ?? [])
            }
            if let new, builder.isLocal(new) {
                let interface = builder.interface(of: new)
                affected.formUnion(builder.claimants[interface] ?? [])
                builder.claimants[interface, default: []].append(id)
            }
        }

        // Out with the old entries.
        var oldDispatch: [String: Set<SetElement>] = [:]
        var orphaned: [String] = []
        for id in affected {
            guard let entry = entries.removeValue(forKey: id) else { continue }
            for element in entry.dispatchElements { oldDispatch[element.set, default: []].insert(element.element) }
            orphaned += builder.removeDispatch(of: entry)
            count(entry, -1)
            warningOf[id] = nil
        }

        // The new state.
        for (id, new) in changes.endpoints {
            if let old = oldEndpoints[id] { hold(old, false) }
            builder.state.setEndpoint(id, new)
            if let new { hold(new, true) }
        }
        for (id, pod) in changes.skippedPods { builder.state.setSkippedPod(id, pod) }
        if let quarantines = changes.quarantines { builder.state.quarantines = quarantines.sorted { $0.podID < $1.podID } }

        // In with the new: chains and sets a new combination of policies needs are built here,
        // from the new state, and noted in the builder's journal.
        var newDispatch: [String: Set<SetElement>] = [:]
        for id in affected {
            guard let endpoint = builder.state.endpoint(id) else { continue }
            let (entry, warning) = builder.compileEndpoint(endpoint)
            entries[id] = entry
            warningOf[id] = warning
            count(entry, +1)
            for element in entry.dispatchElements { newDispatch[element.set, default: []].insert(element.element) }
        }
        let createdSets = Set(builder.newSets)

        // Membership of the existing address sets: for each element a changed endpoint put in or
        // would put in now, is there (still) an endpoint that puts it there?
        var removals: [String: [SetElement]] = [:]
        var additions: [String: [SetElement]] = [:]
        for (name, membership) in builder.memberships where !createdSets.contains(name) {
            var candidates: [SetElement: IPAddress] = [:]
            for (id, new) in changes.endpoints {
                if let old = oldEndpoints[id] {
                    for (address, element) in membership.entries(of: old, builder.state) { candidates[element] = address }
                }
                if let new {
                    for (address, element) in membership.entries(of: new, builder.state) { candidates[element] = address }
                }
            }
            for (element, address) in candidates {
                let wanted = holds(element, at: address, membership)
                let present = builder.sets[name]?.elements.contains(element) ?? false
                if wanted && !present {
                    builder.sets[name]?.elements.insert(element)
                    additions[name, default: []].append(element)
                } else if !wanted && present {
                    builder.sets[name]?.elements.remove(element)
                    removals[name, default: []].append(element)
                }
            }
        }
        for (set, elements) in oldDispatch {
            let removed = elements.subtracting(newDispatch[set] ?? [])
            if !removed.isEmpty { removals[set, default: []] += removed }
        }
        for (set, elements) in newDispatch {
            let added = elements.subtracting(oldDispatch[set] ?? [])
            if !added.isEmpty { additions[set, default: []] += added }
        }

        // Chains no dispatch entry leads to any more, and what only they used.
        let swept = builder.collect(orphaned)

        let delta = TableDelta(
            addedChains: builder.newChains.filter { builder.chains[$0] != nil },
            addedSets: builder.newSets.filter { builder.sets[$0] != nil },
            removals: removals.filter { !createdSets.contains($0.key) },
            additions: additions.filter { !createdSets.contains($0.key) },
            flushedChains: swept.filled,
            refilledChains: [],
            deletedChains: swept.chains,
            deletedSets: swept.sets)
        return delta.changes(in: builder.table)
    }

    /// Whether some endpoint of the current state puts `element` into a set of this membership.
    private func holds(_ element: SetElement, at address: IPAddress, _ membership: TableBuilder.Membership) -> Bool {
        for id in holders[address] ?? [] {
            guard let endpoint = builder.state.endpoint(id) else { continue }
            if membership.entries(of: endpoint, builder.state).contains(where: { $0.element == element }) { return true }
        }
        return false
    }

    private func hold(_ endpoint: Endpoint, _ holding: Bool) {
        for address in endpoint.addresses {
            if holding {
                holders[address, default: []].append(endpoint.id)
            } else {
                holders[address]?.removeAll { $0 == endpoint.id }
                if holders[address]?.isEmpty == true { holders[address] = nil }
            }
        }
    }

    private func count(_ entry: CompiledEndpoint, _ sign: Int) {
        if entry.interface != nil {
            localEndpoints += sign
            if entry.quarantine != nil { quarantinedEndpoints += sign }
        }
    }
}

extension TableBuilder {
    /// Removes the chains among `candidates` that no dispatch entry and no rule refers to any more
    /// (an endpoint chain whose last endpoint went), then what only they referred to (policy
    /// chains, sets), as a full compile would not have built them. The chains of the fixed layout
    /// stay. Returns what it removed.
    mutating func collect(_ candidates: [String]) -> (chains: [String], filled: [String], sets: [String]) {
        var pending = candidates
        var gone = (chains: [String](), filled: [String](), sets: [String]())
        while let name = pending.popLast() {
            guard let chain = chains[name], chain.hook == nil, name != Layout.toWorkloadChain,
                  references[name] == nil, dispatchUsers[name] == nil else { continue }
            chains[name] = nil
            meanings[name] = nil
            gone.chains.append(name)
            if !chain.rules.isEmpty { gone.filled.append(name) }
            for target in Self.targets(of: chain) {
                let left = (references[target] ?? 1) - 1
                references[target] = left > 0 ? left : nil
                guard left <= 0 else { continue }
                if chains[target] != nil {
                    pending.append(target)
                } else if sets[target] != nil {
                    sets[target] = nil
                    meanings[target] = nil
                    memberships[target] = nil
                    gone.sets.append(target)
                }
            }
        }
        if !gone.chains.isEmpty {
            let removed = Set(gone.chains)
            for direction in chainOfProfile.keys {
                chainOfProfile[direction] = chainOfProfile[direction]?.filter { !removed.contains($0.value) }
            }
        }
        return gone
    }
}

extension DesiredState {
    /// The endpoint with this id (endpoints are sorted by id).
    public func endpoint(_ id: String) -> Endpoint? {
        let index = endpoints.sortedIndex(of: id, by: \.id)
        return index.found ? endpoints[index.index] : nil
    }

    /// Sets (or, with nil, removes) the endpoint with this id, keeping the order.
    public mutating func setEndpoint(_ id: String, _ endpoint: Endpoint?) {
        let index = endpoints.sortedIndex(of: id, by: \.id)
        switch (index.found, endpoint) {
        case (true, let endpoint?): endpoints[index.index] = endpoint
        case (true, nil): endpoints.remove(at: index.index)
        case (false, let endpoint?): endpoints.insert(endpoint, at: index.index)
        case (false, nil): break
        }
    }

    /// Sets (or removes) the skipped pod with this id ("namespace/name"), keeping the order.
    public mutating func setSkippedPod(_ id: String, _ pod: SkippedPod?) {
        let index = skippedPods.sortedIndex(of: id, by: \.id)
        switch (index.found, pod) {
        case (true, let pod?): skippedPods[index.index] = pod
        case (true, nil): skippedPods.remove(at: index.index)
        case (false, let pod?): skippedPods.insert(pod, at: index.index)
        case (false, nil): break
        }
    }

}

extension SkippedPod {
    var id: String { "\(namespace)/\(name)" }
}

extension Array {
    func isSorted(by key: (Element) -> String) -> Bool {
        indices.dropFirst().allSatisfy { key(self[$0 - 1]) <= key(self[$0]) }
    }

    /// Binary search in an array sorted by `key`: the index of `value`, or where it would go.
    func sortedIndex(of value: String, by key: (Element) -> String) -> (index: Int, found: Bool) {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            let candidate = key(self[middle])
            if candidate == value { return (middle, true) }
            if candidate < value { low = middle + 1 } else { high = middle }
        }
        return (low, false)
    }
}
