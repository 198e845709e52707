import MQTTCodec

// MARK: - Decoder verifier

/// Checks that decoding does not depend on how the bytes arrive (after SwiftNIO's
/// `ByteToMessageDecoderVerifier`): the same stream is fed whole, one byte at a time, and split at seeded
/// random points; every way must yield the same packets and end with the same error (or none). Along the
/// way it checks that each "need more bytes" answer never asks for more than the packet actually needs.
public enum DecoderVerifier {
    /// A disagreement between feeding strategies, or with the expected packets.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong, with the seed and the strategy.
        public let description: String
    }

    /// What one feeding strategy produced.
    public struct Outcome: Equatable, Sendable {
        /// The packets, in order.
        public var packets: [Packet]
        /// The error that stopped decoding, if any.
        public var error: MQTTDecodeError?
        /// Bytes left undecoded at the end (a partial packet).
        public var leftoverByteCount: Int

        /// Same packets and same error; the leftover counts must match too unless an error stopped decoding
        /// (an error in a fixed header is found as soon as the header arrives, however much follows).
        public func agrees(with other: Outcome) -> Bool {
            packets == other.packets && error == other.error
                && (error != nil || leftoverByteCount == other.leftoverByteCount)
        }
    }

    /// Decodes `stream` in several ways and checks they agree.
    ///
    /// - Parameters:
    ///   - stream: the bytes, possibly several packets.
    ///   - decoder: the decoder's starting configuration (protocol version or `nil`, limits).
    ///   - expected: the packets the stream must yield, if known.
    ///   - seed: the seed for random split points.
    ///   - randomRounds: how many random splittings to try.
    /// - Returns: the common outcome.
    /// - Throws: ``Failure`` naming the strategy that disagreed and the seed.
    @discardableResult
    public static func verify(
        stream: [UInt8], decoder: PacketDecoder = PacketDecoder(), expected: [Packet]? = nil, seed: UInt64 = 1,
        randomRounds: Int = 8
    ) throws(Failure) -> Outcome {
        let whole = decode(chunks: [stream], decoder: decoder)
        if let expected, whole.packets != expected || whole.error != nil {
            throw Failure(
                description:
                    "whole stream: expected \(expected), got \(whole.packets) error \(String(describing: whole.error))"
            )
        }
        let byteByByte = decode(chunks: stream.map { [$0] }, decoder: decoder)
        if !byteByByte.agrees(with: whole) {
            throw Failure(description: "byte by byte: \(byteByByte) differs from whole stream: \(whole)")
        }
        var random = SeededRandom(seed: seed)
        for round in 0..<randomRounds {
            var chunks: [[UInt8]] = []
            var index = 0
            while index < stream.count {
                let length = Int(random.next() % UInt64(min(stream.count - index, 64))) + 1
                chunks.append(Array(stream[index..<(index + length)]))
                index += length
            }
            let outcome = decode(chunks: chunks, decoder: decoder)
            if !outcome.agrees(with: whole) {
                throw Failure(
                    description: "random split (seed \(seed), round \(round)): \(outcome) differs from whole: \(whole)"
                )
            }
        }
        try checkNeedMoreBytes(stream: stream, decoder: decoder, outcome: whole)
        return whole
    }

    /// Feeds `chunks` in order to a stream decoder, taking packets out after each.
    public static func decode(chunks: [[UInt8]], decoder: PacketDecoder) -> Outcome {
        var stream = PacketStreamDecoder(decoder)
        var packets: [Packet] = []
        for chunk in chunks {
            stream.append(contentsOf: chunk)
            do {
                while let packet = try stream.next() { packets.append(packet) }
            } catch {
                return Outcome(packets: packets, error: error, leftoverByteCount: stream.bufferedByteCount)
            }
        }
        return Outcome(packets: packets, error: nil, leftoverByteCount: stream.bufferedByteCount)
    }

    /// For every prefix of each whole packet, checks that "need N more bytes" never overshoots the packet
    /// and is exact once the fixed header is complete.
    static func checkNeedMoreBytes(stream: [UInt8], decoder start: PacketDecoder, outcome: Outcome) throws(Failure) {
        var decoder = start
        var offset = 0
        for _ in outcome.packets {
            let rest = Array(stream[offset...])
            var packetLength = 0
            var failure: Failure? = nil
            rest.withUnsafeBytes { bytes in
                guard case .packet(_, let length)? = try? decoder.decode(bytes) else {
                    failure = Failure(description: "packet at offset \(offset) no longer decodes")
                    return
                }
                packetLength = length
                for prefix in 0..<length {
                    let result = try? decoder.readFrame(UnsafeRawBufferPointer(rebasing: bytes[0..<prefix]))
                    guard case .needMoreBytes(let needed)? = result else {
                        failure = Failure(description: "prefix \(prefix) of \(length): \(String(describing: result))")
                        return
                    }
                    if needed < 1 || prefix + needed > length {
                        failure = Failure(description: "prefix \(prefix) of \(length) asks for \(needed) more bytes")
                        return
                    }
                }
            }
            if let failure { throw failure }
            offset += packetLength
        }
    }
}
