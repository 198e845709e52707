import MQTTCodec

// MARK: - Interest deltas

/// A change to the interest replica, broadcast by one shard to every other shard.
///
/// A shard sends ``add(_:shard:)`` when its own subscription count for an ordinary filter goes 0→1 and
/// ``remove(_:shard:)`` when it goes 1→0 (see ``LocalInterest``). For shared groups it sends the change in its
/// member count, because the publishing shard weighs its choice of target shard by member counts.
public enum InterestDelta: Hashable, Sendable {
    /// `shard` now has at least one ordinary subscription to `filter` (not shared).
    case add(TopicFilter, shard: ShardID)
    /// `shard` no longer has any ordinary subscription to `filter` (not shared).
    case remove(TopicFilter, shard: ShardID)
    /// `shard` gained `count` members of the shared group `filter` (`$share/{name}/{filter}`).
    case sharedAdd(TopicFilter, shard: ShardID, count: Int)
    /// `shard` lost `count` members of the shared group `filter`.
    case sharedRemove(TopicFilter, shard: ShardID, count: Int)
}

// MARK: - Local interest (this shard's refcounts)

/// This shard's own count of subscriptions per filter, which decides when an ``InterestDelta`` must go out.
///
/// Call ``subscribed(_:)`` once per new subscription (when ``SubscriptionTrie/insert(_:subscriber:value:)``
/// returned `nil`, not when it replaced one) and ``unsubscribed(_:)`` once per removed one. The answer is the
/// delta to broadcast, if any.
/// A returned `.add` marks a filter new on this shard: per the design, its SUBACK waits until every other
/// shard has acknowledged that delta, so that no publish after the SUBACK can miss the subscriber.
public struct LocalInterest {
    /// This shard.
    public let shard: ShardID
    @usableFromInline var counts: [TopicFilter: Int]

    /// No subscriptions yet on `shard`.
    public init(shard: ShardID) {
        self.shard = shard
        self.counts = [:]
    }

    /// The number of subscriptions to `filter` on this shard.
    public func count(for filter: TopicFilter) -> Int { counts[filter] ?? 0 }

    /// The number of distinct filters (shared groups counted separately) with a subscription on this shard.
    public var filterCount: Int { counts.count }

    /// Records one new subscription to `filter`.
    /// - Returns: `.add` when an ordinary filter goes 0→1; `.sharedAdd(count: 1)` for every new member of a
    ///   shared group; otherwise `nil`.
    public mutating func subscribed(_ filter: TopicFilter) -> InterestDelta? {
        let count = counts[filter, default: 0] + 1
        counts[filter] = count
        if filter.isShared { return .sharedAdd(filter, shard: shard, count: 1) }
        return count == 1 ? .add(filter, shard: shard) : nil
    }

    /// Records the removal of one subscription to `filter`.
    /// - Returns: `.remove` when an ordinary filter goes 1→0; `.sharedRemove(count: 1)` for every member that
    ///   leaves a shared group; otherwise `nil`.
    /// - Precondition: there is a subscription to `filter` on this shard (a refcount never goes negative).
    public mutating func unsubscribed(_ filter: TopicFilter) -> InterestDelta? {
        guard let current = counts[filter] else { preconditionFailure("unsubscribed from a filter never counted") }
        if current == 1 {
            counts.removeValue(forKey: filter)
        } else {
            counts[filter] = current - 1
        }
        if filter.isShared { return .sharedRemove(filter, shard: shard, count: 1) }
        return current == 1 ? .remove(filter, shard: shard) : nil
    }

    /// The deltas that rebuild this shard's interest on an empty replica (a shard that restarts, or joins).
    /// Sorted by filter bytes, so the order is deterministic.
    public func snapshotDeltas() -> [InterestDelta] {
        counts.sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }.map { filter, count in
            filter.isShared ? .sharedAdd(filter, shard: shard, count: count) : .add(filter, shard: shard)
        }
    }
}

// MARK: - Interest table (the replica)

/// A shared group's members per shard, as the replica knows them: what a publishing shard needs to pick one
/// target shard for the group.
public struct SharedInterestGroup {
    /// The ShareName.
    public let shareName: [UInt8]
    /// The group's filter as first announced.
    public let filter: TopicFilter
    /// Member counts per shard, sorted by shard, every count positive.
    @usableFromInline var shardCounts: [(shard: ShardID, count: Int)]
    /// The group's members over all shards.
    public private(set) var memberCount: Int

    init(filter: TopicFilter) {
        self.shareName = filter.shareName ?? []
        self.filter = filter
        self.shardCounts = []
        self.memberCount = 0
    }

    /// The shards with at least one member.
    public var shards: ShardSet { ShardSet(shardCounts.lazy.map(\.shard)) }

    /// The member count of `shard` in this group.
    public func memberCount(on shard: ShardID) -> Int {
        shardCounts.first { $0.shard == shard }?.count ?? 0
    }

    /// Picks one shard, weighted by member count: `counter mod memberCount` indexes the members laid out in
    /// shard order. A rotating counter therefore gives weighted round robin; a seeded random one a weighted
    /// random choice. Deterministic for a given counter.
    /// - Precondition: the group has members (the replica never keeps an empty group).
    /// - Complexity: O(shards with members).
    @inlinable
    public func selectShard(using counter: UInt64) -> ShardID {
        precondition(memberCount > 0, "selecting from an empty shared group")
        var remaining = Int(counter % UInt64(memberCount))
        for entry in shardCounts {
            if remaining < entry.count { return entry.shard }
            remaining -= entry.count
        }
        preconditionFailure("shared group counts out of step with memberCount")
    }

    /// Adds `delta` (positive or negative) to `shard`'s count.
    mutating func adjust(_ shard: ShardID, by delta: Int) {
        let position = shardCounts.firstIndex { $0.shard >= shard } ?? shardCounts.count
        if position < shardCounts.count && shardCounts[position].shard == shard {
            let updated = shardCounts[position].count + delta
            precondition(updated >= 0, "shared group member count would go negative")
            if updated == 0 {
                shardCounts.remove(at: position)
            } else {
                shardCounts[position].count = updated
            }
        } else {
            precondition(delta >= 0, "shared group member count would go negative")
            if delta > 0 { shardCounts.insert((shard, delta), at: position) }
        }
        memberCount += delta
    }
}

/// What an ``InterestTable`` node holds.
public struct InterestTableNode: TopicTriePayload {
    /// Shards with an ordinary subscription to the node's filter.
    public internal(set) var shards: ShardSet
    /// Shared groups with the node's filter.
    public internal(set) var sharedGroups: [SharedInterestGroup]

    /// A node with no interest.
    public init() {
        shards = ShardSet()
        sharedGroups = []
    }

    /// Whether the node holds no interest (it can then be pruned).
    @inlinable
    public var isEmpty: Bool { shards.isEmpty && sharedGroups.isEmpty }
}

/// The replica, held by every shard, of which shards have subscribers for which filters: filter → ``ShardSet``,
/// and for shared groups (ShareName, filter) → member count per shard. Fed by ``InterestDelta``s from every
/// shard (its own included), in per-sender order.
///
/// Back of the envelope for ``interestedShards(for:)``: the same trie walk as ``SubscriptionTrie`` (a hash lookup
/// per topic level per live path), but each matching filter costs one 4-word OR rather than a walk over
/// subscribers: typically well under 1 µs per publish, no allocation.
public struct InterestTable {
    @usableFromInline var trie: TopicTrie<InterestTableNode>

    /// The number of (ordinary filter, shard) pairs held.
    public private(set) var entryCount: Int
    /// The number of shared groups held.
    public private(set) var sharedGroupCount: Int

    /// An empty replica.
    public init() {
        trie = TopicTrie()
        entryCount = 0
        sharedGroupCount = 0
    }

    /// The number of trie nodes in use, the root included.
    public var nodeCount: Int { trie.nodeCount }

    /// Applies one delta.
    ///
    /// Adding a (filter, shard) pair already present, or removing one absent, changes nothing: the replica is a
    /// set of pairs.
    /// - Returns: whether the replica changed.
    /// - Precondition: ordinary deltas name non-shared filters, shared deltas shared ones with `count >= 0`, and a
    ///   shared removal never takes a shard's member count below zero (deltas from one shard arrive in order).
    @discardableResult
    public mutating func apply(_ delta: InterestDelta) -> Bool {
        switch delta {
        case .add(let filter, let shard):
            precondition(!filter.isShared, "ordinary interest delta for a shared filter")
            let node = trie.findOrCreate(filter.matchingBytes)
            let inserted = trie[payloadOf: node].shards.insert(shard)
            if inserted { entryCount += 1 } else { trie.pruneIfEmpty(node) }
            return inserted
        case .remove(let filter, let shard):
            precondition(!filter.isShared, "ordinary interest delta for a shared filter")
            guard let node = trie.find(filter.matchingBytes) else { return false }
            let removed = trie[payloadOf: node].shards.remove(shard)
            if removed { entryCount -= 1 }
            trie.pruneIfEmpty(node)
            return removed
        case .sharedAdd(let filter, let shard, let count):
            return adjustShared(filter, shard: shard, by: count)
        case .sharedRemove(let filter, let shard, let count):
            return adjustShared(filter, shard: shard, by: -count)
        }
    }

    mutating func adjustShared(_ filter: TopicFilter, shard: ShardID, by delta: Int) -> Bool {
        precondition(filter.isShared, "shared interest delta for an ordinary filter")
        if delta == 0 { return false }
        let shareName = filter.shareName ?? []
        let node: TopicTrie<InterestTableNode>.NodeIndex
        if delta > 0 {
            node = trie.findOrCreate(filter.matchingBytes)
        } else {
            guard let existing = trie.find(filter.matchingBytes) else {
                preconditionFailure("shared group member count would go negative")
            }
            node = existing
        }
        let position: Int
        if let existing = trie[payloadOf: node].sharedGroups.firstIndex(where: { $0.shareName == shareName }) {
            position = existing
        } else {
            precondition(delta > 0, "shared group member count would go negative")
            trie[payloadOf: node].sharedGroups.append(SharedInterestGroup(filter: filter))
            sharedGroupCount += 1
            position = trie[payloadOf: node].sharedGroups.count - 1
        }
        trie[payloadOf: node].sharedGroups[position].adjust(shard, by: delta)
        if trie[payloadOf: node].sharedGroups[position].memberCount == 0 {
            trie[payloadOf: node].sharedGroups.remove(at: position)
            sharedGroupCount -= 1
            trie.pruneIfEmpty(node)
        }
        return true
    }

    /// The shards with an ordinary subscription whose filter matches `topic` (shared groups not included: see
    /// ``sharedGroups(for:_:)``).
    ///
    /// [MQTT-4.7.2-1] Filters starting with a wildcard do not match topics starting with `$`.
    /// - Complexity: a trie walk; no allocation.
    @inlinable
    public func interestedShards(for topic: TopicName) -> ShardSet {
        var result = ShardSet()
        trie.forEachFilterMatching(topic) { node in result.formUnion(node.shards) }
        return result
    }

    /// The shards with an ordinary subscription matching `topic`, and every matching shared group visited once
    /// per (ShareName, filter): what ``interestedShards(for:)`` and ``sharedGroups(for:_:)`` answer, in one walk
    /// of the trie (the publish path needs both).
    @inlinable
    public func match(_ topic: TopicName, sharedGroup: (SharedInterestGroup) -> Void) -> ShardSet {
        var result = ShardSet()
        trie.forEachFilterMatching(topic) { node in
            result.formUnion(node.shards)
            for group in node.sharedGroups { sharedGroup(group) }
        }
        return result
    }

    /// Visits every shared group whose filter matches `topic`, once per (ShareName, filter). The caller picks
    /// one target shard per group with ``SharedInterestGroup/selectShard(using:)``.
    @inlinable
    public func sharedGroups(for topic: TopicName, _ body: (SharedInterestGroup) -> Void) {
        trie.forEachFilterMatching(topic) { node in
            for group in node.sharedGroups { body(group) }
        }
    }

    /// The shards holding `filter` exactly (no matching), for tests and diagnostics.
    public func shards(forFilter filter: TopicFilter) -> ShardSet {
        guard let node = trie.find(filter.matchingBytes) else { return ShardSet() }
        return trie[payloadOf: node].shards
    }

    /// The member count of `shard` in the shared group `filter`, for tests and diagnostics.
    public func sharedMemberCount(_ filter: TopicFilter, on shard: ShardID) -> Int {
        guard let node = trie.find(filter.matchingBytes) else { return 0 }
        let shareName = filter.shareName ?? []
        return trie[payloadOf: node].sharedGroups.first { $0.shareName == shareName }?.memberCount(on: shard) ?? 0
    }

    /// Checks the trie's structure. Expensive; for tests.
    public func checkInvariants() -> String? { trie.checkInvariants() }
}
