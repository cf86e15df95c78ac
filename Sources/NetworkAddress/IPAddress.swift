// IP addresses and prefixes, parsed and printed without the C library so the model stays pure.

public enum IPFamily: String, Hashable, Sendable, Codable, Comparable, CaseIterable {
    case ipv4, ipv6
    public static func < (a: IPFamily, b: IPFamily) -> Bool { a.rawValue < b.rawValue }
    public var bitCount: Int { self == .ipv4 ? 32 : 128 }
}

/// An IPv4 or IPv6 address held as its network-order bytes.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]
    public var family: IPFamily { bytes.count == 4 ? .ipv4 : .ipv6 }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public init?(_ text: String) {
        if text.contains(":") {
            guard let parsed = IPAddress.parseV6(Substring(text)) else { return nil }
            bytes = parsed
        } else {
            guard let parsed = IPAddress.parseV4(Substring(text)) else { return nil }
            bytes = parsed
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.bytes.count != b.bytes.count { return a.bytes.count < b.bytes.count }
        return a.bytes.lexicographicallyPrecedes(b.bytes)
    }

    private static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = UInt8(part) else { return nil }
            // Leading zeros are ambiguous (octal in some parsers): refuse them.
            if part.count > 1 && part.first == "0" { return nil }
            out.append(value)
        }
        return out
    }

    private static func parseV6(_ text: Substring) -> [UInt8]? {
        var groups: [UInt16] = []
        var tail: [UInt8] = []
        var halves: [String] = []
        if let range = text.firstRange(of: "::") {
            halves = [String(text[..<range.lowerBound]), String(text[range.upperBound...])]
            if halves[1].contains("::") { return nil }
        } else {
            halves = [String(text)]
        }
        func parseGroups(_ part: String, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if allowV4Tail && index == fields.count - 1 && field.contains(".") {
                    guard let v4 = parseV4(field) else { return nil }
                    tail = v4
                    continue
                }
                guard (1...4).contains(field.count), let value = UInt16(field, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        if halves.count == 2 {
            guard let head = parseGroups(halves[0], allowV4Tail: false),
                  let rest = parseGroups(halves[1], allowV4Tail: true) else { return nil }
            let tailGroups = tail.count / 2
            let missing = 8 - head.count - rest.count - tailGroups
            guard missing >= 1 else { return nil }
            groups = head + Array(repeating: 0, count: missing) + rest
        } else {
            guard let all = parseGroups(halves[0], allowV4Tail: true) else { return nil }
            groups = all
            guard groups.count + tail.count / 2 == 8 else { return nil }
        }
        var out: [UInt8] = []
        for group in groups { out.append(UInt8(group >> 8)); out.append(UInt8(group & 0xff)) }
        out += tail
        return out.count == 16 ? out : nil
    }

    public var description: String {
        if bytes.count == 4 { return bytes.map { String($0) }.joined(separator: ".") }
        var groups: [UInt16] = []
        for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])) }
        // RFC 5952: compress the longest run (of two or more) of zero groups, the first if tied.
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                let length = i - runStart
                if length > bestLength && length >= 2 { bestStart = runStart; bestLength = length }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

/// An address prefix such as 198.18.0.0/15. The address is stored with its host bits cleared.
public struct CIDR: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0, prefixLength <= address.family.bitCount else { return nil }
        self.address = CIDR.masked(address, prefixLength)
        self.prefixLength = prefixLength
    }

    /// Parses `a.b.c.d/n`, `x::/n`, or a bare address (a host prefix). Host bits must be zero unless
    /// `strict` is false.
    public init?(_ text: String, strict: Bool = true) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        var length = address.family.bitCount
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(parts[1]), value <= address.family.bitCount else { return nil }
            length = value
        }
        if strict && CIDR.masked(address, length) != address { return nil }
        self.init(address: address, prefixLength: length)
    }

    public var family: IPFamily { address.family }
    public var description: String { "\(address)/\(prefixLength)" }

    public static func < (a: CIDR, b: CIDR) -> Bool {
        a.address != b.address ? a.address < b.address : a.prefixLength < b.prefixLength
    }

    /// The prefix's netmask as bytes.
    public var maskBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: address.bytes.count)
        for bit in 0..<prefixLength { out[bit / 8] |= UInt8(0x80 >> (bit % 8)) }
        return out
    }

    public func contains(_ other: IPAddress) -> Bool {
        other.family == family && CIDR.masked(other, prefixLength) == address
    }

    public func contains(_ other: CIDR) -> Bool {
        other.family == family && other.prefixLength >= prefixLength && contains(other.address)
    }

    static func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
        var bytes = address.bytes
        for index in 0..<bytes.count {
            let bitsHere = max(0, min(8, length - index * 8))
            bytes[index] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
        return IPAddress(bytes: bytes)!
    }

    /// The two halves of this prefix, or nil for a host prefix.
    public var halves: (CIDR, CIDR)? {
        guard prefixLength < family.bitCount else { return nil }
        var upper = address.bytes
        upper[prefixLength / 8] |= UInt8(0x80 >> (prefixLength % 8))
        return (CIDR(address: address, prefixLength: prefixLength + 1)!,
                CIDR(address: IPAddress(bytes: upper)!, prefixLength: prefixLength + 1)!)
    }

    /// This prefix minus the given ones, as a sorted list of disjoint prefixes.
    public func subtracting(_ excluded: [CIDR]) -> [CIDR] {
        let relevant = excluded.filter { $0.family == family && (contains($0) || $0.contains(self)) }
        if relevant.contains(where: { $0.contains(self) }) { return [] }
        if relevant.isEmpty { return [self] }
        guard let (low, high) = halves else { return [] }
        return low.subtracting(relevant) + high.subtracting(relevant)
    }
}
