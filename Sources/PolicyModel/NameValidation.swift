// The naming rules Kubernetes (and the Linux kernel, for interfaces) apply. Each check returns nil
// for a good name, or the rule that was broken, phrased to finish "… is not a valid X: ".

enum NameRules {
    private static func isLowerAlnum(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("0"..."9").contains(c)
    }

    private static func isAlnum(_ c: Unicode.Scalar) -> Bool {
        isLowerAlnum(c) || ("A"..."Z").contains(c)
    }

    /// RFC 1123 label, as for namespace names: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
    static func dnsLabelProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.unicodeScalars.count > 63 { return "must be at most 63 characters" }
        let scalars = Array(name.unicodeScalars)
        guard scalars.allSatisfy({ isLowerAlnum($0) || $0 == "-" }),
              let first = scalars.first, let last = scalars.last, isLowerAlnum(first), isLowerAlnum(last) else {
            return "must consist of lowercase letters, digits and '-', and start and end with a letter or digit"
        }
        return nil
    }

    /// RFC 1123 subdomain, as for most object names: dot-separated labels, at most 253 characters.
    static func dnsSubdomainProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.unicodeScalars.count > 253 { return "must be at most 253 characters" }
        let rule = "must consist of lowercase letters, digits, '-' and '.', and each dot-separated part "
            + "must start and end with a letter or digit"
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            let scalars = Array(part.unicodeScalars)
            guard scalars.allSatisfy({ isLowerAlnum($0) || $0 == "-" }),
                  let first = scalars.first, let last = scalars.last, isLowerAlnum(first), isLowerAlnum(last) else {
                return rule
            }
        }
        return nil
    }

    /// The name part of a label key, and a label value: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
    private static func labelTextProblem(_ text: String) -> String? {
        if text.unicodeScalars.count > 63 { return "must be at most 63 characters" }
        let scalars = Array(text.unicodeScalars)
        guard scalars.allSatisfy({ isAlnum($0) || $0 == "-" || $0 == "_" || $0 == "." }),
              let first = scalars.first, let last = scalars.last, isAlnum(first), isAlnum(last) else {
            return "must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit"
        }
        return nil
    }

    /// A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
    static func labelKeyProblem(_ key: String) -> String? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return "may contain at most one '/'" }
        if parts.count == 2, let problem = dnsSubdomainProblem(String(parts[0])) {
            return "the prefix before '/' " + problem
        }
        let name = String(parts[parts.count - 1])
        if name.isEmpty { return "the name must not be empty" }
        return labelTextProblem(name).map { "the name " + $0 }
    }

    /// A label value: empty, or a name of at most 63 characters.
    static func labelValueProblem(_ value: String) -> String? {
        value.isEmpty ? nil : labelTextProblem(value)
    }

    /// IANA_SVC_NAME (RFC 6335), as for named ports.
    static func portNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.unicodeScalars.count > 15 { return "must be at most 15 characters" }
        let scalars = Array(name.unicodeScalars)
        guard scalars.allSatisfy({ isLowerAlnum($0) || $0 == "-" }) else {
            return "must consist of lowercase letters, digits and '-'"
        }
        guard scalars.contains(where: { ("a"..."z").contains($0) }) else { return "must contain at least one letter" }
        if name.contains("--") { return "must not contain '--'" }
        if name.hasPrefix("-") || name.hasSuffix("-") { return "must not start or end with '-'" }
        return nil
    }

    /// A Linux interface name as the kernel's dev_valid_name accepts it.
    static func interfaceNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > 15 { return "must be at most 15 bytes" }
        if name == "." || name == ".." { return "must not be '.' or '..'" }
        if name.contains("/") { return "must not contain '/'" }
        if name.contains(":") { return "must not contain ':'" }
        if name.unicodeScalars.contains(where: { $0.properties.isWhitespace }) { return "must not contain whitespace" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return "must not contain control characters"
        }
        return nil
    }
}
