// Canonical nft text for rules, chains and tables (filled in by the renderer).
public enum RulesetText {
    public static func render(_ rule: Rule) -> String {
        rule.exprs.map { "\($0)" }.joined(separator: " ")
    }
}
