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
    /// Public initializer (all zero).
    public init() {}
}
