import MQTTCodec
import Testing

@testable import MQTTRouter

/// The model of every shard's subscriptions: shard -> filter -> number of subscriptions.
typealias InterestModel = [[TopicFilter: Int]]

func expectedShards(_ model: InterestModel, _ topic: TopicName) -> ShardSet {
    var result = ShardSet()
    for (index, filters) in model.enumerated() {
        for (filter, count) in filters where count > 0 && !filter.isShared && filter.matches(topic) {
            result.insert(ShardID(index))
        }
    }
    return result
}

func expectedSharedGroups(_ model: InterestModel, _ topic: TopicName) -> [String] {
    var groups: [String: [Int: Int]] = [:]
    for (index, filters) in model.enumerated() {
        for (filter, count) in filters where count > 0 && filter.isShared && filter.matches(topic) {
            groups[groupKey(filter), default: [:]][index, default: 0] += count
        }
    }
    return groups.map { key, counts in
        key + " " + counts.sorted { $0.key < $1.key }.map { "\($0.key)x\($0.value)" }.joined(separator: ",")
    }.sorted()
}

func actualSharedGroups(_ table: InterestTable, _ topic: TopicName, shardCount: Int) -> [String] {
    var result: [String] = []
    table.sharedGroups(for: topic) { group in
        let counts = (0..<shardCount).compactMap { index -> String? in
            let count = group.memberCount(on: ShardID(index))
            return count > 0 ? "\(index)x\(count)" : nil
        }
        result.append(groupKey(group.filter) + " " + counts.joined(separator: ","))
    }
    return result.sorted()
}

@Suite struct InterestTableTests {
    @Test func replicaMatchesModelUnderRandomDeltas() {
        // Proves LocalInterest emits a delta exactly on 0→1 and 1→0 for ordinary filters (and on every
        // shared membership change), and that an InterestTable fed those deltas answers interestedShards and
        // sharedGroups like a naive model, whether the deltas arrive at once or in another interleaving that
        // keeps each sender's order.
        let shardCount = 5
        for seed in testSeeds {
            var random = SplitMix64(seed: seed)
            let (filterLevels, topicLevels) = alphabets(for: seed)
            var locals = (0..<shardCount).map { LocalInterest(shard: ShardID($0)) }
            var model = InterestModel(repeating: [:], count: shardCount)
            var replica = InterestTable()
            var lagging = InterestTable()
            var pending = [[InterestDelta]](repeating: [], count: shardCount)
            var failed = false
            for step in 0..<500 where !failed {
                let shard = random.below(shardCount)
                let owned = model[shard].filter { $0.value > 0 }.keys.sorted { $0.description < $1.description }
                let delta: InterestDelta?
                if owned.isEmpty || random.chance(55) {
                    let filter = randomFilter(&random, levels: filterLevels, sharedPercent: 30)
                    let before = model[shard][filter] ?? 0
                    delta = locals[shard].subscribed(filter)
                    model[shard][filter] = before + 1
                    let expected: InterestDelta? = filter.isShared
                        ? .sharedAdd(filter, shard: ShardID(shard), count: 1)
                        : (before == 0 ? .add(filter, shard: ShardID(shard)) : nil)
                    #expect(delta == expected, "seed \(seed) step \(step)")
                } else {
                    let filter = random.pick(owned)
                    let before = model[shard][filter]!
                    delta = locals[shard].unsubscribed(filter)
                    model[shard][filter] = before - 1 == 0 ? nil : before - 1
                    let expected: InterestDelta? = filter.isShared
                        ? .sharedRemove(filter, shard: ShardID(shard), count: 1)
                        : (before == 1 ? .remove(filter, shard: ShardID(shard)) : nil)
                    #expect(delta == expected, "seed \(seed) step \(step)")
                }
                if let delta {
                    let changed = replica.apply(delta)
                    #expect(changed, "seed \(seed) step \(step): a delta always changes the replica")
                    pending[shard].append(delta)
                }
                // Deliver some pending deltas to the lagging replica, one sender at a time, in sender order.
                for _ in 0..<random.below(3) {
                    let sender = random.below(shardCount)
                    if !pending[sender].isEmpty { lagging.apply(pending[sender].removeFirst()) }
                }
                if let problem = replica.checkInvariants() {
                    Issue.record("invariant \(problem), seed \(seed) step \(step)")
                    failed = true
                }
                for _ in 0..<4 where !failed {
                    let name = randomTopic(&random, levels: topicLevels)
                    let shards = replica.interestedShards(for: name)
                    let groups = actualSharedGroups(replica, name, shardCount: shardCount)
                    if shards != expectedShards(model, name) || groups != expectedSharedGroups(model, name) {
                        Issue.record("seed \(seed) step \(step) topic \(name): \(shards) \(groups)")
                        failed = true
                    }
                }
            }
            for sender in 0..<shardCount {
                for delta in pending[sender] { lagging.apply(delta) }
            }
            for name in allTopics(over: topicLevels, maxLevels: 3) {
                #expect(lagging.interestedShards(for: name) == replica.interestedShards(for: name), "seed \(seed)")
                #expect(actualSharedGroups(lagging, name, shardCount: shardCount)
                    == actualSharedGroups(replica, name, shardCount: shardCount), "seed \(seed)")
            }
            // Unsubscribing everything empties the replica down to its root.
            for shard in 0..<shardCount {
                for (filter, count) in model[shard] {
                    for _ in 0..<count {
                        if let delta = locals[shard].unsubscribed(filter) { replica.apply(delta) }
                    }
                }
                #expect(locals[shard].filterCount == 0, "seed \(seed)")
            }
            #expect(replica.nodeCount == 1 && replica.entryCount == 0 && replica.sharedGroupCount == 0, "seed \(seed)")
        }
    }

    @Test func snapshotDeltasRebuildTheReplica() {
        // Proves LocalInterest.snapshotDeltas rebuilds, on an empty replica, the same interest its incremental
        // deltas built, and comes out in a deterministic order.
        var random = SplitMix64(seed: 5)
        var local = LocalInterest(shard: ShardID(3))
        var incremental = InterestTable()
        for _ in 0..<200 {
            if let delta = local.subscribed(randomFilter(&random, levels: filterLevels, sharedPercent: 30)) {
                incremental.apply(delta)
            }
        }
        var rebuilt = InterestTable()
        for delta in local.snapshotDeltas() { rebuilt.apply(delta) }
        #expect(local.snapshotDeltas() == local.snapshotDeltas())
        for name in allTopics(over: topicLevels, maxLevels: 3) {
            #expect(rebuilt.interestedShards(for: name) == incremental.interestedShards(for: name))
            #expect(actualSharedGroups(rebuilt, name, shardCount: 4) == actualSharedGroups(incremental, name, shardCount: 4))
        }
    }

    @Test func sharedGroupSelectionIsWeightedAndDeterministic() {
        // Proves selectShard picks each shard in proportion to its member count over a full cycle of the
        // counter, and gives the same answer for the same counter.
        var table = InterestTable()
        let group = filter("$share/workers/jobs/+")
        table.apply(.sharedAdd(group, shard: ShardID(2), count: 1))
        table.apply(.sharedAdd(group, shard: ShardID(0), count: 3))
        table.apply(.sharedAdd(group, shard: ShardID(7), count: 2))
        table.apply(.sharedRemove(group, shard: ShardID(7), count: 1))
        var picks: [Int: Int] = [:]
        var visited = 0
        table.sharedGroups(for: topic("jobs/1")) { found in
            visited += 1
            #expect(found.memberCount == 5)
            #expect(found.shards.map(\.index) == [0, 2, 7])
            for counter in 0..<UInt64(50) {
                picks[found.selectShard(using: counter).index, default: 0] += 1
                #expect(found.selectShard(using: counter) == found.selectShard(using: counter + 5))
            }
        }
        #expect(visited == 1)
        #expect(picks == [0: 30, 2: 10, 7: 10])
        // Shared groups do not show up as ordinary interest.
        #expect(table.interestedShards(for: topic("jobs/1")).isEmpty)
    }

    @Test func dollarTopicsAndParentLevelInReplica() {
        // Proves the replica applies [MQTT-4.7.2-1] and '#' parent-level matching, and that ordinary deltas are
        // idempotent set operations.
        var table = InterestTable()
        let added = table.apply(.add(filter("#"), shard: ShardID(1)))
        let addedAgain = table.apply(.add(filter("#"), shard: ShardID(1)))
        #expect(added && !addedAgain)
        table.apply(.add(filter("$SYS/#"), shard: ShardID(2)))
        table.apply(.add(filter("a/#"), shard: ShardID(3)))
        #expect(table.interestedShards(for: topic("$SYS/x")).map(\.index) == [2])
        #expect(table.interestedShards(for: topic("a")).map(\.index) == [1, 3])
        let removed = table.apply(.remove(filter("#"), shard: ShardID(1)))
        let removedAgain = table.apply(.remove(filter("#"), shard: ShardID(1)))
        #expect(removed && !removedAgain)
        #expect(table.interestedShards(for: topic("a")).map(\.index) == [3])
        #expect(table.shards(forFilter: filter("a/#")).map(\.index) == [3])
        #expect(table.checkInvariants() == nil)
    }
}
