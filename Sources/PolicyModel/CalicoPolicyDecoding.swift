// `projectcalico.org/v3` NetworkPolicy and GlobalNetworkPolicy, checked as Calico's validator does.
// What Palisade does not enforce (tiers, service accounts, HTTP, host endpoint options…) is
// rejected by name: a policy that loads is a policy that is enforced as written. Inside rules and
// their source/destination an unknown key is an error too, because a typo there widens a rule.

enum CalicoPolicyDecoding {
    static func decode(_ object: DocumentNode, global: Bool) throws -> CalicoPolicy {
        let metadata = try ObjectMetadata(of: object, nameRule: .dnsSubdomain, namespaced: !global)
        let spec = try object.requiredField("spec", advice: "write spec: {} for a policy with no rules")
        try spec.requireMapping()
        try checkUnsupportedSpecFields(spec)

        let order = try spec.field("order").map(number)
        let selector = try spec.field("selector").flatMap(selectorExpression) ?? .all
        var namespaceSelector: SelectorExpression?
        if let node = try spec.field("namespaceSelector") {
            guard global else {
                throw node.error("is not a field of a namespaced NetworkPolicy; use a GlobalNetworkPolicy to "
                                 + "select endpoints by namespace")
            }
            namespaceSelector = try selectorExpression(node)
        }
        let types = try spec.field("types").flatMap(policyTypes)
        let ingress = try spec.field("ingress")?.list().map(rule) ?? []
        let egress = try spec.field("egress")?.list().map(rule) ?? []

        return CalicoPolicy(namespace: global ? nil : metadata.namespace, name: metadata.name, order: order,
                            selector: selector, namespaceSelector: namespaceSelector, types: types,
                            ingress: ingress, egress: egress, location: object.location)
    }

    // MARK: Spec

    /// `tier` other than default, `serviceAccountSelector` and the host endpoint options. Their
    /// defaults (`tier: default`, an empty selector, `false`) mean what Palisade does, so they pass.
    private static func checkUnsupportedSpecFields(_ spec: DocumentNode) throws {
        if let tier = try spec.field("tier"), try tier.text() != "default", try tier.text() != "" {
            throw tier.error("\(quoted(try tier.text())) is not supported by Palisade: it has only the default "
                             + "tier; remove tier or set it to default")
        }
        if let node = try spec.field("serviceAccountSelector"), try !isBlank(node.text()) {
            throw node.unsupported("it selects pods by service account, which Palisade does not know")
        }
        let hostEndpointOptions = [
            ("doNotTrack", "it applies host endpoint policy before connection tracking"),
            ("preDNAT", "it applies host endpoint policy before DNAT"),
            ("applyOnForward", "it applies host endpoint policy to forwarded traffic"),
        ]
        for (key, reason) in hostEndpointOptions {
            if let node = try spec.field(key), try node.boolean() {
                throw node.unsupported(reason + ", and Palisade has no host endpoints")
            }
        }
    }

    /// `order`: any finite number, integer or not.
    private static func number(_ node: DocumentNode) throws -> Double {
        var value: Double?
        switch DocumentNode.tagName(node.node) {
        case .int: value = node.node.int.map(Double.init)
        case .float: value = node.node.float
        default: break
        }
        guard case .scalar = node.node, let value else {
            throw node.error("must be a number, not \(node.shapeDescription)")
        }
        guard value.isFinite else { throw node.error("must be a finite number, not \(node.shapeDescription)") }
        return value
    }

    /// `types`; nil (infer, as Calico does) when absent or empty.
    private static func policyTypes(_ node: DocumentNode) throws -> Set<Direction>? {
        let items = try node.list()
        if items.isEmpty { return nil }
        var types: Set<Direction> = []
        for item in items {
            let direction: Direction
            switch try item.text() {
            case "Ingress": direction = .ingress
            case "Egress": direction = .egress
            case let other: throw item.error("\(quoted(other)) is not one of Ingress, Egress")
            }
            guard types.insert(direction).inserted else {
                throw item.error("\(quoted(try item.text())) is given more than once")
            }
        }
        return types
    }

    // MARK: Rules

    private static let ruleFields = ["action", "protocol", "notProtocol", "ipVersion", "icmp", "notICMP",
                                     "source", "destination", "metadata"]
    private static let unsupportedRuleFields = [
        "http": "it matches HTTP requests (application layer policy), which Palisade does not see",
    ]

    private static func rule(_ node: DocumentNode) throws -> CalicoRule {
        if node.isNull { throw node.missing("action") }
        try node.requireMapping()
        try node.checkFields(valid: ruleFields, unsupported: unsupportedRuleFields, of: "a Calico rule")

        let actionNode = try node.requiredField("action")
        let actionText = try actionNode.text()
        guard let action = CalicoAction(rawValue: actionText) else {
            let known = CalicoAction.allCases.map(\.rawValue).joined(separator: ", ")
            throw actionNode.error("\(quoted(actionText)) is not one of \(known)")
        }

        let proto = try node.field("protocol").map(protocolValue)
        let notProto = try node.field("notProtocol").map(protocolValue)
        var ipVersion: IPFamily?
        let ipVersionNode = try node.field("ipVersion")
        if let ipVersionNode {
            switch try ipVersionNode.integer() {
            case 4: ipVersion = .ipv4
            case 6: ipVersion = .ipv6
            case let other: throw ipVersionNode.error("\(other) is not one of 4, 6")
            }
        }

        var icmp: ICMPMatch?
        var notICMP: ICMPMatch?
        for (key, isNegated) in [("icmp", false), ("notICMP", true)] {
            guard let icmpNode = try node.field(key) else { continue }
            guard proto == .icmp || proto == .icmpv6 else {
                throw icmpNode.error("needs protocol ICMP or ICMPv6 (\(protocolClause(proto)))")
            }
            let match = try icmpMatch(icmpNode)
            if isNegated { notICMP = match } else { icmp = match }
        }
        if let ipVersionNode, let ipVersion {
            for (key, value) in [("protocol", proto), ("notProtocol", notProto)] {
                if value == .icmp && ipVersion == .ipv6 {
                    throw ipVersionNode.error("6 does not match \(key) ICMP, which is IPv4 only; use ICMPv6")
                }
                if value == .icmpv6 && ipVersion == .ipv4 {
                    throw ipVersionNode.error("4 does not match \(key) ICMPv6, which is IPv6 only; use ICMP")
                }
            }
        }

        let source = try entity(node.field("source"), path: node.childPath("source"), proto: proto)
        let destination = try entity(node.field("destination"), path: node.childPath("destination"), proto: proto)
        try checkAddressFamilies(source.nets + destination.nets, ipVersion: ipVersion)

        return CalicoRule(action: action, proto: proto, notProto: notProto, ipVersion: ipVersion, icmp: icmp,
                          notICMP: notICMP, source: source.rule, destination: destination.rule,
                          location: node.location)
    }

    /// `protocol`/`notProtocol`: a name (any case, as Calico reads it) or a number 1–255, quoted or
    /// not. Numbers with a name become the name, so that `6` and `TCP` are the same rule.
    private static func protocolValue(_ node: DocumentNode) throws -> CalicoProtocol {
        let text = try node.text()
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) {
            guard let number = Int(text), (1...255).contains(number) else {
                throw node.error("\(text) is not between 1 and 255")
            }
            switch number {
            case 1: return .icmp
            case 6: return .tcp
            case 17: return .udp
            case 58: return .icmpv6
            case 132: return .sctp
            default: return .number(UInt8(number))
            }
        }
        switch text.lowercased() {
        case "tcp": return .tcp
        case "udp": return .udp
        case "sctp": return .sctp
        case "icmp": return .icmp
        case "icmpv6": return .icmpv6
        case "udplite": return .number(136)
        default:
            throw node.error("\(quoted(text)) is not one of TCP, UDP, SCTP, ICMP, ICMPv6, UDPLite or a protocol "
                             + "number from 1 to 255")
        }
    }

    private static func protocolName(_ proto: CalicoProtocol) -> String {
        switch proto {
        case .tcp: return "TCP"
        case .udp: return "UDP"
        case .sctp: return "SCTP"
        case .icmp: return "ICMP"
        case .icmpv6: return "ICMPv6"
        case .number(let number): return "\(number)"
        }
    }

    /// "the rule has no protocol" or "protocol is TCP", to finish an error about a protocol requirement.
    private static func protocolClause(_ proto: CalicoProtocol?) -> String {
        proto.map { "protocol is \(protocolName($0))" } ?? "the rule has no protocol"
    }

    /// `{type, code}`; an empty mapping matches every type, so it is no constraint at all.
    private static func icmpMatch(_ node: DocumentNode) throws -> ICMPMatch? {
        try node.requireMapping()
        try node.checkFields(valid: ["type", "code"], of: "an ICMP match")
        let typeNode = try node.field("type")
        let codeNode = try node.field("code")
        var code: UInt8?
        if let codeNode {
            guard typeNode != nil else {
                throw codeNode.error("needs a type: the kernel matches an ICMP code only together with its type")
            }
            let value = try codeNode.integer()
            guard (0...255).contains(value) else { throw codeNode.error("\(value) is not between 0 and 255") }
            code = UInt8(value)
        }
        guard let typeNode else { return nil }
        let type = try typeNode.integer()
        guard (0...254).contains(type) else { throw typeNode.error("\(type) is not between 0 and 254") }
        return ICMPMatch(type: UInt8(type), code: code)
    }

    // MARK: Source and destination

    private static let entityFields = ["nets", "notNets", "selector", "notSelector", "namespaceSelector",
                                       "ports", "notPorts"]
    private static let unsupportedEntityFields = [
        "serviceAccounts": "it matches pods by service account, which Palisade does not know",
        "services": "it matches Kubernetes Services, which Palisade does not know",
        "domains": "it matches DNS names, which Palisade does not resolve",
    ]

    /// A source or destination, with the nodes of its CIDRs for the rule's address family check.
    private struct Entity {
        var rule = CalicoEntityRule()
        var nets: [(cidr: CIDR, node: DocumentNode)] = []
    }

    private static func entity(_ node: DocumentNode?, path: String, proto: CalicoProtocol?) throws -> Entity {
        var entity = Entity()
        guard let node else { return entity }
        try node.requireMapping()
        try node.checkFields(valid: entityFields, unsupported: unsupportedEntityFields,
                             of: "a Calico rule's source or destination")

        for (key, negated) in [("nets", false), ("notNets", true)] {
            for item in try node.field(key)?.list() ?? [] {
                let cidr = try NetworkPolicyDecoding.prefix(item)
                entity.nets.append((cidr, item))
                if negated { entity.rule.notNets.append(cidr) } else { entity.rule.nets.append(cidr) }
            }
        }
        entity.rule.selector = try node.field("selector").flatMap(selectorExpression)
        entity.rule.notSelector = try node.field("notSelector").flatMap(selectorExpression)
        entity.rule.namespaceSelector = try node.field("namespaceSelector").flatMap(selectorExpression)

        for (key, negated) in [("ports", false), ("notPorts", true)] {
            guard let portsNode = try node.field(key) else { continue }
            let ports = try portsNode.list().map(port)
            if ports.isEmpty { continue }
            guard proto?.hasPorts == true else {
                throw portsNode.error("needs protocol TCP, UDP or SCTP: Calico requires a protocol for ports "
                                      + "(\(protocolClause(proto)))")
            }
            if negated { entity.rule.notPorts = ports } else { entity.rule.ports = ports }
        }
        return entity
    }

    /// As Calico's validator: every CIDR of a rule is of one family, and of `ipVersion` when given.
    private static func checkAddressFamilies(_ nets: [(cidr: CIDR, node: DocumentNode)], ipVersion: IPFamily?) throws {
        func name(_ family: IPFamily) -> String { family == .ipv4 ? "IPv4" : "IPv6" }
        guard let first = nets.first else { return }
        for (cidr, node) in nets {
            if let ipVersion, cidr.family != ipVersion {
                throw node.error("\(quoted(cidr.description)) is \(name(cidr.family)) but the rule's ipVersion is "
                                 + (ipVersion == .ipv4 ? "4" : "6"))
            }
            if cidr.family != first.cidr.family {
                throw node.error("\(quoted(cidr.description)) is \(name(cidr.family)) but \(first.node.path) "
                                 + "\(quoted(first.cidr.description)) is \(name(first.cidr.family)); a rule matches "
                                 + "one address family (write one rule per family)")
            }
        }
    }

    /// One entry of `ports`/`notPorts`: a number, `"first:last"`, or a named port. The text is read
    /// as written: YAML 1.1 would make an unquoted `1000:1050` a base-60 integer, which Calico does not.
    private static func port(_ node: DocumentNode) throws -> CalicoPort {
        guard case .scalar(let scalar) = node.node, !node.isNull else {
            throw node.error("must be a port number, a range \"first:last\" or a port name, not \(node.shapeDescription)")
        }
        let text = scalar.string
        func isDigits(_ part: Substring) -> Bool {
            !part.isEmpty && part.unicodeScalars.allSatisfy { ("0"..."9").contains($0) }
        }
        func portNumber(_ part: Substring) -> UInt16? {
            guard let value = Int(part), (1...65535).contains(value) else { return nil }
            return UInt16(value)
        }
        if isDigits(Substring(text)) {
            guard let number = portNumber(Substring(text)) else { throw node.error("\(text) is not between 1 and 65535") }
            return .range(number...number)
        }
        if text.contains(":") {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, isDigits(parts[0]), isDigits(parts[1]) else {
                throw node.error("\(quoted(text)) is not a valid port range (write first:last, such as 8000:8080)")
            }
            for part in parts where portNumber(part) == nil {
                throw node.error("\(quoted(text)) is not a valid port range: \(part) is not between 1 and 65535")
            }
            guard let first = portNumber(parts[0]), let last = portNumber(parts[1]), first <= last else {
                throw node.error("\(quoted(text)) is not a valid port range: \(parts[0]) is greater than \(parts[1])")
            }
            return .range(first...last)
        }
        if let problem = NameRules.portNameProblem(text) {
            let pieces = text.split(separator: "-", omittingEmptySubsequences: false)
            let hint = pieces.count == 2 && pieces.allSatisfy(isDigits) ? " (write a range as \(pieces[0]):\(pieces[1]))" : ""
            throw node.error("\(quoted(text)) is not a valid port name: \(problem)\(hint)")
        }
        return .named(text)
    }

    // MARK: Shared

    /// A selector field; nil when blank (Calico reads an empty selector as not given).
    private static func selectorExpression(_ node: DocumentNode) throws -> SelectorExpression? {
        let text = try node.text()
        if isBlank(text) { return nil }
        do {
            return try SelectorParser.parse(text)
        } catch let error as SelectorSyntaxError {
            throw node.error("\(quoted(text)) is not a valid selector: \(error)")
        }
    }

    private static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy(\.properties.isWhitespace)
    }
}
