// Workloads: a `v1 Pod` (as kubectl prints it) and a `palisade.dev/v1 Endpoint` (a workload that is
// not a pod). Both become an Endpoint with addresses, an interface and named ports.

enum WorkloadDecoding {
    static let interfaceAnnotation = "palisade.dev/interface"

    static func decodePod(_ object: DocumentNode) throws -> StateObject {
        let metadata = try ObjectMetadata(of: object, nameRule: .dnsSubdomain, namespaced: true)
        var interface: String?
        if let annotation = try metadata.annotation(interfaceAnnotation) {
            interface = try interfaceName(annotation.text, annotation.node)
        }

        let spec = try object.field("spec")
        let nodeName = try spec?.field("nodeName")?.text()
        let hostNetwork = try spec?.field("hostNetwork")?.boolean() ?? false
        var ports = PortNames()
        for container in try spec?.field("containers")?.list() ?? [] {
            try ports.add(container: container)
        }
        // Sidecars (init containers that keep running) serve traffic and may name ports too.
        for container in try spec?.field("initContainers")?.list() ?? [] {
            try container.requireMapping()
            if try container.field("restartPolicy")?.text() == "Always" { try ports.add(container: container) }
        }

        let status = try object.field("status")
        let phase = try status?.field("phase")?.text()
        var addresses: [IPAddress] = []
        for item in try status?.field("podIPs")?.list() ?? [] {
            try item.requireMapping()
            try append(address(item.requiredField("ip")), to: &addresses)
        }
        if addresses.isEmpty, let podIP = try status?.field("podIP"), try podIP.text() != "" {
            try append(address(podIP), to: &addresses)
        }

        // A hostNetwork pod shares the node's addresses: NetworkPolicy does not apply to it.
        if hostNetwork {
            return .skippedPod(SkippedPod(namespace: metadata.namespace, name: metadata.name, reason: .hostNetwork,
                                          location: object.location))
        }
        if phase == "Succeeded" || phase == "Failed" {
            return .skippedPod(SkippedPod(namespace: metadata.namespace, name: metadata.name, reason: .finished,
                                          location: object.location))
        }
        if addresses.isEmpty {
            return .skippedPod(SkippedPod(namespace: metadata.namespace, name: metadata.name, reason: .noAddress,
                                          location: object.location))
        }
        var endpoint = Endpoint(kind: .pod, namespace: metadata.namespace, name: metadata.name,
                                labels: metadata.labels, addresses: addresses, interface: interface,
                                nodeName: nodeName, namedPorts: ports.named, location: object.location)
        endpoint.uid = metadata.uid
        return .endpoint(endpoint)
    }

    static func decodeEndpoint(_ object: DocumentNode) throws -> StateObject {
        let metadata = try ObjectMetadata(of: object, nameRule: .dnsSubdomain, namespaced: true)
        let spec = try object.requiredField("spec")
        try spec.requireMapping()

        let addressList = try spec.requiredField("addresses")
        var addresses: [IPAddress] = []
        for item in try addressList.list() {
            try append(address(item), to: &addresses)
        }
        if addresses.isEmpty { throw addressList.error("must list at least one address") }

        let interfaceNode = try spec.requiredField("interface")
        let interface = try interfaceName(interfaceNode.text(), interfaceNode)
        let nodeName = try spec.field("nodeName")?.text()
        var ports = PortNames()
        if let list = try spec.field("ports") { try ports.add(ports: list) }

        return .endpoint(Endpoint(kind: .endpoint, namespace: metadata.namespace, name: metadata.name,
                                  labels: metadata.labels, addresses: addresses, interface: interface,
                                  nodeName: nodeName, namedPorts: ports.named, location: object.location))
    }

    private static func interfaceName(_ text: String, _ node: DocumentNode) throws -> String {
        if let problem = NameRules.interfaceNameProblem(text) {
            throw node.error("\(quoted(text)) is not a valid interface name: \(problem)")
        }
        return text
    }

    private static func address(_ node: DocumentNode) throws -> IPAddress {
        let text = try node.text()
        guard let address = IPAddress(text) else { throw node.error("\(quoted(text)) is not a valid IP address") }
        return address
    }

    private static func append(_ address: IPAddress, to addresses: inout [IPAddress]) {
        if !addresses.contains(address) { addresses.append(address) }
    }
}

/// Container ports of one workload, checked as Kubernetes does; port names are unique per workload.
struct PortNames {
    private(set) var named: [NamedPort] = []
    private var firstUse: [String: String] = [:]

    mutating func add(container: DocumentNode) throws {
        try container.requireMapping()
        if let list = try container.field("ports") { try add(ports: list) }
    }

    /// A list of `{name, containerPort, protocol}`.
    mutating func add(ports list: DocumentNode) throws {
        for port in try list.list() {
            try port.requireMapping()
            let numberNode = try port.requiredField("containerPort")
            let number = try numberNode.integer()
            guard (1...65535).contains(number) else { throw numberNode.error("\(number) is not between 1 and 65535") }
            let proto = try PortDecoding.portProtocol(port.field("protocol"))
            guard let nameNode = try port.field("name") else { continue }
            let name = try nameNode.text()
            if let problem = NameRules.portNameProblem(name) {
                throw nameNode.error("\(quoted(name)) is not a valid port name: \(problem)")
            }
            if let first = firstUse[name] {
                throw nameNode.error("\(quoted(name)) is already the name of \(first)")
            }
            firstUse[name] = port.path
            named.append(NamedPort(name: name, port: UInt16(number), proto: proto))
        }
    }
}

enum PortDecoding {
    /// `protocol`, TCP when absent.
    static func portProtocol(_ node: DocumentNode?) throws -> PortProtocol {
        guard let node else { return .tcp }
        let text = try node.text()
        guard let proto = PortProtocol(rawValue: text) else {
            throw node.error("\(quoted(text)) is not one of TCP, UDP, SCTP")
        }
        return proto
    }
}
