import MQTTRouter
import ShardRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// MARK: - What one shard publishes

/// Responses the metrics listener of one shard has sent, by status.
public struct MetricsRequestCounters: Sendable, Equatable {
    /// 200: the exposition was served.
    public var ok = 0
    /// 400: the request was malformed (the connection is closed after the answer).
    public var badRequest = 0
    /// 404: a path other than `/metrics`.
    public var notFound = 0
    /// 405: a method other than GET or HEAD.
    public var methodNotAllowed = 0
    /// 431: the request head exceeded ``HTTPRequestParser/headBytesMax``.
    public var headerTooLarge = 0
    /// 503: the exposition did not fit in the connection's outbound bound.
    public var unavailable = 0
    /// 505: an HTTP version other than 1.0 and 1.1.
    public var versionNotSupported = 0

    /// All zero.
    public init() {}
}

/// Everything one shard reports at one instant: its runtime and router counters and gauges. Plain integers only
/// (checked at startup), so it can be copied word by word through a ``ShardSnapshotSlot``.
public struct ShardSnapshot: Sendable, Equatable {
    /// The shard clock when it was taken, in milliseconds.
    public var takenAtMillis: UInt64 = 0
    /// The runtime's counters (sockets, bytes, mesh, loop turns and their durations).
    public var runtime = ShardCounters()
    /// The runtime's levels (open sockets, queued bytes, ring occupancy).
    public var runtimeGauges = RuntimeGauges()
    /// The router's counters (connections, sessions, messages, drops).
    public var router = RouterCounters()
    /// The router's levels (connections, queues, paused publishers).
    public var routerGauges = RouterGauges()
    /// The metrics listener's responses.
    public var requests = MetricsRequestCounters()
    /// The most router connections seen at any snapshot of this shard (`$SYS/.../clients/maximum`).
    public var connectionsMax = 0
    /// TLS handshakes completed on this shard's TLS listeners.
    public var tlsHandshakes = 0
    /// TLS handshakes that failed.
    public var tlsHandshakeFailures = 0
    /// TLS handshake steps put off to a later loop turn by the per-turn budget.
    public var tlsHandshakesDeferred = 0

    /// All zero.
    public init() {}
}

// MARK: - ShardSnapshotSlot: a seqlock over atomic words

/// One shard's latest ``ShardSnapshot``, written by that shard and read by any thread, without a lock.
///
/// A seqlock, as Linux and Boehm's "Can seqlocks get along with programming language memory models?" build it:
/// the writer makes the sequence odd, stores the snapshot as relaxed atomic words, then makes the sequence even
/// again with a release store; a reader copies the words between two reads of the sequence and keeps the copy
/// only if both reads are equal and even. Every word is an `Atomic<UInt64>`, so a racing read is a retry, never
/// a data race.
///
/// Why not a `Mutex`: the writer is a shard's loop, and the readers are other shards (the one answering an HTTP
/// scrape, shard 0 gathering `$SYS` totals). With a lock, a reader preempted while holding it would stall the
/// writer's loop for a scheduler quantum; with the seqlock the writer never waits for anyone, and a reader
/// retries only if it overlaps the writer's copy (about 100 ns, at most every 250 ms).
///
/// ```
/// sequence: Atomic<UInt64>   0 = never written; odd = write in progress; even = stable
/// words:    wordCount × Atomic<UInt64>, the bytes of one ShardSnapshot
/// ```
final class ShardSnapshotSlot: @unchecked Sendable {
    private let sequence = Atomic<UInt64>(0)
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let wordCount: Int
    /// Attempts a reader makes before giving up on a slot whose writer keeps overlapping it (the writer was
    /// preempted mid-copy); it yields its CPU between attempts.
    static var readAttemptsMax: Int { 64 }

    init() {
        precondition(_isPOD(ShardSnapshot.self), "ShardSnapshot must hold plain integers only")
        precondition(MemoryLayout<ShardSnapshot>.size % 8 == 0 && MemoryLayout<ShardSnapshot>.alignment <= 8,
                     "ShardSnapshot must be a whole number of 8-byte words")
        wordCount = MemoryLayout<ShardSnapshot>.size / 8
        words = .allocate(capacity: wordCount)
        for index in 0..<wordCount { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: wordCount)
        words.deallocate()
    }

    /// Replaces the snapshot. Only the owning shard's thread may call it (one writer).
    func write(_ snapshot: ShardSnapshot) {
        let start = sequence.load(ordering: .relaxed)
        sequence.store(start &+ 1, ordering: .relaxed)
        // Orders the odd sequence before every word store below.
        atomicMemoryFence(ordering: .releasing)
        withUnsafeBytes(of: snapshot) { raw in
            for index in 0..<wordCount {
                // Safe: the snapshot is wordCount × 8 bytes with 8-byte alignment (checked in init).
                (words + index).pointee.store(raw.load(fromByteOffset: index * 8, as: UInt64.self), ordering: .relaxed)
            }
        }
        sequence.store(start &+ 2, ordering: .releasing)
    }

    /// The latest snapshot, or nil when none was written yet (or, after ``readAttemptsMax`` overlapping
    /// attempts, when the writer is stuck mid-write). Any thread.
    func read() -> ShardSnapshot? {
        for _ in 0..<Self.readAttemptsMax {
            let before = sequence.load(ordering: .acquiring)
            if before == 0 { return nil }
            if before & 1 == 1 {
                sched_yield()
                continue
            }
            var copy = ShardSnapshot()
            withUnsafeMutableBytes(of: &copy) { raw in
                for index in 0..<wordCount {
                    // Safe: same layout as in write(_:).
                    raw.storeBytes(of: (words + index).pointee.load(ordering: .relaxed), toByteOffset: index * 8,
                                   as: UInt64.self)
                }
            }
            // Orders the word loads before the second sequence load.
            atomicMemoryFence(ordering: .acquiring)
            if sequence.load(ordering: .relaxed) == before { return copy }
        }
        return nil
    }
}

// MARK: - MetricsBoard

/// Every shard's latest snapshot, one ``ShardSnapshotSlot`` per shard. Shards write their own slot from their
/// loop (at most every ``snapshotIntervalMillis``, never per message); the shard answering a scrape and shard 0
/// gathering `$SYS` totals read every slot. Nothing here is touched on the data path.
public final class MetricsBoard: Sendable {
    /// Number of shards.
    public let shardCount: Int
    /// The least time between two snapshots of one shard, in milliseconds.
    public let snapshotIntervalMillis: UInt64
    private let slots: [ShardSnapshotSlot]

    /// A board for `shardCount` shards, none reported yet.
    public init(shardCount: Int, snapshotIntervalMillis: UInt64 = 250) {
        precondition(shardCount > 0, "a metrics board needs at least one shard")
        self.shardCount = shardCount
        self.snapshotIntervalMillis = snapshotIntervalMillis
        slots = (0..<shardCount).map { _ in ShardSnapshotSlot() }
    }

    /// Replaces shard `shard`'s snapshot. Only that shard's thread may call it.
    public func publish(_ snapshot: ShardSnapshot, shard: Int) {
        slots[shard].write(snapshot)
    }

    /// Shard `shard`'s latest snapshot, or nil before its first. Any thread.
    public func snapshot(of shard: Int) -> ShardSnapshot? {
        slots[shard].read()
    }

    /// Every shard's latest snapshot, in shard order.
    public func snapshots() -> [ShardSnapshot?] {
        slots.map { $0.read() }
    }
}
