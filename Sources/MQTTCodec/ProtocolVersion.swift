// MARK: - Protocol version

/// The protocol level a connection speaks, as carried in the CONNECT packet's Protocol Level byte.
///
/// MQTT 3.1 uses the protocol name `MQIsdp` with level 3; MQTT 3.1.1 and 5.0 use `MQTT` with levels 4 and 5.
public enum ProtocolVersion: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3).
    case v3_1 = 3
    /// MQTT 3.1.1 (protocol name `MQTT`, level 4).
    case v3_1_1 = 4
    /// MQTT 5.0 (protocol name `MQTT`, level 5).
    case v5 = 5

    /// Whether this version carries properties and reason codes (MQTT 5.0).
    @inlinable
    public var hasProperties: Bool { self == .v5 }

    /// The protocol name this version carries in CONNECT.
    public var protocolName: String { self == .v3_1 ? "MQIsdp" : "MQTT" }

    /// The version as people write it: "3.1", "3.1.1", "5.0".
    public var description: String {
        switch self {
        case .v3_1: "3.1"
        case .v3_1_1: "3.1.1"
        case .v5: "5.0"
        }
    }
}

// MARK: - Packet type

/// The MQTT Control Packet type: the high nibble of the fixed header's first byte (MQTT 5.0 §2.1.2).
public enum PacketType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Client to server: connection request.
    case connect = 1
    /// Server to client: connect acknowledgment.
    case connack = 2
    /// Both directions: publish message.
    case publish = 3
    /// Both directions: QoS 1 publish acknowledgment.
    case puback = 4
    /// Both directions: QoS 2 publish received (part 1).
    case pubrec = 5
    /// Both directions: QoS 2 publish release (part 2).
    case pubrel = 6
    /// Both directions: QoS 2 publish complete (part 3).
    case pubcomp = 7
    /// Client to server: subscribe request.
    case subscribe = 8
    /// Server to client: subscribe acknowledgment.
    case suback = 9
    /// Client to server: unsubscribe request.
    case unsubscribe = 10
    /// Server to client: unsubscribe acknowledgment.
    case unsuback = 11
    /// Client to server: ping request.
    case pingreq = 12
    /// Server to client: ping response.
    case pingresp = 13
    /// Both directions: disconnect notification.
    case disconnect = 14
    /// Both directions: authentication exchange (MQTT 5.0 only; reserved in 3.1.1).
    case auth = 15

    /// The fixed-header flag nibble this packet type must carry, or `nil` for PUBLISH whose flags vary.
    /// [MQTT-2.1.3-1] Where a flag bit is marked as "Reserved", it MUST be set to the value listed.
    @inlinable
    public var requiredFlags: UInt8? {
        switch self {
        case .publish: nil
        case .pubrel, .subscribe, .unsubscribe: 0b0010
        default: 0
        }
    }

    /// The name the spec gives the packet, e.g. "PUBLISH".
    public var description: String {
        switch self {
        case .connect: "CONNECT"
        case .connack: "CONNACK"
        case .publish: "PUBLISH"
        case .puback: "PUBACK"
        case .pubrec: "PUBREC"
        case .pubrel: "PUBREL"
        case .pubcomp: "PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .suback: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsuback: "UNSUBACK"
        case .pingreq: "PINGREQ"
        case .pingresp: "PINGRESP"
        case .disconnect: "DISCONNECT"
        case .auth: "AUTH"
        }
    }
}

// MARK: - QoS

/// Quality of service of a message delivery (MQTT 5.0 §4.3).
public enum QoS: UInt8, Sendable, Hashable, CaseIterable, Comparable {
    /// At most once delivery.
    case atMostOnce = 0
    /// At least once delivery.
    case atLeastOnce = 1
    /// Exactly once delivery.
    case exactlyOnce = 2

    /// Orders by level, so that `min(granted, requested)` downgrades.
    @inlinable
    public static func < (lhs: QoS, rhs: QoS) -> Bool { lhs.rawValue < rhs.rawValue }
}

// MARK: - Packet identifier

/// A non-zero packet identifier (MQTT 5.0 §2.2.1).
///
/// [MQTT-2.2.1-3] Each time a Client sends a new SUBSCRIBE, UNSUBSCRIBE, or PUBLISH (where QoS > 0) packet
/// it MUST assign it a non-zero Packet Identifier. The type makes zero unrepresentable.
public struct PacketIdentifier: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The identifier's value, never 0.
    public let rawValue: UInt16

    /// Wraps `rawValue`, or answers `nil` when it is zero.
    @inlinable
    public init?(_ rawValue: UInt16) {
        if rawValue == 0 { return nil }
        self.rawValue = rawValue
    }

    /// Wraps a value the caller knows to be non-zero.
    /// - Precondition: `rawValue != 0`.
    @inlinable
    public init(nonZero rawValue: UInt16) {
        precondition(rawValue != 0, "a packet identifier is never zero")
        self.rawValue = rawValue
    }

    /// The identifier after this one, skipping zero on wrap-around.
    @inlinable
    public var next: PacketIdentifier {
        PacketIdentifier(nonZero: rawValue == UInt16.max ? 1 : rawValue + 1)
    }

    /// Orders by value.
    @inlinable
    public static func < (lhs: PacketIdentifier, rhs: PacketIdentifier) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The value in decimal.
    public var description: String { String(rawValue) }
}

// MARK: - Subscription options

/// Whether the server sends retained messages when a subscription is made (MQTT 5.0 §3.8.3.1).
public enum RetainHandling: UInt8, Sendable, Hashable, CaseIterable {
    /// Send retained messages at the time of the subscribe.
    case sendOnSubscribe = 0
    /// Send retained messages only if the subscription does not currently exist.
    case sendOnNewSubscribe = 1
    /// Do not send retained messages at the time of the subscribe.
    case doNotSend = 2
}

/// The options byte that follows each topic filter in SUBSCRIBE (MQTT 5.0 §3.8.3.1). In 3.1.x only the
/// QoS bits exist and the other bits are reserved.
///
/// ```
///  bit   7   6   5   4   3   2   1   0
///       reserved  retain    RAP  NL   QoS
///                 handling
/// ```
public struct SubscriptionOptions: Sendable, Hashable {
    /// The maximum QoS the subscriber accepts.
    public var qos: QoS
    /// No Local: do not forward messages published by this same client (5.0 only).
    public var noLocal: Bool
    /// Retain As Published: keep the RETAIN flag of forwarded messages as published (5.0 only).
    public var retainAsPublished: Bool
    /// When retained messages are sent (5.0 only).
    public var retainHandling: RetainHandling

    /// Creates options; the defaults are those of an MQTT 3.1.1 subscription.
    public init(
        qos: QoS, noLocal: Bool = false, retainAsPublished: Bool = false,
        retainHandling: RetainHandling = .sendOnSubscribe
    ) {
        self.qos = qos
        self.noLocal = noLocal
        self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling
    }

    /// The options byte as on the wire. For 3.1.x only the QoS bits are written.
    @inlinable
    public func byte(version: ProtocolVersion) -> UInt8 {
        var byte = qos.rawValue
        if version == .v5 {
            if noLocal { byte |= 0b0000_0100 }
            if retainAsPublished { byte |= 0b0000_1000 }
            byte |= retainHandling.rawValue << 4
        }
        return byte
    }

    /// Parses an options byte.
    /// - Throws: ``MQTTDecodeError`` when reserved bits are set or a field holds a reserved value.
    @inlinable
    public init(byte: UInt8, version: ProtocolVersion) throws(MQTTDecodeError) {
        if version == .v5 {
            // [MQTT-3.8.3-5] The Server MUST treat a SUBSCRIBE packet as malformed if any of Reserved bits in
            // the Subscription Options is non-zero.
            if byte & 0b1100_0000 != 0 { throw .subscriptionOptionsReservedBits }
        } else {
            // [MQTT-3-8.3-4] (3.1.1) The Server MUST treat a SUBSCRIBE packet as malformed if any of the
            // Reserved bits in the payload are non-zero.
            if byte & 0b1111_1100 != 0 { throw .subscriptionOptionsReservedBits }
        }
        // The QoS field MUST NOT be 3 (MQTT 5.0 §3.8.3.1: "It is a Protocol Error if the Maximum QoS field has
        // the value 3"; 3.1.1 [MQTT-3-8.3-4] malformed).
        guard let qos = QoS(rawValue: byte & 0b11) else { throw .subscriptionQoSInvalid }
        // MQTT 5.0 §3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
        guard let handling = RetainHandling(rawValue: (byte >> 4) & 0b11) else { throw .retainHandlingInvalid }
        self.qos = qos
        self.noLocal = byte & 0b0000_0100 != 0
        self.retainAsPublished = byte & 0b0000_1000 != 0
        self.retainHandling = handling
    }
}
