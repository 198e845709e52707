// MARK: - Topic names and topic filters (MQTT 5.0 §4.7, MQTT 3.1.1 §4.7)

/// Why bytes are not a valid topic name or topic filter.
public enum TopicError: Error, Equatable, Sendable {
    /// [MQTT-4.7.3-1] All Topic Names and Topic Filters MUST be at least one character long.
    case empty
    /// Not a valid UTF-8 Encoded String (or longer than 65,535 bytes, [MQTT-4.7.3-3]).
    case invalidString(MQTTStringError)
    /// [MQTT-3.3.2-2] The Topic Name in the PUBLISH packet MUST NOT contain wildcard characters.
    case wildcardInTopicName
    /// [MQTT-4.7.1-1] The '#' must be the last character and must follow a separator or stand alone;
    /// [MQTT-4.7.1-2] '+' must occupy an entire level.
    case misplacedWildcard
    /// [MQTT-4.8.2-1] A ShareName MUST be at least one character long and [MQTT-4.8.2-2] MUST NOT contain
    /// '/', '+' or '#'; it MUST be followed by '/' and a Topic Filter.
    case invalidSharedSubscription
}

/// A validated topic name: the topic of a PUBLISH. Contains no wildcard. Kept as UTF-8 bytes; it is never
/// converted to `String` on the data path.
public struct TopicName: Hashable, Sendable, CustomStringConvertible {
    /// The topic's UTF-8 bytes, as on the wire.
    public let bytes: [UInt8]

    /// Validates `bytes` as a topic name.
    /// - Throws: ``TopicError`` naming the broken rule.
    @inlinable
    public init(validating bytes: [UInt8]) throws(TopicError) {
        if let error = bytes.withUnsafeBytes({ TopicName.validate($0) }) { throw error }
        self.bytes = bytes
    }

    /// Checks borrowed bytes as a topic name in place, without allocating (the data path validates a
    /// received PUBLISH topic this way before copying it once).
    /// - Returns: the broken rule, or `nil` when `bytes` is a valid topic name.
    /// - Complexity: O(n).
    @inlinable
    public static func validate(_ bytes: UnsafeRawBufferPointer) -> TopicError? {
        // [MQTT-4.7.3-1] At least one character long.
        if bytes.isEmpty { return .empty }
        if bytes.count > MQTTString.byteCountMax { return .invalidString(.tooLong) }
        // Fast path, eight bytes at a time (SWAR): a word with no byte >= 0x80, no 0x00, no '+' and no '#' is
        // valid as it stands. Anything else falls back to the byte-wise checks below. `hasZeroByte(x)` is
        // the classic (x - 0x01..01) & ~x & 0x80..80 test; `x ^ broadcast(c)` turns bytes equal to c into 0.
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZeroByte(_ word: UInt64) -> Bool { (word &- ones) & ~word & highs != 0 }
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            // Safe: index + 8 <= count, and loadUnaligned has no alignment requirement.
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if word & highs != 0 || hasZeroByte(word) || hasZeroByte(word ^ (ones &* 0x2B))
                || hasZeroByte(word ^ (ones &* 0x23))
            {
                break
            }
            index += 8
        }
        if index == count { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[index...])
        // Everything before `index` is ASCII without NUL, so validating the rest alone is exact: a UTF-8
        // sequence cannot start inside the ASCII prefix.
        if let error = MQTTString.validate(rest) { return .invalidString(error) }
        // [MQTT-3.3.2-2] No wildcard characters in a Topic Name.
        for byte in rest where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") {
            return .wildcardInTopicName
        }
        return nil
    }

    /// Validates a Swift string as a topic name (control plane and tests; the data path uses bytes).
    public init(validating string: String) throws(TopicError) {
        try self.init(validating: Array(string.utf8))
    }

    /// Wraps bytes already known to be a valid topic name. The caller guarantees validity.
    @inlinable
    public init(uncheckedBytes bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Whether the topic starts with `$` ([MQTT-4.7.2-1]: such topics are not matched by a filter that
    /// starts with a wildcard).
    @inlinable
    public var isDollarTopic: Bool { bytes.first == UInt8(ascii: "$") }

    /// The bytes as text (logs and tests; never on the data path).
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

/// A validated topic filter: what a SUBSCRIBE or UNSUBSCRIBE names. It may contain wildcards and may be a
/// shared subscription `$share/{ShareName}/{filter}`.
public struct TopicFilter: Hashable, Sendable, CustomStringConvertible {
    /// The filter's bytes exactly as received, including any `$share/{group}/` prefix.
    public let bytes: [UInt8]
    /// For a shared subscription, the ShareName; otherwise `nil`.
    public let shareName: [UInt8]?
    /// The byte offset in ``bytes`` where the matching filter starts (after `$share/{group}/`).
    public let filterStart: Int
    /// Whether the matching filter contains `+` or `#`.
    public let hasWildcards: Bool

    /// Validates `bytes` as a topic filter.
    /// - Parameter allowShared: whether `$share/...` is parsed as a shared subscription (MQTT 5.0) or
    ///   taken as an ordinary filter (MQTT 3.1.1, where `$share` has no meaning).
    /// - Throws: ``TopicError`` naming the broken rule.
    @inlinable
    public init(validating bytes: [UInt8], allowShared: Bool = true) throws(TopicError) {
        if bytes.isEmpty { throw .empty }
        if let error = MQTTString.validate(bytes) { throw .invalidString(error) }
        var start = 0
        var shareName: [UInt8]? = nil
        let prefix: [UInt8] = Array("$share/".utf8)
        if allowShared && bytes.count >= prefix.count && bytes.starts(with: prefix) {
            var index = prefix.count
            while index < bytes.count && bytes[index] != UInt8(ascii: "/") {
                let byte = bytes[index]
                // [MQTT-4.8.2-2] The ShareName MUST NOT contain the characters "/", "+" or "#".
                if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") { throw .invalidSharedSubscription }
                index += 1
            }
            // [MQTT-4.8.2-1] A ShareName MUST be at least one character long, followed by '/' and a filter.
            if index == prefix.count || index + 1 >= bytes.count { throw .invalidSharedSubscription }
            shareName = Array(bytes[prefix.count..<index])
            start = index + 1
        }
        var wildcards = false
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "#") {
                // [MQTT-4.7.1-1] '#' is last and either alone or after a '/'.
                if index != bytes.count - 1 { throw .misplacedWildcard }
                if index != start && bytes[index - 1] != UInt8(ascii: "/") { throw .misplacedWildcard }
                wildcards = true
            } else if byte == UInt8(ascii: "+") {
                // [MQTT-4.7.1-2] '+' occupies an entire level.
                if index != start && bytes[index - 1] != UInt8(ascii: "/") { throw .misplacedWildcard }
                if index != bytes.count - 1 && bytes[index + 1] != UInt8(ascii: "/") { throw .misplacedWildcard }
                wildcards = true
            }
            index += 1
        }
        self.bytes = bytes
        self.shareName = shareName
        self.filterStart = start
        self.hasWildcards = wildcards
    }

    /// Validates a Swift string as a topic filter (control plane and tests).
    public init(validating string: String, allowShared: Bool = true) throws(TopicError) {
        try self.init(validating: Array(string.utf8), allowShared: allowShared)
    }

    /// Whether this is a shared subscription.
    @inlinable
    public var isShared: Bool { shareName != nil }

    /// The filter used for matching: ``bytes`` without the `$share/{group}/` prefix.
    @inlinable
    public var matchingBytes: ArraySlice<UInt8> { bytes[filterStart...] }

    /// Whether `topic` matches this filter (MQTT 5.0 §4.7). This is the straightforward level-by-level
    /// matcher; the router's trie is checked against it.
    public func matches(_ topic: TopicName) -> Bool {
        let filter = matchingBytes
        // [MQTT-4.7.2-1] A filter starting with a wildcard does not match a topic starting with '$'.
        if topic.isDollarTopic, let first = filter.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "#") {
            return false
        }
        var filterLevels = filter.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)[...]
        var topicLevels = topic.bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)[...]
        while let level = filterLevels.popFirst() {
            if level.count == 1 && level.first == UInt8(ascii: "#") { return true }
            guard let topicLevel = topicLevels.popFirst() else { return false }
            if level.count == 1 && level.first == UInt8(ascii: "+") { continue }
            if !level.elementsEqual(topicLevel) { return false }
        }
        return topicLevels.isEmpty
    }

    /// The bytes as text (logs and tests; never on the data path).
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}
