import MQTTCodec

// MARK: - The shared immutable message

/// One application message as the broker routes it: immutable and shared by reference, so fan-out to many
/// subscribers and shards copies nothing. Created once per received PUBLISH (or will), then only read.
///
/// The properties kept are those passed through to subscribers as-is (Payload Format Indicator, Content Type,
/// Response Topic, Correlation Data, User Properties), already encoded; Message Expiry is kept as an absolute
/// deadline and re-encoded per delivery with the time left, Topic Alias and Subscription Identifier are
/// per-connection and never kept.
public final class SharedPublish: Sendable {
    /// The topic.
    public let topic: TopicName
    /// The application payload.
    public let payload: [UInt8]
    /// The QoS it was published with.
    public let qos: QoS
    /// The RETAIN flag it was published with.
    public let retain: Bool
    /// Encoded 5.0 properties to pass through, without length prefix (empty from a 3.1.x publisher).
    public let properties: [UInt8]
    /// Absolute message expiry in milliseconds (shard clock), or `nil` when the message does not expire.
    public let expiryAtMillis: UInt64?
    /// The publishing client, for No Local (`nil` for messages with no client origin).
    public let originClientIdentifier: String?

    /// Creates a message.
    public init(
        topic: TopicName, payload: [UInt8], qos: QoS, retain: Bool, properties: [UInt8] = [],
        expiryAtMillis: UInt64? = nil, originClientIdentifier: String? = nil
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.expiryAtMillis = expiryAtMillis
        self.originClientIdentifier = originClientIdentifier
    }

    /// Whether the message has expired at `nowMillis`.
    @inlinable
    public func isExpired(nowMillis: UInt64) -> Bool {
        guard let expiryAtMillis else { return false }
        return nowMillis >= expiryAtMillis
    }

    /// The Message Expiry Interval to send at `nowMillis`: the seconds left, rounded up ([MQTT-3.3.2-6] the
    /// interval sent is the received one minus the time the message waited in the server).
    @inlinable
    public func remainingExpirySeconds(nowMillis: UInt64) -> UInt32? {
        guard let expiryAtMillis else { return nil }
        if nowMillis >= expiryAtMillis { return 0 }
        let left = (expiryAtMillis - nowMillis + 999) / 1000
        return UInt32(clamping: left)
    }

    /// The bytes the message takes, for retained-store accounting.
    public var byteCount: Int { topic.bytes.count + payload.count + properties.count }
}

// MARK: - Subscription identifiers of one delivery

/// The subscription identifiers one delivery carries (5.0: one per matching subscription that has one,
/// [MQTT-3.3.4-3]). The first is inline, so the common case of zero or one identifier allocates nothing.
public struct SubscriptionIdentifiers: Sendable, Hashable {
    /// The first identifier, if any.
    public var first: Int?
    /// Further identifiers (overlapping subscriptions).
    public var rest: [Int]

    /// No identifiers.
    @inlinable
    public init() {
        first = nil
        rest = []
    }

    /// One identifier, or none.
    @inlinable
    public init(_ identifier: Int?) {
        first = identifier
        rest = []
    }

    /// Adds an identifier.
    @inlinable
    public mutating func append(_ identifier: Int) {
        if first == nil { first = identifier } else { rest.append(identifier) }
    }

    /// Whether there are none.
    @inlinable
    public var isEmpty: Bool { first == nil }

    /// All identifiers in order (allocates; tests).
    public var all: [Int] { (first.map { [$0] } ?? []) + rest }

    /// The property bytes they take in a PUBLISH.
    @inlinable
    public var encodedByteCount: Int {
        guard let first else { return 0 }
        var total = 1 + VariableByteInteger.size(first)
        for identifier in rest { total += 1 + VariableByteInteger.size(identifier) }
        return total
    }
}

// MARK: - Codec gap: PUBLISH with per-subscriber properties

// Codec gap: the codec's raw-pieces encoder (`PublishEncoding.encode`) takes one property blob; a broker adds per
// subscriber a Message Expiry Interval (time left) and Subscription Identifiers around the shared properties.
// This extension writes such a PUBLISH in one pass, with no allocation. The lead may move it into MQTTCodec.
extension PublishEncoding {
    /// The property bytes (without length prefix) of a delivery; `topicAlias` 0 means none.
    @inlinable
    static func deliveryPropertiesByteCount(
        messageExpirySeconds: UInt32?, sharedPropertiesByteCount: Int, subscriptionIdentifiers: SubscriptionIdentifiers,
        topicAlias: UInt16 = 0
    ) -> Int {
        (messageExpirySeconds == nil ? 0 : 5) + (topicAlias == 0 ? 0 : 3) + sharedPropertiesByteCount
            + subscriptionIdentifiers.encodedByteCount
    }

    /// The whole size of a delivery PUBLISH.
    @inlinable
    static func deliverySize(
        version: ProtocolVersion, qos: QoS, topicByteCount: Int, propertiesByteCount: Int, payloadByteCount: Int
    ) -> Int {
        encodedSize(
            version: version, qos: qos, topicByteCount: topicByteCount, propertiesByteCount: propertiesByteCount,
            payloadByteCount: payloadByteCount
        )
    }

    /// Writes a delivery PUBLISH into `buffer`.
    ///
    /// A non-zero `topicAlias` (5.0) adds a Topic Alias property; with `omitsTopic` the topic is sent empty, the
    /// client already knowing the alias (MQTT 5.0 §3.3.2.3.4).
    /// - Precondition: `buffer.count` is the size from ``deliverySize(version:qos:topicByteCount:propertiesByteCount:payloadByteCount:)``
    ///   with the same arguments (topic byte count 0 when `omitsTopic`); `packetIdentifier` is non-zero exactly
    ///   when `qos` > 0; `topicAlias` is 0 unless `version` is 5.0, and non-zero when `omitsTopic`.
    static func encodeDelivery(
        into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion, dup: Bool, qos: QoS, retain: Bool,
        packetIdentifier: UInt16, message: SharedPublish, messageExpirySeconds: UInt32?,
        subscriptionIdentifiers: SubscriptionIdentifiers, topicAlias: UInt16 = 0, omitsTopic: Bool = false
    ) -> Int {
        precondition((qos == .atMostOnce) == (packetIdentifier == 0), "packet identifier iff QoS > 0")
        precondition(topicAlias == 0 || version == .v5, "topic aliases exist in 5.0 only")
        precondition(!omitsTopic || topicAlias != 0, "an empty topic needs an alias")
        let propertiesCount = deliveryPropertiesByteCount(
            messageExpirySeconds: messageExpirySeconds, sharedPropertiesByteCount: message.properties.count,
            subscriptionIdentifiers: subscriptionIdentifiers, topicAlias: topicAlias
        )
        let topicByteCount = omitsTopic ? 0 : message.topic.bytes.count
        let remaining = remainingLength(
            topicByteCount: topicByteCount, qos: qos,
            propertiesByteCount: version == .v5 ? propertiesCount : nil, payloadByteCount: message.payload.count
        )
        var writer = RawWriter(buffer)
        writer.byte(PacketType.publish.rawValue << 4 | flags(dup: dup, qos: qos, retain: retain))
        writer.variableByteInteger(remaining)
        writer.uint16(UInt16(topicByteCount))
        if !omitsTopic { writer.bytes(message.topic.bytes) }
        if qos != .atMostOnce { writer.uint16(packetIdentifier) }
        if version == .v5 {
            writer.variableByteInteger(propertiesCount)
            if let messageExpirySeconds {
                writer.byte(PropertyIdentifier.messageExpiryInterval.rawValue)
                writer.uint32(messageExpirySeconds)
            }
            if topicAlias != 0 {
                writer.byte(PropertyIdentifier.topicAlias.rawValue)
                writer.uint16(topicAlias)
            }
            writer.bytes(message.properties)
            if let first = subscriptionIdentifiers.first {
                writer.byte(PropertyIdentifier.subscriptionIdentifier.rawValue)
                writer.variableByteInteger(first)
                for identifier in subscriptionIdentifiers.rest {
                    writer.byte(PropertyIdentifier.subscriptionIdentifier.rawValue)
                    writer.variableByteInteger(identifier)
                }
            }
        }
        writer.bytes(message.payload)
        return writer.index
    }
}

/// A bounds-checked cursor over caller memory (the codec's `ByteWriter` is internal to MQTTCodec).
struct RawWriter {
    let buffer: UnsafeMutableRawBufferPointer
    var index = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func byte(_ value: UInt8) {
        precondition(index < buffer.count, "write past the end of the buffer")
        buffer[index] = value
        index += 1
    }

    mutating func uint16(_ value: UInt16) {
        byte(UInt8(value >> 8))
        byte(UInt8(truncatingIfNeeded: value))
    }

    mutating func uint32(_ value: UInt32) {
        byte(UInt8(truncatingIfNeeded: value >> 24))
        byte(UInt8(truncatingIfNeeded: value >> 16))
        byte(UInt8(truncatingIfNeeded: value >> 8))
        byte(UInt8(truncatingIfNeeded: value))
    }

    mutating func variableByteInteger(_ value: Int) {
        precondition(value >= 0 && value <= VariableByteInteger.max, "variable byte integer out of range")
        var rest = value
        repeat {
            var digit = UInt8(rest & 0x7F)
            rest >>= 7
            if rest > 0 { digit |= 0x80 }
            byte(digit)
        } while rest > 0
    }

    mutating func bytes(_ source: [UInt8]) {
        precondition(index + source.count <= buffer.count, "write past the end of the buffer")
        source.withUnsafeBytes { raw in
            // Safe: bounds checked above; the regions cannot overlap (the source is a Swift array).
            if raw.count > 0 { (buffer.baseAddress! + index).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        }
        index += source.count
    }
}

// MARK: - Codec gap: pass-through properties of a received PUBLISH

// Codec gap: `PropertyScanner` is internal to MQTTCodec; the router needs the PUBLISH properties minus Topic Alias,
// Message Expiry Interval and Subscription Identifier (per-hop), to forward the rest as-is.
extension PublishView {
    /// The properties to pass through to subscribers: every property except Topic Alias, Message Expiry Interval
    /// and Subscription Identifier, in wire order (allocates one array, or none when there are no properties).
    /// The bytes were validated when the view was decoded.
    func passthroughProperties() -> [UInt8] {
        if properties.isEmpty { return [] }
        if topicAlias == nil && messageExpiryInterval == nil && !hasSubscriptionIdentifier {
            return Array(properties)
        }
        var result: [UInt8] = []
        result.reserveCapacity(properties.count)
        var index = 0
        let bytes = properties
        while index < bytes.count {
            let start = index
            let code = bytes[index]
            index += 1
            guard let identifier = PropertyIdentifier(rawValue: code) else {
                preconditionFailure("validated properties hold an unknown identifier")
            }
            switch identifier.valueType {
            case .byte: index += 1
            case .twoByteInteger: index += 2
            case .fourByteInteger: index += 4
            case .variableByteInteger:
                while bytes[index] & 0x80 != 0 { index += 1 }
                index += 1
            case .string, .binary:
                index += 2 + (Int(bytes[index]) << 8 | Int(bytes[index + 1]))
            case .stringPair:
                index += 2 + (Int(bytes[index]) << 8 | Int(bytes[index + 1]))
                index += 2 + (Int(bytes[index]) << 8 | Int(bytes[index + 1]))
            }
            switch identifier {
            case .topicAlias, .messageExpiryInterval, .subscriptionIdentifier: continue
            default: result.append(contentsOf: bytes[start..<index])
            }
        }
        return result
    }
}

extension Properties {
    /// The properties encoded without length prefix (control plane: wills).
    func encodedBytes() -> [UInt8] {
        let count = encodedByteCount
        if count == 0 { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = encode(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }
}
