// MARK: - Incremental decoder

/// Splits a byte stream into MQTT packets. It holds no bytes itself: the caller keeps the received bytes
/// (an assembly buffer) and asks, each time more arrive, whether a whole packet is there.
///
/// ```swift
/// var decoder = PacketDecoder(maximumPacketSize: 1 << 20)     // server side: expects CONNECT first
/// loop: while true {
///     switch try decoder.readFrame(bytes) {                     // bytes: UnsafeRawBufferPointer
///     case .needMoreBytes(let count): break loop                // read at least `count` more bytes
///     case .frame(let frame):
///         if frame.type == .publish {
///             let view = try decoder.decodePublish(frame, in: bytes)   // borrowed, no allocation
///         } else {
///             let packet = try decoder.decodePacket(frame, in: bytes)  // owned; CONNECT sets the version
///         }
///         bytes = UnsafeRawBufferPointer(rebasing: bytes[frame.byteCount...])
///     }
/// }
/// ```
/// Or, where allocation does not matter, ``decode(_:)`` answers a ``Packet`` and its byte count in one call.
///
/// The fixed header is checked before the body is awaited: type, reserved flags ([MQTT-2.1.3-1]), PUBLISH
/// QoS ([MQTT-3.3.1-4]), remaining-length encoding, and size against ``maximumPacketSize``.
public struct PacketDecoder: Sendable {
    /// The connection's protocol version; `nil` until CONNECT is decoded, and while it is `nil` only CONNECT
    /// is accepted ([MQTT-3.1.0-1]). A client sets it when it sends CONNECT.
    public var protocolVersion: ProtocolVersion?
    /// The largest whole packet (fixed header included) accepted, in bytes.
    public var maximumPacketSize: Int
    /// Whether a PUBLISH payload marked UTF-8 by its Payload Format Indicator is checked (0x99 on failure).
    public var validatesPayloadFormat: Bool

    /// The protocol's own ceiling: a 5-byte fixed header and the largest remaining length.
    public static let packetSizeMax = 1 + 4 + VariableByteInteger.max

    /// Creates a decoder.
    /// - Parameters:
    ///   - protocolVersion: the version, if already known (client side); `nil` to learn it from CONNECT.
    ///   - maximumPacketSize: the largest packet accepted, fixed header included.
    ///   - validatesPayloadFormat: see ``validatesPayloadFormat``.
    public init(
        protocolVersion: ProtocolVersion? = nil, maximumPacketSize: Int = PacketDecoder.packetSizeMax,
        validatesPayloadFormat: Bool = false
    ) {
        precondition(maximumPacketSize >= 2, "no packet is shorter than 2 bytes")
        self.protocolVersion = protocolVersion
        self.maximumPacketSize = maximumPacketSize
        self.validatesPayloadFormat = validatesPayloadFormat
    }

    // MARK: - Frames

    /// The fixed header of a packet that lies whole in the buffer.
    public struct Frame: Sendable, Hashable {
        /// The packet type.
        public let type: PacketType
        /// The fixed header's low nibble.
        public let flags: UInt8
        /// The size of the fixed header (2...5).
        public let headerByteCount: Int
        /// The remaining length: bytes after the fixed header.
        public let remainingLength: Int

        /// The packet's whole size.
        @inlinable
        public var byteCount: Int { headerByteCount + remainingLength }

        @inlinable
        init(type: PacketType, flags: UInt8, headerByteCount: Int, remainingLength: Int) {
            self.type = type
            self.flags = flags
            self.headerByteCount = headerByteCount
            self.remainingLength = remainingLength
        }
    }

    /// What ``readFrame(_:)`` found.
    public enum FrameResult: Sendable, Hashable {
        /// The buffer holds no whole packet: at least this many more bytes are needed (exact once the fixed
        /// header is complete).
        case needMoreBytes(Int)
        /// A whole packet starts the buffer.
        case frame(Frame)
    }

    /// Checks the fixed header at the start of `buffer` and says whether the whole packet is there.
    ///
    /// - Throws: ``MQTTDecodeError`` for a reserved packet type, wrong flags, a PUBLISH with QoS 3, a
    ///   remaining length longer than 4 bytes, a packet over ``maximumPacketSize`` (before its body arrives),
    ///   or a first packet that is not CONNECT.
    /// - Complexity: O(1).
    @inlinable
    public func readFrame(_ buffer: UnsafeRawBufferPointer) throws(MQTTDecodeError) -> FrameResult {
        let count = buffer.count
        if count == 0 { return .needMoreBytes(2) }
        let first = buffer[0]
        let flags = first & 0x0F
        guard let type = PacketType(rawValue: first >> 4) else { throw .reservedPacketType(first >> 4) }
        if let version = protocolVersion {
            // MQTT 3.1.1 §2.2.1: packet type 15 is reserved; AUTH exists only in 5.0.
            if type == .auth && version != .v5 { throw .reservedPacketType(15) }
        } else if type != .connect {
            // [MQTT-3.1.0-1] After a Network Connection is established by a Client to a Server, the first
            // packet sent from the Client to the Server MUST be a CONNECT packet.
            throw .expectedConnect(type)
        }
        if let required = type.requiredFlags {
            // [MQTT-2.1.3-1] Where a flag bit is marked as "Reserved", it MUST be set to the value listed.
            if flags != required { throw .invalidFixedHeaderFlags(type, flags: flags) }
        } else if flags & 0b0110 == 0b0110 {
            // [MQTT-3.3.1-4] A PUBLISH Packet MUST NOT have both QoS bits set to 1.
            throw .publishQoSInvalid
        }
        // MQTT 5.0 §1.5.5: the remaining length is a Variable Byte Integer of at most four bytes.
        var remaining = 0
        var index = 1
        while true {
            if index >= count { return .needMoreBytes(1) }
            let byte = buffer[index]
            remaining |= Int(byte & 0x7F) << (7 * (index - 1))
            index += 1
            if byte & 0x80 == 0 { break }
            if index == 5 { throw .malformedVariableByteInteger }
        }
        let total = index + remaining
        // Refuse an oversized packet from its fixed header, before buffering its body.
        if total > maximumPacketSize { throw .packetTooLarge(byteCount: total, maximum: maximumPacketSize) }
        if count < total { return .needMoreBytes(total - count) }
        return .frame(Frame(type: type, flags: flags, headerByteCount: index, remainingLength: remaining))
    }

    // MARK: - Borrowed PUBLISH

    /// Decodes a PUBLISH frame in place, without allocating.
    /// - Parameters:
    ///   - frame: a frame of type ``PacketType/publish`` returned by ``readFrame(_:)`` for `buffer`.
    ///   - buffer: the same buffer, starting at the frame; the view points into it.
    /// - Precondition: `frame.type == .publish`, `buffer.count >= frame.byteCount`, the version is known.
    @inlinable
    public func decodePublish(_ frame: Frame, in buffer: UnsafeRawBufferPointer) throws(MQTTDecodeError)
        -> PublishView
    {
        precondition(frame.type == .publish && buffer.count >= frame.byteCount, "not a whole PUBLISH frame")
        let body = UnsafeRawBufferPointer(rebasing: buffer[frame.headerByteCount..<frame.byteCount])
        return try PublishView(
            flags: frame.flags, body: body, version: protocolVersion ?? .v3_1_1,
            validatesPayloadFormat: validatesPayloadFormat
        )
    }

    // MARK: - Owned packets

    /// Decodes a frame into an owned packet. Decoding CONNECT teaches the decoder the protocol version.
    /// - Precondition: `frame` came from ``readFrame(_:)`` for `buffer`, which starts at the frame.
    public mutating func decodePacket(_ frame: Frame, in buffer: UnsafeRawBufferPointer) throws(MQTTDecodeError)
        -> Packet
    {
        precondition(buffer.count >= frame.byteCount, "not a whole frame")
        let body = UnsafeRawBufferPointer(rebasing: buffer[frame.headerByteCount..<frame.byteCount])
        let version = protocolVersion ?? .v3_1_1
        let flags = frame.flags
        switch frame.type {
        case .connect:
            let connect = try ConnectPacket.decode(flags: flags, body: body, version: version)
            if protocolVersion == nil { protocolVersion = connect.protocolVersion }
            return .connect(connect)
        case .connack: return .connack(try ConnAckPacket.decode(flags: flags, body: body, version: version))
        case .publish:
            let view = try PublishView(
                flags: flags, body: body, version: version, validatesPayloadFormat: validatesPayloadFormat
            )
            return .publish(view.owned)
        case .puback: return .puback(try PubAckPacket.decodeAcknowledgement(body: body, version: version))
        case .pubrec: return .pubrec(try PubRecPacket.decodeAcknowledgement(body: body, version: version))
        case .pubrel: return .pubrel(try PubRelPacket.decodeAcknowledgement(body: body, version: version))
        case .pubcomp: return .pubcomp(try PubCompPacket.decodeAcknowledgement(body: body, version: version))
        case .subscribe: return .subscribe(try SubscribePacket.decode(flags: flags, body: body, version: version))
        case .suback: return .suback(try SubAckPacket.decode(flags: flags, body: body, version: version))
        case .unsubscribe:
            return .unsubscribe(try UnsubscribePacket.decode(flags: flags, body: body, version: version))
        case .unsuback: return .unsuback(try UnsubAckPacket.decode(flags: flags, body: body, version: version))
        case .pingreq:
            _ = try PingReqPacket.decode(flags: flags, body: body, version: version)
            return .pingreq
        case .pingresp:
            _ = try PingRespPacket.decode(flags: flags, body: body, version: version)
            return .pingresp
        case .disconnect:
            return .disconnect(try DisconnectPacket.decode(flags: flags, body: body, version: version))
        case .auth: return .auth(try AuthPacket.decode(flags: flags, body: body, version: version))
        }
    }

    /// What ``decode(_:)`` found.
    public enum DecodeResult: Sendable, Hashable {
        /// No whole packet yet: at least this many more bytes are needed.
        case needMoreBytes(Int)
        /// A packet, and how many bytes of the buffer it took.
        case packet(Packet, byteCount: Int)
    }

    /// Decodes the packet at the start of `buffer` into an owned value, if it is all there.
    public mutating func decode(_ buffer: UnsafeRawBufferPointer) throws(MQTTDecodeError) -> DecodeResult {
        switch try readFrame(buffer) {
        case .needMoreBytes(let count): return .needMoreBytes(count)
        case .frame(let frame): return .packet(try decodePacket(frame, in: buffer), byteCount: frame.byteCount)
        }
    }
}

// MARK: - Owned stream decoder

/// A decoder that keeps the bytes itself: append what arrives, take packets out. For clients, tests and the
/// load generator; the broker's data path uses ``PacketDecoder`` over its own buffers.
public struct PacketStreamDecoder: Sendable {
    /// The frame decoder (its protocol version and limits).
    public var decoder: PacketDecoder
    private var buffer: [UInt8] = []
    private var start = 0

    /// Creates a stream decoder around `decoder`.
    public init(_ decoder: PacketDecoder = PacketDecoder()) { self.decoder = decoder }

    /// Bytes received but not yet decoded.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Appends received bytes.
    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole packet, or `nil` when more bytes are needed.
    public mutating func next() throws(MQTTDecodeError) -> Packet? {
        let start = self.start
        var decoder = self.decoder
        // Array.withUnsafeBytes rethrows untyped errors, so the typed error travels out in a Result.
        let outcome = buffer.withUnsafeBytes { bytes in
            Result { () throws(MQTTDecodeError) -> PacketDecoder.DecodeResult in
                try decoder.decode(UnsafeRawBufferPointer(rebasing: bytes[start...]))
            }
        }
        self.decoder = decoder
        switch try outcome.get() {
        case .needMoreBytes: return nil
        case .packet(let packet, let byteCount):
            self.start += byteCount
            return packet
        }
    }
}
