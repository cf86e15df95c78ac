// Creating a socket inside another network namespace without moving the process: the calling
// thread enters the target namespace, the body runs, and the thread returns to where it was,
// also when the body throws. A socket keeps the namespace it was created in.
import CNftnl
import Glibc

enum NetworkNamespace {
    static func run<T>(in path: String, _ body: () throws -> T) throws -> T {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { throw NftablesError.system("open(/proc/thread-self/ns/net)") }
        defer { close(original) }
        let target = open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else {
            throw NftablesError.system("open(\(path))", detail: "not a network namespace file (e.g. /var/run/netns/NAME)")
        }
        defer { close(target) }

        guard palisade_setns_net(target) == 0 else { throw NftablesError.system("setns(\(path))") }
        let result: Result<T, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        guard palisade_setns_net(original) == 0 else {
            throw NftablesError.system("setns back to the original network namespace",
                                       detail: "this thread is left in \(path)")
        }
        return try result.get()
    }
}
