import MQTTCodec

// MARK: - The publish path

extension Router {
    /// Whether a topic is in the broker's reserved `$SYS` tree, which clients may not publish to.
    static func isSystemTopic(_ topic: UnsafeRawBufferPointer) -> Bool {
        guard topic.count >= 4, topic[0] == UInt8(ascii: "$"), topic[1] == UInt8(ascii: "S"),
              topic[2] == UInt8(ascii: "Y"), topic[3] == UInt8(ascii: "S") else { return false }
        return topic.count == 4 || topic[4] == UInt8(ascii: "/")
    }

    /// A PUBLISH from a client (borrowed: the view points into the receive buffer).
    mutating func handlePublish<E: RouterEnvironment>(
        _ connection: ConnectionKey, _ view: PublishView, now: UInt64, env: inout E
    ) {
        // Fields are read one by one: binding the whole `ConnectionState` would also retain its alias table.
        guard let id = connections.sessionID(of: connection), let index = liveSessionIndex(id),
              let version = connections.protocolVersion(of: connection)
        else {
            return
        }
        counters.countReceived(view.qos, payloadBytes: view.payload.count)
        // [MQTT-3.3.4-6] A PUBLISH from a client MUST NOT contain a Subscription Identifier.
        if view.hasSubscriptionIdentifier {
            protocolViolation(connection, reason: .protocolError,
                              because: "[MQTT-3.3.4-6] Subscription Identifier in PUBLISH", now: now, env: &env)
            return
        }
        var topic: TopicName
        if let alias = view.topicAlias {
            // [MQTT-3.3.2-9] / [MQTT-3.3.2-10] An alias above the Topic Alias Maximum the broker announced is 0x94.
            if Int(alias) > limits.topicAliasMaximum {
                protocolViolation(connection, reason: .topicAliasInvalid,
                                  because: "[MQTT-3.3.2-9] topic alias above Topic Alias Maximum", now: now, env: &env)
                return
            }
            if view.topic.isEmpty {
                guard let known = connections[connection]?.topicAliases[alias] else {
                    // MQTT 5.0 §3.3.2.3.4: an alias with no topic set for it is a Protocol Error.
                    protocolViolation(connection, reason: .protocolError, because: "topic alias not set",
                                      now: now, env: &env)
                    return
                }
                topic = known
            } else {
                topic = TopicName(uncheckedBytes: Array(view.topic))
                connections[connection]!.topicAliases[alias] = topic
            }
        } else {
            topic = TopicName(uncheckedBytes: Array(view.topic))
        }
        if view.retain && !limits.retainAvailable {
            // [MQTT-3.3.1-11] Retain not supported: DISCONNECT 0x9A.
            protocolViolation(connection, reason: .retainNotSupported, because: "retained messages not available",
                              now: now, env: &env)
            return
        }
        let packetIdentifier = view.packetIdentifier
        var refused = topic.bytes.withUnsafeBytes { Self.isSystemTopic($0) }
        if !refused, let access = sessions[live: index].access, !access.allows(.write, topic: topic.bytes) {
            counters.publishesDenied += 1
            refused = true
        }
        if refused {
            // `$SYS/...` is the broker's, and the ACL may refuse a topic: dropped, and in 5.0 acknowledged with 0x87
            // Not authorized; 3.1.1 has no code for it, so it is acknowledged normally (as Mosquitto does).
            counters.droppedNotAuthorized += 1
            guard let packetIdentifier else { return }
            let reason: ReasonCode = version == .v5 ? .notAuthorized : .success
            if view.qos == .atLeastOnce {
                writePacket(PubAckPacket(packetIdentifier: packetIdentifier, reasonCode: reason), to: connection,
                            version: version, env: &env)
            } else {
                if version != .v5 { sessions[live: index].incomingQoS2.insert(packetIdentifier.rawValue) }
                writePacket(PubRecPacket(packetIdentifier: packetIdentifier, reasonCode: reason), to: connection,
                            version: version, env: &env)
            }
            return
        }
        if view.qos == .exactlyOnce, let packetIdentifier {
            if sessions[live: index].incomingQoS2.contains(packetIdentifier.rawValue) {
                // [MQTT-4.3.3-10] Already received and routed: acknowledge again, do not deliver twice.
                writePacket(PubRecPacket(packetIdentifier: packetIdentifier), to: connection, version: version, env: &env)
                return
            }
            // [MQTT-3.3.4-9] More unacknowledged QoS 2 publications than the Receive Maximum announced: 0x93.
            if sessions[live: index].incomingQoS2.count >= limits.receiveMaximum {
                protocolViolation(connection, reason: .receiveMaximumExceeded,
                                  because: "[MQTT-3.3.4-9] more QoS 2 publications open than Receive Maximum",
                                  now: now, env: &env)
                return
            }
        }
        let message = SharedPublish(
            topic: topic, payload: Array(view.payload), qos: view.qos, retain: view.retain,
            properties: version == .v5 ? view.passthroughProperties() : [],
            expiryAtMillis: view.messageExpiryInterval.map { now + UInt64($0) * 1000 },
            originClientIdentifier: sessions[live: index].clientIdentifier
        )
        route(message, publisher: connection, now: now, env: &env)
        throttleIfUnderPressure(connection, session: index, env: &env)
        switch view.qos {
        case .atMostOnce: break
        case .atLeastOnce:
            writePacket(PubAckPacket(packetIdentifier: packetIdentifier!), to: connection, version: version, env: &env)
        case .exactlyOnce:
            sessions[live: index].incomingQoS2.insert(packetIdentifier!.rawValue)
            writePacket(PubRecPacket(packetIdentifier: packetIdentifier!), to: connection, version: version, env: &env)
        }
    }

    /// Routes a message: retained on its topic's home shard, delivered to this shard's matching sessions, forwarded
    /// once to each other interested shard, and to one member of each matching shared group.
    mutating func route<E: RouterEnvironment>(
        _ message: SharedPublish, publisher: ConnectionKey?, now: UInt64, env: inout E
    ) {
        if message.retain && limits.retainAvailable {
            let home = ShardID.home(forTopic: message.topic, shardCount: configuration.shardCount)
            if home == shard {
                applyRetain(message)
            } else {
                sendMesh(.retain(message), to: home, publisher: publisher, now: now, env: &env)
            }
        }
        if configuration.shardCount == 1 {
            // One shard: its own trie is the whole truth, so the interest replica would only repeat the walk, and
            // shared groups are found in the same walk (RouterBenchmarks: a fifth of the instructions per message).
            deliverMatching(message, includingSharedGroups: true, now: now, env: &env)
            return
        }
        // One walk of the interest replica answers both: the shards with ordinary subscribers, and for each
        // matching shared group one target shard, weighted by its member count.
        var sharedTargets: [(ShardID, TopicFilter)] = []
        let counter = sharedSelectionCounter
        let shards = interest.match(message.topic) { group in
            sharedTargets.append((group.selectShard(using: counter), group.filter))
        }
        for target in shards where target != shard {
            sendMesh(.publish(message), to: target, publisher: publisher, now: now, env: &env)
        }
        if shards.contains(shard) { deliverMatching(message, now: now, env: &env) }
        if sharedTargets.isEmpty { return }
        sharedSelectionCounter &+= 1
        for (target, filter) in sharedTargets {
            if target == shard {
                deliverShared(message, group: filter, now: now, env: &env)
            } else {
                sendMesh(.sharedPublish(message, group: filter), to: target, publisher: publisher, now: now, env: &env)
            }
        }
    }

    mutating func applyRetain(_ message: SharedPublish) {
        if message.payload.isEmpty {
            // [MQTT-3.3.1-6] A retained PUBLISH with an empty payload removes the retained message.
            if retained.clear(message.topic) != nil { counters.retainedMessages -= 1 }
        } else {
            if retained.set(message.topic, message: message, byteCount: message.byteCount) == nil {
                counters.retainedMessages += 1
            }
        }
    }

    /// Delivers to this shard's sessions whose (ordinary) subscriptions match: one copy per session, at the
    /// highest granted QoS of its matching subscriptions, carrying every matching subscription identifier
    /// ([MQTT-3.3.4-3], [MQTT-3.3.4-5]). No allocation for the common case (scratch arrays are reused).
    ///
    /// With `includingSharedGroups` (one shard, where no other shard holds members), each matching shared group
    /// found in the same walk also gets one delivery, to one member chosen round robin.
    mutating func deliverMatching<E: RouterEnvironment>(
        _ message: SharedPublish, includingSharedGroups: Bool = false, now: UInt64, env: inout E
    ) {
        if message.isExpired(nowMillis: now) {
            counters.droppedExpired += 1
            return
        }
        var matches = matchScratch
        matchScratch = []
        matches.removeAll(keepingCapacity: true)
        var sharedChoices: [(SessionID, SubscriptionValue)] = []
        let memberCounter = sharedMemberCounter
        subscriptions.match(message.topic, subscriber: { id, value in matches.append((id, value)) }, sharedGroup: { group in
            guard includingSharedGroups, !group.members.isEmpty else { return }
            let member = group.members.select(using: memberCounter)
            sharedChoices.append((member.subscriber, member.value))
        })
        if !sharedChoices.isEmpty {
            sharedMemberCounter &+= 1
            for (id, value) in sharedChoices {
                guard let index = liveSessionIndex(id) else { continue }
                let delivery = Delivery(
                    message: message, qos: min(message.qos, value.options.qos),
                    retain: value.options.retainAsPublished && message.retain,
                    subscriptionIdentifiers: SubscriptionIdentifiers(value.identifier)
                )
                deliver(index, delivery, now: now, env: &env)
            }
        }
        if matches.isEmpty {
            matchScratch = matches
            return
        }
        // Common case first: no session has two matching subscriptions, so each match is one delivery with its
        // own options and no merge is needed (one stamp per session finds out; RouterBenchmarks: the merge
        // machinery was about a third of the router's instructions per message).
        matchSequence &+= 1
        var overlapping = false
        for (id, _) in matches {
            guard let index = liveSessionIndex(id) else { continue }
            if sessions[live: index].matchStamp == matchSequence {
                overlapping = true
                break
            }
            sessions[live: index].matchStamp = matchSequence
        }
        if !overlapping {
            for (id, value) in matches {
                guard let index = liveSessionIndex(id) else { continue }
                // [MQTT-3.8.3-3] No Local: not to the client that published it.
                if value.options.noLocal, let origin = message.originClientIdentifier,
                   origin == sessions[live: index].clientIdentifier
                {
                    continue
                }
                let qos = min(message.qos, value.options.qos)
                // A stalled subscriber is dropped for here, as `deliver` would, before a Delivery (and its
                // reference to the message) is made. scripts/bench-slow-subscriber --qos 0, healthy msg/s with 10
                // stalled against none: 80.6% without this check, 92.0% with it.
                if qos == .atMostOnce && sessions[live: index].access == nil
                    && droppedForBlockedOutbound(index, now: now, env: &env)
                {
                    continue
                }
                let delivery = Delivery(
                    message: message, qos: qos,
                    // [MQTT-3.3.1-12] / [MQTT-3.3.1-13] RETAIN is cleared unless Retain As Published.
                    retain: value.options.retainAsPublished && message.retain,
                    subscriptionIdentifiers: SubscriptionIdentifiers(value.identifier)
                )
                deliver(index, delivery, now: now, env: &env)
            }
            matches.removeAll(keepingCapacity: true)
            matchScratch = matches
            return
        }
        // Overlapping subscriptions: one copy per session at the highest granted QoS, carrying every identifier.
        matchSequence &+= 1
        let sequence = matchSequence
        var candidates = candidateScratch
        candidateScratch = []
        candidates.removeAll(keepingCapacity: true)
        for (id, value) in matches {
            guard let index = liveSessionIndex(id) else { continue }
            // [MQTT-3.8.3-3] No Local: not to the client that published it.
            if value.options.noLocal, let origin = message.originClientIdentifier,
               origin == sessions[live: index].clientIdentifier
            {
                continue
            }
            if sessions[live: index].matchStamp == sequence {
                let slot = sessions[live: index].matchSlot
                candidates[slot].qos = max(candidates[slot].qos, value.options.qos)
                candidates[slot].retainAsPublished = candidates[slot].retainAsPublished || value.options.retainAsPublished
                if let identifier = value.identifier { candidates[slot].subscriptionIdentifiers.append(identifier) }
            } else {
                sessions[live: index].matchStamp = sequence
                sessions[live: index].matchSlot = candidates.count
                candidates.append(MatchCandidate(
                    session: id, qos: value.options.qos, retainAsPublished: value.options.retainAsPublished,
                    subscriptionIdentifiers: SubscriptionIdentifiers(value.identifier)
                ))
            }
        }
        for candidate in candidates {
            guard let index = liveSessionIndex(candidate.session) else { continue }
            let delivery = Delivery(
                message: message, qos: min(message.qos, candidate.qos),
                // [MQTT-3.3.1-12] / [MQTT-3.3.1-13] RETAIN is cleared unless Retain As Published.
                retain: candidate.retainAsPublished && message.retain,
                subscriptionIdentifiers: candidate.subscriptionIdentifiers
            )
            deliver(index, delivery, now: now, env: &env)
        }
        matches.removeAll(keepingCapacity: true)
        candidates.removeAll(keepingCapacity: true)
        matchScratch = matches
        candidateScratch = candidates
    }

    /// Delivers to one member (round robin) of this shard's members of a shared group.
    mutating func deliverShared<E: RouterEnvironment>(
        _ message: SharedPublish, group filter: TopicFilter, now: UInt64, env: inout E
    ) {
        var chosen: (SessionID, SubscriptionValue)? = nil
        let counter = sharedMemberCounter
        subscriptions.match(message.topic, subscriber: { _, _ in }, sharedGroup: { group in
            guard chosen == nil, group.shareName == (filter.shareName ?? []),
                  group.filter.matchingBytes.elementsEqual(filter.matchingBytes), !group.members.isEmpty else { return }
            let member = group.members.select(using: counter)
            chosen = (member.subscriber, member.value)
        })
        sharedMemberCounter &+= 1
        guard let (id, value) = chosen, let index = liveSessionIndex(id) else {
            counters.droppedNoSharedMember += 1
            return
        }
        let delivery = Delivery(
            message: message, qos: min(message.qos, value.options.qos),
            retain: value.options.retainAsPublished && message.retain,
            subscriptionIdentifiers: SubscriptionIdentifiers(value.identifier)
        )
        deliver(index, delivery, now: now, env: &env)
    }

    // MARK: - To one session

    /// Hands a delivery to a session: written now (QoS 0, or QoS 1/2 with room in the inflight window), or
    /// queued (QoS 1/2), or dropped (counted).
    mutating func deliver<E: RouterEnvironment>(_ index: Int, _ delivery: Delivery, now: UInt64, env: inout E) {
        if let access = sessions[live: index].access, !access.allows(.read, topic: delivery.message.topic.bytes) {
            // A wildcard subscription may match topics the ACL does not let this client read.
            counters.deliveriesDenied += 1
            return
        }
        if delivery.message.isExpired(nowMillis: now) {
            counters.droppedExpired += 1
            return
        }
        if delivery.qos == .atMostOnce {
            guard let connection = sessions[live: index].connection else {
                counters.droppedOfflineQoS0 += 1
                return
            }
            if droppedForBlockedOutbound(index, now: now, env: &env) { return }
            switch writeDelivery(index, delivery, packetIdentifier: 0, dup: false, to: connection, now: now, env: &env) {
            case .written: counters.countSent(.atMostOnce)
            case .full:
                // Until the runtime reports the queue drained (`writable`), further QoS 0 deliveries to this
                // client are dropped on the flag alone: a stalled subscriber costs its publishers next to nothing.
                counters.droppedOutboundFull += 1
                sessions[live: index].outboundBlocked = true
                markStalled(index, now: now, env: &env)
            case .tooLarge: counters.droppedTooLargeForClient += 1
            }
            return
        }
        let session = sessions[live: index]
        if session.connection != nil && !session.outboundBlocked && session.queuedCount == 0
            && session.inflight.count < session.inflightMax
        {
            startInflight(index, delivery, now: now, env: &env)
            return
        }
        enqueue(index, delivery, now: now, env: &env)
    }

    /// Queues a QoS 1/2 delivery in the session; a full queue applies `Limits.sessionQueueFullPolicy` (counted).
    mutating func enqueue<E: RouterEnvironment>(_ index: Int, _ delivery: Delivery, now: UInt64, env: inout E) {
        if sessions[live: index].queuedCount >= limits.sessionQueuedMessagesMax {
            if delivery.qos == .exactlyOnce {
                counters.droppedSessionQueueFullQoS2 += 1
            } else {
                counters.droppedSessionQueueFullQoS1 += 1
            }
            switch limits.sessionQueueFullPolicy {
            case .dropNewest:
                markStalled(index, now: now, env: &env)
                return
            case .dropOldest:
                markStalled(index, now: now, env: &env)
                heldBytesChanged(by: sessions[live: index].dropOldestQueued(), now: now, env: &env)
            case .disconnect:
                // The newest message is dropped with the slow client; its session (if it persists) keeps the rest.
                if let connection = sessions[live: index].connection {
                    counters.slowClientsDisconnected += 1
                    closeConnection(connection, reason: .quotaExceeded,
                                    reasonString: "session queue full (queue_full_policy disconnect)",
                                    afterFlush: false, now: now, env: &env)
                }
                return
            }
        }
        heldBytesChanged(by: sessions[live: index].enqueue(delivery), now: now, env: &env)
    }

    /// Gives a QoS 1/2 delivery a packet identifier and writes it.
    mutating func startInflight<E: RouterEnvironment>(_ index: Int, _ delivery: Delivery, now: UInt64, env: inout E) {
        guard let connection = sessions[live: index].connection else {
            heldBytesChanged(by: sessions[live: index].requeueFront(delivery), now: now, env: &env)
            return
        }
        guard let identifier = sessions[live: index].packetIdentifiers.allocate() else {
            heldBytesChanged(by: sessions[live: index].requeueFront(delivery), now: now, env: &env)
            return
        }
        switch writeDelivery(index, delivery, packetIdentifier: identifier, dup: false, to: connection, now: now,
                             env: &env)
        {
        case .written:
            counters.countSent(delivery.qos)
            let added = sessions[live: index].appendInflight(InflightMessage(
                packetIdentifier: identifier, delivery: delivery, phase: .awaitingAcknowledgement, sent: true,
                everSent: true
            ))
            heldBytesChanged(by: added, now: now, env: &env)
        case .full:
            counters.outboundFullDeferrals += 1
            sessions[live: index].packetIdentifiers.release(identifier)
            sessions[live: index].outboundBlocked = true
            markStalled(index, now: now, env: &env)
            heldBytesChanged(by: sessions[live: index].requeueFront(delivery), now: now, env: &env)
        case .tooLarge:
            sessions[live: index].packetIdentifiers.release(identifier)
            counters.droppedTooLargeForClient += 1
        }
    }

    /// Sends what the session owes its connection, in order: inflight packets not yet (re)sent, then queued
    /// messages while the inflight window has room. Stops at the first full write.
    mutating func pump<E: RouterEnvironment>(_ index: Int, now: UInt64, env: inout E) {
        guard let connection = sessions[live: index].connection else { return }
        let version = sessions[live: index].protocolVersion
        var position = 0
        while position < sessions[live: index].inflight.count {
            let entry = sessions[live: index].inflight[position]
            if entry.sent {
                position += 1
                continue
            }
            switch entry.phase {
            case .awaitingAcknowledgement:
                switch writeDelivery(index, entry.delivery, packetIdentifier: entry.packetIdentifier,
                                     dup: entry.everSent, to: connection, now: now, env: &env)
                {
                case .written:
                    counters.countSent(entry.delivery.qos)
                case .full:
                    counters.outboundFullDeferrals += 1
                    sessions[live: index].outboundBlocked = true
                    markStalled(index, now: now, env: &env)
                    return
                case .tooLarge:
                    // The client lowered its Maximum Packet Size on reconnection: the message cannot go.
                    counters.droppedTooLargeForClient += 1
                    sessions[live: index].packetIdentifiers.release(entry.packetIdentifier)
                    heldBytesChanged(by: sessions[live: index].removeInflight(at: position), now: now, env: &env)
                    continue
                }
            case .awaitingCompletion:
                let release = PubRelPacket(packetIdentifier: PacketIdentifier(nonZero: entry.packetIdentifier))
                let size = release.encodedSize(version: version)
                let written = env.write(connection, byteCount: size) { _ = release.encode(into: $0, version: version) }
                if written { counters.packetsSent += 1 }
                if !written {
                    sessions[live: index].outboundBlocked = true
                    markStalled(index, now: now, env: &env)
                    return
                }
            }
            sessions[live: index].setInflightSent(position, true)
            position += 1
        }
        while sessions[live: index].connection != nil && !sessions[live: index].outboundBlocked
            && sessions[live: index].inflight.count < sessions[live: index].inflightMax,
            let next = sessions[live: index].dequeue()
        {
            heldBytesChanged(by: -next.heldByteCount, now: now, env: &env)
            if next.message.isExpired(nowMillis: now) {
                // MQTT 5.0 §3.3.2.3.3: an expired message is not delivered.
                counters.droppedExpired += 1
                continue
            }
            startInflight(index, next, now: now, env: &env)
        }
    }

    enum WriteOutcome { case written, full, tooLarge }

    /// Encodes one delivery straight into the connection's outbound queue.
    mutating func writeDelivery<E: RouterEnvironment>(
        _ index: Int, _ delivery: Delivery, packetIdentifier: UInt16, dup: Bool, to connection: ConnectionKey,
        now: UInt64, env: inout E
    ) -> WriteOutcome {
        if sessions[live: index].topicAliasesToClient.isEnabled {
            return writeAliasedDelivery(index, delivery, packetIdentifier: packetIdentifier, dup: dup, to: connection,
                                        now: now, env: &env)
        }
        let version = sessions[live: index].protocolVersion
        let message = delivery.message
        let expiry = version == .v5 ? message.remainingExpirySeconds(nowMillis: now) : nil
        let identifiers = version == .v5 ? delivery.subscriptionIdentifiers : SubscriptionIdentifiers()
        let propertiesCount = PublishEncoding.deliveryPropertiesByteCount(
            messageExpirySeconds: expiry, sharedPropertiesByteCount: message.properties.count,
            subscriptionIdentifiers: identifiers
        )
        let size = PublishEncoding.deliverySize(
            version: version, qos: delivery.qos, topicByteCount: message.topic.bytes.count,
            propertiesByteCount: propertiesCount, payloadByteCount: message.payload.count
        )
        // [MQTT-3.1.2-25] A packet larger than the client's Maximum Packet Size is not sent to it.
        if size > sessions[live: index].clientPacketSizeMax { return .tooLarge }
        let written = env.write(connection, byteCount: size) { buffer in
            let count = PublishEncoding.encodeDelivery(
                into: buffer, version: version, dup: dup, qos: delivery.qos, retain: delivery.retain,
                packetIdentifier: packetIdentifier, message: message, messageExpirySeconds: expiry,
                subscriptionIdentifiers: identifiers
            )
            precondition(count == size, "delivery size mismatch")
        }
        if written { counters.countSentPayload(delivery.qos, payloadBytes: message.payload.count) }
        return written ? .written : .full
    }

    // MARK: - Acknowledgements from the subscriber

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2): the exchange is over; the identifier is free again.
    mutating func acknowledged<E: RouterEnvironment>(_ index: Int, _ identifier: UInt16, now: UInt64, env: inout E) {
        guard let position = sessions[live: index].inflightPosition(identifier) else { return }
        heldBytesChanged(by: sessions[live: index].removeInflight(at: position), now: now, env: &env)
        sessions[live: index].packetIdentifiers.release(identifier)
        pump(index, now: now, env: &env)
        clearStalledIfCaughtUp(index)
    }

    /// PUBREC: answer PUBREL and wait for PUBCOMP (or, with a failure reason in 5.0, end the exchange).
    mutating func received<E: RouterEnvironment>(
        _ index: Int, _ ack: PubRecPacket, connection: ConnectionKey, version: ProtocolVersion, now: UInt64,
        env: inout E
    ) {
        let identifier = ack.packetIdentifier.rawValue
        guard let position = sessions[live: index].inflightPosition(identifier) else {
            writePacket(PubRelPacket(packetIdentifier: ack.packetIdentifier, reasonCode: .packetIdentifierNotFound),
                        to: connection, version: version, env: &env)
            return
        }
        if ack.reasonCode.isFailure {
            acknowledged(index, identifier, now: now, env: &env)
            return
        }
        sessions[live: index].setInflightAwaitingCompletion(position)
        let written = writePacket(PubRelPacket(packetIdentifier: ack.packetIdentifier), to: connection,
                                  version: version, env: &env)
        if written { sessions[live: index].setInflightSent(position, true) }
    }
}
