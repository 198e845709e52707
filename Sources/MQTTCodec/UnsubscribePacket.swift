// MARK: - UNSUBSCRIBE (MQTT 5.0 §3.10)

/// A client's unsubscribe request.
public struct UnsubscribePacket: MQTTPacket, PacketBody {
    /// UNSUBSCRIBE.
    public static var packetType: PacketType { .unsubscribe }

    /// Packet identifier.
    public var packetIdentifier: PacketIdentifier
    /// The filters to remove, at least one.
    public var filters: [TopicFilter]
    /// Properties (5.0): User Properties only.
    public var properties: Properties

    /// Creates an UNSUBSCRIBE.
    public init(packetIdentifier: PacketIdentifier, filters: [TopicFilter], properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.filters = filters
        self.properties = properties
    }

    // [MQTT-3.10.1-1] Bits 3,2,1 and 0 of the fixed header are reserved and MUST be set to 0,0,1 and 0.
    var fixedHeaderFlags: UInt8 { 0b0010 }

    func bodySize(version: ProtocolVersion) -> Int {
        var size = 2
        if version == .v5 { size += properties.encodedByteCountWithLength }
        for filter in filters { size += 2 + filter.bytes.count }
        return size
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        writer.writeUInt16(packetIdentifier.rawValue)
        if version == .v5 { properties.write(into: &writer) }
        for filter in filters { writer.writeBinary(filter.bytes) }
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: version) }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> UnsubscribePacket
    {
        var reader = ByteReader(body, packetType: .unsubscribe)
        let identifier = try reader.readPacketIdentifier()
        let properties = try readProperties(&reader, version: version, context: .unsubscribe)
        var filters: [TopicFilter] = []
        while !reader.isAtEnd { filters.append(try readTopicFilter(&reader, version: version)) }
        // [MQTT-3.10.3-2] The Payload of an UNSUBSCRIBE packet MUST contain at least one Topic Filter.
        if filters.isEmpty { throw .noTopicFilters(.unsubscribe) }
        return UnsubscribePacket(packetIdentifier: identifier, filters: filters, properties: properties)
    }
}

// MARK: - UNSUBACK (MQTT 5.0 §3.11)

/// The server's answer to UNSUBSCRIBE. 3.1.x carries only the packet identifier.
public struct UnsubAckPacket: MQTTPacket, PacketBody {
    /// UNSUBACK.
    public static var packetType: PacketType { .unsuback }

    /// The UNSUBSCRIBE's packet identifier.
    public var packetIdentifier: PacketIdentifier
    /// One reason code per filter (5.0); empty for 3.1.x.
    public var reasonCodes: [ReasonCode]
    /// Properties (5.0).
    public var properties: Properties

    /// Creates an UNSUBACK.
    public init(packetIdentifier: PacketIdentifier, reasonCodes: [ReasonCode] = [], properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }

    var fixedHeaderFlags: UInt8 { 0 }

    func bodySize(version: ProtocolVersion) -> Int {
        version == .v5 ? 2 + properties.encodedByteCountWithLength + reasonCodes.count : 2
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        writer.writeUInt16(packetIdentifier.rawValue)
        guard version == .v5 else { return }
        properties.write(into: &writer)
        for code in reasonCodes { writer.writeByte(code.rawValue) }
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: version) }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> UnsubAckPacket
    {
        var reader = ByteReader(body, packetType: .unsuback)
        let identifier = try reader.readPacketIdentifier()
        guard version == .v5 else {
            if !reader.isAtEnd { throw .invalidRemainingLength(.unsuback) }
            return UnsubAckPacket(packetIdentifier: identifier)
        }
        let properties = try Properties.read(from: &reader, context: .unsuback)
        var codes: [ReasonCode] = []
        while !reader.isAtEnd {
            let byte = try reader.readByte()
            let code = ReasonCode(rawValue: byte)
            guard code.isValid(in: .unsuback) else { throw .invalidReasonCode(.unsuback, byte) }
            codes.append(code)
        }
        if codes.isEmpty { throw .invalidRemainingLength(.unsuback) }
        return UnsubAckPacket(packetIdentifier: identifier, reasonCodes: codes, properties: properties)
    }
}
