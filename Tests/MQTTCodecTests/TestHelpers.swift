import MQTTCodec
import ShoalTestSupport
import Testing

// MARK: - Helpers shared by the codec tests

/// Decodes exactly one packet from `bytes`, requiring that it uses every byte.
func decodeOne(_ bytes: [UInt8], version: ProtocolVersion?, maximumPacketSize: Int = PacketDecoder.packetSizeMax)
    throws(MQTTDecodeError) -> Packet
{
    var decoder = PacketDecoder(protocolVersion: version, maximumPacketSize: maximumPacketSize)
    let outcome = bytes.withUnsafeBytes { buffer in
        Result { () throws(MQTTDecodeError) -> PacketDecoder.DecodeResult in try decoder.decode(buffer) }
    }
    switch try outcome.get() {
    case .packet(let packet, let byteCount):
        #expect(byteCount == bytes.count, "packet used \(byteCount) of \(bytes.count) bytes")
        return packet
    case .needMoreBytes(let count):
        Issue.record("needs \(count) more bytes")
        return .pingreq
    }
}

/// The error decoding `bytes` throws, or `nil`.
func decodeError(_ bytes: [UInt8], version: ProtocolVersion?) -> MQTTDecodeError? {
    do {
        _ = try decodeOne(bytes, version: version)
        return nil
    } catch {
        return error
    }
}

/// Checks that `bytes` decode to `packet` under `version`, that `packet` encodes to exactly `bytes`, and that
/// the verifier gets the same result whole, byte by byte and at random split points.
func expectVector(
    _ bytes: [UInt8], _ packet: Packet, version: ProtocolVersion, sourceLocation: SourceLocation = #_sourceLocation
) {
    let decodingVersion: ProtocolVersion? = packet.packetType == .connect ? nil : version
    do {
        let decoded = try decodeOne(bytes, version: decodingVersion)
        #expect(decoded == packet, sourceLocation: sourceLocation)
    } catch {
        Issue.record("decoding failed: \(error)", sourceLocation: sourceLocation)
    }
    let encoded = packet.encode(version: version)
    #expect(hexString(encoded) == hexString(bytes), sourceLocation: sourceLocation)
    #expect(packet.encodedSize(version: version) == bytes.count, sourceLocation: sourceLocation)
    #expect(throws: Never.self, sourceLocation: sourceLocation) {
        try DecoderVerifier.verify(
            stream: bytes, decoder: PacketDecoder(protocolVersion: decodingVersion), expected: [packet]
        )
    }
}

/// A topic name from a literal known to be valid.
func topic(_ string: String) -> TopicName {
    (try? TopicName(validating: string)) ?? TopicName(uncheckedBytes: [])
}

/// A topic filter from a literal known to be valid.
func filter(_ string: String, shared: Bool = true) -> TopicFilter {
    // Safe in tests: every literal passed here is a valid filter; an invalid one fails the comparison.
    (try? TopicFilter(validating: string, allowShared: shared)) ?? (try! TopicFilter(validating: "invalid"))
}

/// Packet identifier from a non-zero literal.
func id(_ value: UInt16) -> PacketIdentifier { PacketIdentifier(nonZero: value) }

/// `decoder.readFrame` over an array. (Closures with typed throws passed to `withUnsafeBytes` crash the
/// 6.3 compiler in IRGen, so the typed error travels in a Result.)
func readFrame(_ bytes: [UInt8], _ decoder: PacketDecoder) throws(MQTTDecodeError) -> PacketDecoder.FrameResult {
    let outcome = bytes.withUnsafeBytes { buffer in
        Result { () throws(MQTTDecodeError) -> PacketDecoder.FrameResult in try decoder.readFrame(buffer) }
    }
    return try outcome.get()
}

/// `decoder.decode` over an array.
func decode(_ bytes: [UInt8], _ decoder: inout PacketDecoder) throws(MQTTDecodeError) -> PacketDecoder.DecodeResult {
    var copy = decoder
    let outcome = bytes.withUnsafeBytes { buffer in
        Result { () throws(MQTTDecodeError) -> PacketDecoder.DecodeResult in try copy.decode(buffer) }
    }
    decoder = copy
    return try outcome.get()
}
