#if canImport(Glibc)
import Glibc
#endif

/// glibc's malloc knobs that the agent's resident size depends on, looked up at run time (no Swift
/// module exports malloc.h); without glibc they do nothing.
public enum Malloc {
    /// mallopt's M_ARENA_MAX (malloc.h).
    private static let arenaMaxParameter: Int32 = -8

    private static let mallopt: (@convention(c) (Int32, Int32) -> Int32)? = symbol("mallopt")
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = symbol("malloc_trim")

    private static func symbol<T>(_ name: String) -> T? {
        #if canImport(Glibc)
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(address, to: T.self)
        #else
        return nil
        #endif
    }

    /// At most `count` arenas. By default glibc gives threads their own arenas (up to eight per
    /// core), and a control request that reads the table back leaves its thread's arena holding
    /// megabytes of freed pages; the agent's threads do not contend enough to need more than two.
    /// Call before the threads start.
    public static func limitArenas(_ count: Int32) {
        _ = mallopt?(arenaMaxParameter, count)
    }

    /// Hands the free pages of every arena back to the kernel (malloc_trim(0)).
    public static func trim() {
        _ = mallocTrim?(0)
    }
}
