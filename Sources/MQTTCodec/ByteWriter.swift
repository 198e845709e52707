// MARK: - Writing MQTT data types into caller-supplied memory

/// A cursor that writes the MQTT data representations into a caller-supplied buffer. The caller sizes the
/// buffer first (every encoder has an `encodedSize`), so running out of room is a programmer error and stops
/// the process.
@usableFromInline
struct ByteWriter {
    /// The memory being written.
    @usableFromInline let buffer: UnsafeMutableRawBufferPointer
    /// The index of the next byte to write.
    @usableFromInline var index: Int

    @inlinable
    init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
        self.index = 0
    }

    @inlinable
    mutating func writeByte(_ byte: UInt8) {
        precondition(index < buffer.count, "encode buffer too small")
        buffer[index] = byte
        index += 1
    }

    /// Writes a Two Byte Integer, big-endian.
    @inlinable
    mutating func writeUInt16(_ value: UInt16) {
        precondition(buffer.count - index >= 2, "encode buffer too small")
        buffer[index] = UInt8(truncatingIfNeeded: value >> 8)
        buffer[index + 1] = UInt8(truncatingIfNeeded: value)
        index += 2
    }

    /// Writes a Four Byte Integer, big-endian.
    @inlinable
    mutating func writeUInt32(_ value: UInt32) {
        precondition(buffer.count - index >= 4, "encode buffer too small")
        buffer[index] = UInt8(truncatingIfNeeded: value >> 24)
        buffer[index + 1] = UInt8(truncatingIfNeeded: value >> 16)
        buffer[index + 2] = UInt8(truncatingIfNeeded: value >> 8)
        buffer[index + 3] = UInt8(truncatingIfNeeded: value)
        index += 4
    }

    /// Writes a minimal Variable Byte Integer.
    /// - Precondition: `0 <= value <= 268,435,455`.
    @inlinable
    mutating func writeVariableByteInteger(_ value: Int) {
        precondition(value >= 0 && value <= VariableByteInteger.max, "variable byte integer out of range")
        var rest = value
        repeat {
            var byte = UInt8(rest & 0x7F)
            rest >>= 7
            if rest > 0 { byte |= 0x80 }
            writeByte(byte)
        } while rest > 0
    }

    /// Copies raw bytes.
    @inlinable
    mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        precondition(buffer.count - index >= bytes.count, "encode buffer too small")
        if bytes.count > 0, let base = buffer.baseAddress, let source = bytes.baseAddress {
            // Safe: the destination range index..<index+count was checked above; source and destination are
            // distinct buffers by the encoders' contract.
            (base + index).copyMemory(from: source, byteCount: bytes.count)
        }
        index += bytes.count
    }

    /// Copies an array's bytes.
    @inlinable
    mutating func writeBytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeBytes($0) }
    }

    /// Writes Binary Data: two-byte length then the bytes.
    /// - Precondition: at most 65,535 bytes.
    @inlinable
    mutating func writeBinary(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= 65_535, "binary data longer than 65,535 bytes")
        writeUInt16(UInt16(bytes.count))
        writeBytes(bytes)
    }

    /// Writes Binary Data from an array.
    @inlinable
    mutating func writeBinary(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeBinary($0) }
    }

    /// Writes a UTF-8 Encoded String: two-byte length then the UTF-8 bytes.
    /// - Precondition: at most 65,535 bytes.
    @inlinable
    mutating func writeString(_ string: String) {
        let utf8 = string.utf8
        precondition(utf8.count <= 65_535, "string longer than 65,535 bytes")
        writeUInt16(UInt16(utf8.count))
        precondition(buffer.count - index >= utf8.count, "encode buffer too small")
        for byte in utf8 {
            buffer[index] = byte
            index += 1
        }
    }
}

// MARK: - Variable Byte Integer sizes

/// Helpers for the Variable Byte Integer representation (MQTT 5.0 §1.5.5).
public enum VariableByteInteger {
    /// The largest value four bytes can carry: 268,435,455.
    public static let max = 268_435_455

    /// How many bytes the minimal encoding of `value` takes (1...4).
    /// - Precondition: `0 <= value <= max`.
    @inlinable
    public static func size(_ value: Int) -> Int {
        precondition(value >= 0 && value <= max, "variable byte integer out of range")
        if value < 128 { return 1 }
        if value < 16_384 { return 2 }
        if value < 2_097_152 { return 3 }
        return 4
    }
}

/// The size of a UTF-8 Encoded String field (length prefix included).
@inlinable
func stringFieldSize(_ string: String) -> Int { 2 + string.utf8.count }
