import NftablesModel
import NftablesNetlink

/// The kernel as the reconciler sees it. The netlink connection is the real one; unit tests use a fake.
public protocol Dataplane: AnyObject {
    func commit(_ changes: [Change]) throws
    func readTable(family: TableFamily, name: String) throws -> Table?
    /// The table's flags, or nil when it does not exist.
    func tableFlags(family: TableFamily, name: String) throws -> TableFlags?
}

extension NftablesConnection: Dataplane {}
