// Codec micro-benchmarks: decode and encode throughput and allocations per packet.
//
//   swift run -c release CodecBenchmarks
//
// Back of the envelope: a 64-byte QoS 0 PUBLISH is ~75 bytes on the wire; decoding it borrowed is a header
// parse, a topic UTF-8 scan and a wildcard scan, so tens of nanoseconds (tens of millions per second per
// core), with no allocation. Encoding from pieces is two memcpy calls. The owned decode allocates the topic,
// payload and property arrays, so it is several times slower: the data path must not use it.
// It prints figures and asserts nothing about time; it does fail if the borrowed PUBLISH decode allocates.

import BenchmarkSupport
import MQTTCodec

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Measurement (BenchmarkSupport)

nonisolated(unsafe) var table = BenchmarkTable(unit: "packet")

func measure(_ name: String, packetBytes: Int, batch: Int = 1_000, _ body: () -> Void) {
    table.measure(name, operationsPerCall: batch, bytesPerOperation: packetBytes, body)
}

// MARK: - Inputs

let topic = TopicName(uncheckedBytes: Array("sensors/building-1/floor-2/temperature".utf8))

func publishBytes(payload: Int, version: ProtocolVersion, qos: QoS) -> [UInt8] {
    let properties: Properties = version == .v5 ? [.messageExpiryInterval(60), .payloadFormatIndicator(0)] : []
    return PublishPacket(
        qos: qos, topic: topic, packetIdentifier: qos == .atMostOnce ? nil : PacketIdentifier(nonZero: 42),
        properties: properties, payload: [UInt8](repeating: 0x5A, count: payload)
    ).encode(version: version)
}

let connect = ConnectPacket(
    protocolVersion: .v5, clientIdentifier: "bench-client-0001", keepAliveSeconds: 60, userName: "user",
    password: Array("secret".utf8), properties: [.sessionExpiryInterval(3600), .receiveMaximum(100)]
)
let subscribe = SubscribePacket(
    packetIdentifier: PacketIdentifier(nonZero: 7),
    subscriptions: [
        TopicSubscription(
            filter: try! TopicFilter(validating: "sensors/+/floor-2/#"), options: .init(qos: .atLeastOnce)),
        TopicSubscription(filter: try! TopicFilter(validating: "alerts/#"), options: .init(qos: .exactlyOnce)),
    ]
)

// MARK: - Benchmarks

let selfCheck = allocationCounterSelfCheck()
let batch = 1_000

/// Decodes the same PUBLISH `batch` times through the borrowed path: readFrame + decodePublish.
func benchmarkBorrowedPublishDecode(_ name: String, bytes: [UInt8], version: ProtocolVersion) {
    let decoder = PacketDecoder(protocolVersion: version, maximumPacketSize: 1 << 20)
    bytes.withUnsafeBytes { buffer in
        measure(name, packetBytes: buffer.count, batch: batch) {
            for _ in 0..<batch {
                guard case .frame(let frame)? = try? decoder.readFrame(buffer),
                    let view = try? decoder.decodePublish(frame, in: buffer)
                else { fatalError("benchmark input does not decode") }
                sink &+= view.payload.count &+ view.topic.count
            }
        }
    }
}

/// Decodes the same packet `batch` times into an owned value.
func benchmarkOwnedDecode(_ name: String, bytes: [UInt8], version: ProtocolVersion?) {
    bytes.withUnsafeBytes { buffer in
        measure(name, packetBytes: buffer.count, batch: batch) {
            for _ in 0..<batch {
                var decoder = PacketDecoder(protocolVersion: version, maximumPacketSize: 1 << 20)
                guard case .packet(let packet, let count)? = try? decoder.decode(buffer) else {
                    fatalError("benchmark input does not decode")
                }
                sink &+= count &+ (packet.packetType == .publish ? 1 : 0)
            }
        }
    }
}

/// Encodes a PUBLISH from raw pieces `batch` times into one output buffer.
func benchmarkPiecesEncode(_ name: String, payload: Int, version: ProtocolVersion) {
    let topicBytes = topic.bytes
    let payloadBytes = [UInt8](repeating: 0x5A, count: payload)
    let propertyList: Properties = version == .v5 ? [.messageExpiryInterval(60)] : []
    var propertyBytes = [UInt8](repeating: 0, count: propertyList.encodedByteCount)
    _ = propertyBytes.withUnsafeMutableBytes { propertyList.encode(into: $0) }
    let size = PublishEncoding.encodedSize(
        version: version, qos: .atLeastOnce, topicByteCount: topicBytes.count,
        propertiesByteCount: propertyBytes.count, payloadByteCount: payload
    )
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
    defer { output.deallocate() }
    topicBytes.withUnsafeBytes { topicBuffer in
        payloadBytes.withUnsafeBytes { payloadBuffer in
            propertyBytes.withUnsafeBytes { propertyBuffer in
                measure(name, packetBytes: size, batch: batch) {
                    for index in 0..<batch {
                        sink &+= PublishEncoding.encode(
                            into: output, version: version, qos: .atLeastOnce, retain: false,
                            packetIdentifier: PacketIdentifier(nonZero: UInt16(truncatingIfNeeded: index) | 1),
                            topic: topicBuffer, properties: propertyBuffer, payload: payloadBuffer
                        )
                    }
                }
            }
        }
    }
}

/// Encodes an owned packet `batch` times into one output buffer.
func benchmarkPacketEncode(_ name: String, packet: Packet, version: ProtocolVersion) {
    let size = packet.encodedSize(version: version)
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
    defer { output.deallocate() }
    measure(name, packetBytes: size, batch: batch) {
        for _ in 0..<batch { sink &+= packet.encode(into: output, version: version) }
    }
}

let publish64v4 = publishBytes(payload: 64, version: .v3_1_1, qos: .atMostOnce)
let publish1kv4 = publishBytes(payload: 1024, version: .v3_1_1, qos: .atLeastOnce)
let publish64v5 = publishBytes(payload: 64, version: .v5, qos: .atMostOnce)
let publish1kv5 = publishBytes(payload: 1024, version: .v5, qos: .atLeastOnce)

benchmarkBorrowedPublishDecode("decode PUBLISH 64 B 3.1.1 borrowed", bytes: publish64v4, version: .v3_1_1)
benchmarkBorrowedPublishDecode("decode PUBLISH 1 KiB 3.1.1 borrowed", bytes: publish1kv4, version: .v3_1_1)
benchmarkBorrowedPublishDecode("decode PUBLISH 64 B 5.0 borrowed", bytes: publish64v5, version: .v5)
benchmarkBorrowedPublishDecode("decode PUBLISH 1 KiB 5.0 borrowed", bytes: publish1kv5, version: .v5)
benchmarkOwnedDecode("decode PUBLISH 64 B 3.1.1 owned", bytes: publish64v4, version: .v3_1_1)
benchmarkOwnedDecode("decode PUBLISH 1 KiB 5.0 owned", bytes: publish1kv5, version: .v5)
benchmarkOwnedDecode("decode CONNECT 5.0 owned", bytes: Packet.connect(connect).encode(version: .v5), version: nil)
benchmarkOwnedDecode(
    "decode SUBSCRIBE 3.1.1 owned", bytes: Packet.subscribe(subscribe).encode(version: .v3_1_1), version: .v3_1_1
)
benchmarkPiecesEncode("encode PUBLISH 64 B 3.1.1 from pieces", payload: 64, version: .v3_1_1)
benchmarkPiecesEncode("encode PUBLISH 1 KiB 3.1.1 from pieces", payload: 1024, version: .v3_1_1)
benchmarkPiecesEncode("encode PUBLISH 64 B 5.0 from pieces", payload: 64, version: .v5)
benchmarkPiecesEncode("encode PUBLISH 1 KiB 5.0 from pieces", payload: 1024, version: .v5)
benchmarkPacketEncode(
    "encode PUBLISH 64 B 5.0 owned value",
    packet: .publish(
        PublishPacket(topic: topic, properties: [.messageExpiryInterval(60)], payload: [UInt8](repeating: 1, count: 64))
    ),
    version: .v5
)
benchmarkPacketEncode("encode CONNECT 5.0", packet: .connect(connect), version: .v5)
benchmarkPacketEncode("encode SUBSCRIBE 3.1.1", packet: .subscribe(subscribe), version: .v3_1_1)
benchmarkPacketEncode(
    "encode PUBACK 5.0", packet: .puback(PubAckPacket(packetIdentifier: PacketIdentifier(nonZero: 1))), version: .v5
)

// MARK: - Report

table.printReport()
let selfCheckText = selfCheck.works ? "ok, \(selfCheck.counted) for 1000 arrays" : "NOT COUNTING (link with -Xlinker --export-dynamic)"
print("allocation counter (malloc interposition) self-check: \(selfCheckText) (checksum \(sink & 0xFFFF))")
let borrowed = table.rows.filter { $0.name.contains("borrowed") || $0.name.contains("from pieces") }
if selfCheck.works && borrowed.contains(where: { $0.allocationsPerOperation > 0 }) {
    print("FAIL: the data-path PUBLISH decode or encode allocates")
    exit(1)
}
