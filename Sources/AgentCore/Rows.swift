import Foundation
import PolicyCompiler
import PolicyModel

/// Rows for `agentctl get`: flat string maps, printed as a table or JSON by the client.
enum Rows {
    static func make(kind: String, state: DesiredState, compiled: CompiledRuleset?) -> [[String: String]]? {
        switch kind {
        case "endpoints", "endpoint", "ep":
            return (compiled?.endpoints ?? []).map { entry in
                [
                    "namespace": entry.endpoint.namespace,
                    "name": entry.endpoint.name,
                    "kind": entry.endpoint.kind.rawValue,
                    "interface": entry.interface ?? "",
                    "addresses": entry.endpoint.addresses.map { "\($0)" }.joined(separator: ","),
                    "ingress": entry.ingress.description,
                    "egress": entry.egress.description,
                    "labels": labelsText(entry.endpoint.labels),
                ]
            }
        case "policies", "policy", "networkpolicies", "netpol":
            let calico = state.calicoPolicies.map { policy -> [String: String] in
                let selected = (compiled?.endpoints ?? []).filter {
                    $0.ingress.policyIDs.contains(policy.profileID) || $0.egress.policyIDs.contains(policy.profileID)
                }
                return [
                    "namespace": policy.namespace ?? "(global)",
                    "name": policy.name,
                    "kind": policy.kind,
                    "order": policy.order.map { $0 == $0.rounded() && abs($0) < 1e15 ? "\(Int($0))" : "\($0)" } ?? "",
                    "podSelector": policy.selector.canonicalText,
                    "policyTypes": policy.types.sorted().map { $0.rawValue.capitalized }.joined(separator: ","),
                    "ingressRules": "\(policy.ingress.count)",
                    "egressRules": "\(policy.egress.count)",
                    "selectedEndpoints": "\(selected.count)",
                ]
            }
            return calico + state.policies.map { policy in
                let selected = state.endpoints.filter {
                    $0.namespace == policy.namespace && policy.podSelector.matches($0.labels)
                }
                return [
                    "namespace": policy.namespace,
                    "name": policy.name,
                    "kind": "NetworkPolicy",
                    "order": "1000",
                    "podSelector": policy.podSelector.canonicalText,
                    "policyTypes": policy.policyTypes.sorted().map { $0.rawValue.capitalized }.joined(separator: ","),
                    "ingressRules": "\(policy.ingress.count)",
                    "egressRules": "\(policy.egress.count)",
                    "selectedEndpoints": "\(selected.count)",
                ]
            }
        case "quarantines", "quarantine", "q":
            return state.quarantines.map { quarantine in
                let entry = compiled?.endpoints.first { $0.endpoint.id == quarantine.podID }
                return [
                    "namespace": quarantine.namespace,
                    "name": quarantine.name,
                    "reason": quarantine.reason,
                    "requestedBy": quarantine.requestedBy ?? "",
                    "requestedAt": quarantine.requestedAt ?? "",
                    "podUID": quarantine.podUID ?? "",
                    "futurePods": "\(quarantine.futurePods)",
                    "source": quarantine.location?.file ?? "",
                    // In force: the pod exists, this quarantine covers it and it is dispatched here.
                    "active": entry?.quarantine != nil && entry?.interface != nil ? "yes" : "no",
                ]
            }
        case "namespaces", "namespace", "ns":
            let names = Set(state.namespaces.keys).union(state.endpoints.map(\.namespace)).sorted()
            return names.map { name in
                [
                    "name": name,
                    "labels": labelsText(state.namespaceLabels(name)),
                    "defaultPolicy": state.namespaces[name]?.defaultPolicy?.rawValue ?? "",
                    "endpoints": "\(state.endpoints.filter { $0.namespace == name }.count)",
                ]
            }
        default:
            return nil
        }
    }

    static func labelsText(_ labels: [String: String]) -> String {
        labels.keys.sorted().map { "\($0)=\(labels[$0]!)" }.joined(separator: ",")
    }
}
