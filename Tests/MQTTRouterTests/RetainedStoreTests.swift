import MQTTCodec
import Testing

@testable import MQTTRouter

func retainedMatch(_ store: RetainedStore<Int>, _ filter: TopicFilter) -> [String] {
    var result: [String] = []
    store.match(filter) { name, message in result.append("\(name)=\(message)") }
    return result.sorted()
}

func oracleRetained(_ model: [TopicName: Int], _ filter: TopicFilter) -> [String] {
    model.filter { filter.matches($0.key) }.map { "\($0.key)=\($0.value)" }.sorted()
}

@Suite struct RetainedStoreTests {
    @Test func matchesOracleExhaustivelyOnSmallAlphabet() {
        // Proves match agrees with TopicFilter.matches for every filter of up to 3 levels over
        // {a, $b, "", +, #} (and their shared forms) against a store holding every topic of up to 3 levels over
        // {a, $b, ""}, and that clearing everything prunes the trie to its root.
        let topics = allTopics(over: ["a", "$b", ""], maxLevels: 3)
        var store = RetainedStore<Int>()
        var model: [TopicName: Int] = [:]
        for (index, name) in topics.enumerated() {
            store.set(name, message: index, byteCount: index + 1)
            model[name] = index
        }
        #expect(store.count == topics.count)
        #expect(store.totalByteCount == topics.count * (topics.count + 1) / 2)
        #expect(store.checkInvariants() == nil)
        for filter in allFilters(over: ["a", "$b", "", "+", "#"], maxLevels: 3) {
            #expect(retainedMatch(store, filter) == oracleRetained(model, filter), "filter \(filter)")
            let shared = try! TopicFilter(validating: "$share/g/" + filter.description)
            #expect(retainedMatch(store, shared) == oracleRetained(model, shared), "filter \(shared)")
        }
        for name in topics { #expect(store.clear(name) != nil) }
        #expect(store.count == 0 && store.totalByteCount == 0 && store.nodeCount == 1)
    }

    @Test func matchesOracleOnSeededRandomOperations() {
        // Proves set/clear/get/match, count and total bytes agree with a dictionary model under random
        // operations, with the trie's invariants (pruning, index) checked after every step. Odd seeds use a wide
        // alphabet, so child lookups take both the linear and the hashed path.
        for seed in testSeeds {
            var random = SplitMix64(seed: seed)
            let (filterLevels, topicLevels) = alphabets(for: seed)
            var store = RetainedStore<Int>()
            var model: [TopicName: Int] = [:]
            var bytes: [TopicName: Int] = [:]
            var failed = false
            for step in 0..<400 where !failed {
                let name = randomTopic(&random, levels: topicLevels)
                if random.chance(60) {
                    let size = random.below(100)
                    let previous = store.set(name, message: step, byteCount: size)
                    #expect(previous?.message == model[name], "seed \(seed) step \(step)")
                    model[name] = step
                    bytes[name] = size
                } else {
                    #expect(store.clear(name)?.message == model[name], "seed \(seed) step \(step)")
                    model[name] = nil
                    bytes[name] = nil
                }
                #expect(store.message(for: name) == model[name], "seed \(seed) step \(step)")
                if store.count != model.count || store.totalByteCount != bytes.values.reduce(0, +) {
                    Issue.record("count or bytes, seed \(seed) step \(step)")
                    failed = true
                }
                if let problem = store.checkInvariants() {
                    Issue.record("invariant \(problem), seed \(seed) step \(step)")
                    failed = true
                }
                for _ in 0..<4 where !failed {
                    let filter = randomFilter(&random, levels: filterLevels)
                    if retainedMatch(store, filter) != oracleRetained(model, filter) {
                        Issue.record("seed \(seed) step \(step) filter \(filter)")
                        failed = true
                    }
                }
            }
        }
    }

    @Test func specExamples() {
        // Proves the cases called out in the spec: '#' includes the parent level, '+' matches an empty level,
        // [MQTT-4.7.2-1] wildcard-first filters skip '$' topics while "$SYS/#" finds them, exact lookups.
        var store = RetainedStore<Int>()
        for (index, name) in ["sport", "sport/tennis", "sport/", "/x", "$SYS/uptime", "a//b"].enumerated() {
            store.set(topic(name), message: index, byteCount: 1)
        }
        #expect(retainedMatch(store, filter("sport/#")) == ["sport/=2", "sport/tennis=1", "sport=0"])
        #expect(retainedMatch(store, filter("sport/+")) == ["sport/=2", "sport/tennis=1"])
        #expect(retainedMatch(store, filter("#")).count == 5)
        #expect(retainedMatch(store, filter("+/uptime")).isEmpty)
        #expect(retainedMatch(store, filter("$SYS/#")) == ["$SYS/uptime=4"])
        #expect(retainedMatch(store, filter("+/x")) == ["/x=3"])
        #expect(retainedMatch(store, filter("a/+/b")) == ["a//b=5"])
        #expect(retainedMatch(store, filter("a//b")) == ["a//b=5"])
        #expect(store.message(for: topic("sport/tennis")) == 1)
        #expect(store.message(for: topic("sport/tennis/x")) == nil)
        #expect(store.set(topic("sport"), message: 9, byteCount: 3)?.message == 0)
        #expect(store.totalByteCount == 8)
    }
}
