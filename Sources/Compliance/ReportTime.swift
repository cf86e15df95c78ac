import Foundation

/// RFC 3339 times as the agent writes them (`2026-11-29T12:00:00.123Z`), read and written without
/// a formatter object: the event record and flow logs hold many thousands of them. Also reads a
/// bare date (`2026-11-29`, midnight UTC) and a numeric offset (`+01:00`), as people type them.
public enum ReportTime {
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                guard bytes[index] >= 48, bytes[index] <= 57 else { return nil }
                value = value * 10 + Int(bytes[index] - 48)
            }
            return value
        }
        guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        var milliseconds = Int64(daysFromCivil(year: year, month: month, day: day)) * 86_400_000
        if bytes.count == 10 { return date(milliseconds: milliseconds) }
        guard bytes.count >= 20, [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(bytes[10]),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              hour < 24, minute < 60, second < 61 else { return nil }
        milliseconds += Int64((hour * 3600 + minute * 60 + second) * 1000)
        var index = 19
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            var fraction = 0, digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                // Milliseconds are the records' precision; further digits are dropped.
                if digits < 3 { fraction = fraction * 10 + Int(bytes[index] - 48); digits += 1 }
                index += 1
            }
            guard index > start else { return nil }
            while digits < 3 { fraction *= 10; digits += 1 }
            milliseconds += Int64(fraction)
        }
        guard index < bytes.count else { return nil }
        if (bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z")) && index == bytes.count - 1 {
            return date(milliseconds: milliseconds)
        }
        guard bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"), bytes.count == index + 6,
              bytes[index + 3] == UInt8(ascii: ":"), let hours = number(index + 1..<index + 3),
              let minutes = number(index + 4..<index + 6) else { return nil }
        let offset = Int64((hours * 3600 + minutes * 60) * 1000)
        return date(milliseconds: bytes[index] == UInt8(ascii: "+") ? milliseconds - offset : milliseconds + offset)
    }

    /// `2026-11-29T12:00:00.123Z`: fixed width, so it also sorts as text.
    public static func format(_ date: Date) -> String {
        let total = milliseconds(date)
        let days = floorDivide(total, 86_400_000)
        let rest = Int(total - days * 86_400_000)
        return day(days: Int(days)) + "T" + pad(rest / 3_600_000, 2) + ":" + pad(rest / 60_000 % 60, 2) + ":"
            + pad(rest / 1000 % 60, 2) + "." + pad(rest % 1000, 3) + "Z"
    }

    /// `2026-11-29`: the UTC day the time falls in.
    public static func day(_ date: Date) -> String {
        day(days: Int(floorDivide(milliseconds(date), 86_400_000)))
    }

    /// Midnight UTC starting the day the time falls in.
    public static func startOfDay(_ date: Date) -> Date {
        Self.date(milliseconds: floorDivide(milliseconds(date), 86_400_000) * 86_400_000)
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func date(milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    private static func day(days: Int) -> String {
        let (year, month, day) = civil(days: days)
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    // Howard Hinnant's days-from-civil and its inverse (proleptic Gregorian, day 0 = 1970-01-01).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// The reporting period, `[from, to)`.
public struct Period: Hashable, Sendable {
    public var from: Date
    public var to: Date

    public init(from: Date, to: Date) {
        self.from = from; self.to = to
    }

    public func contains(_ date: Date) -> Bool { date >= from && date < to }

    /// The period cut at UTC midnights: the first and last pieces may be partial days.
    public var days: [Period] {
        var result: [Period] = []
        var start = from
        while start < to {
            let next = min(ReportTime.startOfDay(start).addingTimeInterval(86_400), to)
            result.append(Period(from: start, to: next))
            start = next
        }
        return result
    }

    /// The overlap with `[start, end)`, or nil when there is none.
    public func clipped(from start: Date, to end: Date) -> Period? {
        let lower = max(from, start), upper = min(to, end)
        return lower < upper ? Period(from: lower, to: upper) : nil
    }
}
