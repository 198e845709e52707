import Glibc
import ShardRuntime
import Synchronization
import Testing

@Suite struct SPSCRingTests {
    // Proves: single-threaded FIFO order, the full signal at capacity, and that nothing is visible before publish.
    @Test func pushPopOrderAndFullSignal() {
        let ring = SPSCRing<Int>(capacity: 8)
        #expect(ring.capacity == 8)
        for value in 0..<8 { #expect(ring.push(value)) }
        #expect(!ring.push(99))
        #expect(ring.pop() == nil)  // not published yet
        #expect(ring.publish())
        for value in 0..<8 { #expect(ring.pop() == value) }
        #expect(ring.pop() == nil)
        #expect(!ring.push(8))  // slots are returned only by releaseConsumed
        ring.releaseConsumed()
        #expect(ring.push(9))
    }

    // Proves: capacity rounds up to a power of two.
    @Test func capacityRoundsUpToPowerOfTwo() {
        #expect(SPSCRing<UInt8>(capacity: 5).capacity == 8)
        #expect(SPSCRing<UInt8>(capacity: 1).capacity == 2)
        #expect(SPSCRing<UInt8>(capacity: 4096).capacity == 4096)
    }

    // Proves: class references are retained while in the ring, released when popped, and released when the ring
    // is freed with elements still inside (published or not).
    @Test func classReferencesAreInitializedMovedAndDeinitialized() {
        final class Token: Sendable {
            let counter: Counter
            init(_ counter: Counter) { self.counter = counter; counter.value.add(1, ordering: .relaxed) }
            deinit { counter.value.subtract(1, ordering: .relaxed) }
        }
        final class Counter: Sendable { let value = Atomic<Int>(0) }
        let counter = Counter()
        do {
            let ring = SPSCRing<Token>(capacity: 16)
            for _ in 0..<10 { #expect(ring.push(Token(counter))) }
            ring.publish()
            for _ in 0..<3 { _ = ring.pop() }
            ring.releaseConsumed()
            #expect(ring.push(Token(counter)))  // unpublished
            #expect(counter.value.load(ordering: .relaxed) == 8)
        }
        #expect(counter.value.load(ordering: .relaxed) == 0)
    }

    // Proves: under real concurrency (two threads, wrap-around many times), every item arrives once, in order.
    @Test func transfersMillionsOfItemsInOrderBetweenTwoThreads() {
        let itemCount = 2_000_000
        let ring = SPSCRing<Int>(capacity: 1024)
        let failure = Atomic<Int>(-1)
        let received = Atomic<Int>(0)
        let deadline = nowMillis() + 60_000
        let producer = TestThread {
            let end = SPSCProducer(ring)
            var next = 0
            while next < itemCount {
                if end.push(next) {
                    next += 1
                    if next & 63 == 0 { end.publish() }
                } else {
                    end.publish()
                    if nowMillis() > deadline { return }
                    sched_yield()
                }
            }
            end.publish()
        }
        let consumer = TestThread {
            let end = SPSCConsumer(ring)
            var expected = 0
            while expected < itemCount {
                if let value = end.pop() {
                    if value != expected {
                        failure.store(expected, ordering: .relaxed)
                        return
                    }
                    expected += 1
                    if expected & 63 == 0 { end.releaseConsumed() }
                } else {
                    end.releaseConsumed()
                    if nowMillis() > deadline { break }
                    sched_yield()
                }
            }
            received.store(expected, ordering: .relaxed)
        }
        producer.join()
        consumer.join()
        #expect(failure.load(ordering: .relaxed) == -1)
        #expect(received.load(ordering: .relaxed) == itemCount)
    }
}
