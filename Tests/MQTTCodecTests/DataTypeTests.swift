import MQTTCodec
import ShoalTestSupport
import Testing

// MARK: - Data types: variable byte integers, identifiers, reason codes, options

@Suite("Data types")
struct DataTypeTests {
    @Test("Variable byte integer sizes follow MQTT 5.0 §1.5.5 boundaries")
    func variableByteIntegerSizes() {
        // Proves the size function switches at 128, 16,384 and 2,097,152.
        #expect(VariableByteInteger.size(0) == 1)
        #expect(VariableByteInteger.size(127) == 1)
        #expect(VariableByteInteger.size(128) == 2)
        #expect(VariableByteInteger.size(16_383) == 2)
        #expect(VariableByteInteger.size(16_384) == 3)
        #expect(VariableByteInteger.size(2_097_151) == 3)
        #expect(VariableByteInteger.size(2_097_152) == 4)
        #expect(VariableByteInteger.size(268_435_455) == 4)
    }

    @Test("Remaining length is decoded at every size boundary")
    func remainingLengthBoundaries() throws {
        // Proves the fixed header parser reads 1- to 4-byte remaining lengths and reports the exact number of
        // missing body bytes.
        let cases: [([UInt8], Int)] = [
            ([0x30, 0x00], 0),
            ([0x30, 0x7F], 127),
            ([0x30, 0x80, 0x01], 128),
            ([0x30, 0xFF, 0x7F], 16_383),
            ([0x30, 0x80, 0x80, 0x01], 16_384),
            ([0x30, 0xFF, 0xFF, 0x7F], 2_097_151),
            ([0x30, 0x80, 0x80, 0x80, 0x01], 2_097_152),
            ([0x30, 0xFF, 0xFF, 0xFF, 0x7F], 268_435_455),
        ]
        let decoder = PacketDecoder(protocolVersion: .v3_1_1)
        for (header, length) in cases {
            let result = try readFrame(header, decoder)
            if length == 0 {
                guard case .frame(let frame) = result else {
                    Issue.record("expected a frame, got \(result)")
                    continue
                }
                #expect(frame.remainingLength == 0 && frame.headerByteCount == 2)
            } else {
                #expect(result == .needMoreBytes(length), "header \(hexString(header))")
            }
        }
    }

    @Test("A non-minimal remaining length is accepted, as MQTT 5.0 §1.5.5 permits")
    func nonMinimalRemainingLength() throws {
        // Proves `30 80 00` (zero written in two bytes) is read as remaining length 0: decoding then
        // fails because an empty PUBLISH body is truncated, not because of the encoding.
        #expect(decodeError([0x30, 0x80, 0x00], version: .v3_1_1) == .truncated(.publish))
    }

    @Test("Incomplete fixed header asks for more bytes")
    func incompleteHeader() throws {
        // Proves an empty buffer asks for 2 bytes and a header cut inside its remaining length asks for 1.
        let decoder = PacketDecoder(protocolVersion: .v5)
        let empty: [UInt8] = []
        #expect(try readFrame(empty, decoder) == .needMoreBytes(2))
        let partial: [UInt8] = [0x30, 0x80]
        #expect(try readFrame(partial, decoder) == .needMoreBytes(1))
    }

    @Test("[MQTT-2.2.1-3] PacketIdentifier cannot hold zero and wraps past 65535 to 1")
    func packetIdentifier() {
        // Proves the type makes 0 unrepresentable and `next` skips it.
        #expect(PacketIdentifier(0) == nil)
        #expect(PacketIdentifier(7)?.rawValue == 7)
        #expect(PacketIdentifier(nonZero: 65_535).next.rawValue == 1)
    }

    @Test("Reason codes sharing a value compare equal and are valid per packet")
    func sharedReasonCodes() {
        // Proves 0x00 is Success, Normal disconnection and Granted QoS 0 at once, and validity is per packet.
        #expect(ReasonCode.success == .normalDisconnection)
        #expect(ReasonCode.success == .grantedQoS0)
        #expect(ReasonCode.disconnectWithWillMessage.isValid(in: .disconnect))
        #expect(!ReasonCode.disconnectWithWillMessage.isValid(in: .puback))
        #expect(ReasonCode.grantedQoS2.isValid(in: .suback))
        #expect(!ReasonCode.grantedQoS2.isValid(in: .unsuback))
        #expect(ReasonCode.continueAuthentication.isValid(in: .auth))
        #expect(ReasonCode.packetIdentifierNotFound.isValid(in: .pubrel))
        #expect(!ReasonCode.noMatchingSubscribers.isValid(in: .pubcomp))
        #expect(ReasonCode.malformedPacket.isFailure && !ReasonCode.grantedQoS1.isFailure)
    }

    @Test("3.1.x CONNACK return codes map to and from 5.0 reason codes")
    func connackReturnCodes() {
        // Proves the six 3.1.1 return codes round-trip through ReasonCode and 6+ are refused.
        for code in UInt8(0)...5 {
            #expect(ReasonCode(connackReturnCodeV3: code)?.connackReturnCodeV3 == code)
        }
        #expect(ReasonCode(connackReturnCodeV3: 6) == nil)
        #expect(ReasonCode.banned.connackReturnCodeV3 == 5)
    }

    @Test("Subscription options byte round-trips for 5.0 and keeps only QoS for 3.1.1")
    func subscriptionOptions() throws {
        // Proves every bit of the 5.0 options byte maps to its field and back.
        let options = SubscriptionOptions(
            qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend
        )
        #expect(options.byte(version: .v5) == 0b0010_1110)
        #expect(options.byte(version: .v3_1_1) == 0b0000_0010)
        #expect(try SubscriptionOptions(byte: 0b0010_1110, version: .v5) == options)
    }

    @Test("Decode errors map to 5.0 reason codes and to a silent close in 3.1.x")
    func errorMapping() {
        // Proves the mapping a broker uses to choose DISCONNECT or CONNACK reason codes.
        #expect(MQTTDecodeError.publishQoSInvalid.reasonCode == .malformedPacket)
        #expect(MQTTDecodeError.packetTooLarge(byteCount: 10, maximum: 5).reasonCode == .packetTooLarge)
        #expect(MQTTDecodeError.unsupportedProtocolVersion(6).reasonCode == .unsupportedProtocolVersion)
        #expect(MQTTDecodeError.clientIdentifierInvalid.reasonCode == .clientIdentifierNotValid)
        #expect(MQTTDecodeError.topicNameInvalid(.wildcardInTopicName).reasonCode == .topicNameInvalid)
        #expect(MQTTDecodeError.topicFilterInvalid(.misplacedWildcard).reasonCode == .topicFilterInvalid)
        #expect(MQTTDecodeError.payloadFormatInvalid.reasonCode == .payloadFormatInvalid)
        #expect(MQTTDecodeError.duplicateProperty(.topicAlias).reasonCode == .protocolError)
        #expect(MQTTDecodeError.publishQoSInvalid.disconnectReasonCode(for: .v3_1_1) == nil)
        #expect(MQTTDecodeError.publishQoSInvalid.disconnectReasonCode(for: .v5) == .malformedPacket)
        #expect(MQTTDecodeError.unsupportedProtocolVersion(6).connackReturnCodeV3 == 1)
        #expect(MQTTDecodeError.clientIdentifierInvalid.connackReturnCodeV3 == 2)
    }

    @Test("Every property identifier has a value type and at least one packet that may carry it")
    func propertyTable() {
        // Proves Table 2-4 is complete: 27 identifiers, User Property allowed everywhere.
        #expect(PropertyIdentifier.allCases.count == 27)
        for identifier in PropertyIdentifier.allCases {
            #expect(PropertyContext.allCases.contains { identifier.isAllowed(in: $0) })
        }
        #expect(PropertyContext.allCases.allSatisfy { PropertyIdentifier.userProperty.isAllowed(in: $0) })
        #expect(PropertyIdentifier.willDelayInterval.isAllowed(in: .will))
        #expect(!PropertyIdentifier.willDelayInterval.isAllowed(in: .connect))
        #expect(PropertyIdentifier.topicAlias.valueType == .twoByteInteger)
    }

    @Test("Seeded random generator is deterministic")
    func seededRandom() {
        // Proves the same seed replays the same sequence.
        var first = SeededRandom(seed: 42)
        var second = SeededRandom(seed: 42)
        #expect(first.bytes(32) == second.bytes(32))
    }
}

// MARK: - Topic validation in place

@Suite("Topic validation in place")
struct TopicValidationTests {
    /// The reference: the validation rules written out plainly over an array.
    private func reference(_ bytes: [UInt8]) -> TopicError? {
        if bytes.isEmpty { return .empty }
        if let error = MQTTString.validate(bytes) { return .invalidString(error) }
        if bytes.contains(UInt8(ascii: "+")) || bytes.contains(UInt8(ascii: "#")) { return .wildcardInTopicName }
        return nil
    }

    @Test("TopicName.validate agrees with the plain rules at every position of every fault")
    func validateAgreesWithReference() {
        // Proves the eight-bytes-at-a-time fast path misses no NUL, wildcard or non-ASCII byte, wherever it
        // falls relative to the word boundaries.
        let faults: [[UInt8]] = [
            [0x00], [0x2B], [0x23], [0xC3, 0xA9], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xFF], [0x80],
        ]
        for length in 0..<40 {
            let clean = [UInt8](repeating: UInt8(ascii: "a"), count: length)
            #expect(clean.withUnsafeBytes { TopicName.validate($0) } == reference(clean))
            for fault in faults {
                for position in 0...length {
                    let bytes = Array(clean[..<position]) + fault + Array(clean[position...])
                    #expect(bytes.withUnsafeBytes { TopicName.validate($0) } == reference(bytes), "\(hexString(bytes))")
                }
            }
        }
    }

    @Test("Seeded random byte strings validate the same as the plain rules")
    func validateRandom() {
        // Proves agreement on random mixes of ASCII, wildcards, NUL and multi-byte sequences.
        var random = SeededRandom(seed: 0x70_91C)
        let alphabet: [UInt8] = [
            0x61, 0x2F, 0x2B, 0x23, 0x00, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0x24,
        ]
        for _ in 0..<5_000 {
            let length = Int(random.next() % 24)
            let bytes = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            #expect(bytes.withUnsafeBytes { TopicName.validate($0) } == reference(bytes), "\(hexString(bytes))")
        }
    }
}
