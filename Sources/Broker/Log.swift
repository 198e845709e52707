#if canImport(Glibc)
import Glibc
#endif

// MARK: - Logging

/// The broker's logger: one line per event, `2026-12-03T21:40:00.123Z level message`, written to stderr (or a
/// file descriptor) with a single `write(2)` so lines from different shards never interleave. Shards call it
/// from their own threads; it holds no lock and no shared mutable state beyond the immutable level.
public struct Logger: Sendable {
    /// Lines less severe than this are not written.
    public let level: LogLevel
    /// Where lines go.
    public let fileDescriptor: Int32

    public init(level: LogLevel, fileDescriptor: Int32 = STDERR_FILENO) {
        self.level = level
        self.fileDescriptor = fileDescriptor
    }

    /// Whether a line at `level` would be written (check before building an expensive message).
    @inlinable
    public func isEnabled(_ level: LogLevel) -> Bool { level <= self.level }

    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }

    /// Writes one line at `level` if enabled.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard isEnabled(level) else { return }
        var line = Logger.timestamp()
        line += " "
        line += level.label
        line += " "
        line += message()
        line += "\n"
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                // Safe: offset < count, so the base address is non-nil and the range lies inside the buffer.
                Glibc.write(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                return
            }
            offset += written
        }
        bytes.removeAll()
    }

    /// The current UTC time as ISO 8601 with milliseconds.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}

extension LogLevel {
    /// The word written in a log line.
    public var label: String {
        switch self {
        case .error: "error"
        case .warning: "warning"
        case .info: "info"
        case .debug: "debug"
        }
    }
}
