import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Logging

/// The broker's logger: one line per event, `2026-12-03T21:40:00.123Z level message`, written with a single
/// `write(2)` so lines from different shards never interleave. Shards call it from their own threads; it holds no
/// lock. The level and the destination live in a shared ``LogControl`` so a reload (SIGHUP) changes them for every
/// shard at once: the level is one relaxed atomic load per line, and the destination is swapped under the
/// logger's own descriptor with `dup2`, which is atomic, so a line being written goes wholly to the old or the
/// new destination and the descriptor number a shard writes to never changes (closing and reopening it instead
/// could let a shard write a log line into a client's socket that got the recycled number).
public struct Logger: Sendable {
    /// The shared level and descriptor.
    public let control: LogControl

    /// A logger writing to `fileDescriptor` (standard error by default) at `level`. The descriptor is used as is
    /// and never closed or replaced; ``open(level:destination:)`` makes a logger whose destination can change.
    public init(level: LogLevel, fileDescriptor: Int32 = STDERR_FILENO) {
        self.control = LogControl(level: level, fileDescriptor: fileDescriptor, ownsDescriptor: false)
    }

    init(control: LogControl) { self.control = control }

    /// A logger with a descriptor of its own, pointed at `destination` (a file is opened for appending and
    /// created with mode 0640 if missing); ``LogControl/setDestination(_:)`` can later point it elsewhere.
    /// - Throws: ``ConfigurationError`` naming `log_dest` when the file cannot be opened.
    public static func open(level: LogLevel, destination: LogDestination) throws(ConfigurationError) -> Logger {
        let target = try LogControl.openDestination(destination)
        // Our own descriptor, so that dup2 can later retarget it without touching fd 1 or 2.
        let own = fcntl(target.descriptor, F_DUPFD_CLOEXEC, 3)
        if target.close { Glibc.close(target.descriptor) }
        guard own >= 0 else {
            throw ConfigurationError(setting: "log_dest", reason: "cannot duplicate a descriptor: \(systemError())")
        }
        return Logger(control: LogControl(level: level, fileDescriptor: own, ownsDescriptor: true,
                                          destination: destination))
    }

    /// Lines less severe than this are not written.
    public var level: LogLevel { control.level }

    /// Where lines go.
    public var fileDescriptor: Int32 { control.fileDescriptor }

    /// Whether a line at `level` would be written (check before building an expensive message).
    public func isEnabled(_ level: LogLevel) -> Bool { level <= control.level }

    /// Writes `message` at error level (always enabled).
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }
    /// Writes `message` at warning level if enabled; the message is built only then.
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    /// Writes `message` at info level if enabled; the message is built only then.
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    /// Writes `message` at debug level if enabled; the message is built only then.
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
        let fileDescriptor = control.fileDescriptor
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

/// The level and descriptor every copy of a ``Logger`` shares. Changed only by the control plane (startup, a
/// reload on the signal thread); read by every shard without a lock.
public final class LogControl: Sendable {
    private let levelValue: Atomic<Int>
    /// The descriptor lines are written to. Constant: a new destination is `dup2`ed onto it.
    public let fileDescriptor: Int32
    private let ownsDescriptor: Bool
    /// The destination now in force (for reload messages); guarded because the signal thread writes it.
    private let destinationValue: Mutex<LogDestination?>

    init(level: LogLevel, fileDescriptor: Int32, ownsDescriptor: Bool, destination: LogDestination? = nil) {
        self.levelValue = Atomic(level.rawValue)
        self.fileDescriptor = fileDescriptor
        self.ownsDescriptor = ownsDescriptor
        self.destinationValue = Mutex(destination)
    }

    deinit {
        if ownsDescriptor { Glibc.close(fileDescriptor) }
    }

    /// The level in force.
    public var level: LogLevel { LogLevel(rawValue: levelValue.load(ordering: .relaxed)) ?? .info }

    /// Changes the level for every shard (takes effect with their next line).
    public func setLevel(_ level: LogLevel) { levelValue.store(level.rawValue, ordering: .relaxed) }

    /// The destination in force; `nil` for a logger made on a fixed descriptor.
    public var destination: LogDestination? { destinationValue.withLock { $0 } }

    /// Points the logger at `destination`, or reopens the same file (logrotate moves the old one away and sends
    /// SIGHUP). A line in flight goes wholly to the old or the new destination.
    /// - Throws: ``ConfigurationError`` naming `log_dest` when the file cannot be opened (the old destination
    ///   stays), or when this logger writes to a fixed descriptor it does not own.
    public func setDestination(_ destination: LogDestination) throws(ConfigurationError) {
        guard ownsDescriptor else {
            throw ConfigurationError(setting: "log_dest", reason: "this logger writes to a fixed descriptor")
        }
        let target = try LogControl.openDestination(destination)
        defer { if target.close { Glibc.close(target.descriptor) } }
        guard dup2(target.descriptor, fileDescriptor) >= 0 else {
            throw ConfigurationError(setting: "log_dest", reason: "cannot switch the log descriptor: \(systemError())")
        }
        destinationValue.withLock { $0 = destination }
    }

    /// The descriptor of `destination`, and whether the caller must close it.
    static func openDestination(_ destination: LogDestination) throws(ConfigurationError)
        -> (descriptor: Int32, close: Bool) {
        switch destination {
        case .standardError: return (STDERR_FILENO, false)
        case .standardOutput: return (STDOUT_FILENO, false)
        case .file(let path):
            let descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard descriptor >= 0 else {
                throw ConfigurationError(setting: "log_dest", reason: "cannot open '\(path)': \(systemError())")
            }
            return (descriptor, true)
        }
    }
}

/// `strerror(errno)` as a String.
func systemError() -> String { String(cString: strerror(errno)) }

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

extension LogDestination: CustomStringConvertible {
    /// `stderr`, `stdout` or `file PATH`, as in the configuration file.
    public var description: String {
        switch self {
        case .standardError: "stderr"
        case .standardOutput: "stdout"
        case .file(let path): "file \(path)"
        }
    }
}
