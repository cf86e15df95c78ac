import Yams

/// The roles file: which Unix users and groups may use which verbs on the control socket.
///
///     grants:
///     - users: [alice]          # user names or numeric uids
///       groups: [secops]        # group names or numeric gids
///       verbs: [read, quarantine, release]   # read, sync, quarantine, release
///
/// Root (uid 0) has every verb; anyone else has the union of the grants that name their user,
/// or any group they are in (primary or supplementary). No grant, no access.
///
/// Optionally, who may change the policies of a namespace (SOC 2 CC8.1, "authorized changes"):
///
///     namespaceOwners:
///       shop: {users: [alice], groups: [shop-admins]}
///       "*": {groups: [platform]}     # cluster-wide policies (GlobalNetworkPolicy)
///
/// A policy file for a namespace listed there is enforced only if the file's owner is one of
/// them (or root); otherwise the file is rejected as unauthorised, and its last good content stays.
/// Namespaces not listed are not restricted.
public struct Roles: Hashable, Sendable {
    public struct Grant: Hashable, Sendable {
        public var users: [String]
        public var groups: [String]
        public var verbs: Set<Verb>
        /// Where the grant starts in the roles file.
        public var line: Int

        public init(users: [String] = [], groups: [String] = [], verbs: Set<Verb>, line: Int = 1) {
            self.users = users; self.groups = groups; self.verbs = verbs; self.line = line
        }

        func applies(to account: Account) -> Bool {
            users.contains { $0 == account.userName || UInt32($0) == account.uid }
                || groups.contains { account.groupNames.contains($0) || UInt32($0).map(account.groupIDs.contains) == true }
        }
    }

    public var grants: [Grant]
    /// Per namespace ("*": cluster-wide objects), who may change its policies.
    public var namespaceOwners: [String: Grant] = [:]

    public init(grants: [Grant] = []) { self.grants = grants }

    /// Nil if `account` may change policies of `namespace` (nil: cluster-wide), else why not.
    public func policyChangeRefusal(namespace: String?, by account: Account) -> String? {
        if account.uid == 0 { return nil }
        let scope = namespace ?? "*"
        guard let owners = namespaceOwners[scope] else { return nil }
        if owners.applies(to: account) { return nil }
        let who = account.userName.map { "\($0) (uid \(account.uid))" } ?? "uid \(account.uid)"
        let what = namespace.map { "namespace \($0)" } ?? "cluster-wide policies"
        return "unauthorised: the file's owner \(who) may not change the policies of \(what) (namespaceOwners in the roles file)"
    }

    /// Root only.
    public static let none = Roles()

    public func verbs(for account: Account) -> Set<Verb> {
        if account.uid == 0 { return Set(Verb.allCases) }
        return grants.filter { $0.applies(to: account) }.reduce(into: Set<Verb>()) { $0.formUnion($1.verbs) }
    }

    public enum Decision: Hashable, Sendable {
        case allowed
        /// The message for the peer, the log and the event record.
        case refused(String)
    }

    /// May `account` use `verb`? `rolesPath` goes into the refusal, to say where grants are made.
    public func decide(_ verb: Verb, for account: Account, rolesPath: String) -> Decision {
        let granted = verbs(for: account)
        if granted.contains(verb) { return .allowed }
        let who = account.userName.map { "user \($0) (uid \(account.uid))" } ?? "uid \(account.uid) (no passwd entry)"
        let list = Verb.allCases.filter(granted.contains).map(\.rawValue).joined(separator: ", ")
        return .refused("permission denied: \(who) may not \(verb.rawValue) (grants: \(list.isEmpty ? "none" : list)); "
                        + "an administrator can grant it in \(rolesPath)")
    }

    // MARK: - Parsing

    public static func parse(_ text: String, path: String) throws -> Roles {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw ConfigError(syntaxError(error, path: path))
        }
        guard let root else { return .none }
        if case .scalar(let scalar) = root, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" {
            return .none
        }
        guard let mapping = root.mapping else {
            throw ConfigError("\(path):\(line(root)): the roles file must be a mapping with a grants list")
        }
        var roles = Roles()
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            if key == "namespaceOwners" {
                if isNull(value) { continue }
                guard let owners = value.mapping else {
                    throw ConfigError("\(path):\(line(value)): namespaceOwners must map namespaces to {users, groups}")
                }
                for (namespaceNode, ownerNode) in owners {
                    let namespace = namespaceNode.string ?? ""
                    guard let entry = ownerNode.mapping else {
                        throw ConfigError("\(path):\(line(ownerNode)): namespaceOwners.\(namespace) must be a mapping with users and/or groups")
                    }
                    var grant = Grant(verbs: [], line: line(ownerNode))
                    for (fieldNode, field) in entry {
                        switch fieldNode.string ?? "" {
                        case "users": grant.users = try names(field, field: "users", what: "namespaceOwners.\(namespace).users", path: path)
                        case "groups": grant.groups = try names(field, field: "groups", what: "namespaceOwners.\(namespace).groups", path: path)
                        default:
                            throw ConfigError("\(path):\(line(fieldNode)): unknown key \"\(fieldNode.string ?? "")\" in namespaceOwners.\(namespace) (users, groups)")
                        }
                    }
                    roles.namespaceOwners[namespace] = grant
                }
                continue
            }
            guard key == "grants" else {
                throw ConfigError("\(path):\(line(keyNode)): unknown key \"\(key)\" (the roles file has grants and namespaceOwners)")
            }
            if isNull(value) { continue }
            guard let items = value.sequence else {
                throw ConfigError("\(path):\(line(value)): grants must be a list")
            }
            for (index, item) in items.enumerated() {
                roles.grants.append(try parseGrant(item, name: "grants[\(index)]", path: path))
            }
        }
        return roles
    }

    private static func parseGrant(_ node: Node, name: String, path: String) throws -> Grant {
        guard let mapping = node.mapping else {
            throw ConfigError("\(path):\(line(node)): \(name) must be a mapping with users, groups and verbs")
        }
        var grant = Grant(verbs: [], line: line(node))
        var sawVerbs = false
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            let field = "\(name).\(key)"
            switch key {
            case "users":
                grant.users = try names(value, field: field, what: "user names or uids", path: path)
            case "groups":
                grant.groups = try names(value, field: field, what: "group names or gids", path: path)
            case "verbs":
                sawVerbs = true
                let allowed = Verb.allCases.map(\.rawValue).joined(separator: ", ")
                for (index, text) in try names(value, field: field, what: allowed, path: path).enumerated() {
                    guard let verb = Verb(rawValue: text) else {
                        let itemLine = value.sequence.map { line($0[index]) } ?? line(value)
                        throw ConfigError("\(path):\(itemLine): \(field)[\(index)] \"\(text)\" is not one of \(allowed)")
                    }
                    grant.verbs.insert(verb)
                }
            default:
                throw ConfigError("\(path):\(line(keyNode)): \(name): unknown key \"\(key)\" (a grant has users, groups and verbs)")
            }
        }
        if grant.users.isEmpty && grant.groups.isEmpty {
            throw ConfigError("\(path):\(grant.line): \(name) names no users and no groups")
        }
        if !sawVerbs || grant.verbs.isEmpty {
            throw ConfigError("\(path):\(grant.line): \(name) grants no verbs: give verbs, some of "
                              + Verb.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return grant
    }

    /// A list of non-empty scalars.
    private static func names(_ node: Node, field: String, what: String, path: String) throws -> [String] {
        guard let items = node.sequence else {
            throw ConfigError("\(path):\(line(node)): \(field) must be a list of \(what), like [\(example(field))]")
        }
        return try items.enumerated().map { index, item in
            guard let text = item.scalar?.string, !text.isEmpty else {
                throw ConfigError("\(path):\(line(item)): \(field)[\(index)] must be one of \(what)")
            }
            return text
        }
    }

    private static func example(_ field: String) -> String {
        if field.hasSuffix(".users") { return "alice" }
        if field.hasSuffix(".groups") { return "secops" }
        return "read"
    }

    private static func line(_ node: Node) -> Int { node.mark?.line ?? 1 }

    private static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private static func syntaxError(_ error: Error, path: String) -> String {
        func at(_ line: Int, _ problem: String, _ context: YamlError.Context?) -> String {
            let detail = context.map { "\(problem) (\($0.text) at line \($0.mark.line))" } ?? problem
            return "\(path):\(max(1, line)): not valid YAML: \(detail)"
        }
        switch error as? YamlError {
        case let .scanner(context, problem, mark, _)?, let .parser(context, problem, mark, _)?,
             let .composer(context, problem, mark, _)?:
            return at(mark.line, problem, context)
        default:
            let firstLine = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            return "\(path):1: not valid YAML: \(firstLine)"
        }
    }
}
