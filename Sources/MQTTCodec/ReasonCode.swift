// MARK: - Reason codes (MQTT 5.0 §2.4)

/// An MQTT 5.0 reason code: one byte whose meaning depends on the packet carrying it.
///
/// Several names share a value in different packets (0x00 is Success, Normal disconnection and Granted
/// QoS 0), so this is a `RawRepresentable` struct with one static member per name rather than an enum with
/// one case per name. ``isValid(in:)`` says whether a value may appear in a given packet type.
///
/// In 3.1.x the CONNACK return codes 1...5 are mapped onto their 5.0 counterparts; see
/// ``init(connackReturnCodeV3:)`` and ``connackReturnCodeV3``.
public struct ReasonCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The byte on the wire.
    public let rawValue: UInt8

    /// Wraps any byte; use ``isValid(in:)`` to check it against a packet type.
    @inlinable
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Whether the code reports a failure (0x80 and above).
    @inlinable
    public var isFailure: Bool { rawValue >= 0x80 }

    // MARK: - Success codes

    /// 0x00 Success (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH).
    public static let success = ReasonCode(rawValue: 0x00)
    /// 0x00 Normal disconnection (DISCONNECT).
    public static let normalDisconnection = ReasonCode(rawValue: 0x00)
    /// 0x00 Granted QoS 0 (SUBACK).
    public static let grantedQoS0 = ReasonCode(rawValue: 0x00)
    /// 0x01 Granted QoS 1 (SUBACK).
    public static let grantedQoS1 = ReasonCode(rawValue: 0x01)
    /// 0x02 Granted QoS 2 (SUBACK).
    public static let grantedQoS2 = ReasonCode(rawValue: 0x02)
    /// 0x04 Disconnect with Will Message (DISCONNECT).
    public static let disconnectWithWillMessage = ReasonCode(rawValue: 0x04)
    /// 0x10 No matching subscribers (PUBACK, PUBREC).
    public static let noMatchingSubscribers = ReasonCode(rawValue: 0x10)
    /// 0x11 No subscription existed (UNSUBACK).
    public static let noSubscriptionExisted = ReasonCode(rawValue: 0x11)
    /// 0x18 Continue authentication (AUTH).
    public static let continueAuthentication = ReasonCode(rawValue: 0x18)
    /// 0x19 Re-authenticate (AUTH).
    public static let reAuthenticate = ReasonCode(rawValue: 0x19)

    // MARK: - Failure codes

    /// 0x80 Unspecified error.
    public static let unspecifiedError = ReasonCode(rawValue: 0x80)
    /// 0x81 Malformed Packet.
    public static let malformedPacket = ReasonCode(rawValue: 0x81)
    /// 0x82 Protocol Error.
    public static let protocolError = ReasonCode(rawValue: 0x82)
    /// 0x83 Implementation specific error.
    public static let implementationSpecificError = ReasonCode(rawValue: 0x83)
    /// 0x84 Unsupported Protocol Version (CONNACK).
    public static let unsupportedProtocolVersion = ReasonCode(rawValue: 0x84)
    /// 0x85 Client Identifier not valid (CONNACK).
    public static let clientIdentifierNotValid = ReasonCode(rawValue: 0x85)
    /// 0x86 Bad User Name or Password (CONNACK).
    public static let badUserNameOrPassword = ReasonCode(rawValue: 0x86)
    /// 0x87 Not authorized.
    public static let notAuthorized = ReasonCode(rawValue: 0x87)
    /// 0x88 Server unavailable (CONNACK).
    public static let serverUnavailable = ReasonCode(rawValue: 0x88)
    /// 0x89 Server busy.
    public static let serverBusy = ReasonCode(rawValue: 0x89)
    /// 0x8A Banned (CONNACK).
    public static let banned = ReasonCode(rawValue: 0x8A)
    /// 0x8B Server shutting down (DISCONNECT).
    public static let serverShuttingDown = ReasonCode(rawValue: 0x8B)
    /// 0x8C Bad authentication method.
    public static let badAuthenticationMethod = ReasonCode(rawValue: 0x8C)
    /// 0x8D Keep Alive timeout (DISCONNECT).
    public static let keepAliveTimeout = ReasonCode(rawValue: 0x8D)
    /// 0x8E Session taken over (DISCONNECT).
    public static let sessionTakenOver = ReasonCode(rawValue: 0x8E)
    /// 0x8F Topic Filter invalid.
    public static let topicFilterInvalid = ReasonCode(rawValue: 0x8F)
    /// 0x90 Topic Name invalid.
    public static let topicNameInvalid = ReasonCode(rawValue: 0x90)
    /// 0x91 Packet Identifier in use.
    public static let packetIdentifierInUse = ReasonCode(rawValue: 0x91)
    /// 0x92 Packet Identifier not found.
    public static let packetIdentifierNotFound = ReasonCode(rawValue: 0x92)
    /// 0x93 Receive Maximum exceeded (DISCONNECT).
    public static let receiveMaximumExceeded = ReasonCode(rawValue: 0x93)
    /// 0x94 Topic Alias invalid (DISCONNECT).
    public static let topicAliasInvalid = ReasonCode(rawValue: 0x94)
    /// 0x95 Packet too large.
    public static let packetTooLarge = ReasonCode(rawValue: 0x95)
    /// 0x96 Message rate too high (DISCONNECT).
    public static let messageRateTooHigh = ReasonCode(rawValue: 0x96)
    /// 0x97 Quota exceeded.
    public static let quotaExceeded = ReasonCode(rawValue: 0x97)
    /// 0x98 Administrative action (DISCONNECT).
    public static let administrativeAction = ReasonCode(rawValue: 0x98)
    /// 0x99 Payload format invalid.
    public static let payloadFormatInvalid = ReasonCode(rawValue: 0x99)
    /// 0x9A Retain not supported.
    public static let retainNotSupported = ReasonCode(rawValue: 0x9A)
    /// 0x9B QoS not supported.
    public static let qosNotSupported = ReasonCode(rawValue: 0x9B)
    /// 0x9C Use another server.
    public static let useAnotherServer = ReasonCode(rawValue: 0x9C)
    /// 0x9D Server moved.
    public static let serverMoved = ReasonCode(rawValue: 0x9D)
    /// 0x9E Shared Subscriptions not supported.
    public static let sharedSubscriptionsNotSupported = ReasonCode(rawValue: 0x9E)
    /// 0x9F Connection rate exceeded.
    public static let connectionRateExceeded = ReasonCode(rawValue: 0x9F)
    /// 0xA0 Maximum connect time (DISCONNECT).
    public static let maximumConnectTime = ReasonCode(rawValue: 0xA0)
    /// 0xA1 Subscription Identifiers not supported.
    public static let subscriptionIdentifiersNotSupported = ReasonCode(rawValue: 0xA1)
    /// 0xA2 Wildcard Subscriptions not supported.
    public static let wildcardSubscriptionsNotSupported = ReasonCode(rawValue: 0xA2)

    // MARK: - Validity per packet

    /// Whether this value is a reason code that `packetType` may carry (MQTT 5.0 Table 2-6 and the reason code
    /// tables of §3.2.2.2, §3.4.2.1, §3.5.2.1, §3.6.2.1, §3.7.2.1, §3.9.3, §3.11.3, §3.14.2.1, §3.15.2.1).
    public func isValid(in packetType: PacketType) -> Bool {
        let value = rawValue
        switch packetType {
        case .connack:
            return value == 0x00 || (0x80...0x8A).contains(value) || value == 0x8C
                || (0x95...0x97).contains(value) || (0x99...0x9D).contains(value) || value == 0x9F
        case .puback, .pubrec:
            return value == 0x00 || value == 0x10 || value == 0x80 || value == 0x83 || value == 0x87
                || value == 0x90 || value == 0x91 || value == 0x97 || value == 0x99
        case .pubrel, .pubcomp:
            return value == 0x00 || value == 0x92
        case .suback:
            return value <= 0x02 || value == 0x80 || value == 0x83 || value == 0x87 || value == 0x8F
                || value == 0x91 || value == 0x97 || value == 0x9E || value == 0xA1 || value == 0xA2
        case .unsuback:
            return value == 0x00 || value == 0x11 || value == 0x80 || value == 0x83 || value == 0x87
                || value == 0x8F || value == 0x91
        case .disconnect:
            return value == 0x00 || value == 0x04 || (0x80...0x83).contains(value) || value == 0x87
                || (0x89...0x8B).contains(value) || (0x8D...0x90).contains(value) || (0x93...0xA2).contains(value)
        case .auth:
            return value == 0x00 || value == 0x18 || value == 0x19
        case .connect, .publish, .subscribe, .unsubscribe, .pingreq, .pingresp:
            return false
        }
    }

    // MARK: - MQTT 3.1.x return codes

    /// Maps a 3.1.x CONNACK return code (0...5) onto the 5.0 code of the same meaning; `nil` for 6...255.
    public init?(connackReturnCodeV3 code: UInt8) {
        switch code {
        case 0: self = .success
        case 1: self = .unsupportedProtocolVersion
        case 2: self = .clientIdentifierNotValid
        case 3: self = .serverUnavailable
        case 4: self = .badUserNameOrPassword
        case 5: self = .notAuthorized
        default: return nil
        }
    }

    /// The 3.1.x CONNACK return code closest to this 5.0 code: 0 Accepted, 1 unacceptable protocol version,
    /// 2 identifier rejected, 3 server unavailable, 4 bad user name or password, 5 not authorized. Failure
    /// codes without a 3.1.x counterpart become 3 (server unavailable).
    public var connackReturnCodeV3: UInt8 {
        switch rawValue {
        case 0x00: 0
        case 0x84: 1
        case 0x85: 2
        case 0x86, 0x8C: 4
        case 0x87, 0x8A: 5
        default: 3
        }
    }

    /// The value in hexadecimal, e.g. "0x81".
    public var description: String {
        let digits = Array("0123456789ABCDEF")
        return "0x" + String(digits[Int(rawValue >> 4)]) + String(digits[Int(rawValue & 0xF)])
    }
}
