import MQTTCodec

// MARK: - Deliveries with topic aliases from the broker to the client (5.0)

extension Router {
    /// Encodes one delivery into the outbound queue of a connection that accepts topic aliases (its CONNECT gave a
    /// Topic Alias Maximum above 0), naming the topic as ``OutgoingTopicAliases`` decides: topic and new alias on
    /// first use, empty topic and alias afterwards, or the topic alone once every alias is taken.
    ///
    /// Only such connections come here (``writeDelivery(_:_:packetIdentifier:dup:to:now:env:)`` checks one field),
    /// so clients without aliases keep the plain path and pay nothing for this one.
    ///
    /// [MQTT-3.1.2-25] The client's Maximum Packet Size counts the alias too: when the aliased form does not fit,
    /// the topic is sent in full without an alias if that fits; otherwise the message is not sent (`.tooLarge`).
    /// A new alias is recorded only once the packet setting it was queued.
    mutating func writeAliasedDelivery<E: RouterEnvironment>(
        _ index: Int, _ delivery: Delivery, packetIdentifier: UInt16, dup: Bool, to connection: ConnectionKey,
        now: UInt64, env: inout E
    ) -> WriteOutcome {
        let message = delivery.message
        let expiry = message.remainingExpirySeconds(nowMillis: now)
        let identifiers = delivery.subscriptionIdentifiers
        let use = sessions[live: index].topicAliasesToClient.use(for: message.topic)
        var alias: UInt16
        var omitsTopic: Bool
        switch use {
        case .topicOnly: (alias, omitsTopic) = (0, false)
        case .assign(let assigned): (alias, omitsTopic) = (assigned, false)
        case .reuse(let known): (alias, omitsTopic) = (known, true)
        }

        func size(alias: UInt16, omitsTopic: Bool) -> Int {
            let propertiesCount = PublishEncoding.deliveryPropertiesByteCount(
                messageExpirySeconds: expiry, sharedPropertiesByteCount: message.properties.count,
                subscriptionIdentifiers: identifiers, topicAlias: alias
            )
            return PublishEncoding.deliverySize(
                version: .v5, qos: delivery.qos, topicByteCount: omitsTopic ? 0 : message.topic.bytes.count,
                propertiesByteCount: propertiesCount, payloadByteCount: message.payload.count
            )
        }

        var byteCount = size(alias: alias, omitsTopic: omitsTopic)
        let packetSizeMax = sessions[live: index].clientPacketSizeMax
        if byteCount > packetSizeMax && alias != 0 {
            // The 3-byte alias property tipped it over: the plain form may still fit.
            (alias, omitsTopic) = (0, false)
            byteCount = size(alias: 0, omitsTopic: false)
        }
        // [MQTT-3.1.2-25] A packet larger than the client's Maximum Packet Size is not sent to it.
        if byteCount > packetSizeMax { return .tooLarge }
        let written = env.write(connection, byteCount: byteCount) { buffer in
            let count = PublishEncoding.encodeDelivery(
                into: buffer, version: .v5, dup: dup, qos: delivery.qos, retain: delivery.retain,
                packetIdentifier: packetIdentifier, message: message, messageExpirySeconds: expiry,
                subscriptionIdentifiers: identifiers, topicAlias: alias, omitsTopic: omitsTopic
            )
            precondition(count == byteCount, "delivery size mismatch")
        }
        guard written else { return .full }
        counters.countSentPayload(delivery.qos, payloadBytes: message.payload.count)
        if case .assign(let assigned) = use, alias == assigned {
            sessions[live: index].topicAliasesToClient.assigned(assigned, to: message.topic)
            counters.topicAliasesToClients += 1
        }
        return .written
    }
}
