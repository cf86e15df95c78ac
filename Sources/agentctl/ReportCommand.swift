import AgentCore
import ArgumentParser
import Compliance
import Foundation

extension Agentctl {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a compliance report for a period from the agent's records (events, flow logs, inventory).",
            discussion: """
                inventory, network-access and policy-audit write one file in --format; soc2 writes soc2.html and, beside it, \
                every other report as CSV and JSON. Each bundle carries manifest.json with every file's SHA-256.
                """)

        @Argument(help: "inventory, network-access, policy-audit or soc2.")
        var kind: ReportBundle.Kind

        @Option(name: .long, help: "Start of the period, included (RFC 3339, or a date YYYY-MM-DD: midnight UTC).")
        var from: String

        @Option(name: .long, help: "End of the period, excluded (RFC 3339, or a date YYYY-MM-DD: midnight UTC).")
        var to: String

        @Option(name: .long, help: "json, csv or html (soc2 always writes its HTML page plus CSV and JSON).")
        var format: ReportBundle.Format = .html

        @Option(name: .long, help: "Directory to write the report into (created if missing).")
        var out: String

        @Option(name: .long, help: "The agent's data directory (events.jsonl, flows.jsonl, inventory.json).")
        var dataDir = AgentConfig().dataDirectory

        func validate() throws {
            let period = try self.period()
            guard period.from < period.to else {
                throw ValidationError("--from \(from) is not before --to \(to): the period [from, to) would be empty")
            }
        }

        func period() throws -> Period {
            func parse(_ text: String, _ option: String) throws -> Date {
                guard let date = ReportTime.parse(text) else {
                    throw ValidationError("\(option) \"\(text)\" is not a time (2026-11-29 or 2026-11-29T12:00:00Z)")
                }
                return date
            }
            return Period(from: try parse(from, "--from"), to: try parse(to, "--to"))
        }

        func run() throws {
            let evidence: Evidence
            do {
                evidence = try Evidence.load(dataDirectory: dataDir)
            } catch {
                printError("agentctl: \(error)")
                throw Exit.notOK
            }
            let analysis = Analysis(evidence: evidence, period: try period())
            let files: [ReportBundle.WrittenFile]
            do {
                files = try ReportBundle.write(kind, format: format, analysis: analysis, generated: Date(), dataDirectory: dataDir, to: out)
            } catch {
                printError("agentctl: \(error)")
                throw Exit.notOK
            }
            for file in files {
                print("\((out as NSString).appendingPathComponent(file.name))  \(file.size) bytes  sha256 \(file.sha256)")
            }
            if kind == .soc2 {
                for control in SOC2Assessment(analysis).controls {
                    print("\(control.id): \(control.status.rawValue)")
                }
            }
            if let problem = evidence.inventoryProblem { printError("agentctl: warning: \(problem)") }
            if !evidence.chain.isIntact { printError("agentctl: warning: the audit chain is broken: \(evidence.chain.breaks[0].description)") }
        }
    }
}

extension ReportBundle.Kind: ExpressibleByArgument {}
extension ReportBundle.Format: ExpressibleByArgument {}
