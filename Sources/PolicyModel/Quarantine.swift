// A workload under quarantine: it sends and receives nothing until released.
//
//     apiVersion: palisade.dev/v1
//     kind: Quarantine
//     metadata: {name: web-1, namespace: shop}      # the pod's name and namespace
//     spec:
//       reason: beaconing to known C2              # required
//       podUID: 7c0e5f7a-...                       # optional: only this instance of the pod
//       futurePods: false                           # also a pod that appears later with this name
//       requestedBy: alice                          # optional, informational
//       requestedAt: "2026-11-29T10:00:00Z"         # optional, informational
//
// Which pods it covers: the pod of that namespace and name. With `podUID`, only the instance with
// that UID (a pod recreated under the same name is a new workload and is not cut off), unless
// `futurePods: true`. Without `podUID`, any pod of that name, now or later.

public struct Quarantine: Hashable, Sendable {
    public var namespace: String
    public var name: String
    public var reason: String
    public var podUID: String?
    public var futurePods: Bool
    public var requestedBy: String?
    public var requestedAt: String?
    public var location: SourceLocation?

    public init(namespace: String, name: String, reason: String, podUID: String? = nil, futurePods: Bool = false,
                requestedBy: String? = nil, requestedAt: String? = nil, location: SourceLocation? = nil) {
        self.namespace = namespace; self.name = name; self.reason = reason; self.podUID = podUID
        self.futurePods = futurePods; self.requestedBy = requestedBy; self.requestedAt = requestedAt
        self.location = location
    }

    /// `namespace/name` of the pod.
    public var podID: String { "\(namespace)/\(name)" }

    public func covers(_ endpoint: Endpoint) -> Bool {
        guard endpoint.namespace == namespace, endpoint.name == name else { return false }
        guard let podUID, !futurePods, let uid = endpoint.uid else { return true }
        return uid == podUID
    }

    /// The document agentctl writes for a quarantine it was asked for.
    public var yaml: String {
        func quote(_ text: String) -> String {
            "\"" + text.replacingEvery("\\", with: "\\\\").replacingEvery("\"", with: "\\\"").replacingEvery("\n", with: "\\n") + "\""
        }
        var lines = [
            "apiVersion: palisade.dev/v1",
            "kind: Quarantine",
            "metadata:",
            "  name: \(name)",
            "  namespace: \(namespace)",
            "spec:",
            "  reason: \(quote(reason))",
        ]
        if let podUID { lines.append("  podUID: \(quote(podUID))") }
        lines.append("  futurePods: \(futurePods)")
        if let requestedBy { lines.append("  requestedBy: \(quote(requestedBy))") }
        if let requestedAt { lines.append("  requestedAt: \(quote(requestedAt))") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    func replacingEvery(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}

enum QuarantineDecoding {
    static func decode(_ object: DocumentNode) throws -> Quarantine {
        let metadata = try ObjectMetadata(of: object, nameRule: .dnsSubdomain, namespaced: true)
        let spec = try object.requiredField("spec")
        try spec.requireMapping()
        let reasonNode = try spec.requiredField("reason")
        let reason = try reasonNode.text()
        if reason.trimmingSpaces.isEmpty { throw reasonNode.error("reason must not be empty") }
        return Quarantine(
            namespace: metadata.namespace, name: metadata.name, reason: reason,
            podUID: try spec.field("podUID").flatMap { $0.isNull ? nil : try $0.text() },
            futurePods: try spec.field("futurePods")?.boolean() ?? false,
            requestedBy: try spec.field("requestedBy").flatMap { $0.isNull ? nil : try $0.text() },
            requestedAt: try spec.field("requestedAt").flatMap { $0.isNull ? nil : try $0.text() },
            location: object.location)
    }
}

extension String {
    var trimmingSpaces: Substring {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}
