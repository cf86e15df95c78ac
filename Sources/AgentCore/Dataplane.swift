import NftablesModel
import PolicyModel
import NftablesNetlink

/// The kernel as the reconciler sees it. The netlink connection is the real one; unit tests use a fake.
public protocol Dataplane: AnyObject {
    func commit(_ changes: [Change]) throws
    func readTable(family: TableFamily, name: String) throws -> Table?
    /// The table's flags, or nil when it does not exist.
    func tableFlags(family: TableFamily, name: String) throws -> TableFlags?
}

extension NftablesConnection: Dataplane {}

/// Removes the conntrack entries of addresses, so that a quarantined workload's connections are
/// gone from the kernel's table too (the quarantine chain already drops their packets).
public protocol ConnectionTracker: AnyObject {
    func deleteEntries(involving addresses: Set<IPAddress>) throws -> Int
}

extension ConntrackConnection: ConnectionTracker {}
