// swift-tools-version:6.0
//
// Shoal: a thread-per-core MQTT broker. Targets are layered; dependencies point down only:
//
//   CIOUring, COpenSSL (C shims)
//     -> MQTTCodec   (pure: packets, properties, topics; no I/O, no Foundation)
//     -> MQTTRouter  (pure: sessions, trie, retained, interest replica; no I/O, no clock)
//     -> ShardRuntime (io_uring reactor, SPSC mesh, timer wheel, connection slab)
//     -> BrokerTLS   (OpenSSL over memory BIOs)
//     -> Broker      (wiring router + runtime, configuration, limits, metrics)
//     -> shoal       (the executable)
import PackageDescription

// Exclusivity checks on class properties cost ~20 ns per access at -O (../shared/SWIFT-LINUX-NOTES.md);
// hot state lives in structs, and release builds drop the dynamic checks.
let releaseFlags: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Shoal",
    products: [
        .executable(name: "shoal", targets: ["shoal"]),
        .executable(name: "shoal-bench", targets: ["shoal-bench"]),
        .library(name: "MQTTCodec", targets: ["MQTTCodec"]),
    ],
    targets: [
        // MARK: - C shims
        .target(
            name: "CIOUring",
            path: "Sources/CIOUring",
            linkerSettings: [.linkedLibrary("uring")]
        ),
        .target(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),

        // MARK: - Swift modules
        .target(name: "MQTTCodec", swiftSettings: releaseFlags),
        .target(name: "MQTTRouter", dependencies: ["MQTTCodec"], swiftSettings: releaseFlags),
        .target(name: "ShardRuntime", dependencies: ["CIOUring"], swiftSettings: releaseFlags),
        .target(name: "BrokerTLS", dependencies: ["COpenSSL"], swiftSettings: releaseFlags),
        .target(
            name: "Broker",
            dependencies: ["MQTTCodec", "MQTTRouter", "ShardRuntime", "BrokerTLS", "COpenSSL"],
            swiftSettings: releaseFlags
        ),
        .executableTarget(name: "shoal", dependencies: ["Broker"], swiftSettings: releaseFlags),

        // MARK: - Tests
        .target(
            name: "ShoalTestSupport",
            dependencies: ["MQTTCodec"],
            path: "Sources/ShoalTestSupport"
        ),
        .testTarget(name: "MQTTCodecTests", dependencies: ["MQTTCodec", "ShoalTestSupport"]),
        .testTarget(name: "MQTTRouterTests", dependencies: ["MQTTRouter", "ShoalTestSupport"]),
        .testTarget(name: "ShardRuntimeTests", dependencies: ["ShardRuntime"]),
        .testTarget(name: "BrokerTLSTests", dependencies: ["BrokerTLS"]),
        .testTarget(name: "BrokerTests", dependencies: ["Broker", "ShoalTestSupport"]),

        // MARK: - Benchmarks (executables; they print figures, they assert nothing about time)
        .target(name: "BenchmarkSupport", path: "Benchmarks/BenchmarkSupport", swiftSettings: releaseFlags),
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: ["MQTTCodec", "BenchmarkSupport"],
            path: "Benchmarks/CodecBenchmarks",
            swiftSettings: releaseFlags,
            // The allocation counter interposes malloc: the executable must export it (AllocationCounter.swift).
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]
        ),
        .executableTarget(
            name: "shoal-bench",
            dependencies: ["MQTTCodec", "COpenSSL"],
            path: "Benchmarks/shoal-bench",
            swiftSettings: releaseFlags
        ),
        .executableTarget(
            name: "RouterBenchmarks",
            dependencies: ["MQTTRouter", "BenchmarkSupport"],
            path: "Benchmarks/RouterBenchmarks",
            swiftSettings: releaseFlags,
            // The allocation counter interposes malloc: the executable must export it (AllocationCounter.swift).
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]
        ),
        .executableTarget(
            name: "RuntimeBenchmarks",
            dependencies: ["ShardRuntime"],
            path: "Benchmarks/RuntimeBenchmarks",
            swiftSettings: releaseFlags
        ),
    ]
)
