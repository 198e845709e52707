// MARK: - Borrowed PUBLISH (the data path)

/// A PUBLISH decoded in place: ``topic``, ``properties`` and ``payload`` point into the caller's buffer and
/// are valid only while the caller keeps that buffer alive and unchanged. Decoding one allocates nothing.
///
/// By the time a view exists, the topic is valid (UTF-8, no wildcard, [MQTT-3.3.2-2]) or empty with a Topic
/// Alias (5.0), the properties are valid for PUBLISH (known, allowed, not duplicated, in range), and the
/// packet identifier is present and non-zero exactly when QoS > 0. The router copies what it keeps.
public struct PublishView {
    /// DUP flag: this may be a redelivery.
    public let dup: Bool
    /// Delivery QoS.
    public let qos: QoS
    /// RETAIN flag.
    public let retain: Bool
    /// Topic name bytes; empty only when a Topic Alias stands for the topic (5.0).
    public let topic: UnsafeRawBufferPointer
    /// Packet identifier, present exactly when ``qos`` > 0.
    public let packetIdentifier: PacketIdentifier?
    /// The property bytes without the Property Length prefix (empty for 3.1.x), already validated; they can
    /// be copied as-is into an outgoing PUBLISH by ``PublishEncoding``.
    public let properties: UnsafeRawBufferPointer
    /// Application message.
    public let payload: UnsafeRawBufferPointer
    /// Topic Alias property, if present (never 0).
    public let topicAlias: UInt16?
    /// Message Expiry Interval property in seconds, if present.
    public let messageExpiryInterval: UInt32?
    /// Payload Format Indicator: 1 when the payload is declared UTF-8.
    public let payloadFormatIndicator: UInt8
    /// Whether a Subscription Identifier property is present: a client MUST NOT send one
    /// ([MQTT-3.3.4-6]), so a broker refuses such a PUBLISH with 0x82 Protocol Error.
    public let hasSubscriptionIdentifier: Bool

    /// Decodes the body of a PUBLISH in place.
    ///
    /// - Parameters:
    ///   - flags: the low nibble of the fixed header (DUP, QoS, RETAIN).
    ///   - body: the bytes after the fixed header (exactly the remaining length).
    ///   - version: the connection's protocol version.
    ///   - validatesPayloadFormat: whether to check that a payload marked UTF-8 (Payload Format Indicator 1)
    ///     is valid UTF-8 (the spec lets a receiver choose; failure maps to 0x99).
    /// - Throws: ``MQTTDecodeError``.
    /// - Complexity: O(topic + properties), plus O(payload) when `validatesPayloadFormat`.
    @inlinable
    public init(
        flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion, validatesPayloadFormat: Bool = false
    ) throws(MQTTDecodeError) {
        // [MQTT-3.3.1-4] A PUBLISH Packet MUST NOT have both QoS bits set to 1.
        guard let qos = QoS(rawValue: (flags >> 1) & 0b11) else { throw .publishQoSInvalid }
        let dup = flags & 0b1000 != 0
        // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
        if dup && qos == .atMostOnce { throw .duplicateFlagWithQoS0 }
        var reader = ByteReader(body, packetType: .publish)
        let topic = try reader.readBinary()
        var packetIdentifier: PacketIdentifier? = nil
        if qos != .atMostOnce { packetIdentifier = try reader.readPacketIdentifier() }
        var properties = UnsafeRawBufferPointer(start: nil, count: 0)
        var topicAlias: UInt16? = nil
        var messageExpiryInterval: UInt32? = nil
        var payloadFormatIndicator: UInt8 = 0
        var hasSubscriptionIdentifier = false
        if version == .v5 {
            let length = try reader.readVariableByteInteger()
            guard length <= reader.remaining else { throw .invalidPropertyLength }
            properties = try reader.readSlice(length)
            var scanner = PropertyScanner(properties, context: .publish)
            while let property = try scanner.next() {
                switch (property.identifier, property.value) {
                case (.topicAlias, .twoByteInteger(let value)): topicAlias = value
                case (.messageExpiryInterval, .fourByteInteger(let value)): messageExpiryInterval = value
                case (.payloadFormatIndicator, .byte(let value)): payloadFormatIndicator = value
                case (.subscriptionIdentifier, _): hasSubscriptionIdentifier = true
                default: break
                }
            }
        }
        if topic.isEmpty {
            // MQTT 5.0 §3.3.2.1: a zero-length Topic Name is allowed only with a Topic Alias; [MQTT-4.7.3-1]
            // otherwise every Topic Name is at least one character long.
            if topicAlias == nil { throw .topicNameInvalid(.empty) }
        } else if let error = TopicName.validate(topic) {
            // Invalid UTF-8 in a string is a malformed packet ([MQTT-1.5.4-1]); wildcards are an invalid topic.
            if case .invalidString(let stringError) = error { throw .invalidString(stringError) }
            throw .topicNameInvalid(error)
        }
        let payload = reader.readRest()
        // MQTT 5.0 §3.3.2.3.2: a receiver MAY validate a payload declared UTF-8, answering 0x99.
        if validatesPayloadFormat && payloadFormatIndicator == 1 && MQTTString.validate(payload) != nil {
            throw .payloadFormatInvalid
        }
        self.dup = dup
        self.qos = qos
        self.retain = flags & 0b0001 != 0
        self.topic = topic
        self.packetIdentifier = packetIdentifier
        self.properties = properties
        self.payload = payload
        self.topicAlias = topicAlias
        self.messageExpiryInterval = messageExpiryInterval
        self.payloadFormatIndicator = payloadFormatIndicator
        self.hasSubscriptionIdentifier = hasSubscriptionIdentifier
    }

    /// Calls `body` with each property's identifier and its whole encoding (identifier and value, as on the
    /// wire), in wire order, without allocating. A broker uses it to forward some properties as they are and
    /// drop the per-hop ones (Topic Alias, Subscription Identifier), copying the slices it keeps.
    /// - Complexity: O(properties).
    @inlinable
    public func forEachRawProperty(_ body: (PropertyIdentifier, UnsafeRawBufferPointer) -> Void) {
        var scanner = PropertyScanner(properties, context: .publish)
        while true {
            let start = scanner.reader.index
            // Safe to stop at a failure: the initializer already scanned these same bytes successfully.
            guard let property = try? scanner.next() else { return }
            body(property.identifier, UnsafeRawBufferPointer(rebasing: properties[start..<scanner.reader.index]))
        }
    }

    /// An owned copy (allocates: control plane and tests).
    public var owned: PublishPacket {
        var list: [Property] = []
        var scanner = PropertyScanner(properties, context: .publish)
        // Safe to ignore failures: the initializer already scanned these same bytes successfully.
        while let property = try? scanner.next() { list.append(property.owned) }
        return PublishPacket(
            dup: dup, qos: qos, retain: retain, topic: TopicName(uncheckedBytes: topic.array),
            packetIdentifier: packetIdentifier, properties: Properties(list), payload: payload.array
        )
    }
}
