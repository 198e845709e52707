import MQTTRouter
import ShardRuntime

// MARK: - Configuration

/// Everything the broker is started with: defaults, then the configuration file (`-c`), then command-line flags.
public struct BrokerConfiguration: Sendable, Equatable {
    /// The MQTT listeners (plain or TLS). Default: one plain listener on 0.0.0.0:1883.
    public var listeners: [BrokerListener] = [BrokerListener(host: "0.0.0.0", port: 1883)]
    /// The Prometheus listener (`metrics_listener`); `nil` (the default) serves no metrics.
    public var metricsListener: ListenerConfiguration? = nil
    /// Shard count; `nil` means one per CPU in the process's affinity mask (or in ``cpus``).
    public var shardCount: Int? = nil
    /// CPUs the shards are pinned to (`cpus`); `nil` means the process's affinity mask.
    public var cpus: [Int]? = nil
    /// Whether clients may connect without credentials (`allow_anonymous`); a listener may override it.
    public var allowAnonymous: Bool = true
    /// A password file in Mosquitto's format (`password_file`); `nil` means none.
    public var passwordFile: String? = nil
    /// An ACL file in Mosquitto's `acl_file` format; `nil` means every client may publish and subscribe anywhere
    /// (except `$SYS`, which clients never publish to).
    public var aclFile: String? = nil
    /// Seconds between `$SYS` updates (`sys_interval`); 0 disables them. Default 10, as Mosquitto.
    public var sysIntervalSeconds: Int = 10
    /// Every bound.
    public var limits = Limits()
    /// Log verbosity.
    public var logLevel: LogLevel = .info
    /// Where log lines go (`log_dest`).
    public var logDestination: LogDestination = .standardError
    /// Whether a line is logged per connection and disconnection (`connection_messages`). Default true.
    public var connectionMessages: Bool = true
    /// MQTT connections the broker accepts in all (`max_connections`), spread over the shards as
    /// `ceil(N / shards)` each (the kernel spreads new connections evenly); `nil` (the default) is no cap beyond
    /// ``Limits/connectionsPerShardMax``.
    public var connectionsMax: Int? = nil
    /// The configuration file this was read from (`-c`), read again on SIGHUP; `nil` without one.
    public var configurationFile: String? = nil
    /// The command line (without the program name) this was parsed from: a reload reads the file again and
    /// applies these flags on top, as at startup.
    public var commandLineArguments: [String] = []

    public init() {}
}

/// Where log lines go.
public enum LogDestination: Sendable, Equatable {
    /// Standard error (the default; journald picks it up under systemd).
    case standardError
    /// Standard output.
    case standardOutput
    /// Appended to a file.
    case file(String)
}

/// One MQTT listener: an address, and TLS settings when it is a TLS listener.
public struct BrokerListener: Sendable, Equatable {
    /// Numeric IPv4 or IPv6 address ("0.0.0.0", "::", "127.0.0.1").
    public var host: String
    /// TCP port (0 picks an ephemeral port).
    public var port: UInt16
    /// TLS settings; `nil` for a plain TCP listener.
    public var tls: TLSConfiguration?
    /// Overrides ``BrokerConfiguration/allowAnonymous`` for this listener (Mosquitto's `per_listener_settings`).
    public var allowAnonymous: Bool?

    public init(host: String, port: UInt16, tls: TLSConfiguration? = nil, allowAnonymous: Bool? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
        self.allowAnonymous = allowAnonymous
    }

    /// The runtime's view: just the address.
    public var address: ListenerConfiguration { ListenerConfiguration(host: host, port: port) }
}

/// The TLS settings of one listener (Mosquitto's names in parentheses).
public struct TLSConfiguration: Sendable, Equatable {
    /// PEM certificate chain, server certificate first (`certfile`).
    public var certificateFile: String
    /// PEM private key (`keyfile`).
    public var keyFile: String
    /// PEM file of CA certificates trusted for client certificates (`cafile`).
    public var caFile: String? = nil
    /// Directory of hashed CA certificates (`capath`).
    public var caPath: String? = nil
    /// Whether clients must present a certificate signed by the CA (`require_certificate`).
    public var requireCertificate: Bool = false
    /// Whether the client certificate's subject CN becomes the username (`use_identity_as_username`).
    public var useIdentityAsUsername: Bool = false
    /// OpenSSL cipher list for TLS 1.2 (`ciphers`); `nil` is OpenSSL's default.
    public var ciphers: String? = nil
    /// TLS 1.3 cipher suites (`ciphers_tls1.3`); `nil` is OpenSSL's default.
    public var cipherSuitesTLS13: String? = nil
    /// Key-exchange groups (`groups`, e.g. "X25519:P-256"); `nil` is OpenSSL's default.
    public var groups: String? = nil
    /// Lowest version accepted (`tls_version`): TLS 1.2 (default) or 1.3.
    public var minimumVersion: TLSVersion = .tls12

    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

/// TLS protocol versions Shoal accepts; older ones are never offered.
public enum TLSVersion: String, Sendable, Equatable {
    case tls12 = "tlsv1.2"
    case tls13 = "tlsv1.3"
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
      -c, --config FILE       read settings from FILE (mosquitto.conf syntax); flags override it
      --port PORT             TCP port to listen on (default 1883)
      --bind ADDRESS          address to bind, IPv4 or IPv6 (default 0.0.0.0)
      --shards N              shard threads, one pinned per CPU (default: one per available CPU)
      --max-packet-size BYTES largest packet accepted or sent (default 1048576)
      --max-queued-messages N messages queued per session before the queue policy applies (default 1000)
      --max-queued-bytes BYTES bytes queued per connection socket (default 1048576)
      --queue-policy POLICY   drop_newest, drop_oldest or disconnect (default drop_newest)
      --max-inflight N        outgoing QoS 1/2 messages in flight per client (default 256)
      --queue-full-disconnect SECONDS
                              disconnect a client stalled this long (0x97), 0 = never (default 0)
      --queued-bytes-budget BYTES
                              QoS 1/2 bytes all sessions may hold before publishers are paused
                              (default 1073741824)
      --mesh-ring-slots N     ring slots per ordered pair of shards (default 4096)
      --mesh-overflow N       messages a shard holds when a ring is full before pausing its
                              publishers (default 65536)
      --max-connections-per-shard N
                              connections one shard accepts (default 100000)
      --max-keepalive SECONDS largest keepalive accepted (default 65535)
      --receive-maximum N     incoming QoS 2 publications a client may leave unacknowledged; more is
                              DISCONNECT 0x93 (announced in CONNACK; default 65535)
      --max-topic-alias N     topic aliases a client may set towards the broker, 0 = none (default 10)
      --allow-anonymous BOOL  allow clients without credentials (default true)
      --password-file FILE    Mosquitto-format password file (mosquitto_passwd or `shoal passwd`)
      --acl-file FILE         Mosquitto-format ACL file
      --metrics-port PORT     serve Prometheus metrics over HTTP on PORT (default off)
      --sys-interval SECONDS  seconds between $SYS updates, 0 = off (default 10)
      --log-level LEVEL       error, warning, info or debug (default info)
      --help                  print this text
      --version               print the version

    TLS (a TLS listener on the --bind address; every other TLS flag needs --tls-port):
      --tls-port PORT         TLS port to listen on (usually 8883; default: no TLS listener)
      --certfile FILE         PEM certificate chain, server certificate first (required with --tls-port)
      --keyfile FILE          PEM private key of the certificate (required with --tls-port)
      --cafile FILE           PEM CA certificates trusted for client certificates
      --capath DIR            directory of hashed CA certificates trusted for client certificates
      --require-certificate BOOL  clients must present a certificate signed by a trusted CA (default false)
      --use-identity-as-username BOOL  the client certificate's CN is the user name (default false)
      --tls-version VERSION   lowest TLS version accepted: tlsv1.2 or tlsv1.3 (default tlsv1.2)
      --ciphers LIST          OpenSSL cipher list for TLS 1.2 (default: OpenSSL's)
      --ciphers-tls1.3 LIST   TLS 1.3 cipher suites (default: OpenSSL's)
      --tls-groups LIST       key-exchange groups, e.g. X25519:P-256 (default: OpenSSL's)
      Client certificates are asked for only with --require-certificate true (as Mosquitto does).
    """

/// Parses the command line (without the program name).
/// - Throws: ``ConfigurationError`` naming the flag and what is wrong with it.
public func parseCommandLine(_ arguments: [String]) throws(ConfigurationError) -> CommandLineRequest {
    // The file (-c) is read first, whatever its place on the line, so every flag overrides it.
    var configuration = try configurationFromFileArgument(arguments)
    var index = 0
    // TLS flags are collected first and checked together at the end (they may come in any order).
    var tlsPort: UInt16? = nil
    var tlsFlags: [String] = []
    var tls = TLSConfiguration(certificateFile: "", keyFile: "")

    func boolean(_ flag: String) throws(ConfigurationError) -> Bool {
        let text = try value(flag)
        guard let parsed = parseBoolean(text) else {
            throw ConfigurationError(setting: flag, reason: "'\(text)' is not true or false")
        }
        return parsed
    }

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
        case "-c", "--config":
            _ = try value(argument)
        case "--port", "-p":
            let port = try integer(argument, in: 0...65_535)
            // The first listener is the plain one the flag moves; a configuration file may add more.
            configuration.listeners[0].port = UInt16(port)
        case "--bind":
            let address = try value(argument)
            guard isIPAddressLiteral(address) else {
                throw ConfigurationError(setting: argument, reason: "'\(address)' is not an IPv4 or IPv6 address")
            }
            for i in configuration.listeners.indices { configuration.listeners[i].host = address }
            if configuration.metricsListener != nil { configuration.metricsListener!.host = address }
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
        case "--queue-full-disconnect":
            let seconds = try integer(argument, in: 0...86_400)
            configuration.limits.queueFullDisconnectMillis = seconds == 0 ? nil : UInt64(seconds) * 1000
        case "--queued-bytes-budget":
            configuration.limits.queuedBytesBudget = try integer(argument, in: 65_536...(1 << 50))
        case "--mesh-ring-slots":
            configuration.limits.meshRingSlots = try integer(argument, in: 2...(1 << 20))
        case "--mesh-overflow":
            configuration.limits.meshOverflowMessagesMax = try integer(argument, in: 0...(1 << 26))
        case "--max-connections-per-shard":
            configuration.limits.connectionsPerShardMax = try integer(argument, in: 1...10_000_000)
        case "--max-keepalive":
            configuration.limits.keepAliveSecondsMax = try integer(argument, in: 1...65_535)
        case "--receive-maximum":
            configuration.limits.receiveMaximum = try integer(argument, in: 1...65_535)
        case "--max-topic-alias":
            configuration.limits.topicAliasMaximum = try integer(argument, in: 0...65_535)
        case "--allow-anonymous":
            configuration.allowAnonymous = try boolean(argument)
        case "--password-file":
            configuration.passwordFile = try value(argument)
        case "--acl-file":
            configuration.aclFile = try value(argument)
        case "--metrics-port":
            let port = try integer(argument, in: 0...65_535)
            let host = configuration.listeners.first?.host ?? "0.0.0.0"
            configuration.metricsListener = ListenerConfiguration(host: host, port: UInt16(port))
        case "--sys-interval":
            configuration.sysIntervalSeconds = try integer(argument, in: 0...86_400)
        case "--tls-port":
            tlsPort = UInt16(try integer(argument, in: 0...65_535))
        case "--certfile":
            tls.certificateFile = try value(argument)
        case "--keyfile":
            tls.keyFile = try value(argument)
        case "--cafile":
            tls.caFile = try value(argument)
        case "--capath":
            tls.caPath = try value(argument)
        case "--require-certificate":
            tls.requireCertificate = try boolean(argument)
        case "--use-identity-as-username":
            tls.useIdentityAsUsername = try boolean(argument)
        case "--tls-version":
            let name = try value(argument)
            guard let version = TLSVersion(rawValue: name) else {
                throw ConfigurationError(setting: argument, reason: "'\(name)' is not tlsv1.2 or tlsv1.3")
            }
            tls.minimumVersion = version
        case "--ciphers":
            tls.ciphers = try value(argument)
        case "--ciphers-tls1.3":
            tls.cipherSuitesTLS13 = try value(argument)
        case "--tls-groups":
            tls.groups = try value(argument)
        case "--log-level":
            let name = try value(argument)
            guard let level = LogLevel(name: name) else {
                throw ConfigurationError(setting: argument, reason: "'\(name)' is not error, warning, info or debug")
            }
            configuration.logLevel = level
        default:
            throw ConfigurationError(setting: argument, reason: "unknown option (see --help)")
        }
        if tlsSettingFlags.contains(argument) { tlsFlags.append(argument) }
        index += 1
    }
    if let tlsPort {
        guard tlsFlags.contains("--certfile") else {
            throw ConfigurationError(setting: "--certfile", reason: "required with --tls-port")
        }
        guard tlsFlags.contains("--keyfile") else { throw ConfigurationError(setting: "--keyfile", reason: "required with --tls-port") }
        // The TLS listener binds where the plain one does (--bind applies to both, whatever the order).
        configuration.listeners.append(
            BrokerListener(host: configuration.listeners[0].host, port: tlsPort, tls: tls))
    } else if let flag = tlsFlags.first {
        throw ConfigurationError(setting: flag, reason: "needs --tls-port (there is no TLS listener)")
    }
    return .run(configuration)
}

/// The flags that configure the TLS listener (`--tls-port` creates it): each needs `--tls-port`.
let tlsSettingFlags: Set<String> = [
    "--certfile", "--keyfile", "--cafile", "--capath", "--require-certificate", "--use-identity-as-username",
    "--tls-version", "--ciphers", "--ciphers-tls1.3", "--tls-groups",
]

/// Parses Mosquitto's booleans: `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
func parseBoolean(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "true", "yes", "on", "1": true
    case "false", "no", "off", "0": false
    default: nil
    }
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
