#if canImport(Glibc)
import Glibc
#endif
import FlowAnalysis
import Foundation
import Logging

/// Writes each log message as one JSON object on one line (`agentd --log-format json`), the form
/// log collectors (Fluent Bit, Vector, Loki's promtail, `kubectl logs | jq`) read without parsing:
///
///     {"time":"2026-03-01T12:00:00.123Z","level":"info","label":"palisade.agentd","message":"reconcile.applied","metadata":{"chains":"12","generation":"3"}}
///
/// Keys come in that order; metadata keys are sorted, nested metadata stays nested, and `metadata`
/// is `{}` when there is none, so every line has the same five keys.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let level: SharedLogLevel
    /// Set on this handler's logger only; otherwise the shared level applies.
    private var ownLevel: Logger.Level?
    private let output: LogOutput
    private let now: @Sendable () -> Date

    public init(label: String, level: SharedLogLevel, output: LogOutput = .standardError,
                metadataProvider: Logger.MetadataProvider? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.label = label
        self.level = level
        self.output = output
        self.metadataProvider = metadataProvider
        self.now = now
    }

    public var logLevel: Logger.Level {
        get { ownLevel ?? level.value }
        set { ownLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Later wins: the handler's own, then the provider's, then the message's.
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        output.write(Self.line(time: now(), level: event.level, label: label, message: event.message.description, metadata: merged))
    }

    /// One log line, newline included.
    public static func line(time: Date, level: Logger.Level, label: String, message: String,
                            metadata: Logger.Metadata) -> String {
        var out = "{\"time\":"
        JSONValue.quote(EventTime.format(time), into: &out)
        out += ",\"level\":"
        JSONValue.quote(level.rawValue, into: &out)
        out += ",\"label\":"
        JSONValue.quote(label, into: &out)
        out += ",\"message\":"
        JSONValue.quote(message, into: &out)
        out += ",\"metadata\":"
        appendValue(.dictionary(metadata), to: &out)
        out += "}\n"
        return out
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text):
            JSONValue.quote(text, into: &out)
        case .stringConvertible(let convertible):
            JSONValue.quote(convertible.description, into: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        case .dictionary(let entries):
            out += "{"
            for (index, key) in entries.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                JSONValue.quote(key, into: &out)
                out += ":"
                if let entry = entries[key] { appendValue(entry, to: &out) }
            }
            out += "}"
        }
    }
}

/// The log level of every handler the agent creates, changeable while it runs (`logLevel` on reload).
public final class SharedLogLevel: @unchecked Sendable {
    private let lock = NSLock()
    private var level: Logger.Level

    public init(_ level: Logger.Level) { self.level = level }

    public var value: Logger.Level {
        get { lock.lock(); defer { lock.unlock() }; return level }
        set { lock.lock(); defer { lock.unlock() }; level = newValue }
    }
}

/// Where log lines go: each line in one `write`, lines from different threads never interleaved.
public final class LogOutput: @unchecked Sendable {
    private let lock = NSLock()
    private let sink: (String) -> Void

    /// Lines go to `sink` (tests collect them).
    public init(sink: @escaping (String) -> Void) { self.sink = sink }

    public static let standardError = LogOutput { line in
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { raw in
                Glibc.write(STDERR_FILENO, raw.baseAddress!.advanced(by: offset), raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return  // Nowhere to report that logging failed.
            }
            offset += written
        }
    }

    public func write(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        sink(line)
    }
}

/// The human-readable form (`--log-format text`, the default): swift-log's stream handler, with the
/// level shared like `JSONLogHandler`'s so a reload can change it.
public struct TextLogHandler: LogHandler {
    private var stream: StreamLogHandler
    private let level: SharedLogLevel
    private var ownLevel: Logger.Level?

    public init(label: String, level: SharedLogLevel) {
        stream = StreamLogHandler.standardError(label: label)
        self.level = level
    }

    public var logLevel: Logger.Level {
        get { ownLevel ?? level.value }
        set { ownLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { stream.metadata }
        set { stream.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { stream[metadataKey: key] }
        set { stream[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        stream.log(event: event)
    }
}

extension AgentConfig.LogFormat {
    /// A handler factory for `LoggingSystem.bootstrap`, which only the executable calls.
    public func handlerFactory(level: SharedLogLevel) -> @Sendable (String) -> LogHandler {
        switch self {
        case .text: return { TextLogHandler(label: $0, level: level) }
        case .json: return { JSONLogHandler(label: $0, level: level) }
        }
    }
}
