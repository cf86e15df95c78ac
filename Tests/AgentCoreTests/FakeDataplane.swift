@testable import AgentCore
import Glibc
import NftablesModel
import NftablesNetlink

/// Holds tables the way the kernel would after each batch; a batch with a failure changes nothing.
final class FakeDataplane: Dataplane {
    var tables: [String: Table] = [:]
    var flags: [String: TableFlags] = [:]
    var commits: [[Change]] = []
    var failNext: Error?
    /// Every commit fails with this while set.
    var failAlways: Error?
    /// Simulates a kernel without NFT_TABLE_F_PERSIST: creating a table with flags fails with EINVAL.
    var refuseTableFlags = false

    struct Injected: Error, CustomStringConvertible { var description: String }

    func commit(_ changes: [Change]) throws {
        if let error = failNext {
            failNext = nil
            throw error
        }
        if let error = failAlways { throw error }
        var next = tables
        for (index, change) in changes.enumerated() {
            if refuseTableFlags, case .addTable(_, _, let requested) = change, !requested.isEmpty {
                throw NftablesError(kind: .rejected, operation: change.summary, changeIndex: index, code: EINVAL)
            }
            switch change {
            case .ensureTable(_, let name):
                if next[name] == nil { next[name] = Table(name: name) }
            case .addTable(_, let name, let tableFlags):
                if next[name] == nil { next[name] = Table(name: name) }
                flags[name] = tableFlags
            case .deleteTable(_, let name):
                next[name] = nil
            case .addChain(let table, _, _), .flushChain(let table, _, _), .deleteChain(let table, _, _),
                 .addRule(let table, _, _, _), .addSet(let table, _, _), .deleteSet(let table, _, _),
                 .addElements(let table, _, _, _, _), .deleteElements(let table, _, _, _, _):
                // The kernel's rules for what a batch may do, as NftablesModel models them.
                do { try next[table]?.apply(change) } catch {
                    throw NftablesError(kind: .rejected, operation: change.summary, changeIndex: index, code: EINVAL)
                }
            }
        }
        tables = next
        commits.append(changes)
    }

    func readTable(family: TableFamily, name: String) throws -> Table? { tables[name] }
    func tableFlags(family: TableFamily, name: String) throws -> TableFlags? {
        tables[name] == nil ? nil : flags[name] ?? []
    }
}
