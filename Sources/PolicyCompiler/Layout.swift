import NetworkAddress

// Names of the fixed objects of Palisade's table. The layout (see docs/ruleset.md):
//
//   forward (base chain, hook forward):
//     iifname "<prefix>*" iifname . ip saddr != @source-addresses-v4 drop   (and v6): no spoofing
//     iifname vmap @egress-dispatch     -> the source endpoint's egress chain
//     iifname "<prefix>*" drop          -> a workload interface we do not know: fail closed
//     oifname vmap @ingress-dispatch    -> traffic from outside to an endpoint: its ingress chain
//     oifname "<prefix>*" drop
//   to-workload: where an allowed egress continues, so that the destination's ingress applies too.
//
// Every endpoint chain ends in a verdict (accept, drop, or goto to-workload), so no packet mark is
// needed to carry "allowed" between chains and nothing falls through to a later rule by accident.
public enum Layout {
    public static let forwardChain = "forward"
    /// The node's own traffic to its pods: quarantined pods always; with `nodeToWorkload: policy`
    /// every pod's ingress policy.
    public static let outputChain = "output"
    /// The node's own input: only quarantined pods' traffic is dropped there.
    public static let inputChain = "input"
    /// Interfaces of quarantined pods, for the input and output chains.
    public static let quarantinedInterfaces = "quarantined-interfaces"
    public static let toWorkloadChain = "to-workload"
    public static let egressDispatch = "egress-dispatch"
    public static let ingressDispatch = "ingress-dispatch"
    public static let allowIngressChain = "allow-ingress"
    public static let allowEgressChain = "allow-egress"
    public static let denyIngressChain = "deny-ingress"
    public static let denyEgressChain = "deny-egress"
    public static let quarantineIngressChain = "quarantine-ingress"
    public static let quarantineEgressChain = "quarantine-egress"
    /// `ifname . address` pairs: the addresses each dispatched endpoint's interface may send from.
    public static func sourceAddresses(_ family: IPFamily) -> String {
        family == .ipv4 ? "source-addresses-v4" : "source-addresses-v6"
    }
}
