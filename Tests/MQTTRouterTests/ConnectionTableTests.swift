import MQTTCodec
import Testing

@testable import MQTTRouter

@Suite struct ConnectionTableTests {
    /// A connection state whose `acceptedAtMillis` carries a value to check.
    func state(_ value: UInt64) -> ConnectionState {
        ConnectionState(decoder: PacketDecoder(maximumPacketSize: 1024), acceptedAtMillis: value, lastPacketMillis: 0)
    }

    // Proves: the open-addressing table behaves as a Dictionary under seeded random inserts, in-place updates and
    // removals (which shift probe runs back), across growth, with keys that collide in the low bits.
    @Test(arguments: testSeeds)
    func matchesDictionaryOracle(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = ConnectionTable()
        var oracle: [UInt64: UInt64] = [:]
        for step in 0..<4_000 {
            // Runtime-shaped keys: (slot << 32 | generation), few slots, so probe runs form and wrap.
            // Generation 0 of slot 0 packs to 0, which the table must store like any other key.
            let key = UInt64(random.below(300)) << 32 | UInt64(random.below(3))
            switch random.below(4) {
            case 0, 1:
                let value = UInt64(step)
                table[ConnectionKey(rawValue: key)] = state(value)
                oracle[key] = value
            case 2:
                #expect(table.removeValue(forKey: ConnectionKey(rawValue: key))?.acceptedAtMillis == oracle[key],
                        "seed \(seed) step \(step)")
                oracle[key] = nil
            default:
                table[ConnectionKey(rawValue: key)]?.lastPacketMillis = 7
                if random.chance(30) { table[ConnectionKey(rawValue: key)] = nil; oracle[key] = nil }
            }
            #expect(table.count == oracle.count, "seed \(seed) step \(step)")
        }
        for slot in 0..<300 {
            for generation in 0..<3 {
                let key = UInt64(slot) << 32 | UInt64(generation)
                #expect(table[ConnectionKey(rawValue: key)]?.acceptedAtMillis == oracle[key], "seed \(seed) key \(key)")
            }
        }
    }
}
