// MARK: - UTF-8 Encoded String validation (MQTT 5.0 §1.5.4, MQTT 3.1.1 §1.5.3)

/// Why a byte sequence is not an MQTT UTF-8 Encoded String.
public enum MQTTStringError: Error, Equatable, Sendable {
    /// The bytes are not well-formed UTF-8: an overlong form, a stray continuation byte, a truncated
    /// sequence, a code point above U+10FFFF, or a UTF-16 surrogate (U+D800...U+DFFF).
    /// [MQTT-1.5.4-1] The character data MUST be well-formed UTF-8 and MUST NOT include surrogates.
    case malformedUTF8
    /// [MQTT-1.5.4-2] A UTF-8 Encoded String MUST NOT include an encoding of the null character U+0000.
    case containsNull
    /// Longer than the 65,535 bytes a two-byte length prefix can describe.
    case tooLong
}

/// Validation of MQTT UTF-8 Encoded Strings over raw bytes, with no allocation and no `String`.
public enum MQTTString {
    /// The longest string a two-byte length prefix can carry.
    public static let byteCountMax = 65_535

    /// Checks that `bytes` is well-formed UTF-8 without U+0000 and without surrogates.
    ///
    /// - Complexity: O(n), one pass; ASCII bytes take a fast path.
    @inlinable
    public static func validate(_ bytes: UnsafeRawBufferPointer) -> MQTTStringError? {
        if bytes.count > byteCountMax { return .tooLong }
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                if lead == 0 { return .containsNull }
                index += 1
                continue
            }
            // Table 3-7 of the Unicode standard: well-formed byte sequences. Excluding ED A0...ED BF removes
            // the surrogates; excluding E0 80...9F and F0 80...8F removes overlong forms; F4 90... and F5+
            // lie above U+10FFFF.
            let length: Int
            var lower: UInt8 = 0x80
            var upper: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return .malformedUTF8
            }
            if index + length > count { return .malformedUTF8 }
            let second = bytes[index + 1]
            if second < lower || second > upper { return .malformedUTF8 }
            var continuation = 2
            while continuation < length {
                let byte = bytes[index + continuation]
                if byte & 0xC0 != 0x80 { return .malformedUTF8 }
                continuation += 1
            }
            index += length
        }
        return nil
    }

    /// Checks a byte array; see ``validate(_:)-(UnsafeRawBufferPointer)``.
    @inlinable
    public static func validate(_ bytes: [UInt8]) -> MQTTStringError? {
        bytes.withUnsafeBytes { validate($0) }
    }
}
