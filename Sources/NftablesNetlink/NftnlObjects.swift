// Owners of libnftnl objects. Each libnftnl allocation lives in exactly one of these classes and is
// freed in deinit; objects handed over to a parent (an expression added to a rule, an element to a
// set) give up ownership first. Attribute ids are typed here once, so call sites stay free of casts.
import CNftnl

/// Bytes behind a (pointer, length) pair that libnftnl returned, copied out.
func copyBytes(_ pointer: UnsafeRawPointer?, _ length: UInt32) -> [UInt8] {
    guard let pointer, length > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
}

func copyString(_ pointer: UnsafePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}

final class NftnlTable {
    let pointer: OpaquePointer
    init() throws {
        guard let pointer = nftnl_table_alloc() else { throw NftablesError.outOfMemory("nftnl_table_alloc") }
        self.pointer = pointer
    }
    deinit { nftnl_table_free(pointer) }

    func set(_ attr: nftnl_table_attr, _ value: String) { nftnl_table_set_str(pointer, UInt16(attr.rawValue), value) }
    func set(_ attr: nftnl_table_attr, _ value: UInt32) { nftnl_table_set_u32(pointer, UInt16(attr.rawValue), value) }
    func string(_ attr: nftnl_table_attr) -> String? {
        guard nftnl_table_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        return copyString(nftnl_table_get_str(pointer, UInt16(attr.rawValue)))
    }
    func u32(_ attr: nftnl_table_attr) -> UInt32? {
        guard nftnl_table_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        return nftnl_table_get_u32(pointer, UInt16(attr.rawValue))
    }
}

final class NftnlChain {
    let pointer: OpaquePointer
    init() throws {
        guard let pointer = nftnl_chain_alloc() else { throw NftablesError.outOfMemory("nftnl_chain_alloc") }
        self.pointer = pointer
    }
    deinit { nftnl_chain_free(pointer) }

    func set(_ attr: nftnl_chain_attr, _ value: String) { nftnl_chain_set_str(pointer, UInt16(attr.rawValue), value) }
    func set(_ attr: nftnl_chain_attr, _ value: UInt32) { nftnl_chain_set_u32(pointer, UInt16(attr.rawValue), value) }
    func set(_ attr: nftnl_chain_attr, signed value: Int32) { nftnl_chain_set_s32(pointer, UInt16(attr.rawValue), value) }
    func isSet(_ attr: nftnl_chain_attr) -> Bool { nftnl_chain_is_set(pointer, UInt16(attr.rawValue)) }
    func string(_ attr: nftnl_chain_attr) -> String? {
        guard isSet(attr) else { return nil }
        return copyString(nftnl_chain_get_str(pointer, UInt16(attr.rawValue)))
    }
    func u32(_ attr: nftnl_chain_attr) -> UInt32? {
        guard isSet(attr) else { return nil }
        return nftnl_chain_get_u32(pointer, UInt16(attr.rawValue))
    }
    func s32(_ attr: nftnl_chain_attr) -> Int32? {
        guard isSet(attr) else { return nil }
        return nftnl_chain_get_s32(pointer, UInt16(attr.rawValue))
    }
}

final class NftnlRule {
    let pointer: OpaquePointer
    init() throws {
        guard let pointer = nftnl_rule_alloc() else { throw NftablesError.outOfMemory("nftnl_rule_alloc") }
        self.pointer = pointer
    }
    deinit { nftnl_rule_free(pointer) }

    func set(_ attr: nftnl_rule_attr, _ value: String) { nftnl_rule_set_str(pointer, UInt16(attr.rawValue), value) }
    func set(_ attr: nftnl_rule_attr, _ value: UInt32) { nftnl_rule_set_u32(pointer, UInt16(attr.rawValue), value) }
    func set(_ attr: nftnl_rule_attr, bytes: UnsafeRawBufferPointer) {
        nftnl_rule_set_data(pointer, UInt16(attr.rawValue), bytes.baseAddress, UInt32(bytes.count))
    }
    func string(_ attr: nftnl_rule_attr) -> String? {
        guard nftnl_rule_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        return copyString(nftnl_rule_get_str(pointer, UInt16(attr.rawValue)))
    }
    func u32(_ attr: nftnl_rule_attr) -> UInt32? {
        guard nftnl_rule_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        return nftnl_rule_get_u32(pointer, UInt16(attr.rawValue))
    }
    func bytes(_ attr: nftnl_rule_attr) -> [UInt8]? {
        guard nftnl_rule_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        var length: UInt32 = 0
        return copyBytes(nftnl_rule_get_data(pointer, UInt16(attr.rawValue), &length), length)
    }
    /// Appends `expr`; the rule owns it from now on.
    func add(_ expr: NftnlExpr) { nftnl_rule_add_expr(pointer, expr.transferOwnership()) }

    /// The rule's expressions, borrowed: valid while this rule lives.
    func expressions() -> [OpaquePointer] {
        let collector = PointerCollector()
        _ = nftnl_expr_foreach(pointer, { expr, context in
            guard let expr, let context else { return -1 }
            Unmanaged<PointerCollector>.fromOpaque(context).takeUnretainedValue().items.append(expr)
            return 0
        }, Unmanaged.passUnretained(collector).toOpaque())
        return withExtendedLifetime(collector) { collector.items }
    }
}

/// One expression. Owned until it is added to a rule; after that the rule frees it.
final class NftnlExpr {
    let pointer: OpaquePointer
    private var owned = true

    init(_ name: String) throws {
        guard let pointer = nftnl_expr_alloc(name) else { throw NftablesError.outOfMemory("nftnl_expr_alloc(\(name))") }
        self.pointer = pointer
    }
    deinit { if owned { nftnl_expr_free(pointer) } }

    func transferOwnership() -> OpaquePointer {
        owned = false
        return pointer
    }

    func set(_ attr: Int, _ value: UInt32) { nftnl_expr_set_u32(pointer, UInt16(attr), value) }
    func set(_ attr: Int, u16 value: UInt16) { nftnl_expr_set_u16(pointer, UInt16(attr), value) }
    func set(_ attr: Int, _ value: String) { nftnl_expr_set_str(pointer, UInt16(attr), value) }
    func set(_ attr: Int, bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            _ = nftnl_expr_set(pointer, UInt16(attr), buffer.baseAddress, UInt32(buffer.count))
        }
    }
}

/// Read access to an expression owned by someone else (a rule being decoded).
struct BorrowedExpr {
    let pointer: OpaquePointer

    var name: String { copyString(nftnl_expr_get_str(pointer, UInt16(NFTNL_EXPR_NAME))) ?? "" }
    func isSet(_ attr: Int) -> Bool { nftnl_expr_is_set(pointer, UInt16(attr)) }
    func u32(_ attr: Int) -> UInt32? { isSet(attr) ? nftnl_expr_get_u32(pointer, UInt16(attr)) : nil }
    func u16(_ attr: Int) -> UInt16? { isSet(attr) ? nftnl_expr_get_u16(pointer, UInt16(attr)) : nil }
    func string(_ attr: Int) -> String? { isSet(attr) ? copyString(nftnl_expr_get_str(pointer, UInt16(attr))) : nil }
    func bytes(_ attr: Int) -> [UInt8]? {
        guard isSet(attr) else { return nil }
        var length: UInt32 = 0
        return copyBytes(nftnl_expr_get(pointer, UInt16(attr), &length), length)
    }
}

final class NftnlSet {
    let pointer: OpaquePointer
    init() throws {
        guard let pointer = nftnl_set_alloc() else { throw NftablesError.outOfMemory("nftnl_set_alloc") }
        self.pointer = pointer
    }
    deinit { nftnl_set_free(pointer) }

    func set(_ attr: nftnl_set_attr, _ value: String) { nftnl_set_set_str(pointer, UInt16(attr.rawValue), value) }
    func set(_ attr: nftnl_set_attr, _ value: UInt32) { nftnl_set_set_u32(pointer, UInt16(attr.rawValue), value) }
    func set(_ attr: nftnl_set_attr, bytes: UnsafeRawBufferPointer) {
        nftnl_set_set_data(pointer, UInt16(attr.rawValue), bytes.baseAddress, UInt32(bytes.count))
    }
    func string(_ attr: nftnl_set_attr) -> String? {
        guard nftnl_set_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        return copyString(nftnl_set_get_str(pointer, UInt16(attr.rawValue)))
    }
    func u32(_ attr: nftnl_set_attr) -> UInt32? {
        guard nftnl_set_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        return nftnl_set_get_u32(pointer, UInt16(attr.rawValue))
    }
    func bytes(_ attr: nftnl_set_attr) -> [UInt8]? {
        guard nftnl_set_is_set(pointer, UInt16(attr.rawValue)) else { return nil }
        var length: UInt32 = 0
        return copyBytes(nftnl_set_get_data(pointer, UInt16(attr.rawValue), &length), length)
    }
    /// Adds `element`; the set owns it from now on.
    func add(_ element: NftnlSetElement) { nftnl_set_elem_add(pointer, element.transferOwnership()) }

    /// The set's elements, borrowed: valid while this set lives.
    func elements() -> [OpaquePointer] {
        let collector = PointerCollector()
        _ = nftnl_set_elem_foreach(pointer, { element, context in
            guard let element, let context else { return -1 }
            Unmanaged<PointerCollector>.fromOpaque(context).takeUnretainedValue().items.append(element)
            return 0
        }, Unmanaged.passUnretained(collector).toOpaque())
        return withExtendedLifetime(collector) { collector.items }
    }
}

/// One set element. Owned until it is added to a set.
final class NftnlSetElement {
    let pointer: OpaquePointer
    private var owned = true

    init() throws {
        guard let pointer = nftnl_set_elem_alloc() else { throw NftablesError.outOfMemory("nftnl_set_elem_alloc") }
        self.pointer = pointer
    }
    deinit { if owned { nftnl_set_elem_free(pointer) } }

    func transferOwnership() -> OpaquePointer {
        owned = false
        return pointer
    }

    func set(_ attr: Int, _ value: UInt32) { nftnl_set_elem_set_u32(pointer, UInt16(attr), value) }
    func set(_ attr: Int, _ value: String) { nftnl_set_elem_set_str(pointer, UInt16(attr), value) }
    func set(_ attr: Int, bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            _ = nftnl_set_elem_set(pointer, UInt16(attr), buffer.baseAddress, UInt32(buffer.count))
        }
    }
}

/// Read access to an element owned by a set being decoded.
struct BorrowedSetElement {
    let pointer: OpaquePointer

    func isSet(_ attr: Int) -> Bool { nftnl_set_elem_is_set(pointer, UInt16(attr)) }
    func u32(_ attr: Int) -> UInt32? { isSet(attr) ? nftnl_set_elem_get_u32(pointer, UInt16(attr)) : nil }
    func string(_ attr: Int) -> String? { isSet(attr) ? copyString(nftnl_set_elem_get_str(pointer, UInt16(attr))) : nil }
    func bytes(_ attr: Int) -> [UInt8]? {
        guard isSet(attr) else { return nil }
        var length: UInt32 = 0
        return copyBytes(nftnl_set_elem_get(pointer, UInt16(attr), &length), length)
    }
}

final class NftnlGeneration {
    let pointer: OpaquePointer
    init() throws {
        guard let pointer = nftnl_gen_alloc() else { throw NftablesError.outOfMemory("nftnl_gen_alloc") }
        self.pointer = pointer
    }
    deinit { nftnl_gen_free(pointer) }

    var id: UInt32? {
        guard nftnl_gen_is_set(pointer, UInt16(NFTNL_GEN_ID)) else { return nil }
        return nftnl_gen_get_u32(pointer, UInt16(NFTNL_GEN_ID))
    }
}

/// A userdata TLV buffer (rule comments, set byte orders).
final class NftnlUserdata {
    let pointer: OpaquePointer
    init(capacity: UInt32 = UInt32(NFT_USERDATA_MAXLEN)) throws {
        guard let pointer = nftnl_udata_buf_alloc(capacity) else { throw NftablesError.outOfMemory("nftnl_udata_buf_alloc") }
        self.pointer = pointer
    }
    deinit { nftnl_udata_buf_free(pointer) }

    func put(_ type: UInt32, string: String) -> Bool { nftnl_udata_put_strz(pointer, UInt8(truncatingIfNeeded: type), string) }
    func put(_ type: UInt32, u32 value: UInt32) -> Bool { nftnl_udata_put_u32(pointer, UInt8(truncatingIfNeeded: type), value) }

    /// The encoded TLVs, for `*_set_data(..._USERDATA, ...)`.
    func withBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        body(UnsafeRawBufferPointer(start: nftnl_udata_buf_data(pointer), count: Int(nftnl_udata_buf_len(pointer))))
    }

    /// The TLVs of a userdata blob (u8 type, u8 length, value), as (type, value) pairs. Walked in
    /// Swift with bounds checks rather than nftnl_udata_parse, which trusts the lengths it reads:
    /// another program may have written this blob. A truncated trailing TLV ends the walk.
    static func parse(_ bytes: [UInt8]) -> [(type: UInt8, value: [UInt8])] {
        var items: [(type: UInt8, value: [UInt8])] = []
        var offset = 0
        while offset + 2 <= bytes.count {
            let type = bytes[offset], length = Int(bytes[offset + 1])
            let start = offset + 2
            guard start + length <= bytes.count else { break }
            items.append((type, Array(bytes[start..<start + length])))
            offset = start + length
        }
        return items
    }
}

/// Context box for libnftnl's foreach callbacks, passed as `void *data` via Unmanaged.
final class PointerCollector { var items: [OpaquePointer] = [] }
