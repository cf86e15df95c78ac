#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NetworkAddress

/// Where the metrics endpoint listens: an IP address literal of this node and a port.
public struct MetricsAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// `127.0.0.1:9464` or `[::1]:9464`. Throws what is wrong with the text.
    public init(parsing text: String) throws {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ConfigError("is not [IPV6]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw ConfigError("has no port") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw ConfigError("is an IPv6 address without brackets ([ADDRESS]:PORT)") }
        }
        guard let ip = IPAddress(String(host)), ip.family == (text.hasPrefix("[") ? .ipv6 : .ipv4) else {
            throw ConfigError("is not an IP address literal and port (host names are not looked up)")
        }
        guard let port = UInt16(portText), port > 0 else { throw ConfigError("needs a port from 1 to 65535") }
        guard ip.bytes.contains(where: { $0 != 0 }) else {
            throw ConfigError("would listen on every interface")
        }
        self.init(ip: ip, port: port)
    }

    public var description: String { ip.family == .ipv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)" }
}

/// The metrics endpoint: a minimal HTTP/1.1 server on one thread that answers `GET /metrics`
/// with the exposition text and closes every connection. A client gets `requestTimeout` to send
/// its request, at most `requestLimit` bytes, so a slow or hostile one delays the next scrape by
/// that much at worst. There is no authentication: it belongs on a local address.
public final class MetricsServer: @unchecked Sendable {
    public let address: MetricsAddress
    public let requestTimeout: TimeInterval
    public let requestLimit: Int
    private let body: @Sendable () -> String
    private let logger: Logger
    private let lock = NSLock()
    // Owned by `lock`.
    private var fd: Int32 = -1
    private var stopping = false
    /// The port listened on (the configured one, or the kernel's choice for port 0).
    public private(set) var port: UInt16 = 0

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(address: MetricsAddress, requestTimeout: TimeInterval = 2, requestLimit: Int = 8192, logger: Logger,
                body: @escaping @Sendable () -> String) {
        self.address = address
        self.requestTimeout = requestTimeout
        self.requestLimit = requestLimit
        self.logger = logger
        self.body = body
    }

    /// Serves `agent`'s metrics.
    public convenience init(address: MetricsAddress, agent: Agent, logger: Logger) {
        let exporter = MetricsExporter()
        self.init(address: address, logger: logger) { exporter.exposition(of: agent.metricsSnapshot()) }
    }

    /// Binds and listens (errors are thrown here), then serves on a thread of its own.
    public func start() throws {
        let family = address.ip.family == .ipv4 ? AF_INET : AF_INET6
        let socketFD = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { throw failure("cannot create a socket", errno) }
        var on: Int32 = 1
        // A restarted agent can bind again while the old connections sit in TIME_WAIT.
        setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if family == AF_INET6 {
            setsockopt(socketFD, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        var storage = sockaddr_storage()
        let length = Self.fill(&storage, address)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            close(socketFD)
            let hint = code == EADDRNOTAVAIL ? "it is not an address of this node; give a local one such as 127.0.0.1:\(address.port)"
                : code == EADDRINUSE ? "another process listens there; choose another port" : "check metricsAddress"
            throw failure("cannot listen", code, hint: hint)
        }
        guard listen(socketFD, 16) == 0 else {
            let code = errno
            close(socketFD)
            throw failure("cannot listen", code)
        }
        var local = sockaddr_storage()
        var localLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &localLength) }
        }
        port = Self.port(of: local)
        lock.withLock { fd = socketFD }
        let thread = Thread { [self] in acceptLoop(socketFD) }
        thread.name = "palisade.metrics"
        thread.start()
        logger.info("metrics.listening", metadata: ["address": "\(address.description)", "port": "\(port)", "path": "/metrics"])
    }

    /// Stops accepting; a request being answered is finished first.
    public func stop() {
        lock.withLock {
            stopping = true
            // Wakes the thread blocked in accept(); it closes the socket on its way out.
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func failure(_ what: String, _ code: Int32, hint: String? = nil) -> Failure {
        var text = "metricsAddress \(address): \(what): \(String(cString: strerror(code)))"
        if let hint { text += "; \(hint)" }
        return Failure(description: text)
    }

    private func acceptLoop(_ socketFD: Int32) {
        defer {
            lock.withLock { fd = -1 }
            close(socketFD)
        }
        while true {
            let client = accept(socketFD, nil, nil)
            if lock.withLock({ stopping }) {
                if client >= 0 { close(client) }
                return
            }
            if client < 0 {
                let code = errno
                if code == EINTR || code == ECONNABORTED { continue }
                // Out of descriptors or memory: wait instead of spinning; a scrape fails meanwhile.
                logger.warning("metrics.accept.failed", metadata: ["error": "\(String(cString: strerror(code)))"])
                usleep(100_000)
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            serve(client)
            close(client)
        }
    }

    // MARK: One connection

    private func serve(_ client: Int32) {
        var timeout = timeval(tv_sec: Int(requestTimeout), tv_usec: Int(requestTimeout.truncatingRemainder(dividingBy: 1) * 1e6))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Date().addingTimeInterval(requestTimeout)
        let response: [UInt8]
        switch readRequest(client, deadline: deadline) {
        case .request(let head):
            response = answer(head)
        case .tooLarge:
            response = Self.response(431, "Request Header Fields Too Large", "request larger than \(requestLimit) bytes\n")
        case .malformed:
            response = Self.response(400, "Bad Request", "malformed request\n")
        case .gone:
            return
        }
        write(response, to: client, deadline: deadline.addingTimeInterval(requestTimeout))
        shutdown(client, Int32(SHUT_WR))
        discardInput(client, deadline: Date().addingTimeInterval(min(requestTimeout, 0.5)))
    }

    /// Reads what the client still sends until it closes, briefly: closing a socket with unread
    /// input resets the connection, and a reset can destroy the answer before the client reads it.
    private func discardInput(_ client: Int32, deadline: Date) {
        var chunk = [UInt8](repeating: 0, count: 2048)
        var discarded = 0
        while discarded < 65536 {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return }
            var poller = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (remaining * 1000).rounded(.up))))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return }
            let count = recv(client, &chunk, chunk.count, 0)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            discarded += count
        }
    }

    private enum ReadOutcome {
        case request(String)
        case tooLarge, malformed
        /// Closed, failed or too slow: nothing to answer.
        case gone
    }

    /// Reads up to the blank line that ends the request head; the whole of it must arrive by `deadline`.
    private func readRequest(_ client: Int32, deadline: Date) -> ReadOutcome {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return .gone }
            var poller = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (remaining * 1000).rounded(.up))))
            if ready < 0 {
                if errno == EINTR { continue }
                return .gone
            }
            if ready == 0 { return .gone }
            let count = recv(client, &chunk, min(chunk.count, requestLimit + 1 - received.count), 0)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .gone
            }
            if count == 0 { return received.isEmpty ? .gone : .malformed }
            received.append(contentsOf: chunk[0..<count])
            if let end = Self.endOfHead(received) {
                guard let head = String(bytes: received[..<end], encoding: .utf8) else { return .malformed }
                return .request(head)
            }
            if received.count > requestLimit { return .tooLarge }
        }
    }

    private static func endOfHead(_ bytes: [UInt8]) -> Int? {
        let crlf: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 2 else { return nil }
        for index in 0..<(bytes.count - 1) {
            if bytes[index] == 10 && bytes[index + 1] == 10 { return index }
            if index + 4 <= bytes.count && Array(bytes[index..<index + 4]) == crlf { return index }
        }
        return nil
    }

    private func answer(_ head: String) -> [UInt8] {
        let requestLine = head.split(whereSeparator: \.isNewline).first ?? ""
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return Self.response(400, "Bad Request", "malformed request line\n")
        }
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else {
            return Self.response(404, "Not Found", "not found: the metrics are at /metrics\n")
        }
        guard parts[0] == "GET" else {
            return Self.response(405, "Method Not Allowed", "only GET\n", extraHeaders: "Allow: GET\r\n")
        }
        return Self.response(200, "OK", body(), contentType: MetricsExporter.contentType)
    }

    static func response(_ status: Int, _ reason: String, _ body: String,
                         contentType: String = "text/plain; charset=utf-8", extraHeaders: String = "") -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\n"
            + extraHeaders + "Connection: close\r\n\r\n"
        return Array(head.utf8) + bodyBytes
    }

    private func write(_ bytes: [UInt8], to client: Int32, deadline: Date) {
        var offset = 0
        while offset < bytes.count, Date() < deadline {
            let sent = bytes.withUnsafeBytes { raw in
                send(client, raw.baseAddress!.advanced(by: offset), bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += sent
        }
    }

    // MARK: Socket addresses

    private static func fill(_ storage: inout sockaddr_storage, _ address: MetricsAddress) -> socklen_t {
        withUnsafeMutableBytes(of: &storage) { raw in
            if address.ip.family == .ipv4 {
                var inet = sockaddr_in()
                inet.sin_family = sa_family_t(AF_INET)
                inet.sin_port = address.port.bigEndian
                withUnsafeMutableBytes(of: &inet.sin_addr) { $0.copyBytes(from: address.ip.bytes) }
                withUnsafeBytes(of: inet) { raw.copyMemory(from: $0) }
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
            var inet6 = sockaddr_in6()
            inet6.sin6_family = sa_family_t(AF_INET6)
            inet6.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &inet6.sin6_addr) { $0.copyBytes(from: address.ip.bytes) }
            withUnsafeBytes(of: inet6) { raw.copyMemory(from: $0) }
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    private static func port(of storage: sockaddr_storage) -> UInt16 {
        withUnsafeBytes(of: storage) { raw in
            // sin_port and sin6_port both follow the 16-bit family, in network order.
            UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))
        }
    }
}
