// net.netfilter.nf_conntrack_acct: whether new conntrack entries count packets and bytes per
// direction, which conntrack events then carry (CTA_COUNTERS_ORIG/REPLY). The sysctl is per
// network namespace, and /proc/sys/net shows the namespace of the thread that opens the file, so
// the file is opened from a thread that entered the target namespace (NetworkNamespace.run) and
// nothing else of the process moves.
//
// The setting applies to entries created after it; existing entries stay without counters.
import CNftnl
import Glibc

public enum ConntrackAccounting {
    static let path = "/proc/sys/net/netfilter/nf_conntrack_acct"

    /// Sets net.netfilter.nf_conntrack_acct=1 in the network namespace at `netnsPath` (e.g.
    /// /var/run/netns/NAME), or in the process's own namespace when nil: the agent calls it for the
    /// node's namespace only.
    public static func enable(netnsPath: String? = nil) throws {
        try NamespacedSysctl.write(path, value: "1", netnsPath: netnsPath)
    }

    /// Whether accounting is on in that namespace.
    public static func isEnabled(netnsPath: String? = nil) throws -> Bool {
        try NamespacedSysctl.read(path, netnsPath: netnsPath) == "1"
    }
}

/// Reading and writing /proc/sys/net files of one network namespace.
enum NamespacedSysctl {
    static func write(_ path: String, value: String, netnsPath: String?) throws {
        try inNamespace(netnsPath) {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw openError(path) }
            defer { close(fd) }
            let bytes = Array((value + "\n").utf8)
            var written: Int
            repeat { written = Glibc.write(fd, bytes, bytes.count) } while written < 0 && palisadeErrno() == EINTR
            guard written == bytes.count else { throw NftablesError.system("write(\(path), \(value))") }
        }
    }

    static func read(_ path: String, netnsPath: String?) throws -> String {
        try inNamespace(netnsPath) {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw openError(path) }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 256)
            var count: Int
            repeat { count = Glibc.read(fd, &buffer, buffer.count) } while count < 0 && palisadeErrno() == EINTR
            guard count >= 0 else { throw NftablesError.system("read(\(path))") }
            var text = Substring(String(decoding: buffer[..<count], as: UTF8.self))
            while text.last?.isNewline == true { text.removeLast() }
            return String(text)
        }
    }

    private static func inNamespace<T>(_ netnsPath: String?, _ body: () throws -> T) throws -> T {
        guard let netnsPath else { return try body() }
        return try NetworkNamespace.run(in: netnsPath, body)
    }

    private static func openError(_ path: String) -> NftablesError {
        let code = palisadeErrno()
        return NftablesError.system("open(\(path))", code: code,
                                    detail: code == ENOENT ? "the nf_conntrack module is not loaded (load it, or install a rule that uses ct)" : nil)
    }
}
