// MARK: - Configuration

/// A listening address: every shard binds its own socket to it with SO_REUSEPORT. IPv6 sockets are
/// IPV6_V6ONLY: listen on "0.0.0.0" and "::" as two listeners to serve both families.
public struct ListenerConfiguration: Sendable, Hashable {
    /// Numeric IPv4 or IPv6 address ("0.0.0.0", "::", "127.0.0.1", "::1").
    public var host: String
    /// TCP port; 0 picks an ephemeral port shared by all shards (read it from `ShardGroup.boundPorts`).
    public var port: UInt16
    /// Makes a listener configuration.
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
}

/// Every bound of the runtime, with defaults.
public struct RuntimeConfiguration: Sendable {
    /// Shard count; nil means one per CPU in the process's affinity mask. More shards than CPUs are pinned
    /// round-robin.
    public var shardCount: Int?
    /// Whether to pin each shard thread to one CPU.
    public var pinThreads = true
    /// The CPUs shards are pinned to, round-robin; nil means the process's affinity mask.
    public var cpus: [Int]? = nil
    /// Listening addresses.
    public var listeners: [ListenerConfiguration] = []
    /// io_uring submission queue entries per shard.
    public var ringEntries: UInt32 = 1024
    /// Provided receive buffers per shard (a power of two, at most 32768).
    public var receiveBufferCount = 256
    /// Bytes per provided receive buffer (the default pool is 256 × 16 KiB = 4 MiB per shard, shared by all its
    /// connections; an idle connection holds none).
    public var receiveBufferBytes = 16 * 1024
    /// Bytes queued to one connection (pending plus in flight) before `enqueue` refuses. A single enqueue larger
    /// than this is always refused.
    public var outboundBytesMax = 1 << 20
    /// `writable` fires when a connection's queue drains below this after it was refused or passed it.
    public var outboundLowWaterBytes = 256 * 1024
    /// Slots per mesh ring (rounded up to a power of two).
    public var meshRingCapacity = 4096
    /// Messages kept in one destination's overflow list when its ring is full; past it `send` refuses.
    public var meshOverflowCountMax = 65_536
    /// Messages taken from one incoming ring per turn (fairness).
    public var meshBatchCountMax = 256
    /// Connections per shard; accepts beyond it are closed at once (counted).
    public var connectionCountMax = 1 << 20
    /// How long `stop()` lets shards flush queued output before closing connections hard.
    public var shutdownFlushMillis: UInt64 = 2000
    /// Before sleeping, an idle shard polls its incoming mesh rings for up to this long (after submitting its
    /// pending requests). Waking a sleeping thread costs tens of microseconds on some machines (about 40 µs per
    /// wake on the 2-core VM this was measured on, 1.5–3.6 µs on others); spinning trades CPU for cross-shard
    /// latency. 0 disables it.
    public var idleSpinMicros = 0
    /// Doorbells between shards use IORING_OP_MSG_RING where the kernel has it; false forces the eventfd path.
    public var messageRingDoorbell = true
    /// listen(2) backlog.
    public var listenBacklog: Int32 = 1024

    /// Defaults: one shard per allowed CPU, no listeners.
    public init() {}
}

// MARK: - ShardCounters

/// Per-shard counters, plain integers updated by the shard's own thread (no shared counters on the data path).
public struct ShardCounters: Sendable, Equatable {
    /// Connections accepted.
    public var accepted: UInt64 = 0
    /// Accepts closed at once because the shard was full or stopping.
    public var acceptRefused: UInt64 = 0
    /// Accept completions with an error.
    public var acceptErrors: UInt64 = 0
    /// Connections closed (any reason, handed-off ones excluded).
    public var closed: UInt64 = 0
    /// Connections handed to another shard.
    public var handedOff: UInt64 = 0
    /// Connections adopted from another shard.
    public var adopted: UInt64 = 0
    /// Bytes received.
    public var bytesReceived: UInt64 = 0
    /// Bytes sent.
    public var bytesSent: UInt64 = 0
    /// Send requests submitted (coalesced: at most one per connection per turn, plus short-write resubmits).
    public var sendsSubmitted: UInt64 = 0
    /// Sends that wrote less than asked.
    public var shortSends: UInt64 = 0
    /// Multishot receives stopped by -ENOBUFS (buffer ring ran dry).
    public var receiveNoBuffers: UInt64 = 0
    /// `enqueue` calls refused because the connection's outbound bound would be exceeded.
    public var enqueueRefused: UInt64 = 0
    /// Mesh messages sent.
    public var meshSent: UInt64 = 0
    /// Mesh messages that went to the overflow list.
    public var meshOverflowQueued: UInt64 = 0
    /// Mesh messages refused (overflow cap reached).
    public var meshRefused: UInt64 = 0
    /// Mesh messages received.
    public var meshReceived: UInt64 = 0
    /// Doorbells rung to sleeping peers.
    public var doorbellsRung: UInt64 = 0
    /// Loop turns.
    public var turns: UInt64 = 0
    /// Turns that ended waiting in the kernel.
    public var sleeps: UInt64 = 0
    /// How long each turn took: from its clock read to the next turn's, or to the kernel wait when it sleeps (busy
    /// time, sleep excluded; an idle spin before sleeping counts as busy).
    public var turnDurations = TurnDurationHistogram()
    /// Public initializer (all zero).
    public init() {}
}

// MARK: - TurnDurationHistogram

/// A fixed-bucket histogram of loop-turn durations: 15 plain counters, no allocation, a few compares per
/// record (a few nanoseconds). Buckets hold non-cumulative counts; the exposition
/// accumulates them.
public struct TurnDurationHistogram: Sendable, Equatable {
    /// Upper bounds of the finite buckets in nanoseconds (10 µs ... 250 ms); a 15th bucket takes the rest.
    public static let upperBoundsNanos: [UInt64] = [
        10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
        25_000_000, 50_000_000, 100_000_000, 250_000_000,
    ]
    /// Number of buckets, the overflow bucket included.
    public static var bucketCount: Int { 15 }

    /// Turns per bucket: `counts[i]` counts turns in `(upperBoundsNanos[i-1], upperBoundsNanos[i]]`; the last
    /// one counts those above 250 ms.
    public var counts: InlineArray<15, UInt64> = InlineArray(repeating: 0)
    /// Sum of all recorded durations in nanoseconds.
    public var sumNanos: UInt64 = 0
    /// Number of recorded turns.
    public var count: UInt64 = 0

    /// Empty histogram.
    public init() {}

    /// Records one turn of `nanos` nanoseconds.
    public mutating func record(nanos: UInt64) {
        // Literal bounds (the same as `upperBoundsNanos`): a chain of compares, no global access on the loop.
        let bucket: Int
        switch nanos {
        case ...10_000: bucket = 0
        case ...25_000: bucket = 1
        case ...50_000: bucket = 2
        case ...100_000: bucket = 3
        case ...250_000: bucket = 4
        case ...500_000: bucket = 5
        case ...1_000_000: bucket = 6
        case ...2_500_000: bucket = 7
        case ...5_000_000: bucket = 8
        case ...10_000_000: bucket = 9
        case ...25_000_000: bucket = 10
        case ...50_000_000: bucket = 11
        case ...100_000_000: bucket = 12
        case ...250_000_000: bucket = 13
        default: bucket = 14
        }
        counts[bucket] &+= 1
        sumNanos &+= nanos
        count &+= 1
    }

    public static func == (lhs: TurnDurationHistogram, rhs: TurnDurationHistogram) -> Bool {
        guard lhs.sumNanos == rhs.sumNanos, lhs.count == rhs.count else { return false }
        for bucket in 0..<bucketCount where lhs.counts[bucket] != rhs.counts[bucket] { return false }
        return true
    }
}

// MARK: - RuntimeGauges

/// The runtime's current levels on one shard, read by the handler at snapshot time (a few times a second, never
/// per message): each walks the shard's connection slab or its outgoing rings once.
public struct RuntimeGauges: Sendable, Equatable {
    /// Open connections (every listener).
    public var openConnections = 0
    /// Bytes queued to sockets and not yet written, over every connection.
    public var outboundBytesQueued = 0
    /// Connections whose reading is paused (backpressure).
    public var readingPausedConnections = 0
    /// Messages in this shard's outgoing mesh rings, not yet taken by their consumers.
    public var meshRingOccupancy = 0
    /// The fullest outgoing ring's occupancy.
    public var meshRingOccupancyMax = 0
    /// Slots per mesh ring.
    public var meshRingCapacity = 0
    /// Messages waiting in this shard's overflow lists because a ring was full.
    public var meshOverflowMessages = 0

    /// All zero.
    public init() {}
}

extension ShardContext {
    /// The runtime's gauges now: O(connections + shards); call it at a bounded rate (snapshot time), not per message.
    public func runtimeGauges() -> RuntimeGauges {
        assertOnShardThread()
        var gauges = RuntimeGauges()
        gauges.openConnections = openCount
        for index in slots.indices where slots[index].state == .open {
            gauges.outboundBytesQueued += slots[index].queuedBytes
            if slots[index].paused { gauges.readingPausedConnections += 1 }
        }
        let mesh = outbox.mesh
        gauges.meshRingCapacity = shardCount > 1 ? mesh.ringCapacity : 0
        for index in 0..<shardCount where index != shardID.rawValue {
            let ring = mesh.ring(from: shardID, to: ShardID(index))
            // Safe: this is the ring's producer thread, so localTail is ours to read; head is the consumer's,
            // read relaxed (a slightly stale value only overstates occupancy).
            let occupancy = ring.localTail.pointee &- ring.head.pointee.load(ordering: .relaxed)
            gauges.meshRingOccupancy += occupancy
            gauges.meshRingOccupancyMax = max(gauges.meshRingOccupancyMax, occupancy)
        }
        gauges.meshOverflowMessages = outbox.overflowCountTotal
        return gauges
    }
}
