import MQTTCodec

// MARK: - Messages from the broker itself ($SYS)

extension Router {
    /// Publishes a message with the broker as its origin (the `$SYS` tree): it takes the ordinary publish path
    /// (retained on its topic's home shard, delivered to this shard's matching sessions, forwarded once to every
    /// other interested shard) with no publishing client, so No Local never filters it and no PUBACK is owed.
    ///
    /// Clients still cannot publish to `$SYS`: that check sits in the client publish path, which this bypasses.
    /// - Parameters:
    ///   - topic: a topic in the `$SYS` tree.
    ///   - payload: the application payload (an empty retained payload clears the retained message).
    ///   - retain: whether the message is retained.
    ///   - now: the shard clock, in milliseconds.
    /// - Precondition: `topic` starts with `$SYS/`.
    public mutating func publishSystemMessage<E: RouterEnvironment>(
        topic: TopicName, payload: [UInt8], retain: Bool, now: UInt64, env: inout E
    ) {
        precondition(topic.bytes.withUnsafeBytes { Self.isSystemTopic($0) }, "\(topic) is not a $SYS topic")
        let message = SharedPublish(topic: topic, payload: payload, qos: .atMostOnce, retain: retain)
        route(message, publisher: nil, now: now, env: &env)
    }
}

// MARK: - Gauges (metrics snapshots)

/// The router's current levels on one shard, read at snapshot time (a few times a second, never per message).
public struct RouterGauges: Sendable, Equatable {
    /// Connections the router holds (awaiting CONNECT or attached to a session).
    public var connections = 0
    /// Sessions on this shard (online and offline).
    public var sessions = 0
    /// Messages queued in sessions, waiting for the inflight window or for the client to come back.
    public var sessionQueuedMessages = 0
    /// Outgoing QoS 1/2 messages in flight (sent or about to be, not yet acknowledged).
    public var inflightMessages = 0
    /// Publishers whose reading is paused because the mesh refused their messages (backpressure).
    public var pausedPublishers = 0
    /// Publishers whose reading is paused because some shard is over its queued-bytes budget.
    public var budgetPausedPublishers = 0
    /// Budget bytes of the QoS 1/2 deliveries held in sessions (queued or in flight).
    public var queuedBytesHeld = 0
    /// Whether this shard is over its share of the queued-bytes budget.
    public var underPressure = false
    /// Messages the mesh refused, waiting in the router for a retry.
    public var meshBacklogMessages = 0
    /// Requests waiting for other shards (SUBACKs and retained gathers).
    public var pendingRequests = 0

    /// All zero.
    public init() {}
}

extension Router {
    /// The router's gauges now. O(sessions): call it at a bounded rate (snapshot time), not per message.
    public func gauges() -> RouterGauges {
        var gauges = RouterGauges()
        gauges.connections = connections.count
        gauges.sessions = sessionByClient.count
        // By index with optional chaining: reads two fields in place instead of copying each session.
        for index in 0..<sessions.count {
            guard sessions.isFilled(index) else { continue }
            gauges.sessionQueuedMessages += sessions[live: index].queuedCount
            gauges.inflightMessages += sessions[live: index].inflight.count
        }
        gauges.pausedPublishers = connectionsPausedForMesh.count
        gauges.budgetPausedPublishers = connectionsPausedForBudget.count
        gauges.queuedBytesHeld = heldBytes
        gauges.underPressure = underPressure
        gauges.meshBacklogMessages = meshBacklogCount
        gauges.pendingRequests = pendingSubacks.count + pendingRetained.count
        return gauges
    }
}
