import Foundation
import NetworkAddress
import PolicyModel

/// The synthetic state as files the real agent loads, the way an operator keeps them: one
/// namespaces file, one file per pod under pods/, one file per policy under policies/. Every
/// object is written from the same generator functions `compile` uses, so the agent and the
/// benchmark compile the same state.
extension SyntheticState {
    static func quote(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }

    static func write(_ text: String, to path: String) throws {
        // Written beside the target and renamed over it, so the agent never reads half a file.
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".tmp")
        try text.write(to: temporary, atomically: false, encoding: .utf8)
        if rename(temporary.path, url.path) != 0 { throw CocoaError(.fileWriteUnknown) }
    }

    func namespacesYAML() -> String {
        namespaces().keys.sorted().map { name -> String in
            var labels = namespaces()[name]!.labels
            labels["kubernetes.io/metadata.name"] = name    // as the API server sets it
            return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \(name)\n  labels:\n"
                + labels.sorted { $0.key < $1.key }.map { "    \($0.key): \(Self.quote($0.value))\n" }.joined()
        }.joined(separator: "---\n")
    }

    /// A pod as `kubectl get pod -o yaml` prints it (trimmed to what matters).
    static func podYAML(_ endpoint: Endpoint) -> String {
        var lines = ["apiVersion: v1", "kind: Pod", "metadata:", "  name: \(endpoint.name)", "  namespace: \(endpoint.namespace)"]
        if let uid = endpoint.uid { lines.append("  uid: \(uid)") }
        lines += ["  labels:"] + endpoint.labels.sorted { $0.key < $1.key }.map { "    \($0.key): \(quote($0.value))" }
        lines += ["  annotations:", "    palisade.dev/interface: \(endpoint.interface ?? "")"]
        lines += ["spec:", "  containers:", "  - name: app", "    image: registry.example/app:1", "    ports:"]
        lines += endpoint.namedPorts.map { "    - {name: \($0.name), containerPort: \($0.port), protocol: \($0.proto == .udp ? "UDP" : "TCP")}" }
        lines += ["status:", "  phase: Running", "  podIP: \(quote("\(endpoint.addresses[0])"))", "  podIPs:"]
        lines += endpoint.addresses.map { "  - ip: \(quote("\($0)"))" }
        return lines.joined(separator: "\n") + "\n"
    }

    static func podFileName(_ endpoint: Endpoint) -> String { "\(endpoint.namespace)_\(endpoint.name).yaml" }

    /// Mirrors `kubernetesPolicy(index)`, as YAML; `portShift` changes the first port (a "policy change").
    func kubernetesPolicyYAML(_ index: Int, portShift: Int = 0) -> String {
        let policy = kubernetesPolicy(index)
        let peerApp = Self.apps[(index + 3) % Self.apps.count]
        let peer: String
        switch index % 4 {
        case 0: peer = "    - podSelector: {matchLabels: {app: \(peerApp)}}\n"
        case 1: peer = "    - namespaceSelector: {matchLabels: {team: team\(index % 10)}}\n"
        case 2: peer = "    - podSelector: {matchExpressions: [{key: tier, operator: In, values: [frontend, backend]}]}\n"
                     + "      namespaceSelector: {matchLabels: {env: prod}}\n"
        default: peer = "    - ipBlock: {cidr: 198.51.100.0/24, except: [198.51.100.\(index % 128)/32]}\n"
        }
        let app = Self.apps[index % Self.apps.count]
        let first = 8000 + (index + portShift) % 100
        var text = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: \(policy.name)
          namespace: \(policy.namespace)
        spec:
          podSelector: {matchLabels: {app: \(app)}}
          policyTypes: [\(index % 5 == 0 ? "Ingress, Egress" : "Ingress")]
          ingress:
          - from:

        """
        text += peer
        text += "    ports:\n    - {protocol: TCP, port: \(first)}\n    - {protocol: TCP, port: http}\n    - {protocol: UDP, port: 53}\n"
        if index % 5 == 0 {
            text += "  egress:\n  - to:\n" + peer.replacingOccurrences(of: "    - ", with: "    - ") + "    ports:\n    - {protocol: TCP, port: \(first)}\n"
        }
        return text
    }

    /// Mirrors `calicoPolicy(index)`.
    func calicoPolicyYAML(_ index: Int, portShift: Int = 0) -> String {
        let policy = calicoPolicy(index)
        let app = Self.apps[index % Self.apps.count]
        return """
        apiVersion: projectcalico.org/v3
        kind: NetworkPolicy
        metadata:
          name: \(policy.name)
          namespace: \(policy.namespace ?? "")
        spec:
          order: \(100 + index % 900)
          selector: app == '\(app)'
          types: [Ingress]
          ingress:
          - action: Deny
            protocol: TCP
            source:
              nets: [203.0.113.0/24]
          - action: Allow
            protocol: TCP
            source:
              selector: tier in {'frontend', 'backend'}
              namespaceSelector: env == 'prod'
            destination:
              ports: ["\(8000 + portShift % 100):8100", metrics]

        """
    }

    func policyYAML(_ index: Int, portShift: Int = 0) -> String {
        index % 4 == 3 ? calicoPolicyYAML(index, portShift: portShift) : kubernetesPolicyYAML(index, portShift: portShift)
    }

    func policyFileName(_ index: Int) -> String {
        index % 4 == 3 ? "\(calicoPolicy(index).namespace ?? "")_\(calicoPolicy(index).name).yaml"
                       : "\(kubernetesPolicy(index).namespace)_\(kubernetesPolicy(index).name).yaml"
    }

    func writeFiles(to directory: String) throws {
        let manager = FileManager.default
        for sub in ["", "/pods", "/policies"] {
            try manager.createDirectory(atPath: directory + sub, withIntermediateDirectories: true)
        }
        try Self.write(namespacesYAML(), to: directory + "/namespaces.yaml")
        for index in 0..<endpoints {
            let endpoint = endpoint(index)
            try Self.write(Self.podYAML(endpoint), to: directory + "/pods/" + Self.podFileName(endpoint))
        }
        for index in 0..<policies {
            try Self.write(policyYAML(index), to: directory + "/policies/" + policyFileName(index))
        }
    }
}
