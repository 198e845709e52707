import Glibc
import ShardRuntime
import Synchronization
import Testing

@Suite struct ShardMeshTests {
    // Proves: a full ring sends to the bounded overflow (pressure), past the cap sends are refused, and flush moves
    // overflow into the ring in order as space frees, before newer messages.
    @Test func overflowQueuesThenRefusesAndFlushesInOrder() {
        let mesh = ShardMesh<Int>(shardCount: 2, ringCapacity: 4)
        var outbox = MeshOutbox(mesh: mesh, source: ShardID(0), overflowCountMax: 3)
        var inbox = MeshInbox(mesh: mesh, destination: ShardID(1))
        for value in 0..<4 { #expect(outbox.send(value, to: ShardID(1)) == .ok) }
        for value in 4..<7 { #expect(outbox.send(value, to: ShardID(1)) == .queuedInOverflow) }
        #expect(outbox.send(7, to: ShardID(1)) == .refused)
        #expect(outbox.refusedCount == 1)
        #expect(outbox.overflowCount(to: ShardID(1)) == 3)
        var published: [ShardID] = []
        outbox.flush { published.append($0) }
        #expect(published == [ShardID(1)])
        var received: [Int] = []
        inbox.drain(batchCountMax: 2) { value, source in
            #expect(source == ShardID(0))
            received.append(value)
        }
        #expect(received == [0, 1])
        outbox.flush { _ in }  // two slots free: 4, 5 move in
        #expect(outbox.send(8, to: ShardID(1)) == .queuedInOverflow)  // 6 still waiting: 8 queues behind it
        outbox.flush { _ in }
        while inbox.drain(batchCountMax: 100, { value, _ in received.append(value) }) > 0 { outbox.flush { _ in } }
        #expect(received == [0, 1, 2, 3, 4, 5, 6, 8])
        #expect(inbox.allEmpty())
    }

    // Proves: all-to-all under real concurrency: 4 threads, each a producer to every peer and the consumer of its
    // own incoming rings, with tiny rings so overflow is exercised; every message arrives once, in per-sender order.
    @Test func allToAllStressDeliversEverythingInPerSenderOrder() {
        let shardCount = 4
        let perPeer = 100_000
        let mesh = ShardMesh<UInt64>(shardCount: shardCount, ringCapacity: 64)
        final class Tally: Sendable {
            let errors = Atomic<Int>(0)
            let completed = Atomic<Int>(0)
        }
        let tally = Tally()
        let deadline = nowMillis() + 90_000
        var threads: [TestThread] = []
        for shard in 0..<shardCount {
            threads.append(TestThread {
                var outbox = MeshOutbox(mesh: mesh, source: ShardID(shard), overflowCountMax: 256)
                var inbox = MeshInbox(mesh: mesh, destination: ShardID(shard))
                var nextToSend = Array(repeating: 0, count: shardCount)
                var expected = Array(repeating: 0, count: shardCount)
                var receivedTotal = 0
                let expectedTotal = perPeer * (shardCount - 1)
                while receivedTotal < expectedTotal || nextToSend.enumerated().contains(where: { $0.offset != shard && $0.element < perPeer }) || outbox.overflowCountTotal > 0 {
                    if nowMillis() > deadline { tally.errors.add(1000, ordering: .relaxed); return }
                    for peer in 0..<shardCount where peer != shard {
                        var budget = 50
                        while budget > 0 && nextToSend[peer] < perPeer {
                            let value = UInt64(shard) << 32 | UInt64(nextToSend[peer])
                            if outbox.send(value, to: ShardID(peer)) == .refused { break }
                            nextToSend[peer] += 1
                            budget -= 1
                        }
                    }
                    outbox.flush { _ in }
                    let taken = inbox.drain(batchCountMax: 64) { value, source in
                        let sender = Int(value >> 32)
                        let sequence = Int(value & 0xFFFF_FFFF)
                        if sender != source.rawValue || sequence != expected[sender] { tally.errors.add(1, ordering: .relaxed) }
                        expected[sender] = sequence + 1
                    }
                    receivedTotal += taken
                    if taken == 0 { sched_yield() }
                }
                tally.completed.add(1, ordering: .relaxed)
            })
        }
        for thread in threads { thread.join() }
        #expect(tally.errors.load(ordering: .relaxed) == 0)
        #expect(tally.completed.load(ordering: .relaxed) == shardCount)
    }
}
