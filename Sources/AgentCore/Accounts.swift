#if canImport(Glibc)
import Glibc
#endif

/// Who a Unix uid is, as the roles file sees it: the user name and every group the user is in.
public struct Account: Hashable, Sendable {
    public var uid: UInt32
    /// From the passwd database; nil when the uid has no entry.
    public var userName: String?
    /// The passwd entry's primary group, the peer's own gid, and the supplementary groups.
    public var groupIDs: Set<UInt32>
    /// Names of `groupIDs` that the group database knows.
    public var groupNames: Set<String>

    public init(uid: UInt32, userName: String?, groupIDs: Set<UInt32> = [], groupNames: Set<String> = []) {
        self.uid = uid
        self.userName = userName
        self.groupIDs = groupIDs
        self.groupNames = groupNames
    }

    /// How messages and the event record name the account: the user name, or the decimal uid
    /// when the passwd database has no entry (as `ls -l` does).
    public var displayName: String { userName ?? String(uid) }

    /// Looks the uid up in the passwd and group databases (NSS: files, LDAP, whatever the node
    /// uses). `gid` is the peer process's own gid from SO_PEERCRED; it counts as one of the
    /// account's groups because the kernel vouches for it.
    public static func lookup(uid: UInt32, gid: UInt32) -> Account {
        var account = Account(uid: uid, userName: nil, groupIDs: [gid])
        if let entry = UserDatabase.user(uid: uid) {
            account.userName = entry.name
            account.groupIDs.insert(entry.primaryGroup)
            account.groupIDs.formUnion(UserDatabase.groups(of: entry.name, primaryGroup: entry.primaryGroup))
        }
        for groupID in account.groupIDs {
            if let name = UserDatabase.groupName(gid: groupID) { account.groupNames.insert(name) }
        }
        return account
    }
}

/// The reentrant passwd/group lookups, with their buffer-size dance.
enum UserDatabase {
    static func user(uid: UInt32) -> (name: String, primaryGroup: UInt32)? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var size = max(1024, Int(sysconf(Int32(_SC_GETPW_R_SIZE_MAX))))
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            let code = getpwuid_r(uid_t(uid), &entry, &buffer, buffer.count, &result)
            if code == ERANGE { size *= 4; continue }
            guard code == 0, result != nil, let name = entry.pw_name else { return nil }
            return (String(cString: name), UInt32(entry.pw_gid))
        }
        return nil
    }

    /// getgrouplist: the user's primary group and every group that lists the user as a member.
    static func groups(of user: String, primaryGroup: UInt32) -> [UInt32] {
        var count: Int32 = 64
        while count <= 65_536 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var found = count
            if getgrouplist(user, gid_t(primaryGroup), &groups, &found) >= 0 {
                return groups.prefix(Int(found)).map { UInt32($0) }
            }
            count = max(found, count * 2)
        }
        return []
    }

    static func groupName(gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var size = max(1024, Int(sysconf(Int32(_SC_GETGR_R_SIZE_MAX))))
        while size <= 1 << 22 {
            var buffer = [CChar](repeating: 0, count: size)
            let code = getgrgid_r(gid_t(gid), &entry, &buffer, buffer.count, &result)
            if code == ERANGE { size *= 4; continue }
            guard code == 0, result != nil, let name = entry.gr_name else { return nil }
            return String(cString: name)
        }
        return nil
    }

    /// A group by name, or by number if it is one and the group database knows it.
    static func groupID(named name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var size = max(1024, Int(sysconf(Int32(_SC_GETGR_R_SIZE_MAX))))
        while size <= 1 << 22 {
            var buffer = [CChar](repeating: 0, count: size)
            let code = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
            if code == ERANGE { size *= 4; continue }
            if code == 0, result != nil { return UInt32(entry.gr_gid) }
            break
        }
        if let number = UInt32(name), groupName(gid: number) != nil { return number }
        return nil
    }
}
