// Time as values. The module reads no clock: every event carries its time and the caller says
// what time it is now, so a test can replay a day of traffic in microseconds.

/// An instant: nanoseconds since the Unix epoch (UTC). Kernel timestamps (NFLOG's
/// `NFULA_TIMESTAMP`) and `clock_gettime(CLOCK_REALTIME)` convert to it directly.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// From a duration since the epoch, as the kernel readers hand timestamps over (a negative
    /// one becomes the epoch).
    public init(sinceEpoch: Duration) { nanoseconds = sinceEpoch.flowNanoseconds }

    public static func seconds(_ seconds: UInt64) -> Timestamp { Timestamp(nanoseconds: seconds * 1_000_000_000) }
    public static func milliseconds(_ ms: UInt64) -> Timestamp { Timestamp(nanoseconds: ms * 1_000_000) }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }

    /// Saturates at the end of time rather than trapping.
    public static func + (t: Timestamp, d: Duration) -> Timestamp {
        let (sum, overflow) = t.nanoseconds.addingReportingOverflow(d.flowNanoseconds)
        return Timestamp(nanoseconds: overflow ? .max : sum)
    }

    /// Saturates at the epoch rather than trapping.
    public static func - (t: Timestamp, d: Duration) -> Timestamp {
        let span = d.flowNanoseconds
        return Timestamp(nanoseconds: t.nanoseconds >= span ? t.nanoseconds - span : 0)
    }

    /// The start of the aligned period of length `period` that holds this instant: periods are
    /// `[k·period, (k+1)·period)`, so an instant exactly on a boundary starts the next period.
    public func alignedDown(to period: Duration) -> Timestamp {
        let span = max(1, period.flowNanoseconds)
        return Timestamp(nanoseconds: nanoseconds - nanoseconds % span)
    }

    /// RFC 3339 in UTC with milliseconds, as the agent's JSON logs write time:
    /// `2026-11-29T10:00:00.123Z`.
    public var rfc3339: String {
        let totalMilliseconds = nanoseconds / 1_000_000
        let milliseconds = Int(totalMilliseconds % 1000)
        let totalSeconds = totalMilliseconds / 1000
        let days = Int64(totalSeconds / 86_400)
        let secondOfDay = Int(totalSeconds % 86_400)
        let (year, month, day) = Timestamp.civilDate(daysSinceEpoch: days)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(Int(year), 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(milliseconds, 3))Z"
    }

    public var description: String { rfc3339 }

    /// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        let month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Duration {
    /// Whole nanoseconds, 0 for a negative duration, saturating at `UInt64.max`.
    var flowNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) { return 0 }
        let (wholeSeconds, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (sum, overflowSum) = wholeSeconds.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflowSum ? .max : sum
    }

    /// The duration in seconds as a floating-point number, for rates.
    var flowSeconds: Double { Double(flowNanoseconds) / 1e9 }
}
