// swift-tools-version:6.0
// Palisade: per-node network policy enforcement agent. GPL-2.0-or-later (links libnftnl).
import PackageDescription

let package = Package(
    name: "palisade",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "agentd", targets: ["agentd"]),
        .executable(name: "agentctl", targets: ["agentctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        // 1.16.2: LogHandler.log(event:), which JSONLogHandler implements.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // The registry and text encoder of the metrics endpoint; brings swift-atomics and swift-metrics, no SwiftNIO.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
    ],
    targets: [
        // C layer: libnftnl + libmnl + kernel headers, plus prefixed shims for macros.
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),

        // Pure modules: no Glibc, no C.
        .target(name: "NetworkAddress"),
        .target(name: "PolicyModel", dependencies: ["NetworkAddress", .product(name: "Yams", package: "Yams")]),
        .target(name: "NftablesModel", dependencies: ["NetworkAddress"]),
        .target(name: "PolicyCompiler", dependencies: ["PolicyModel", "NftablesModel", "FlowAnalysis"]),
        .target(name: "FlowAnalysis", dependencies: ["NetworkAddress"]),
        // Reports from the agent's records (Foundation for JSON and files; not in the pure list).
        .target(name: "Compliance", dependencies: ["AgentCore"]),

        // Linux layer.
        .target(name: "NftablesNetlink", dependencies: ["CNftnl", "NftablesModel", "NetworkAddress"]),
        .target(name: "AgentCore", dependencies: [
            "PolicyModel", "NftablesModel", "PolicyCompiler", "NftablesNetlink", "NetworkAddress", "FlowAnalysis",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(name: "agentd", dependencies: [
            "AgentCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "palisade-bench", dependencies: ["PolicyModel", "NftablesModel", "PolicyCompiler", "NetworkAddress", "NftablesNetlink",
                                                                 "FlowAnalysis"]),
        .executableTarget(name: "agentctl", dependencies: [
            "AgentCore", "PolicyModel", "Compliance", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "PolicyModelTests", dependencies: ["PolicyModel", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "NftablesModelTests", dependencies: ["NftablesModel"]),
        .testTarget(name: "FlowAnalysisTests", dependencies: ["FlowAnalysis"]),
        .testTarget(name: "PolicyCompilerTests", dependencies: ["PolicyCompiler", "PolicyModel", "NftablesModel", "FlowAnalysis"],
                    resources: [.copy("Golden")]),
        .testTarget(name: "NftablesNetlinkTests", dependencies: ["NftablesNetlink", "NftablesModel", "NetworkAddress"]),
        .testTarget(name: "AgentCoreTests", dependencies: ["AgentCore"]),
        .testTarget(name: "ComplianceTests", dependencies: ["Compliance", "AgentCore"]),
        .testTarget(name: "EnforcementTests", dependencies: []),
    ],
    swiftLanguageModes: [.v5]
)
