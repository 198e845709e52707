import Glibc
import ShardRuntime
import Synchronization
import Testing

/// Defers each connection's bytes `deferrals` times with `redeliverNextTurn` (consuming nothing), then echoes them;
/// answers a "big" request with 4096 bytes queued past the outbound bound, and asks for `writable` by hand.
struct DeferringHandler: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    let recorder: Recorder
    let deferrals: Int
    var deferred: [ConnectionID: Int] = [:]

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress,
                                     context: inout ShardContext<Self>) {}

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer,
                           context: inout ShardContext<Self>) -> Int {
        recorder.messages.add(1, ordering: .relaxed)
        if deferred[connection, default: 0] < deferrals {
            deferred[connection, default: 0] += 1
            context.redeliverNextTurn(connection)
            return 0
        }
        if bytes.count == 3 && bytes.elementsEqual("big".utf8) {
            // 4096 bytes are over the 1024-byte bound: refused by `enqueue`, queued by `enqueueBeyondLimit`.
            let refused = !context.enqueue(connection, byteCount: 4096) {
                $0.initializeMemory(as: UInt8.self, repeating: 7)
            }
            let queued = context.enqueueBeyondLimit(connection, byteCount: 4096) {
                $0.initializeMemory(as: UInt8.self, repeating: 7)
            }
            recorder.note("refused \(refused) queued \(queued)")
            context.requestWritable(connection)
            return bytes.count
        }
        _ = context.enqueue(connection, bytes: bytes)
        return bytes.count
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {
        deferred[connection] = nil
    }

    mutating func writable(_ connection: ConnectionID, context: inout ShardContext<Self>) {
        recorder.note("writable")
    }
}

@Suite(.serialized) struct RuntimeDeferralTests {
    // Proves: bytes left unconsumed with redeliverNextTurn come back on later turns without new input (the loop does
    // not sleep on them), and are then consumed in full.
    @Test func redeliversDeferredBytesWithoutNewInput() throws {
        let recorder = Recorder()
        let group = try ShardGroup<DeferringHandler>.start(configuration: echoConfiguration(shards: 1)) { _, _ in
            DeferringHandler(recorder: recorder, deferrals: 3)
        }
        defer { group.stop() }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("abc"))
        #expect(client.receive(exactly: 3) == Array("abc".utf8))
        #expect(recorder.messages.load(ordering: .relaxed) == 4)
    }

    // Proves: enqueueBeyondLimit queues past outboundBytesMax where enqueue refuses, and requestWritable brings
    // `writable` once the queue drains.
    @Test func queuesBeyondTheLimitAndAnnouncesWritable() throws {
        let recorder = Recorder()
        var configuration = echoConfiguration(shards: 1)
        configuration.outboundBytesMax = 1024
        configuration.outboundLowWaterBytes = 256
        let group = try ShardGroup<DeferringHandler>.start(configuration: configuration) { _, _ in
            DeferringHandler(recorder: recorder, deferrals: 0)
        }
        defer { group.stop() }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("big"))
        #expect(client.receive(exactly: 4096) == [UInt8](repeating: 7, count: 4096))
        #expect(eventually { recorder.notes.withLock { $0 == ["refused true queued true", "writable"] } })
    }
}
