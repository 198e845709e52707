// MARK: - CONNACK (MQTT 5.0 §3.2)

/// The server's answer to CONNECT.
public struct ConnAckPacket: MQTTPacket, PacketBody {
    /// CONNACK.
    public static var packetType: PacketType { .connack }

    /// Whether the server resumes an existing session.
    public var sessionPresent: Bool
    /// The reason code (5.0), or the 3.1.x return code mapped onto its 5.0 counterpart (see
    /// ``ReasonCode/init(connackReturnCodeV3:)``).
    public var reasonCode: ReasonCode
    /// CONNACK properties (5.0).
    public var properties: Properties

    /// Creates a CONNACK.
    public init(sessionPresent: Bool = false, reasonCode: ReasonCode = .success, properties: Properties = []) {
        self.sessionPresent = sessionPresent
        self.reasonCode = reasonCode
        self.properties = properties
    }

    var fixedHeaderFlags: UInt8 { 0 }

    func bodySize(version: ProtocolVersion) -> Int {
        version == .v5 ? 2 + properties.encodedByteCountWithLength : 2
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        writer.writeByte(sessionPresent ? 1 : 0)
        if version == .v5 {
            writer.writeByte(reasonCode.rawValue)
            properties.write(into: &writer)
        } else {
            writer.writeByte(reasonCode.connackReturnCodeV3)
        }
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: version) }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> ConnAckPacket
    {
        var reader = ByteReader(body, packetType: .connack)
        let acknowledgeFlags = try reader.readByte()
        // [MQTT-3.2.2-1] (5.0) Bits 7-1 of the Connect Acknowledge Flags are reserved and MUST be 0.
        if acknowledgeFlags & 0b1111_1110 != 0 { throw .connackFlagsInvalid(acknowledgeFlags) }
        let code = try reader.readByte()
        let reasonCode: ReasonCode
        if version == .v5 {
            reasonCode = ReasonCode(rawValue: code)
            guard reasonCode.isValid(in: .connack) else { throw .invalidReasonCode(.connack, code) }
        } else {
            // MQTT 3.1.1 §3.2.2.3: return codes 6-255 are reserved.
            guard let mapped = ReasonCode(connackReturnCodeV3: code) else { throw .invalidReasonCode(.connack, code) }
            reasonCode = mapped
        }
        let properties = try readProperties(&reader, version: version, context: .connack)
        if !reader.isAtEnd { throw .invalidRemainingLength(.connack) }
        return ConnAckPacket(sessionPresent: acknowledgeFlags & 1 != 0, reasonCode: reasonCode, properties: properties)
    }
}
