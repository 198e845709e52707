import MQTTCodec

// MARK: - The shard mesh

extension Router {
    mutating func handleShardMessage<E: RouterEnvironment>(
        _ message: ShardMessage, from sender: ShardID, now: UInt64, env: inout E
    ) {
        switch message {
        case .interest(let delta, let requestID):
            interest.apply(delta)
            if requestID != 0 {
                sendMesh(.interestAcknowledged(requestID: requestID), to: sender, publisher: nil, now: now, env: &env)
            }
        case .interestAcknowledged(let requestID):
            guard var pending = pendingSubacks[requestID] else { return }
            pending.acknowledgementsRemaining -= 1
            if pending.acknowledgementsRemaining == 0 {
                pendingSubacks.removeValue(forKey: requestID)
                completeSuback(pending, now: now, env: &env)
            } else {
                pendingSubacks[requestID] = pending
            }
        case .publish(let published):
            deliverMatching(published, now: now, env: &env)
        case .sharedPublish(let published, let group):
            deliverShared(published, group: group, now: now, env: &env)
        case .retain(let published):
            if limits.retainAvailable { applyRetain(published) }
        case .retainedRequest(let filter, let requestID):
            var found: [SharedPublish] = []
            retained.match(filter) { _, retainedMessage in
                if !retainedMessage.isExpired(nowMillis: now) { found.append(retainedMessage) }
            }
            sendMesh(.retainedReply(requestID: requestID, messages: found), to: sender, publisher: nil, now: now,
                     env: &env)
        case .retainedReply(let requestID, let messages):
            guard var gather = pendingRetained[requestID] else { return }
            gather.messages.append(contentsOf: messages)
            gather.repliesRemaining -= 1
            if gather.repliesRemaining == 0 {
                pendingRetained.removeValue(forKey: requestID)
                deliverRetained(gather, now: now, env: &env)
            } else {
                pendingRetained[requestID] = gather
            }
        case .pressure(let pressured):
            peerPressureChanged(sender, pressured, env: &env)
        }
    }

    /// Sends to another shard, keeping per-destination order: once a message waits in the router's backlog for a
    /// destination, later ones queue behind it. A refused message waits in the backlog and its publisher stops
    /// being read (its receive batch ends here too) until the backlog drains. QoS 0 forwards past
    /// `Limits.meshOverflowMessagesMax` backlogged messages are dropped (counted); messages that must arrive (QoS 1/2,
    /// control) always wait: the publisher of each was paused by the first refusal, so the backlog past the cap
    /// holds at most one message per paused publisher and peer.
    mutating func sendMesh<E: RouterEnvironment>(
        _ message: ShardMessage, to target: ShardID, publisher: ConnectionKey?, now: UInt64, env: inout E
    ) {
        precondition(target != shard, "a shard does not message itself")
        if meshBacklog[target.index].isEmpty {
            switch env.send(message, to: target) {
            case .accepted:
                counters.meshMessagesSent += 1
                return
            case .overflowed:
                counters.meshMessagesSent += 1
                counters.meshOverflowed += 1
                return
            case .refused:
                break
            }
        }
        if !message.mustArrive && meshBacklogCount >= limits.meshOverflowMessagesMax {
            counters.droppedMeshRefused += 1
        } else {
            meshBacklog[target.index].append(message)
            meshBacklogCount += 1
            counters.meshBacklogged += 1
        }
        if let publisher, connections[publisher] != nil, !connectionsPausedForMesh.contains(publisher) {
            connectionsPausedForMesh.insert(publisher)
            counters.publishersPausedForMesh += 1
            pausedDuringReceive = publisher
            if !connectionsPausedForBudget.contains(publisher) { env.pauseReading(publisher) }
        }
        if meshRetryTimer == nil {
            let handle = armTimer(.meshRetry, at: now + configuration.meshRetryMillis, env: &env)
            meshRetryTimer = handle
        }
    }

    @inline(__always)
    mutating func flushMeshBacklogIfNeeded<E: RouterEnvironment>(now: UInt64, env: inout E) {
        if meshBacklogCount > 0 { flushMeshBacklog(now: now, env: &env) }
    }

    /// Retries backlogged mesh messages in order; resumes paused publishers once everything is out.
    mutating func flushMeshBacklog<E: RouterEnvironment>(now: UInt64, env: inout E) {
        for index in meshBacklog.indices where !meshBacklog[index].isEmpty {
            var sent = 0
            for message in meshBacklog[index] {
                if env.send(message, to: ShardID(index)) == .refused { break }
                sent += 1
            }
            if sent > 0 {
                meshBacklog[index].removeFirst(sent)
                meshBacklogCount -= sent
                counters.meshMessagesSent += sent
            }
        }
        if meshBacklogCount == 0 {
            cancelTimer(meshRetryTimer, env: &env)
            meshRetryTimer = nil
            let paused = connectionsPausedForMesh
            connectionsPausedForMesh.removeAll()
            for connection in paused
            where connections[connection] != nil && !connectionsPausedForBudget.contains(connection) {
                env.resumeReading(connection)
            }
        } else if meshRetryTimer == nil {
            let handle = armTimer(.meshRetry, at: now + configuration.meshRetryMillis, env: &env)
            meshRetryTimer = handle
        }
    }
}
