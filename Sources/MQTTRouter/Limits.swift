// MARK: - Limits: every bound of the broker in one value
//
// It lives in MQTTRouter, the lowest module that enforces most of them; Broker maps the runtime's share
// (outbound bytes, ring slots, overflow, connections) into ShardRuntime's configuration.

/// What happens when a session's message queue is full.
public enum QueueFullPolicy: String, Sendable, CaseIterable {
    /// The new message is dropped for that session (counted).
    case dropNewest = "drop_newest"
    /// The oldest queued message is dropped to make room (counted).
    case dropOldest = "drop_oldest"
    /// The slow client is disconnected (0x97 Quota exceeded in v5).
    case disconnect
}

/// Every bound Shoal enforces, with its default. Each bound has a policy and a counter where it is enforced.
public struct Limits: Sendable, Equatable {
    /// Bytes queued for one connection's socket before QoS 0 messages to it are dropped (QoS 1/2 wait in the
    /// session queue). Default 1 MiB.
    public var outboundBytesMax: Int = 1 << 20
    /// Messages queued in one session (offline, or online beyond the inflight window). Default 1000.
    public var sessionQueuedMessagesMax: Int = 1000
    /// Policy when a session queue is full.
    public var sessionQueueFullPolicy: QueueFullPolicy = .dropNewest
    /// Outgoing QoS 1/2 messages unacknowledged per client, when the client sets no Receive Maximum. Default 256:
    /// Mosquitto's 20 makes a 3.1.1 subscriber's QoS 1 throughput round-trip bound (50 pairs QoS 1 on one shard:
    /// 628k msg/s at 20, 879k at 256, 899k at 65,535), and the outbound byte bound still caps what one slow
    /// client holds.
    public var inflightMessagesMax: Int = 256
    /// Incoming QoS 1/2 publications a client may have unacknowledged (Receive Maximum the broker announces).
    public var receiveMaximum: Int = 65_535
    /// Largest packet accepted or sent, in bytes (Maximum Packet Size). Default 1 MiB.
    public var packetSizeBytesMax: Int = 1 << 20
    /// Largest keepalive accepted, in seconds; a client asking for more (or 0) gets this as Server Keep Alive (v5).
    public var keepAliveSecondsMax: Int = 65_535
    /// Ring slots per ordered pair of shards. Default 4096.
    public var meshRingSlots: Int = 4096
    /// Messages a shard may hold in its local overflow when a ring to a peer is full; past it the shard stops
    /// reading from publishers until it drains. Default 65,536.
    public var meshOverflowMessagesMax: Int = 65_536
    /// Connections one shard accepts; past it new connections are refused at accept. Default 100,000.
    public var connectionsPerShardMax: Int = 100_000
    /// TLS handshake steps (OpenSSL calls with new handshake bytes) one shard runs per loop turn; past it the rest
    /// wait for the next turn, so a reconnect storm cannot stall established connections. Default 16.
    public var tlsHandshakeStepsPerTurnMax: Int = 16
    /// Session expiry the broker allows at most, in seconds (persistent_client_expiration). Default: none.
    public var sessionExpirySecondsMax: UInt32 = .max
    /// Topic aliases a client may use towards the broker (Topic Alias Maximum announced in CONNACK; 0: none).
    /// Each alias keeps a topic of up to 65,535 bytes for the connection's lifetime, so this bounds that memory per
    /// connection. Default 10, as Mosquitto's `max_topic_alias`.
    public var topicAliasMaximum: Int = 10
    /// Whether retained messages are kept.
    public var retainAvailable: Bool = true
    /// Bytes of queued messages (session queues and outbound copies) the whole broker may hold; each of N shards
    /// gets `queuedBytesBudget / N`. Past it the shard stops reading from its publishers until it drains.
    /// Default 1 GiB.
    public var queuedBytesBudget: Int = 1 << 30
    /// A client whose session queue stays full this long is disconnected (0x97 Quota exceeded in v5); `nil`
    /// (the default) never disconnects on time alone.
    public var queueFullDisconnectMillis: UInt64? = nil

    public init() {}
}
