import MQTTCodec

// MARK: - SUBSCRIBE, UNSUBSCRIBE, retained delivery

extension Router {
    mutating func handleSubscribe<E: RouterEnvironment>(
        _ connection: ConnectionKey, _ index: Int, _ subscribe: SubscribePacket, now: UInt64, env: inout E
    ) {
        let id = sessions[live: index].id
        var identifier: Int? = nil
        for case .subscriptionIdentifier(let value) in subscribe.properties.list { identifier = value }
        let requestID = nextRequestID
        nextRequestID += 1
        var acknowledgements = 0
        var reasonCodes: [ReasonCode] = []
        reasonCodes.reserveCapacity(subscribe.subscriptions.count)
        var retainedRequests: [(filter: TopicFilter, value: SubscriptionValue)] = []
        for subscription in subscribe.subscriptions {
            let value = SubscriptionValue(options: subscription.options, identifier: identifier)
            let filter = subscription.filter
            if let access = sessions[live: index].access, !access.allowsSubscription(filter.matchingBytes) {
                // The ACL lets this client read nothing the filter matches: 0x87 (5.0), 0x80 (3.1.1), this
                // filter only.
                counters.subscriptionsDenied += 1
                reasonCodes.append(.notAuthorized)
                continue
            }
            let previous = subscriptions.insert(filter, subscriber: id, value: value)
            let isNew = previous == nil
            if isNew {
                counters.subscriptions += 1
                if let delta = localInterest.subscribed(filter) {
                    acknowledgements += broadcastInterest(delta, requestID: requestID, env: &env)
                }
            }
            reasonCodes.append(ReasonCode(rawValue: subscription.options.qos.rawValue))
            // Retained messages: not for shared subscriptions (MQTT 5.0 §4.8.2); per Retain Handling otherwise.
            if !filter.isShared && limits.retainAvailable {
                switch subscription.options.retainHandling {
                case .sendOnSubscribe: retainedRequests.append((filter, value))
                case .sendOnNewSubscribe: if isNew { retainedRequests.append((filter, value)) }
                case .doNotSend: break
                }
            }
        }
        let packet = SubAckPacket(packetIdentifier: subscribe.packetIdentifier, reasonCodes: reasonCodes)
        let pending = PendingSuback(
            connection: connection, session: id, packet: packet, acknowledgementsRemaining: acknowledgements,
            retainedRequests: retainedRequests
        )
        if acknowledgements == 0 {
            completeSuback(pending, now: now, env: &env)
        } else {
            // The SUBACK waits until every other shard applied the new interest: a publish any shard receives
            // after the client sees SUBACK then reaches this shard.
            pendingSubacks[requestID] = pending
        }
    }

    /// Sends a SUBACK whose interest deltas are all acknowledged, then fetches retained messages.
    mutating func completeSuback<E: RouterEnvironment>(_ pending: PendingSuback, now: UInt64, env: inout E) {
        guard let index = liveSessionIndex(pending.session) else { return }
        if let state = connections[pending.connection], state.sessionID == pending.session {
            writePacket(pending.packet, to: pending.connection, version: state.protocolVersion, env: &env)
        }
        for (filter, value) in pending.retainedRequests {
            requestRetained(index, filter: filter, value: value, now: now, env: &env)
        }
    }

    /// Gathers the retained messages matching a new subscription: from the topic's home shard for an exact
    /// filter, from every shard for a wildcard one; delivered once every reply is in.
    mutating func requestRetained<E: RouterEnvironment>(
        _ index: Int, filter: TopicFilter, value: SubscriptionValue, now: UInt64, env: inout E
    ) {
        let requestID = nextRequestID
        nextRequestID += 1
        var gather = RetainedGather(session: sessions[live: index].id, value: value, repliesRemaining: 0, messages: [])
        let targets: ShardSet = filter.hasWildcards
            ? ShardSet.all(shardCount: configuration.shardCount)
            : ShardSet([ShardID.home(forTopicBytes: filter.matchingBytes, shardCount: configuration.shardCount)])
        for target in targets where target != shard {
            gather.repliesRemaining += 1
            sendMesh(.retainedRequest(filter: filter, requestID: requestID), to: target, publisher: nil, now: now,
                     env: &env)
        }
        if targets.contains(shard) {
            retained.match(filter) { _, message in gather.messages.append(message) }
        }
        if gather.repliesRemaining == 0 {
            deliverRetained(gather, now: now, env: &env)
        } else {
            pendingRetained[requestID] = gather
        }
    }

    mutating func deliverRetained<E: RouterEnvironment>(_ gather: RetainedGather, now: UInt64, env: inout E) {
        guard let index = liveSessionIndex(gather.session) else { return }
        for message in gather.messages {
            // [MQTT-3.3.1-9] Retained messages sent for a new subscription carry RETAIN 1.
            let delivery = Delivery(
                message: message, qos: min(message.qos, gather.value.options.qos), retain: true,
                subscriptionIdentifiers: SubscriptionIdentifiers(gather.value.identifier)
            )
            deliver(index, delivery, now: now, env: &env)
        }
    }

    mutating func handleUnsubscribe<E: RouterEnvironment>(
        _ connection: ConnectionKey, _ index: Int, _ unsubscribe: UnsubscribePacket, now: UInt64, env: inout E
    ) {
        let id = sessions[live: index].id
        var reasonCodes: [ReasonCode] = []
        for filter in unsubscribe.filters {
            if subscriptions.remove(filter, subscriber: id) != nil {
                counters.subscriptions -= 1
                if let delta = localInterest.unsubscribed(filter) { broadcastInterest(delta, requestID: 0, env: &env) }
                reasonCodes.append(.success)
            } else {
                reasonCodes.append(.noSubscriptionExisted)
            }
        }
        let version = connections[connection]?.protocolVersion ?? .v3_1_1
        writePacket(UnsubAckPacket(packetIdentifier: unsubscribe.packetIdentifier, reasonCodes: reasonCodes),
                    to: connection, version: version, env: &env)
    }

    /// Applies a delta of this shard to its own replica and sends it to every other shard.
    /// - Returns: the number of acknowledgements to expect (0 when `requestID` is 0).
    @discardableResult
    mutating func broadcastInterest<E: RouterEnvironment>(_ delta: InterestDelta, requestID: UInt64, env: inout E) -> Int {
        interest.apply(delta)
        var expected = 0
        for index in 0..<configuration.shardCount where index != shard.index {
            sendMesh(.interest(delta, requestID: requestID), to: ShardID(index), publisher: nil, now: 0, env: &env)
            if requestID != 0 { expected += 1 }
        }
        return expected
    }
}
