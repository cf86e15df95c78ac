import Glibc

/// A thread of its own that waits on one socket, with a self-pipe so that `stop()` wakes it: what
/// TableMonitor and the event readers share.
final class SocketThread {
    /// The self-pipe: [read end, write end].
    private let wakeup: [Int32]
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var thread: pthread_t?
    private var stopped = false

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw NftablesError.system("pipe") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wakeup = fds
        lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        stop()
        close(wakeup[0])
        close(wakeup[1])
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Runs `body` on the thread. Calling it again, or after `stop()`, does nothing.
    func start(_ body: @escaping () -> Void) throws {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        guard thread == nil, !stopped else { return }
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { context in
            guard let context else { return nil }
            Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw NftablesError.system("pthread_create", code: result)
        }
        thread = handle
    }

    /// Ends the thread and waits for it (unless called from the thread itself, which then finishes
    /// on its own). Idempotent.
    func stop() {
        pthread_mutex_lock(lock)
        let wasStopped = stopped
        stopped = true
        let running = thread
        thread = nil
        pthread_mutex_unlock(lock)
        guard !wasStopped else { return }
        var byte: UInt8 = 1
        _ = write(wakeup[1], &byte, 1)
        if let running {
            if pthread_equal(running, pthread_self()) != 0 {
                pthread_detach(running)
            } else {
                pthread_join(running, nil)
            }
        }
    }

    var isStopped: Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return stopped
    }

    enum Wake { case readable, stopped, timeout, failed }

    /// Rests `milliseconds` unless `stop()` is called first (.stopped) or the rest is cut short by
    /// a signal (.failed: rest again if it matters).
    func pause(milliseconds: Int32) -> Wake {
        var descriptor = pollfd(fd: wakeup[0], events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        if descriptor.revents != 0 || isStopped { return .stopped }
        return ready < 0 ? .failed : .timeout
    }

    /// Waits until `fd` can be read, `stop()` is called, or `timeoutMilliseconds` pass (-1: no limit).
    func wait(for fd: Int32, timeoutMilliseconds: Int32 = -1) -> Wake {
        while true {
            var descriptors = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: wakeup[0], events: Int16(POLLIN), revents: 0)]
            let ready = poll(&descriptors, 2, timeoutMilliseconds)
            if ready < 0 {
                if palisadeErrno() == EINTR { continue }
                return .failed
            }
            if descriptors[1].revents != 0 || isStopped { return .stopped }
            return ready == 0 ? .timeout : .readable
        }
    }
}
