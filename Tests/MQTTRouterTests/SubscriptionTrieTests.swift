import MQTTCodec
import Testing

@testable import MQTTRouter

/// The model: subscriber -> filter -> value.
typealias SubscriptionModel = [Int: [TopicFilter: String]]

/// What a match reports, in a comparable form: ordinary hits and shared groups (with members), each sorted.
struct MatchResult: Equatable, CustomStringConvertible {
    var ordinary: [String]
    var shared: [String]

    var description: String { "ordinary \(ordinary) shared \(shared)" }
}

func groupKey(_ filter: TopicFilter) -> String {
    String(decoding: filter.shareName ?? [], as: UTF8.self) + "|" + String(decoding: filter.matchingBytes, as: UTF8.self)
}

func trieMatch(_ trie: SubscriptionTrie<Int, String>, _ topic: TopicName) -> MatchResult {
    var ordinary: [String] = []
    var shared: [String] = []
    trie.match(topic) { subscriber, value in
        ordinary.append("\(subscriber):\(value)")
    } sharedGroup: { group in
        var members: [String] = []
        group.members.forEach { subscriber, value in members.append("\(subscriber):\(value)") }
        shared.append(groupKey(group.filter) + " " + members.sorted().joined(separator: ","))
    }
    return MatchResult(ordinary: ordinary.sorted(), shared: shared.sorted())
}

func oracleMatch(_ model: SubscriptionModel, _ topic: TopicName) -> MatchResult {
    var ordinary: [String] = []
    var groups: [String: [String]] = [:]
    for (subscriber, filters) in model {
        for (filter, value) in filters where filter.matches(topic) {
            if filter.isShared {
                groups[groupKey(filter), default: []].append("\(subscriber):\(value)")
            } else {
                ordinary.append("\(subscriber):\(value)")
            }
        }
    }
    let shared = groups.map { key, members in key + " " + members.sorted().joined(separator: ",") }
    return MatchResult(ordinary: ordinary.sorted(), shared: shared.sorted())
}

@Suite struct SubscriptionTrieTests {
    @Test func matchesSpecExamples() {
        // Proves the MQTT 5.0 §4.7 examples: '#' includes the parent level, '+' is exactly one (possibly empty)
        // level, empty levels are levels, and [MQTT-4.7.2-1] wildcard-first filters skip '$' topics.
        var trie = SubscriptionTrie<Int, String>()
        let filters = ["sport/tennis/player1/#", "sport/#", "#", "+", "+/+", "/+", "sport/+", "+/tennis/#",
                       "$SYS/#", "$SYS/monitor/+", "a//b", "a/", "a/+"]
        for (index, text) in filters.enumerated() { trie.insert(filter(text), subscriber: index, value: text) }
        func hits(_ name: String) -> [String] { trieMatch(trie, topic(name)).ordinary.map { String($0.split(separator: ":")[1]) }.sorted() }
        #expect(hits("sport/tennis/player1") == ["#", "+/tennis/#", "sport/#", "sport/tennis/player1/#"])
        #expect(hits("sport/tennis/player1/ranking") == ["#", "+/tennis/#", "sport/#", "sport/tennis/player1/#"])
        #expect(hits("sport") == ["#", "+", "sport/#"])
        #expect(hits("sport/") == ["#", "+/+", "sport/#", "sport/+"])
        #expect(hits("/finance") == ["#", "+/+", "/+"])
        #expect(hits("$SYS/monitor/Clients") == ["$SYS/#", "$SYS/monitor/+"])
        #expect(hits("$SYS") == ["$SYS/#"])
        #expect(hits("a//b") == ["#", "a//b"])
        #expect(hits("a/") == ["#", "+/+", "a/", "a/+"])
    }

    @Test func matchesOracleExhaustivelyOnSmallAlphabet() {
        // Proves the trie agrees with TopicFilter.matches for every filter of up to 3 levels over
        // {a, $b, "", +, #} against every topic of up to 3 levels over {a, $b, ""}, ordinary and shared.
        let filters = allFilters(over: ["a", "$b", "", "+", "#"], maxLevels: 3)
        let topics = allTopics(over: ["a", "$b", ""], maxLevels: 3)
        var trie = SubscriptionTrie<Int, String>()
        var model = SubscriptionModel()
        for (index, filter) in filters.enumerated() {
            trie.insert(filter, subscriber: index, value: filter.description)
            model[index, default: [:]][filter] = filter.description
            let shared = try! TopicFilter(validating: "$share/g/" + filter.description)
            trie.insert(shared, subscriber: index, value: shared.description)
            model[index, default: [:]][shared] = shared.description
        }
        #expect(trie.count == 2 * filters.count)
        #expect(trie.checkInvariants() == nil)
        for name in topics {
            let expected = oracleMatch(model, name)
            let actual = trieMatch(trie, name)
            #expect(actual == expected, "topic \(name)")
        }
        // Each filter alone: insert then remove leaves only the root.
        for filter in filters {
            var single = SubscriptionTrie<Int, String>()
            single.insert(filter, subscriber: 1, value: "v")
            for name in topics {
                let matched = !trieMatch(single, name).ordinary.isEmpty
                #expect(matched == filter.matches(name), "filter \(filter) topic \(name)")
            }
            #expect(single.remove(filter, subscriber: 1) == "v")
            #expect(single.nodeCount == 1 && single.count == 0)
        }
    }

    @Test func matchesOracleOnSeededRandomOperations() {
        // Proves the trie agrees with a naive model and the oracle under random inserts, replacements,
        // removals and session-end removals (ordinary and shared), with invariants (pruning, counts, reverse
        // index) after every step. Odd seeds use a wide alphabet, so child lookups take both the linear and the
        // hashed path.
        for seed in testSeeds {
            var random = SplitMix64(seed: seed)
            let (filterLevels, topicLevels) = alphabets(for: seed)
            var trie = SubscriptionTrie<Int, String>()
            var model = SubscriptionModel()
            var serial = 0
            var failed = false
            for step in 0..<400 where !failed {
                let subscriber = random.below(12)
                let roll = random.below(100)
                if roll < 55 {
                    let filter = randomFilter(&random, levels: filterLevels, sharedPercent: 25)
                    serial += 1
                    let value = "\(filter)#\(serial)"
                    let previous = trie.insert(filter, subscriber: subscriber, value: value)
                    #expect(previous == model[subscriber]?[filter], "seed \(seed) step \(step)")
                    model[subscriber, default: [:]][filter] = value
                } else if roll < 90 {
                    // Remove one of its filters (or a random one, usually absent).
                    let owned = model[subscriber].map { Array($0.keys).sorted { $0.description < $1.description } } ?? []
                    let filter = owned.isEmpty || random.chance(20)
                        ? randomFilter(&random, levels: filterLevels, sharedPercent: 25) : random.pick(owned)
                    let removed = trie.remove(filter, subscriber: subscriber)
                    #expect(removed == model[subscriber]?[filter], "seed \(seed) step \(step)")
                    model[subscriber]?[filter] = nil
                    if model[subscriber]?.isEmpty == true { model[subscriber] = nil }
                } else {
                    let removed = trie.removeAll(subscriber: subscriber)
                    let expected = (model[subscriber] ?? [:]).values.sorted()
                    #expect(removed.map(\.value).sorted() == expected, "seed \(seed) step \(step)")
                    model[subscriber] = nil
                }
                let expectedCount = model.values.reduce(0) { $0 + $1.count }
                if trie.count != expectedCount { Issue.record("count, seed \(seed) step \(step)"); failed = true }
                if let problem = trie.checkInvariants() {
                    Issue.record("invariant \(problem), seed \(seed) step \(step)")
                    failed = true
                }
                for _ in 0..<4 where !failed {
                    let name = randomTopic(&random, levels: topicLevels)
                    let expected = oracleMatch(model, name)
                    let actual = trieMatch(trie, name)
                    if actual != expected {
                        Issue.record("seed \(seed) step \(step) topic \(name): \(actual) != \(expected)")
                        failed = true
                    }
                }
            }
            // Emptying every subscriber prunes back to the root.
            for subscriber in 0..<12 { trie.removeAll(subscriber: subscriber) }
            #expect(trie.count == 0 && trie.nodeCount == 1 && trie.subscriberCount == 0, "seed \(seed)")
        }
    }

    @Test func sharedGroupsAreKeyedByShareNameAndFilter() {
        // Proves shared subscriptions with the same filter but different ShareNames are distinct groups, that
        // a group lists all its members once, that ordinary subscribers are reported apart, and that
        // removing the last member removes the group.
        var trie = SubscriptionTrie<Int, String>()
        trie.insert(filter("$share/g1/a/+"), subscriber: 1, value: "x")
        trie.insert(filter("$share/g1/a/+"), subscriber: 2, value: "y")
        trie.insert(filter("$share/g2/a/+"), subscriber: 3, value: "z")
        trie.insert(filter("a/+"), subscriber: 4, value: "w")
        let result = trieMatch(trie, topic("a/b"))
        #expect(result.ordinary == ["4:w"])
        #expect(result.shared == ["g1|a/+ 1:x,2:y", "g2|a/+ 3:z"])
        var selected: [Int] = []
        trie.match(topic("a/c")) { _, _ in } sharedGroup: { group in
            if group.shareName == Array("g1".utf8) {
                for counter in 0..<4 { selected.append(group.members.select(using: UInt64(counter)).subscriber) }
            }
        }
        #expect(selected == [1, 2, 1, 2])
        #expect(trie.remove(filter("$share/g1/a/+"), subscriber: 1) == "x")
        #expect(trie.remove(filter("$share/g1/a/+"), subscriber: 2) == "y")
        #expect(trieMatch(trie, topic("a/b")).shared == ["g2|a/+ 3:z"])
        #expect(trie.checkInvariants() == nil)
    }

    @Test func manySubscribersOnOneFilterUseTheIndex() {
        // Proves SubscriberList stays correct across the switch between linear scan and index (beyond
        // linearScanCountMax members), with swap-removal and re-growth.
        var trie = SubscriptionTrie<Int, String>()
        let shared = filter("x/#")
        var random = SplitMix64(seed: 7)
        var present = Set<Int>()
        for step in 0..<2000 {
            let subscriber = random.below(40)
            if random.chance(55) {
                let previous = trie.insert(shared, subscriber: subscriber, value: "\(step)")
                #expect((previous != nil) == present.contains(subscriber))
                present.insert(subscriber)
            } else {
                #expect((trie.remove(shared, subscriber: subscriber) != nil) == present.contains(subscriber))
                present.remove(subscriber)
            }
            var seen: [Int] = []
            trie.match(topic("x/y")) { subscriber, _ in seen.append(subscriber) } sharedGroup: { _ in }
            #expect(seen.sorted() == present.sorted(), "step \(step)")
            for subscriber in 0..<40 {
                #expect((trie.value(for: shared, subscriber: subscriber) != nil) == present.contains(subscriber))
            }
        }
    }

    @Test func matchOrderIsDeterministic() {
        // Proves two tries built by the same operations report matches in the same order, which deterministic
        // simulation relies on. (Within one process only; the order comes from trie structure and member arrays,
        // never from dictionary iteration, so it does not depend on the per-process hash seed either.)
        func build() -> [String] {
            var trie = SubscriptionTrie<Int, String>()
            var random = SplitMix64(seed: 42)
            for _ in 0..<300 {
                let filter = randomFilter(&random, levels: filterLevels)
                trie.insert(filter, subscriber: random.below(50), value: filter.description)
            }
            var order: [String] = []
            trie.match(topic("a/b")) { subscriber, value in order.append("\(subscriber):\(value)") } sharedGroup: { _ in }
            return order
        }
        #expect(build() == build())
    }
}
