// Kubernetes label selectors: `matchLabels` and `matchExpressions`, validated as the API server does.
// An unknown key is an error: `matchLabel:` read as absent would make the selector select everything.

enum LabelSelectorDecoding {
    static func decode(_ node: DocumentNode) throws -> LabelSelector {
        try node.requireMapping()
        try node.checkFields(valid: ["matchLabels", "matchExpressions"], of: "a label selector")
        let matchLabels = try node.field("matchLabels").map(LabelDecoding.labels) ?? [:]
        let expressions = try node.field("matchExpressions")?.list().map(requirement) ?? []
        return LabelSelector(matchLabels: matchLabels, matchExpressions: expressions)
    }

    static func requirement(_ node: DocumentNode) throws -> LabelSelectorRequirement {
        try node.requireMapping()
        try node.checkFields(valid: ["key", "operator", "values"], of: "a label selector requirement")
        let keyNode = try node.requiredField("key")
        let key = try keyNode.text()
        if let problem = NameRules.labelKeyProblem(key) {
            throw keyNode.error("\(quoted(key)) is not a valid label key: \(problem)")
        }

        let operatorNode = try node.requiredField("operator")
        let operatorText = try operatorNode.text()
        guard let op = LabelSelectorRequirement.Operator(rawValue: operatorText) else {
            let known = LabelSelectorRequirement.Operator.allCases.map(\.rawValue).joined(separator: ", ")
            throw operatorNode.error("\(quoted(operatorText)) is not one of \(known)")
        }

        let valuesNode = try node.field("values")
        var values: [String] = []
        for item in try valuesNode?.list() ?? [] {
            let value = try item.labelText()
            if let problem = NameRules.labelValueProblem(value) {
                throw item.error("\(quoted(value)) is not a valid label value: \(problem)")
            }
            values.append(value)
        }
        // When values are missing altogether, the operator is what asks for them: blame its line.
        let blamed = valuesNode ?? operatorNode
        switch op {
        case .in, .notIn:
            if values.isEmpty {
                throw DocumentError(location: blamed.location,
                                    message: "\(node.childPath("values")) must not be empty when operator is \(op.rawValue)")
            }
        case .exists, .doesNotExist:
            if !values.isEmpty {
                throw DocumentError(location: blamed.location,
                                    message: "\(node.childPath("values")) must be empty when operator is \(op.rawValue)")
            }
        }
        return LabelSelectorRequirement(key: key, op: op, values: values)
    }
}
