import NetworkAddress
import NftablesModel
import PolicyModel

/// The named sets rules look things up in. Each is named after a hash of what it means, so rules
/// that mean the same share one set, and a changed membership edits elements, not rules.
extension TableBuilder {
    /// Addresses of the endpoints a selection names, one set per family.
    mutating func selectionSet(_ selection: EndpointSelection, _ family: IPFamily) -> String {
        let (name, isNew) = claim("sel." + Naming.shortHash(selection.canonicalText) + "." + family.short,
                                  meaning: "selection \(family) " + selection.canonicalText)
        if !isNew { return name }
        let membership = Membership(selection: selection, family: family, namedPort: nil)
        var set = NftSet(name: name, keyType: family == .ipv4 ? .ipv4Address : .ipv6Address)
        membership.insertElements(of: candidates(selection), state, into: &set.elements)
        putSet(set)
        memberships[name] = membership
        return name
    }

    /// An interval set of prefixes of one family (merged, as the kernel requires).
    mutating func prefixSet(_ prefixes: [CIDR], _ family: IPFamily) -> String {
        let ofFamily = prefixes.filter { $0.family == family }.sorted()
        let key = ofFamily.map(\.description).joined(separator: ",")
        let (name, isNew) = claim("net." + Naming.shortHash(key) + "." + family.short, meaning: "prefixes " + key)
        if isNew {
            putSet(NftSet(name: name, keyType: family == .ipv4 ? .ipv4Address : .ipv6Address, flags: .interval,
                          elements: IntervalElements.elements(for: ofFamily)))
        }
        return name
    }

    /// An interval set of port ranges.
    mutating func portSet(_ ranges: [ClosedRange<UInt16>]) -> String {
        let sorted = ranges.sorted { ($0.lowerBound, $0.upperBound) < ($1.lowerBound, $1.upperBound) }
        let key = sorted.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
        let (name, isNew) = claim("port." + Naming.shortHash(key), meaning: "ports " + key)
        if isNew {
            putSet(NftSet(name: name, keyType: .inetService, flags: .interval,
                          elements: IntervalElements.elements(forPorts: sorted)))
        }
        return name
    }

    /// `address . port` pairs of a named port, resolved on each endpoint of `targets` that has
    /// a container port of that name and protocol.
    mutating func namedPortSet(_ targets: EndpointSelection, port portName: String, proto: UInt8, _ family: IPFamily) -> String {
        let key = "\(targets.canonicalText) port=\(portName)/\(proto)"
        let (name, isNew) = claim("np." + Naming.shortHash(key) + "." + family.short, meaning: "named port \(family) " + key)
        if !isNew { return name }
        let membership = Membership(selection: targets, family: family, namedPort: (portName, proto))
        var set = NftSet(name: name, keyType: family == .ipv4 ? .ipv4AddressService : .ipv6AddressService)
        membership.insertElements(of: candidates(targets), state, into: &set.elements)
        putSet(set)
        memberships[name] = membership
        return name
    }

    /// Indices (into `state.endpoints`) of the endpoints a selection can match: those of the
    /// namespaces it can name, when it names namespaces and the index is there (during a full
    /// build); every endpoint otherwise. A superset: the caller still checks each.
    func candidates(_ selection: EndpointSelection) -> [Int] {
        guard let byNamespace = endpointsOfNamespace else { return Array(state.endpoints.indices) }
        let namespaces: [String]
        switch selection {
        case .kubernetes(let peer):
            if let selector = peer.namespaces {
                namespaces = byNamespace.keys.filter { selector.matches(state.namespaceLabels($0)) }
            } else {
                namespaces = [peer.policyNamespace]
            }
        case .calico(let namespace?, _, _), .policyTargets(let namespace, _):
            namespaces = [namespace]
        case .calico(nil, let namespaceSelector?, _):
            namespaces = byNamespace.keys.filter { namespaceSelector.matches(CalicoLabels.namespace($0, state)) }
        case .calico(nil, nil, _), .everything:
            return Array(state.endpoints.indices)
        }
        return namespaces.flatMap { byNamespace[$0] ?? [] }
    }

    // MARK: Conditions over those sets

    /// The packet's address on `side` belongs (or, inverted, does not belong) to the selection.
    mutating func selectionCondition(_ selection: EndpointSelection, _ side: AddressSide, invert: Bool = false) -> Condition {
        Condition(alternatives: IPFamily.allCases.map { family in
            Alternative(family: family, exprs: Match.address(side, family, inSet: selectionSet(selection, family), invert: invert))
        })
    }

    /// The packet's address on `side` is inside (or, inverted, outside) the prefixes. A family
    /// with no prefixes never matches (or, inverted, always does).
    mutating func prefixCondition(_ prefixes: [CIDR], _ side: AddressSide, invert: Bool = false) -> Condition {
        Condition(alternatives: IPFamily.allCases.compactMap { family in
            let ofFamily = prefixes.filter { $0.family == family }
            if ofFamily.isEmpty { return invert ? Alternative(family: family, exprs: Match.family(family)) : nil }
            return Alternative(family: family, exprs: Match.address(side, family, inSet: prefixSet(ofFamily, family), invert: invert))
        })
    }

    /// A named port on `side`, resolved on `targets` (the endpoints that can be on that side).
    mutating func namedPortCondition(_ portName: String, proto: UInt8, _ side: AddressSide, targets: EndpointSelection,
                                     invert: Bool = false) -> Condition {
        Condition(alternatives: IPFamily.allCases.map { family in
            Alternative(family: family, exprs: Match.addressPort(side, family, protocol: proto,
                                                                 inSet: namedPortSet(targets, port: portName, proto: proto, family),
                                                                 invert: invert))
        })
    }
}

extension IPFamily {
    var short: String { self == .ipv4 ? "v4" : "v6" }
}

extension TableBuilder.Membership {
    /// The elements one endpoint puts into the set, straight into it (a full compile does this
    /// ~100,000 times: no array in between).
    func insertElements(of endpoint: Endpoint, _ state: DesiredState, into elements: inout Set<SetElement>) {
        forEachEntry(of: endpoint, state) { elements.insert($1) }
    }

    /// The elements the endpoints at `indices` put into the set. The endpoints are read in place
    /// (a copy of each would retain and release its nine reference-counted fields).
    func insertElements(of indices: [Int], _ state: DesiredState, into elements: inout Set<SetElement>) {
        state.endpoints.withUnsafeBufferPointer { endpoints in
            for index in indices { forEachEntry(of: endpoints[index], state) { elements.insert($1) } }
        }
    }

    /// The same, each with the address it stands for.
    func entries(of endpoint: Endpoint, _ state: DesiredState) -> [(address: IPAddress, element: SetElement)] {
        var result: [(address: IPAddress, element: SetElement)] = []
        forEachEntry(of: endpoint, state) { result.append(($0, $1)) }
        return result
    }

    /// Its addresses of the family if the selection names it (for a named-port set, each address
    /// with the port, if the endpoint has that port).
    private func forEachEntry(of endpoint: Endpoint, _ state: DesiredState, _ body: (IPAddress, SetElement) -> Void) {
        guard endpoint.addresses.contains(where: { $0.family == family }), selection.matches(endpoint, state) else { return }
        var port: UInt16?
        if let namedPort {
            guard let named = endpoint.namedPorts.first(where: { $0.name == namedPort.name && $0.proto.number == namedPort.proto }) else {
                return
            }
            port = named.port
        }
        for address in endpoint.addresses where address.family == family {
            body(address, port.map { .addressPort(address, $0) } ?? .address(address))
        }
    }
}

extension CompiledEndpoint {
    /// Its entries in the dispatch maps, the source-address sets (and the quarantined-interfaces
    /// set), if dispatched here.
    var dispatchElements: [(set: String, element: SetElement)] {
        guard let interface, let ingressChain, let egressChain else { return [] }
        var result: [(set: String, element: SetElement)] = [
            (Layout.ingressDispatch, .interface(interface, verdict: .jump(ingressChain))),
            (Layout.egressDispatch, .interface(interface, verdict: .jump(egressChain))),
        ]
        if quarantine != nil { result.append((Layout.quarantinedInterfaces, SetElement(key: Bytes.ifname(interface)))) }
        for address in endpoint.addresses {
            result.append((Layout.sourceAddresses(address.family), .interfaceAddress(interface, address)))
        }
        return result
    }
}
