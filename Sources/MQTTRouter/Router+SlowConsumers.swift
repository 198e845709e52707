import MQTTCodec

// MARK: - Slow consumers: the queued-bytes budget and stalled clients
//
// Two bounds live here; the others are enforced where they bite (`Limits` lists them all):
//
// - The queued-bytes budget (`Limits.queuedBytesBudget`, split evenly over the shards). Every QoS 1/2 delivery a
//   session holds (queued or in flight) counts against its shard's share. When a shard's total reaches its share
//   the shard is *under pressure*: it tells every other shard (`ShardMessage.pressure`), and while any shard is
//   under pressure every shard stops reading a publisher after routing its next PUBLISH, so TCP pushes back on
//   publishers broker-wide. Nothing already acknowledged is dropped for it: messages keep flowing into session
//   queues, which stay bounded by `sessionQueuedMessagesMax` and its policy. Below three quarters of the share the
//   shard says so, and once no shard is under pressure the paused publishers are read again.
//
// - Stalled clients (`Limits.queueFullDisconnectMillis`): a client whose outbound queue refused a write, or whose
//   session queue is full, is stalled from that moment; if it is still stalled that long after, it is disconnected
//   with 0x97 Quota exceeded (5.0). Draining its outbound queue or acknowledging messages ends the stall.
//
// Back of the envelope: a healthy publish pays one integer add per held delivery and one comparison; the pressure
// messages cross the mesh only on a transition, so a shard hovering at its budget sends at most two per drain.

extension Router {
    /// The change of a session's held bytes, applied to the shard total; trips or releases the budget pressure.
    @inline(__always)
    mutating func heldBytesChanged<E: RouterEnvironment>(by delta: Int, now: UInt64, env: inout E) {
        heldBytes += delta
        assert(heldBytes >= 0, "held bytes went negative")
        if delta > 0 {
            if !underPressure && heldBytes >= heldBytesBudget { pressureTripped(now: now, env: &env) }
        } else if underPressure && heldBytes < heldBytesBudget - heldBytesBudget / 4 {
            pressureReleased(now: now, env: &env)
        }
    }

    /// This shard's held bytes reached its share of the budget.
    mutating func pressureTripped<E: RouterEnvironment>(now: UInt64, env: inout E) {
        underPressure = true
        counters.budgetPressureTrips += 1
        setShardPressure(shard, true)
        broadcastPressure(true, now: now, env: &env)
    }

    /// This shard's held bytes fell below three quarters of its share.
    mutating func pressureReleased<E: RouterEnvironment>(now: UInt64, env: inout E) {
        underPressure = false
        broadcastPressure(false, now: now, env: &env)
        setShardPressure(shard, false)
        resumePublishersIfPressureGone(env: &env)
    }

    /// Tells every other shard this shard's pressure (a transition; mesh order keeps on/off in sequence).
    mutating func broadcastPressure<E: RouterEnvironment>(_ pressured: Bool, now: UInt64, env: inout E) {
        for index in 0..<configuration.shardCount where index != shard.index {
            sendMesh(.pressure(pressured), to: ShardID(index), publisher: nil, now: now, env: &env)
        }
    }

    /// Records shard `target`'s pressure (this shard's own, or a peer's from `ShardMessage.pressure`); the count
    /// is kept beside the flags so the publish path checks one integer.
    mutating func setShardPressure(_ target: ShardID, _ pressured: Bool) {
        guard shardsUnderPressure[target.index] != pressured else { return }
        shardsUnderPressure[target.index] = pressured
        shardsUnderPressureCount += pressured ? 1 : -1
    }

    /// A peer's pressure changed.
    mutating func peerPressureChanged<E: RouterEnvironment>(_ peer: ShardID, _ pressured: Bool, env: inout E) {
        setShardPressure(peer, pressured)
        if !pressured { resumePublishersIfPressureGone(env: &env) }
    }

    /// After routing a PUBLISH from `connection`: while any shard is under pressure, stop reading it.
    ///
    /// A publisher whose own session holds deliveries is left alone: its acknowledgements are what drains them,
    /// and they arrive on the socket that pausing would stop reading.
    @inline(__always)
    mutating func throttleIfUnderPressure<E: RouterEnvironment>(_ connection: ConnectionKey, session index: Int,
                                                               env: inout E) {
        guard shardsUnderPressureCount > 0, sessions[live: index].heldBytes == 0,
              !connectionsPausedForBudget.contains(connection) else { return }
        connectionsPausedForBudget.insert(connection)
        counters.publishersPausedForBudget += 1
        pausedDuringReceive = connection
        if !connectionsPausedForMesh.contains(connection) { env.pauseReading(connection) }
    }

    /// Reads the publishers paused for the budget again once no shard is under pressure.
    mutating func resumePublishersIfPressureGone<E: RouterEnvironment>(env: inout E) {
        guard shardsUnderPressureCount == 0, !connectionsPausedForBudget.isEmpty else { return }
        let paused = connectionsPausedForBudget
        connectionsPausedForBudget.removeAll()
        for connection in paused where connections[connection] != nil && !connectionsPausedForMesh.contains(connection) {
            env.resumeReading(connection)
        }
    }

    // MARK: - Stalled clients

    /// Drops a QoS 0 delivery to a session whose outbound queue refused a write, until `writable` clears the flag
    /// (counted, and the client's stall clock runs). - Returns: whether it was dropped.
    @inline(__always)
    mutating func droppedForBlockedOutbound<E: RouterEnvironment>(_ index: Int, now: UInt64, env: inout E) -> Bool {
        guard sessions[live: index].outboundBlocked else { return false }
        counters.droppedOutboundFull += 1
        markStalled(index, now: now, env: &env)
        return true
    }

    /// The session's client did not keep up (a refused write or a full session queue): starts its stall clock.
    ///
    /// Called for every message a stalled client misses, so the common case (already stalled, timer armed or no
    /// limit) reads two fields. The clock starts whether or not a limit is set; the timer is armed only with one.
    @inline(__always)
    mutating func markStalled<E: RouterEnvironment>(_ index: Int, now: UInt64, env: inout E) {
        if sessions[live: index].stalledSinceMillis == nil {
            guard sessions[live: index].connection != nil else { return }
            sessions[live: index].stalledSinceMillis = now
        }
        // Also arms the timer for a client that was stalled already when a reload set the limit.
        guard let limit = limits.queueFullDisconnectMillis, sessions[live: index].stalledTimer == nil,
              let since = sessions[live: index].stalledSinceMillis else { return }
        let handle = armTimer(.stalled(sessions[live: index].id), at: since + limit, env: &env)
        sessions[live: index].stalledTimer = handle
    }

    /// The client caught up: its outbound queue drained and its session queue has room.
    @inline(__always)
    mutating func clearStalledIfCaughtUp(_ index: Int) {
        if sessions[live: index].stalledSinceMillis != nil && !sessions[live: index].outboundBlocked
            && sessions[live: index].queuedCount < limits.sessionQueuedMessagesMax
        {
            sessions[live: index].stalledSinceMillis = nil
        }
    }

    /// The stall timer of a session fired: disconnect its client if it has been stalled for the whole limit.
    mutating func stalledTimerFired<E: RouterEnvironment>(_ id: SessionID, now: UInt64, env: inout E) {
        guard let index = liveSessionIndex(id) else { return }
        sessions[live: index].stalledTimer = nil
        guard let limit = limits.queueFullDisconnectMillis, let since = sessions[live: index].stalledSinceMillis,
              let connection = sessions[live: index].connection else { return }
        if now >= since + limit {
            counters.slowClientsDisconnected += 1
            sessions[live: index].stalledSinceMillis = nil
            closeConnection(connection, reason: .quotaExceeded,
                            reasonString: "not reading: stalled for \(limit / 1000) s (queue_full_disconnect)",
                            afterFlush: false, now: now, env: &env)
        } else {
            // The stall ended and began again since the timer was armed: wait out the new one.
            let handle = armTimer(.stalled(id), at: since + limit, env: &env)
            sessions[live: index].stalledTimer = handle
        }
    }
}

// MARK: - Introspection (tests, metrics)

extension Router {
    /// Budget bytes held in this shard's sessions (queued and in flight QoS 1/2 deliveries).
    public var queuedBytesHeld: Int { heldBytes }

    /// Whether this shard is over its share of the queued-bytes budget.
    public var isUnderPressure: Bool { underPressure }

    /// Publishers currently not read because some shard is under pressure.
    public var publishersPausedForBudgetCount: Int { connectionsPausedForBudget.count }

    /// Recomputes the held bytes from every session's queue and inflight window: equal to ``queuedBytesHeld``
    /// unless the accounting is broken. O(held deliveries): for tests.
    func recomputedHeldBytes() -> Int {
        var total = 0
        for index in 0..<sessions.count {
            guard sessions.isFilled(index) else { continue }
            let session = sessions[live: index]
            var own = 0
            for position in session.queueHead..<session.queue.count { own += session.queue[position].heldByteCount }
            for message in session.inflight { own += message.delivery.heldByteCount }
            assert(own == session.heldBytes, "session \(session.clientIdentifier) holds \(own), counted \(session.heldBytes)")
            total += own
        }
        return total
    }
}
