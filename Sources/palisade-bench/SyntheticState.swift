import NetworkAddress
import PolicyModel

/// A realistic synthetic node: endpoints spread over namespaces, with deployment-like label sets,
/// and a mix of Kubernetes and Calico policies with pod, namespace and ipBlock peers and port lists.
/// Deterministic for a given size.
struct SyntheticState {
    let endpoints: Int
    let policies: Int
    var namespaceCount: Int { max(1, endpoints / 200) }
    static let apps = ["web", "api", "db", "cache", "queue", "worker", "auth", "search", "billing", "frontend"]
    static let tiers = ["frontend", "backend", "data"]

    func namespaceName(_ index: Int) -> String { "ns\(index)" }

    func address(_ index: Int) -> IPAddress {
        // 198.18.0.0/15 holds 131,072 addresses; skip .0 of each /24.
        let value = UInt32(0xC612_0000) + UInt32(index / 255) * 256 + UInt32(index % 255) + 1
        return IPAddress(bytes: [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)])!
    }

    func address6(_ index: Int) -> IPAddress {
        var bytes: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12)
        bytes[12] = UInt8((index >> 24) & 0xff); bytes[13] = UInt8((index >> 16) & 0xff)
        bytes[14] = UInt8((index >> 8) & 0xff); bytes[15] = UInt8(index & 0xff)
        return IPAddress(bytes: bytes)!
    }

    func endpoint(_ index: Int) -> Endpoint {
        let namespace = namespaceName(index % namespaceCount)
        let app = Self.apps[(index / namespaceCount) % Self.apps.count]
        var endpoint = Endpoint(namespace: namespace, name: "\(app)-\(index)",
                                labels: ["app": app, "tier": Self.tiers[index % 3], "pod-template-hash": "h\(index % 7)",
                                         "version": "v\(index % 4)"],
                                addresses: [address(index), address6(index)],
                                interface: "pl\(String(index, radix: 16))",
                                namedPorts: [NamedPort(name: "http", port: 8080, proto: .tcp), NamedPort(name: "metrics", port: 9090, proto: .tcp)])
        endpoint.uid = "uid-\(index)"
        return endpoint
    }

    func namespaces() -> [String: Namespace] {
        var result: [String: Namespace] = [:]
        for index in 0..<namespaceCount {
            let name = namespaceName(index)
            result[name] = Namespace(name: name, labels: ["team": "team\(index % 10)", "env": index % 2 == 0 ? "prod" : "staging"])
        }
        return result
    }

    /// `portShift` changes the first port (a "policy change"), as `kubernetesPolicyYAML` does.
    func kubernetesPolicy(_ index: Int, portShift: Int = 0) -> NetworkPolicy {
        let namespace = namespaceName(index % namespaceCount)
        let app = Self.apps[index % Self.apps.count]
        let peerApp = Self.apps[(index + 3) % Self.apps.count]
        let peers: [PolicyPeer]
        switch index % 4 {
        case 0: peers = [.selector(pods: LabelSelector(matchLabels: ["app": peerApp]), namespaces: nil)]
        case 1: peers = [.selector(pods: nil, namespaces: LabelSelector(matchLabels: ["team": "team\(index % 10)"]))]
        case 2: peers = [.selector(pods: LabelSelector(matchExpressions: [LabelSelectorRequirement(key: "tier", op: .in, values: ["frontend", "backend"])]),
                                   namespaces: LabelSelector(matchLabels: ["env": "prod"]))]
        default: peers = [.ipBlock(cidr: CIDR("198.51.100.0/24")!, except: [CIDR("198.51.100.\(index % 128)/32")!])]
        }
        let ports = [PolicyPort(proto: .tcp, port: .number(UInt16(8000 + (index + portShift) % 100))),
                     PolicyPort(proto: .tcp, port: .named("http")),
                     PolicyPort(proto: .udp, port: .number(53))]
        return NetworkPolicy(namespace: namespace, name: "allow-\(app)-\(index)",
                             podSelector: LabelSelector(matchLabels: ["app": app]),
                             policyTypes: index % 5 == 0 ? [.ingress, .egress] : [.ingress],
                             ingress: [PolicyRule(peers: peers, ports: ports)],
                             egress: index % 5 == 0 ? [PolicyRule(peers: peers, ports: [ports[0]])] : [])
    }

    func calicoPolicy(_ index: Int) -> CalicoPolicy {
        let namespace = namespaceName(index % namespaceCount)
        let app = Self.apps[index % Self.apps.count]
        return CalicoPolicy(
            namespace: namespace, name: "calico-\(app)-\(index)", order: Double(100 + index % 900),
            selector: .equals("app", app),
            ingress: [
                CalicoRule(action: .deny, proto: .tcp, source: CalicoEntityRule(nets: [CIDR("203.0.113.0/24")!])),
                CalicoRule(action: .allow, proto: .tcp,
                           source: CalicoEntityRule(selector: .inSet("tier", ["frontend", "backend"]), namespaceSelector: .equals("env", "prod")),
                           destination: CalicoEntityRule(ports: [.range(8000...8100), .named("metrics")])),
            ])
    }

    func build() -> DesiredState {
        var k8s: [NetworkPolicy] = []
        var calico: [CalicoPolicy] = []
        for index in 0..<policies {
            if index % 4 == 3 { calico.append(calicoPolicy(index)) } else { k8s.append(kubernetesPolicy(index)) }
        }
        return DesiredState(namespaces: namespaces(), endpoints: (0..<endpoints).map(endpoint),
                            policies: k8s.sorted { $0.id < $1.id }, calicoPolicies: calico.sorted { $0.id < $1.id })
    }
}
