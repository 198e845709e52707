import MQTTCodec
import ShoalTestSupport
import Testing

// MARK: - Malformed packets and protocol errors, one test per rule

/// A 3.1.1 CONNECT with the given flags byte and payload after the client identifier "c".
private func connect311(flags: UInt8, clientIdentifier: [UInt8] = [0x00, 0x01, 0x63], tail: [UInt8] = []) -> [UInt8] {
    let body: [UInt8] = [0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, flags, 0x00, 0x3C] + clientIdentifier + tail
    return [0x10, UInt8(body.count)] + body
}

/// A 5.0 PUBLISH QoS 0 on topic "t" with the given property bytes (length prefix added here).
private func publish5(properties: [UInt8]) -> [UInt8] {
    let body: [UInt8] = [0x00, 0x01, 0x74, UInt8(properties.count)] + properties
    return [0x30, UInt8(body.count)] + body
}

/// A 5.0 SUBSCRIBE with identifier 1, no properties and one filter with an options byte.
private func subscribe5(filter: String, options: UInt8) -> [UInt8] {
    let name = utf8(filter)
    let body: [UInt8] = [0x00, 0x01, 0x00, 0x00, UInt8(name.count)] + name + [options]
    return [0x82, UInt8(body.count)] + body
}

@Suite("Malformed packets")
struct MalformedPacketTests {
    // MARK: Fixed header

    @Test("[MQTT-3.3.1-4] PUBLISH with both QoS bits set is malformed")
    func publishQoS3() {
        // Proves the fixed header check refuses QoS 3 before the body is read.
        #expect(decodeError([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01], version: .v3_1_1) == .publishQoSInvalid)
        #expect(decodeError([0x36, 0x05], version: .v5) == .publishQoSInvalid)  // header alone suffices
    }

    @Test("[MQTT-2.1.3-1] Reserved fixed-header flags must hold their listed values")
    func reservedFlags() {
        // Proves each packet type with fixed flags refuses any other nibble.
        #expect(decodeError([0x42, 0x02, 0x00, 0x01], version: .v3_1_1) == .invalidFixedHeaderFlags(.puback, flags: 2))
        #expect(decodeError([0x60, 0x02, 0x00, 0x01], version: .v3_1_1) == .invalidFixedHeaderFlags(.pubrel, flags: 0))
        #expect(
            decodeError([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00], version: .v3_1_1)
                == .invalidFixedHeaderFlags(.subscribe, flags: 0))
        #expect(
            decodeError([0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61], version: .v5)
                == .invalidFixedHeaderFlags(.unsubscribe, flags: 0))
        #expect(decodeError([0xC1, 0x00], version: .v5) == .invalidFixedHeaderFlags(.pingreq, flags: 1))
        #expect(decodeError([0x18, 0x00], version: nil) == .invalidFixedHeaderFlags(.connect, flags: 8))
        #expect(MQTTDecodeError.invalidFixedHeaderFlags(.puback, flags: 2).reasonCode == .malformedPacket)
    }

    @Test("Packet type 0 is reserved, and type 15 (AUTH) is reserved in 3.1.1")
    func reservedPacketTypes() {
        // Proves MQTT 3.1.1 §2.2.1 reserved types are refused and AUTH is accepted only on 5.0.
        #expect(decodeError([0x00, 0x00], version: .v5) == .reservedPacketType(0))
        #expect(decodeError([0xF0, 0x00], version: .v3_1_1) == .reservedPacketType(15))
        #expect(decodeError([0xF0, 0x00], version: .v3_1) == .reservedPacketType(15))
    }

    @Test("[MQTT-3.1.0-1] The first packet must be CONNECT")
    func firstPacketMustBeConnect() {
        // Proves a decoder that has not seen CONNECT refuses anything else, from the first byte.
        #expect(decodeError([0xC0, 0x00], version: nil) == .expectedConnect(.pingreq))
        #expect(MQTTDecodeError.expectedConnect(.publish).reasonCode == .protocolError)
    }

    @Test("Remaining length longer than four bytes is malformed (MQTT 5.0 §1.5.5)")
    func variableByteIntegerTooLong() {
        // Proves a fifth continuation byte is refused rather than read.
        #expect(decodeError([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], version: .v3_1_1) == .malformedVariableByteInteger)
    }

    @Test("A packet over the maximum packet size is refused from its fixed header, before its body")
    func packetTooLarge() throws {
        // Proves the size check needs only the 3 header bytes of a 1,003-byte packet, and maps to 0x95.
        let decoder = PacketDecoder(protocolVersion: .v5, maximumPacketSize: 100)
        let header: [UInt8] = [0x30, 0xE8, 0x07]  // PUBLISH, remaining length 1000
        #expect(throws: MQTTDecodeError.packetTooLarge(byteCount: 1003, maximum: 100)) {
            _ = try readFrame(header, decoder)
        }
        #expect(MQTTDecodeError.packetTooLarge(byteCount: 1003, maximum: 100).reasonCode == .packetTooLarge)
        // Exactly at the limit is accepted.
        let limit = PacketDecoder(protocolVersion: .v5, maximumPacketSize: 4)
        let atLimit: [UInt8] = [0xE0, 0x02, 0x00, 0x00]  // DISCONNECT with empty properties: 4 bytes
        #expect(throws: Never.self) { _ = try readFrame(atLimit, limit) }
    }

    @Test("A field running past the remaining length is malformed")
    func truncatedField() {
        // Proves a topic length larger than the body is caught by the bounds-checked reader.
        #expect(decodeError([0x30, 0x03, 0x00, 0x05, 0x61], version: .v3_1_1) == .truncated(.publish))
        #expect(decodeError([0x40, 0x01, 0x00], version: .v3_1_1) == .truncated(.puback))
    }

    @Test("Packets without payload refuse extra bytes")
    func extraBytes() {
        // Proves PINGREQ, 3.1.1 PUBACK and 3.1.1 DISCONNECT have exact remaining lengths.
        #expect(decodeError([0xC0, 0x01, 0x00], version: .v5) == .invalidRemainingLength(.pingreq))
        #expect(decodeError([0x40, 0x03, 0x00, 0x01, 0x00], version: .v3_1_1) == .invalidRemainingLength(.puback))
        #expect(decodeError([0xE0, 0x01, 0x00], version: .v3_1_1) == .invalidRemainingLength(.disconnect))
    }

    // MARK: CONNECT

    @Test("[MQTT-3.1.2-1] An unknown protocol name is refused")
    func protocolName() {
        // Proves a CONNECT naming "MQTX" is refused with 0x84.
        var bytes = connect311(flags: 0x02)
        bytes[7] = 0x58  // "MQTT" -> "MQTX"
        #expect(decodeError(bytes, version: nil) == .invalidProtocolName)
    }

    @Test("[MQTT-3.1.2-2] An unsupported protocol level is refused with CONNACK 0x01 / 0x84")
    func protocolLevel() {
        // Proves level 6 and the mismatched pair MQIsdp/4 are refused, with their CONNACK codes.
        var bytes = connect311(flags: 0x02)
        bytes[8] = 0x06
        let error = decodeError(bytes, version: nil)
        #expect(error == .unsupportedProtocolVersion(6))
        #expect(error?.connackReturnCodeV3 == 0x01)
        #expect(error?.reasonCode == .unsupportedProtocolVersion)
        let mqisdp4: [UInt8] = [
            0x10, 0x11, 0x00, 0x06, 0x4D, 0x51, 0x49, 0x73, 0x64, 0x70, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x03, 0x61,
            0x62, 0x63,
        ]
        #expect(decodeError(mqisdp4, version: nil) == .unsupportedProtocolVersion(4))
    }

    @Test("[MQTT-3.1.2-3] The CONNECT reserved flag must be 0")
    func connectReservedFlag() {
        // Proves bit 0 of the connect flags is checked.
        #expect(decodeError(connect311(flags: 0x03), version: nil) == .connectReservedFlagSet)
    }

    @Test("[MQTT-3.1.2-14] Will QoS 3 is malformed")
    func willQoS3() {
        // Proves Will QoS 3 with the Will Flag set is refused.
        #expect(decodeError(connect311(flags: 0x1E), version: nil) == .willQoSInvalid)
    }

    @Test("[MQTT-3.1.2-13] Will QoS must be 0 without the Will Flag")
    func willQoSWithoutWill() {
        // Proves Will QoS 1 with Will Flag 0 is refused.
        #expect(decodeError(connect311(flags: 0x0A), version: nil) == .willFieldsWithoutWillFlag)
    }

    @Test("[MQTT-3.1.2-15] Will Retain must be 0 without the Will Flag")
    func willRetainWithoutWill() {
        // Proves Will Retain with Will Flag 0 is refused.
        #expect(decodeError(connect311(flags: 0x22), version: nil) == .willFieldsWithoutWillFlag)
    }

    @Test("[MQTT-3.1.2-22] In 3.1.1 a password without a user name is malformed")
    func passwordWithoutUserName() {
        // Proves the Password Flag without the User Name Flag is refused for 3.1.1.
        let bytes = connect311(flags: 0x42, tail: [0x00, 0x01, 0x70])
        #expect(decodeError(bytes, version: nil) == .passwordWithoutUserName)
    }

    @Test("[MQTT-3.1.3-8] 3.1.1 empty client identifier with Clean Session 0 is rejected with 0x02")
    func emptyClientIdentifier() throws {
        // Proves the 3.1.1 rule, its CONNACK code, and that clean session or 5.0 allow an empty identifier.
        let error = decodeError(connect311(flags: 0x00, clientIdentifier: [0x00, 0x00]), version: nil)
        #expect(error == .clientIdentifierInvalid)
        #expect(error?.connackReturnCodeV3 == 0x02)
        #expect(decodeError(connect311(flags: 0x02, clientIdentifier: [0x00, 0x00]), version: nil) == nil)
        let v5 = ConnectPacket(protocolVersion: .v5, clientIdentifier: "", cleanStart: false)
        #expect(try decodeOne(v5.encode(version: .v5), version: nil) == .connect(v5))
    }

    @Test("[MQTT-1.5.4-1] A client identifier that is not UTF-8 is malformed")
    func clientIdentifierUTF8() {
        // Proves strings in CONNECT are validated (an overlong encoding of '/').
        #expect(
            decodeError(connect311(flags: 0x02, clientIdentifier: [0x00, 0x02, 0xC0, 0xAF]), version: nil)
                == .invalidString(.malformedUTF8))
    }

    @Test("Trailing bytes after the CONNECT payload are malformed")
    func connectTrailingBytes() {
        // Proves the payload must end exactly at the remaining length.
        #expect(decodeError(connect311(flags: 0x02, tail: [0x00]), version: nil) == .invalidRemainingLength(.connect))
    }

    // MARK: PUBLISH

    @Test("[MQTT-3.3.1-2] DUP must be 0 for QoS 0")
    func duplicateQoS0() {
        // Proves DUP with QoS 0 is refused.
        #expect(decodeError([0x38, 0x03, 0x00, 0x01, 0x61], version: .v3_1_1) == .duplicateFlagWithQoS0)
    }

    @Test("[MQTT-3.3.2-2] A topic name with a wildcard is refused with 0x90")
    func topicWildcard() {
        // Proves '#' and '+' are refused in PUBLISH topics.
        let error = decodeError([0x30, 0x05, 0x00, 0x03, 0x61, 0x2F, 0x23], version: .v3_1_1)
        #expect(error == .topicNameInvalid(.wildcardInTopicName))
        #expect(error?.reasonCode == .topicNameInvalid)
        #expect(
            decodeError([0x30, 0x04, 0x00, 0x01, 0x2B, 0x00], version: .v5) == .topicNameInvalid(.wildcardInTopicName))
    }

    @Test("[MQTT-4.7.3-1] An empty topic name is refused (unless a 5.0 Topic Alias stands for it)")
    func emptyTopic() {
        // Proves an empty topic fails in 3.1.1 and in 5.0 without Topic Alias.
        #expect(decodeError([0x30, 0x02, 0x00, 0x00], version: .v3_1_1) == .topicNameInvalid(.empty))
        #expect(decodeError([0x30, 0x03, 0x00, 0x00, 0x00], version: .v5) == .topicNameInvalid(.empty))
    }

    @Test("[MQTT-1.5.4-1] A topic that is not well-formed UTF-8 is malformed")
    func topicUTF8() {
        // Proves overlong encodings and surrogates in a topic are refused.
        #expect(decodeError([0x30, 0x04, 0x00, 0x02, 0xC0, 0x80], version: .v3_1_1) == .invalidString(.malformedUTF8))
        #expect(
            decodeError([0x30, 0x06, 0x00, 0x03, 0xED, 0xA0, 0x80, 0x00], version: .v5)
                == .invalidString(.malformedUTF8))
    }

    @Test("[MQTT-1.5.4-2] A topic containing U+0000 is malformed")
    func topicNull() {
        // Proves the null character is refused in a topic.
        #expect(decodeError([0x30, 0x03, 0x00, 0x01, 0x00], version: .v3_1_1) == .invalidString(.containsNull))
    }

    @Test("[MQTT-2.2.1-3] Packet identifier 0 is refused in PUBLISH, SUBSCRIBE, UNSUBSCRIBE and acknowledgements")
    func packetIdentifierZero() {
        // Proves every packet that carries an identifier refuses 0.
        #expect(
            decodeError([0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00], version: .v3_1_1) == .packetIdentifierZero(.publish)
        )
        #expect(
            decodeError([0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00], version: .v3_1_1)
                == .packetIdentifierZero(.subscribe))
        #expect(
            decodeError([0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 0x61], version: .v3_1_1)
                == .packetIdentifierZero(.unsubscribe))
        #expect(decodeError([0x40, 0x02, 0x00, 0x00], version: .v5) == .packetIdentifierZero(.puback))
    }

    @Test("[MQTT-3.3.2-8] Topic Alias 0 is refused with 0x94")
    func topicAliasZero() {
        // Proves a Topic Alias of 0 is refused.
        let error = decodeError(publish5(properties: [0x23, 0x00, 0x00]), version: .v5)
        #expect(error == .topicAliasInvalid)
        #expect(error?.reasonCode == .topicAliasInvalid)
    }

    @Test("Payload Format Indicator 1 with a non-UTF-8 payload is refused with 0x99 when checked")
    func payloadFormatInvalid() throws {
        // Proves the optional payload check (MQTT 5.0 §3.3.2.3.2) and that it is off by default.
        let bytes: [UInt8] = [0x30, 0x07, 0x00, 0x01, 0x74, 0x02, 0x01, 0x01, 0xFF]  // PFI 1, payload FF
        var checking = PacketDecoder(protocolVersion: .v5, validatesPayloadFormat: true)
        #expect(throws: MQTTDecodeError.payloadFormatInvalid) { _ = try decode(bytes, &checking) }
        #expect(decodeError(bytes, version: .v5) == nil)
    }

    // MARK: Properties

    @Test("A property that may appear once is refused when repeated (Protocol Error)")
    func duplicateProperty() {
        // Proves Message Expiry Interval twice in PUBLISH is refused with 0x82.
        let properties: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02]
        let error = decodeError(publish5(properties: properties), version: .v5)
        #expect(error == .duplicateProperty(.messageExpiryInterval))
        #expect(error?.reasonCode == .protocolError)
    }

    @Test("Subscription Identifier may not repeat in SUBSCRIBE")
    func duplicateSubscriptionIdentifier() {
        // Proves the PUBLISH-only exception for repeating Subscription Identifier.
        let fixed: [UInt8] = [0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, 0x61, 0x00]
        #expect(decodeError(fixed, version: .v5) == .duplicateProperty(.subscriptionIdentifier))
    }

    @Test("A property not allowed in the packet is refused (MQTT 5.0 Table 2-4)")
    func propertyNotAllowed() {
        // Proves Session Expiry Interval is refused in PUBLISH and Will Delay Interval in CONNECT properties.
        #expect(
            decodeError(publish5(properties: [0x11, 0x00, 0x00, 0x00, 0x01]), version: .v5)
                == .propertyNotAllowed(.sessionExpiryInterval, .publish))
    }

    @Test("An unknown property identifier is malformed")
    func unknownProperty() {
        // Proves identifier 0x7F is refused.
        #expect(decodeError(publish5(properties: [0x7F, 0x00]), version: .v5) == .unknownProperty(0x7F))
    }

    @Test("A property length past the packet end is malformed")
    func propertyLength() {
        // Proves the property length is checked against the remaining bytes.
        #expect(decodeError([0x30, 0x04, 0x00, 0x01, 0x74, 0x09], version: .v5) == .invalidPropertyLength)
    }

    @Test("Out-of-range property values are a Protocol Error")
    func propertyValues() {
        // Proves Subscription Identifier 0, Payload Format Indicator 2 and Receive Maximum 0 are refused.
        #expect(
            decodeError(publish5(properties: [0x0B, 0x00]), version: .v5)
                == .invalidPropertyValue(.subscriptionIdentifier))
        #expect(
            decodeError(publish5(properties: [0x01, 0x02]), version: .v5)
                == .invalidPropertyValue(.payloadFormatIndicator))
        let connack: [UInt8] = [0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00]
        #expect(decodeError(connack, version: .v5) == .invalidPropertyValue(.receiveMaximum))
    }

    @Test("A reason code the packet may not carry is malformed")
    func invalidReasonCodes() {
        // Proves PUBACK 0x04, AUTH 0x80 and 3.1.1 CONNACK 6 are refused.
        #expect(decodeError([0x40, 0x03, 0x00, 0x01, 0x04], version: .v5) == .invalidReasonCode(.puback, 0x04))
        #expect(decodeError([0xF0, 0x01, 0x80], version: .v5) == .invalidReasonCode(.auth, 0x80))
        #expect(decodeError([0x20, 0x02, 0x00, 0x06], version: .v3_1_1) == .invalidReasonCode(.connack, 0x06))
        #expect(decodeError([0x90, 0x03, 0x00, 0x01, 0x03], version: .v3_1_1) == .invalidReasonCode(.suback, 0x03))
    }

    // MARK: SUBSCRIBE / UNSUBSCRIBE

    @Test("[MQTT-3.8.3-3] SUBSCRIBE must contain at least one topic filter")
    func subscribeWithoutFilters() {
        // Proves an empty SUBSCRIBE payload is refused in 3.1.1 and 5.0.
        #expect(decodeError([0x82, 0x02, 0x00, 0x01], version: .v3_1_1) == .noTopicFilters(.subscribe))
        #expect(decodeError([0x82, 0x03, 0x00, 0x01, 0x00], version: .v5) == .noTopicFilters(.subscribe))
    }

    @Test("[MQTT-3.10.3-2] UNSUBSCRIBE must contain at least one topic filter")
    func unsubscribeWithoutFilters() {
        // Proves an empty UNSUBSCRIBE payload is refused.
        #expect(decodeError([0xA2, 0x02, 0x00, 0x01], version: .v3_1_1) == .noTopicFilters(.unsubscribe))
    }

    @Test("[MQTT-3.8.3-5] 5.0 subscription options reserved bits must be 0")
    func subscriptionOptionsReserved5() {
        // Proves bits 6 and 7 of the options byte are checked.
        #expect(decodeError(subscribe5(filter: "a", options: 0x40), version: .v5) == .subscriptionOptionsReservedBits)
    }

    @Test("[MQTT-3-8.3-4] 3.1.1 SUBSCRIBE reserved bits must be 0")
    func subscriptionOptionsReserved311() {
        // Proves bits 2-7 after a 3.1.1 filter are checked (0x04 is No Local only in 5.0).
        #expect(
            decodeError([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x04], version: .v3_1_1)
                == .subscriptionOptionsReservedBits)
    }

    @Test("Requested QoS 3 and Retain Handling 3 are refused")
    func subscriptionOptionValues() {
        // Proves the two reserved option values (MQTT 5.0 §3.8.3.1).
        #expect(decodeError(subscribe5(filter: "a", options: 0x03), version: .v5) == .subscriptionQoSInvalid)
        #expect(decodeError(subscribe5(filter: "a", options: 0x30), version: .v5) == .retainHandlingInvalid)
    }

    @Test("[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error")
    func noLocalShared() {
        // Proves No Local is refused on `$share/g/t`.
        #expect(
            decodeError(subscribe5(filter: "$share/g/t", options: 0x04), version: .v5) == .noLocalOnSharedSubscription)
    }

    @Test("[MQTT-4.7.1-1] A misplaced '#' in a filter is refused with 0x8F")
    func misplacedMultiLevelWildcard() {
        // Proves '#' must be last and alone in its level.
        let error = decodeError(subscribe5(filter: "a/#/b", options: 0), version: .v5)
        #expect(error == .topicFilterInvalid(.misplacedWildcard))
        #expect(error?.reasonCode == .topicFilterInvalid)
        #expect(
            decodeError(subscribe5(filter: "a#", options: 0), version: .v5) == .topicFilterInvalid(.misplacedWildcard))
    }

    @Test("[MQTT-4.7.1-2] A '+' sharing a level is refused")
    func misplacedSingleLevelWildcard() {
        // Proves '+' must occupy a whole level.
        #expect(
            decodeError(subscribe5(filter: "a/b+", options: 0), version: .v5) == .topicFilterInvalid(.misplacedWildcard)
        )
    }

    @Test("[MQTT-4.8.2-1] A shared subscription needs a non-empty share name and a filter")
    func emptyShareName() {
        // Proves `$share//t` and `$share/g` are refused in 5.0.
        #expect(
            decodeError(subscribe5(filter: "$share//t", options: 0), version: .v5)
                == .topicFilterInvalid(.invalidSharedSubscription))
        #expect(
            decodeError(subscribe5(filter: "$share/g", options: 0), version: .v5)
                == .topicFilterInvalid(.invalidSharedSubscription))
    }

    @Test("[MQTT-4.7.3-1] An empty topic filter is refused")
    func emptyFilter() {
        // Proves a zero-length filter is refused.
        #expect(decodeError([0xA2, 0x04, 0x00, 0x01, 0x00, 0x00], version: .v3_1_1) == .topicFilterInvalid(.empty))
    }
}
