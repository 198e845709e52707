// MARK: - Byte vector helpers

/// The UTF-8 bytes of `string`.
public func utf8(_ string: String) -> [UInt8] { Array(string.utf8) }

/// Parses hexadecimal text such as `"30 0a 00 03 61 2f 62"` (spaces, newlines and `_` ignored).
/// - Precondition: an even number of hexadecimal digits.
public func hexBytes(_ text: String) -> [UInt8] {
    var result: [UInt8] = []
    var high: UInt8? = nil
    for character in text.utf8 {
        let nibble: UInt8
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = character - UInt8(ascii: "A") + 10
        default: continue
        }
        if let value = high {
            result.append(value << 4 | nibble)
            high = nil
        } else {
            high = nibble
        }
    }
    precondition(high == nil, "odd number of hexadecimal digits")
    return result
}

/// Lowercase hexadecimal with a space between bytes, for failure messages.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    return bytes.map { String(digits[Int($0 >> 4)]) + String(digits[Int($0 & 0xF)]) }.joined(separator: " ")
}

/// Concatenates byte vectors, for streams of several packets.
public func concatenated(_ parts: [[UInt8]]) -> [UInt8] { parts.flatMap { $0 } }
