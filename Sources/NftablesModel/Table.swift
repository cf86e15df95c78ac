// Tables, chains, rules and sets as values. Order of chains and sets is by name, so two equal
// rulesets are == however they were built; the order of rules inside a chain matters.

public enum TableFamily: String, Hashable, Sendable, CaseIterable {
    case inet, ip, ip6
    /// NFPROTO_* value.
    public var nfproto: UInt32 {
        switch self { case .inet: return 1; case .ip: return 2; case .ip6: return 10 }
    }
}

public struct Rule: Hashable, Sendable {
    public var exprs: [Expr]
    /// Shown by nft as `comment "..."`; stored in the rule's userdata.
    public var comment: String?
    public init(_ exprs: [Expr], comment: String? = nil) {
        self.exprs = exprs
        self.comment = comment.map(Rule.fitting)
    }

    /// The kernel keeps at most 128 bytes of comment (NFT_USERDATA_MAXLEN is larger, but nft's
    /// comment limit is 128 including the NUL); longer ones are cut at a character boundary.
    public static let maxCommentBytes = 127

    static func fitting(_ comment: String) -> String {
        if comment.utf8.count <= maxCommentBytes { return comment }
        var result = ""
        for character in comment {
            if result.utf8.count + character.utf8.count + 3 > maxCommentBytes { break }
            result.append(character)
        }
        return result + "..."
    }
}

/// A base chain's hook. Palisade only uses filter chains.
public struct ChainHook: Hashable, Sendable {
    public enum Point: String, Hashable, Sendable, CaseIterable {
        case prerouting, input, forward, output, postrouting
        /// NF_INET_* hook number.
        public var number: UInt32 {
            switch self {
            case .prerouting: return 0
            case .input: return 1
            case .forward: return 2
            case .output: return 3
            case .postrouting: return 4
            }
        }
        public init?(number: UInt32) {
            guard let point = Point.allCases.first(where: { $0.number == number }) else { return nil }
            self = point
        }
    }
    public var point: Point
    public var priority: Int32
    /// The chain policy: accept or drop.
    public var policy: Verdict
    public init(point: Point, priority: Int32 = 0, policy: Verdict = .accept) {
        self.point = point; self.priority = priority; self.policy = policy
    }
}

public struct Chain: Hashable, Sendable {
    public var name: String
    public var hook: ChainHook?
    public var rules: [Rule]
    public init(name: String, hook: ChainHook? = nil, rules: [Rule] = []) {
        self.name = name; self.hook = hook; self.rules = rules
    }
}

/// nft datatypes of set keys and data, with the ids nft stores in set userdata.
public enum SetDataType: String, Hashable, Sendable, CaseIterable {
    case ipv4Address = "ipv4_addr"
    case ipv6Address = "ipv6_addr"
    case ifname = "ifname"
    case inetService = "inet_service"
    case verdict = "verdict"
    /// Concatenations `ipv4_addr . inet_service` / `ipv6_addr . inet_service`: each part padded to
    /// a multiple of 4 bytes (address, then the port in 2 bytes plus 2 of zero padding).
    case ipv4AddressService = "ipv4_addr . inet_service"
    case ipv6AddressService = "ipv6_addr . inet_service"
    /// `ifname . ipv4_addr` / `ifname . ipv6_addr`: which source addresses an interface may use.
    case ifnameIPv4Address = "ifname . ipv4_addr"
    case ifnameIPv6Address = "ifname . ipv6_addr"

    /// nft's datatype id (not in any installed header: nft's `enum datatypes`).
    public var nftTypeId: UInt32 {
        switch self {
        case .verdict: return 1
        case .ipv4Address: return 7
        case .ipv6Address: return 8
        case .inetService: return 13
        case .ifname: return 41
        // nft's concat type id: each part's id shifted in by 6 bits (TYPE_BITS).
        case .ipv4AddressService: return 7 << 6 | 13
        case .ipv6AddressService: return 8 << 6 | 13
        case .ifnameIPv4Address: return 41 << 6 | 7
        case .ifnameIPv6Address: return 41 << 6 | 8
        }
    }
    public var keyLength: UInt32 {
        switch self {
        case .ipv4Address: return 4
        case .ipv6Address: return 16
        case .ifname: return 16
        case .inetService: return 2
        case .verdict: return 4
        case .ipv4AddressService: return 8
        case .ipv6AddressService: return 20
        case .ifnameIPv4Address: return 20
        case .ifnameIPv6Address: return 32
        }
    }
    /// The parts of a concatenation (nil for a plain type).
    public var concatenatedParts: [SetDataType]? {
        switch self {
        case .ipv4AddressService: return [.ipv4Address, .inetService]
        case .ipv6AddressService: return [.ipv6Address, .inetService]
        case .ifnameIPv4Address: return [.ifname, .ipv4Address]
        case .ifnameIPv6Address: return [.ifname, .ipv6Address]
        default: return nil
        }
    }
    /// nft's byte order for the type: 0 invalid (what nft writes for verdicts and concatenations), 1 host, 2 big endian
    /// (nft's enum byteorder). Writing 1 for verdict data makes `nft list` abort.
    public var byteOrder: UInt32 {
        switch self {
        case .ipv4Address, .ipv6Address, .inetService: return 2
        case .ifname: return 1
        // nft writes 0 for a concatenation (each part has its own order).
        case .ipv4AddressService, .ipv6AddressService, .ifnameIPv4Address, .ifnameIPv6Address: return 0
        case .verdict: return 0
        }
    }
    public init?(nftTypeId: UInt32) {
        guard let type = SetDataType.allCases.first(where: { $0.nftTypeId == nftTypeId }) else { return nil }
        self = type
    }
}

public struct SetElement: Hashable, Sendable {
    /// The key bytes as the kernel holds them (ifname: the name NUL-padded to 16 bytes).
    public var key: [UInt8]
    /// For a verdict map: the element's verdict.
    public var verdict: Verdict?
    /// In an interval set, the kernel stores each range [start, end) as two elements: `start`, and
    /// `end` flagged NFT_SET_ELEM_INTERVAL_END. A range that reaches the top of the key space has
    /// no end element.
    public var isIntervalEnd: Bool
    public init(key: [UInt8], verdict: Verdict? = nil, isIntervalEnd: Bool = false) {
        self.key = key; self.verdict = verdict; self.isIntervalEnd = isIntervalEnd
    }

    /// The key's bytes in one go (not byte by byte, as the synthesized hash would: sets of tens of
    /// thousands of addresses are built on every full compile).
    public func hash(into hasher: inout Hasher) {
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
        hasher.combine(verdict)
        hasher.combine(isIntervalEnd)
    }
}

/// NFT_SET_* flags Palisade sets explicitly (MAP follows from the data type).
public struct SetFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// NFT_SET_INTERVAL: elements are ranges (address prefixes).
    public static let interval = SetFlags(rawValue: 0x4)
}

/// A named set (no data) or verdict map (data type .verdict).
public struct NftSet: Hashable, Sendable {
    public var name: String
    public var keyType: SetDataType
    public var dataType: SetDataType?
    public var flags: SetFlags
    public var elements: Set<SetElement>
    public init(name: String, keyType: SetDataType, dataType: SetDataType? = nil, flags: SetFlags = [],
                elements: Set<SetElement> = []) {
        self.name = name; self.keyType = keyType; self.dataType = dataType; self.flags = flags
        self.elements = elements
    }
    public var isMap: Bool { dataType != nil }
    public var isInterval: Bool { flags.contains(.interval) }
}

public struct Table: Hashable, Sendable {
    public var family: TableFamily
    public var name: String
    public var chains: [String: Chain]
    public var sets: [String: NftSet]
    public init(family: TableFamily = .inet, name: String, chains: [Chain] = [], sets: [NftSet] = []) {
        self.family = family; self.name = name
        self.chains = Dictionary(chains.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.sets = Dictionary(sets.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }
}

/// NFT_TABLE_F_* flags.
public struct TableFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let dormant = TableFlags(rawValue: 1)
    /// Only the netlink socket that created the table may change or delete it.
    public static let owner = TableFlags(rawValue: 2)
    /// With `owner`: the table stays (ownerless) when its owner's socket closes, instead of going away.
    public static let persist = TableFlags(rawValue: 4)
}

/// One operation of an nf_tables transaction.
public enum Change: Hashable, Sendable {
    /// NEWTABLE without NLM_F_EXCL: creates the table or does nothing if it exists.
    case ensureTable(family: TableFamily, name: String)
    /// NEWTABLE with flags: creates the table, or updates an existing one's flags (with `owner`,
    /// an ownerless persistent table is adopted by this socket).
    case addTable(family: TableFamily, name: String, flags: TableFlags)
    case deleteTable(family: TableFamily, name: String)
    case addChain(table: String, family: TableFamily, chain: Chain)   // the chain's header only
    case flushChain(table: String, family: TableFamily, chain: String)
    case deleteChain(table: String, family: TableFamily, chain: String)
    case addRule(table: String, family: TableFamily, chain: String, rule: Rule)
    case addSet(table: String, family: TableFamily, set: NftSet)        // header only; elements separately
    case deleteSet(table: String, family: TableFamily, set: String)
    case addElements(table: String, family: TableFamily, set: String, keyType: SetDataType, elements: [SetElement])
    case deleteElements(table: String, family: TableFamily, set: String, keyType: SetDataType, elements: [SetElement])

    /// A short human description, used to name the operation a kernel error belongs to.
    public var summary: String {
        switch self {
        case .ensureTable(let f, let n): return "add table \(f.rawValue) \(n)"
        case .deleteTable(let f, let n): return "delete table \(f.rawValue) \(n)"
        case .addTable(let f, let n, let flags): return "add table \(f.rawValue) \(n) flags 0x\(String(flags.rawValue, radix: 16))"
        case .addChain(let t, let f, let c): return "add chain \(f.rawValue) \(t) \(c.name)"
        case .flushChain(let t, let f, let c): return "flush chain \(f.rawValue) \(t) \(c)"
        case .deleteChain(let t, let f, let c): return "delete chain \(f.rawValue) \(t) \(c)"
        case .addRule(let t, let f, let c, let r):
            return "add rule \(f.rawValue) \(t) \(c) \(RulesetText.render(r))"
        case .addSet(let t, let f, let s): return "add \(s.isMap ? "map" : "set") \(f.rawValue) \(t) \(s.name)"
        case .deleteSet(let t, let f, let s): return "delete set \(f.rawValue) \(t) \(s)"
        case .addElements(let t, let f, let s, _, let e): return "add element \(f.rawValue) \(t) \(s) (\(e.count) elements)"
        case .deleteElements(let t, let f, let s, _, let e): return "delete element \(f.rawValue) \(t) \(s) (\(e.count) elements)"
        }
    }
}
