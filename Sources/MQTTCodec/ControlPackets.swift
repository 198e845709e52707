// MARK: - PINGREQ, PINGRESP (MQTT 5.0 §3.12, §3.13)

/// PINGREQ: a client's keep-alive probe. No variable header, no payload.
public struct PingReqPacket: MQTTPacket, PacketBody {
    /// PINGREQ.
    public static var packetType: PacketType { .pingreq }
    /// Creates a PINGREQ.
    public init() {}
    var fixedHeaderFlags: UInt8 { 0 }
    func bodySize(version: ProtocolVersion) -> Int { 0 }
    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {}
    /// Always 2.
    public func encodedSize(version: ProtocolVersion) -> Int { 2 }
    /// Writes `C0 00`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }
    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> PingReqPacket
    {
        if !body.isEmpty { throw .invalidRemainingLength(.pingreq) }
        return PingReqPacket()
    }
}

/// PINGRESP: the server's answer to PINGREQ. No variable header, no payload.
public struct PingRespPacket: MQTTPacket, PacketBody {
    /// PINGRESP.
    public static var packetType: PacketType { .pingresp }
    /// Creates a PINGRESP.
    public init() {}
    var fixedHeaderFlags: UInt8 { 0 }
    func bodySize(version: ProtocolVersion) -> Int { 0 }
    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {}
    /// Always 2.
    public func encodedSize(version: ProtocolVersion) -> Int { 2 }
    /// Writes `D0 00`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }
    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> PingRespPacket
    {
        if !body.isEmpty { throw .invalidRemainingLength(.pingresp) }
        return PingRespPacket()
    }
}

// MARK: - DISCONNECT (MQTT 5.0 §3.14)

/// DISCONNECT: either side's notice that the connection closes. 3.1.x carries nothing; 5.0 may carry a
/// reason code and properties (a remaining length of 0 means Normal disconnection).
public struct DisconnectPacket: MQTTPacket, PacketBody {
    /// DISCONNECT.
    public static var packetType: PacketType { .disconnect }
    /// The reason (5.0).
    public var reasonCode: ReasonCode
    /// Properties (5.0).
    public var properties: Properties

    /// Creates a DISCONNECT.
    public init(reasonCode: ReasonCode = .normalDisconnection, properties: Properties = []) {
        self.reasonCode = reasonCode
        self.properties = properties
    }

    var fixedHeaderFlags: UInt8 { 0 }

    func bodySize(version: ProtocolVersion) -> Int {
        guard version == .v5 else { return 0 }
        if !properties.isEmpty { return 1 + properties.encodedByteCountWithLength }
        return reasonCode == .normalDisconnection ? 0 : 1
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        let size = bodySize(version: version)
        if size >= 1 { writer.writeByte(reasonCode.rawValue) }
        if size >= 2 { properties.write(into: &writer) }
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: version) }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> DisconnectPacket
    {
        var reader = ByteReader(body, packetType: .disconnect)
        var reasonCode = ReasonCode.normalDisconnection
        var properties = Properties()
        if version == .v5 {
            if !reader.isAtEnd {
                let byte = try reader.readByte()
                reasonCode = ReasonCode(rawValue: byte)
                guard reasonCode.isValid(in: .disconnect) else { throw .invalidReasonCode(.disconnect, byte) }
            }
            if !reader.isAtEnd { properties = try Properties.read(from: &reader, context: .disconnect) }
        }
        if !reader.isAtEnd { throw .invalidRemainingLength(.disconnect) }
        return DisconnectPacket(reasonCode: reasonCode, properties: properties)
    }
}

// MARK: - AUTH (MQTT 5.0 §3.15)

/// AUTH: an enhanced-authentication exchange step (5.0 only). A remaining length of 0 means Success.
public struct AuthPacket: MQTTPacket, PacketBody {
    /// AUTH.
    public static var packetType: PacketType { .auth }
    /// Success, Continue authentication or Re-authenticate.
    public var reasonCode: ReasonCode
    /// Properties: Authentication Method and Data, Reason String, User Properties.
    public var properties: Properties

    /// Creates an AUTH.
    public init(reasonCode: ReasonCode = .success, properties: Properties = []) {
        self.reasonCode = reasonCode
        self.properties = properties
    }

    var fixedHeaderFlags: UInt8 { 0 }

    func bodySize(version: ProtocolVersion) -> Int {
        if !properties.isEmpty { return 1 + properties.encodedByteCountWithLength }
        return reasonCode == .success ? 0 : 1
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        let size = bodySize(version: version)
        if size >= 1 { writer.writeByte(reasonCode.rawValue) }
        if size >= 2 { properties.write(into: &writer) }
    }

    /// The encoded size.
    /// - Precondition: `version == .v5` (AUTH does not exist in 3.1.x).
    public func encodedSize(version: ProtocolVersion) -> Int {
        precondition(version == .v5, "AUTH exists only in MQTT 5.0")
        return frameSize(version: version)
    }

    /// Encodes the packet into `buffer`.
    /// - Precondition: `version == .v5`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        precondition(version == .v5, "AUTH exists only in MQTT 5.0")
        return encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> AuthPacket
    {
        var reader = ByteReader(body, packetType: .auth)
        var reasonCode = ReasonCode.success
        var properties = Properties()
        if !reader.isAtEnd {
            let byte = try reader.readByte()
            reasonCode = ReasonCode(rawValue: byte)
            guard reasonCode.isValid(in: .auth) else { throw .invalidReasonCode(.auth, byte) }
        }
        if !reader.isAtEnd { properties = try Properties.read(from: &reader, context: .auth) }
        if !reader.isAtEnd { throw .invalidRemainingLength(.auth) }
        return AuthPacket(reasonCode: reasonCode, properties: properties)
    }
}
