// NftSet <-> libnftnl set, and set elements <-> libnftnl elements.
// A set carries nft's datatype id and key length; a verdict map also NFT_SET_MAP and data type
// NFT_DATA_VERDICT. The userdata TLVs with the key (and data) byte order let `nft list` print
// ifname keys as names and addresses as addresses.
//
// Interval sets (NFT_SET_INTERVAL, kernel backend rbtree) hold each range as a start element and
// an end element flagged NFT_SET_ELEM_INTERVAL_END at the first key after the range; a range up to
// the top of the key space has no end. nft also puts an end element at key 0 in front of the
// first range. The kernel does not need it (on 6.18, keys below the first range miss without it;
// tested with packets) and it ends no range, so the encoder does not send it and the decoder
// drops it: a set nft wrote reads back like ours. Elements go to the kernel in ascending order
// (kernelOrder). The kernel refuses to split a range in place (adding an end and a start inside
// it: EEXIST); delete the range's end too and add it again, in the same batch.
//
// Concatenated keys (`ipv4_addr . inet_service`) are written as nft writes a non-interval
// concatenation: key type (id << 6 | id), key length 8 or 20, key byte order 0, no
// NFTA_SET_DESC_CONCAT (the kernel then picks the hash backend).
import CNftnl
import NftablesModel

enum SetCodec {
    /// `id`: the set's NFTA_SET_ID, which the kernel requires on NEWSET; unique within a batch.
    static func encode(table: String, family: TableFamily, set: NftSet, id: UInt32 = 1) throws -> NftnlSet {
        let s = try NftnlSet()
        s.set(NFTNL_SET_TABLE, table)
        s.set(NFTNL_SET_NAME, set.name)
        s.set(NFTNL_SET_FAMILY, family.nfproto)
        s.set(NFTNL_SET_ID, id)
        s.set(NFTNL_SET_KEY_TYPE, set.keyType.nftTypeId)
        s.set(NFTNL_SET_KEY_LEN, set.keyType.keyLength)
        let userdata = try NftnlUserdata()
        var ok = userdata.put(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue, u32: keyByteOrder(set.keyType))
        let interval = set.isInterval ? NFT_SET_INTERVAL.rawValue : 0
        if let dataType = set.dataType {
            s.set(NFTNL_SET_FLAGS, NFT_SET_MAP.rawValue | interval)
            s.set(NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT.rawValue)
            s.set(NFTNL_SET_DATA_LEN, dataType.keyLength)
            // Verdict data has no byte order: nft writes 0 (its BYTEORDER_INVALID), and its listing
            // asserts (netlink_delinearize_setelem) if a verdict map claims host byte order (1).
            ok = ok && userdata.put(NFTNL_UDATA_SET_DATABYTEORDER.rawValue, u32: dataType.byteOrder)
        } else {
            s.set(NFTNL_SET_FLAGS, interval)
        }
        guard ok else { throw NftablesError.outOfMemory("nftnl_udata_put_u32") }
        userdata.withBytes { s.set(NFTNL_SET_USERDATA, bytes: $0) }
        return s
    }

    /// The key byte order nft writes in the set's userdata: for a concatenation BYTEORDER_INVALID
    /// (0), since each part has its own; for a plain type the type's own.
    static func keyByteOrder(_ type: SetDataType) -> UInt32 {
        type.concatenatedParts == nil ? type.byteOrder : 0
    }

    /// Key types an interval set may have (the compiler's prefixes and port ranges).
    static let intervalKeyTypes: Set<SetDataType> = [.ipv4Address, .ipv6Address, .inetService]

    /// A set naming only table and set, for DELSET, GETSET and GETSETELEM.
    static func reference(table: String, family: TableFamily, set: String?) throws -> NftnlSet {
        let s = try NftnlSet()
        s.set(NFTNL_SET_TABLE, table)
        if let set { s.set(NFTNL_SET_NAME, set) }
        s.set(NFTNL_SET_FAMILY, family.nfproto)
        return s
    }

    static func decode(_ s: NftnlSet, table: String) throws -> NftSet {
        guard let name = s.string(NFTNL_SET_NAME) else {
            throw NftablesError.unsupported("a set of table \(table)", "the kernel sent no name")
        }
        let what = "set \(table) \(name)"
        let flags = s.u32(NFTNL_SET_FLAGS) ?? 0
        guard flags & ~(NFT_SET_MAP.rawValue | NFT_SET_INTERVAL.rawValue) == 0 else {
            throw NftablesError.unsupported(what, "set flags 0x\(String(flags, radix: 16)) (anonymous, constant, timeout, concat...) are not modelled")
        }
        let isInterval = flags & NFT_SET_INTERVAL.rawValue != 0
        let rawKeyType = s.u32(NFTNL_SET_KEY_TYPE) ?? 0
        guard let keyType = SetDataType(nftTypeId: rawKeyType), keyType != .verdict else {
            throw NftablesError.unsupported(what, "key type \(rawKeyType) is not modelled")
        }
        if let keyLength = s.u32(NFTNL_SET_KEY_LEN), keyLength != keyType.keyLength {
            throw NftablesError.unsupported(what, "key length \(keyLength) does not match \(keyType.rawValue)")
        }
        if isInterval, !intervalKeyTypes.contains(keyType) {
            throw NftablesError.unsupported(what, "interval sets of \(keyType.rawValue) keys are not modelled")
        }
        if let fields = s.bytes(NFTNL_SET_DESC_CONCAT), !fields.isEmpty {
            // The field lengths in bytes: libnftnl hands them out as one byte per field (the kernel
            // sends them for concatenations only, and nft only for interval ones).
            let parts = keyType.concatenatedParts ?? [keyType]
            let lengths = fields.map(UInt32.init)
            guard lengths == parts.map(\.keyLength) else {
                throw NftablesError.unsupported(what, "concatenation field lengths \(lengths) are not modelled")
            }
        }
        var dataType: SetDataType?
        if flags & NFT_SET_MAP.rawValue != 0 {
            let rawDataType = s.u32(NFTNL_SET_DATA_TYPE) ?? 0
            guard rawDataType == NFT_DATA_VERDICT.rawValue else {
                throw NftablesError.unsupported(what, "maps to data type 0x\(String(rawDataType, radix: 16)) are not modelled")
            }
            if isInterval { throw NftablesError.unsupported(what, "interval maps are not modelled") }
            dataType = .verdict
        }
        return NftSet(name: name, keyType: keyType, dataType: dataType, flags: isInterval ? .interval : [])
    }

    // MARK: Elements

    /// Budget for the element list of one message: the list is a netlink nest, and nla_len is a u16.
    static let elementBytesPerMessage = 60_000

    /// An upper bound of the element's size inside NFTA_SET_ELEM_LIST_ELEMENTS.
    static func encodedSize(_ element: SetElement) -> Int {
        var size = 4 + 4 + 4 + align4(element.key.count)          // element nest, key nest, value
        if element.isIntervalEnd { size += 8 }                     // NFTA_SET_ELEM_FLAGS
        if let verdict = element.verdict {
            size += 4 + 4 + 8                                      // data nest, verdict nest, code
            if let chain = verdict.chain { size += 4 + align4(chain.utf8.count + 1) }
        }
        return size
    }

    /// The order the kernel needs interval elements in. The rbtree backend checks every start or
    /// end element against its neighbours as it is inserted or removed, so a range's end must come
    /// after its start: in any other order (seen on 6.18) adds fail with EEXIST and deletes with
    /// ENOENT. Lists holding an interval end are sorted by key, an end before a start of the same
    /// key (the end of one range, then the start of an adjacent one); others are left as they are.
    static func kernelOrder(_ elements: [SetElement]) -> [SetElement] {
        guard elements.contains(where: \.isIntervalEnd) else { return elements }
        return elements.sorted { a, b in
            a.key == b.key ? (a.isIntervalEnd && !b.isIntervalEnd) : a.key.lexicographicallyPrecedes(b.key)
        }
    }

    /// The elements split into runs that each fit in one message.
    static func chunks(_ elements: [SetElement]) -> [ArraySlice<SetElement>] {
        var chunks: [ArraySlice<SetElement>] = []
        var start = elements.startIndex, bytes = 0
        for index in elements.indices {
            let size = encodedSize(elements[index])
            if bytes + size > elementBytesPerMessage, index > start {
                chunks.append(elements[start..<index])
                start = index
                bytes = 0
            }
            bytes += size
        }
        if start < elements.endIndex { chunks.append(elements[start..<elements.endIndex]) }
        return chunks
    }

    /// A set carrying `elements`, ready for NEWSETELEM (`withData`) or DELSETELEM (keys and flags:
    /// an interval set's end element is only found with its INTERVAL_END flag).
    static func elementCarrier(table: String, family: TableFamily, set: String,
                               elements: ArraySlice<SetElement>, withData: Bool) throws -> NftnlSet {
        let s = try reference(table: table, family: family, set: set)
        for element in elements {
            let e = try NftnlSetElement()
            e.set(NFTNL_SET_ELEM_KEY, bytes: element.key)
            if element.isIntervalEnd { e.set(NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END.rawValue) }
            if withData, let verdict = element.verdict {
                e.set(NFTNL_SET_ELEM_VERDICT, UInt32(bitPattern: verdict.code))
                if let chain = verdict.chain { e.set(NFTNL_SET_ELEM_CHAIN, chain) }
            }
            s.add(e)
        }
        return s
    }

    /// Decodes one element; nil for the key-0 interval end nft puts in front of an interval set's
    /// first range (it ends nothing: no range can end before key 0).
    static func decodeElement(_ e: BorrowedSetElement, set: String) throws -> SetElement? {
        let what = "an element of set \(set)"
        let flags = e.u32(NFTNL_SET_ELEM_FLAGS) ?? 0
        guard flags & ~NFT_SET_ELEM_INTERVAL_END.rawValue == 0 else {
            throw NftablesError.unsupported(what, "element flags 0x\(String(flags, radix: 16)) (catch-all...) are not modelled")
        }
        guard let key = e.bytes(NFTNL_SET_ELEM_KEY) else { throw NftablesError.unsupported(what, "no key") }
        if e.isSet(NFTNL_SET_ELEM_KEY_END) { throw NftablesError.unsupported(what, "range keys (key end) are not modelled") }
        if flags & NFT_SET_ELEM_INTERVAL_END.rawValue != 0 {
            if e.isSet(NFTNL_SET_ELEM_VERDICT) { throw NftablesError.unsupported(what, "an interval end with data") }
            return key.allSatisfy { $0 == 0 } ? nil : SetElement(key: key, isIntervalEnd: true)
        }
        guard let code = e.u32(NFTNL_SET_ELEM_VERDICT) else { return SetElement(key: key) }
        guard let verdict = Verdict(code: Int32(bitPattern: code), chain: e.string(NFTNL_SET_ELEM_CHAIN)) else {
            throw NftablesError.unsupported(what, "verdict \(Int32(bitPattern: code)) is not modelled")
        }
        return SetElement(key: key, verdict: verdict)
    }

    static func align4(_ n: Int) -> Int { (n + 3) & ~3 }
}
