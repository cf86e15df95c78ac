// NftablesNetlink
