import MQTTCodec
import Testing

@testable import MQTTRouter

@Suite struct ShardIDTests {
    @Test func fnv1a64MatchesPublishedVectors() {
        // Proves StableHash.fnv1a64 is the standard FNV-1a 64 (published test vectors), not a seeded hash.
        #expect(StableHash.fnv1a64([UInt8]()) == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a64(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.fnv1a64(Array("foobar".utf8)) == 0x8594_4171_f739_67e8)
    }

    @Test func homingIsStableAndConsistentAcrossEntryPoints() {
        // Proves homing depends only on the bytes and shard count: pinned values (a change would re-home every
        // session), the same shard for a topic and for its bytes, and every result in range.
        #expect(StableHash.homing(Array("client-1".utf8)) == StableHash.mix(StableHash.fnv1a64(Array("client-1".utf8))))
        let pinned = ShardID.home(forClientIdentifier: Array("client-1".utf8), shardCount: 16)
        #expect(pinned == ShardID.home(forClientIdentifier: "client-1".utf8, shardCount: 16))
        #expect(pinned.rawValue == UInt16(StableHash.homing(Array("client-1".utf8)) % 16))
        let name = topic("sensors/1/temperature")
        #expect(ShardID.home(forTopic: name, shardCount: 7) == ShardID.home(forTopicBytes: name.bytes, shardCount: 7))
        var random = SplitMix64(seed: 99)
        var histogram = [Int](repeating: 0, count: 8)
        for index in 0..<8000 {
            let id = Array("device-\(index)".utf8)
            let shard = ShardID.home(forClientIdentifier: id, shardCount: 8)
            #expect(shard.index < 8)
            histogram[shard.index] += 1
            _ = random.next()
        }
        // Sequential identifiers spread evenly (each shard within 15% of its fair share).
        for count in histogram { #expect(abs(count - 1000) < 150, "histogram \(histogram)") }
    }

    @Test func shardSetMatchesSetModel() {
        // Proves ShardSet's insert/remove/contains/count/iteration agree with Set<UInt16> over random operations
        // on all 256 shards, and that iteration is ascending.
        for seed in testSeeds {
            var random = SplitMix64(seed: seed)
            var set = ShardSet()
            var model = Set<UInt16>()
            for _ in 0..<600 {
                let shard = ShardID(random.below(ShardSet.capacity))
                if random.chance(60) {
                    #expect(set.insert(shard) == model.insert(shard.rawValue).inserted, "seed \(seed)")
                } else {
                    #expect(set.remove(shard) == (model.remove(shard.rawValue) != nil), "seed \(seed)")
                }
                #expect(set.contains(shard) == model.contains(shard.rawValue), "seed \(seed)")
            }
            #expect(set.count == model.count, "seed \(seed)")
            #expect(set.map(\.rawValue) == model.sorted(), "seed \(seed)")
            #expect(set.isEmpty == model.isEmpty)
        }
    }

    @Test func shardSetAlgebra() {
        // Proves union, intersection, subtraction and all(shardCount:) on sets spanning all four words.
        let left = ShardSet([ShardID(0), ShardID(63), ShardID(64), ShardID(200)])
        let right = ShardSet([ShardID(63), ShardID(128), ShardID(255)])
        #expect(left.union(right).map(\.index) == [0, 63, 64, 128, 200, 255])
        #expect(left.intersection(right).map(\.index) == [63])
        #expect(left.subtracting(right).map(\.index) == [0, 64, 200])
        #expect(ShardSet.all(shardCount: 256).count == 256)
        #expect(ShardSet.all(shardCount: 3).map(\.index) == [0, 1, 2])
        #expect(ShardSet().isEmpty && ShardSet().map(\.index).isEmpty)
    }
}
