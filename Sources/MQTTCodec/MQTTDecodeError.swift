// MARK: - Decode errors

/// Why received bytes are not an acceptable MQTT packet. Every case maps to the MQTT 5.0 reason code a
/// broker sends before closing (``reasonCode``); in 3.1.x the connection is closed without a reason
/// (``disconnectReasonCode(for:)`` answers `nil`), except for CONNECT failures that 3.1.x reports in CONNACK
/// (``connackReturnCodeV3``).
public enum MQTTDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    // MARK: Framing

    /// A Variable Byte Integer ran past four bytes (MQTT 5.0 §1.5.5).
    case malformedVariableByteInteger
    /// The fixed header announces a packet larger than the maximum packet size; refused before the body
    /// arrives. `byteCount` is the whole packet's announced size.
    case packetTooLarge(byteCount: Int, maximum: Int)
    /// Packet type 0 (reserved), or 15 (AUTH) on a 3.1.x connection.
    case reservedPacketType(UInt8)
    /// [MQTT-2.1.3-1] Reserved fixed-header flag bits differ from the values the spec lists.
    case invalidFixedHeaderFlags(PacketType, flags: UInt8)
    /// [MQTT-3.2.2-1] (5.0) Reserved bits 7-1 of the CONNACK Connect Acknowledge Flags are not 0.
    case connackFlagsInvalid(UInt8)
    /// [MQTT-3.1.0-1] The first packet on a connection MUST be CONNECT; CONNECT is only accepted first.
    case expectedConnect(PacketType)
    /// A field runs past the end of the packet (the remaining length is too short for it).
    case truncated(PacketType)
    /// Bytes are left over after the last field of a packet with no payload, or the remaining length is
    /// wrong for the packet type.
    case invalidRemainingLength(PacketType)

    // MARK: Data types

    /// A UTF-8 Encoded String is not valid ([MQTT-1.5.4-1], [MQTT-1.5.4-2]).
    case invalidString(MQTTStringError)

    // MARK: CONNECT

    /// [MQTT-3.1.2-1] The protocol name is neither `MQTT` nor `MQIsdp`.
    case invalidProtocolName
    /// [MQTT-3.1.2-2] The protocol level is not supported, or does not go with the protocol name.
    case unsupportedProtocolVersion(UInt8)
    /// [MQTT-3.1.2-3] The reserved flag in the CONNECT flags byte is not 0.
    case connectReservedFlagSet
    /// [MQTT-3.1.2-14] (3.1.1) / [MQTT-3.1.2-12] (5.0) Will QoS is 3.
    case willQoSInvalid
    /// [MQTT-3.1.2-13] / [MQTT-3.1.2-15] (3.1.1): with the Will Flag 0, Will QoS and Will Retain MUST be 0.
    case willFieldsWithoutWillFlag
    /// [MQTT-3.1.2-22] (3.1.1) If the User Name Flag is set to 0, the Password Flag MUST be set to 0.
    case passwordWithoutUserName
    /// The client identifier is refused: [MQTT-3.1.3-8] (3.1.1) empty with Clean Session 0, or empty in 3.1.
    case clientIdentifierInvalid

    // MARK: PUBLISH

    /// [MQTT-3.3.1-4] A PUBLISH packet MUST NOT have both QoS bits set to 1.
    case publishQoSInvalid
    /// [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
    case duplicateFlagWithQoS0
    /// The topic name is not valid: it contains a wildcard ([MQTT-3.3.2-2]) or is empty without a Topic Alias.
    case topicNameInvalid(TopicError)
    /// [MQTT-3.3.2-8] A Topic Alias of 0 is not permitted.
    case topicAliasInvalid
    /// The payload is not UTF-8 although the Payload Format Indicator says it is (checked only on request).
    case payloadFormatInvalid

    // MARK: Packet identifiers

    /// [MQTT-2.2.1-3] A packet identifier MUST be non-zero.
    case packetIdentifierZero(PacketType)

    // MARK: SUBSCRIBE / UNSUBSCRIBE

    /// [MQTT-3.8.3-3] SUBSCRIBE and [MQTT-3.10.3-2] UNSUBSCRIBE MUST contain at least one topic filter.
    case noTopicFilters(PacketType)
    /// A topic filter is not valid ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.8.2-1], [MQTT-4.8.2-2]).
    case topicFilterInvalid(TopicError)
    /// [MQTT-3.8.3-5] (5.0) / [MQTT-3-8.3-4] (3.1.1) Reserved bits in the subscription options are non-zero.
    case subscriptionOptionsReservedBits
    /// The requested QoS in the subscription options is 3.
    case subscriptionQoSInvalid
    /// The Retain Handling option is 3 (MQTT 5.0 §3.8.3.1).
    case retainHandlingInvalid
    /// [MQTT-3.8.3-4] It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription.
    case noLocalOnSharedSubscription

    // MARK: Reason codes and properties

    /// A reason code or return code that the packet type may not carry.
    case invalidReasonCode(PacketType, UInt8)
    /// A property identifier the spec does not define.
    case unknownProperty(UInt8)
    /// A property that the packet (or the Will properties) may not carry (MQTT 5.0 Table 2-4).
    case propertyNotAllowed(PropertyIdentifier, PacketType)
    /// A property that appears twice although the spec allows it only once.
    case duplicateProperty(PropertyIdentifier)
    /// A property whose value is out of its range (for example Receive Maximum 0).
    case invalidPropertyValue(PropertyIdentifier)
    /// The property length does not match the properties that follow.
    case invalidPropertyLength

    // MARK: - Mapping to reason codes

    /// The MQTT 5.0 reason code a broker sends (in CONNACK or DISCONNECT) for this error.
    public var reasonCode: ReasonCode {
        switch self {
        case .packetTooLarge: .packetTooLarge
        case .expectedConnect, .duplicateProperty, .invalidPropertyValue, .propertyNotAllowed,
            .packetIdentifierZero, .noTopicFilters, .retainHandlingInvalid, .noLocalOnSharedSubscription,
            .subscriptionQoSInvalid:
            .protocolError
        case .invalidProtocolName, .unsupportedProtocolVersion: .unsupportedProtocolVersion
        case .clientIdentifierInvalid: .clientIdentifierNotValid
        case .topicNameInvalid: .topicNameInvalid
        case .topicFilterInvalid: .topicFilterInvalid
        case .topicAliasInvalid: .topicAliasInvalid
        case .payloadFormatInvalid: .payloadFormatInvalid
        case .malformedVariableByteInteger, .reservedPacketType, .invalidFixedHeaderFlags, .truncated,
            .invalidRemainingLength, .invalidString, .connackFlagsInvalid, .connectReservedFlagSet, .willQoSInvalid,
            .willFieldsWithoutWillFlag, .passwordWithoutUserName, .publishQoSInvalid, .duplicateFlagWithQoS0,
            .subscriptionOptionsReservedBits, .invalidReasonCode, .unknownProperty, .invalidPropertyLength:
            .malformedPacket
        }
    }

    /// The reason code to put in a DISCONNECT for a connection speaking `version`, or `nil` for 3.1.x,
    /// where the broker closes the connection without a reason.
    public func disconnectReasonCode(for version: ProtocolVersion?) -> ReasonCode? {
        version == .v5 ? reasonCode : nil
    }

    /// For a failed CONNECT on a 3.1.x connection, the CONNACK return code the spec asks for before the
    /// close, or `nil` when the connection is closed without CONNACK:
    /// [MQTT-3.1.2-2] unacceptable protocol level → 0x01; [MQTT-3.1.3-9] client identifier rejected → 0x02.
    public var connackReturnCodeV3: UInt8? {
        switch self {
        case .unsupportedProtocolVersion: 0x01
        case .clientIdentifierInvalid: 0x02
        default: nil
        }
    }

    /// A one-line explanation for logs.
    public var description: String {
        switch self {
        case .malformedVariableByteInteger: "variable byte integer longer than 4 bytes"
        case .packetTooLarge(let count, let maximum): "packet of \(count) bytes exceeds maximum \(maximum)"
        case .reservedPacketType(let type): "reserved packet type \(type)"
        case .invalidFixedHeaderFlags(let type, let flags): "[MQTT-2.1.3-1] \(type) with flags \(flags)"
        case .connackFlagsInvalid(let flags): "[MQTT-3.2.2-1] CONNACK flags \(flags)"
        case .expectedConnect(let type): "[MQTT-3.1.0-1] \(type) where CONNECT was expected"
        case .truncated(let type): "\(type) truncated"
        case .invalidRemainingLength(let type): "\(type) with invalid remaining length"
        case .invalidString(let error): "invalid UTF-8 string: \(error)"
        case .invalidProtocolName: "[MQTT-3.1.2-1] invalid protocol name"
        case .unsupportedProtocolVersion(let level): "[MQTT-3.1.2-2] unsupported protocol level \(level)"
        case .connectReservedFlagSet: "[MQTT-3.1.2-3] CONNECT reserved flag set"
        case .willQoSInvalid: "will QoS 3"
        case .willFieldsWithoutWillFlag: "will QoS or retain without will flag"
        case .passwordWithoutUserName: "[MQTT-3.1.2-22] password without user name"
        case .clientIdentifierInvalid: "client identifier not valid"
        case .publishQoSInvalid: "[MQTT-3.3.1-4] PUBLISH with QoS 3"
        case .duplicateFlagWithQoS0: "[MQTT-3.3.1-2] DUP set on QoS 0 PUBLISH"
        case .topicNameInvalid(let error): "topic name invalid: \(error)"
        case .topicAliasInvalid: "[MQTT-3.3.2-8] topic alias 0"
        case .payloadFormatInvalid: "payload is not UTF-8"
        case .packetIdentifierZero(let type): "[MQTT-2.2.1-3] \(type) with packet identifier 0"
        case .noTopicFilters(let type): "\(type) without topic filters"
        case .topicFilterInvalid(let error): "topic filter invalid: \(error)"
        case .subscriptionOptionsReservedBits: "subscription options reserved bits set"
        case .subscriptionQoSInvalid: "subscription QoS 3"
        case .retainHandlingInvalid: "retain handling 3"
        case .noLocalOnSharedSubscription: "[MQTT-3.8.3-4] no local on shared subscription"
        case .invalidReasonCode(let type, let code): "\(type) with invalid reason code \(code)"
        case .unknownProperty(let identifier): "unknown property \(identifier)"
        case .propertyNotAllowed(let identifier, let type): "property \(identifier) not allowed in \(type)"
        case .duplicateProperty(let identifier): "duplicate property \(identifier)"
        case .invalidPropertyValue(let identifier): "invalid value for property \(identifier)"
        case .invalidPropertyLength: "property length mismatch"
        }
    }
}
