// Element encodings for the set kinds Palisade uses beyond plain addresses and interface names.
import NetworkAddress

public extension SetElement {
    /// An `address . port` key of a concatenated set: the address, then the port in network order
    /// padded with two zero bytes to a 4-byte register boundary.
    static func addressPort(_ address: IPAddress, _ port: UInt16) -> SetElement {
        SetElement(key: address.bytes + Bytes.bigEndianU16(port) + [0, 0])
    }

    /// An `ifname . address` key: the interface name NUL-padded to 16 bytes, then the address.
    static func interfaceAddress(_ name: String, _ address: IPAddress) -> SetElement {
        SetElement(key: Bytes.ifname(name) + address.bytes)
    }
}

public enum IntervalElements {
    /// The kernel elements of an interval set holding these prefixes: overlapping and adjacent
    /// prefixes are merged first (the kernel rejects overlapping intervals), then each range
    /// becomes a start element and, unless it reaches the top of the address space, an end
    /// element at the first address after it.
    public static func elements(for prefixes: [CIDR]) -> Set<SetElement> {
        var result = Set<SetElement>()
        for range in mergedRanges(prefixes) {
            result.insert(SetElement(key: range.start))
            if let end = range.endExclusive { result.insert(SetElement(key: end, isIntervalEnd: true)) }
        }
        return result
    }

    /// Disjoint, non-adjacent ranges [start, endExclusive) in address order; endExclusive nil means
    /// "to the end of the address space". All prefixes must be of one family.
    public static func mergedRanges(_ prefixes: [CIDR]) -> [(start: [UInt8], endExclusive: [UInt8]?)] {
        let sorted = prefixes.sorted { $0.address < $1.address }
        var ranges: [(start: [UInt8], endExclusive: [UInt8]?)] = []
        for prefix in sorted {
            let start = prefix.address.bytes
            let end = nextAfter(prefix)
            if var last = ranges.last {
                // Overlapping or adjacent: extend (an open end swallows everything after it).
                guard let lastEnd = last.endExclusive else { continue }
                if !lastEnd.lexicographicallyPrecedes(start) {
                    if let end {
                        if lastEnd.lexicographicallyPrecedes(end) { last.endExclusive = end }
                    } else {
                        last.endExclusive = nil
                    }
                    ranges[ranges.count - 1] = last
                    continue
                }
            }
            ranges.append((start, end))
        }
        return ranges
    }

    /// The kernel elements of an interval `inet_service` set holding these port ranges, merged.
    public static func elements(forPorts ranges: [ClosedRange<UInt16>]) -> Set<SetElement> {
        var merged: [ClosedRange<UInt16>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, Int(range.lowerBound) <= Int(last.upperBound) + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        var result = Set<SetElement>()
        for range in merged {
            result.insert(SetElement(key: Bytes.bigEndianU16(range.lowerBound)))
            if range.upperBound < UInt16.max {
                result.insert(SetElement(key: Bytes.bigEndianU16(range.upperBound + 1), isIntervalEnd: true))
            }
        }
        return result
    }

    /// The first address after the prefix, or nil if the prefix ends the address space.
    static func nextAfter(_ prefix: CIDR) -> [UInt8]? {
        var bytes = prefix.address.bytes
        // Set the host bits, then add one.
        for bit in prefix.prefixLength..<(bytes.count * 8) { bytes[bit / 8] |= UInt8(0x80 >> (bit % 8)) }
        var index = bytes.count - 1
        while index >= 0 {
            if bytes[index] == 0xff {
                bytes[index] = 0
                index -= 1
            } else {
                bytes[index] += 1
                return bytes
            }
        }
        return nil
    }
}
