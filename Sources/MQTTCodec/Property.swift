// MARK: - Property identifiers (MQTT 5.0 §2.2.2.2, Table 2-4)

/// An MQTT 5.0 property identifier, with the data type of its value and the packets that may carry it.
public enum PropertyIdentifier: UInt8, Sendable, Hashable, CaseIterable {
    /// 0x01 Payload Format Indicator.
    case payloadFormatIndicator = 0x01
    /// 0x02 Message Expiry Interval.
    case messageExpiryInterval = 0x02
    /// 0x03 Content Type.
    case contentType = 0x03
    /// 0x08 Response Topic.
    case responseTopic = 0x08
    /// 0x09 Correlation Data.
    case correlationData = 0x09
    /// 0x0B Subscription Identifier.
    case subscriptionIdentifier = 0x0B
    /// 0x11 Session Expiry Interval.
    case sessionExpiryInterval = 0x11
    /// 0x12 Assigned Client Identifier.
    case assignedClientIdentifier = 0x12
    /// 0x13 Server Keep Alive.
    case serverKeepAlive = 0x13
    /// 0x15 Authentication Method.
    case authenticationMethod = 0x15
    /// 0x16 Authentication Data.
    case authenticationData = 0x16
    /// 0x17 Request Problem Information.
    case requestProblemInformation = 0x17
    /// 0x18 Will Delay Interval.
    case willDelayInterval = 0x18
    /// 0x19 Request Response Information.
    case requestResponseInformation = 0x19
    /// 0x1A Response Information.
    case responseInformation = 0x1A
    /// 0x1C Server Reference.
    case serverReference = 0x1C
    /// 0x1F Reason String.
    case reasonString = 0x1F
    /// 0x21 Receive Maximum.
    case receiveMaximum = 0x21
    /// 0x22 Topic Alias Maximum.
    case topicAliasMaximum = 0x22
    /// 0x23 Topic Alias.
    case topicAlias = 0x23
    /// 0x24 Maximum QoS.
    case maximumQoS = 0x24
    /// 0x25 Retain Available.
    case retainAvailable = 0x25
    /// 0x26 User Property.
    case userProperty = 0x26
    /// 0x27 Maximum Packet Size.
    case maximumPacketSize = 0x27
    /// 0x28 Wildcard Subscription Available.
    case wildcardSubscriptionAvailable = 0x28
    /// 0x29 Subscription Identifier Available.
    case subscriptionIdentifierAvailable = 0x29
    /// 0x2A Shared Subscription Available.
    case sharedSubscriptionAvailable = 0x2A

    /// The representation of a property's value on the wire (MQTT 5.0 §1.5).
    public enum ValueType: Sendable, Hashable {
        /// One byte.
        case byte
        /// A Two Byte Integer.
        case twoByteInteger
        /// A Four Byte Integer.
        case fourByteInteger
        /// A Variable Byte Integer.
        case variableByteInteger
        /// A UTF-8 Encoded String.
        case string
        /// Binary Data.
        case binary
        /// A UTF-8 String Pair.
        case stringPair
    }

    /// The data type of this property's value.
    @inlinable
    public var valueType: ValueType {
        switch self {
        case .payloadFormatIndicator, .requestProblemInformation, .requestResponseInformation, .maximumQoS,
            .retainAvailable, .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable,
            .sharedSubscriptionAvailable:
            .byte
        case .serverKeepAlive, .receiveMaximum, .topicAliasMaximum, .topicAlias: .twoByteInteger
        case .messageExpiryInterval, .sessionExpiryInterval, .willDelayInterval, .maximumPacketSize:
            .fourByteInteger
        case .subscriptionIdentifier: .variableByteInteger
        case .contentType, .responseTopic, .assignedClientIdentifier, .authenticationMethod,
            .responseInformation, .serverReference, .reasonString:
            .string
        case .correlationData, .authenticationData: .binary
        case .userProperty: .stringPair
        }
    }

    /// The contexts that may carry this property, as a bit set of ``PropertyContext`` raw values.
    @inlinable
    var allowedContexts: UInt32 {
        let will = PropertyContext.will.bit
        let connect = PropertyContext.connect.bit
        let connack = PropertyContext.connack.bit
        let publish = PropertyContext.publish.bit
        let subscribe = PropertyContext.subscribe.bit
        let disconnect = PropertyContext.disconnect.bit
        let auth = PropertyContext.auth.bit
        switch self {
        case .payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic, .correlationData:
            return publish | will
        case .subscriptionIdentifier: return publish | subscribe
        case .sessionExpiryInterval: return connect | connack | disconnect
        case .assignedClientIdentifier, .serverKeepAlive, .responseInformation, .maximumQoS, .retainAvailable,
            .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable:
            return connack
        case .authenticationMethod, .authenticationData: return connect | connack | auth
        case .requestProblemInformation, .requestResponseInformation: return connect
        case .willDelayInterval: return will
        case .serverReference: return connack | disconnect
        case .reasonString:
            return connack | disconnect | auth | PropertyContext.puback.bit | PropertyContext.pubrec.bit
                | PropertyContext.pubrel.bit | PropertyContext.pubcomp.bit | PropertyContext.suback.bit
                | PropertyContext.unsuback.bit
        case .receiveMaximum, .topicAliasMaximum, .maximumPacketSize: return connect | connack
        case .topicAlias: return publish
        case .userProperty: return UInt32.max
        }
    }

    /// Whether `context` may carry this property (MQTT 5.0 Table 2-4).
    @inlinable
    public func isAllowed(in context: PropertyContext) -> Bool { allowedContexts & context.bit != 0 }
}

/// Where a property list sits: a packet type, or the Will Properties of a CONNECT.
public enum PropertyContext: UInt8, Sendable, Hashable, CaseIterable {
    /// The Will Properties in a CONNECT payload.
    case will = 0
    /// The properties of CONNECT.
    case connect = 1
    /// The properties of CONNACK.
    case connack = 2
    /// The properties of PUBLISH.
    case publish = 3
    /// The properties of PUBACK.
    case puback = 4
    /// The properties of PUBREC.
    case pubrec = 5
    /// The properties of PUBREL.
    case pubrel = 6
    /// The properties of PUBCOMP.
    case pubcomp = 7
    /// The properties of SUBSCRIBE.
    case subscribe = 8
    /// The properties of SUBACK.
    case suback = 9
    /// The properties of UNSUBSCRIBE.
    case unsubscribe = 10
    /// The properties of UNSUBACK.
    case unsuback = 11
    /// The properties of DISCONNECT.
    case disconnect = 14
    /// The properties of AUTH.
    case auth = 15

    @inlinable
    var bit: UInt32 { 1 << UInt32(rawValue) }

    /// The packet type carrying this property list (CONNECT for Will Properties).
    @inlinable
    var packetType: PacketType { PacketType(rawValue: rawValue) ?? .connect }
}

// MARK: - Property values

/// One MQTT 5.0 property with its value.
public enum Property: Sendable, Hashable {
    /// 0x01: 0 for unspecified bytes, 1 for UTF-8 payload.
    case payloadFormatIndicator(UInt8)
    /// 0x02: lifetime of the message in seconds.
    case messageExpiryInterval(UInt32)
    /// 0x03: MIME type of the payload.
    case contentType(String)
    /// 0x08: topic name for a response message.
    case responseTopic(String)
    /// 0x09: correlation data of a request/response exchange.
    case correlationData([UInt8])
    /// 0x0B: identifier of a subscription, 1...268,435,455.
    case subscriptionIdentifier(Int)
    /// 0x11: session expiry interval in seconds.
    case sessionExpiryInterval(UInt32)
    /// 0x12: client identifier assigned by the server.
    case assignedClientIdentifier(String)
    /// 0x13: keep alive the server requires, in seconds.
    case serverKeepAlive(UInt16)
    /// 0x15: name of the authentication method.
    case authenticationMethod(String)
    /// 0x16: authentication data.
    case authenticationData([UInt8])
    /// 0x17: whether the server may send Reason String and User Properties on failures.
    case requestProblemInformation(Bool)
    /// 0x18: delay before the will message is published, in seconds.
    case willDelayInterval(UInt32)
    /// 0x19: whether the client asks for Response Information in CONNACK.
    case requestResponseInformation(Bool)
    /// 0x1A: basis for response topics.
    case responseInformation(String)
    /// 0x1C: another server to use.
    case serverReference(String)
    /// 0x1F: human-readable reason.
    case reasonString(String)
    /// 0x21: maximum number of inflight QoS 1 and 2 publishes, at least 1.
    case receiveMaximum(UInt16)
    /// 0x22: highest topic alias accepted.
    case topicAliasMaximum(UInt16)
    /// 0x23: topic alias, at least 1.
    case topicAlias(UInt16)
    /// 0x24: maximum QoS the server supports (0 or 1; absent means 2).
    case maximumQoS(QoS)
    /// 0x25: whether retained messages are supported.
    case retainAvailable(Bool)
    /// 0x26: an application-defined name/value pair; may repeat.
    case userProperty(name: String, value: String)
    /// 0x27: maximum packet size accepted, at least 1.
    case maximumPacketSize(UInt32)
    /// 0x28: whether wildcard subscriptions are supported.
    case wildcardSubscriptionAvailable(Bool)
    /// 0x29: whether subscription identifiers are supported.
    case subscriptionIdentifierAvailable(Bool)
    /// 0x2A: whether shared subscriptions are supported.
    case sharedSubscriptionAvailable(Bool)

    /// The property's identifier.
    public var identifier: PropertyIdentifier {
        switch self {
        case .payloadFormatIndicator: .payloadFormatIndicator
        case .messageExpiryInterval: .messageExpiryInterval
        case .contentType: .contentType
        case .responseTopic: .responseTopic
        case .correlationData: .correlationData
        case .subscriptionIdentifier: .subscriptionIdentifier
        case .sessionExpiryInterval: .sessionExpiryInterval
        case .assignedClientIdentifier: .assignedClientIdentifier
        case .serverKeepAlive: .serverKeepAlive
        case .authenticationMethod: .authenticationMethod
        case .authenticationData: .authenticationData
        case .requestProblemInformation: .requestProblemInformation
        case .willDelayInterval: .willDelayInterval
        case .requestResponseInformation: .requestResponseInformation
        case .responseInformation: .responseInformation
        case .serverReference: .serverReference
        case .reasonString: .reasonString
        case .receiveMaximum: .receiveMaximum
        case .topicAliasMaximum: .topicAliasMaximum
        case .topicAlias: .topicAlias
        case .maximumQoS: .maximumQoS
        case .retainAvailable: .retainAvailable
        case .userProperty: .userProperty
        case .maximumPacketSize: .maximumPacketSize
        case .wildcardSubscriptionAvailable: .wildcardSubscriptionAvailable
        case .subscriptionIdentifierAvailable: .subscriptionIdentifierAvailable
        case .sharedSubscriptionAvailable: .sharedSubscriptionAvailable
        }
    }

    /// Bytes this property takes on the wire, identifier included.
    var encodedSize: Int {
        switch self {
        case .payloadFormatIndicator, .requestProblemInformation, .requestResponseInformation, .maximumQoS,
            .retainAvailable, .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable,
            .sharedSubscriptionAvailable:
            return 2
        case .serverKeepAlive, .receiveMaximum, .topicAliasMaximum, .topicAlias: return 3
        case .messageExpiryInterval, .sessionExpiryInterval, .willDelayInterval, .maximumPacketSize: return 5
        case .subscriptionIdentifier(let value): return 1 + VariableByteInteger.size(value)
        case .contentType(let string), .responseTopic(let string), .assignedClientIdentifier(let string),
            .authenticationMethod(let string), .responseInformation(let string), .serverReference(let string),
            .reasonString(let string):
            return 1 + stringFieldSize(string)
        case .correlationData(let bytes), .authenticationData(let bytes): return 3 + bytes.count
        case .userProperty(let name, let value): return 1 + stringFieldSize(name) + stringFieldSize(value)
        }
    }

    /// Writes the identifier and value.
    func write(into writer: inout ByteWriter) {
        writer.writeByte(identifier.rawValue)
        switch self {
        case .payloadFormatIndicator(let value): writer.writeByte(value)
        case .requestProblemInformation(let flag), .requestResponseInformation(let flag),
            .retainAvailable(let flag), .wildcardSubscriptionAvailable(let flag),
            .subscriptionIdentifierAvailable(let flag), .sharedSubscriptionAvailable(let flag):
            writer.writeByte(flag ? 1 : 0)
        case .maximumQoS(let qos): writer.writeByte(qos.rawValue)
        case .serverKeepAlive(let value), .receiveMaximum(let value), .topicAliasMaximum(let value),
            .topicAlias(let value):
            writer.writeUInt16(value)
        case .messageExpiryInterval(let value), .sessionExpiryInterval(let value),
            .willDelayInterval(let value), .maximumPacketSize(let value):
            writer.writeUInt32(value)
        case .subscriptionIdentifier(let value): writer.writeVariableByteInteger(value)
        case .contentType(let string), .responseTopic(let string), .assignedClientIdentifier(let string),
            .authenticationMethod(let string), .responseInformation(let string), .serverReference(let string),
            .reasonString(let string):
            writer.writeString(string)
        case .correlationData(let bytes), .authenticationData(let bytes): writer.writeBinary(bytes)
        case .userProperty(let name, let value):
            writer.writeString(name)
            writer.writeString(value)
        }
    }
}

// MARK: - Property lists

/// The properties of one packet (or of a CONNECT's Will), in wire order. Empty for 3.1.x.
public struct Properties: Sendable, Hashable, ExpressibleByArrayLiteral {
    /// The properties in the order they appear on the wire.
    public var list: [Property]

    /// Creates a property list.
    @inlinable
    public init(_ list: [Property] = []) { self.list = list }

    /// Creates a property list from a literal.
    @inlinable
    public init(arrayLiteral elements: Property...) { self.list = elements }

    /// Whether there are no properties.
    @inlinable
    public var isEmpty: Bool { list.isEmpty }

    /// The first property with `identifier`, if any.
    public func first(_ identifier: PropertyIdentifier) -> Property? {
        list.first { $0.identifier == identifier }
    }

    /// The bytes the properties take, not counting the Property Length prefix.
    public var encodedByteCount: Int {
        var total = 0
        for property in list { total += property.encodedSize }
        return total
    }

    /// The bytes the properties take including the Property Length prefix.
    public var encodedByteCountWithLength: Int {
        let count = encodedByteCount
        return VariableByteInteger.size(count) + count
    }

    /// Writes the properties without the length prefix into `buffer`, for the raw-pieces PUBLISH encoder.
    /// - Returns: the number of bytes written, ``encodedByteCount``.
    /// - Precondition: `buffer.count >= encodedByteCount`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var writer = ByteWriter(buffer)
        for property in list { property.write(into: &writer) }
        return writer.index
    }

    /// Writes the Property Length and the properties.
    func write(into writer: inout ByteWriter) {
        writer.writeVariableByteInteger(encodedByteCount)
        for property in list { property.write(into: &writer) }
    }

    /// Reads a Property Length and the properties that follow, validating each against `context`.
    static func read(from reader: inout ByteReader, context: PropertyContext) throws(MQTTDecodeError) -> Properties {
        let length = try reader.readVariableByteInteger()
        guard length <= reader.remaining else { throw .invalidPropertyLength }
        let bytes = try reader.readSlice(length)
        if length == 0 { return Properties() }
        var scanner = PropertyScanner(bytes, context: context)
        var list: [Property] = []
        while let raw = try scanner.next() {
            list.append(raw.owned)
        }
        return Properties(list)
    }
}

// MARK: - Borrowed property scanning

/// A property value as it lies in the received bytes; strings and binary data point into the buffer.
@usableFromInline
enum RawPropertyValue {
    case byte(UInt8)
    case twoByteInteger(UInt16)
    case fourByteInteger(UInt32)
    case variableByteInteger(Int)
    case bytes(UnsafeRawBufferPointer)
    case pair(UnsafeRawBufferPointer, UnsafeRawBufferPointer)
}

/// One property read from borrowed bytes.
@usableFromInline
struct RawProperty {
    @usableFromInline let identifier: PropertyIdentifier
    @usableFromInline let value: RawPropertyValue

    @inlinable
    init(identifier: PropertyIdentifier, value: RawPropertyValue) {
        self.identifier = identifier
        self.value = value
    }

    /// The owned ``Property`` (allocates for strings and binary data). The scanner has already checked the
    /// identifier's value type and range.
    var owned: Property {
        switch (identifier, value) {
        case (.payloadFormatIndicator, .byte(let value)): return .payloadFormatIndicator(value)
        case (.requestProblemInformation, .byte(let value)): return .requestProblemInformation(value == 1)
        case (.requestResponseInformation, .byte(let value)): return .requestResponseInformation(value == 1)
        case (.maximumQoS, .byte(let value)): return .maximumQoS(value == 0 ? .atMostOnce : .atLeastOnce)
        case (.retainAvailable, .byte(let value)): return .retainAvailable(value == 1)
        case (.wildcardSubscriptionAvailable, .byte(let value)): return .wildcardSubscriptionAvailable(value == 1)
        case (.subscriptionIdentifierAvailable, .byte(let value)):
            return .subscriptionIdentifierAvailable(value == 1)
        case (.sharedSubscriptionAvailable, .byte(let value)): return .sharedSubscriptionAvailable(value == 1)
        case (.serverKeepAlive, .twoByteInteger(let value)): return .serverKeepAlive(value)
        case (.receiveMaximum, .twoByteInteger(let value)): return .receiveMaximum(value)
        case (.topicAliasMaximum, .twoByteInteger(let value)): return .topicAliasMaximum(value)
        case (.topicAlias, .twoByteInteger(let value)): return .topicAlias(value)
        case (.messageExpiryInterval, .fourByteInteger(let value)): return .messageExpiryInterval(value)
        case (.sessionExpiryInterval, .fourByteInteger(let value)): return .sessionExpiryInterval(value)
        case (.willDelayInterval, .fourByteInteger(let value)): return .willDelayInterval(value)
        case (.maximumPacketSize, .fourByteInteger(let value)): return .maximumPacketSize(value)
        case (.subscriptionIdentifier, .variableByteInteger(let value)): return .subscriptionIdentifier(value)
        case (.contentType, .bytes(let bytes)): return .contentType(bytes.validatedString)
        case (.responseTopic, .bytes(let bytes)): return .responseTopic(bytes.validatedString)
        case (.assignedClientIdentifier, .bytes(let bytes)): return .assignedClientIdentifier(bytes.validatedString)
        case (.authenticationMethod, .bytes(let bytes)): return .authenticationMethod(bytes.validatedString)
        case (.responseInformation, .bytes(let bytes)): return .responseInformation(bytes.validatedString)
        case (.serverReference, .bytes(let bytes)): return .serverReference(bytes.validatedString)
        case (.reasonString, .bytes(let bytes)): return .reasonString(bytes.validatedString)
        case (.correlationData, .bytes(let bytes)): return .correlationData(bytes.array)
        case (.authenticationData, .bytes(let bytes)): return .authenticationData(bytes.array)
        case (.userProperty, .pair(let name, let value)):
            return .userProperty(name: name.validatedString, value: value.validatedString)
        default:
            // The scanner reads each identifier with its own value type, so no other pairing can arise.
            preconditionFailure("property \(identifier) read with the wrong value type")
        }
    }
}

/// Iterates the properties in borrowed bytes without allocating, checking each against its context:
/// known identifier, allowed in the packet (Table 2-4), not repeated where the spec forbids it, value in
/// range, strings valid UTF-8.
@usableFromInline
struct PropertyScanner {
    @usableFromInline var reader: ByteReader
    @usableFromInline let context: PropertyContext
    /// Bit `n` is set once property identifier `n` has been seen.
    @usableFromInline var seen: UInt64 = 0

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer, context: PropertyContext) {
        self.reader = ByteReader(bytes, packetType: context.packetType)
        self.context = context
    }

    /// The next property, or `nil` at the end.
    @inlinable
    mutating func next() throws(MQTTDecodeError) -> RawProperty? {
        if reader.isAtEnd { return nil }
        // MQTT 5.0 §2.2.2.2: the identifier is a Variable Byte Integer, though every defined one fits in
        // a single byte; a multi-byte identifier is therefore unknown.
        let code = try reader.readVariableByteInteger()
        guard code < 0x80, let identifier = PropertyIdentifier(rawValue: UInt8(code)) else {
            throw .unknownProperty(UInt8(truncatingIfNeeded: code))
        }
        guard identifier.isAllowed(in: context) else {
            throw .propertyNotAllowed(identifier, context.packetType)
        }
        // MQTT 5.0 §2.2.2.2 and each property's definition: "It is a Protocol Error to include the <property>
        // more than once." User Property may repeat everywhere; Subscription Identifier may repeat in PUBLISH
        // (server to client, one per matching subscription, §3.3.2.3.8).
        let bit: UInt64 = 1 << UInt64(identifier.rawValue)
        let mayRepeat = identifier == .userProperty
            || (identifier == .subscriptionIdentifier && context == .publish)
        if seen & bit != 0 && !mayRepeat { throw .duplicateProperty(identifier) }
        seen |= bit
        let value: RawPropertyValue
        switch identifier.valueType {
        case .byte:
            let byte = try reader.readByte()
            // Boolean-like properties and Payload Format Indicator take 0 or 1; Maximum QoS takes 0 or 1
            // ("It is a Protocol Error to include Maximum QoS more than once, or to have a value other than
            // 0 or 1").
            if byte > 1 { throw .invalidPropertyValue(identifier) }
            value = .byte(byte)
        case .twoByteInteger:
            let integer = try reader.readUInt16()
            if integer == 0 {
                // [MQTT-3.3.2-8] A Topic Alias of 0 is not permitted. Receive Maximum 0 is a Protocol Error.
                if identifier == .topicAlias { throw .topicAliasInvalid }
                if identifier == .receiveMaximum { throw .invalidPropertyValue(identifier) }
            }
            value = .twoByteInteger(integer)
        case .fourByteInteger:
            let integer = try reader.readUInt32()
            // "It is a Protocol Error to include ... the Maximum Packet Size ... value set to zero."
            if integer == 0 && identifier == .maximumPacketSize { throw .invalidPropertyValue(identifier) }
            value = .fourByteInteger(integer)
        case .variableByteInteger:
            let integer = try reader.readVariableByteInteger()
            // "It is a Protocol Error if the Subscription Identifier has a value of 0."
            if integer == 0 { throw .invalidPropertyValue(identifier) }
            value = .variableByteInteger(integer)
        case .string:
            value = .bytes(try reader.readString())
        case .binary:
            value = .bytes(try reader.readBinary())
        case .stringPair:
            let name = try reader.readString()
            value = .pair(name, try reader.readString())
        }
        return RawProperty(identifier: identifier, value: value)
    }
}
