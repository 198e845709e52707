// MARK: - Seeded random numbers

/// A deterministic random number generator (SplitMix64, Steele, Lea and Flood 2014): the same seed gives
/// the same sequence on every run and platform, so a failure can print its seed and be replayed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    /// The generator's state; the seed at start.
    public private(set) var state: UInt64

    /// Creates a generator from `seed`.
    public init(seed: UInt64) { self.state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}
