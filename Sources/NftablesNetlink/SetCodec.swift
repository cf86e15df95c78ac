// NftSet <-> libnftnl set, and set elements <-> libnftnl elements.
// A set carries nft's datatype id and key length; a verdict map also NFT_SET_MAP and data type
// NFT_DATA_VERDICT. The userdata TLVs with the key (and data) byte order let `nft list` print
// ifname keys as names and addresses as addresses.
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
        var ok = userdata.put(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue, u32: set.keyType.byteOrder)
        if let dataType = set.dataType {
            s.set(NFTNL_SET_FLAGS, NFT_SET_MAP.rawValue)
            s.set(NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT.rawValue)
            s.set(NFTNL_SET_DATA_LEN, dataType.keyLength)
            // Verdict data has no byte order: nft writes 0 (its BYTEORDER_INVALID), and its listing
            // asserts (netlink_delinearize_setelem) if a verdict map claims host byte order (1).
            ok = ok && userdata.put(NFTNL_UDATA_SET_DATABYTEORDER.rawValue, u32: dataType.byteOrder)
        } else {
            s.set(NFTNL_SET_FLAGS, 0)
        }
        guard ok else { throw NftablesError.outOfMemory("nftnl_udata_put_u32") }
        userdata.withBytes { s.set(NFTNL_SET_USERDATA, bytes: $0) }
        return s
    }

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
        guard flags & ~NFT_SET_MAP.rawValue == 0 else {
            throw NftablesError.unsupported(what, "set flags 0x\(String(flags, radix: 16)) (interval, anonymous, timeout...) are not modelled")
        }
        let rawKeyType = s.u32(NFTNL_SET_KEY_TYPE) ?? 0
        guard let keyType = SetDataType(nftTypeId: rawKeyType), keyType != .verdict else {
            throw NftablesError.unsupported(what, "key type \(rawKeyType) is not modelled")
        }
        if let keyLength = s.u32(NFTNL_SET_KEY_LEN), keyLength != keyType.keyLength {
            throw NftablesError.unsupported(what, "key length \(keyLength) does not match \(keyType.rawValue)")
        }
        var dataType: SetDataType?
        if flags & NFT_SET_MAP.rawValue != 0 {
            let rawDataType = s.u32(NFTNL_SET_DATA_TYPE) ?? 0
            guard rawDataType == NFT_DATA_VERDICT.rawValue else {
                throw NftablesError.unsupported(what, "maps to data type 0x\(String(rawDataType, radix: 16)) are not modelled")
            }
            dataType = .verdict
        }
        return NftSet(name: name, keyType: keyType, dataType: dataType)
    }

    // MARK: Elements

    /// Budget for the element list of one message: the list is a netlink nest, and nla_len is a u16.
    static let elementBytesPerMessage = 60_000

    /// An upper bound of the element's size inside NFTA_SET_ELEM_LIST_ELEMENTS.
    static func encodedSize(_ element: SetElement) -> Int {
        var size = 4 + 4 + 4 + align4(element.key.count)          // element nest, key nest, value
        if let verdict = element.verdict {
            size += 4 + 4 + 8                                      // data nest, verdict nest, code
            if let chain = verdict.chain { size += 4 + align4(chain.utf8.count + 1) }
        }
        return size
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

    /// A set carrying `elements`, ready for NEWSETELEM (`withData`) or DELSETELEM (keys only).
    static func elementCarrier(table: String, family: TableFamily, set: String,
                               elements: ArraySlice<SetElement>, withData: Bool) throws -> NftnlSet {
        let s = try reference(table: table, family: family, set: set)
        for element in elements {
            let e = try NftnlSetElement()
            e.set(NFTNL_SET_ELEM_KEY, bytes: element.key)
            if withData, let verdict = element.verdict {
                e.set(NFTNL_SET_ELEM_VERDICT, UInt32(bitPattern: verdict.code))
                if let chain = verdict.chain { e.set(NFTNL_SET_ELEM_CHAIN, chain) }
            }
            s.add(e)
        }
        return s
    }

    static func decodeElement(_ e: BorrowedSetElement, set: String) throws -> SetElement {
        let what = "an element of set \(set)"
        if let flags = e.u32(NFTNL_SET_ELEM_FLAGS), flags != 0 {
            throw NftablesError.unsupported(what, "element flags 0x\(String(flags, radix: 16)) are not modelled")
        }
        guard let key = e.bytes(NFTNL_SET_ELEM_KEY) else { throw NftablesError.unsupported(what, "no key") }
        guard let code = e.u32(NFTNL_SET_ELEM_VERDICT) else { return SetElement(key: key) }
        guard let verdict = Verdict(code: Int32(bitPattern: code), chain: e.string(NFTNL_SET_ELEM_CHAIN)) else {
            throw NftablesError.unsupported(what, "verdict \(Int32(bitPattern: code)) is not modelled")
        }
        return SetElement(key: key, verdict: verdict)
    }

    static func align4(_ n: Int) -> Int { (n + 3) & ~3 }
}
