import Foundation

/// Bar charts as inline SVG: one bar (or stack) per day, a y axis with gridlines, a legend.
enum SVGChart {
    struct Series {
        var name: String
        var color: String
        var values: [Double?]
    }

    static func bars(labels: [String], series: [Series], maximum: Double, ticks: [Double], unit: String, title: String) -> String {
        let width = 520.0, height = 240.0
        let left = 44.0, right = 10.0, top = 30.0, bottom = 34.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let count = max(labels.count, 1)
        let slot = plotWidth / Double(count)
        let barWidth = max(1, min(40, slot * 0.7))
        func y(_ value: Double) -> Double { top + plotHeight - plotHeight * min(value, maximum) / max(maximum, 1e-9) }
        func number(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"11\">\n"
        for tick in ticks {
            svg += "<line x1=\"\(number(left))\" x2=\"\(number(width - right))\" y1=\"\(number(y(tick)))\" y2=\"\(number(y(tick)))\" stroke=\"#e3e7ee\"/>"
            svg += "<text x=\"\(number(left - 6))\" y=\"\(number(y(tick) + 4))\" text-anchor=\"end\" fill=\"#5b6475\">\(HTML.escape(format(tick) + unit))</text>\n"
        }
        svg += "<line x1=\"\(number(left))\" x2=\"\(number(width - right))\" y1=\"\(number(y(0)))\" y2=\"\(number(y(0)))\" stroke=\"#8a93a3\"/>\n"
        // At most about twelve day labels, whatever the length of the period.
        let labelEvery = max(1, Int((Double(labels.count) / 12).rounded(.up)))
        for (index, label) in labels.enumerated() {
            let x = left + slot * Double(index) + (slot - barWidth) / 2
            var base = 0.0
            for item in series {
                guard index < item.values.count, let value = item.values[index] else { continue }
                let text = "\(item.name): \(format(value))\(unit)"
                guard value > 0 else { continue }
                svg += "<rect x=\"\(number(x))\" y=\"\(number(y(base + value)))\" width=\"\(number(barWidth))\" height=\"\(number(y(base) - y(base + value)))\" fill=\"\(item.color)\"><title>\(HTML.escape(label + " " + text))</title></rect>"
                base += value
            }
            // The total above the bar, while the bars are wide enough to carry it.
            if base > 0 && slot >= 28 {
                svg += "<text x=\"\(number(x + barWidth / 2))\" y=\"\(number(y(base) - 4))\" text-anchor=\"middle\" fill=\"#1d2330\">\(HTML.escape(format(base) + unit))</text>"
            }
            if series.allSatisfy({ index >= $0.values.count || $0.values[index] == nil }) {
                svg += "<text x=\"\(number(x + barWidth / 2))\" y=\"\(number(y(0) - 4))\" text-anchor=\"middle\" fill=\"#9aa3b2\" font-size=\"9\">n/a</text>"
            }
            if index % labelEvery == 0 {
                svg += "<text x=\"\(number(left + slot * (Double(index) + 0.5)))\" y=\"\(number(height - bottom + 16))\" text-anchor=\"middle\" fill=\"#5b6475\">\(HTML.escape(String(label.dropFirst(5))))</text>"
            }
            svg += "\n"
        }
        var legendX = left
        for item in series where series.count > 1 {
            svg += "<rect x=\"\(number(legendX))\" y=\"8\" width=\"10\" height=\"10\" fill=\"\(item.color)\"/><text x=\"\(number(legendX + 14))\" y=\"17\" fill=\"#1d2330\">\(HTML.escape(item.name))</text>"
            legendX += 24 + Double(item.name.count) * 7
        }
        return svg + "</svg>"
    }

    private static func format(_ value: Double) -> String {
        String(Int(value.rounded()))
    }
}
