// MARK: - Any packet

/// One decoded MQTT control packet, owned. The data path decodes PUBLISH as a borrowed ``PublishView``
/// instead (``PacketDecoder/decodePublish(_:in:)``).
public enum Packet: Sendable, Hashable {
    /// CONNECT.
    case connect(ConnectPacket)
    /// CONNACK.
    case connack(ConnAckPacket)
    /// PUBLISH.
    case publish(PublishPacket)
    /// PUBACK.
    case puback(PubAckPacket)
    /// PUBREC.
    case pubrec(PubRecPacket)
    /// PUBREL.
    case pubrel(PubRelPacket)
    /// PUBCOMP.
    case pubcomp(PubCompPacket)
    /// SUBSCRIBE.
    case subscribe(SubscribePacket)
    /// SUBACK.
    case suback(SubAckPacket)
    /// UNSUBSCRIBE.
    case unsubscribe(UnsubscribePacket)
    /// UNSUBACK.
    case unsuback(UnsubAckPacket)
    /// PINGREQ.
    case pingreq
    /// PINGRESP.
    case pingresp
    /// DISCONNECT.
    case disconnect(DisconnectPacket)
    /// AUTH.
    case auth(AuthPacket)

    /// The packet's type.
    public var packetType: PacketType {
        switch self {
        case .connect: .connect
        case .connack: .connack
        case .publish: .publish
        case .puback: .puback
        case .pubrec: .pubrec
        case .pubrel: .pubrel
        case .pubcomp: .pubcomp
        case .subscribe: .subscribe
        case .suback: .suback
        case .unsubscribe: .unsubscribe
        case .unsuback: .unsuback
        case .pingreq: .pingreq
        case .pingresp: .pingresp
        case .disconnect: .disconnect
        case .auth: .auth
        }
    }

    /// The number of bytes ``encode(into:version:)`` writes.
    public func encodedSize(version: ProtocolVersion) -> Int {
        switch self {
        case .connect(let packet): packet.encodedSize(version: version)
        case .connack(let packet): packet.encodedSize(version: version)
        case .publish(let packet): packet.encodedSize(version: version)
        case .puback(let packet): packet.encodedSize(version: version)
        case .pubrec(let packet): packet.encodedSize(version: version)
        case .pubrel(let packet): packet.encodedSize(version: version)
        case .pubcomp(let packet): packet.encodedSize(version: version)
        case .subscribe(let packet): packet.encodedSize(version: version)
        case .suback(let packet): packet.encodedSize(version: version)
        case .unsubscribe(let packet): packet.encodedSize(version: version)
        case .unsuback(let packet): packet.encodedSize(version: version)
        case .pingreq, .pingresp: 2
        case .disconnect(let packet): packet.encodedSize(version: version)
        case .auth(let packet): packet.encodedSize(version: version)
        }
    }

    /// Writes the packet at the start of `buffer`.
    /// - Returns: the number of bytes written.
    /// - Precondition: `buffer.count >= encodedSize(version:)`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        switch self {
        case .connect(let packet): packet.encode(into: buffer, version: version)
        case .connack(let packet): packet.encode(into: buffer, version: version)
        case .publish(let packet): packet.encode(into: buffer, version: version)
        case .puback(let packet): packet.encode(into: buffer, version: version)
        case .pubrec(let packet): packet.encode(into: buffer, version: version)
        case .pubrel(let packet): packet.encode(into: buffer, version: version)
        case .pubcomp(let packet): packet.encode(into: buffer, version: version)
        case .subscribe(let packet): packet.encode(into: buffer, version: version)
        case .suback(let packet): packet.encode(into: buffer, version: version)
        case .unsubscribe(let packet): packet.encode(into: buffer, version: version)
        case .unsuback(let packet): packet.encode(into: buffer, version: version)
        case .pingreq: PingReqPacket().encode(into: buffer, version: version)
        case .pingresp: PingRespPacket().encode(into: buffer, version: version)
        case .disconnect(let packet): packet.encode(into: buffer, version: version)
        case .auth(let packet): packet.encode(into: buffer, version: version)
        }
    }

    /// Encodes the packet into a new array (tests and control plane).
    public func encode(version: ProtocolVersion) -> [UInt8] {
        let size = encodedSize(version: version)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initializedCount in
            initializedCount = encode(into: UnsafeMutableRawBufferPointer(buffer), version: version)
        }
    }
}
