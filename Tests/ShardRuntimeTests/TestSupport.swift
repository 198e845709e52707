import Glibc
import ShardRuntime
import Synchronization

// MARK: - Threads

/// Runs `body` on a new pthread; `join()` waits for it.
final class TestThread: @unchecked Sendable {
    private var thread = pthread_t()

    init(_ body: sending @escaping () -> Void) {
        final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed")
    }

    func join() { pthread_join(thread, nil) }
}

func nowMillis() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
}

/// Polls `condition` every 5 ms for up to `timeoutMillis`; returns whether it became true.
func eventually(timeoutMillis: UInt64 = 20_000, _ condition: () -> Bool) -> Bool {
    let deadline = nowMillis() + timeoutMillis
    while nowMillis() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

// MARK: - Client sockets

/// A blocking loopback TCP client with receive/send timeouts so nothing hangs.
final class TestClient {
    let fd: Int32

    init?(port: UInt16, host: String = "127.0.0.1", timeoutSeconds: Int = 20) {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected: Int32
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            inet_pton(AF_INET6, host, &address.sin6_addr)
            connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if connected != 0 {
            Glibc.close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads exactly `count` bytes, or fewer on EOF/timeout/error.
    func receive(exactly count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            if received <= 0 { break }
            offset += received
        }
        return Array(buffer[0..<offset])
    }

    /// Reads once: the bytes, [] on EOF, nil on error/timeout.
    func receiveSome(max: Int = 65536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, max, 0) }
        if received < 0 { return nil }
        return Array(buffer[0..<received])
    }

    /// Closes with SO_LINGER 0 so the peer sees a reset.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }
}

// MARK: - Recorder

/// Thread-safe event log shared between shard handlers and the test.
final class Recorder: Sendable {
    let closed = Mutex<[CloseReason]>([])
    let accepted = Atomic<Int>(0)
    let adopted = Atomic<Int>(0)
    let messages = Atomic<Int>(0)
    let notes = Mutex<[String]>([])

    func note(_ text: String) { notes.withLock { $0.append(text) } }
    var closedCount: Int { closed.withLock { $0.count } }
}

// MARK: - Echo handler

/// Echoes every byte back and records lifecycle events.
struct EchoHandler: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    let recorder: Recorder

    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {
        recorder.accepted.add(1, ordering: .relaxed)
    }

    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        _ = context.enqueue(connection, bytes: bytes)
        return bytes.count
    }

    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {
        recorder.closed.withLock { $0.append(reason) }
    }
}

func echoConfiguration(shards: Int = 2, host: String = "127.0.0.1") -> RuntimeConfiguration {
    var configuration = RuntimeConfiguration()
    configuration.shardCount = shards
    configuration.listeners = [ListenerConfiguration(host: host, port: 0)]
    configuration.ringEntries = 256
    configuration.receiveBufferCount = 64
    configuration.receiveBufferBytes = 4096
    configuration.shutdownFlushMillis = 1000
    return configuration
}
