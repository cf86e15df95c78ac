// A hand-off between a kernel reader's thread and whoever consumes its records, of bounded size:
// when the consumer falls behind, what does not fit is dropped and counted rather than kept, so a
// flood of log messages never grows the agent's memory.
import Glibc

/// A thread-safe FIFO of at most `capacity` elements. `offer` never blocks: elements beyond the
/// capacity are dropped (the newest ones, those being offered) and counted in `dropped`.
public final class BoundedQueue<Element>: @unchecked Sendable {
    public let capacity: Int
    private var elements: [Element] = []
    /// Index of the first element not yet taken; the taken prefix is removed in bulk.
    private var head = 0
    private var droppedCount = 0
    private var closed = false
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let nonEmpty: UnsafeMutablePointer<pthread_cond_t>

    public init(capacity: Int) {
        precondition(capacity > 0, "a BoundedQueue needs room for at least one element")
        self.capacity = capacity
        lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        nonEmpty = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(nonEmpty, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(nonEmpty)
        nonEmpty.deallocate()
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Appends what fits; returns how many of `newElements` were dropped.
    @discardableResult
    public func offer<S: Sequence>(_ newElements: S) -> Int where S.Element == Element {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        var dropped = 0
        for element in newElements {
            if elements.count - head < capacity && !closed {
                elements.append(element)
            } else {
                dropped += 1
            }
        }
        droppedCount += dropped
        if elements.count > head { pthread_cond_broadcast(nonEmpty) }
        return dropped
    }

    /// Takes up to `maximum` elements, oldest first. Waits up to `timeoutMilliseconds` (nil: until
    /// something arrives or the queue is closed) when the queue is empty; returns [] on timeout.
    public func take(maximum: Int = .max, timeoutMilliseconds: Int? = nil) -> [Element] {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if elements.count == head, !closed, timeoutMilliseconds != 0 {
            var deadline = timespec()
            if let timeoutMilliseconds {
                clock_gettime(CLOCK_MONOTONIC, &deadline)
                let nanoseconds = Int(deadline.tv_nsec) + (timeoutMilliseconds % 1000) * 1_000_000
                deadline.tv_sec += timeoutMilliseconds / 1000 + nanoseconds / 1_000_000_000
                deadline.tv_nsec = nanoseconds % 1_000_000_000
            }
            while elements.count == head, !closed {
                if timeoutMilliseconds == nil {
                    pthread_cond_wait(nonEmpty, lock)
                } else if pthread_cond_timedwait(nonEmpty, lock, &deadline) == ETIMEDOUT {
                    break
                }
            }
        }
        let end = head + min(maximum, elements.count - head)
        let taken = Array(elements[head..<end])
        head = end
        if head == elements.count {
            elements.removeAll(keepingCapacity: elements.capacity <= 4 * capacity)
            head = 0
        } else if head >= capacity {
            elements.removeFirst(head)
            head = 0
        }
        return taken
    }

    /// Wakes every waiting `take`; from now on `offer` drops everything and `take` returns what is
    /// left without waiting.
    public func close() {
        pthread_mutex_lock(lock)
        closed = true
        pthread_cond_broadcast(nonEmpty)
        pthread_mutex_unlock(lock)
    }

    /// Elements waiting to be taken.
    public var count: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return elements.count - head
    }

    /// Elements dropped because the queue was full (or closed), since it was created.
    public var dropped: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return droppedCount
    }
}
