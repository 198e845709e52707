import Glibc
import ShardRuntime
import Synchronization
import Testing

/// Real shards over loopback. Serialized: each test starts its own group on ephemeral ports (no shared state),
/// but running them one at a time keeps a loaded 2-core machine responsive.
@Suite(.serialized) struct RuntimeTests {
    // Proves: a connection is accepted, bytes are echoed through the real io_uring loop, and EOF is reported.
    @Test func echoesBytesAndReportsEndOfFile() throws {
        let recorder = Recorder()
        let group = try ShardGroup<EchoHandler>.start(configuration: echoConfiguration()) { _, _ in EchoHandler(recorder: recorder) }
        defer { group.stop() }
        let port = group.boundPorts[0]
        #expect(port != 0)
        do {
            let client = try #require(TestClient(port: port))
            #expect(client.send("hello shoal"))
            #expect(client.receive(exactly: 11) == Array("hello shoal".utf8))
        }
        #expect(eventually { recorder.closed.withLock { $0 == [.endOfFile] } })
        #expect(recorder.accepted.load(ordering: .relaxed) == 1)
    }

    // Proves: IPv6 listeners work (skipped where the machine has no ::1).
    @Test func echoesOverIPv6() throws {
        let probe = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        inet_pton(AF_INET6, "::1", &address.sin6_addr)
        let usable = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
        Glibc.close(probe)
        guard usable else { return }
        let recorder = Recorder()
        let group = try ShardGroup<EchoHandler>.start(configuration: echoConfiguration(host: "::1")) { _, _ in
            EchoHandler(recorder: recorder)
        }
        defer { group.stop() }
        let client = try #require(TestClient(port: group.boundPorts[0], host: "::1"))
        #expect(client.send("v6"))
        #expect(client.receive(exactly: 2) == Array("v6".utf8))
    }

    // Proves: 200 concurrent connections spread over the shards (SO_REUSEPORT) are each echoed correctly.
    @Test func echoesOnTwoHundredConnections() throws {
        let recorder = Recorder()
        let group = try ShardGroup<EchoHandler>.start(configuration: echoConfiguration()) { _, _ in EchoHandler(recorder: recorder) }
        defer { group.stop() }
        var clients: [Int32] = []
        defer { for fd in clients { Glibc.close(fd) } }
        for _ in 0..<200 {
            let client = try #require(TestClient(port: group.boundPorts[0]))
            clients.append(dup(client.fd))
        }
        for (number, fd) in clients.enumerated() {
            var message = Array("connection \(number);".utf8)
            #expect(send(fd, &message, message.count, Int32(MSG_NOSIGNAL)) == message.count)
        }
        var failures = 0
        for (number, fd) in clients.enumerated() {
            let expected = Array("connection \(number);".utf8)
            var buffer = [UInt8](repeating: 0, count: expected.count)
            var offset = 0
            while offset < expected.count {
                let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, expected.count - offset, 0) }
                if received <= 0 { break }
                offset += received
            }
            if buffer != expected { failures += 1 }
        }
        #expect(failures == 0)
        #expect(recorder.accepted.load(ordering: .relaxed) == 200)
    }

    // Proves: a peer reset is reported as .reset (or EOF when the RST races the FIN path) and the shard keeps serving.
    @Test func reportsPeerReset() throws {
        let recorder = Recorder()
        let group = try ShardGroup<EchoHandler>.start(configuration: echoConfiguration()) { _, _ in EchoHandler(recorder: recorder) }
        defer { group.stop() }
        do {
            let client = try #require(TestClient(port: group.boundPorts[0]))
            #expect(client.send("x"))
            #expect(client.receive(exactly: 1) == [UInt8(ascii: "x")])
            client.reset()
        }
        #expect(eventually { recorder.closedCount == 1 })
        let reason = recorder.closed.withLock { $0.first }
        #expect(reason == .reset || reason == .endOfFile)
        let client = try #require(TestClient(port: group.boundPorts[0]))
        #expect(client.send("still alive"))
        #expect(client.receive(exactly: 11) == Array("still alive".utf8))
    }

    // Proves: stop() with open connections closes them (.shutdown), joins, and the clients see EOF.
    @Test func stopsWithConnectionsOpen() throws {
        let recorder = Recorder()
        let group = try ShardGroup<EchoHandler>.start(configuration: echoConfiguration()) { _, _ in EchoHandler(recorder: recorder) }
        var clients: [TestClient] = []
        for _ in 0..<20 {
            let client = try #require(TestClient(port: group.boundPorts[0]))
            #expect(client.send("a"))
            #expect(client.receive(exactly: 1) == [UInt8(ascii: "a")])
            clients.append(client)
        }
        let before = nowMillis()
        group.stop()
        #expect(nowMillis() - before < 15_000)
        #expect(recorder.closed.withLock { $0.count == 20 && $0.allSatisfy { $0 == .shutdown } })
        for client in clients { #expect(client.receiveSome() ?? [] == [UInt8]()) }
        #expect(group.finalCounters(of: ShardID(0)) != nil)
    }

    // Proves: startup errors are typed: a port held by another socket is "address in use", a bad host is invalid.
    @Test func reportsAddressInUseAndInvalidAddress() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(holder, $0, length)
                _ = getsockname(holder, $0, &length)
            }
        }
        #expect(listen(holder, 4) == 0)
        let port = UInt16(bigEndian: address.sin_port)
        var configuration = echoConfiguration()
        configuration.listeners = [ListenerConfiguration(host: "127.0.0.1", port: port)]
        let recorder = Recorder()
        #expect(throws: ShardRuntimeStartupError.addressInUse(host: "127.0.0.1", port: port)) {
            _ = try ShardGroup<EchoHandler>.start(configuration: configuration) { _, _ in EchoHandler(recorder: recorder) }
        }
        configuration.listeners = [ListenerConfiguration(host: "localhost.invalid", port: 0)]
        #expect(throws: ShardRuntimeStartupError.invalidAddress("localhost.invalid")) {
            _ = try ShardGroup<EchoHandler>.start(configuration: configuration) { _, _ in EchoHandler(recorder: recorder) }
        }
    }
}
