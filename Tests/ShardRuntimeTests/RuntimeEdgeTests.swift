import Glibc
@testable import ShardRuntime
import Synchronization
import Testing

/// "quit" → replies "bye" and closes after the flush; checks that the dead ID is then refused.
struct QuitHandler: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    let recorder: Recorder

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {
        recorder.accepted.add(1, ordering: .relaxed)
        if peer.host != "127.0.0.1" || peer.port == 0 { recorder.note("bad peer \(peer)") }
    }

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        // Consume only whole "quit" commands: exercises the assembly buffer when the client sends byte by byte.
        var consumed = 0
        while bytes.count - consumed >= 4 {
            if String(decoding: UnsafeRawBufferPointer(rebasing: bytes[consumed..<consumed + 4]), as: UTF8.self) == "quit" {
                _ = Array("bye".utf8).withUnsafeBytes { context.enqueue(connection, bytes: $0) }
                context.close(connection, afterFlush: true)
            }
            consumed += 4
        }
        return consumed
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {
        recorder.closed.withLock { $0.append(reason) }
        let accepted = context.enqueue(connection, byteCount: 1) { $0[0] = 0 }
        recorder.note("stale enqueue \(accepted) open \(context.isOpen(connection))")
    }
}

@Suite(.serialized) struct RuntimeEdgeTests {
    // Proves: close(afterFlush: true) sends what was queued, then closes (client reads "bye" then EOF); a command
    // split across several receives is assembled; a dead ConnectionID is refused afterwards.
    @Test func closesAfterFlushAndRefusesDeadIDs() throws {
        let recorder = Recorder()
        let group = try ShardGroup<QuitHandler>.start(configuration: echoConfiguration(shards: 1)) { _, _ in
            QuitHandler(recorder: recorder)
        }
        defer { group.stop() }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        for byte in "quit".utf8 {
            #expect(client.send([byte]))
            usleep(20_000)
        }
        #expect(client.receive(exactly: 3) == Array("bye".utf8))
        #expect(client.receiveSome() == [])
        #expect(eventually { recorder.closedCount == 1 })
        #expect(recorder.closed.withLock { $0 } == [.closedLocally])
        #expect(recorder.notes.withLock { $0 } == ["stale enqueue false open false"])
    }

    // Proves: accepts beyond connectionCountMax are closed at once and counted; the others keep working.
    @Test func refusesConnectionsBeyondTheCap() throws {
        let recorder = Recorder()
        var configuration = echoConfiguration(shards: 1)
        configuration.connectionCountMax = 2
        let group = try ShardGroup<EchoHandler>.start(configuration: configuration) { _, _ in EchoHandler(recorder: recorder) }
        let first = try #require(TestClient(port: group.boundPorts[0]))
        let second = try #require(TestClient(port: group.boundPorts[0]))
        #expect(first.send("1") && second.send("2"))
        #expect(first.receive(exactly: 1) == [UInt8(ascii: "1")])
        #expect(second.receive(exactly: 1) == [UInt8(ascii: "2")])
        let third = try #require(TestClient(port: group.boundPorts[0]))
        let answer = third.receiveSome()
        #expect(answer == nil || answer == [])  // EOF (or reset): refused
        group.stop()
        #expect(group.finalCounters(of: ShardID(0))?.acceptRefused == 1)
        #expect(recorder.accepted.load(ordering: .relaxed) == 2)
    }

    // Proves: requestStop() from another thread ends a wait() already in progress (the signal helper's path:
    // the main thread waits, the signal thread requests the stop).
    @Test func requestStopFromAnotherThreadEndsWait() throws {
        final class Flag: Sendable { let value = Atomic<Bool>(false) }
        let recorder = Recorder()
        let group = try ShardGroup<EchoHandler>.start(configuration: echoConfiguration()) { _, _ in EchoHandler(recorder: recorder) }
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("z"))
        #expect(client.receive(exactly: 1) == [UInt8(ascii: "z")])
        let done = Flag()
        let waiter = TestThread {
            group.wait()
            done.value.store(true, ordering: .releasing)
        }
        usleep(50_000)
        group.requestStop()
        let finished = eventually { done.value.load(ordering: .acquiring) }
        #expect(finished)
        if finished { waiter.join() }
        #expect(client.receiveSome() ?? [] == [UInt8]())
    }

    // Proves: io_uring setup errors are classified by cause (EPERM/ENOSYS: not permitted; ENOMEM: limits).
    @Test func classifiesRingSetupErrors() {
        #expect(ShardRuntimeStartupError.ringSetup(Errno(rawValue: EPERM)) == .ioUringNotPermitted(Errno(rawValue: EPERM)))
        #expect(ShardRuntimeStartupError.ringSetup(Errno(rawValue: ENOSYS)) == .ioUringNotPermitted(Errno(rawValue: ENOSYS)))
        #expect(ShardRuntimeStartupError.ringSetup(Errno(rawValue: ENOMEM)) == .ringSetupLimits(Errno(rawValue: ENOMEM)))
        #expect(ShardRuntimeStartupError.ringSetup(Errno(rawValue: EINVAL)) == .ringSetupFailed(Errno(rawValue: EINVAL)))
        #expect(ShardRuntimeStartupError.addressInUse(host: "0.0.0.0", port: 1883).description.contains("1883"))
    }

    // Proves: user_data packs kind, a 24-bit index and a 32-bit generation without overlap.
    @Test func packsUserData() {
        let packed = packUserData(.send, index: 0xAB_CDEF, generation: 0xFFFF_FFFF)
        #expect(packed >> 56 == UInt64(CompletionKind.send.rawValue))
        #expect((packed >> 32) & 0xFF_FFFF == 0xAB_CDEF)
        #expect(UInt32(truncatingIfNeeded: packed) == 0xFFFF_FFFF)
    }

    // Proves: SocketAddress parses and prints IPv4 and IPv6, and rejects names.
    @Test func parsesSocketAddresses() throws {
        let v4 = try #require(SocketAddress(host: "127.0.0.1", port: 1883))
        #expect(v4.description == "127.0.0.1:1883")
        let v6 = try #require(SocketAddress(host: "::1", port: 8883))
        #expect(v6.description == "[::1]:8883")
        #expect(SocketAddress(host: "example.com", port: 1) == nil)
    }
}
