// The NFLOG prefix of Palisade's log rules: the only thing a logged packet says about which rule
// logged it. The kernel limits a prefix to 64 bytes including its NUL, so it must fit in 63.
//
// Grammar (ASCII, single spaces, one optional trailing space, which the compiler writes so that
// a plain `log` line stays readable):
//
//     prefix    = "palisade" SP verdict SP direction SP subject [SP]
//     verdict   = "allow" | "deny" | "log"        ; "log": a Calico Log rule, the packet goes on
//     direction = "eg" | "in"                     ; source's egress chain | destination's ingress chain
//     subject   = "default"                       ; the endpoint's default (verdict allow or deny)
//               | "quarantine"                    ; the quarantine chain (verdict deny)
//               | policy SP rule                  ; a policy rule (any verdict)
//     policy    = namespace "/" name              ; the policy id itself, when the prefix fits in 63 bytes
//               | "#" 16*16HEXDIG-lowercase      ; else FNV-1a 64 of the id's UTF-8, as PolicyCompiler's
//                                                 ; Naming.shortHash(id) spells it
//     rule      = "0" | %x31-39 *4DIGIT           ; the rule's index in the policy's rule list, ≤ 65535
//
// Examples: `palisade deny eg default `, `palisade deny in quarantine `,
// `palisade allow in shop/allow-web 0 `, `palisade deny eg #9c1185a5c5e9fc54 12 `.
//
// Unambiguous: a literal id always holds exactly one `/`, so it is never `default`, `quarantine`
// or a hash; its characters are `[A-Za-z0-9._-]` (Kubernetes names are narrower still), so no
// space, quote or backslash needs escaping in `nft` text. The endpoint is not in the prefix:
// endpoints share chains, and the packet's addresses (or interfaces) name it.
// The previous form (`palisade <id> <dir> <index> `) is rejected: its second word is not a verdict.

/// What a Palisade log rule says about itself.
public enum LogPrefix: Hashable, Sendable, CustomStringConvertible {
    /// A policy rule: an explicit allow or deny, or a Calico `Log` rule (`verdict == .log`).
    case policyRule(verdict: Verdict, reporter: Reporter, policy: PolicyReference, rule: UInt16)
    /// The endpoint's default policy for the direction: no rule decided.
    case defaultPolicy(action: FlowAction, reporter: Reporter)
    /// The quarantine chain: everything is dropped.
    case quarantine(reporter: Reporter)

    public enum Verdict: String, Hashable, Sendable, CaseIterable {
        case allow, deny, log
    }

    /// The kernel's limit: `NF_LOG_PREFIXLEN` (64) less the terminating NUL.
    public static let maximumLength = 63
    static let keyword = "palisade"

    public var reporter: Reporter {
        switch self {
        case .policyRule(_, let reporter, _, _), .defaultPolicy(_, let reporter), .quarantine(let reporter):
            return reporter
        }
    }

    /// The verdict the logged packet met; nil for a Calico `Log` rule, which decides nothing.
    public var action: FlowAction? {
        switch self {
        case .policyRule(let verdict, _, _, _):
            switch verdict {
            case .allow: return .allow
            case .deny: return .deny
            case .log: return nil
            }
        case .defaultPolicy(let action, _): return action
        case .quarantine: return .deny
        }
    }

    /// The prefix text to put in the log rule, at most 63 bytes, with a trailing space. A policy
    /// id that would not fit, or holds a character outside `[A-Za-z0-9._/-]`, is written as its hash.
    public var text: String {
        let verdict: String
        let subject: String
        switch self {
        case .policyRule(let ruleVerdict, _, let policy, let rule):
            verdict = ruleVerdict.rawValue
            let literal = "\(LogPrefix.keyword) \(verdict) \(LogPrefix.word(for: reporter)) "
            if case .id(let id) = policy, PolicyReference.isLiteralSafe(id),
               literal.utf8.count + id.utf8.count + 1 + String(rule).utf8.count + 1 <= LogPrefix.maximumLength {
                subject = "\(id) \(rule)"
            } else {
                subject = "#\(policy.hashText) \(rule)"
            }
        case .defaultPolicy(let action, _):
            verdict = action.rawValue
            subject = "default"
        case .quarantine:
            verdict = "deny"
            subject = "quarantine"
        }
        return "\(LogPrefix.keyword) \(verdict) \(LogPrefix.word(for: reporter)) \(subject) "
    }

    public var description: String { text }

    static func word(for reporter: Reporter) -> String { reporter == .source ? "eg" : "in" }

    /// Parses a prefix as NFLOG delivers it (`NFULA_PREFIX`): trailing NUL bytes are ignored.
    public init(parsing bytes: [UInt8]) throws {
        var end = bytes.count
        while end > 0 && bytes[end - 1] == 0 { end -= 1 }
        let text = String(decoding: bytes[0..<end], as: UTF8.self)
        guard text.utf8.elementsEqual(bytes[0..<end]) else {
            throw LogPrefixError(prefix: text, problem: "is not UTF-8")
        }
        try self.init(parsing: text)
    }

    /// Parses prefix text. Strict: anything the grammar above does not produce is an error, so a
    /// prefix from someone else's log rule on the same NFLOG group is never mistaken for ours.
    public init(parsing text: String) throws {
        func fail(_ problem: String) -> LogPrefixError { LogPrefixError(prefix: text, problem: problem) }
        let bytes = Array(text.utf8)
        guard bytes.count <= LogPrefix.maximumLength else {
            throw fail("is \(bytes.count) bytes; a prefix has at most \(LogPrefix.maximumLength)")
        }
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw fail("holds a byte that is not printable ASCII")
        }
        var body = Substring(text)
        if body.hasSuffix(" ") { body = body.dropLast() }
        let words = body.split(separator: " ", omittingEmptySubsequences: false)
        guard words.first == Substring(LogPrefix.keyword) else {
            throw fail("does not start with \"\(LogPrefix.keyword) \"; it is not a Palisade log rule")
        }
        guard !words.contains(where: \.isEmpty) else { throw fail("has an empty word (two spaces in a row?)") }
        guard words.count >= 4 else {
            throw fail("has \(words.count) words; expected palisade VERDICT DIRECTION SUBJECT [RULE]")
        }
        guard let verdict = Verdict(rawValue: String(words[1])) else {
            throw fail("verdict \"\(words[1])\" is not one of allow, deny, log")
        }
        let reporter: Reporter
        switch words[2] {
        case "eg": reporter = .source
        case "in": reporter = .destination
        default: throw fail("direction \"\(words[2])\" is not one of eg, in")
        }
        let subject = words[3]
        switch subject {
        case "default", "quarantine":
            guard words.count == 4 else { throw fail("\"\(subject)\" takes no rule index") }
            if subject == "quarantine" {
                guard verdict == .deny else { throw fail("the quarantine chain only denies, not \"\(verdict.rawValue)\"") }
                self = .quarantine(reporter: reporter)
            } else {
                guard verdict != .log else { throw fail("a default policy allows or denies; it does not \"log\"") }
                self = .defaultPolicy(action: verdict == .allow ? .allow : .deny, reporter: reporter)
            }
        default:
            guard words.count == 5 else {
                throw fail("policy \"\(subject)\" needs exactly one rule index after it")
            }
            let policy = try PolicyReference(parsingPrefixWord: subject, in: text)
            guard let rule = LogPrefix.parseRuleIndex(words[4]) else {
                throw fail("rule index \"\(words[4])\" is not a number from 0 to 65535 without leading zeros")
            }
            self = .policyRule(verdict: verdict, reporter: reporter, policy: policy, rule: rule)
        }
    }

    static func parseRuleIndex(_ word: Substring) -> UInt16? {
        guard !word.isEmpty, word.count <= 5, word.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if word.count > 1 && word.first == "0" { return nil }
        return UInt16(word)
    }
}

/// How a log prefix names a policy: its id, or the hash of its id.
public enum PolicyReference: Hashable, Sendable, CustomStringConvertible {
    case id(String)
    case hash(UInt64)

    /// The hash of an id: 64-bit FNV-1a over its UTF-8 bytes (stable across runs and platforms).
    public static func hash(of id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    public var hash64: UInt64 {
        switch self {
        case .id(let id): return PolicyReference.hash(of: id)
        case .hash(let hash): return hash
        }
    }

    /// 16 lowercase hex digits.
    public var hashText: String {
        let hex = String(hash64, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Whether this reference names the policy with the given id.
    public func refers(to id: String) -> Bool {
        switch self {
        case .id(let own): return own == id
        case .hash(let hash): return hash == PolicyReference.hash(of: id)
        }
    }

    public var description: String {
        switch self {
        case .id(let id): return id
        case .hash: return "#" + hashText
        }
    }

    /// `namespace/name` with one slash, both parts non-empty, characters `[A-Za-z0-9._-]`.
    static func isLiteralSafe(_ id: String) -> Bool {
        var slashes = 0
        for byte in id.utf8 {
            switch byte {
            case UInt8(ascii: "/"): slashes += 1
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                continue
            default: return false
            }
        }
        return slashes == 1 && !id.hasPrefix("/") && !id.hasSuffix("/")
    }

    init(parsingPrefixWord word: Substring, in prefix: String) throws {
        if word.first == "#" {
            let digits = word.dropFirst()
            guard digits.count == 16,
                  digits.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
                  let hash = UInt64(digits, radix: 16) else {
                throw LogPrefixError(prefix: prefix, problem: "policy hash \"\(word)\" is not # and 16 lowercase hex digits")
            }
            self = .hash(hash)
        } else {
            guard PolicyReference.isLiteralSafe(String(word)) else {
                throw LogPrefixError(prefix: prefix, problem:
                    "subject \"\(word)\" is not default, quarantine, a policy id NAMESPACE/NAME or a #hash")
            }
            self = .id(String(word))
        }
    }
}

/// A log prefix that is not one of Palisade's, and why.
public struct LogPrefixError: Error, Hashable, Sendable, CustomStringConvertible {
    public var prefix: String
    public var problem: String
    public var description: String { "log prefix \"\(prefix)\" \(problem)" }
}

/// The policies the agent has compiled, by the hash a log prefix may carry instead of the id.
/// The agent rebuilds it from each snapshot's policy ids.
public struct PolicyDirectory: Sendable {
    private var idsByHash: [UInt64: String] = [:]
    /// Ids whose hash another id already had (never expected; reported so it is not silent).
    public private(set) var collisions: [String] = []

    public init(policyIDs: some Sequence<String> = []) {
        for id in policyIDs { insert(id) }
    }

    public mutating func insert(_ id: String) {
        let hash = PolicyReference.hash(of: id)
        if let existing = idsByHash[hash], existing != id {
            collisions.append(id)
            return
        }
        idsByHash[hash] = id
    }

    /// The policy id a reference names: the id itself, the id with that hash, or `#` and the hash
    /// when no known policy has it (a policy deleted since the rule was written).
    public func resolve(_ reference: PolicyReference) -> String {
        switch reference {
        case .id(let id): return id
        case .hash(let hash): return idsByHash[hash] ?? reference.description
        }
    }
}
