#if canImport(Glibc)
import Glibc
#endif

// MARK: - Clock

/// CLOCK_MONOTONIC in nanoseconds (vDSO, about 20 ns).
@inline(__always)
func monotonicNanos() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// Sleeps the calling thread until `deadline` (CLOCK_MONOTONIC nanoseconds).
func sleepUntil(_ deadline: UInt64) {
    let now = monotonicNanos()
    guard deadline > now else { return }
    let delta = deadline - now
    var request = timespec(tv_sec: Int(delta / 1_000_000_000), tv_nsec: Int(delta % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

// MARK: - Target address

/// A resolved broker address: IPv4 or IPv6 literal (no name lookup beyond `localhost`).
enum TargetAddress {
    case v4(sockaddr_in)
    case v6(sockaddr_in6)

    /// Parses `host` as a literal address (or `localhost`).
    init?(host: String, port: UInt16) {
        let literal = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, literal, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            self = .v4(v4)
            return
        }
        var v6 = sockaddr_in6()
        let bare = literal.hasPrefix("[") && literal.hasSuffix("]") ? String(literal.dropFirst().dropLast()) : literal
        if inet_pton(AF_INET6, bare, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            self = .v6(v6)
            return
        }
        return nil
    }

    /// Whether the address is loopback: 127.0.0.0/8 or ::1.
    var isLoopback: Bool {
        switch self {
        case .v4(let address): return UInt32(bigEndian: address.sin_addr.s_addr) >> 24 == 127
        case .v6(let address):
            var bytes = address.sin6_addr.__in6_u.__u6_addr8
            return withUnsafeBytes(of: &bytes) { raw in raw.prefix(15).allSatisfy { $0 == 0 } && raw[15] == 1 }
        }
    }

    var family: Int32 {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    /// Starts a non-blocking connect; answers the socket, or the errno of a failure other than EINPROGRESS.
    func startConnect() -> Result<Int32, SystemError> {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(SystemError(call: "socket", errno: errno)) }
        var one: Int32 = 1
        // The generator batches its own writes; Nagle would only add delay to the last packet of a batch.
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var result: Int32
        switch self {
        case .v4(var address):
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(var address):
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        if result == 0 || errno == EINPROGRESS { return .success(fd) }
        let error = SystemError(call: "connect", errno: errno)
        close(fd)
        return .failure(error)
    }
}

/// A failed system call and its errno.
struct SystemError: Error, CustomStringConvertible {
    var call: String
    var errno: Int32
    var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// The pending error of a socket whose non-blocking connect finished (SO_ERROR).
func socketError(_ fd: Int32) -> Int32 {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) != 0 { return errno }
    return value
}

/// Raises the open-file limit to the hard limit (each connection is a descriptor).
func raiseFileLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 1024 }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(RLIMIT_NOFILE_VALUE, &limit)
    _ = getrlimit(RLIMIT_NOFILE_VALUE, &limit)
    return Int(clamping: limit.rlim_cur)
}

#if os(Linux)
let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#endif

// MARK: - CPU of this process

/// User plus system CPU of this process in nanoseconds (getrusage).
func processCPUNanos() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func nanos(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1_000 }
    return nanos(usage.ru_utime) + nanos(usage.ru_stime)
}

/// User plus system CPU of the calling thread in nanoseconds (getrusage RUSAGE_THREAD).
func threadCPUNanos() -> UInt64 {
    var usage = rusage()
    getrusage(1, &usage)  // RUSAGE_THREAD (Linux), not exported by the Glibc module
    func nanos(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1_000 }
    return nanos(usage.ru_utime) + nanos(usage.ru_stime)
}

// MARK: - Broker process from /proc

/// CPU and memory of another process read from `/proc/PID/stat` and `/proc/PID/status`.
struct ProcessSample {
    /// utime + stime in nanoseconds.
    var cpuNanos: UInt64
    /// VmRSS in bytes.
    var residentBytes: UInt64
    /// VmHWM (peak RSS) in bytes.
    var residentPeakBytes: UInt64

    /// Reads the sample, or `nil` when the process is gone.
    static func read(pid: Int32) -> ProcessSample? {
        guard let stat = readSmallFile("/proc/\(pid)/stat"),
              let status = readSmallFile("/proc/\(pid)/status") else { return nil }
        // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ')': field 3 is index 0, so utime (field 14) is index 11 and stime (15) index 12.
        guard fields.count > 12, let utime = UInt64(fields[11]), let stime = UInt64(fields[12]) else { return nil }
        let ticks = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        var rss: UInt64 = 0
        var hwm: UInt64 = 0
        for line in status.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") { rss = kilobytes(line) }
            if line.hasPrefix("VmHWM:") { hwm = kilobytes(line) }
        }
        return ProcessSample(
            cpuNanos: (utime + stime) * (1_000_000_000 / ticks), residentBytes: rss, residentPeakBytes: hwm
        )
    }

    private static func kilobytes(_ line: Substring) -> UInt64 {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count >= 2, let value = UInt64(parts[1]) else { return 0 }
        return value * 1024
    }
}

/// Reads a small text file whole (procfs files report size 0, so read until EOF).
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

// MARK: - Threads

/// Starts a joinable POSIX thread running `body`.
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    return thread
}
