// MARK: - CONNECT (MQTT 5.0 §3.1, MQTT 3.1.1 §3.1, MQTT 3.1 §3.1)

/// A client's connection request.
public struct ConnectPacket: MQTTPacket, PacketBody {
    /// The Will Message carried in CONNECT.
    public struct Will: Sendable, Hashable {
        /// Topic the will is published to.
        public var topic: TopicName
        /// Will payload.
        public var payload: [UInt8]
        /// QoS of the will publication.
        public var qos: QoS
        /// Whether the will is retained.
        public var retain: Bool
        /// Will Properties (5.0).
        public var properties: Properties

        /// Creates a will.
        public init(
            topic: TopicName, payload: [UInt8], qos: QoS = .atMostOnce, retain: Bool = false,
            properties: Properties = []
        ) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
            self.properties = properties
        }
    }

    /// CONNECT.
    public static var packetType: PacketType { .connect }

    /// The version the client asks for; it decides the encoding (the `version` argument of the encoders is
    /// ignored for CONNECT).
    public var protocolVersion: ProtocolVersion
    /// Client identifier (may be empty in 3.1.1 with clean session, and in 5.0).
    public var clientIdentifier: String
    /// Clean Start (5.0) / Clean Session (3.1.x).
    public var cleanStart: Bool
    /// Keep alive in seconds; 0 disables it.
    public var keepAliveSeconds: UInt16
    /// User name, if any.
    public var userName: String?
    /// Password, if any.
    public var password: [UInt8]?
    /// The will, if any.
    public var will: Will?
    /// CONNECT properties (5.0).
    public var properties: Properties

    /// Creates a CONNECT.
    public init(
        protocolVersion: ProtocolVersion, clientIdentifier: String, cleanStart: Bool = true,
        keepAliveSeconds: UInt16 = 60, userName: String? = nil, password: [UInt8]? = nil, will: Will? = nil,
        properties: Properties = []
    ) {
        self.protocolVersion = protocolVersion
        self.clientIdentifier = clientIdentifier
        self.cleanStart = cleanStart
        self.keepAliveSeconds = keepAliveSeconds
        self.userName = userName
        self.password = password
        self.will = will
        self.properties = properties
    }

    // MARK: - Encoding

    var fixedHeaderFlags: UInt8 { 0 }

    /// The Connect Flags byte (MQTT 5.0 §3.1.2.3).
    var connectFlags: UInt8 {
        var flags: UInt8 = 0
        if cleanStart { flags |= 0b0000_0010 }
        if let will {
            flags |= 0b0000_0100 | will.qos.rawValue << 3
            if will.retain { flags |= 0b0010_0000 }
        }
        if password != nil { flags |= 0b0100_0000 }
        if userName != nil { flags |= 0b1000_0000 }
        return flags
    }

    func bodySize(version: ProtocolVersion) -> Int {
        let version = protocolVersion
        let v5 = version == .v5
        var size = stringFieldSize(version.protocolName) + 1 + 1 + 2
        if v5 { size += properties.encodedByteCountWithLength }
        size += stringFieldSize(clientIdentifier)
        if let will {
            if v5 { size += will.properties.encodedByteCountWithLength }
            size += 2 + will.topic.bytes.count + 2 + will.payload.count
        }
        if let userName { size += stringFieldSize(userName) }
        if let password { size += 2 + password.count }
        return size
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        let version = protocolVersion
        writer.writeString(version.protocolName)
        writer.writeByte(version.rawValue)
        writer.writeByte(connectFlags)
        writer.writeUInt16(keepAliveSeconds)
        if version == .v5 { properties.write(into: &writer) }
        writer.writeString(clientIdentifier)
        if let will {
            if version == .v5 { will.properties.write(into: &writer) }
            writer.writeBinary(will.topic.bytes)
            writer.writeBinary(will.payload)
        }
        if let userName { writer.writeString(userName) }
        if let password { writer.writeBinary(password) }
    }

    /// The encoded size; CONNECT always uses its own ``protocolVersion``.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: protocolVersion) }

    /// Encodes the packet; CONNECT always uses its own ``protocolVersion``.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: protocolVersion)
    }

    // MARK: - Decoding

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version _: ProtocolVersion)
        throws(MQTTDecodeError) -> ConnectPacket
    {
        var reader = ByteReader(body, packetType: .connect)
        let name = try reader.readString()
        let level = try reader.readByte()
        let version = try protocolVersion(name: name, level: level)
        let connectFlags = try reader.readByte()
        // [MQTT-3.1.2-3] The Server MUST validate that the reserved flag in the CONNECT packet is set to 0.
        if connectFlags & 0b0000_0001 != 0 { throw .connectReservedFlagSet }
        let cleanStart = connectFlags & 0b0000_0010 != 0
        let willFlag = connectFlags & 0b0000_0100 != 0
        let willQoSBits = (connectFlags >> 3) & 0b11
        let willRetain = connectFlags & 0b0010_0000 != 0
        let passwordFlag = connectFlags & 0b0100_0000 != 0
        let userNameFlag = connectFlags & 0b1000_0000 != 0
        // [MQTT-3.1.2-14] (3.1.1) / [MQTT-3.1.2-12] (5.0) Will QoS MUST NOT be 3.
        if willQoSBits == 3 { throw .willQoSInvalid }
        if !willFlag {
            // [MQTT-3.1.2-13] (3.1.1) / [MQTT-3.1.2-11] (5.0) Without the Will Flag, Will QoS MUST be 0.
            // [MQTT-3.1.2-15] (3.1.1) / [MQTT-3.1.2-13] (5.0) Without the Will Flag, Will Retain MUST be 0.
            if willQoSBits != 0 || willRetain { throw .willFieldsWithoutWillFlag }
        }
        // [MQTT-3.1.2-22] (3.1.1) If the User Name Flag is set to 0, the Password Flag MUST be set to 0.
        // MQTT 5.0 allows a password without a user name (§3.1.2.9).
        if version != .v5 && passwordFlag && !userNameFlag { throw .passwordWithoutUserName }
        let keepAlive = try reader.readUInt16()
        let properties = try readProperties(&reader, version: version, context: .connect)

        let clientIdentifierBytes = try reader.readString()
        switch version {
        case .v3_1:
            // MQTT 3.1 §3.1: the Client Identifier MUST be present, 1 to 23 characters (the upper bound is
            // widely ignored, and so it is here).
            if clientIdentifierBytes.isEmpty { throw .clientIdentifierInvalid }
        case .v3_1_1:
            // [MQTT-3.1.3-8] If the Client supplies a zero-byte ClientId with CleanSession set to 0, the Server
            // MUST respond with return code 0x02 (Identifier rejected) and then close the Network Connection.
            if clientIdentifierBytes.isEmpty && !cleanStart { throw .clientIdentifierInvalid }
        case .v5:
            break
        }

        var will: Will? = nil
        if willFlag {
            let willProperties = try readProperties(&reader, version: version, context: .will)
            let topicBytes = try reader.readString()
            if let error = TopicName.validate(topicBytes) { throw .topicNameInvalid(error) }
            let payload = try reader.readBinary()
            will = Will(
                topic: TopicName(uncheckedBytes: topicBytes.array), payload: payload.array,
                qos: QoS(rawValue: willQoSBits) ?? .atMostOnce, retain: willRetain, properties: willProperties
            )
        }
        var userName: String? = nil
        if userNameFlag { userName = try reader.readString().validatedString }
        var password: [UInt8]? = nil
        if passwordFlag { password = try reader.readBinary().array }
        if !reader.isAtEnd { throw .invalidRemainingLength(.connect) }
        return ConnectPacket(
            protocolVersion: version, clientIdentifier: clientIdentifierBytes.validatedString,
            cleanStart: cleanStart, keepAliveSeconds: keepAlive, userName: userName, password: password,
            will: will, properties: properties
        )
    }

    /// Checks the protocol name and level pair: `MQIsdp`/3, `MQTT`/4, `MQTT`/5.
    static func protocolVersion(name: UnsafeRawBufferPointer, level: UInt8) throws(MQTTDecodeError)
        -> ProtocolVersion
    {
        let isMQTT = name.elementsEqual("MQTT".utf8)
        let isMQIsdp = name.elementsEqual("MQIsdp".utf8)
        // [MQTT-3.1.2-1] If the protocol name is incorrect the Server MAY disconnect the Client.
        guard isMQTT || isMQIsdp else { throw .invalidProtocolName }
        // [MQTT-3.1.2-2] The Server MUST respond to an unsupported Protocol Level with CONNACK 0x01 (3.1.1) or
        // 0x84 (5.0) and then disconnect.
        switch (level, isMQTT) {
        case (3, false): return .v3_1
        case (4, true): return .v3_1_1
        case (5, true): return .v5
        default: throw .unsupportedProtocolVersion(level)
        }
    }
}
