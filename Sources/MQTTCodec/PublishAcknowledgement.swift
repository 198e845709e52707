// MARK: - PUBACK, PUBREC, PUBREL, PUBCOMP (MQTT 5.0 §3.4-§3.7)

/// The shape shared by the four QoS 1/2 acknowledgements: a packet identifier, and in 5.0 an optional
/// reason code and properties.
///
/// ```
/// 3.1.x : packet identifier (2)                                   remaining length 2
/// 5.0   : packet identifier (2) [reason code (1) [properties]]    remaining length 2, 3 or more
/// ```
/// In 5.0 a remaining length of 2 means Success with no properties, and 3 means no properties
/// (§3.4.2.1); the encoder uses the shortest form.
public protocol PublishAcknowledgement: MQTTPacket {
    /// The identifier of the PUBLISH (or PUBREL) being acknowledged.
    var packetIdentifier: PacketIdentifier { get set }
    /// The reason code (5.0); always ``ReasonCode/success`` for 3.1.x.
    var reasonCode: ReasonCode { get set }
    /// Properties (5.0).
    var properties: Properties { get set }
    /// Creates the acknowledgement.
    init(packetIdentifier: PacketIdentifier, reasonCode: ReasonCode, properties: Properties)
}

extension PublishAcknowledgement {
    /// The remaining length.
    func acknowledgementBodySize(version: ProtocolVersion) -> Int {
        guard version == .v5 else { return 2 }
        if !properties.isEmpty { return 3 + properties.encodedByteCountWithLength }
        return reasonCode == .success ? 2 : 3
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int {
        let body = acknowledgementBodySize(version: version)
        return 1 + VariableByteInteger.size(body) + body
    }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        let body = acknowledgementBodySize(version: version)
        var writer = ByteWriter(buffer)
        // [MQTT-3.6.1-1] PUBREL fixed header flags are 0010; the others are 0000.
        let flags: UInt8 = Self.packetType == .pubrel ? 0b0010 : 0
        writer.writeByte(Self.packetType.rawValue << 4 | flags)
        writer.writeVariableByteInteger(body)
        writer.writeUInt16(packetIdentifier.rawValue)
        if body >= 3 { writer.writeByte(reasonCode.rawValue) }
        if body >= 4 { properties.write(into: &writer) }
        return writer.index
    }

    /// Parses the body.
    static func decodeAcknowledgement(body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> Self
    {
        var reader = ByteReader(body, packetType: packetType)
        let identifier = try reader.readPacketIdentifier()
        var reasonCode = ReasonCode.success
        var properties = Properties()
        if version == .v5 {
            if !reader.isAtEnd {
                let code = try reader.readByte()
                reasonCode = ReasonCode(rawValue: code)
                guard reasonCode.isValid(in: packetType) else { throw .invalidReasonCode(packetType, code) }
            }
            if !reader.isAtEnd {
                let context = PropertyContext(rawValue: packetType.rawValue) ?? .puback
                properties = try Properties.read(from: &reader, context: context)
            }
        }
        // MQTT 3.1.1 §3.4.1: the remaining length is exactly 2.
        if !reader.isAtEnd { throw .invalidRemainingLength(packetType) }
        return Self(packetIdentifier: identifier, reasonCode: reasonCode, properties: properties)
    }
}

/// PUBACK: acknowledges a QoS 1 PUBLISH.
public struct PubAckPacket: PublishAcknowledgement {
    /// PUBACK.
    public static var packetType: PacketType { .puback }
    /// The acknowledged PUBLISH's identifier.
    public var packetIdentifier: PacketIdentifier
    /// The reason code (5.0).
    public var reasonCode: ReasonCode
    /// Properties (5.0).
    public var properties: Properties

    /// Creates a PUBACK.
    public init(packetIdentifier: PacketIdentifier, reasonCode: ReasonCode = .success, properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// PUBREC: first answer to a QoS 2 PUBLISH.
public struct PubRecPacket: PublishAcknowledgement {
    /// PUBREC.
    public static var packetType: PacketType { .pubrec }
    /// The acknowledged PUBLISH's identifier.
    public var packetIdentifier: PacketIdentifier
    /// The reason code (5.0).
    public var reasonCode: ReasonCode
    /// Properties (5.0).
    public var properties: Properties

    /// Creates a PUBREC.
    public init(packetIdentifier: PacketIdentifier, reasonCode: ReasonCode = .success, properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// PUBREL: answer to PUBREC.
public struct PubRelPacket: PublishAcknowledgement {
    /// PUBREL.
    public static var packetType: PacketType { .pubrel }
    /// The identifier of the QoS 2 exchange.
    public var packetIdentifier: PacketIdentifier
    /// The reason code (5.0).
    public var reasonCode: ReasonCode
    /// Properties (5.0).
    public var properties: Properties

    /// Creates a PUBREL.
    public init(packetIdentifier: PacketIdentifier, reasonCode: ReasonCode = .success, properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// PUBCOMP: last packet of a QoS 2 exchange.
public struct PubCompPacket: PublishAcknowledgement {
    /// PUBCOMP.
    public static var packetType: PacketType { .pubcomp }
    /// The identifier of the QoS 2 exchange.
    public var packetIdentifier: PacketIdentifier
    /// The reason code (5.0).
    public var reasonCode: ReasonCode
    /// Properties (5.0).
    public var properties: Properties

    /// Creates a PUBCOMP.
    public init(packetIdentifier: PacketIdentifier, reasonCode: ReasonCode = .success, properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCode = reasonCode
        self.properties = properties
    }
}
