// The kernel's answers to one batch: an NLMSG_ERROR per message (error 0 is an ack), matched to
// the batch's messages by sequence number, and turned into the one error commit() throws.
import CNftnl
import Glibc
import NftablesModel

/// The kernel's answers to one batch, filled from NLMSG_ERROR messages (error 0 is an ack).
final class BatchAnswers: AcknowledgementRecorder {
    struct KernelError {
        let sequence: UInt32
        let code: Int32
        let message: String?
    }

    let batch: Batch
    private var answered: [Bool]
    private(set) var answeredCount = 0
    private(set) var errors: [KernelError] = []
    var lostAnswers = false

    init(batch: Batch) {
        self.batch = batch
        answered = [Bool](repeating: false, count: batch.messageCount)
    }

    var isComplete: Bool { answeredCount == batch.messageCount }

    func record(_ header: UnsafePointer<nlmsghdr>) {
        let payloadLength = Int(header.pointee.nlmsg_len) - MemoryLayout<nlmsghdr>.size
        guard payloadLength >= MemoryLayout<nlmsgerr>.size else { return }
        let payload = UnsafeRawPointer(header) + MemoryLayout<nlmsghdr>.size
        let answer = payload.loadUnaligned(as: nlmsgerr.self)
        let sequence = header.pointee.nlmsg_seq
        if let index = batch.messageIndex(forSequence: sequence), !answered[index] {
            answered[index] = true
            answeredCount += 1
        }
        if answer.error != 0 {
            errors.append(KernelError(sequence: sequence, code: -answer.error,
                                      message: Self.extendedAckMessage(header, answer: answer)))
        }
    }

    /// The kernel's explanation (NLMSGERR_ATTR_MSG), when the socket asked for extended acks.
    static func extendedAckMessage(_ header: UnsafePointer<nlmsghdr>, answer: nlmsgerr) -> String? {
        let flags = Int32(header.pointee.nlmsg_flags)
        guard flags & Int32(NLM_F_ACK_TLVS) != 0 else { return nil }
        var offset = MemoryLayout<nlmsgerr>.size
        if flags & Int32(NLM_F_CAPPED) == 0 {
            offset += Int(answer.msg.nlmsg_len) - MemoryLayout<nlmsghdr>.size
        }
        let total = Int(header.pointee.nlmsg_len) - MemoryLayout<nlmsghdr>.size
        guard offset < total, let start = mnl_nlmsg_get_payload_offset(header, offset) else { return nil }
        var remaining = Int32(total - offset)
        var attribute: UnsafeMutablePointer<nlattr>? = start.assumingMemoryBound(to: nlattr.self)
        while let current = attribute, mnl_attr_ok(current, remaining) {
            if mnl_attr_get_type(current) == UInt16(NLMSGERR_ATTR_MSG.rawValue), let text = mnl_attr_get_str(current) {
                let message = String(cString: text).trimmingTrailingWhitespace
                return message.isEmpty ? nil : message
            }
            remaining -= Int32((Int(current.pointee.nla_len) + 3) & ~3)
            attribute = mnl_attr_next(current)
        }
        return nil
    }

    /// The error to throw for this batch, nil when every message was acknowledged.
    func verdict(batch: Batch, changes: [Change]) -> NftablesError? {
        let located = errors.map { (error: $0, change: batch.change(forSequence: $0.sequence)) }
        if let first = located.first(where: { $0.change != nil }), let index = first.change {
            var detail = "the batch was rolled back, nothing changed"
            if let message = first.error.message { detail = "\(message); " + detail }
            let others = located.count - 1
            if others > 0 {
                let names = located.dropFirst().prefix(3).map { entry -> String in
                    let name = NftablesError.errnoName(entry.error.code)
                    return entry.change.map { "#\($0) \(name)" } ?? name
                }
                detail += "; \(others) more error(s): " + names.joined(separator: ", ") + (others > 3 ? ", ..." : "")
            }
            return NftablesError(kind: .rejected, operation: changes[index].summary, changeIndex: index,
                                 code: first.error.code, detail: detail)
        }
        if let first = located.first {
            // An error on BATCH_BEGIN/END: the kernel refused the transaction as a whole.
            return NftablesError(kind: .rejected, operation: "commit of \(changes.count) changes", code: first.error.code,
                                 detail: (first.error.message.map { $0 + "; " } ?? "") + "the batch was rolled back, nothing changed")
        }
        if lostAnswers {
            return NftablesError(kind: .protocolViolation, operation: "reading the batch's answers", code: ENOBUFS,
                                 detail: "the kernel dropped acknowledgements (receive buffer full); the batch may or may not have been applied: read the table back")
        }
        if !isComplete {
            return NftablesError(kind: .protocolViolation, operation: "reading the batch's answers",
                                 detail: "the kernel answered \(answeredCount) of \(batch.messageCount) messages; the batch's outcome is unknown: read the table back")
        }
        return nil
    }
}

extension String {
    var trimmingTrailingWhitespace: String {
        var text = self
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
