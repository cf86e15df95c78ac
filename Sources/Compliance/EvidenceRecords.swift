import Foundation

// The records the agent writes in its data directory, as reports read them. Decoding is lenient
// where the writer may add or omit fields: a report reads the evidence it finds.

/// One line of `events.jsonl`.
public struct AuditRecord: Decodable, Hashable, Sendable {
    public struct Actor: Decodable, Hashable, Sendable {
        public var uid: UInt32
        public var user: String
        public var pid: Int32?
        public var description: String { "\(user) (uid \(uid))" }
    }
    public var seq: UInt64
    public var time: Date
    public var type: String
    public var actor: Actor
    public var target: String?
    public var reason: String?
    public var outcome: String
    public var error: String?
    public var command: String?
    public var generation: Int?
    public var details: [String: String]?
    public var prev: String
}

/// One side of a flow: a workload of the inventory, or an address.
public struct FlowPeer: Decodable, Hashable, Sendable {
    public var type: String
    public var namespace: String?
    public var name: String?
    public var address: String?

    public var isWorkload: Bool { type == "workload" }
    /// `namespace/name` for a workload, the address for a network.
    public var id: String {
        if isWorkload { return EndpointID.make(namespace: namespace ?? "", name: name ?? "") }
        return address ?? "unknown"
    }
}

/// One line of `flows.jsonl`: one flow over one aggregation interval.
public struct FlowLogRecord: Decodable, Hashable, Sendable {
    public struct Decision: Decodable, Hashable, Sendable {
        public var reporter: String
        public var decider: String
        public var policy: String?
    }
    public var start: Date
    public var end: Date
    public var source: FlowPeer
    public var destination: FlowPeer
    public var proto: String?
    public var dport: Int?
    public var action: String
    public var policies: [Decision]?
}

/// `inventory.json`: every endpoint the agent has seen.
public struct Inventory: Decodable, Hashable, Sendable {
    public var updated: Date
    public var clusterRanges: [String]
    public var endpoints: [InventoryEndpoint]

    enum CodingKeys: String, CodingKey { case updated, clusterRanges, endpoints }
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        updated = try container.decode(Date.self, forKey: .updated)
        clusterRanges = try container.decodeIfPresent([String].self, forKey: .clusterRanges) ?? []
        endpoints = try container.decodeIfPresent([InventoryEndpoint].self, forKey: .endpoints) ?? []
    }
}

public struct InventoryEndpoint: Decodable, Hashable, Sendable {
    public struct LabelSet: Decodable, Hashable, Sendable {
        public var time: Date
        public var labels: [String: String]
    }
    /// `[from, to)`; `to` nil while it still holds.
    public struct ProtectionSpan: Decodable, Hashable, Sendable {
        public var from: Date
        public var to: Date?
        public var protected: Bool
    }
    public struct Protection: Decodable, Hashable, Sendable {
        public var ingress: [ProtectionSpan]
        public var egress: [ProtectionSpan]
    }
    public struct Access: Decodable, Hashable, Sendable {
        public var ingressFromInternet: Bool
        public var egressToInternet: Bool
        public var ingressFromOtherNamespaces: Bool
        public var egressToOtherNamespaces: Bool
    }
    public struct QuarantineSpan: Decodable, Hashable, Sendable {
        public var start: Date
        public var end: Date?
        public var reason: String?
        public var actor: String?
    }

    public var namespace: String
    public var name: String
    public var firstSeen: Date
    public var lastSeen: Date
    public var present: Bool
    public var labels: [String: String]
    public var labelHistory: [LabelSet]
    public var addresses: [String]
    public var interface: String?
    public var local: Bool
    public var policies: [String]
    public var protection: Protection
    /// Nil when the inventory does not say: reports then claim no access either way.
    public var access: Access?
    public var quarantines: [QuarantineSpan]

    public var id: String { EndpointID.make(namespace: namespace, name: name) }

    enum CodingKeys: String, CodingKey {
        case namespace, name, firstSeen, lastSeen, present, labels, labelHistory, addresses, interface, local, policies,
             protection, access, quarantines
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        namespace = try container.decodeIfPresent(String.self, forKey: .namespace) ?? ""
        name = try container.decode(String.self, forKey: .name)
        firstSeen = try container.decode(Date.self, forKey: .firstSeen)
        lastSeen = try container.decode(Date.self, forKey: .lastSeen)
        present = try container.decodeIfPresent(Bool.self, forKey: .present) ?? false
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        labelHistory = try container.decodeIfPresent([LabelSet].self, forKey: .labelHistory) ?? []
        addresses = try container.decodeIfPresent([String].self, forKey: .addresses) ?? []
        interface = try container.decodeIfPresent(String.self, forKey: .interface)
        local = try container.decodeIfPresent(Bool.self, forKey: .local) ?? false
        policies = try container.decodeIfPresent([String].self, forKey: .policies) ?? []
        // No protection record means no evidence of protection: every check treats it as unprotected.
        protection = try container.decodeIfPresent(Protection.self, forKey: .protection) ?? Protection(ingress: [], egress: [])
        access = try container.decodeIfPresent(Access.self, forKey: .access)
        quarantines = try container.decodeIfPresent([QuarantineSpan].self, forKey: .quarantines) ?? []
    }

    /// When the endpoint existed: to the end of time while it is still present.
    public var lifetimeEnd: Date { present ? .distantFuture : lastSeen }
}

enum EndpointID {
    static func make(namespace: String, name: String) -> String { namespace.isEmpty ? name : namespace + "/" + name }
}

enum EvidenceDecoding {
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = ReportTime.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not an RFC 3339 time")
            }
            return date
        }
        return decoder
    }()
}
