// Decoding of one state-directory file into objects, with `path:line: what is wrong` errors.
// YAML is read through Yams' node API so every value keeps its line; JSON is read the same way.

import Yams

/// Why a file was rejected, and where: `description` is `path:line: message`.
public struct DocumentError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(location: SourceLocation, message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location.file):\(location.line): \(message)" }
}

public enum DocumentDecoder {
    /// Decodes every document of a YAML or JSON file (multi-document `---`, and `kind: List` with `items`).
    /// Throws the first DocumentError. Objects keep their SourceLocation (line of the object's start).
    ///
    /// Objects of kinds Palisade does not know (a Service, a Deployment) are skipped without error;
    /// empty documents are fine. A kind Palisade knows under an apiVersion it does not read (such as
    /// `networking.k8s.io/v1beta1 NetworkPolicy`) is an error: skipping it would drop a policy.
    public static func decode(_ text: String, path: String) throws -> [StateObject] {
        let result = decodeCollectingErrors(text, path: path)
        if let first = result.errors.first { throw first }
        return result.objects
    }

    /// Decodes as `decode` does, but goes on after an error so that a file's every problem can be
    /// shown at once: a bad document (or `items` entry of a List) is reported and skipped, and the
    /// ones after it are still decoded. Within one object only its first error is reported. A YAML
    /// syntax error ends the file: libyaml cannot find its footing after one.
    ///
    /// Errors come in file order, so `errors.first` is what `decode` throws.
    /// Yams' default rules for plain scalars, less the two nothing here reads (timestamp, and `=`
    /// as "value"): every plain scalar that is none of them (most keys and values) is tried
    /// against each rule's regular expression, and the parser's duplicate-key check resolves
    /// every mapping key. Timestamps stay strings, which is how they are read anyway.
    static let resolver = Resolver.default.removing(.timestamp).removing(.value)

    public static func decodeCollectingErrors(_ text: String, path: String) -> (objects: [StateObject], errors: [DocumentError]) {
        var decoded = Decoded()
        do {
            // UTF-8 explicitly: the default consults the environment and may print to stdout.
            let parser = try Parser(yaml: text, resolver: resolver, encoding: .utf8)
            while let root = try parser.nextRoot() {
                decodeObject(DocumentNode.root(root, file: path), into: &decoded)
            }
        } catch let error as DocumentError {
            decoded.errors.append(error)
        } catch {
            decoded.errors.append(syntaxError(error, path: path))
        }
        return (decoded.objects, decoded.errors)
    }

    private struct Decoded {
        var objects: [StateObject] = []
        var errors: [DocumentError] = []
    }

    /// One document or List item: its objects, or its first error. The items of a List are decoded
    /// one by one, so that one bad item does not hide the others.
    private static func decodeObject(_ object: DocumentNode, listItem: Int? = nil, into decoded: inout Decoded) {
        do {
            if object.isNull { return }
            guard object.isMapping else {
                let what = listItem.map { "items[\($0)]" } ?? "a document"
                throw DocumentError(location: object.location,
                                    message: "\(what) must be a mapping with apiVersion and kind, not \(object.shapeDescription)")
            }
            let apiVersionNode = try object.requiredField("apiVersion")
            let apiVersion = try apiVersionNode.text()
            let kind = try object.requiredField("kind").text()
            guard !isList(apiVersion: apiVersion, kind: kind) else {
                // kubectl never nests Lists; refusing them also stops aliases from multiplying objects.
                if let listItem {
                    throw DocumentError(location: object.location,
                                        message: "items[\(listItem)] is a List; a List may not contain another List")
                }
                for (index, item) in try (object.field("items")?.list() ?? []).enumerated() {
                    // Paths inside an item start at the item, as they would in a file of its own.
                    let root = DocumentNode(node: item.node, path: "", line: item.line, file: item.file)
                    decodeObject(root, listItem: index, into: &decoded)
                }
                return
            }
            if let decodedObjects = try decodeKind(apiVersion: apiVersion, kind: kind, object) {
                decoded.objects += decodedObjects
            } else if let readable = readableVersion(of: kind, unsupported: apiVersion) {
                throw apiVersionNode.error("\(quoted(apiVersion)) of \(kind) is not supported: use \(readable)")
            }
        } catch let error as DocumentError {
            decoded.errors.append(error)
        } catch {
            decoded.errors.append(DocumentError(location: object.location, message: "\(error)"))
        }
    }

    /// `v1 List` as kubectl prints it, and the typed lists calicoctl prints.
    private static func isList(apiVersion: String, kind: String) -> Bool {
        switch (apiVersion, kind) {
        case ("v1", "List"),
             ("projectcalico.org/v3", "NetworkPolicyList"), ("projectcalico.org/v3", "GlobalNetworkPolicyList"):
            return true
        default:
            return false
        }
    }

    /// The objects of a kind Palisade reads, or nil when it does not read `kind` under `apiVersion`.
    private static func decodeKind(apiVersion: String, kind: String, _ object: DocumentNode) throws -> [StateObject]? {
        switch (apiVersion, kind) {
        case ("v1", "Namespace"):
            return [.namespace(try NamespaceDecoding.decode(object))]
        case ("v1", "Pod"):
            return [try WorkloadDecoding.decodePod(object)]
        case ("palisade.dev/v1", "Endpoint"):
            return [try WorkloadDecoding.decodeEndpoint(object)]
        case ("palisade.dev/v1", "Quarantine"):
            return [.quarantine(try QuarantineDecoding.decode(object))]
        case ("networking.k8s.io/v1", "NetworkPolicy"):
            return [.networkPolicy(try NetworkPolicyDecoding.decode(object))]
        case ("projectcalico.org/v3", "NetworkPolicy"):
            return [.calicoPolicy(try CalicoPolicyDecoding.decode(object, global: false))]
        case ("projectcalico.org/v3", "GlobalNetworkPolicy"):
            return [.calicoPolicy(try CalicoPolicyDecoding.decode(object, global: true))]
        default:
            return nil
        }
    }

    /// For a kind that `decodeKind` reads under some other apiVersion, the apiVersion to write
    /// instead (the one of the same API group when there is one, as Calico's NetworkPolicy next to
    /// Kubernetes'); nil for kinds Palisade does not know, which are skipped.
    private static func readableVersion(of kind: String, unsupported apiVersion: String) -> String? {
        let calico = "projectcalico.org/v3"
        switch kind {
        case "Namespace", "Pod":
            return "v1"
        case "Endpoint", "Quarantine":
            return "palisade.dev/v1"
        case "NetworkPolicy":
            // Calico's CRD storage form is crd.projectcalico.org/v1; older calicoctl wrote projectcalico.org/v2.
            return apiVersion.contains("projectcalico.org") ? calico : "networking.k8s.io/v1"
        case "GlobalNetworkPolicy":
            return calico
        default:
            return nil
        }
    }

    /// A Yams parse error as `invalid YAML: …` (or JSON, by the file's name) at the line libyaml reports.
    private static func syntaxError(_ error: Error, path: String) -> DocumentError {
        let language = path.lowercased().hasSuffix(".json") ? "JSON" : "YAML"
        func at(_ line: Int, _ message: String) -> DocumentError {
            DocumentError(location: SourceLocation(file: path, line: max(1, line)),
                          message: "invalid \(language): \(message)")
        }
        func detail(_ problem: String, _ context: YamlError.Context?) -> String {
            guard let context else { return problem }
            return "\(problem) (\(context.text) at line \(context.mark.line))"
        }
        guard let yamlError = error as? YamlError else { return at(1, "\(error)") }
        switch yamlError {
        case let .scanner(context, problem, mark, yaml):
            // libyaml's words for a tab where indentation is expected are cryptic: say it plainly.
            let tab = character(at: mark, in: yaml) == "\t" ? "; YAML does not allow tabs for indentation" : ""
            return at(mark.line, detail(problem, context) + tab)
        case let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return at(mark.line, detail(problem, context))
        case let .reader(problem, offset, _, yaml):
            return at(offset.map { lineNumber(atCharacterOffset: $0, in: yaml) } ?? 1, problem)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map(quoted).joined(separator: ", ")
            let noun = duplicates.count == 1 ? "key" : "keys"
            return at(context.mark.line, "\(noun) \(keys) given more than once in one mapping")
        default:
            return at(1, "\(yamlError)")
        }
    }

    /// The character a Yams mark (1-based line, column counted in Unicode scalars) points at.
    private static func character(at mark: Mark, in text: String) -> Unicode.Scalar? {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        guard mark.line >= 1, mark.line <= lines.count else { return nil }
        let scalars = Array(lines[mark.line - 1].unicodeScalars)
        guard mark.column >= 1, mark.column <= scalars.count else { return nil }
        return scalars[mark.column - 1]
    }

    private static func lineNumber(atCharacterOffset offset: Int, in text: String) -> Int {
        1 + text.prefix(offset).reduce(0) { count, character in character.isNewline ? count + 1 : count }
    }
}
