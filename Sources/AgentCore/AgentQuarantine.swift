import Foundation
import PolicyCompiler
import PolicyModel

/// An answer that is "no" rather than a failure: unknown pod, already quarantined, not
/// quarantined. agentctl exits 1 for these (2 when the agent could not do what was asked).
public struct OperationRefusal: Error, CustomStringConvertible {
    public var description: String
    public var exitCode: Int32
    public init(_ description: String, exitCode: Int32 = 1) { self.description = description; self.exitCode = exitCode }
}

/// What an accepted quarantine or release did.
public struct QuarantineOutcome: Sendable {
    public var message: String
    public var generation: Int
    public var conntrackEntriesDeleted: Int
}

/// Quarantine and release: one reconcile each, so the dispatch entries of the pod change in one
/// batch, computed like every other change from the desired state.
extension Agent {
    public func quarantine(_ podID: String, reason: String, futurePods: Bool, actor: Peer) throws -> QuarantineOutcome {
        try recorded(.quarantine, podID, reason: reason, actor: actor) {
            try onQueue { try self.quarantineOnQueue(podID, reason: reason, futurePods: futurePods, actor: actor) }
        }
    }

    public func release(_ podID: String, actor: Peer) throws -> QuarantineOutcome {
        try recorded(.release, podID, reason: nil, actor: actor) {
            try onQueue { try self.releaseOnQueue(podID, actor: actor) }
        }
    }

    /// Writes the event record entry of a quarantine or release, whatever its outcome. The answer
    /// goes back to the caller only once the record is on disk: a quarantine that was applied but
    /// could not be recorded is reported as a failure of the record, not silently.
    private func recorded(_ type: EventType, _ podID: String, reason: String?, actor: Peer,
                          _ work: () throws -> QuarantineOutcome) throws -> QuarantineOutcome {
        let command = type == .quarantine ? "quarantine" : "release"
        do {
            let outcome = try work()
            do {
                _ = try events?.append(Event(type: type, actor: Actor(actor), target: podID, reason: reason, outcome: .applied,
                                             command: command, generation: outcome.generation,
                                             details: outcome.conntrackEntriesDeleted > 0
                                                 ? ["conntrackEntriesDeleted": "\(outcome.conntrackEntriesDeleted)"] : nil))
            } catch {
                throw OperationRefusal("\(outcome.message), but writing the event record failed: \(error)", exitCode: 2)
            }
            return outcome
        } catch let refusal as OperationRefusal {
            _ = try? events?.append(Event(type: type, actor: Actor(actor), target: podID, reason: reason,
                                          outcome: refusal.exitCode == 1 ? .refused : .failed, error: refusal.description,
                                          command: command))
            throw refusal
        } catch {
            _ = try? events?.append(Event(type: type, actor: Actor(actor), target: podID, reason: reason,
                                          outcome: .failed, error: "\(error)", command: command))
            throw error
        }
    }

    private func quarantineOnQueue(_ podID: String, reason: String, futurePods: Bool, actor: Peer) throws -> QuarantineOutcome {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw OperationRefusal("a quarantine needs a reason (--reason TEXT)") }
        reconcilePending()
        let state = currentState
        let endpoint = state.endpoints.first { $0.id == podID }
        let pending = state.skippedPods.first { "\($0.namespace)/\($0.name)" == podID }
        guard endpoint != nil || pending != nil else {
            throw OperationRefusal("no pod \(podID) in the state directory" + Self.suggestion(podID, among: state.endpoints.map(\.id)))
        }
        if let existing = state.quarantines.first(where: { $0.podID == podID && (endpoint == nil || $0.covers(endpoint!)) }) {
            let since = existing.requestedAt.map { " since \($0)" } ?? ""
            let by = existing.requestedBy.map { " by \($0)" } ?? ""
            throw OperationRefusal("\(podID) is already quarantined\(since)\(by): \(existing.reason)")
        }
        let quarantine = Quarantine(
            namespace: String(podID.split(separator: "/")[0]), name: String(podID.split(separator: "/")[1]),
            reason: trimmed, podUID: endpoint?.uid, futurePods: futurePods,
            requestedBy: "\(actor.userName) (uid \(actor.uid))", requestedAt: Self.timestamp())
        try quarantineStore.write(quarantine)
        // Success is "the kernel took whatever change the quarantine needs" — none at all for a pod
        // that has no address yet or is on another node.
        reconcileQuarantines()
        guard lastError == nil else {
            // The kernel refused the batch: nothing changed there, so take the request back too.
            let error = lastError ?? "the quarantine did not reach the kernel"
            try? quarantineStore.remove(podID)
            reconcileQuarantines()
            throw OperationRefusal("quarantine of \(podID) failed, nothing changed: \(error)", exitCode: 2)
        }
        var deleted = 0
        if let endpoint, let connectionTracker {
            do {
                deleted = try connectionTracker.deleteEntries(involving: Set(endpoint.addresses))
            } catch {
                logger.warning("quarantine.conntrack.failed", metadata: ["pod": "\(podID)", "error": "\(error)"])
            }
        }
        logger.notice("quarantine.applied", metadata: ["pod": "\(podID)", "actor": "\(actor.userName)", "reason": "\(trimmed)",
                                                       "conntrack": "\(deleted)"])
        let where_ = endpoint == nil ? " (it has no address yet: it is cut off as soon as it gets one)" : ""
        return QuarantineOutcome(message: "quarantined \(podID)\(where_): generation \(generation), \(deleted) conntrack entries deleted",
                                 generation: generation, conntrackEntriesDeleted: deleted)
    }

    private func releaseOnQueue(_ podID: String, actor: Peer) throws -> QuarantineOutcome {
        reconcilePending()
        let state = currentState
        guard let quarantine = state.quarantines.first(where: { $0.podID == podID }) else {
            throw OperationRefusal("\(podID) is not quarantined")
        }
        let storedPath = quarantineStore.path(for: podID)
        if let file = quarantine.location?.file, file != storedPath {
            throw OperationRefusal("the quarantine of \(podID) comes from \(file) in the state directory: remove that file to release it")
        }
        try quarantineStore.remove(podID)
        reconcileQuarantines()
        guard lastError == nil else {
            let error = lastError ?? "the release did not reach the kernel"
            try? quarantineStore.write(quarantine)
            reconcileQuarantines()
            throw OperationRefusal("release of \(podID) failed, it stays quarantined: \(error)", exitCode: 2)
        }
        logger.notice("quarantine.released", metadata: ["pod": "\(podID)", "actor": "\(actor.userName)"])
        return QuarantineOutcome(message: "released \(podID): generation \(generation)", generation: generation,
                                 conntrackEntriesDeleted: 0)
    }

    static func timestamp() -> String { EventTime.formatSeconds(Date()) }

    static func suggestion(_ wanted: String, among ids: [String]) -> String {
        let name = wanted.split(separator: "/").last.map(String.init) ?? wanted
        let close = ids.filter { $0.hasSuffix("/" + name) || $0.contains(name) }.prefix(3)
        return close.isEmpty ? "" : " (did you mean \(close.joined(separator: ", "))?)"
    }
}
