import MQTTCodec

// MARK: - Counters

/// What one shard's router counts, for metrics and `$SYS`. Plain integers, owned by the shard: no shared counter
/// on the data path; a reader asks every shard and sums.
public struct RouterCounters: Sendable, Equatable {
    // Connections.
    public var connectionsAccepted = 0
    public var connectionsHandedOff = 0
    public var connectionsAdopted = 0
    public var connectionsRefused = 0
    public var connectTimeouts = 0
    public var keepAliveTimeouts = 0
    public var protocolErrors = 0
    public var takeovers = 0
    // Sessions.
    public var sessions = 0
    public var sessionsCreated = 0
    public var sessionsResumed = 0
    public var sessionsEnded = 0
    public var sessionsExpired = 0
    public var subscriptions = 0
    // Messages.
    public var publishReceivedQoS0 = 0
    public var publishReceivedQoS1 = 0
    public var publishReceivedQoS2 = 0
    public var publishSentQoS0 = 0
    public var publishSentQoS1 = 0
    public var publishSentQoS2 = 0
    public var redeliveries = 0
    /// Topic aliases the broker set towards clients (5.0: one per topic per connection, up to its maximum).
    public var topicAliasesToClients = 0
    public var willsPublished = 0
    public var retainedMessages = 0
    // Mesh.
    public var meshMessagesSent = 0
    public var meshMessagesReceived = 0
    public var meshOverflowed = 0
    public var meshBacklogged = 0
    // Drops, by reason.
    public var droppedOutboundFull = 0
    public var droppedExpired = 0
    public var droppedTooLargeForClient = 0
    public var droppedOfflineQoS0 = 0
    public var droppedMeshRefused = 0
    public var droppedNotAuthorized = 0
    public var droppedNoSharedMember = 0
    public var droppedControlOutboundFull = 0
    /// QoS 1/2 writes deferred because the connection's outbound queue was full (they wait for `writable`).
    public var outboundFullDeferrals = 0
    /// QoS 1/2 deliveries that found their session queue full (policy `drop_newest`, `drop_oldest` or
    /// `disconnect`), by QoS.
    public var droppedSessionQueueFullQoS1 = 0
    public var droppedSessionQueueFullQoS2 = 0
    /// Both of the above.
    public var droppedSessionQueueFull: Int { droppedSessionQueueFullQoS1 + droppedSessionQueueFullQoS2 }
    // Slow consumers.
    /// Times this shard's held bytes reached its share of `Limits.queuedBytesBudget`.
    public var budgetPressureTrips = 0
    /// Publishers paused because some shard was over its queued-bytes budget.
    public var publishersPausedForBudget = 0
    /// Publishers paused because the mesh refused their messages.
    public var publishersPausedForMesh = 0
    /// Clients disconnected for staying stalled past `Limits.queueFullDisconnectMillis`, or by the `disconnect`
    /// queue policy.
    public var slowClientsDisconnected = 0
    // Packets and payload bytes (metrics and `$SYS/broker/messages/...`).
    /// MQTT control packets decoded from clients (every type).
    public var packetsReceived = 0
    /// MQTT control packets written to clients' outbound queues (every type).
    public var packetsSent = 0
    public var publishPayloadBytesReceivedQoS0 = 0
    public var publishPayloadBytesReceivedQoS1 = 0
    public var publishPayloadBytesReceivedQoS2 = 0
    public var publishPayloadBytesSentQoS0 = 0
    public var publishPayloadBytesSentQoS1 = 0
    public var publishPayloadBytesSentQoS2 = 0
    // Security.
    /// CONNECTs refused for bad credentials or missing ones (also counted in `connectionsRefused`).
    public var authenticationFailures = 0
    /// Subscriptions refused by the ACL (SUBACK 0x87 / 0x80).
    public var subscriptionsDenied = 0
    /// PUBLISHes (and wills) the ACL did not let the client write.
    public var publishesDenied = 0
    /// Deliveries withheld because the subscriber may not read the topic.
    public var deliveriesDenied = 0

    public init() {}

    mutating func countReceived(_ qos: QoS, payloadBytes: Int) {
        switch qos {
        case .atMostOnce: publishReceivedQoS0 += 1; publishPayloadBytesReceivedQoS0 += payloadBytes
        case .atLeastOnce: publishReceivedQoS1 += 1; publishPayloadBytesReceivedQoS1 += payloadBytes
        case .exactlyOnce: publishReceivedQoS2 += 1; publishPayloadBytesReceivedQoS2 += payloadBytes
        }
    }

    /// A PUBLISH (first send or resend) went into a connection's outbound queue.
    mutating func countSentPayload(_ qos: QoS, payloadBytes: Int) {
        packetsSent += 1
        switch qos {
        case .atMostOnce: publishPayloadBytesSentQoS0 += payloadBytes
        case .atLeastOnce: publishPayloadBytesSentQoS1 += payloadBytes
        case .exactlyOnce: publishPayloadBytesSentQoS2 += payloadBytes
        }
    }

    mutating func countSent(_ qos: QoS) {
        switch qos {
        case .atMostOnce: publishSentQoS0 += 1
        case .atLeastOnce: publishSentQoS1 += 1
        case .exactlyOnce: publishSentQoS2 += 1
        }
    }
}

// MARK: - Timers

/// A timer armed through the environment: its identifier (to cancel) and the token it fires with.
struct TimerHandle: Hashable {
    var id: UInt64
    var token: UInt64
}

/// What a fired timer token stands for.
enum TimerTarget {
    case connectTimeout(ConnectionKey)
    case keepAlive(ConnectionKey)
    case willDelay(SessionID)
    case sessionExpiry(SessionID)
    case meshRetry
    /// Checks a stalled client against `Limits.queueFullDisconnectMillis` (Router+SlowConsumers.swift).
    case stalled(SessionID)
}

// MARK: - Pending cross-shard work

/// A SUBACK waiting for every other shard to acknowledge the interest deltas its new filters caused.
struct PendingSuback {
    var connection: ConnectionKey
    var session: SessionID
    var packet: SubAckPacket
    var acknowledgementsRemaining: Int
    /// Subscriptions whose retained messages are fetched once the SUBACK is out.
    var retainedRequests: [(filter: TopicFilter, value: SubscriptionValue)]
}

/// Retained messages for one new subscription, gathered from one or every shard before delivery.
struct RetainedGather {
    var session: SessionID
    var value: SubscriptionValue
    var repliesRemaining: Int
    var messages: [SharedPublish]
}

/// One merged delivery candidate while matching a publish on this shard.
struct MatchCandidate {
    var session: SessionID
    var qos: QoS
    var retainAsPublished: Bool
    var subscriptionIdentifiers: SubscriptionIdentifiers
}

// MARK: - Router

/// One shard's MQTT state machine, sans I/O: events in (bytes from a connection, a message from another shard, a
/// timer), actions out through the environment `E` (bytes for a connection, a message for a shard, close, timers).
/// It has no sockets, threads or clock: time is the `now` argument, in milliseconds.
///
/// Ownership (see DESIGN.md): a client's session lives on `ShardID.home(forClientIdentifier:)`; a connection whose
/// CONNECT names another home is handed off there. Each shard keeps a trie of its own sessions' subscriptions and a
/// replica of every shard's interest, and forwards each publish once to every other interested shard.
public struct Router {
    /// The configuration (its limits change with ``updateLimits(_:)``).
    public internal(set) var configuration: RouterConfiguration
    /// Counters for metrics.
    public internal(set) var counters = RouterCounters()

    var connections = ConnectionTable()
    var sessions = SessionSlab()
    var sessionGenerations: [UInt32] = []
    var freeSessionSlots: [UInt32] = []
    var sessionByClient: [String: SessionID] = [:]

    var subscriptions = SubscriptionTrie<SessionID, SubscriptionValue>()
    var localInterest: LocalInterest
    var interest = InterestTable()
    var retained = RetainedStore<SharedPublish>()
    /// The ACL, or `nil` for none (everything allowed). See `AccessControl+Router.swift`.
    public internal(set) var accessControl: AccessControlList?

    var timers: [UInt64: TimerTarget] = [:]
    var nextTimerToken: UInt64 = 1
    var nextRequestID: UInt64 = 1
    var pendingSubacks: [UInt64: PendingSuback] = [:]
    var pendingRetained: [UInt64: RetainedGather] = [:]

    var meshBacklog: [[ShardMessage]]
    var meshBacklogCount = 0
    var meshRetryTimer: TimerHandle?
    var connectionsPausedForMesh: Set<ConnectionKey> = []

    // Slow consumers (Router+SlowConsumers.swift).
    /// Budget bytes of every delivery held in this shard's sessions (queued or in flight).
    var heldBytes = 0
    /// This shard's share of `Limits.queuedBytesBudget`.
    let heldBytesBudget: Int
    /// Whether this shard's held bytes reached its share (and have not yet fallen below three quarters of it).
    var underPressure = false
    /// Per shard, this one included: whether it says it is under pressure.
    var shardsUnderPressure: [Bool]
    var shardsUnderPressureCount = 0
    /// Publishers not read while some shard is under pressure.
    var connectionsPausedForBudget: Set<ConnectionKey> = []
    /// The connection paused while its received bytes were being handled: `received` stops consuming at once, so
    /// the rest of its batch waits in the runtime until it is read again (a paused publisher's PUBLISHes after
    /// the one that paused it are not routed).
    var pausedDuringReceive: ConnectionKey? = nil

    var matchSequence: UInt64 = 0
    var matchScratch: [(SessionID, SubscriptionValue)] = []
    var candidateScratch: [MatchCandidate] = []
    /// Rotates the weighted choice of target shard per shared group (publishing side).
    var sharedSelectionCounter: UInt64 = 0
    /// Rotates the choice of member within this shard's part of a shared group (receiving side).
    var sharedMemberCounter: UInt64 = 0
    var assignedIdentifierCounter: UInt64 = 0

    /// Creates the router of one shard.
    public init(configuration: RouterConfiguration) {
        self.configuration = configuration
        self.localInterest = LocalInterest(shard: configuration.shard)
        self.meshBacklog = Array(repeating: [], count: configuration.shardCount)
        self.heldBytesBudget = max(1, configuration.limits.queuedBytesBudget / configuration.shardCount)
        self.shardsUnderPressure = Array(repeating: false, count: configuration.shardCount)
    }

    /// This shard.
    @inlinable
    public var shard: ShardID { configuration.shard }

    /// The bounds in force, borrowed in place (a getter would copy the whole `Limits` on every hot-path read).
    var limits: Limits {
        _read { yield configuration.limits }
    }

    /// Applies the bounds a running shard can change (a configuration reload): the session queue and its policy,
    /// inflight and receive maximums, packet size, keepalive, session expiry, topic aliases and retain. They apply
    /// to the next message queued and the next CONNECT; a connected client keeps what its CONNACK announced. The
    /// bounds the runtime sized its structures with (outbound bytes, ring slots, overflow, connections, the queued
    /// bytes budget) stay as they were: changing them needs a restart.
    public mutating func updateLimits(_ new: Limits) {
        var applied = new
        let old = configuration.limits
        applied.outboundBytesMax = old.outboundBytesMax
        applied.meshRingSlots = old.meshRingSlots
        applied.meshOverflowMessagesMax = old.meshOverflowMessagesMax
        applied.connectionsPerShardMax = old.connectionsPerShardMax
        applied.queuedBytesBudget = old.queuedBytesBudget
        configuration.limits = applied
    }

    // MARK: - Entry points

    /// A connection was accepted: it has `connectTimeoutMillis` to send CONNECT.
    public mutating func connectionAccepted<E: RouterEnvironment>(_ connection: ConnectionKey, now: UInt64, env: inout E) {
        precondition(connections[connection] == nil, "connection accepted twice")
        counters.connectionsAccepted += 1
        var state = ConnectionState(
            decoder: PacketDecoder(maximumPacketSize: limits.packetSizeBytesMax),
            acceptedAtMillis: now, lastPacketMillis: now
        )
        let handle = armTimer(.connectTimeout(connection), at: now + configuration.connectTimeoutMillis, env: &env)
        state.timer = handle
        connections[connection] = state
    }

    /// Bytes arrived on a connection. Decodes and handles every whole packet at the start of `bytes`.
    /// - Returns: the bytes consumed; the caller keeps the rest (a partial packet) and passes it again with more.
    ///   After a hand-off or a close, consumption stops: the rest travels with the connection, or is discarded.
    public mutating func received<E: RouterEnvironment>(
        _ connection: ConnectionKey, bytes: UnsafeRawBufferPointer, now: UInt64, env: inout E
    ) -> Int {
        var consumed = 0
        flushMeshBacklogIfNeeded(now: now, env: &env)
        // The decoder is read once per batch, not once per packet.
        var decoder = connections.decoder(of: connection)
        while consumed < bytes.count, let current = decoder {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
            let frame: PacketDecoder.Frame
            do throws(MQTTDecodeError) {
                guard case .frame(let found) = try current.readFrame(rest) else { return consumed }
                frame = found
            } catch {
                failDecode(connection, error: error, packet: rest, now: now, env: &env)
                return consumed
            }
            connections[connection]?.lastPacketMillis = now
            let packetBytes = UnsafeRawBufferPointer(rebasing: rest[0..<frame.byteCount])
            consumed += frame.byteCount
            counters.packetsReceived += 1
            handleFrame(connection, frame: frame, bytes: packetBytes, now: now, env: &env)
            if pausedDuringReceive != nil {
                // Backpressure: this connection (or, through a will, another) was just paused.
                let paused = pausedDuringReceive == connection
                pausedDuringReceive = nil
                if paused { return consumed }
            }
            // A PUBLISH leaves the decoder as it was; another packet may change it (CONNECT sets the protocol
            // version), and any packet may close the connection or hand it off.
            if frame.type != .publish || !connections.contains(connection) {
                decoder = connections.decoder(of: connection)
            }
        }
        return consumed
    }

    /// The socket is gone (peer closed, error, or the runtime closed it). Publishes the will unless DISCONNECT
    /// 0x00 was received, and detaches or ends the session. Unknown connections are ignored.
    public mutating func connectionClosed<E: RouterEnvironment>(_ connection: ConnectionKey, now: UInt64, env: inout E) {
        detach(connection, discardWill: false, cause: .connectionLost, now: now, env: &env)
    }

    /// A connection handed off to this, its home, shard, with its decoded CONNECT.
    public mutating func adopted<E: RouterEnvironment>(
        _ connection: ConnectionKey, state handoff: HandoffState, now: UInt64, env: inout E
    ) {
        precondition(connections[connection] == nil, "connection adopted twice")
        counters.connectionsAdopted += 1
        let state = ConnectionState(
            decoder: PacketDecoder(
                protocolVersion: handoff.connect.protocolVersion, maximumPacketSize: limits.packetSizeBytesMax
            ),
            acceptedAtMillis: handoff.acceptedAtMillis, lastPacketMillis: now
        )
        connections[connection] = state
        establish(connection, connect: handoff.connect, assignedIdentifier: nil, now: now, env: &env)
    }

    /// A message from another shard.
    public mutating func message<E: RouterEnvironment>(
        _ message: ShardMessage, from sender: ShardID, now: UInt64, env: inout E
    ) {
        counters.meshMessagesReceived += 1
        flushMeshBacklogIfNeeded(now: now, env: &env)
        handleShardMessage(message, from: sender, now: now, env: &env)
    }

    /// A timer armed by this router fired.
    public mutating func timerFired<E: RouterEnvironment>(_ token: UInt64, now: UInt64, env: inout E) {
        guard let target = timers.removeValue(forKey: token) else { return }
        switch target {
        case .connectTimeout(let connection):
            guard let state = connections[connection], state.phase == .awaitingConnect else { return }
            connections[connection]?.timer = nil
            counters.connectTimeouts += 1
            closeConnection(connection, reason: nil, now: now, env: &env)
        case .keepAlive(let connection):
            guard let state = connections[connection], state.sessionID != nil else { return }
            connections[connection]?.timer = nil
            let deadline = state.lastPacketMillis + state.keepAliveWindowMillis
            if now >= deadline {
                counters.keepAliveTimeouts += 1
                closeConnection(connection, reason: .keepAliveTimeout, reasonString: "keep alive timeout", now: now,
                                env: &env)
            } else {
                let handle = armTimer(.keepAlive(connection), at: deadline, env: &env)
                connections[connection]?.timer = handle
            }
        case .willDelay(let id):
            guard let index = liveSessionIndex(id) else { return }
            sessions[live: index].willTimer = nil
            publishWill(index, now: now, env: &env)
        case .sessionExpiry(let id):
            guard let index = liveSessionIndex(id), sessions[live: index].connection == nil else { return }
            sessions[live: index].expiryTimer = nil
            counters.sessionsExpired += 1
            endSession(index, now: now, env: &env)
        case .meshRetry:
            meshRetryTimer = nil
            flushMeshBacklog(now: now, env: &env)
        case .stalled(let id):
            stalledTimerFired(id, now: now, env: &env)
        }
    }

    /// The connection's outbound queue drained: queued QoS 1/2 messages move into the inflight window.
    public mutating func writable<E: RouterEnvironment>(_ connection: ConnectionKey, now: UInt64, env: inout E) {
        guard let id = connections[connection]?.sessionID, let index = liveSessionIndex(id) else { return }
        sessions[live: index].outboundBlocked = false
        pump(index, now: now, env: &env)
        clearStalledIfCaughtUp(index)
    }

    // MARK: - Introspection (tests, metrics)

    /// The number of connections this router holds.
    public var connectionCount: Int { connections.count }
    /// The number of sessions on this shard.
    public var sessionCount: Int { sessionByClient.count }
    /// The interest replica (read-only).
    public var interestReplica: InterestTable { interest }
    /// Whether a session exists for `clientIdentifier` on this shard.
    public func hasSession(_ clientIdentifier: String) -> Bool { sessionByClient[clientIdentifier] != nil }
    /// The inflight and queued counts of a client's session, if it exists here.
    public func sessionLoad(_ clientIdentifier: String) -> (inflight: Int, inflightMax: Int, queued: Int)? {
        guard let id = sessionByClient[clientIdentifier], let index = liveSessionIndex(id) else { return nil }
        let session = sessions[live: index]
        return (session.inflight.count, session.inflightMax, session.queuedCount)
    }
    /// Requests waiting for other shards (SUBACKs and retained gathers); zero when the mesh is quiet.
    public var pendingRequestCount: Int { pendingSubacks.count + pendingRetained.count }

    // MARK: - Helpers

    mutating func armTimer<E: RouterEnvironment>(_ target: TimerTarget, at deadline: UInt64, env: inout E) -> TimerHandle {
        let token = nextTimerToken
        nextTimerToken += 1
        timers[token] = target
        let id = env.armTimer(deadlineMillis: deadline, token: token)
        return TimerHandle(id: id, token: token)
    }

    mutating func cancelTimer<E: RouterEnvironment>(_ handle: TimerHandle?, env: inout E) {
        guard let handle else { return }
        timers.removeValue(forKey: handle.token)
        env.cancelTimer(handle.id)
    }

    /// The slot of a live session, or `nil` for a stale ID. A slot's generation is bumped when its session ends
    /// and IDs are only made when a slot is filled, so a matching generation means the session is live; the
    /// check reads two integers and copies no `Session` (binding `sessions[index]` would retain its arrays).
    func liveSessionIndex(_ id: SessionID) -> Int? {
        let index = Int(id.index)
        guard index < sessionGenerations.count, sessionGenerations[index] == id.generation else { return nil }
        assert(sessions.isFilled(index), "a session slot with a current generation is empty")
        return index
    }

    /// Writes a control packet to a connection. A full outbound queue drops it (counted): acknowledgements are
    /// tiny, and the peer's own retry rules cover a lost one.
    @discardableResult
    mutating func writePacket<E: RouterEnvironment, P: MQTTPacket>(
        _ packet: P, to connection: ConnectionKey, version: ProtocolVersion, env: inout E
    ) -> Bool {
        let size = packet.encodedSize(version: version)
        let written = env.write(connection, byteCount: size) { buffer in
            let count = packet.encode(into: buffer, version: version)
            precondition(count == size, "encoded size mismatch")
        }
        if written { counters.packetsSent += 1 } else { counters.droppedControlOutboundFull += 1 }
        return written
    }

    /// Closes a connection the router decided to close: a v5 DISCONNECT with `reason` first when the connection
    /// is past CONNECT, then the close, then the session detaches (will published).
    ///
    /// `reasonString`, when given, goes in the DISCONNECT as a Reason String, so the client learns the cause and
    /// not only its code (a DISCONNECT may carry one whatever the client's Request Problem Information,
    /// [MQTT-3.1.2-29]); it is left out when it would make the packet larger than the client's Maximum Packet
    /// Size ([MQTT-3.14.2-3]).
    ///
    /// With `afterFlush` (the default) queued output, the DISCONNECT included, is sent before the socket closes.
    /// A client that stopped reading would keep such a socket open for as long as it likes: slow clients are
    /// closed with `afterFlush: false` (their DISCONNECT goes out only if the socket still takes it at once).
    mutating func closeConnection<E: RouterEnvironment>(
        _ connection: ConnectionKey, reason: ReasonCode?, reasonString: String? = nil, afterFlush: Bool = true,
        now: UInt64, env: inout E
    ) {
        guard let state = connections[connection] else { return }
        if let reason, state.protocolVersion == .v5, let id = state.sessionID {
            var packet = DisconnectPacket(reasonCode: reason)
            if let reasonString, let index = liveSessionIndex(id) {
                let explained = DisconnectPacket(reasonCode: reason, properties: [.reasonString(reasonString)])
                if explained.encodedSize(version: .v5) <= sessions[live: index].clientPacketSizeMax { packet = explained }
            }
            writePacket(packet, to: connection, version: .v5, env: &env)
        }
        env.close(connection, afterFlush: afterFlush)
        detach(connection, discardWill: false, cause: .closedByBroker(reason), now: now, env: &env)
    }

    /// A protocol violation: counted, and only this connection is closed (with `reasonString` saying why, 5.0).
    mutating func protocolViolation<E: RouterEnvironment>(
        _ connection: ConnectionKey, reason: ReasonCode, because reasonString: String? = nil, now: UInt64,
        env: inout E
    ) {
        counters.protocolErrors += 1
        closeConnection(connection, reason: reason, reasonString: reasonString, now: now, env: &env)
    }

    /// Forgets a connection: cancels its timer, detaches its session (will, expiry). `discardWill` after a
    /// DISCONNECT with reason 0x00 ([MQTT-3.1.2-10]). `cause` goes to the environment's disconnection event when
    /// the connection had a session.
    mutating func detach<E: RouterEnvironment>(
        _ connection: ConnectionKey, discardWill: Bool, cause: DisconnectCause, now: UInt64, env: inout E
    ) {
        guard let state = connections.removeValue(forKey: connection) else { return }
        cancelTimer(state.timer, env: &env)
        connectionsPausedForMesh.remove(connection)
        connectionsPausedForBudget.remove(connection)
        guard let id = state.sessionID, let index = liveSessionIndex(id) else { return }
        guard sessions[live: index].connection == connection else { return }
        env.clientDisconnected(connection, clientIdentifier: sessions[live: index].clientIdentifier, cause: cause)
        sessions[live: index].connection = nil
        sessions[live: index].outboundBlocked = false
        sessions[live: index].stalledSinceMillis = nil
        cancelTimer(sessions[live: index].stalledTimer, env: &env)
        sessions[live: index].stalledTimer = nil
        // The aliases were the connection's ([MQTT-3.3.2-7]); free them now rather than at the next CONNECT.
        sessions[live: index].topicAliasesToClient = OutgoingTopicAliases()
        // Everything in flight is sent again on resumption.
        if discardWill {
            sessions[live: index].will = nil
        } else if sessions[live: index].will != nil {
            let delay = min(sessions[live: index].willDelaySeconds, sessions[live: index].expirySeconds)
            if delay == 0 {
                publishWill(index, now: now, env: &env)
            } else {
                let handle = armTimer(.willDelay(id), at: now + UInt64(delay) * 1000, env: &env)
                sessions[live: index].willTimer = handle
            }
        }
        let expiry = sessions[live: index].expirySeconds
        if expiry == 0 {
            endSession(index, now: now, env: &env)
        } else if expiry != UInt32.max {
            let handle = armTimer(.sessionExpiry(id), at: now + UInt64(expiry) * 1000, env: &env)
            sessions[live: index].expiryTimer = handle
        }
    }

    /// Publishes the session's will now (will delay over, or the session ends first).
    mutating func publishWill<E: RouterEnvironment>(_ index: Int, now: UInt64, env: inout E) {
        guard let will = sessions[live: index].will else { return }
        sessions[live: index].will = nil
        cancelTimer(sessions[live: index].willTimer, env: &env)
        sessions[live: index].willTimer = nil
        if let access = sessions[live: index].access, !access.allows(.write, topic: will.topic.bytes) {
            // A will goes out as a publish by its client: the ACL's write rules apply to it.
            counters.publishesDenied += 1
            return
        }
        var expiry: UInt64? = nil
        var passthrough: [Property] = []
        for property in will.properties.list {
            switch property {
            case .messageExpiryInterval(let seconds): expiry = now + UInt64(seconds) * 1000
            case .willDelayInterval: continue
            default: passthrough.append(property)
            }
        }
        let message = SharedPublish(
            topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain,
            properties: Properties(passthrough).encodedBytes(), expiryAtMillis: expiry,
            originClientIdentifier: sessions[live: index].clientIdentifier
        )
        counters.willsPublished += 1
        route(message, publisher: nil, now: now, env: &env)
    }

    /// Ends a session: its will goes out if still pending, its subscriptions are removed (interest deltas), its
    /// slot is freed.
    mutating func endSession<E: RouterEnvironment>(_ index: Int, now: UInt64, env: inout E) {
        if sessions[live: index].will != nil && sessions[live: index].connection == nil {
            publishWill(index, now: now, env: &env)
        }
        let session = sessions[live: index]
        cancelTimer(session.willTimer, env: &env)
        cancelTimer(session.expiryTimer, env: &env)
        cancelTimer(session.stalledTimer, env: &env)
        for (filter, _) in subscriptions.removeAll(subscriber: session.id) {
            counters.subscriptions -= 1
            if let delta = localInterest.unsubscribed(filter) { broadcastInterest(delta, requestID: 0, env: &env) }
        }
        sessionByClient.removeValue(forKey: session.clientIdentifier)
        sessions[index] = nil
        if session.heldBytes > 0 { heldBytesChanged(by: -session.heldBytes, now: now, env: &env) }
        sessionGenerations[index] &+= 1
        freeSessionSlots.append(UInt32(index))
        counters.sessions -= 1
        counters.sessionsEnded += 1
    }

    mutating func createSession(
        clientIdentifier: String, connection: ConnectionKey, version: ProtocolVersion
    ) -> Int {
        let index: Int
        if let free = freeSessionSlots.popLast() {
            index = Int(free)
        } else {
            index = sessions.count
            sessions.append(nil)
            sessionGenerations.append(0)
        }
        let id = SessionID(index: UInt32(index), generation: sessionGenerations[index])
        sessions[index] = Session(
            id: id, clientIdentifier: clientIdentifier, connection: connection, protocolVersion: version,
            expirySeconds: 0, inflightMax: limits.inflightMessagesMax, clientPacketSizeMax: PacketDecoder.packetSizeMax
        )
        sessionByClient[clientIdentifier] = id
        counters.sessions += 1
        counters.sessionsCreated += 1
        return index
    }
}
