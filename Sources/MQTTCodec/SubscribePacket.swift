// MARK: - SUBSCRIBE (MQTT 5.0 §3.8)

/// One topic filter of a SUBSCRIBE with its options.
public struct TopicSubscription: Sendable, Hashable {
    /// The filter (possibly a shared subscription in 5.0).
    public var filter: TopicFilter
    /// The subscription options.
    public var options: SubscriptionOptions

    /// Creates a subscription request.
    public init(filter: TopicFilter, options: SubscriptionOptions) {
        self.filter = filter
        self.options = options
    }
}

/// A client's subscribe request.
public struct SubscribePacket: MQTTPacket, PacketBody {
    /// SUBSCRIBE.
    public static var packetType: PacketType { .subscribe }

    /// Packet identifier.
    public var packetIdentifier: PacketIdentifier
    /// The requested subscriptions, at least one.
    public var subscriptions: [TopicSubscription]
    /// Properties (5.0): Subscription Identifier and User Properties.
    public var properties: Properties

    /// Creates a SUBSCRIBE.
    public init(packetIdentifier: PacketIdentifier, subscriptions: [TopicSubscription], properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.subscriptions = subscriptions
        self.properties = properties
    }

    // [MQTT-3.8.1-1] Bits 3,2,1 and 0 of the fixed header of the SUBSCRIBE packet are reserved and MUST be set
    // to 0,0,1 and 0 respectively.
    var fixedHeaderFlags: UInt8 { 0b0010 }

    func bodySize(version: ProtocolVersion) -> Int {
        var size = 2
        if version == .v5 { size += properties.encodedByteCountWithLength }
        for subscription in subscriptions { size += 2 + subscription.filter.bytes.count + 1 }
        return size
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        writer.writeUInt16(packetIdentifier.rawValue)
        if version == .v5 { properties.write(into: &writer) }
        for subscription in subscriptions {
            writer.writeBinary(subscription.filter.bytes)
            writer.writeByte(subscription.options.byte(version: version))
        }
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: version) }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> SubscribePacket
    {
        var reader = ByteReader(body, packetType: .subscribe)
        let identifier = try reader.readPacketIdentifier()
        let properties = try readProperties(&reader, version: version, context: .subscribe)
        var subscriptions: [TopicSubscription] = []
        while !reader.isAtEnd {
            let filter = try readTopicFilter(&reader, version: version)
            let options = try SubscriptionOptions(byte: try reader.readByte(), version: version)
            // [MQTT-3.8.3-4] It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription.
            if options.noLocal && filter.isShared { throw .noLocalOnSharedSubscription }
            subscriptions.append(TopicSubscription(filter: filter, options: options))
        }
        // [MQTT-3.8.3-3] The payload of a SUBSCRIBE packet MUST contain at least one Topic Filter / Subscription
        // Options pair.
        if subscriptions.isEmpty { throw .noTopicFilters(.subscribe) }
        return SubscribePacket(packetIdentifier: identifier, subscriptions: subscriptions, properties: properties)
    }
}

// MARK: - SUBACK (MQTT 5.0 §3.9)

/// The server's answer to SUBSCRIBE: one reason code per requested filter, in order.
public struct SubAckPacket: MQTTPacket, PacketBody {
    /// SUBACK.
    public static var packetType: PacketType { .suback }

    /// The SUBSCRIBE's packet identifier.
    public var packetIdentifier: PacketIdentifier
    /// Granted QoS or failure, one per filter. 3.1.x knows only 0x00, 0x01, 0x02 and 0x80.
    public var reasonCodes: [ReasonCode]
    /// Properties (5.0).
    public var properties: Properties

    /// Creates a SUBACK.
    public init(packetIdentifier: PacketIdentifier, reasonCodes: [ReasonCode], properties: Properties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }

    var fixedHeaderFlags: UInt8 { 0 }

    func bodySize(version: ProtocolVersion) -> Int {
        2 + (version == .v5 ? properties.encodedByteCountWithLength : 0) + reasonCodes.count
    }

    func writeBody(into writer: inout ByteWriter, version: ProtocolVersion) {
        writer.writeUInt16(packetIdentifier.rawValue)
        if version == .v5 { properties.write(into: &writer) }
        for code in reasonCodes {
            // MQTT 3.1.1 §3.9.3: the only failure return code is 0x80.
            writer.writeByte(version != .v5 && code.isFailure ? 0x80 : code.rawValue)
        }
    }

    /// The encoded size.
    public func encodedSize(version: ProtocolVersion) -> Int { frameSize(version: version) }

    /// Encodes the packet into `buffer`.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, version: ProtocolVersion) -> Int {
        encodeFrame(into: buffer, version: version)
    }

    static func decode(flags: UInt8, body: UnsafeRawBufferPointer, version: ProtocolVersion)
        throws(MQTTDecodeError) -> SubAckPacket
    {
        var reader = ByteReader(body, packetType: .suback)
        let identifier = try reader.readPacketIdentifier()
        let properties = try readProperties(&reader, version: version, context: .suback)
        var codes: [ReasonCode] = []
        while !reader.isAtEnd {
            let byte = try reader.readByte()
            let code = ReasonCode(rawValue: byte)
            // [MQTT-3.9.3-2] (3.1.1) SUBACK return codes other than 0x00, 0x01, 0x02 and 0x80 are reserved.
            let valid = version == .v5 ? code.isValid(in: .suback) : (byte <= 2 || byte == 0x80)
            guard valid else { throw .invalidReasonCode(.suback, byte) }
            codes.append(code)
        }
        if codes.isEmpty { throw .invalidRemainingLength(.suback) }
        return SubAckPacket(packetIdentifier: identifier, reasonCodes: codes, properties: properties)
    }
}
