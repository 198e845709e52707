import MQTTCodec
import Testing

@testable import MQTTRouter

// MARK: - Test helpers (ShoalTestSupport's seeded random may replace these later)

/// SplitMix64: a tiny seeded generator, so every random test replays from the seed it prints.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// The seeds every randomized test runs with. A failure message names the seed that failed.
let testSeeds: [UInt64] = Array(1...24)

func filter(_ string: String) -> TopicFilter { try! TopicFilter(validating: string) }

func topic(_ string: String) -> TopicName { try! TopicName(validating: string) }

/// Joins levels with "/".
func joined(_ levels: [String]) -> String { levels.joined(separator: "/") }

/// Every sequence of 1...maxLevels levels drawn from `alphabet`, joined with "/".
func allPaths(over alphabet: [String], maxLevels: Int) -> [String] {
    var result: [String] = []
    var current: [[String]] = [[]]
    for _ in 1...maxLevels {
        var next: [[String]] = []
        for prefix in current {
            for level in alphabet { next.append(prefix + [level]) }
        }
        result += next.map(joined)
        current = next
    }
    return result
}

/// Every valid topic filter with up to `maxLevels` levels over `alphabet` (which includes "+" and "#").
func allFilters(over alphabet: [String], maxLevels: Int) -> [TopicFilter] {
    allPaths(over: alphabet, maxLevels: maxLevels).compactMap { try? TopicFilter(validating: $0) }
}

/// Every valid topic name with up to `maxLevels` levels over `alphabet` (no wildcards).
func allTopics(over alphabet: [String], maxLevels: Int) -> [TopicName] {
    allPaths(over: alphabet, maxLevels: maxLevels).compactMap { try? TopicName(validating: $0) }
}

/// A random valid filter of 1...4 levels over `levels`, optionally a shared one.
func randomFilter(_ random: inout SplitMix64, levels: [String], sharedPercent: Int = 0) -> TopicFilter {
    while true {
        let count = 1 + random.below(4)
        var text = joined((0..<count).map { _ in random.pick(levels) })
        if random.chance(sharedPercent) { text = "$share/" + random.pick(["g1", "g2"]) + "/" + text }
        if let filter = try? TopicFilter(validating: text) { return filter }
    }
}

/// A random valid topic of 1...4 levels over `levels`.
func randomTopic(_ random: inout SplitMix64, levels: [String]) -> TopicName {
    while true {
        let count = 1 + random.below(4)
        if let topic = try? TopicName(validating: joined((0..<count).map { _ in random.pick(levels) })) {
            return topic
        }
    }
}

let filterLevels = ["a", "b", "", "$x", "+", "#"]
let topicLevels = ["a", "b", "", "$x"]

/// Wider alphabets: more than `TopicTrie.linearChildCountMax` literal children per node, so lookups also take
/// the hashed path, and nodes move between the two as children come and go.
let wideFilterLevels = ["a", "b", "c", "d", "e", "f", "g", "", "$x", "+", "#"]
let wideTopicLevels = ["a", "b", "c", "d", "e", "f", "g", "", "$x"]

/// The alphabets a seed runs with: narrow for even seeds, wide for odd ones.
func alphabets(for seed: UInt64) -> (filters: [String], topics: [String]) {
    seed % 2 == 0 ? (filterLevels, topicLevels) : (wideFilterLevels, wideTopicLevels)
}
