// MARK: - PUBLISH (MQTT 5.0 §3.3)

/// An owned PUBLISH. The data path uses ``PublishView`` to decode and ``PublishEncoding`` to encode; this
/// value serves clients, tests and the control plane.
public struct PublishPacket: MQTTPacket, PacketBody {
    /// PUBLISH.
    public static var packetType: PacketType { .publish }

    /// DUP flag.
    public var dup: Bool
    /// Delivery QoS.
    public var qos: QoS
    /// RETAIN flag.
    public var retain: Bool
    /// Topic name (may be empty in 5.0 when a Topic Alias property stands for it).
    public var topic: TopicName
    /// Packet identifier, present exactly when ``qos`` > 0.
    public var packetIdentifier: PacketIdentifier?
    /// PUBLISH properties (5.0).
    public var properties: Properties
    /// Application message.
    public var payload: [UInt8]

    /// Creates a PUBLISH.
    /// - Precondition: `packetIdentifier` is present exactly when `qos` > 0 ([MQTT-2.2.1-2], [MQTT-2.2.1-3]).
    public init(
        dup: Bool = false, qos: QoS = .atMostOnce, retain: Bool = false, topic: TopicName,
        packetIdentifier: PacketIdentifier? = nil, properties: Properties = [], payload: [UInt8]
    ) {
        precondition((qos == .atMostOnce) == (packetIdentifier == nil), "packet identifier iff QoS > 0")
        self.dup = dup
        self.qos = qos
        self.retain = retain
        self.topic = topic
        self.packetIdentifier = packetIdentifier
        self.properties = properties
        self.payload = payload
    }

    var fixedHeaderFlags: UInt8 { PublishEncoding.flags(dup: dup, qos: qos, retain: retain) }

    func bodySize(version: ProtocolVersion) -> Int {
        PublishEncoding.remainingLength(
            topicByteCount: topic.bytes.count, qos: qos,
            propertiesByteCount: version == .v5 ? properties.encodedByteCount : nil, payloadByteCount: payload.count
        )
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        writer.writeBinary(topic.bytes)
        if let packetIdentifier { writer.writeUInt16(packetIdentifier.rawValue) }
        if version == .v5 { properties.write(into: &writer) }
        writer.writeBytes(payload)
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: version) }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> PublishPacket
    {
        try PublishView(flags: flags, body: body, version: version).owned
    }
}

// MARK: - Raw-pieces PUBLISH encoder (encode once per wire layout)

/// Encodes a PUBLISH from borrowed pieces (topic, encoded properties, payload), so that a broker can lay out
/// one shared message once per wire layout (protocol version, QoS, retain) and send it to many subscribers,
/// patching only the packet identifier at
/// ``packetIdentifierOffset(version:topicByteCount:propertiesByteCount:payloadByteCount:)``.
///
/// ```
/// byte 0      : 0011 DUP QoS QoS RETAIN
/// 1...4       : remaining length (variable byte integer)
///             : topic length (2) + topic
///             : packet identifier (2), only for QoS > 0
///             : property length (variable byte integer) + properties, only for 5.0
///             : payload
/// ```
public enum PublishEncoding {
    /// The fixed-header flag nibble.
    @inlinable
    public static func flags(dup: Bool, qos: QoS, retain: Bool) -> UInt8 {
        (dup ? 0b1000 : 0) | qos.rawValue << 1 | (retain ? 1 : 0)
    }

    /// The remaining length of a PUBLISH.
    /// - Parameter propertiesByteCount: the properties' size without their length prefix for 5.0, or `nil`
    ///   for 3.1.x (no properties field at all).
    @inlinable
    public static func remainingLength(
        topicByteCount: Int, qos: QoS, propertiesByteCount: Int?, payloadByteCount: Int
    ) -> Int {
        var size = 2 + topicByteCount + payloadByteCount
        if qos != .atMostOnce { size += 2 }
        if let propertiesByteCount { size += VariableByteInteger.size(propertiesByteCount) + propertiesByteCount }
        return size
    }

    /// The whole encoded size of a PUBLISH written by
    /// ``encode(into:version:dup:qos:retain:packetIdentifier:topic:properties:payload:)``.
    @inlinable
    public static func encodedSize(
        version: ProtocolVersion, qos: QoS, topicByteCount: Int, propertiesByteCount: Int, payloadByteCount: Int
    ) -> Int {
        let remaining = remainingLength(
            topicByteCount: topicByteCount, qos: qos,
            propertiesByteCount: version == .v5 ? propertiesByteCount : nil, payloadByteCount: payloadByteCount
        )
        return 1 + VariableByteInteger.size(remaining) + remaining
    }

    /// Where the two packet-identifier bytes lie in an encoded QoS 1/2 PUBLISH, for patching per subscriber.
    @inlinable
    public static func packetIdentifierOffset(
        version: ProtocolVersion, topicByteCount: Int, propertiesByteCount: Int, payloadByteCount: Int
    ) -> Int {
        let remaining = remainingLength(
            topicByteCount: topicByteCount, qos: .atLeastOnce,
            propertiesByteCount: version == .v5 ? propertiesByteCount : nil, payloadByteCount: payloadByteCount
        )
        return 1 + VariableByteInteger.size(remaining) + 2 + topicByteCount
    }

    /// Writes a PUBLISH at the start of `buffer` from borrowed pieces, with no allocation.
    ///
    /// - Parameters:
    ///   - properties: encoded properties without the length prefix (for example ``PublishView/properties``,
    ///     or ``Properties/encode(into:)`` output); ignored for 3.1.x.
    /// - Returns: bytes written, equal to
    ///   ``encodedSize(version:qos:topicByteCount:propertiesByteCount:payloadByteCount:)``.
    /// - Precondition: `buffer` is large enough; `packetIdentifier` is present exactly when `qos` > 0; the topic
    ///   is at most 65,535 bytes.
    @inlinable
    public static func encode(
        into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion, dup: Bool = false, qos: QoS,
        retain: Bool, packetIdentifier: PacketIdentifier?, topic: UnsafeRawBufferPointer,
        properties: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer
    ) -> Int {
        precondition((qos == .atMostOnce) == (packetIdentifier == nil), "packet identifier iff QoS > 0")
        let remaining = remainingLength(
            topicByteCount: topic.count, qos: qos,
            propertiesByteCount: version == .v5 ? properties.count : nil, payloadByteCount: payload.count
        )
        var writer = ByteWriter(buffer)
        writer.writeByte(PacketType.publish.rawValue << 4 | flags(dup: dup, qos: qos, retain: retain))
        writer.writeVariableByteInteger(remaining)
        writer.writeBinary(topic)
        if let packetIdentifier { writer.writeUInt16(packetIdentifier.rawValue) }
        if version == .v5 {
            writer.writeVariableByteInteger(properties.count)
            writer.writeBytes(properties)
        }
        writer.writeBytes(payload)
        return writer.index
    }
}
