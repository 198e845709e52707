// Router micro-benchmarks: topic-trie matching and whole router turns (bytes in, encoded deliveries out) on one
// shard, with no sockets: the user-space cost of the broker per message, and its allocations.
//
//   swift run -c release RouterBenchmarks
//
// Back of the envelope: a 64-byte QoS 0 PUBLISH to one subscriber is a frame parse (~40 ns, CodecBenchmarks), an
// interest lookup and a trie match over a few levels (tens of ns each), and one encode of ~80 bytes into the
// subscriber's queue (~25 ns): about 150 ns per delivered message is what the router should cost. The kernel's
// loopback TCP costs several times that per packet, batched or not, so the router must stay well below it.
// It prints figures and asserts nothing about time. Run it under `valgrind --tool=callgrind` (built with
// `-Xswiftc -dwarf-version=4`, Valgrind 3.19 cannot read DWARF 5) to see where the instructions go.

import BenchmarkSupport
import MQTTCodec
import MQTTRouter

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - An environment that encodes every write into one reused buffer

/// Accepts every write (encoded into a scratch buffer, so the encode cost is measured), and remembers the packet
/// identifier of the last QoS 1/2 PUBLISH per connection so the benchmark can acknowledge it.
struct BenchmarkEnvironment: RouterEnvironment {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    var bytesWritten = 0
    var packetsWritten = 0
    var nextTimer: UInt64 = 1
    /// PUBLISH packet identifiers written per connection, in order, for QoS 1 acknowledgements.
    var pendingAcknowledgements: [ConnectionKey: [UInt16]] = [:]
    var recordIdentifiers = false

    mutating func write(_ connection: ConnectionKey, byteCount: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Void)
        -> Bool {
        precondition(byteCount <= scratch.count, "benchmark packet larger than the scratch buffer")
        let target = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<byteCount])
        encode(target)
        bytesWritten &+= byteCount
        packetsWritten &+= 1
        if recordIdentifiers, target[0] >> 4 == 3, (target[0] >> 1) & 3 != 0 {
            // PUBLISH with QoS > 0: skip the remaining length and the topic to read the packet identifier.
            var offset = 1
            while target[offset] & 0x80 != 0 { offset += 1 }
            offset += 1
            let topicLength = Int(target[offset]) << 8 | Int(target[offset + 1])
            offset += 2 + topicLength
            let identifier = UInt16(target[offset]) << 8 | UInt16(target[offset + 1])
            pendingAcknowledgements[connection, default: []].append(identifier)
        }
        return true
    }

    func outboundBytesQueued(_ connection: ConnectionKey) -> Int { 0 }
    mutating func close(_ connection: ConnectionKey, afterFlush: Bool) { fatalError("benchmark connection closed") }
    mutating func pauseReading(_ connection: ConnectionKey) {}
    mutating func resumeReading(_ connection: ConnectionKey) {}
    mutating func send(_ message: ShardMessage, to shard: ShardID) -> MeshSendResult { .accepted }
    mutating func handOff(_ connection: ConnectionKey, to shard: ShardID, state: HandoffState) {
        fatalError("one shard: nothing is handed off")
    }
    mutating func armTimer(deadlineMillis: UInt64, token: UInt64) -> UInt64 {
        nextTimer += 1
        return nextTimer
    }
    mutating func cancelTimer(_ id: UInt64) {}
}

// MARK: - A router with connected clients

/// One shard's router with clients connected and subscribed, driven by encoded packets.
struct RouterBench {
    var router = Router(configuration: RouterConfiguration(shard: ShardID(0), shardCount: 1))
    var env = BenchmarkEnvironment()
    var now: UInt64 = 1_000
    var nextConnection: UInt64 = 1

    /// Connects a client (3.1.1 or 5.0) and answers its connection key.
    mutating func connect(
        _ clientIdentifier: String, version: ProtocolVersion, properties: Properties = Properties()
    ) -> ConnectionKey {
        let key = ConnectionKey(rawValue: nextConnection)
        nextConnection += 1
        router.connectionAccepted(key, now: now, env: &env)
        let packet = ConnectPacket(
            protocolVersion: version, clientIdentifier: clientIdentifier, keepAliveSeconds: 0, properties: properties
        )
        feed(key, Packet.connect(packet).encode(version: version))
        return key
    }

    mutating func subscribe(_ key: ConnectionKey, _ filter: String, qos: QoS, version: ProtocolVersion) {
        let packet = SubscribePacket(
            packetIdentifier: PacketIdentifier(nonZero: 1),
            subscriptions: [TopicSubscription(filter: try! TopicFilter(validating: filter), options: .init(qos: qos))]
        )
        feed(key, Packet.subscribe(packet).encode(version: version))
    }

    /// Hands `bytes` to the router as one receive; every byte must be consumed.
    mutating func feed(_ key: ConnectionKey, _ bytes: [UInt8]) {
        let consumed = bytes.withUnsafeBytes { router.received(key, bytes: $0, now: now, env: &env) }
        precondition(consumed == bytes.count, "the router left bytes of a whole packet")
    }

    /// Acknowledges every QoS 1 PUBLISH written to subscribers since the last call (PUBACK per identifier).
    mutating func acknowledgeAll(version: ProtocolVersion) {
        let pending = env.pendingAcknowledgements
        env.pendingAcknowledgements.removeAll(keepingCapacity: true)
        for (key, identifiers) in pending {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(identifiers.count * 4)
            for identifier in identifiers { bytes += [0x40, 0x02, UInt8(identifier >> 8), UInt8(identifier & 0xFF)] }
            feed(key, bytes)
        }
    }
}

/// `count` PUBLISH packets back to back (one receive), to `topic(i)`, QoS `qos`, 64-byte payload.
func publishBatch(count: Int, qos: QoS, version: ProtocolVersion, topic: (Int) -> String) -> [UInt8] {
    var bytes: [UInt8] = []
    for index in 0..<count {
        let packet = PublishPacket(
            qos: qos, topic: try! TopicName(validating: topic(index)),
            packetIdentifier: qos == .atMostOnce ? nil : PacketIdentifier(nonZero: UInt16(index % 60_000 + 1)),
            payload: [UInt8](repeating: 0x5A, count: 64)
        )
        bytes += Packet.publish(packet).encode(version: version)
    }
    return bytes
}

// MARK: - Benchmarks

let selfCheck = allocationCounterSelfCheck()
nonisolated(unsafe) var matches = BenchmarkTable(unit: "lookup")
nonisolated(unsafe) var turns = BenchmarkTable(unit: "message")

/// Trie matching: `filterCount` subscriptions of the shape `site/N/+/temperature` plus a few wildcards, matched
/// against topics that hit one filter each.
func benchmarkTrieMatch(filterCount: Int) {
    var trie = SubscriptionTrie<Int, Int>()
    for index in 0..<filterCount {
        _ = trie.insert(try! TopicFilter(validating: "site/\(index)/+/temperature"), subscriber: index, value: index)
    }
    _ = trie.insert(try! TopicFilter(validating: "site/#"), subscriber: -1, value: 0)
    _ = trie.insert(try! TopicFilter(validating: "+/+/+/humidity"), subscriber: -2, value: 0)
    let topics = (0..<256).map { try! TopicName(validating: "site/\(($0 * 7919) % filterCount)/floor-2/temperature") }
    matches.measure("match 1 of \(filterCount) filters (+ site/#)", operationsPerCall: topics.count) {
        for topic in topics {
            trie.match(topic, subscriber: { subscriber, _ in sink &+= subscriber }, sharedGroup: { _ in })
        }
    }
}

let only = CommandLine.arguments.dropFirst().first
if only == nil || only == "trie" {
    benchmarkTrieMatch(filterCount: 10)
    benchmarkTrieMatch(filterCount: 10_000)
}

let batchCount = 256

/// Fan-in: 10 publishers on `bench/in/N`, one subscriber on `bench/in/+`; a batch is 256 PUBLISH packets from
/// one publisher in one receive.
func benchmarkFanIn(qos: QoS, version: ProtocolVersion) {
    var bench = RouterBench()
    let subscriber = bench.connect("subscriber", version: version)
    bench.subscribe(subscriber, "bench/in/+", qos: qos, version: version)
    let publishers = (0..<10).map { bench.connect("publisher-\($0)", version: version) }
    let batches = publishers.indices.map { publisher in
        publishBatch(count: batchCount, qos: qos, version: version) { _ in "bench/in/\(publisher)" }
    }
    bench.env.recordIdentifiers = qos != .atMostOnce
    var turn = 0
    turns.measure("fan-in 10→1 QoS \(qos.rawValue) \(version == .v5 ? "5.0" : "3.1.1")", operationsPerCall: batchCount) {
        bench.feed(publishers[turn % 10], batches[turn % 10])
        bench.acknowledgeAll(version: version)
        turn += 1
    }
    sink &+= bench.env.bytesWritten
}

/// Fan-out: one publisher on `bench/out`, 50 subscribers; a batch is 16 PUBLISH packets (800 deliveries). With
/// `topicAliasMaximum` (5.0), the subscribers accept broker-to-client topic aliases: every delivery after the first
/// per subscriber carries an alias and an empty topic.
func benchmarkFanOut(qos: QoS, version: ProtocolVersion, topicAliasMaximum: UInt16 = 0) {
    var bench = RouterBench()
    let connectProperties: Properties = topicAliasMaximum == 0 ? [] : [.topicAliasMaximum(topicAliasMaximum)]
    let subscribers = (0..<50).map {
        bench.connect("subscriber-\($0)", version: version, properties: connectProperties)
    }
    for subscriber in subscribers { bench.subscribe(subscriber, "bench/out", qos: qos, version: version) }
    let publisher = bench.connect("publisher", version: version)
    let batch = publishBatch(count: 16, qos: qos, version: version) { _ in "bench/out" }
    bench.env.recordIdentifiers = qos != .atMostOnce
    let aliases = topicAliasMaximum == 0 ? "" : ", aliases"
    let name = "fan-out 1→50 QoS \(qos.rawValue) \(version == .v5 ? "5.0" : "3.1.1")\(aliases)"
    turns.measure(name, operationsPerCall: 16 * 50) {
        bench.feed(publisher, batch)
        bench.acknowledgeAll(version: version)
    }
    sink &+= bench.env.bytesWritten
}

/// Pairs: 50 publishers each on `bench/pair/N`, 50 subscribers each on its own topic; a batch is 256 PUBLISH
/// packets from one publisher.
func benchmarkPairs(qos: QoS, version: ProtocolVersion) {
    var bench = RouterBench()
    let subscribers = (0..<50).map { bench.connect("subscriber-\($0)", version: version) }
    for (index, subscriber) in subscribers.enumerated() {
        bench.subscribe(subscriber, "bench/pair/\(index)", qos: qos, version: version)
    }
    let publishers = (0..<50).map { bench.connect("publisher-\($0)", version: version) }
    let batches = publishers.indices.map { publisher in
        publishBatch(count: batchCount, qos: qos, version: version) { _ in "bench/pair/\(publisher)" }
    }
    bench.env.recordIdentifiers = qos != .atMostOnce
    var turn = 0
    turns.measure("50 pairs QoS \(qos.rawValue) \(version == .v5 ? "5.0" : "3.1.1")", operationsPerCall: batchCount) {
        bench.feed(publishers[turn % 50], batches[turn % 50])
        bench.acknowledgeAll(version: version)
        turn += 1
    }
    sink &+= bench.env.bytesWritten
}

if only == nil || only == "fan-in" {
    benchmarkFanIn(qos: .atMostOnce, version: .v3_1_1)
    benchmarkFanIn(qos: .atMostOnce, version: .v5)
}
if only == nil || only == "fan-out" {
    benchmarkFanOut(qos: .atMostOnce, version: .v3_1_1)
    benchmarkFanOut(qos: .atMostOnce, version: .v5)
    benchmarkFanOut(qos: .atLeastOnce, version: .v5)
    benchmarkFanOut(qos: .atMostOnce, version: .v5, topicAliasMaximum: 10)
}
if only == nil || only == "pairs" {
    benchmarkPairs(qos: .atMostOnce, version: .v3_1_1)
    benchmarkPairs(qos: .atLeastOnce, version: .v3_1_1)
}

// MARK: - Report

if !matches.rows.isEmpty {
    matches.printReport()
    print()
}
print("Router turns on one shard: delivered messages (PUBLISH bytes in, encoded deliveries out, acks fed back)")
turns.printReport()
let selfCheckText = selfCheck.works ? "ok, \(selfCheck.counted) for 1000 arrays" : "NOT COUNTING"
print("allocation counter (malloc interposition) self-check: \(selfCheckText) (checksum \(sink & 0xFFFF))")
