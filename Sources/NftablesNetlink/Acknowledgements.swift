// Reading the kernel's NLMSG_ERROR answers (error 0 is an ack) to messages already sent: shared by
// nf_tables batches and conntrack deletes, each with its own way of matching answers to requests.
import CNftnl
import Glibc

/// Collects the answers to the messages of one send.
protocol AcknowledgementRecorder: AnyObject {
    func record(_ header: UnsafePointer<nlmsghdr>)
    /// The kernel dropped answers (ENOBUFS): the outcome of some messages is unknown.
    var lostAnswers: Bool { get set }
}

extension NetlinkSocket {
    /// Feeds every queued answer to `recorder`. When nothing more is queued it stops if
    /// `finished()` holds or answers were lost; otherwise it waits up to `waitMilliseconds` for
    /// more, at most `maxWaits` times (nil: as long as answers keep coming).
    func readAcknowledgements(into buffer: UnsafeMutableRawBufferPointer, recorder: AcknowledgementRecorder,
                              what: String, waitMilliseconds: Int32, maxWaits: Int?,
                              finished: () -> Bool) throws {
        var controlCallbacks = [mnl_cb_t?](repeating: nil, count: Int(NLMSG_MIN_TYPE))
        controlCallbacks[Int(NLMSG_ERROR)] = { header, context in
            guard let header, let context else { return MNL_CB_ERROR }
            Unmanaged<AcknowledgementBox>.fromOpaque(context).takeUnretainedValue().recorder.record(header)
            return MNL_CB_OK
        }
        let box = AcknowledgementBox(recorder)
        let context = Unmanaged.passUnretained(box).toOpaque()
        var waits = 0
        try withExtendedLifetime(box) {
            while true {
                let received: Received
                do {
                    received = try receive(into: buffer, wait: false)
                } catch let error as NftablesError where error.code == ENOBUFS {
                    recorder.lostAnswers = true   // the kernel dropped answers; keep reading the rest
                    continue
                }
                switch received {
                case .bytes(let count):
                    let result = controlCallbacks.withUnsafeMutableBufferPointer { callbacks in
                        mnl_cb_run2(buffer.baseAddress, count, 0, portID, nil, context,
                                    callbacks.baseAddress, UInt32(callbacks.count))
                    }
                    if result == MNL_CB_ERROR {
                        throw NftablesError(kind: .protocolViolation, operation: "reading \(what)",
                                            code: palisadeErrno(), detail: "malformed netlink answer; the outcome is unknown")
                    }
                case .wouldBlock:
                    if finished() || recorder.lostAnswers { return }
                    if let maxWaits, waits >= maxWaits { return }
                    waits += 1
                    guard try waitReadable(milliseconds: waitMilliseconds) else { return }
                }
            }
        }
    }
}

/// Carries the recorder through libmnl's `void *data` (a protocol existential is not a class).
private final class AcknowledgementBox {
    let recorder: AcknowledgementRecorder
    init(_ recorder: AcknowledgementRecorder) { self.recorder = recorder }
}
