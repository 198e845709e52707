// libFuzzer entry point for the MQTT decoder. Compiled by scripts/fuzz together with Sources/MQTTCodec/*.swift
// into one module (MQTTCodecFuzz), with -sanitize=fuzzer,address. Not part of the SwiftPM package graph.
//
// For every input it:
//   1. decodes the bytes as a stream under each starting version (nil = expect CONNECT, 3.1, 3.1.1, 5.0),
//      borrowed (PublishView) and owned, until "need more bytes" or an error;
//   2. re-encodes each decoded packet and checks that it decodes back to the same value, with the size the
//      encoder announced (a mismatch traps, so libFuzzer records it as a crash);
//   3. feeds the same stream split in two at an input-chosen point and checks the same packets come out.

/// Upper bound on packets decoded per input, so that pathological inputs stay fast.
private let packetCountMax = 256

@_cdecl("LLVMFuzzerTestOneInput")
public func decoderFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    for version in [nil, ProtocolVersion.v3_1, .v3_1_1, .v5] {
        let whole = decodeStream(bytes, version: version, roundTrip: true)
        let split = Int(bytes[0]) % (size + 1)
        let pieces = decodeSplit(bytes, at: split, version: version)
        if pieces.packets != whole.packets || pieces.failed != whole.failed {
            fatalError("split at \(split) disagrees with whole stream (version \(String(describing: version)))")
        }
    }
    return 0
}

/// The packets decoded from `bytes` and whether decoding stopped on an error.
private struct StreamOutcome {
    var packets: [Packet] = []
    var failed = false
}

/// Decodes packets from the start of `bytes` until more bytes are needed or an error occurs.
private func decodeStream(_ bytes: UnsafeRawBufferPointer, version: ProtocolVersion?, roundTrip: Bool) -> StreamOutcome
{
    var decoder = PacketDecoder(protocolVersion: version, maximumPacketSize: 1 << 20, validatesPayloadFormat: true)
    var outcome = StreamOutcome()
    var rest = bytes
    while outcome.packets.count < packetCountMax {
        let frame: PacketDecoder.Frame
        do {
            guard case .frame(let found) = try decoder.readFrame(rest) else { break }
            frame = found
        } catch {
            _ = error.reasonCode
            outcome.failed = true
            break
        }
        if frame.type == .publish {
            // The borrowed path must agree with the owned path.
            let view = try? decoder.decodePublish(frame, in: rest)
            let owned = try? decoder.decodePacket(frame, in: rest)
            if let view, case .publish(let publish)? = owned {
                if view.owned != publish { fatalError("PublishView disagrees with the owned decode") }
            } else if (view == nil) != (owned == nil) {
                fatalError("PublishView and owned decode disagree on validity")
            }
        }
        do {
            let packet = try decoder.decodePacket(frame, in: rest)
            if roundTrip, let version = decoder.protocolVersion { checkRoundTrip(packet, version: version) }
            outcome.packets.append(packet)
        } catch {
            _ = error.disconnectReasonCode(for: decoder.protocolVersion)
            outcome.failed = true
            break
        }
        rest = UnsafeRawBufferPointer(rebasing: rest[frame.byteCount...])
    }
    return outcome
}

/// Decodes `bytes` fed to a stream decoder in two pieces.
private func decodeSplit(_ bytes: UnsafeRawBufferPointer, at split: Int, version: ProtocolVersion?) -> StreamOutcome {
    var stream = PacketStreamDecoder(
        PacketDecoder(protocolVersion: version, maximumPacketSize: 1 << 20, validatesPayloadFormat: true)
    )
    var outcome = StreamOutcome()
    for piece in [bytes[..<split], bytes[split...]] {
        stream.append(contentsOf: piece)
        do {
            while outcome.packets.count < packetCountMax, let packet = try stream.next() {
                outcome.packets.append(packet)
            }
        } catch {
            outcome.failed = true
            return outcome
        }
    }
    return outcome
}

/// Encodes `packet` and checks that it decodes to the same value.
private func checkRoundTrip(_ packet: Packet, version: ProtocolVersion) {
    let encoded = packet.encode(version: version)
    if encoded.count != packet.encodedSize(version: version) { fatalError("encodedSize mismatch for \(packet)") }
    var decoder = PacketDecoder(protocolVersion: packet.packetType == .connect ? nil : version)
    let result = encoded.withUnsafeBytes { buffer in
        Result { () throws(MQTTDecodeError) -> PacketDecoder.DecodeResult in try decoder.decode(buffer) }
    }
    guard case .success(.packet(let decoded, let count)) = result else {
        fatalError("re-encoded \(packet.packetType) does not decode: \(result)")
    }
    if decoded != packet || count != encoded.count {
        fatalError("round trip changed \(packet) into \(decoded)")
    }
}
