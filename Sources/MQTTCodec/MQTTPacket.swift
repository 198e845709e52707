// MARK: - Packet encoding protocol

/// A packet value that can be sized and then encoded into caller-supplied memory with no intermediate
/// allocation.
///
/// ```swift
/// let size = packet.encodedSize(version: .v5)
/// let written = packet.encode(into: buffer, version: .v5)   // buffer.count >= size; written == size
/// ```
public protocol MQTTPacket: Sendable, Hashable {
    /// The packet's type.
    static var packetType: PacketType { get }

    /// The number of bytes ``encode(into:version:)`` writes, fixed header included.
    func encodedSize(version: ProtocolVersion) -> Int

    /// Writes the whole packet (fixed header, variable header, payload) at the start of `buffer`.
    /// - Returns: the number of bytes written, equal to ``encodedSize(version:)``.
    /// - Precondition: `buffer.count >= encodedSize(version:)`; the packet's fields fit their wire types
    ///   (strings of at most 65,535 bytes, a remaining length of at most 268,435,455).
    func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int
}

extension MQTTPacket {
    /// Encodes the packet into a new array (tests and control plane; the data path encodes into buffers).
    public func encode(version: ProtocolVersion) -> [UInt8] {
        let size = encodedSize(version: version)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initializedCount in
            initializedCount = encode(into: UnsafeMutableRawBufferPointer(buffer), version: version)
        }
    }
}

// MARK: - Shared framing

/// What each packet type provides so that the shared framing code can size and write it.
protocol PacketBody: MQTTPacket {
    /// The low nibble of the fixed header's first byte.
    var fixedHeaderFlags: UInt8 { get }
    /// The remaining length: bytes after the fixed header.
    func bodySize(version: ProtocolVersion) -> Int
    /// Writes the variable header and payload.
    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion)
    /// Parses the variable header and payload of a packet whose fixed header was already checked.
    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> Self
}

extension PacketBody {
    /// The packet's whole size: fixed header plus remaining length.
    func frameSize(version: ProtocolVersion) -> Int {
        let body = bodySize(version: version)
        return 1 + VariableByteInteger.size(body) + body
    }

    /// Writes fixed header and body.
    func encodeFrame(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        let body = bodySize(version: version)
        var writer = ByteWriter(buffer)
        writer.writeByte(Self.packetType.rawValue << 4 | fixedHeaderFlags)
        writer.writeVariableByteInteger(body)
        let bodyStart = writer.index
        writeBody(into: &writer, version: version)
        precondition(writer.index - bodyStart == body, "\(Self.packetType) body size mismatch")
        return writer.index
    }
}

/// Reads the properties of a 5.0 packet, or answers an empty list for 3.1.x.
func readProperties(
    _ reader: inout ByteReader, version: ProtocolVersion, context: PropertyContext
) throws(MQTTDecodeError) -> Properties {
    version == .v5 ? try Properties.read(from: &reader, context: context) : Properties()
}

/// Validates a topic filter read from the wire.
func readTopicFilter(_ reader: inout ByteReader, version: ProtocolVersion) throws(MQTTDecodeError) -> TopicFilter {
    let bytes = try reader.readString()
    do throws(TopicError) {
        // MQTT 3.1.1 gives `$share` no meaning, so it is parsed as a shared subscription only in 5.0.
        return try TopicFilter(validating: bytes.array, allowShared: version == .v5)
    } catch {
        throw .topicFilterInvalid(error)
    }
}
