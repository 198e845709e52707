import Glibc
import ShardRuntime
import Synchronization
import Testing

// MARK: - Handlers

/// Hands every accepted connection to the next shard on its first bytes (unconsumed, so they travel with it);
/// adopted connections are echoed.
struct HandoffHandler: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = UInt64
    let recorder: Recorder
    let shardID: ShardID
    let shardCount: Int
    var adoptedConnections = Set<ConnectionID>()

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        if adoptedConnections.contains(connection) {
            _ = context.enqueue(connection, bytes: bytes)
            return bytes.count
        }
        // Output queued before the handoff is flushed by this shard before the adopter writes anything.
        _ = Array("<".utf8).withUnsafeBytes { context.enqueue(connection, bytes: $0) }
        context.handOff(connection, to: ShardID((shardID.rawValue + 1) % shardCount), state: 0xC0FFEE)
        if context.isOpen(connection) { recorder.note("still open after handOff") }
        return 0
    }

    mutating func adopted(_ connection: ConnectionID, state: UInt64, context: inout ShardContext<Self>) {
        if state == 0xC0FFEE { recorder.adopted.add(1, ordering: .relaxed) }
        adoptedConnections.insert(connection)
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {
        adoptedConnections.remove(connection)
        recorder.closed.withLock { $0.append(reason) }
    }
}

/// On "go", streams `totalBytes` of a pattern, refilling the bounded queue on `writable`.
struct BulkHandler: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    static let totalBytes = 8 << 20
    let recorder: Recorder
    var progress: [ConnectionID: Int] = [:]

    static func pattern(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset % 251) }

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        guard bytes.count >= 2 else { return 0 }
        progress[connection] = 0
        pump(connection, &context)
        return bytes.count
    }

    mutating func writable(_ connection: ConnectionID, context: inout ShardContext<Self>) {
        recorder.messages.add(1, ordering: .relaxed)
        pump(connection, &context)
    }

    mutating func pump(_ connection: ConnectionID, _ context: inout ShardContext<Self>) {
        guard var sent = progress[connection] else { return }
        while sent < Self.totalBytes {
            let chunk = min(64 * 1024, Self.totalBytes - sent)
            let start = sent
            let ok = context.enqueue(connection, byteCount: chunk) { buffer in
                for offset in 0..<chunk { buffer[offset] = Self.pattern(start + offset) }
            }
            if !ok { break }
            sent += chunk
        }
        progress[connection] = sent
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {
        progress[connection] = nil
        recorder.closed.withLock { $0.append(reason) }
    }
}

/// "pause" pauses reading and resumes it from a timer 300 ms later; other bytes are echoed and logged.
struct PauseHandler: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    let recorder: Recorder
    var paused: [UInt64: ConnectionID] = [:]

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        if context.isReadingPaused(connection) { recorder.note("delivered while paused") }
        let text = String(decoding: bytes, as: UTF8.self)
        if text == "pause" {
            context.pauseReading(connection)
            recorder.note("paused")
            let token = UInt64(connection.index)
            paused[token] = connection
            _ = context.armTimer(afterMillis: 300, token: token)
            _ = Array("paused".utf8).withUnsafeBytes { context.enqueue(connection, bytes: $0) }
        } else {
            recorder.note("data:\(text)")
            _ = context.enqueue(connection, bytes: bytes)
        }
        return bytes.count
    }

    mutating func timerFired(_ token: UInt64, context: inout ShardContext<Self>) {
        guard let connection = paused.removeValue(forKey: token) else { return }
        recorder.note("resuming")
        context.resumeReading(connection)
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {}
}

/// Ping-pong between shards: a client's "ping" starts `rounds` message exchanges with the other shard; the
/// accepting shard answers "done" when the count reaches zero.
struct PingHandler: ShardHandler {
    typealias Message = PingMessage
    typealias ConnectionState = Int
    let recorder: Recorder
    let shardID: ShardID
    let shardCount: Int

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        let other = ShardID((shardID.rawValue + 1) % shardCount)
        #expect(context.send(PingMessage(origin: shardID, connection: connection, remaining: 1000), to: other) == .ok)
        return bytes.count
    }

    mutating func message(_ message: PingMessage, from: ShardID, context: inout ShardContext<Self>) {
        recorder.messages.add(1, ordering: .relaxed)
        if message.remaining == 0 {
            _ = Array("done".utf8).withUnsafeBytes { context.enqueue(message.connection, bytes: $0) }
            return
        }
        var next = message
        next.remaining -= 1
        let destination = next.remaining == 0 ? message.origin : from
        _ = context.send(next, to: destination)
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {}
}

struct PingMessage: Sendable {
    var origin: ShardID
    var connection: ConnectionID
    var remaining: Int
}

/// On the first bytes of a connection, arms 1000 timers at pseudo-random offsets and cancels every other one;
/// reports "ok" when the 500 survivors fired in deadline order, none early.
struct TimerHandler: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    let recorder: Recorder
    var connection: ConnectionID?
    var deadlines: [UInt64: UInt64] = [:]
    var firedCount = 0
    var lastDeadline: UInt64 = 0
    var failures = 0

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        self.connection = connection
        var generator = SplitMix(seed: 7)
        for token in 0..<1000 {
            let deadline = context.nowMillis + 1 + generator.next() % 300
            let id = context.armTimer(deadlineMillis: deadline, token: UInt64(token))
            if token % 2 == 1 {
                if !context.cancelTimer(id) { failures += 1 }
            } else {
                deadlines[UInt64(token)] = deadline
            }
        }
        return bytes.count
    }

    mutating func timerFired(_ token: UInt64, context: inout ShardContext<Self>) {
        guard let deadline = deadlines[token] else { failures += 1; return }
        if deadline > context.nowMillis || deadline < lastDeadline { failures += 1 }
        lastDeadline = deadline
        firedCount += 1
        if firedCount == 500, let connection {
            let reply = failures == 0 ? "ok" : "no"
            _ = Array(reply.utf8).withUnsafeBytes { context.enqueue(connection, bytes: $0) }
        }
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {}
}

/// On "burst", shard 0 sends 1000 numbered messages to shard 1 at once through a 4-slot ring: most wait in the
/// overflow list (reported as pressure), past the cap of 500 they are refused. Shard 1 checks the order and
/// tells shard 0, which answers the client "<received>/<refused>".
struct BurstHandler: ShardHandler {
    typealias Message = BurstMessage
    typealias ConnectionState = Int
    let recorder: Recorder
    let shardID: ShardID
    var client: ConnectionID?
    var refused = 0
    var overflowed = 0
    var expected = 0
    var outOfOrder = 0
    var pendingEnd: (ShardID, ConnectionID)?

    /// The end marker must not be lost: while the overflow list is full it is retried from a timer.
    mutating func trySendEnd(_ context: inout ShardContext<Self>) {
        guard let (origin, connection) = pendingEnd else { return }
        let end = BurstMessage.end(origin: origin, connection: connection, refused: refused, overflowed: overflowed)
        if context.send(end, to: ShardID(1)) == .refused {
            _ = context.armTimer(afterMillis: 5, token: 1)
        } else {
            pendingEnd = nil
        }
    }

    mutating func timerFired(_ token: UInt64, context: inout ShardContext<Self>) { trySendEnd(&context) }

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        // Whichever shard accepted the client asks shard 0 to start (so the test does not depend on the hash).
        _ = context.send(.start(from: shardID, connection: connection), to: ShardID(0))
        return bytes.count
    }

    mutating func message(_ message: BurstMessage, from: ShardID, context: inout ShardContext<Self>) {
        switch message {
        case .start(let origin, let connection):
            for number in 0..<1000 {
                switch context.send(.number(number), to: ShardID(1)) {
                case .ok: break
                case .queuedInOverflow: overflowed += 1
                case .refused: refused += 1
                }
            }
            pendingEnd = (origin, connection)
            trySendEnd(&context)
        case .number(let number):
            if number != expected { outOfOrder += 1 }
            expected = number + 1
        case .end(let origin, let connection, let refused, let overflowed):
            let text = "\(expected)/\(refused)/\(overflowed > 0)/\(outOfOrder)"
            _ = context.send(.report(connection: connection, text: text), to: origin)
        case .report(let connection, let text):
            _ = Array(text.utf8).withUnsafeBytes { context.enqueue(connection, bytes: $0) }
        }
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {}
}

enum BurstMessage: Sendable {
    case start(from: ShardID, connection: ConnectionID)
    case number(Int)
    case end(origin: ShardID, connection: ConnectionID, refused: Int, overflowed: Int)
    case report(connection: ConnectionID, text: String)
}

// MARK: - Tests

@Suite(.serialized) struct RuntimeFlowTests {
    // Proves: a connection accepted on one shard is handed to another with its unconsumed bytes and state; the
    // adopter delivers those bytes first, then keeps reading and writing the same socket.
    @Test func handsConnectionsOffBetweenShardsAndEchoContinues() throws {
        let recorder = Recorder()
        let group = try ShardGroup<HandoffHandler>.start(configuration: echoConfiguration(shards: 2)) { shard, count in
            HandoffHandler(recorder: recorder, shardID: shard, shardCount: count)
        }
        defer { group.stop() }
        var clients: [TestClient] = []
        for number in 0..<10 {
            let client = try #require(TestClient(port: group.boundPorts[0]))
            #expect(client.send("first \(number)"))
            clients.append(client)
        }
        for (number, client) in clients.enumerated() {
            let first = Array("<first \(number)".utf8)
            #expect(client.receive(exactly: first.count) == first)
            for round in 0..<5 {
                let message = Array("round \(round) of \(number)".utf8)
                #expect(client.send(message))
                #expect(client.receive(exactly: message.count) == message)
            }
        }
        #expect(recorder.adopted.load(ordering: .relaxed) == 10)
        #expect(recorder.notes.withLock { $0 }.isEmpty)
        clients.removeAll()
        #expect(eventually { recorder.closedCount == 10 })
    }

    // Proves: 8 MiB through a slow reader: the bounded queue refuses, writable() refills it, short writes are
    // resubmitted, and every byte arrives in order.
    @Test func streamsEightMebibytesThroughASlowReader() throws {
        let recorder = Recorder()
        var configuration = echoConfiguration(shards: 1)
        configuration.outboundBytesMax = 1 << 20
        configuration.outboundLowWaterBytes = 256 << 10
        let group = try ShardGroup<BulkHandler>.start(configuration: configuration) { _, _ in BulkHandler(recorder: recorder) }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        var small: Int32 = 16 * 1024
        setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        #expect(client.send("go"))
        usleep(200_000)  // let the queue fill while nobody reads
        var offset = 0
        var mismatches = 0
        while offset < BulkHandler.totalBytes {
            guard let chunk = client.receiveSome(max: 32 * 1024), !chunk.isEmpty else { break }
            for byte in chunk {
                if byte != BulkHandler.pattern(offset) { mismatches += 1 }
                offset += 1
            }
        }
        #expect(offset == BulkHandler.totalBytes)
        #expect(mismatches == 0)
        #expect(recorder.messages.load(ordering: .relaxed) > 0)  // writable() fired
        group.stop()
        let counters = try #require(group.finalCounters(of: ShardID(0)))
        #expect(counters.enqueueRefused > 0)
        #expect(counters.bytesSent >= UInt64(BulkHandler.totalBytes))
    }

    // Proves: while reading is paused no bytes are delivered; after resume (from a timer) the kept bytes arrive.
    @Test func pausesAndResumesReading() throws {
        let recorder = Recorder()
        let group = try ShardGroup<PauseHandler>.start(configuration: echoConfiguration(shards: 1)) { _, _ in
            PauseHandler(recorder: recorder)
        }
        defer { group.stop() }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("pause"))
        #expect(client.receive(exactly: 6) == Array("paused".utf8))
        #expect(client.send("abc"))
        #expect(client.receive(exactly: 3) == Array("abc".utf8))
        let notes = recorder.notes.withLock { $0 }
        #expect(notes == ["paused", "resuming", "data:abc"])
    }

    // Proves: through the real loop, a full mesh ring spills into the bounded overflow list (pressure reported),
    // sends past the cap are refused, and the overflow drains into the ring over later turns in order.
    @Test func meshOverflowDrainsInOrderAndRefusesPastTheCap() throws {
        let recorder = Recorder()
        var configuration = echoConfiguration(shards: 2)
        configuration.meshRingCapacity = 4
        configuration.meshOverflowCountMax = 500
        let group = try ShardGroup<BurstHandler>.start(configuration: configuration) { shard, _ in
            BurstHandler(recorder: recorder, shardID: shard)
        }
        defer { group.stop() }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("burst"))
        // 4 in the ring + 500 in overflow arrive, in order; 496 are refused.
        let expected = Array("504/496/true/0".utf8)
        #expect(client.receive(exactly: expected.count) == expected)
    }

    // Proves: the shard's timer wheel drives real time through the loop: 500 of 1000 timers survive cancellation
    // and fire in deadline order, never early (the wait timeout follows the next deadline).
    @Test func firesTimersThroughTheLoop() throws {
        let recorder = Recorder()
        let group = try ShardGroup<TimerHandler>.start(configuration: echoConfiguration(shards: 1)) { _, _ in
            TimerHandler(recorder: recorder)
        }
        defer { group.stop() }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("t"))
        #expect(client.receive(exactly: 2) == Array("ok".utf8))
    }

    // Proves: cross-shard messages wake sleeping shards (1000 round trips, each needing a doorbell), through
    // IORING_OP_MSG_RING and through the eventfd fallback.
    @Test(arguments: [true, false])
    func doorbellWakesSleepingShard(messageRing: Bool) throws {
        let recorder = Recorder()
        var configuration = echoConfiguration(shards: 2)
        configuration.messageRingDoorbell = messageRing
        let group = try ShardGroup<PingHandler>.start(configuration: configuration) { shard, count in
            PingHandler(recorder: recorder, shardID: shard, shardCount: count)
        }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("ping"))
        #expect(client.receive(exactly: 4) == Array("done".utf8))
        group.stop()
        #expect(recorder.messages.load(ordering: .relaxed) == 1001)
        let rung = (0..<2).map { group.finalCounters(of: ShardID($0))?.doorbellsRung ?? 0 }.reduce(0, +)
        #expect(rung > 0)
    }
}
