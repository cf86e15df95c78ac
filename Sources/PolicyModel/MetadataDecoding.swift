// `metadata` and label maps, shared by every kind, and the `v1 Namespace` object that is little more.

/// The parts of `metadata` Palisade reads.
struct ObjectMetadata {
    enum NameRule { case dnsLabel, dnsSubdomain }

    var name: String
    /// The object's namespace, "default" when not given; unused for cluster-scoped kinds.
    var namespace: String
    var labels: [String: String]
    /// Annotation values by key, kept as nodes so a bad value can be blamed on its line.
    var annotations: [String: DocumentNode]
    /// `metadata.uid`: tells one instance of a named pod from a later one.
    var uid: String?

    init(of object: DocumentNode, nameRule: NameRule, namespaced: Bool) throws {
        guard let metadata = try object.field("metadata") else { throw object.missing("metadata.name") }
        guard let nameNode = try metadata.field("name") else { throw metadata.missing("name") }
        name = try nameNode.text()
        let problem = nameRule == .dnsLabel ? NameRules.dnsLabelProblem(name) : NameRules.dnsSubdomainProblem(name)
        if let problem { throw nameNode.error("\(quoted(name)) is not a valid name: \(problem)") }

        namespace = "default"
        if namespaced, let namespaceNode = try metadata.field("namespace") {
            namespace = try namespaceNode.text()
            if let problem = NameRules.dnsLabelProblem(namespace) {
                throw namespaceNode.error("\(quoted(namespace)) is not a valid namespace name: \(problem)")
            }
        }

        labels = try metadata.field("labels").map(LabelDecoding.labels) ?? [:]

        uid = try metadata.field("uid").flatMap { $0.isNull ? nil : try $0.text() }
        annotations = [:]
        for entry in try metadata.field("annotations")?.mapEntries() ?? [] {
            annotations[entry.key] = entry.value
        }
    }

    /// The text of an annotation, or nil when absent.
    func annotation(_ key: String) throws -> (text: String, node: DocumentNode)? {
        guard let node = annotations[key], !node.isNull else { return nil }
        return (try node.text(), node)
    }
}

enum LabelDecoding {
    /// A `labels` or `matchLabels` map. Scalar values are taken as written, so `version: 2` is "2".
    static func labels(_ map: DocumentNode) throws -> [String: String] {
        var labels: [String: String] = [:]
        for entry in try map.mapEntries() {
            if let problem = NameRules.labelKeyProblem(entry.key) {
                throw DocumentError(location: SourceLocation(file: map.file, line: entry.keyLine),
                                    message: "\(map.path) key \(quoted(entry.key)) is not a valid label key: \(problem)")
            }
            let value = try entry.value.labelText()
            if let problem = NameRules.labelValueProblem(value) {
                throw entry.value.error("\(quoted(value)) is not a valid label value: \(problem)")
            }
            labels[entry.key] = value
        }
        return labels
    }
}

enum NamespaceDecoding {
    static let defaultPolicyAnnotation = "palisade.dev/default-policy"

    static func decode(_ object: DocumentNode) throws -> Namespace {
        let metadata = try ObjectMetadata(of: object, nameRule: .dnsLabel, namespaced: false)
        var defaultPolicy: DefaultPolicy?
        if let annotation = try metadata.annotation(defaultPolicyAnnotation) {
            guard let policy = DefaultPolicy(rawValue: annotation.text) else {
                throw annotation.node.error("\(quoted(annotation.text)) is not one of deny, allow")
            }
            defaultPolicy = policy
        }
        return Namespace(name: metadata.name, labels: metadata.labels, defaultPolicy: defaultPolicy,
                         location: object.location)
    }
}
