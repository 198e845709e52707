// Codec micro-benchmarks: decode and encode throughput and allocations per packet.
//
//   swift run -c release CodecBenchmarks
//
// Back of the envelope: a 64-byte QoS 0 PUBLISH is ~75 bytes on the wire; decoding it borrowed is a header
// parse, a topic UTF-8 scan and a wildcard scan, so tens of nanoseconds (tens of millions per second per
// core), with no allocation. Encoding from pieces is two memcpy calls. The owned decode allocates the topic,
// payload and property arrays, so it is several times slower: the data path must not use it.
// It prints figures and asserts nothing about time; it does fail if the borrowed PUBLISH decode allocates.

import MQTTCodec

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Measurement

/// Monotonic time in nanoseconds.
func nowNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Keeps results alive so the optimizer cannot drop the measured work.
nonisolated(unsafe) var sink = 0

struct Row {
    var name: String
    var packetsPerSecond: Double
    var nanosecondsPerPacket: Double
    var bytesPerSecond: Double
    var allocationsPerPacket: Double
}

nonisolated(unsafe) var rows: [Row] = []

/// Runs `body` (which processes `batch` packets of `packetBytes` bytes each call) for about `seconds`, then
/// once more with allocation counting on.
func measure(_ name: String, packetBytes: Int, batch: Int = 1_000, seconds: Double = 0.5, _ body: () -> Void) {
    for _ in 0..<10 { body() }  // warm up
    var iterations = 0
    let start = nowNanoseconds()
    let deadline = start + UInt64(seconds * 1e9)
    var now = start
    while now < deadline {
        for _ in 0..<16 { body() }
        iterations += 16
        now = nowNanoseconds()
    }
    let countedCalls = 20
    let allocations = countingAllocations { for _ in 0..<countedCalls { body() } }
    let packets = Double(iterations * batch)
    let elapsed = Double(now - start) / 1e9
    rows.append(
        Row(
            name: name, packetsPerSecond: packets / elapsed, nanosecondsPerPacket: elapsed * 1e9 / packets,
            bytesPerSecond: packets * Double(packetBytes) / elapsed,
            allocationsPerPacket: allocations < 0 ? -1 : Double(allocations) / Double(countedCalls * batch)
        )
    )
}

func padded(_ text: String, _ width: Int, left: Bool = false) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + padding : padding + text
}

func format(_ value: Double, decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...].count
        if fraction < decimals { text += String(repeating: "0", count: decimals - fraction) }
        if decimals == 0 { text = String(text[..<dot]) }
    }
    return text
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

let counterInstalled = installAllocationCounter()
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

// A sanity check that the counter counts: one array allocation per iteration.
let counted = countingAllocations {
    for index in 0..<1_000 { sink &+= [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1 + index).count }
}
let counterWorks = counterInstalled && counted >= 1_000

// MARK: - Report

print(
    padded("benchmark", 42, left: true) + padded("packets/s", 14) + padded("ns/packet", 11) + padded("MB/s", 10)
        + padded("allocs/packet", 15)
)
print(String(repeating: "-", count: 92))
for row in rows {
    print(
        padded(row.name, 42, left: true) + padded(format(row.packetsPerSecond, decimals: 0), 14)
            + padded(format(row.nanosecondsPerPacket, decimals: 1), 11)
            + padded(format(row.bytesPerSecond / 1e6, decimals: 0), 10)
            + padded(row.allocationsPerPacket < 0 ? "n/a" : format(row.allocationsPerPacket, decimals: 3), 15)
    )
}
let selfCheck = counterWorks ? "ok, \(counted) for 1000 arrays" : "NOT COUNTING (link with -Xlinker --export-dynamic)"
print("allocation counter (malloc interposition) self-check: \(selfCheck) (checksum \(sink & 0xFFFF))")
let borrowed = rows.filter { $0.name.contains("borrowed") || $0.name.contains("from pieces") }
if counterWorks && borrowed.contains(where: { $0.allocationsPerPacket > 0 }) {
    print("FAIL: the data-path PUBLISH decode or encode allocates")
    exit(1)
}
