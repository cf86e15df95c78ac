// Errors of the kernel side: what failed (the Change, as `Change.summary`, or the system call),
// the errno with its text, and what it means for the kernel state.
import Glibc
import NftablesModel

public struct NftablesError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The kernel rejected an operation of a batch. The batch was rolled back: nothing changed.
        case rejected
        /// A change cannot be encoded (bad name, key length, ...). Nothing was sent.
        case invalidChange
        /// A socket or system call failed.
        case system
        /// The kernel holds something the model cannot represent (a foreign expression, set flag...).
        case unsupported
        /// The kernel's answer was incomplete or not understood; the batch's outcome is unknown.
        case protocolViolation
    }

    public let kind: Kind
    /// The operation: a `Change.summary`, or a system call such as `sendmsg`.
    public let operation: String
    /// For `.rejected` and `.invalidChange`: the index of the change in the committed list.
    public let changeIndex: Int?
    /// The errno (the kernel's error code for `.rejected`), 0 when none applies.
    public let code: Int32
    /// Anything else worth saying: the kernel's extended-ack text, or what to do.
    public let detail: String?

    public init(kind: Kind, operation: String, changeIndex: Int? = nil, code: Int32 = 0, detail: String? = nil) {
        self.kind = kind
        self.operation = operation
        self.changeIndex = changeIndex
        self.code = code
        self.detail = detail
    }

    /// strerror(3) text of `code`.
    public var errnoText: String { code == 0 ? "" : String(cString: strerror(code)) }

    public var description: String {
        var text: String
        switch kind {
        case .rejected:
            text = "nftables: kernel rejected \(quotedOperation)"
        case .invalidChange:
            text = "nftables: cannot encode \(quotedOperation)"
        case .system:
            text = "nftables: \(operation) failed"
        case .unsupported:
            text = "nftables: cannot read \(operation)"
        case .protocolViolation:
            text = "nftables: \(operation)"
        }
        if code != 0 { text += ": \(errnoText) (\(NftablesError.errnoName(code)))" }
        if let detail { text += (code != 0 ? "; " : ": ") + detail }
        return text
    }

    private var quotedOperation: String {
        guard let changeIndex else { return "(\(operation))" }
        return "change #\(changeIndex) (\(operation))"
    }

    /// The symbolic name of the errnos nf_tables commonly answers with.
    static func errnoName(_ code: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", E2BIG: "E2BIG", EBADF: "EBADF",
            EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST",
            EINVAL: "EINVAL", ENOSPC: "ENOSPC", ERANGE: "ERANGE", ELOOP: "ELOOP", EMLINK: "EMLINK",
            EMSGSIZE: "EMSGSIZE", EOPNOTSUPP: "EOPNOTSUPP", ENOBUFS: "ENOBUFS", ENOTDIR: "ENOTDIR",
            EOVERFLOW: "EOVERFLOW", ENFILE: "ENFILE", EMFILE: "EMFILE", EPROTO: "EPROTO",
            ENAMETOOLONG: "ENAMETOOLONG", EPROTONOSUPPORT: "EPROTONOSUPPORT",
        ]
        return names[code] ?? "errno \(code)"
    }

    // MARK: Constructors used across the module

    static func system(_ call: String, code: Int32 = palisadeErrno(), detail: String? = nil) -> NftablesError {
        NftablesError(kind: .system, operation: call, code: code, detail: detail)
    }

    static func invalid(_ change: Change, index: Int, _ detail: String) -> NftablesError {
        NftablesError(kind: .invalidChange, operation: change.summary, changeIndex: index, detail: detail)
    }

    static func unsupported(_ what: String, _ detail: String) -> NftablesError {
        NftablesError(kind: .unsupported, operation: what, detail: detail)
    }

    static func outOfMemory(_ call: String) -> NftablesError {
        NftablesError(kind: .system, operation: call, code: ENOMEM)
    }
}

/// The calling thread's errno (Glibc's `errno` accessor is not usable from every context).
func palisadeErrno() -> Int32 { Glibc.errno }
