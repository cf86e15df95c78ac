// `networking.k8s.io/v1 NetworkPolicy`, with the API server's defaulting and validation.
// Inside `spec` (rules, peers, ipBlocks, ports, label selectors) an unknown key is an error naming
// the fields that are valid there: a misspelt field is an absent one, and an absent `from`, selector
// or `except` widens a rule (`form:` would admit every source). Outside `spec` (metadata, status,
// whatever kubectl adds) unknown keys are ignored.

enum NetworkPolicyDecoding {
    static func decode(_ object: DocumentNode) throws -> NetworkPolicy {
        let metadata = try ObjectMetadata(of: object, nameRule: .dnsSubdomain, namespaced: true)
        let spec = try object.requiredField("spec")
        try spec.requireMapping()
        try spec.checkFields(valid: specFields, of: "a NetworkPolicy spec")
        let podSelector = try LabelSelectorDecoding.decode(
            spec.requiredField("podSelector", advice: "write podSelector: {} to select every pod in the namespace"))
        let ingress = try rules(spec.field("ingress"), peersKey: "from", of: "a NetworkPolicy ingress rule")
        let egress = try rules(spec.field("egress"), peersKey: "to", of: "a NetworkPolicy egress rule")

        var policyTypes: Set<Direction> = []
        for item in try spec.field("policyTypes")?.list() ?? [] {
            switch try item.text() {
            case "Ingress": policyTypes.insert(.ingress)
            case "Egress": policyTypes.insert(.egress)
            case let other: throw item.error("\(quoted(other)) is not one of Ingress, Egress")
            }
        }
        // Kubernetes' defaulting (SetDefaults_NetworkPolicy): Ingress always, Egress when there is
        // at least one egress rule. `egress: []` therefore does not make a policy an egress policy.
        if policyTypes.isEmpty {
            policyTypes = egress.isEmpty ? [.ingress] : [.ingress, .egress]
        }

        return NetworkPolicy(namespace: metadata.namespace, name: metadata.name, podSelector: podSelector,
                             policyTypes: policyTypes, ingress: ingress, egress: egress, location: object.location)
    }

    private static let specFields = ["podSelector", "policyTypes", "ingress", "egress"]
    private static let peerFields = ["podSelector", "namespaceSelector", "ipBlock"]
    private static let ipBlockFields = ["cidr", "except"]
    private static let portFields = ["protocol", "port", "endPort"]

    /// `ingress` (peers under `from`) or `egress` (peers under `to`).
    private static func rules(_ node: DocumentNode?, peersKey: String, of what: String) throws -> [PolicyRule] {
        try node?.list().map { rule in
            // `- {}` (or a bare `-`) is the rule that admits every peer on every port.
            if rule.isNull { return PolicyRule() }
            try rule.requireMapping()
            try rule.checkFields(valid: [peersKey, "ports"], of: what)
            let peers = try rule.field(peersKey)?.list().map(peer) ?? []
            let ports = try rule.field("ports")?.list().map(port) ?? []
            return PolicyRule(peers: peers, ports: ports)
        } ?? []
    }

    private static func peer(_ node: DocumentNode) throws -> PolicyPeer {
        if node.isNull { throw node.error("must have podSelector, namespaceSelector or ipBlock") }
        try node.requireMapping()
        try node.checkFields(valid: peerFields, of: "a NetworkPolicy peer")
        let pods = try node.field("podSelector").map(LabelSelectorDecoding.decode)
        let namespaces = try node.field("namespaceSelector").map(LabelSelectorDecoding.decode)
        if let block = try node.field("ipBlock") {
            let selectors = [pods.map { _ in "podSelector" }, namespaces.map { _ in "namespaceSelector" }]
                .compactMap { $0 }
            if !selectors.isEmpty {
                throw node.error("has both ipBlock and \(selectors.joined(separator: " and ")); "
                                 + "an ipBlock must be a peer of its own")
            }
            return try ipBlock(block)
        }
        if pods == nil && namespaces == nil {
            throw node.error("must have podSelector, namespaceSelector or ipBlock")
        }
        return .selector(pods: pods, namespaces: namespaces)
    }

    private static func ipBlock(_ node: DocumentNode) throws -> PolicyPeer {
        try node.requireMapping()
        try node.checkFields(valid: ipBlockFields, of: "an ipBlock")
        let cidr = try prefix(node.requiredField("cidr"))
        var except: [CIDR] = []
        for item in try node.field("except")?.list() ?? [] {
            let excluded = try prefix(item)
            if excluded.family != cidr.family {
                throw item.error("\(quoted(excluded.description)) is not the same address family as cidr "
                                 + quoted(cidr.description))
            }
            guard cidr.contains(excluded), excluded.prefixLength > cidr.prefixLength else {
                throw item.error("\(quoted(excluded.description)) is not strictly inside cidr \(quoted(cidr.description))")
            }
            except.append(excluded)
        }
        return .ipBlock(cidr: cidr, except: except)
    }

    /// A CIDR as Kubernetes accepts it: the prefix length is required; host bits are cleared, as the
    /// API server (which keeps `10.0.0.1/24` as written) and every dataplane treat them.
    static func prefix(_ node: DocumentNode) throws -> CIDR {
        let text = try node.text()
        guard text.contains("/") else {
            let hint = IPAddress(text).map { " (write \($0)/\($0.family.bitCount) for one address)" } ?? ""
            throw node.error("\(quoted(text)) is not a valid CIDR\(hint)")
        }
        guard let cidr = CIDR(text, strict: false) else { throw node.error("\(quoted(text)) is not a valid CIDR") }
        return cidr
    }

    private static func port(_ node: DocumentNode) throws -> PolicyPort {
        if node.isNull { return PolicyPort() }
        try node.requireMapping()
        try node.checkFields(valid: portFields, of: "a NetworkPolicy port")
        let proto = try PortDecoding.portProtocol(node.field("protocol"))
        var spec: PortSpec?
        if let portNode = try node.field("port") {
            if portNode.isInteger {
                let number = try portNode.integer()
                guard (1...65535).contains(number) else { throw portNode.error("\(number) is not between 1 and 65535") }
                spec = .number(UInt16(number))
            } else {
                let name = try portNode.text()
                if let problem = NameRules.portNameProblem(name) {
                    let hint = !name.isEmpty && name.allSatisfy(\.isNumber) ? " (write a port number without quotes)" : ""
                    throw portNode.error("\(quoted(name)) is not a valid port name: \(problem)\(hint)")
                }
                spec = .named(name)
            }
        }
        var endPort: UInt16?
        if let endNode = try node.field("endPort") {
            let end = try endNode.integer()
            switch spec {
            case nil:
                throw endNode.error("needs a numeric port to start the range")
            case .named(let name):
                throw endNode.error("cannot be used with the named port \(quoted(name)); a range needs a numeric port")
            case .number(let start):
                guard (1...65535).contains(end) else { throw endNode.error("\(end) is not between 1 and 65535") }
                guard end >= Int(start) else { throw endNode.error("\(end) is less than port \(start)") }
                endPort = UInt16(end)
            }
        }
        return PolicyPort(proto: proto, port: spec, endPort: endPort)
    }
}
