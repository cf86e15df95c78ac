import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The directory the agent watches, written the way a careful tool writes it: each file is
/// written beside its destination under a dot name (which the agent ignores) and renamed
/// into place, so the agent never sees half a file.
struct StateDirectory {
    let url: URL

    init(url: URL) throws {
        self.url = url
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ relative: String) -> URL { url.appendingPathComponent(relative) }

    func write(_ relative: String, _ contents: String) throws {
        let destination = path(relative)
        let directory = destination.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(destination.lastPathComponent).tmp")
        try contents.write(to: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary.path, destination.path) == 0 else {
            throw CommandError(description: "rename \(temporary.path) → \(destination.path): errno \(errno)")
        }
    }

    func remove(_ relative: String) throws {
        try FileManager.default.removeItem(at: path(relative))
    }
}

/// Kubernetes-shaped YAML for the objects the tests put into the state directory.
enum Manifest {
    static func namespace(_ name: String, labels: [String: String], defaultPolicy: String? = nil) -> String {
        var text = """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: \(name)
          labels:
            kubernetes.io/metadata.name: \(name)

        """
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            text += "    \(key): \"\(value)\"\n"
        }
        if let defaultPolicy {
            text += "  annotations:\n    palisade.dev/default-policy: \(defaultPolicy)\n"
        }
        return text
    }

    static func pod(_ pod: LabPod) -> String {
        var text = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: \(pod.name)
          namespace: \(pod.namespace)
          annotations:
            palisade.dev/interface: \(pod.interface)
          labels:

        """
        for (key, value) in pod.labels.sorted(by: { $0.key < $1.key }) {
            text += "    \(key): \"\(value)\"\n"
        }
        text += """
        spec:
          containers:
          - name: echo
            image: registry.example/echo:1
        status:
          phase: Running
          podIP: \(pod.ipv4)
          podIPs:
          - ip: \(pod.ipv4)
          - ip: "\(pod.ipv6)"

        """
        return text
    }
}
