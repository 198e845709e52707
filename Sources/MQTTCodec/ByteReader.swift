// MARK: - Reading MQTT data types from borrowed bytes

/// A cursor over borrowed bytes that reads the MQTT data representations of MQTT 5.0 §1.5. Every read is
/// bounds-checked against the buffer and throws ``MQTTDecodeError/truncated(_:)`` rather than trapping.
///
/// The reader never allocates; slices it returns point into the caller's buffer and live as long as it.
@usableFromInline
struct ByteReader {
    /// The bytes being read.
    @usableFromInline let bytes: UnsafeRawBufferPointer
    /// The index of the next unread byte.
    @usableFromInline var index: Int
    /// The packet being read, named in truncation errors.
    @usableFromInline let packetType: PacketType

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer, packetType: PacketType) {
        self.bytes = bytes
        self.index = 0
        self.packetType = packetType
    }

    /// How many bytes are left.
    @inlinable
    var remaining: Int { bytes.count - index }

    /// Whether all bytes have been read.
    @inlinable
    var isAtEnd: Bool { index >= bytes.count }

    @inlinable
    mutating func readByte() throws(MQTTDecodeError) -> UInt8 {
        guard index < bytes.count else { throw .truncated(packetType) }
        let byte = bytes[index]
        index += 1
        return byte
    }

    /// Reads a Two Byte Integer (big-endian, MQTT 5.0 §1.5.2).
    @inlinable
    mutating func readUInt16() throws(MQTTDecodeError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated(packetType) }
        let value = UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
        index += 2
        return value
    }

    /// Reads a Four Byte Integer (big-endian, MQTT 5.0 §1.5.3).
    @inlinable
    mutating func readUInt32() throws(MQTTDecodeError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated(packetType) }
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 8 | UInt32(bytes[index + offset]) }
        index += 4
        return value
    }

    /// Reads a Variable Byte Integer (MQTT 5.0 §1.5.5): at most four bytes, value at most 268,435,455.
    /// Non-minimal encodings are accepted, as the spec permits receivers to.
    @inlinable
    mutating func readVariableByteInteger() throws(MQTTDecodeError) -> Int {
        var value = 0
        var shift = 0
        while true {
            let byte = try readByte()
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift >= 28 { throw .malformedVariableByteInteger }
        }
    }

    /// Reads `count` bytes as a slice of the underlying buffer.
    @inlinable
    mutating func readSlice(_ count: Int) throws(MQTTDecodeError) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw .truncated(packetType) }
        // Safe: index...index+count lies within bytes, checked above.
        let slice = UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)])
        index += count
        return slice
    }

    /// Reads the rest of the buffer.
    @inlinable
    mutating func readRest() -> UnsafeRawBufferPointer {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[index...])
        index = bytes.count
        return slice
    }

    /// Reads Binary Data: a two-byte length followed by that many bytes (MQTT 5.0 §1.5.6).
    @inlinable
    mutating func readBinary() throws(MQTTDecodeError) -> UnsafeRawBufferPointer {
        let count = try readUInt16()
        return try readSlice(Int(count))
    }

    /// Reads a UTF-8 Encoded String (MQTT 5.0 §1.5.4) and validates it in place.
    @inlinable
    mutating func readString() throws(MQTTDecodeError) -> UnsafeRawBufferPointer {
        let slice = try readBinary()
        if let error = MQTTString.validate(slice) { throw .invalidString(error) }
        return slice
    }

    /// Reads a non-zero packet identifier. [MQTT-2.2.1-3]
    @inlinable
    mutating func readPacketIdentifier() throws(MQTTDecodeError) -> PacketIdentifier {
        let value = try readUInt16()
        guard let identifier = PacketIdentifier(value) else { throw .packetIdentifierZero(packetType) }
        return identifier
    }
}

// MARK: - Owned conversions

extension UnsafeRawBufferPointer {
    /// The bytes as an array (an allocation; control plane only).
    @inlinable
    var array: [UInt8] { [UInt8](self) }

    /// The bytes, already validated as UTF-8, as a `String` (an allocation; control plane only).
    @inlinable
    var validatedString: String { String(decoding: self, as: UTF8.self) }
}
