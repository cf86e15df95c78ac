/// `RulesetText.render(table)` made loadable by `nft -f`. The renderer prints the table the way
/// `nft list` reads it back; checked with `nft -f` in a throwaway network namespace (nftables
/// as installed here), every construct the synthetic state produces loads as rendered, so there is
/// nothing to rewrite. This is the place for a fix if a renderer change ever breaks that: scripts/bench
/// scale fails loudly (and prints nft's message) when `nft -f` refuses the text.
enum NftText {
    static func loadable(_ text: String) -> String {
        text
    }
}
