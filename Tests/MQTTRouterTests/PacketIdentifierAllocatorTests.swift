import Testing

@testable import MQTTRouter

// Hot loops here count mismatches and check once: an #expect per iteration of a 65,535-step loop costs
// seconds in a debug build.

@Suite struct PacketIdentifierAllocatorTests {
    @Test func handsOutRotatingNonZeroIdentifiers() {
        // Proves identifiers start at 1, rotate (a released identifier is not reused before the cursor comes
        // round), wrap from 65535 to 1 and never produce 0 ([MQTT-2.2.1-3]).
        var allocator = PacketIdentifierAllocator()
        #expect(allocator.allocate() == 1)
        #expect(allocator.allocate() == 2)
        #expect(allocator.release(1) == true)
        #expect(allocator.release(1) == false)
        #expect(allocator.allocate() == 3)
        var mismatches = 0
        for expected in UInt16(4)...UInt16.max {
            let identifier = allocator.allocate()
            if identifier != expected || !allocator.release(expected) { mismatches += 1 }
        }
        #expect(mismatches == 0)
        // The cursor wrapped: 1 is free again, 2 and 3 are still in use.
        #expect(allocator.allocate() == 1)
        #expect(allocator.allocate() == 4)
        #expect(!allocator.isAllocated(0))
        #expect(allocator.release(0) == false)
    }

    @Test func reportsExhaustionAndRecovers() {
        // Proves all 65,535 identifiers can be in use at once, each distinct and non-zero, that the next
        // allocation reports exhaustion, that a release makes exactly that identifier available, and that
        // emptying the allocator drops the bitmap.
        var allocator = PacketIdentifierAllocator()
        var seen = Set<UInt16>()
        var zeroOrNil = 0
        for _ in 0..<PacketIdentifierAllocator.capacity {
            guard let identifier = allocator.allocate(), identifier != 0 else {
                zeroOrNil += 1
                continue
            }
            seen.insert(identifier)
        }
        #expect(zeroOrNil == 0)
        #expect(seen.count == 65535)
        #expect(allocator.isExhausted)
        #expect(allocator.allocate() == nil)
        #expect(allocator.release(40000) == true)
        #expect(allocator.allocate() == 40000)
        #expect(allocator.allocate() == nil)
        var failedReleases = 0
        for identifier in 1...UInt16.max where !allocator.release(identifier) { failedReleases += 1 }
        #expect(failedReleases == 0)
        #expect(allocator.count == 0)
        #expect(allocator.words.isEmpty)
        #expect(allocator.allocate() != nil)
    }

    @Test func matchesSetModelAcrossRepresentations() {
        // Proves allocate/release/markAllocated agree with a Set model under random bursts that cross the
        // switch between the small set and the bitmap in both directions, up to full exhaustion.
        for seed in testSeeds.prefix(6) {
            var random = SplitMix64(seed: seed)
            var allocator = PacketIdentifierAllocator()
            var model = Set<UInt16>()
            var mismatches: [String] = []
            for round in 0..<24 where mismatches.isEmpty {
                let target = round == 12 ? 65535 : random.pick([0, 10, 900, 1023, 1025, 3000])
                while model.count < target && mismatches.isEmpty {
                    if random.chance(10) {
                        let identifier = UInt16(1 + random.below(65535))
                        if allocator.markAllocated(identifier) != model.insert(identifier).inserted {
                            mismatches.append("markAllocated \(identifier) round \(round)")
                        }
                    } else if let identifier = allocator.allocate(), identifier != 0 {
                        if !model.insert(identifier).inserted { mismatches.append("duplicate \(identifier) round \(round)") }
                    } else {
                        mismatches.append("allocate failed at \(model.count) round \(round)")
                    }
                }
                if target == 65535 && allocator.allocate() != nil { mismatches.append("not exhausted") }
                while model.count > target / 2 && mismatches.isEmpty {
                    // Half the time an identifier in use (rejection sampling: Set.randomElement is O(n)).
                    var identifier = UInt16(1 + random.below(65535))
                    if random.chance(50) {
                        while !model.contains(identifier) { identifier = UInt16(1 + random.below(65535)) }
                    }
                    if allocator.release(identifier) != (model.remove(identifier) != nil) {
                        mismatches.append("release \(identifier) round \(round)")
                    }
                }
                if allocator.count != model.count { mismatches.append("count round \(round)") }
                for _ in 0..<200 {
                    let identifier = UInt16(random.below(65536))
                    if allocator.isAllocated(identifier) != model.contains(identifier) {
                        mismatches.append("isAllocated \(identifier) round \(round)")
                    }
                }
            }
            #expect(mismatches.isEmpty, "seed \(seed): \(mismatches.prefix(3))")
        }
    }
}
