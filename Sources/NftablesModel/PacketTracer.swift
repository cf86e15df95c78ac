// An interpreter of the table model: it runs one packet through the base chains of a hook the way
// nf_tables' nft_do_chain does, so that "what would the kernel do with this flow" is answered by
// the ruleset itself rather than by a second reading of the policies. Pure: no printing, no kernel.
import NetworkAddress

/// The packet the tracer evaluates: what nf_tables can see of the first packet of a flow.
public struct TracePacket: Hashable, Sendable {
    /// nil: no input device (the output hook); `meta iifname` then loads an empty name.
    public var inputInterface: String?
    /// nil: no output device (the input hook).
    public var outputInterface: String?
    public var family: IPFamily
    public var source: IPAddress
    public var destination: IPAddress
    /// IANA protocol number (6 tcp, 17 udp, 132 sctp, 1 icmp, 58 icmpv6).
    public var l4proto: UInt8
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    public var icmpType: UInt8?
    public var icmpCode: UInt8?
    /// Conntrack's view: `.new` for the first packet of a flow, `.established` for a reply.
    public var ctState: CtStateSet
    public var mark: UInt32

    public init(inputInterface: String?, outputInterface: String?, family: IPFamily? = nil,
                source: IPAddress, destination: IPAddress, l4proto: UInt8,
                sourcePort: UInt16? = nil, destinationPort: UInt16? = nil,
                icmpType: UInt8? = nil, icmpCode: UInt8? = nil, ctState: CtStateSet = .new, mark: UInt32 = 0) {
        self.inputInterface = inputInterface; self.outputInterface = outputInterface
        self.family = family ?? source.family
        self.source = source; self.destination = destination; self.l4proto = l4proto
        self.sourcePort = sourcePort; self.destinationPort = destinationPort
        self.icmpType = icmpType; self.icmpCode = icmpCode; self.ctState = ctState; self.mark = mark
    }
}

/// One thing that happened to the packet: a rule that matched, a log, or a base chain's policy.
public struct TraceStep: Hashable, Sendable, CustomStringConvertible {
    public enum Event: Hashable, Sendable {
        /// Every expression of the rule passed; the verdict register then held this verdict
        /// (`.continue` for a rule without one, such as a bare counter).
        case matched(Verdict)
        /// A `log` expression ran; the rule goes on.
        case logged(prefix: String?, group: UInt16?)
        /// The end of a base chain, or a `return` from it: the chain's policy.
        case policy(Verdict)
    }
    public var chain: String
    /// The rule's position in its chain; nil for a policy step.
    public var ruleIndex: Int?
    /// The rule's expressions in nft syntax, without its comment (which is `comment`).
    public var ruleText: String
    public var comment: String?
    public var event: Event

    public init(chain: String, ruleIndex: Int?, ruleText: String, comment: String?, event: Event) {
        self.chain = chain; self.ruleIndex = ruleIndex; self.ruleText = ruleText
        self.comment = comment; self.event = event
    }

    /// The verdict this step produced, if it produced one.
    public var verdict: Verdict? {
        switch event {
        case .matched(let verdict), .policy(let verdict): return verdict
        case .logged: return nil
        }
    }

    public var description: String {
        let position = ruleIndex.map { "\(chain)[\($0)]" } ?? "\(chain) policy"
        var text = "\(position) \(ruleText)"
        if let comment { text += " # \(comment)" }
        switch event {
        case .matched(let verdict): text += " => \(verdict)"
        case .logged: text += " => log"
        case .policy(let verdict): text += " => \(verdict)"
        }
        return text
    }
}

/// What the hook decided and how.
public struct Trace: Hashable, Sendable {
    /// `.accept` or `.drop`.
    public var verdict: Verdict
    public var steps: [TraceStep]
    public init(verdict: Verdict, steps: [TraceStep]) { self.verdict = verdict; self.steps = steps }
}

/// A table the kernel would not have loaded, or a packet the tracer cannot build.
public enum TraceError: Error, Hashable, Sendable, CustomStringConvertible {
    case missingChain(String, from: String)
    case missingSet(String, chain: String, rule: Int)
    case badRegister(Register, chain: String, rule: Int)
    case unsupported(String, chain: String, rule: Int)
    /// Jumps nested deeper than NFT_JUMP_STACK_SIZE, or a chain cycle: the kernel refuses such a table.
    case tooDeep(chain: String)
    case packetFamilyMismatch(String)

    public var description: String {
        switch self {
        case .missingChain(let name, let from): return "chain \(name) (target of a verdict in \(from)) does not exist"
        case .missingSet(let name, let chain, let rule): return "\(chain) rule \(rule): set @\(name) does not exist"
        case .badRegister(let register, let chain, let rule): return "\(chain) rule \(rule): register \(register) is not a data register, or the access runs past the registers"
        case .unsupported(let what, let chain, let rule): return "\(chain) rule \(rule): \(what) is not modelled by the tracer"
        case .tooDeep(let chain): return "jumping to \(chain) nests chains deeper than the kernel's jump stack (\(PacketTracer.jumpStackSize)): the kernel would refuse this table"
        case .packetFamilyMismatch(let text): return "packet: \(text)"
        }
    }
}

public enum PacketTracer {
    /// NFT_JUMP_STACK_SIZE: the kernel refuses tables whose jumps nest deeper.
    public static let jumpStackSize = 16

    /// Runs `packet` through every base chain of `table` on `hook`, lowest priority first (ties by
    /// name). As in netfilter, `accept` hands the packet to the next base chain and `drop` ends it.
    /// A table of family ip (ip6) has no say over IPv6 (IPv4) packets.
    public static func trace(_ table: Table, packet: TracePacket, hook: ChainHook.Point) throws -> Trace {
        guard packet.source.family == packet.family, packet.destination.family == packet.family else {
            throw TraceError.packetFamilyMismatch("addresses \(packet.source) and \(packet.destination) are not both \(packet.family.rawValue)")
        }
        var steps: [TraceStep] = []
        let seesPacket: Bool
        switch table.family {
        case .inet: seesPacket = true
        case .ip: seesPacket = packet.family == .ipv4
        case .ip6: seesPacket = packet.family == .ipv6
        }
        guard seesPacket else { return Trace(verdict: .accept, steps: []) }
        let baseChains: [Chain] = table.chains.values
            .filter { $0.hook?.point == hook }
            .sorted { (a: Chain, b: Chain) -> Bool in
                let priorityA = a.hook?.priority ?? 0, priorityB = b.hook?.priority ?? 0
                return priorityA != priorityB ? priorityA < priorityB : a.name < b.name
            }
        let headers = PacketHeaders(packet)
        for chain in baseChains {
            var run = ChainRun(table: table, packet: packet, headers: headers)
            let verdict = try run.evaluate(base: chain)
            steps += run.steps
            if verdict == .drop { return Trace(verdict: .drop, steps: steps) }
        }
        return Trace(verdict: .accept, steps: steps)
    }
}

/// The bytes nf_tables' payload expressions read: a network header and a transport header (the
/// first packet of a flow carries no data after them).
fileprivate struct PacketHeaders {
    var network: [UInt8]
    /// Empty when the protocol carries no header the tracer knows (payload loads then fail).
    var transport: [UInt8]

    init(_ packet: TracePacket) {
        switch packet.family {
        case .ipv4:
            // version 4, IHL 5, TOS, total length, id, flags+fragment offset, TTL, protocol, checksum
            network = [0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, packet.l4proto, 0, 0]
                + packet.source.bytes + packet.destination.bytes
        case .ipv6:
            // version 6, traffic class, flow label, payload length, next header, hop limit
            network = [0x60, 0, 0, 0, 0, 0, packet.l4proto, 64] + packet.source.bytes + packet.destination.bytes
        }
        let ports = Bytes.bigEndianU16(packet.sourcePort ?? 0) + Bytes.bigEndianU16(packet.destinationPort ?? 0)
        switch packet.l4proto {
        case 6 where packet.destinationPort != nil:      // tcp: ports, seq, ack, offset 5 + SYN, window, sum, urg
            transport = ports + [0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]
        case 17 where packet.destinationPort != nil:     // udp: ports, length, checksum
            transport = ports + [0, 8, 0, 0]
        case 132 where packet.destinationPort != nil:    // sctp: ports, verification tag, checksum
            transport = ports + [0, 0, 0, 0, 0, 0, 0, 0]
        case 1, 58:                                      // icmp/icmpv6: type, code, checksum, id, sequence
            transport = [packet.icmpType ?? (packet.l4proto == 1 ? 8 : 128), packet.icmpCode ?? 0, 0, 0, 0, 1, 0, 1]
        default:
            transport = packet.destinationPort != nil ? ports : []
        }
    }
}

/// The registers of one nft_do_chain run: 16 bytes of verdict and four 16-byte data registers,
/// which the 32-bit registers 8...23 view four bytes at a time (struct nft_regs, 20 u32 words).
fileprivate struct Registers {
    static let size = 80
    var bytes = [UInt8](repeating: 0, count: Registers.size)

    /// The byte offset of a data register as nft_parse_register computes it; nil for the verdict
    /// register and the numbers between the two naming schemes.
    static func offset(of register: Register) -> Int? {
        switch register {
        case 1...4: return Int(register) * 16
        case 8...23: return (Int(register) - 4) * 4
        default: return nil
        }
    }

    func read(_ register: Register, count: Int) -> [UInt8]? {
        guard let start = Registers.offset(of: register), start + count <= Registers.size else { return nil }
        return Array(bytes[start..<(start + count)])
    }

    /// Stores `value`; as the kernel does for loads, a value that ends inside a 32-bit word first
    /// has that word zeroed (nft_reg_store8/16, the payload expression's `dest[len / 4] = 0`).
    mutating func write(_ register: Register, _ value: [UInt8]) -> Bool {
        guard let start = Registers.offset(of: register) else { return false }
        let padded = (value.count + 3) / 4 * 4
        guard start + padded <= Registers.size else { return false }
        for index in 0..<padded { bytes[start + index] = index < value.count ? value[index] : 0 }
        return true
    }
}

/// One base chain's evaluation: nft_do_chain with its jump stack.
fileprivate struct ChainRun {
    let table: Table
    let packet: TracePacket
    let headers: PacketHeaders
    var steps: [TraceStep] = []

    init(table: Table, packet: TracePacket, headers: PacketHeaders) {
        self.table = table; self.packet = packet; self.headers = headers
    }

    /// What one rule did: every expression passed (with the verdict register's value at the end),
    /// or one of them stopped it (NFT_BREAK).
    enum RuleOutcome { case passed(Verdict), broke }

    mutating func evaluate(base: Chain) throws -> Verdict {
        guard let policy = base.hook?.policy else { return .accept }
        var chain = base
        var ruleIndex = 0
        var stack: [(chain: Chain, next: Int)] = []
        // The kernel refuses chain cycles at load time; a table built by hand may still have one.
        var budget = 1 + table.chains.values.reduce(0) { $0 + $1.rules.count } * (PacketTracer.jumpStackSize + 1)

        func policyStep(_ chainName: String) -> TraceStep {
            TraceStep(chain: chainName, ruleIndex: nil, ruleText: "policy \(policy)", comment: nil, event: .policy(policy))
        }

        while true {
            // Rules in order until one ends with something other than "continue".
            var decided: Verdict?
            while ruleIndex < chain.rules.count {
                budget -= 1
                if budget < 0 { throw TraceError.tooDeep(chain: chain.name) }
                let rule = chain.rules[ruleIndex]
                switch try run(rule, chain: chain.name, index: ruleIndex) {
                case .broke:
                    ruleIndex += 1
                case .passed(let verdict):
                    steps.append(TraceStep(chain: chain.name, ruleIndex: ruleIndex,
                                           ruleText: RulesetText.render(Rule(rule.exprs)),
                                           comment: rule.comment, event: .matched(verdict)))
                    if verdict == .continue {
                        ruleIndex += 1
                    } else {
                        decided = verdict
                    }
                }
                if decided != nil { break }
            }

            switch decided {
            case .accept?:
                return .accept
            case .drop?:
                return .drop
            case .jump(let target)?, .goto(let target)?:
                guard let next = table.chains[target] else { throw TraceError.missingChain(target, from: chain.name) }
                guard next.hook == nil else {
                    throw TraceError.unsupported("a jump or goto to base chain \(target)", chain: chain.name, rule: ruleIndex)
                }
                if case .jump? = decided {
                    if stack.count >= PacketTracer.jumpStackSize { throw TraceError.tooDeep(chain: target) }
                    stack.append((chain, ruleIndex + 1))
                }
                chain = next
                ruleIndex = 0
            case .return?, .continue?, nil:
                // `return`, or the end of the chain: back to the rule after the last jump, or at
                // the bottom, the base chain's policy.
                guard let frame = stack.popLast() else {
                    steps.append(policyStep(base.name))
                    return policy
                }
                chain = frame.chain
                ruleIndex = frame.next
            }
        }
    }

    /// Runs a rule's expressions until one breaks or sets the verdict register.
    mutating func run(_ rule: Rule, chain: String, index: Int) throws -> RuleOutcome {
        var registers = Registers()
        func load(_ register: Register, _ value: [UInt8]) throws {
            guard register != .verdictRegister, registers.write(register, value) else {
                throw TraceError.badRegister(register, chain: chain, rule: index)
            }
        }
        func read(_ register: Register, _ count: Int) throws -> [UInt8] {
            guard register != .verdictRegister, let value = registers.read(register, count: count) else {
                throw TraceError.badRegister(register, chain: chain, rule: index)
            }
            return value
        }

        for expr in rule.exprs {
            switch expr {
            case .meta(let key, let dreg):
                try load(dreg, metaValue(key))
            case .payload(let base, let offset, let length, let dreg):
                // Offsets count from the start of the header and may run on into the next one,
                // as skb_copy_bits does; past the end of the packet the load fails.
                let header: [UInt8]
                switch base {
                case .network: header = headers.network + headers.transport
                case .transport: header = headers.transport
                case .link: throw TraceError.unsupported("a link-layer payload load", chain: chain, rule: index)
                }
                let start = Int(offset), end = Int(offset) + Int(length)
                guard end <= header.count else { return .broke }   // skb_copy_bits fails: NFT_BREAK
                try load(dreg, Array(header[start..<end]))
            case .ct(.state, let dreg):
                try load(dreg, Bytes.hostU32(packet.ctState.rawValue))
            case .cmp(let sreg, let op, let data):
                let value = try read(sreg, data.count)
                if !ChainRun.compare(value, op, data) { return .broke }
            case .bitwise(let sreg, let dreg, let mask, let xor):
                // NFT_BITWISE_BOOL works on whole 32-bit words; mask and xor are zero past their length.
                let words = (mask.count + 3) / 4 * 4
                let source = try read(sreg, words)
                var result = [UInt8](repeating: 0, count: words)
                for byte in 0..<words {
                    let m = byte < mask.count ? mask[byte] : 0
                    let x = byte < xor.count ? xor[byte] : 0
                    result[byte] = (source[byte] & m) ^ x
                }
                try load(dreg, result)
            case .lookup(let sreg, let setName, let dreg, let invert):
                guard let set = table.sets[setName] else { throw TraceError.missingSet(setName, chain: chain, rule: index) }
                let key = try read(sreg, Int(set.keyType.keyLength))
                let found = ChainRun.lookup(key, in: set)
                if (found != nil) == invert { return .broke }
                guard let dreg, let element = found else { continue }
                guard dreg == .verdictRegister, let verdict = element.verdict else {
                    throw TraceError.unsupported("a map lookup into data register \(dreg)", chain: chain, rule: index)
                }
                if verdict != .continue { return .passed(verdict) }
            case .verdict(let verdict):
                if verdict != .continue { return .passed(verdict) }
            case .counter:
                continue
            case .log(let group, let prefix):
                steps.append(TraceStep(chain: chain, ruleIndex: index, ruleText: RulesetText.render(Rule(rule.exprs)),
                                       comment: rule.comment, event: .logged(prefix: prefix, group: group)))
            }
        }
        return .passed(.continue)
    }

    func metaValue(_ key: MetaKey) -> [UInt8] {
        switch key {
        case .iifname: return Bytes.ifname(packet.inputInterface ?? "")
        case .oifname: return Bytes.ifname(packet.outputInterface ?? "")
        case .nfproto: return [packet.family == .ipv4 ? 2 : 10]
        case .l4proto: return [packet.l4proto]
        case .mark: return Bytes.hostU32(packet.mark)
        }
    }

    /// nft_cmp_eval: one memcmp of the register against the data, then the operator on its sign.
    /// Numeric order is byte order, which is right for the big-endian values nft compares with
    /// < and > (ports, addresses); host-order values are converted by nft before such a compare.
    static func compare(_ value: [UInt8], _ op: CmpOp, _ data: [UInt8]) -> Bool {
        let order = memcmp(value, data)
        switch op {
        case .eq: return order == 0
        case .neq: return order != 0
        case .lt: return order < 0
        case .lte: return order <= 0
        case .gt: return order > 0
        case .gte: return order >= 0
        }
    }

    static func memcmp(_ a: [UInt8], _ b: [UInt8]) -> Int {
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// The element a key finds. A plain set (or map) needs the exact key. An interval set holds
    /// ranges as a start element and, unless the range runs to the top of the key space, an end
    /// element at the first key after it (as nft_rbtree does): the key is in the set if the
    /// greatest element at or below it is a start (a start wins over an end with the same key).
    static func lookup(_ key: [UInt8], in set: NftSet) -> SetElement? {
        if !set.isInterval {
            return set.elements.first { $0.key == key }
        }
        var best: SetElement?
        for element in set.elements where element.key.count == key.count && memcmp(element.key, key) <= 0 {
            guard let current = best else { best = element; continue }
            let order = memcmp(element.key, current.key)
            if order > 0 || (order == 0 && current.isIntervalEnd && !element.isIntervalEnd) { best = element }
        }
        guard let found = best, !found.isIntervalEnd else { return nil }
        return found
    }
}
