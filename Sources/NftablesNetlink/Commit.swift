// commit(): one transaction, NFNL_MSG_BATCH_BEGIN ... END in a single sendmsg, every message
// with NLM_F_ACK. nfnetlink processes the batch synchronously inside sendmsg and queues one answer
// per message (an ack, or an error), so by the time sendmsg returns every answer is waiting in the
// socket. Answers are matched to Changes by sequence number; any error means the kernel aborted
// the whole batch and nothing changed.
import CNftnl
import Glibc
import NftablesModel

extension NftablesConnection {
    /// Room one answer takes in the socket's receive buffer (skb overhead of a capped ack, generously).
    static let receiveBytesPerAnswer = 1024

    /// Sends the changes as one transaction and reads the kernel's answer to every message.
    /// Throws `NftablesError` `.rejected` naming the first Change the kernel refused; the kernel then
    /// holds exactly what it held before. `.invalidChange` errors are found before anything is sent.
    /// Empty `changes` (or only empty element lists) is a no-op.
    public func commit(_ changes: [Change]) throws {
        guard !changes.isEmpty else { return }
        let batch = try Batch(firstSequence: peekSequence())
        try batch.begin()
        try ChangeEncoder.encode(changes, into: batch)
        guard batch.messageCount > 0 else { return }
        try batch.end()
        consumeSequences(through: batch.endSequence)

        socket.discardPending(using: receiveBuffer)
        // netlink refuses a datagram larger than the send buffer with EMSGSIZE; answers that do not
        // fit in the receive buffer are dropped (ENOBUFS).
        socket.growBuffer(send: true, to: batch.length + 4096)
        socket.growBuffer(send: false, to: batch.messageCount * Self.receiveBytesPerAnswer + 256 * 1024)
        try socket.send(batch.bytes, what: "nf_tables batch of \(batch.messageCount) messages")

        let answers = try collectAnswers(to: batch)
        if let error = answers.verdict(batch: batch, changes: changes) { throw error }
    }

    private func collectAnswers(to batch: Batch) throws -> BatchAnswers {
        let answers = BatchAnswers(batch: batch)
        // All answers are queued before sendmsg returns; still, allow one moment for stragglers.
        try socket.readAcknowledgements(into: receiveBuffer, recorder: answers, what: "the batch's answers",
                                        waitMilliseconds: 1000, maxWaits: 1) {
            answers.isComplete || !answers.errors.isEmpty
        }
        return answers
    }
}
