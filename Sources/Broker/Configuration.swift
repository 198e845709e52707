import MQTTRouter
import ShardRuntime

// MARK: - Configuration

/// Everything the broker is started with. Built from defaults, then the command line.
public struct BrokerConfiguration: Sendable, Equatable {
    /// The listeners. Default: one on 0.0.0.0:1883.
    public var listeners: [ListenerConfiguration] = [ListenerConfiguration(host: "0.0.0.0", port: 1883)]
    /// Shard count; `nil` means one per CPU in the process's affinity mask.
    public var shardCount: Int? = nil
    /// Whether clients may connect without credentials.
    public var allowAnonymous: Bool = true
    /// Every bound.
    public var limits = Limits()
    /// Log verbosity.
    public var logLevel: LogLevel = .info

    public init() {}
}

/// Log verbosity, most to least severe.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case error, warning, info, debug

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Parses `error`, `warning`, `info` or `debug`.
    public init?(name: String) {
        switch name {
        case "error": self = .error
        case "warning": self = .warning
        case "info", "notice", "information": self = .info
        case "debug", "all": self = .debug
        default: return nil
        }
    }
}

/// A configuration error: it names the setting and says what is wrong, and startup stops with it.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The setting (command-line flag or configuration-file key) at fault.
    public var setting: String
    /// What is wrong with it.
    public var reason: String

    public init(setting: String, reason: String) {
        self.setting = setting
        self.reason = reason
    }

    public var description: String { "\(setting): \(reason)" }
}

// MARK: - Command line

/// What the command line asks for.
public enum CommandLineRequest: Equatable {
    /// Run the broker with this configuration.
    case run(BrokerConfiguration)
    /// Print the usage text.
    case help
    /// Print the version.
    case version
}

/// Shoal's version, printed by `--version` and published on `$SYS/broker/version`.
public let shoalVersion = "0.1.0"

/// The `--help` text.
public let shoalUsage = """
    Usage: shoal [options]

    Options:
      --port PORT             TCP port to listen on (default 1883)
      --bind ADDRESS          address to bind, IPv4 or IPv6 (default 0.0.0.0)
      --shards N              shard threads, one pinned per CPU (default: one per available CPU)
      --max-packet-size BYTES largest packet accepted or sent (default 1048576)
      --max-queued-messages N messages queued per session before the queue policy applies (default 1000)
      --max-queued-bytes BYTES bytes queued per connection socket (default 1048576)
      --queue-policy POLICY   drop_newest, drop_oldest or disconnect (default drop_newest)
      --max-inflight N        outgoing QoS 1/2 messages in flight per client (default 20)
      --max-keepalive SECONDS largest keepalive accepted (default 65535)
      --log-level LEVEL       error, warning, info or debug (default info)
      --help                  print this text
      --version               print the version
    """

/// Parses the command line (without the program name).
/// - Throws: ``ConfigurationError`` naming the flag and what is wrong with it.
public func parseCommandLine(_ arguments: [String]) throws(ConfigurationError) -> CommandLineRequest {
    var configuration = BrokerConfiguration()
    var index = 0

    func value(_ flag: String) throws(ConfigurationError) -> String {
        index += 1
        guard index < arguments.count else { throw ConfigurationError(setting: flag, reason: "needs a value") }
        return arguments[index]
    }

    func integer(_ flag: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try value(flag)
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError(
                setting: flag, reason: "'\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    while index < arguments.count {
        let argument = arguments[index]
        // Accept --flag=value as well as --flag value.
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            var split = arguments
            split.replaceSubrange(index...index, with: [String(argument[..<equals]),
                                                        String(argument[argument.index(after: equals)...])])
            return try parseCommandLine(split)
        }
        switch argument {
        case "--help", "-h":
            return .help
        case "--version", "-v":
            return .version
        case "--port", "-p":
            let port = try integer(argument, in: 0...65_535)
            for i in configuration.listeners.indices { configuration.listeners[i].port = UInt16(port) }
        case "--bind":
            let address = try value(argument)
            guard isIPAddressLiteral(address) else {
                throw ConfigurationError(setting: argument, reason: "'\(address)' is not an IPv4 or IPv6 address")
            }
            for i in configuration.listeners.indices { configuration.listeners[i].host = address }
        case "--shards":
            configuration.shardCount = try integer(argument, in: 1...1024)
        case "--max-packet-size":
            configuration.limits.packetSizeBytesMax = try integer(argument, in: 16...268_435_455)
        case "--max-queued-messages":
            configuration.limits.sessionQueuedMessagesMax = try integer(argument, in: 1...10_000_000)
        case "--max-queued-bytes":
            configuration.limits.outboundBytesMax = try integer(argument, in: 1024...(1 << 32))
        case "--queue-policy":
            let name = try value(argument)
            guard let policy = QueueFullPolicy(rawValue: name) else {
                throw ConfigurationError(
                    setting: argument, reason: "'\(name)' is not one of drop_newest, drop_oldest, disconnect")
            }
            configuration.limits.sessionQueueFullPolicy = policy
        case "--max-inflight":
            configuration.limits.inflightMessagesMax = try integer(argument, in: 1...65_535)
        case "--max-keepalive":
            configuration.limits.keepAliveSecondsMax = try integer(argument, in: 1...65_535)
        case "--log-level":
            let name = try value(argument)
            guard let level = LogLevel(name: name) else {
                throw ConfigurationError(setting: argument, reason: "'\(name)' is not error, warning, info or debug")
            }
            configuration.logLevel = level
        default:
            throw ConfigurationError(setting: argument, reason: "unknown option (see --help)")
        }
        index += 1
    }
    return .run(configuration)
}

/// Whether `text` is an IPv4 dotted quad or an IPv6 literal (checked loosely here; the listener's
/// `inet_pton` has the final word and its error names the address).
func isIPAddressLiteral(_ text: String) -> Bool {
    if text.contains(":") {
        return text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts.allSatisfy { part in
        guard let number = Int(part), part.count <= 3 else { return false }
        return (0...255).contains(number)
    }
}
