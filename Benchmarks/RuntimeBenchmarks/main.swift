// RuntimeBenchmarks: prints figures for the ShardRuntime; asserts nothing.
//
//   swift run -c release --scratch-path /tmp/build-runtime RuntimeBenchmarks            (all)
//   swift run -c release --scratch-path /tmp/build-runtime RuntimeBenchmarks spsc echo  (some)
//
// Sections: spsc (items/s between two pinned threads), roundtrip (cross-shard message round trip through the
// runtime), idle (RSS growth per idle connection, clients in a child process), echo (64-byte echo round trips/s,
// one shard, against the C epoll baseline in scripts/bench-echo).
import CIOUring
import Glibc
import ShardRuntime
import Synchronization

// MARK: - Helpers

func nowNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

final class BenchThread: @unchecked Sendable {
    private var thread = pthread_t()
    init(_ body: sending @escaping () -> Void) {
        final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { Unmanaged<Box>.fromOpaque($0!).takeRetainedValue().body(); return nil }, box)
    }
    func join() { pthread_join(thread, nil) }
}

func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let count = read(fd, &buffer, 255)
    let fields = String(decoding: buffer[0..<max(count, 0)], as: UTF8.self).split(separator: " ")
    return (Int(fields.count > 1 ? fields[1] : "0") ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// The kernel's slab memory (/proc/meminfo "Slab:"), in bytes: where socket structures live.
func slabBytes() -> Int {
    let fd = open("/proc/meminfo", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 8192)
    let count = read(fd, &buffer, 8191)
    let text = String(decoding: buffer[0..<max(count, 0)], as: UTF8.self)
    for line in text.split(separator: "\n") where line.hasPrefix("Slab:") {
        let number = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return number * 1024
    }
    return 0
}

func raiseFileLimit(_ wanted: UInt64) {
    var limit = rlimit()
    getrlimit(RLIMIT_NOFILE_VALUE, &limit)
    limit.rlim_cur = min(max(limit.rlim_cur, rlim_t(wanted)), limit.rlim_max)
    setrlimit(RLIMIT_NOFILE_VALUE, &limit)
}
let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

func connectClient(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if result != 0 { close(fd); return -1 }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    return fd
}

/// Spawns `arguments` with stdin and stdout piped; returns (pid, stdin write end, stdout read end).
func spawn(_ arguments: [String]) -> (pid_t, Int32, Int32)? {
    var input: [Int32] = [0, 0]
    var output: [Int32] = [0, 0]
    pipe(&input)
    pipe(&output)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    posix_spawn_file_actions_addclose(&actions, input[1])
    posix_spawn_file_actions_addclose(&actions, output[0])
    var pid = pid_t()
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    let result = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
    for pointer in argv { free(pointer) }
    posix_spawn_file_actions_destroy(&actions)
    close(input[0])
    close(output[1])
    if result != 0 { return nil }
    return (pid, input[1], output[0])
}

func readLine(_ fd: Int32) -> String {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while read(fd, &byte, 1) == 1 && byte != UInt8(ascii: "\n") { bytes.append(byte) }
    return String(decoding: bytes, as: UTF8.self)
}

// MARK: - Handlers

struct Echo: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    let accepted: Counter
    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {
        accepted.value.add(1, ordering: .relaxed)
    }
    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        _ = context.enqueue(connection, bytes: bytes)
        return bytes.count
    }
    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {}
}

final class Counter: Sendable { let value = Atomic<Int>(0) }

/// On "go", enqueues `total` 32-byte messages, refilling on `writable`: the cost of the outbound queue path as the
/// broker uses it (many small appends, one coalesced send per turn).
struct Streamer: ShardHandler {
    typealias Message = Int
    typealias ConnectionState = Int
    static let total = 10_000_000
    var sent: [ConnectionID: Int] = [:]
    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}
    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        sent[connection] = 0
        pump(connection, &context)
        return bytes.count
    }
    mutating func writable(_ connection: ConnectionID, context: inout ShardContext<Self>) { pump(connection, &context) }
    mutating func pump(_ connection: ConnectionID, _ context: inout ShardContext<Self>) {
        guard var count = sent[connection] else { return }
        while count < Self.total {
            let sequence = UInt64(count)
            let ok = context.enqueue(connection, byteCount: 32) { buffer in
                buffer.storeBytes(of: sequence, toByteOffset: 0, as: UInt64.self)
            }
            if !ok { break }
            count += 1
        }
        sent[connection] = count
    }
    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {}
}

struct Ping: Sendable { var origin: ShardID; var connection: ConnectionID; var remaining: Int }

struct PingPong: ShardHandler {
    typealias Message = Ping
    typealias ConnectionState = Int
    let shardID: ShardID
    let shardCount: Int
    let rounds: Int
    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<Self>) {}
    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<Self>) -> Int {
        _ = context.send(Ping(origin: shardID, connection: connection, remaining: rounds * 2),
                         to: ShardID((shardID.rawValue + 1) % shardCount))
        return bytes.count
    }
    mutating func message(_ message: Ping, from: ShardID, context: inout ShardContext<Self>) {
        if message.remaining <= 1 {
            _ = Array("done".utf8).withUnsafeBytes { context.enqueue(message.connection, bytes: $0) }
            return
        }
        var next = message
        next.remaining -= 1
        _ = context.send(next, to: from)
    }
    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>) {}
}

// MARK: - Benchmarks

enum Benchmarks {
    static func spsc() {
        let cpus = allowedCPUs()
        let itemCount = 100_000_000
        let ring = SPSCRing<Int>(capacity: 4096)
        let start = nowNanos()
        let producer = BenchThread {
            _ = shoal_pin_current_thread(Int32(cpus[0]))
            let end = SPSCProducer(ring)
            var next = 0
            while next < itemCount {
                if end.push(next) {
                    next &+= 1
                    if next & 255 == 0 { end.publish() }
                } else {
                    end.publish()
                }
            }
            end.publish()
        }
        let checksum = Counter()
        let consumer = BenchThread {
            _ = shoal_pin_current_thread(Int32(cpus[cpus.count > 1 ? 1 : 0]))
            let end = SPSCConsumer(ring)
            var taken = 0
            var sum = 0
            while taken < itemCount {
                if let value = end.pop() {
                    sum &+= value
                    taken &+= 1
                    if taken & 255 == 0 { end.releaseConsumed() }
                } else {
                    end.releaseConsumed()
                }
            }
            checksum.value.store(sum, ordering: .relaxed)
        }
        producer.join()
        consumer.join()
        let seconds = Double(nowNanos() - start) / 1e9
        print("spsc: \(itemCount) Ints in \(fmt(seconds)) s = \(fmt(Double(itemCount) / seconds / 1e6)) M items/s"
              + " (threads pinned to CPUs \(cpus.prefix(2)); checksum ok: \(checksum.value.load(ordering: .relaxed) == (itemCount - 1) * itemCount / 2))")
    }

    static func roundTrip(messageRing: Bool, spinMicros: Int = 0) {
        let rounds = 100_000
        var configuration = RuntimeConfiguration()
        configuration.messageRingDoorbell = messageRing
        configuration.idleSpinMicros = spinMicros
        configuration.shardCount = 2
        configuration.listeners = [ListenerConfiguration(host: "127.0.0.1", port: 0)]
        let group = try! ShardGroup<PingPong>.start(configuration: configuration) { shard, count in
            PingPong(shardID: shard, shardCount: count, rounds: rounds)
        }
        defer { group.stop() }
        let fd = connectClient(port: group.boundPorts[0])
        defer { close(fd) }
        let start = nowNanos()
        var go = Array("go".utf8)
        send(fd, &go, 2, 0)
        var reply = [UInt8](repeating: 0, count: 4)
        var received = 0
        while received < 4 {
            let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + received, 4 - received, 0) }
            if count <= 0 { break }
            received += count
        }
        let nanos = Double(nowNanos() - start)
        print("roundtrip (\(messageRing ? "MSG_RING" : "eventfd") doorbell, idle spin \(spinMicros) µs): \(rounds) cross-shard round trips (2 shards, each hop may wake a sleeping peer): "
              + "\(fmt(nanos / Double(rounds) / 1000)) µs per round trip")
    }

    static func idle(connectionCount: Int) {
        raiseFileLimit(UInt64(connectionCount + 1000))
        let accepted = Counter()
        var configuration = RuntimeConfiguration()
        configuration.shardCount = 2
        configuration.listeners = [ListenerConfiguration(host: "127.0.0.1", port: 0)]
        configuration.listenBacklog = 4096
        let group = try! ShardGroup<Echo>.start(configuration: configuration) { _, _ in Echo(accepted: accepted) }
        defer { group.stop() }
        // Warm up: one connection, so lazily created structures exist before measuring.
        let warm = connectClient(port: group.boundPorts[0])
        while accepted.value.load(ordering: .relaxed) < 1 { usleep(1000) }
        usleep(100_000)
        let before = residentBytes()
        let slabBefore = slabBytes()
        guard let (pid, input, output) = spawn([CommandLine.arguments[0], "idle-client", "\(group.boundPorts[0])", "\(connectionCount)"]) else {
            print("idle: could not spawn the client process")
            return
        }
        let line = readLine(output)
        let deadline = nowNanos() + 60_000_000_000
        while accepted.value.load(ordering: .relaxed) < connectionCount + 1 && nowNanos() < deadline { usleep(10_000) }
        usleep(300_000)
        let after = residentBytes()
        let slabAfter = slabBytes()
        let count = accepted.value.load(ordering: .relaxed) - 1
        print("idle: \(count) idle connections (client says '\(line)'): RSS \(before / 1024) KiB -> \(after / 1024) KiB, "
              + "\(fmt(Double(after - before) / Double(max(count, 1)))) bytes per connection in the runtime's process; "
              + "kernel slab grew \(fmt(Double(slabAfter - slabBefore) / Double(max(count, 1)))) bytes per connection "
              + "(both socket ends, machine-wide, noisy)")
        close(input)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(output)
        close(warm)
    }

    /// Child process: opens `count` connections, reports, waits for stdin to close.
    static func idleClient(port: UInt16, count: Int) {
        raiseFileLimit(UInt64(count + 100))
        var fds: [Int32] = []
        for _ in 0..<count {
            let fd = connectClient(port: port)
            if fd < 0 { break }
            fds.append(fd)
        }
        var line = Array("\(fds.count) connected\n".utf8)
        _ = write(1, &line, line.count)
        var byte: UInt8 = 0
        _ = read(0, &byte, 1)
        for fd in fds { close(fd) }
    }

    /// 64-byte echo round trips per second with `connectionCount` connections in lock-step batches from one client
    /// thread (send on every connection, then read every reply).
    static func echoLoad(port: UInt16, connectionCount: Int, seconds: Double) -> Double {
        var fds: [Int32] = []
        for _ in 0..<connectionCount { fds.append(connectClient(port: port)) }
        defer { for fd in fds { close(fd) } }
        var message = [UInt8](repeating: 0x41, count: 64)
        var reply = [UInt8](repeating: 0, count: 64)
        var roundTrips = 0
        let start = nowNanos()
        let end = start + UInt64(seconds * 1e9)
        while nowNanos() < end {
            for fd in fds { _ = send(fd, &message, 64, 0) }
            for fd in fds {
                var got = 0
                while got < 64 {
                    let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 64 - got, 0) }
                    if count <= 0 { return 0 }
                    got += count
                }
            }
            roundTrips += fds.count
        }
        return Double(roundTrips) / (Double(nowNanos() - start) / 1e9)
    }

    static func enqueue() {
        var configuration = RuntimeConfiguration()
        configuration.shardCount = 1
        configuration.listeners = [ListenerConfiguration(host: "127.0.0.1", port: 0)]
        let group = try! ShardGroup<Streamer>.start(configuration: configuration) { _, _ in Streamer() }
        let fd = connectClient(port: group.boundPorts[0])
        let start = nowNanos()
        var go = Array("go".utf8)
        send(fd, &go, 2, 0)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var received = 0
        let expected = Streamer.total * 32
        while received < expected {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 1 << 20, 0) }
            if count <= 0 { break }
            received += count
        }
        let seconds = Double(nowNanos() - start) / 1e9
        close(fd)
        group.stop()
        let counters = group.finalCounters(of: ShardID(0))
        print("enqueue: \(Streamer.total) 32-byte messages to one connection in \(fmt(seconds)) s = "
              + "\(fmt(Double(Streamer.total) / seconds / 1e6)) M msgs/s, \(fmt(Double(received) / seconds / 1e6)) MB/s, "
              + "\(counters?.sendsSubmitted ?? 0) sends (\(fmt(Double(Streamer.total) / Double(max(counters?.sendsSubmitted ?? 1, 1)))) msgs per send)")
    }

    static func echo() {
        let connections = 32
        let seconds = 3.0
        let accepted = Counter()
        var configuration = RuntimeConfiguration()
        configuration.shardCount = 1
        configuration.listeners = [ListenerConfiguration(host: "127.0.0.1", port: 0)]
        let group = try! ShardGroup<Echo>.start(configuration: configuration) { _, _ in Echo(accepted: accepted) }
        let shoal = echoLoad(port: group.boundPorts[0], connectionCount: connections, seconds: seconds)
        group.stop()
        let baseline = "/tmp/shoal-epoll-echo"
        if access(baseline, X_OK) != 0 {
            _ = system("cc -O2 -o \(baseline) scripts/bench-echo/epoll_echo.c")
        }
        guard let (pid, input, output) = spawn([baseline]) else {
            print("echo: shoal \(fmt(shoal)) round trips/s (1 shard); C epoll baseline unavailable (scripts/bench-echo/build.sh)")
            return
        }
        let port = UInt16(readLine(output)) ?? 0
        let epoll = echoLoad(port: port, connectionCount: connections, seconds: seconds)
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(input)
        close(output)
        print("echo: 64-byte round trips/s, \(connections) connections, 1 server thread, client on the same machine: "
              + "shoal \(fmt(shoal)), C epoll \(fmt(epoll)), ratio \(fmt(shoal / max(epoll, 1)))")
    }

    /// Child process: blocks SIGINT/SIGTERM, serves echo, prints the port, exits 0 after a termination signal.
    static func serveUntilSignal() {
        TerminationSignals.block()
        let accepted = Counter()
        var configuration = RuntimeConfiguration()
        configuration.shardCount = 2
        configuration.listeners = [ListenerConfiguration(host: "127.0.0.1", port: 0)]
        let group = try! ShardGroup<Echo>.start(configuration: configuration) { _, _ in Echo(accepted: accepted) }
        group.stopOnTerminationSignal()
        var line = Array("\(group.boundPorts[0])\n".utf8)
        _ = write(1, &line, line.count)
        group.wait()
        exit(0)
    }

    /// Starts `serve-until-signal` as a child with 50 open connections, sends SIGTERM, reports the time to exit.
    static func signal() {
        guard let (pid, input, output) = spawn([CommandLine.arguments[0], "serve-until-signal"]) else { return }
        let port = UInt16(readLine(output)) ?? 0
        var fds: [Int32] = []
        for _ in 0..<50 { fds.append(connectClient(port: port)) }
        usleep(100_000)
        let start = nowNanos()
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let millis = Double(nowNanos() - start) / 1e6
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
        print("signal: SIGTERM with 50 open connections -> exit status \(exitCode) after \(fmt(millis)) ms")
        for fd in fds { close(fd) }
        close(input)
        close(output)
    }

    static func fmt(_ value: Double) -> String {
        let scaled = (value * 100).rounded() / 100
        return "\(scaled)"
    }

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "idle-client", arguments.count == 3 {
            idleClient(port: UInt16(arguments[1]) ?? 0, count: Int(arguments[2]) ?? 0)
            return
        }
        if arguments.first == "serve-until-signal" {
            serveUntilSignal()
            return
        }
        let sections = arguments.isEmpty ? ["spsc", "roundtrip", "idle", "echo", "enqueue", "signal"] : arguments
        for section in sections {
            switch section {
            case "spsc": spsc()
            case "roundtrip":
                roundTrip(messageRing: true)
                roundTrip(messageRing: false)
                roundTrip(messageRing: true, spinMicros: 50)
            case "idle": idle(connectionCount: 10_000)
            case "echo": echo()
            case "enqueue": enqueue()
            case "signal": signal()
            default: print("unknown section \(section)")
            }
        }
    }
}

Benchmarks.main()
