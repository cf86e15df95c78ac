import Foundation

/// A table as `nft -j list table` prints it: the independent oracle the enforcement tests
/// check the agent against (never the agent's own report alone).
struct NftTable {
    struct NamedSet {
        let name: String
        let type: String
        let elements: Set<String>
    }

    let name: String
    let chains: [String]
    let sets: [NamedSet]
    /// Verdict maps by name: key → verdict, e.g. "pla1" → "jump ep-3-ingress".
    let maps: [String: [String: String]]

    init(json: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: json) as? [String: Any],
              let objects = root["nftables"] as? [[String: Any]]
        else { throw CommandError(description: "nft -j printed no \"nftables\" array") }
        var name = ""
        var chains: [String] = []
        var sets: [NamedSet] = []
        var maps: [String: [String: String]] = [:]
        for object in objects {
            if let table = object["table"] as? [String: Any] {
                name = table["name"] as? String ?? ""
            } else if let chain = object["chain"] as? [String: Any], let chainName = chain["name"] as? String {
                chains.append(chainName)
            } else if let set = object["set"] as? [String: Any], let setName = set["name"] as? String {
                let elements = (set["elem"] as? [Any] ?? []).compactMap(Self.elementText)
                sets.append(NamedSet(name: setName, type: Self.typeText(set["type"]), elements: Set(elements)))
            } else if let map = object["map"] as? [String: Any], let mapName = map["name"] as? String {
                var entries: [String: String] = [:]
                for case let pair as [Any] in map["elem"] as? [Any] ?? [] where pair.count == 2 {
                    if let key = Self.elementText(pair[0]) {
                        entries[key] = Self.verdictText(pair[1])
                    }
                }
                maps[mapName] = entries
            }
        }
        self.name = name
        self.chains = chains
        self.sets = sets
        self.maps = maps
    }

    /// The keys of a verdict map: for the dispatch maps, the interfaces the agent knows.
    func mapKeys(_ map: String) -> Set<String>? {
        maps[map].map { Set($0.keys) }
    }

    /// Selector sets: the ones whose name starts with "sel" and ends in v4 or v6
    /// (`sel.<hash>.v4`, `sel-<hash>-v4`, ...).
    func selectorSets(_ family: AddressFamily) -> [NamedSet] {
        sets.filter { $0.name.hasPrefix("sel") && $0.name.hasSuffix(family.rawValue) }
    }

    /// "a", {"elem": {"val": "a", ...}}, {"prefix": {"addr": "a", "len": 32}} → text.
    private static func elementText(_ value: Any) -> String? {
        if let text = value as? String { return text }
        if let number = value as? Int { return String(number) }
        guard let object = value as? [String: Any] else { return nil }
        if let element = object["elem"] as? [String: Any], let inner = element["val"] {
            return elementText(inner)
        }
        if let prefix = object["prefix"] as? [String: Any], let address = prefix["addr"] as? String,
           let length = prefix["len"] as? Int {
            return "\(address)/\(length)"
        }
        if let range = object["range"] as? [Any], range.count == 2,
           let low = elementText(range[0]), let high = elementText(range[1]) {
            return "\(low)-\(high)"
        }
        return nil
    }

    private static func verdictText(_ value: Any) -> String {
        if let text = value as? String { return text }
        guard let object = value as? [String: Any] else { return "\(value)" }
        for (verdict, detail) in object {
            if let detail = detail as? [String: Any], let target = detail["target"] as? String {
                return "\(verdict) \(target)"
            }
            return verdict
        }
        return "\(value)"
    }

    private static func typeText(_ value: Any?) -> String {
        if let text = value as? String { return text }
        if let parts = value as? [String] { return parts.joined(separator: " . ") }
        return ""
    }
}
