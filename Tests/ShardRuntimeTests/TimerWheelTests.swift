import ShardRuntime
import Testing

@Suite struct TimerWheelTests {
    // Proves: a timer fires exactly at its deadline, not before, and only once.
    @Test func firesAtDeadline() {
        var wheel = TimerWheel(nowMillis: 1000)
        _ = wheel.arm(deadlineMillis: 1010, token: 7)
        #expect(wheel.nextDeadlineMillis() == 1010)
        var fired: [UInt64] = []
        wheel.advance(to: 1009, fired: &fired)
        #expect(fired.isEmpty)
        wheel.advance(to: 1010, fired: &fired)
        #expect(fired == [7])
        wheel.advance(to: 5000, fired: &fired)
        #expect(fired == [7])
        #expect(wheel.count == 0)
        #expect(wheel.nextDeadlineMillis() == nil)
    }

    // Proves: cancelled timers never fire; cancelling twice or after firing reports false.
    @Test func cancelPreventsFiring() {
        var wheel = TimerWheel(nowMillis: 0)
        let a = wheel.arm(deadlineMillis: 50, token: 1)
        let b = wheel.arm(deadlineMillis: 70_000, token: 2)
        do { let cancelled = wheel.cancel(a); #expect(cancelled) }
        do { let cancelled = wheel.cancel(a); #expect(!cancelled) }
        var fired: [UInt64] = []
        wheel.advance(to: 100_000, fired: &fired)
        #expect(fired == [2])
        do { let cancelled = wheel.cancel(b); #expect(!cancelled) }
        // Reused slot: the old ID must not cancel the new timer.
        let c = wheel.arm(deadlineMillis: 100_010, token: 3)
        do { let cancelled = wheel.cancel(b); #expect(!cancelled) }
        do { let cancelled = wheel.cancel(c); #expect(cancelled) }
    }

    // Proves: a deadline in the past fires at the next advance.
    @Test func pastDeadlineFiresAtNextAdvance() {
        var wheel = TimerWheel(nowMillis: 500)
        _ = wheel.arm(deadlineMillis: 100, token: 9)
        #expect(wheel.nextDeadlineMillis() == 500)
        var fired: [UInt64] = []
        wheel.advance(to: 500, fired: &fired)
        #expect(fired == [9])
    }

    // Proves: many timers at random deadlines (ms to days) fire in deadline order, each exactly at or after its
    // deadline and within one advance step of it, with a random quarter cancelled; checked against a sorted oracle.
    @Test func manyTimersFireInDeadlineOrderAgainstOracle() {
        var generator = SplitMix(seed: 42)
        let start: UInt64 = 123_456
        var wheel = TimerWheel(nowMillis: start)
        var armed: [(deadline: UInt64, token: UInt64, id: TimerID)] = []
        for token in 0..<20_000 {
            let range: UInt64 = [100, 5_000, 400_000, 90_000_000, 5_000_000_000][Int(generator.next() % 5)]
            let deadline = start + 1 + generator.next() % range
            armed.append((deadline, UInt64(token), wheel.arm(deadlineMillis: deadline, token: UInt64(token))))
        }
        var cancelled = Set<UInt64>()
        for entry in armed where generator.next() % 4 == 0 {
            do { let cancelled = wheel.cancel(entry.id); #expect(cancelled) }
            cancelled.insert(entry.token)
        }
        let deadlineOf = Dictionary(uniqueKeysWithValues: armed.map { ($0.token, $0.deadline) })
        var now = start
        var firedOrder: [UInt64] = []
        var lastDeadline: UInt64 = 0
        var steps = 0
        while wheel.count > 0 && steps < 1_000_000 {
            steps += 1
            // Jump straight to the next deadline most of the time; sometimes step by an odd amount.
            if let next = wheel.nextDeadlineMillis(), generator.next() % 3 != 0 {
                now = max(now, next)
            } else {
                now += 1 + generator.next() % 20_000
            }
            var fired: [UInt64] = []
            wheel.advance(to: now, fired: &fired)
            for token in fired {
                let deadline = deadlineOf[token]!
                #expect(deadline <= now, "fired early")
                #expect(deadline >= lastDeadline, "out of order")
                lastDeadline = deadline
            }
            firedOrder += fired
        }
        #expect(wheel.count == 0)
        let expected = armed.filter { !cancelled.contains($0.token) }.sorted { $0.deadline < $1.deadline }.map(\.token)
        #expect(firedOrder.count == expected.count)
        #expect(Set(firedOrder) == Set(expected))
    }

    // Proves: jumping straight to each reported next deadline fires every timer exactly at its deadline
    // (the loop's use: the wait timeout is the next deadline).
    @Test func nextDeadlineIsExactWhenFollowed() {
        var wheel = TimerWheel(nowMillis: 0)
        let deadlines: [UInt64] = [3, 64, 65, 4095, 4096, 4097, 262_143, 1_000_000, 86_400_000]
        for (token, deadline) in deadlines.enumerated() { _ = wheel.arm(deadlineMillis: deadline, token: UInt64(token)) }
        var firedAt: [UInt64] = []
        while let next = wheel.nextDeadlineMillis() {
            var fired: [UInt64] = []
            wheel.advance(to: next, fired: &fired)
            for token in fired { firedAt.append(deadlines[Int(token)]); #expect(deadlines[Int(token)] <= next) }
        }
        #expect(firedAt == deadlines)
    }

    // Proves: timers due in the same millisecond fire in arming order; bulk arm and cancel of 100k timers.
    @Test func sameMillisecondFiresInArmingOrderAndBulkCancel() {
        var wheel = TimerWheel(nowMillis: 0)
        for token in 0..<10 { _ = wheel.arm(deadlineMillis: 30_000, token: UInt64(token)) }
        var ids: [TimerID] = []
        for token in 0..<100_000 { ids.append(wheel.arm(deadlineMillis: 60_000 + UInt64(token % 1000), token: 1_000_000)) }
        for id in ids { wheel.cancel(id) }
        var fired: [UInt64] = []
        wheel.advance(to: 100_000, fired: &fired)
        #expect(fired == Array(0..<10))
    }
}

/// A seeded generator (SplitMix64) so failures replay.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
