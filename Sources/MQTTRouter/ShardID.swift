import MQTTCodec

// MARK: - Shard identity and homing

/// The identity of one shard: one pinned thread with its own io_uring ring and its own slice of router state.
///
/// Shards are numbered `0..<shardCount`. A ``ShardSet`` holds up to ``ShardSet/capacity`` of them.
public struct ShardID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The shard's index, `0..<shardCount`.
    public var rawValue: UInt16

    /// Wraps a shard index.
    @inlinable
    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// Wraps a shard index given as an `Int`.
    /// - Precondition: `0 <= index < ShardSet.capacity`.
    @inlinable
    public init(_ index: Int) {
        precondition(index >= 0 && index < ShardSet.capacity, "shard index out of range")
        self.rawValue = UInt16(truncatingIfNeeded: index)
    }

    /// The shard's index as an `Int`.
    @inlinable
    public var index: Int { Int(rawValue) }

    /// Orders shards by index.
    @inlinable
    public static func < (lhs: ShardID, rhs: ShardID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// "shard N", for logs.
    public var description: String { "shard \(rawValue)" }

    /// The home shard of a session: `StableHash.homing(clientIdentifier) mod shardCount`.
    ///
    /// Stable across runs, processes and machines (it never uses Swift's per-process seeded `Hasher`), so a
    /// client identifier always lands on the same shard for a given shard count, and a future durable log can
    /// be replayed onto the right shard.
    /// - Parameters:
    ///   - bytes: the client identifier's UTF-8 bytes.
    ///   - shardCount: the number of shards, `1...ShardSet.capacity`.
    /// - Complexity: O(n) in the identifier's length.
    @inlinable
    public static func home(forClientIdentifier bytes: some Collection<UInt8>, shardCount: Int) -> ShardID {
        precondition(shardCount > 0 && shardCount <= ShardSet.capacity, "shard count out of range")
        return ShardID(rawValue: UInt16(truncatingIfNeeded: StableHash.homing(bytes) % UInt64(shardCount)))
    }

    /// The shard that owns the retained message of `topic`: `StableHash.homing(topic bytes) mod shardCount`.
    /// - Parameters:
    ///   - topic: the topic name.
    ///   - shardCount: the number of shards, `1...ShardSet.capacity`.
    /// - Complexity: O(n) in the topic's length.
    @inlinable
    public static func home(forTopic topic: TopicName, shardCount: Int) -> ShardID {
        home(forTopicBytes: topic.bytes, shardCount: shardCount)
    }

    /// The owner of the retained messages of a topic given as bytes, for example an exact (wildcard-free)
    /// filter's ``TopicFilter/matchingBytes``: the same shard ``home(forTopic:shardCount:)`` gives for the
    /// topic with those bytes.
    @inlinable
    public static func home(forTopicBytes bytes: some Collection<UInt8>, shardCount: Int) -> ShardID {
        precondition(shardCount > 0 && shardCount <= ShardSet.capacity, "shard count out of range")
        return ShardID(rawValue: UInt16(truncatingIfNeeded: StableHash.homing(bytes) % UInt64(shardCount)))
    }
}

/// Stable, unseeded hashing for values that must hash the same in every process (homing, persisted data).
public enum StableHash {
    /// The FNV-1a 64-bit offset basis.
    public static let fnvOffsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    /// The FNV-1a 64-bit prime.
    public static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3

    /// FNV-1a 64 of `bytes` (the standard function: `fnv1a64("a") == 0xaf63dc4c8601ec8c`).
    /// - Complexity: O(n), one multiply per byte.
    @inlinable
    public static func fnv1a64(_ bytes: some Collection<UInt8>) -> UInt64 {
        var hash = fnvOffsetBasis
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= fnvPrime
        }
        return hash
    }

    /// The hash that homes sessions and retained topics: FNV-1a 64 followed by the SplitMix64 finaliser, so that
    /// `mod shardCount` spreads well even for identifiers that differ only in their last byte.
    ///
    /// The result is part of the broker's persistent contract: changing it re-homes every session.
    @inlinable
    public static func homing(_ bytes: some Collection<UInt8>) -> UInt64 {
        mix(fnv1a64(bytes))
    }

    /// The SplitMix64 finaliser: a bijective avalanche of 64 bits.
    @inlinable
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

// MARK: - Shard sets

/// A set of shards as a fixed 256-bit bitset, stored inline (four words, no allocation).
///
/// Used for "which shards are interested in this publish": unions and iteration cost a handful of word
/// operations regardless of how many shards there are.
public struct ShardSet: Hashable, Sendable, Sequence, CustomStringConvertible {
    /// The largest number of shards a set can hold.
    public static let capacity = 256

    @usableFromInline var word0: UInt64
    @usableFromInline var word1: UInt64
    @usableFromInline var word2: UInt64
    @usableFromInline var word3: UInt64

    /// The empty set.
    @inlinable
    public init() {
        word0 = 0
        word1 = 0
        word2 = 0
        word3 = 0
    }

    /// A set holding `shards`.
    @inlinable
    public init(_ shards: some Sequence<ShardID>) {
        self.init()
        for shard in shards { insert(shard) }
    }

    /// The set of every shard in `0..<shardCount`.
    /// - Precondition: `0 <= shardCount <= capacity`.
    @inlinable
    public static func all(shardCount: Int) -> ShardSet {
        precondition(shardCount >= 0 && shardCount <= capacity, "shard count out of range")
        var set = ShardSet()
        for index in 0..<shardCount { set.insert(ShardID(index)) }
        return set
    }

    @inlinable
    func word(_ index: Int) -> UInt64 {
        switch index {
        case 0: return word0
        case 1: return word1
        case 2: return word2
        default: return word3
        }
    }

    @inlinable
    mutating func setWord(_ index: Int, _ value: UInt64) {
        switch index {
        case 0: word0 = value
        case 1: word1 = value
        case 2: word2 = value
        default: word3 = value
        }
    }

    /// Whether the set holds no shard.
    @inlinable
    public var isEmpty: Bool { (word0 | word1 | word2 | word3) == 0 }

    /// The number of shards in the set.
    @inlinable
    public var count: Int {
        word0.nonzeroBitCount + word1.nonzeroBitCount + word2.nonzeroBitCount + word3.nonzeroBitCount
    }

    /// Whether `shard` is in the set.
    @inlinable
    public func contains(_ shard: ShardID) -> Bool {
        let index = Int(shard.rawValue)
        precondition(index < ShardSet.capacity, "shard index out of range")
        return word(index >> 6) & (1 &<< UInt64(index & 63)) != 0
    }

    /// Adds `shard`.
    /// - Returns: whether it was absent before.
    @inlinable
    @discardableResult
    public mutating func insert(_ shard: ShardID) -> Bool {
        let index = Int(shard.rawValue)
        precondition(index < ShardSet.capacity, "shard index out of range")
        let old = word(index >> 6)
        let bit: UInt64 = 1 &<< UInt64(index & 63)
        setWord(index >> 6, old | bit)
        return old & bit == 0
    }

    /// Removes `shard`.
    /// - Returns: whether it was present before.
    @inlinable
    @discardableResult
    public mutating func remove(_ shard: ShardID) -> Bool {
        let index = Int(shard.rawValue)
        precondition(index < ShardSet.capacity, "shard index out of range")
        let old = word(index >> 6)
        let bit: UInt64 = 1 &<< UInt64(index & 63)
        setWord(index >> 6, old & ~bit)
        return old & bit != 0
    }

    /// Adds every shard of `other`.
    @inlinable
    public mutating func formUnion(_ other: ShardSet) {
        word0 |= other.word0
        word1 |= other.word1
        word2 |= other.word2
        word3 |= other.word3
    }

    /// The shards in either set.
    @inlinable
    public func union(_ other: ShardSet) -> ShardSet {
        var result = self
        result.formUnion(other)
        return result
    }

    /// The shards in both sets.
    @inlinable
    public func intersection(_ other: ShardSet) -> ShardSet {
        var result = self
        result.word0 &= other.word0
        result.word1 &= other.word1
        result.word2 &= other.word2
        result.word3 &= other.word3
        return result
    }

    /// The shards of this set that are not in `other`.
    @inlinable
    public func subtracting(_ other: ShardSet) -> ShardSet {
        var result = self
        result.word0 &= ~other.word0
        result.word1 &= ~other.word1
        result.word2 &= ~other.word2
        result.word3 &= ~other.word3
        return result
    }

    /// Iterates the shards in ascending order, one `trailingZeroBitCount` per shard.
    public struct Iterator: IteratorProtocol {
        @usableFromInline var set: ShardSet
        @usableFromInline var wordIndex: Int
        @usableFromInline var current: UInt64

        @inlinable
        init(_ set: ShardSet) {
            self.set = set
            self.wordIndex = 0
            self.current = set.word0
        }

        /// The next shard in ascending order, or `nil`.
        @inlinable
        public mutating func next() -> ShardID? {
            while current == 0 {
                wordIndex += 1
                if wordIndex >= 4 { return nil }
                current = set.word(wordIndex)
            }
            let bit = current.trailingZeroBitCount
            current &= current &- 1
            return ShardID(rawValue: UInt16(truncatingIfNeeded: wordIndex << 6 | bit))
        }
    }

    /// The shards in ascending order.
    @inlinable
    public func makeIterator() -> Iterator { Iterator(self) }

    /// The number of shards (exact).
    @inlinable
    public var underestimatedCount: Int { count }

    /// The shard indices, for logs and test failures.
    public var description: String { "ShardSet(\(map(\.rawValue)))" }
}
