import MQTTRouter
import ShardRuntime

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Configuration file (`shoal -c FILE`)
//
// Mosquitto's mosquitto.conf(5) syntax: one `key value...` per line, `#` starts a comment line, blank lines are
// ignored, `listener PORT [ADDRESS]` opens a block whose listener settings (TLS, `protocol`, and with
// `per_listener_settings true` also `allow_anonymous`) apply to that listener; everything else is global.
// Settings before the first `listener` (`port`, `bind_address`, TLS) belong to the default listener, which exists
// when `port` or `bind_address` is given or when no `listener` is. `include_dir DIR` reads DIR's `*.conf` files
// in byte order, where the line stands. Every error names `FILE:LINE: setting: reason`.

extension BrokerConfiguration {
    /// Reads the configuration file at `path` (and the directories it includes) on top of the defaults.
    /// - Throws: ``ConfigurationError`` whose setting is `FILE:LINE: key` (or the path alone when the file cannot
    ///   be read) and whose reason says what is wrong; a Mosquitto setting Shoal lacks is named as such.
    public static func load(configurationFile path: String) throws(ConfigurationError) -> BrokerConfiguration {
        var parser = ConfigurationFileParser()
        try parser.read(file: path, depth: 0)
        var configuration = try parser.finish()
        configuration.configurationFile = path
        return configuration
    }

    /// Parses configuration text (as if read from `file`) on top of the defaults; `include_dir` reads the disk.
    /// - Throws: ``ConfigurationError`` as ``load(configurationFile:)``.
    public static func parse(configurationText text: String, file: String) throws(ConfigurationError)
        -> BrokerConfiguration {
        var parser = ConfigurationFileParser()
        try parser.parse(text, file: file, depth: 0)
        return try parser.finish()
    }
}

/// The configuration a command line starts from: the file named by `-c FILE` / `--config FILE` /
/// `--config=FILE` when there is one (not for `--help` or `--version`), else the defaults; either way it remembers
/// `arguments` for a reload.
/// - Throws: ``ConfigurationError`` from the file, or naming `-c` when it is given twice or without a value.
func configurationFromFileArgument(_ arguments: [String]) throws(ConfigurationError) -> BrokerConfiguration {
    var path: String?
    var index = 0
    var informational = false
    while index < arguments.count {
        let argument = arguments[index]
        var found: String?
        if argument == "-c" || argument == "--config" {
            guard index + 1 < arguments.count else {
                throw ConfigurationError(setting: argument, reason: "needs a value")
            }
            found = arguments[index + 1]
            index += 1
        } else if argument.hasPrefix("--config=") {
            found = String(argument.dropFirst("--config=".count))
        } else if ["--help", "-h", "--version", "-v"].contains(argument) {
            informational = true
        } else if argument.hasPrefix("-") && !argument.contains("=") {
            // Every other flag takes one value: skip it, so that a value spelled "-c" is not taken for the flag.
            index += 1
        }
        if let found {
            guard path == nil else {
                throw ConfigurationError(setting: "-c", reason: "only one configuration file can be given")
            }
            path = found
        }
        index += 1
    }
    var configuration = BrokerConfiguration()
    if let path, !informational {
        configuration = try BrokerConfiguration.load(configurationFile: path)
    }
    configuration.commandLineArguments = arguments
    return configuration
}

/// Mosquitto 2.0's settings (mosquitto.conf(5)) that Shoal does not implement. Naming one stops startup with
/// "Mosquitto setting X is not supported by Shoal", so a migrated file never runs with a setting silently ignored.
let unsupportedMosquittoSettings: Set<String> = [
    // General.
    "allow_duplicate_messages", "allow_zero_length_clientid", "auto_id_prefix", "check_retain_source",
    "clientid_prefixes", "global_max_clients", "global_max_connections", "max_inflight_bytes", "max_qos",
    "memory_limit", "pid_file", "queue_qos0_messages", "retain_expiry_interval", "set_tcp_nodelay",
    "upgrade_outgoing_qos", "user", "enable_control_api", "accept_protocol_versions",
    // Persistence.
    "autosave_interval", "autosave_on_changes", "persistence", "persistence_file", "persistence_location",
    // Logging.
    "log_facility", "log_timestamp_format", "websockets_log_level", "websockets_headers_size",
    // Listeners.
    "bind_interface", "http_dir", "mount_point", "socket_domain", "use_username_as_clientid",
    // TLS and PSK.
    "crlfile", "dhparamfile", "ecdh_curve", "tls_engine", "tls_engine_kpass_sha1", "tls_keyform",
    "use_subject_as_username", "psk_file", "psk_hint", "disable_client_cert_date_checks", "tls_alpn",
    "certfile_password",
    // Authentication plugins.
    "auth_plugin", "auth_plugin_deny_special_chars", "plugin", "plugin_load", "plugin_use", "password_file_hash",
    // Bridges.
    "connection", "address", "addresses", "bridge_alpn", "bridge_attempt_unsubscribe", "bridge_bind_address",
    "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity", "bridge_insecure", "bridge_keyfile",
    "bridge_max_packet_size", "bridge_outgoing_retain", "bridge_protocol_version", "bridge_psk",
    "bridge_require_ocsp", "bridge_reload_type", "bridge_tls_version", "bridge_receive_maximum",
    "bridge_session_expiry_interval", "cleansession", "local_cleansession", "idle_timeout", "keepalive_interval",
    "local_clientid", "local_password", "local_username", "notifications", "notifications_local_only",
    "notification_topic", "remote_clientid", "remote_password", "remote_username", "restart_timeout",
    "round_robin", "start_type", "threshold", "topic", "try_private",
]

/// Mosquitto settings with a variable suffix (`auth_opt_NAME`, `plugin_opt_NAME`).
let unsupportedMosquittoPrefixes = ["auth_opt_", "plugin_opt_"]

// MARK: - The parser

/// A listener being read: its address and the TLS settings given so far (TLS needs `certfile` and `keyfile`).
struct ListenerBlock {
    var listener: BrokerListener
    /// Where the block started (`listener` line), for errors about the block as a whole.
    var location: String
    var certificateFile: String?
    var keyFile: String?
    var caFile: String?
    var caPath: String?
    var requireCertificate: Bool?
    var useIdentityAsUsername: Bool?
    var ciphers: String?
    var cipherSuitesTLS13: String?
    var minimumVersion: TLSVersion?
    /// The first TLS setting's location (errors about missing `certfile`/`keyfile` point at it).
    var firstTLSLocation: String?

    init(listener: BrokerListener, location: String) {
        self.listener = listener
        self.location = location
    }

    /// The listener with its TLS settings, or an error when TLS settings were given without both files.
    func resolved() throws(ConfigurationError) -> BrokerListener {
        var result = listener
        guard let tlsLocation = firstTLSLocation else { return result }
        guard let certificateFile, let keyFile else {
            let missing = certificateFile == nil ? "certfile" : "keyfile"
            throw ConfigurationError(setting: tlsLocation, reason:
                "TLS settings for listener \(listener.port) need both certfile and keyfile (\(missing) is missing)")
        }
        var tls = TLSConfiguration(certificateFile: certificateFile, keyFile: keyFile)
        tls.caFile = caFile
        tls.caPath = caPath
        tls.requireCertificate = requireCertificate ?? false
        tls.useIdentityAsUsername = useIdentityAsUsername ?? false
        tls.ciphers = ciphers
        tls.cipherSuitesTLS13 = cipherSuitesTLS13
        tls.minimumVersion = minimumVersion ?? .tls12
        result.tls = tls
        return result
    }
}

/// Reads configuration files into a ``BrokerConfiguration``. Control plane only (startup and reload).
struct ConfigurationFileParser {
    var configuration = BrokerConfiguration()
    /// The listener that `port`, `bind_address` and settings before any `listener` line configure.
    var defaultListener = ListenerBlock(listener: BrokerListener(host: "0.0.0.0", port: 1883), location: "")
    /// Whether `port` or `bind_address` asked for the default listener explicitly.
    var defaultListenerNamed = false
    /// Listeners from `listener` lines, in order.
    var listeners: [ListenerBlock] = []
    /// Whether a `listener` line has been read (later listener settings apply to the last one).
    var inListenerBlock = false
    var perListenerSettings = false
    /// `log_type` values seen so far (the first one replaces the default).
    var logTypeLevel: LogLevel?
    var logDestinationLocation: String?
    var maxConnectionsLocation: String?
    var metricsListenerAddress: String?
    /// Directories being included, to refuse a loop.
    var includeStack: [String] = []

    static let includeDepthMax = 8

    /// Reads and parses `path`.
    mutating func read(file path: String, depth: Int) throws(ConfigurationError) {
        switch readWholeFile(path) {
        case .success(let bytes):
            try parse(String(decoding: bytes, as: UTF8.self), file: path, depth: depth)
        case .failure(let error):
            throw ConfigurationError(setting: path, reason: "cannot read the configuration file: "
                + String(cString: strerror(error.code)))
        }
    }

    /// Parses the lines of `text`, read from `file`.
    mutating func parse(_ text: String, file: String, depth: Int) throws(ConfigurationError) {
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            // Mosquitto splits on spaces and tabs; a value that is a path may hold spaces only as the last value.
            let words = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let key = words[0]
            try apply(key: key, arguments: Array(words.dropFirst()), at: "\(file):\(lineNumber)", depth: depth)
        }
    }

    // MARK: - One setting

    /// Applies one line: `key` with its `arguments`, read at `at` (`FILE:LINE`).
    mutating func apply(key: String, arguments: [String], at: String, depth: Int) throws(ConfigurationError) {
        let location = "\(at): \(key)"
        func fail(_ reason: String) -> ConfigurationError { ConfigurationError(setting: location, reason: reason) }

        func single() throws(ConfigurationError) -> String {
            guard arguments.count == 1 else {
                throw fail(arguments.isEmpty ? "needs a value" : "takes one value, got \(arguments.count)")
            }
            return arguments[0]
        }
        func integer(in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            let text = try single()
            guard let number = Int(text), range.contains(number) else {
                throw fail("'\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        func boolean() throws(ConfigurationError) -> Bool {
            let text = try single()
            guard let value = parseBoolean(text) else { throw fail("'\(text)' is not true or false") }
            return value
        }
        func port(_ text: String) throws(ConfigurationError) -> UInt16 {
            guard let number = Int(text), (0...65_535).contains(number) else {
                throw fail("'\(text)' is not a port number in 0...65535")
            }
            return UInt16(number)
        }
        func address(_ text: String) throws(ConfigurationError) -> String {
            guard isIPAddressLiteral(text) else {
                throw fail("'\(text)' is not an IPv4 or IPv6 address (Shoal binds numeric addresses)")
            }
            return text
        }
        /// Sets a listener-scoped value on the current block (or the default listener before any `listener`).
        func onListener(_ body: (inout ListenerBlock) -> Void) {
            if inListenerBlock { body(&listeners[listeners.count - 1]) } else { body(&defaultListener) }
        }
        func markTLS() {
            onListener { block in if block.firstTLSLocation == nil { block.firstTLSLocation = location } }
        }

        if unsupportedMosquittoSettings.contains(key) || unsupportedMosquittoPrefixes.contains(where: key.hasPrefix) {
            throw fail("Mosquitto setting \(key) is not supported by Shoal")
        }

        switch key {
        // MARK: Listeners
        case "listener":
            guard (1...2).contains(arguments.count) else { throw fail("needs PORT [ADDRESS]") }
            let listenerPort = try port(arguments[0])
            let host = arguments.count == 2 ? try address(arguments[1]) : "0.0.0.0"
            let listener = BrokerListener(host: host, port: listenerPort)
            listeners.append(ListenerBlock(listener: listener, location: location))
            inListenerBlock = true
        case "port":
            defaultListener.listener.port = try port(try single())
            defaultListenerNamed = true
        case "bind_address":
            defaultListener.listener.host = try address(try single())
            defaultListenerNamed = true
        case "protocol":
            let name = try single()
            guard name == "mqtt" else {
                throw fail(name == "websockets"
                    ? "protocol websockets is not supported by Shoal (MQTT over TCP only)"
                    : "'\(name)' is not mqtt or websockets")
            }
        case "max_connections":
            let count = try integer(in: -1...100_000_000)
            if let previous = maxConnectionsLocation, configuration.connectionsMax != (count < 0 ? nil : count) {
                throw fail("Shoal has one max_connections for all listeners; a different one was given at \(previous)")
            }
            maxConnectionsLocation = at
            configuration.connectionsMax = count < 0 ? nil : count
        case "metrics_listener":
            guard (1...2).contains(arguments.count) else { throw fail("needs PORT [ADDRESS]") }
            let metricsPort = try port(arguments[0])
            metricsListenerAddress = arguments.count == 2 ? try address(arguments[1]) : nil
            configuration.metricsListener = ListenerConfiguration(host: metricsListenerAddress ?? "0.0.0.0",
                                                                  port: metricsPort)

        // MARK: TLS (per listener)
        case "certfile":
            let path = try single(); markTLS(); onListener { $0.certificateFile = path }
        case "keyfile":
            let path = try single(); markTLS(); onListener { $0.keyFile = path }
        case "cafile":
            let path = try single(); markTLS(); onListener { $0.caFile = path }
        case "capath":
            let path = try single(); markTLS(); onListener { $0.caPath = path }
        case "require_certificate":
            let value = try boolean(); markTLS(); onListener { $0.requireCertificate = value }
        case "use_identity_as_username":
            let value = try boolean(); markTLS(); onListener { $0.useIdentityAsUsername = value }
        case "ciphers":
            let value = try single(); markTLS(); onListener { $0.ciphers = value }
        case "ciphers_tls1.3":
            let value = try single(); markTLS(); onListener { $0.cipherSuitesTLS13 = value }
        case "tls_version":
            let name = try single()
            guard let version = TLSVersion(rawValue: name) else {
                throw fail(name == "tlsv1.1" || name == "tlsv1"
                    ? "'\(name)' is not supported by Shoal (TLS 1.2 or later only): use tlsv1.2 or tlsv1.3"
                    : "'\(name)' is not tlsv1.2 or tlsv1.3")
            }
            markTLS(); onListener { $0.minimumVersion = version }

        // MARK: Security
        case "allow_anonymous":
            let value = try boolean()
            if perListenerSettings && inListenerBlock {
                listeners[listeners.count - 1].listener.allowAnonymous = value
            } else {
                configuration.allowAnonymous = value
            }
        case "password_file", "acl_file":
            let path = try single()
            if perListenerSettings && inListenerBlock {
                throw fail("a \(key) per listener is not supported by Shoal (one for all listeners): "
                    + "give it before the first listener, or set per_listener_settings false")
            }
            if key == "password_file" { configuration.passwordFile = path } else { configuration.aclFile = path }
        case "per_listener_settings":
            let value = try boolean()
            if inListenerBlock && value != perListenerSettings {
                throw fail("must come before the first listener")
            }
            perListenerSettings = value

        // MARK: Limits
        case "max_queued_messages":
            configuration.limits.sessionQueuedMessagesMax = try bounded(try integer(in: 0...10_000_000), fail)
        case "max_queued_bytes":
            configuration.limits.outboundBytesMax = try bounded(try integer(in: 0...(1 << 32)), fail, minimum: 1024)
        case "max_inflight_messages":
            configuration.limits.inflightMessagesMax = try bounded(try integer(in: 0...65_535), fail)
        case "max_packet_size":
            let size = try integer(in: 0...268_435_455)
            // 0 is Mosquitto's "no limit": the protocol's own maximum.
            guard size == 0 || size >= 16 else { throw fail("'\(size)' is below 16, the smallest useful packet") }
            configuration.limits.packetSizeBytesMax = size == 0 ? 268_435_455 : size
        case "message_size_limit":
            // Mosquitto bounds the payload; Shoal bounds whole packets, so it allows the payload plus room for the
            // fixed header, a topic and properties. 0 is "no limit".
            let size = try integer(in: 0...268_435_455)
            configuration.limits.packetSizeBytesMax = size == 0
                ? 268_435_455 : min(268_435_455, size + ConfigurationFileParser.messageHeaderAllowance)
        case "max_keepalive":
            configuration.limits.keepAliveSecondsMax = try integer(in: 10...65_535)
        case "retain_available":
            configuration.limits.retainAvailable = try boolean()
        case "persistent_client_expiration":
            configuration.limits.sessionExpirySecondsMax = try parseDuration(try single(), fail)
        case "receive_maximum":
            configuration.limits.receiveMaximum = try integer(in: 1...65_535)
        case "topic_alias_maximum", "max_topic_alias":
            configuration.limits.topicAliasMaximum = try integer(in: 0...65_535)
        case "queue_full_policy":
            let name = try single()
            guard let policy = QueueFullPolicy(rawValue: name) else {
                throw fail("'\(name)' is not one of drop_newest, drop_oldest, disconnect")
            }
            configuration.limits.sessionQueueFullPolicy = policy
        case "queue_full_disconnect_seconds":
            let seconds = try integer(in: 0...86_400)
            configuration.limits.queueFullDisconnectMillis = seconds == 0 ? nil : UInt64(seconds) * 1000
        case "queued_bytes_budget":
            configuration.limits.queuedBytesBudget = try integer(in: (1 << 20)...(1 << 40))
        case "mesh_ring_slots":
            let slots = try integer(in: 16...(1 << 20))
            guard slots & (slots - 1) == 0 else { throw fail("'\(slots)' is not a power of two") }
            configuration.limits.meshRingSlots = slots
        case "mesh_overflow_messages":
            configuration.limits.meshOverflowMessagesMax = try integer(in: 0...10_000_000)
        case "max_connections_per_shard":
            configuration.limits.connectionsPerShardMax = try integer(in: 1...10_000_000)

        // MARK: Shards
        case "shards":
            configuration.shardCount = try integer(in: 1...1024)
        case "cpus":
            guard !arguments.isEmpty else { throw fail("needs a CPU list such as 0-3,6") }
            configuration.cpus = try parseCPUList(arguments.joined(separator: ","), fail)

        // MARK: Logging and $SYS
        case "log_type":
            guard !arguments.isEmpty else { throw fail("needs a type") }
            for name in arguments {
                let level: LogLevel?
                switch name {
                case "error": level = .error
                case "warning": level = .warning
                case "notice", "information": level = .info
                case "debug", "all": level = .debug
                // Shoal writes no per-subscription or websocket lines: these select nothing more.
                case "subscribe", "unsubscribe", "websockets": level = nil
                // Errors are always written.
                case "none": level = .error
                default:
                    throw fail("'\(name)' is not one of error, warning, notice, information, subscribe, "
                        + "unsubscribe, websockets, debug, all, none")
                }
                if let level { logTypeLevel = max(logTypeLevel ?? .error, level) }
            }
            configuration.logLevel = logTypeLevel ?? configuration.logLevel
        case "log_level":
            let name = try single()
            guard let level = LogLevel(name: name) else { throw fail("'\(name)' is not error, warning, info or debug") }
            configuration.logLevel = level
        case "log_dest":
            guard let kind = arguments.first else { throw fail("needs stderr, stdout or file PATH") }
            let destination: LogDestination
            switch kind {
            case "stderr", "stdout":
                guard arguments.count == 1 else { throw fail("log_dest \(kind) takes no further value") }
                destination = kind == "stderr" ? .standardError : .standardOutput
            case "file":
                guard arguments.count >= 2 else { throw fail("log_dest file needs a path") }
                destination = .file(arguments.dropFirst().joined(separator: " "))
            case "none":
                destination = .file("/dev/null")
            case "syslog", "topic", "dlt":
                throw fail("log_dest \(kind) is not supported by Shoal (stderr, stdout or file PATH)")
            default:
                throw fail("'\(kind)' is not stderr, stdout or file PATH")
            }
            if let previous = logDestinationLocation, configuration.logDestination != destination {
                throw fail("Shoal writes to one log destination; another was given at \(previous)")
            }
            logDestinationLocation = at
            configuration.logDestination = destination
        case "log_timestamp":
            guard try boolean() else { throw fail("Shoal always writes timestamps (ISO 8601 UTC)") }
        case "connection_messages":
            configuration.connectionMessages = try boolean()
        case "sys_interval":
            configuration.sysIntervalSeconds = try integer(in: 0...86_400)

        // MARK: Files
        case "include_dir":
            let directory = try single()
            try include(directory: directory, fail, depth: depth)

        default:
            throw fail("unknown setting")
        }
    }

    /// Room Shoal adds to `message_size_limit` for the rest of a PUBLISH: fixed header (5), topic (2 + up to
    /// 65,535), packet identifier (2) and a few properties.
    static let messageHeaderAllowance = 5 + 2 + 65_535 + 2 + 1024

    /// Reads every `*.conf` file of `directory`, in byte order of their names.
    mutating func include(directory: String, _ fail: (String) -> ConfigurationError, depth: Int)
        throws(ConfigurationError) {
        guard depth < ConfigurationFileParser.includeDepthMax, !includeStack.contains(directory) else {
            throw fail("'\(directory)' includes itself (directly or through another include_dir)")
        }
        guard let stream = opendir(directory) else {
            throw fail("cannot read directory '\(directory)': \(systemError())")
        }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasSuffix(".conf") && !name.hasPrefix(".") { names.append(name) }
        }
        closedir(stream)
        includeStack.append(directory)
        for name in names.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var status = stat()
            // Directories named *.conf are skipped, as Mosquitto does.
            if stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR { continue }
            try read(file: path, depth: depth + 1)
        }
        includeStack.removeLast()
    }

    /// The configuration with its listeners resolved.
    func finish() throws(ConfigurationError) -> BrokerConfiguration {
        var result = configuration
        var resolved: [BrokerListener] = []
        if defaultListenerNamed || listeners.isEmpty || defaultListener.firstTLSLocation != nil {
            resolved.append(try defaultListener.resolved())
        }
        for block in listeners { resolved.append(try block.resolved()) }
        result.listeners = resolved
        // Without its own address the metrics listener takes the first MQTT listener's, as --metrics-port does.
        if result.metricsListener != nil && metricsListenerAddress == nil {
            result.metricsListener!.host = resolved.first?.host ?? "0.0.0.0"
        }
        return result
    }
}

/// A positive bound from a Mosquitto value where 0 means "no limit": Shoal bounds every queue, so 0 is refused.
private func bounded(_ value: Int, _ fail: (String) -> ConfigurationError, minimum: Int = 1)
    throws(ConfigurationError) -> Int {
    if value == 0 { throw fail("0 (no limit) is not supported: Shoal bounds every queue; give a number") }
    guard value >= minimum else { throw fail("'\(value)' is below the minimum of \(minimum)") }
    return value
}

/// Mosquitto's duration syntax for `persistent_client_expiration`: an integer and a unit, `h` (hours), `d` (days),
/// `w` (weeks), `m` (months of 30 days) or `y` (years of 365 days). Returns seconds, at most `UInt32.max`.
func parseDuration(_ text: String, _ fail: (String) -> ConfigurationError) throws(ConfigurationError) -> UInt32 {
    let reason = "'\(text)' is not a duration: an integer followed by h, d, w, m or y (e.g. 2d)"
    guard let unit = text.last, let count = UInt64(text.dropLast()), count > 0 else { throw fail(reason) }
    let unitSeconds: UInt64
    switch unit {
    case "h": unitSeconds = 3600
    case "d": unitSeconds = 86_400
    case "w": unitSeconds = 7 * 86_400
    case "m": unitSeconds = 30 * 86_400
    case "y": unitSeconds = 365 * 86_400
    default: throw fail(reason)
    }
    let (seconds, overflow) = count.multipliedReportingOverflow(by: unitSeconds)
    guard !overflow, seconds < UInt64(UInt32.max) else { throw fail("'\(text)' is longer than about 136 years") }
    return UInt32(seconds)
}

/// A CPU list as `taskset -c` takes it: `0-3,6,8-9`. Returns the CPUs in the order given, without duplicates.
func parseCPUList(_ text: String, _ fail: (String) -> ConfigurationError) throws(ConfigurationError) -> [Int] {
    var cpus: [Int] = []
    for part in text.split(separator: ",", omittingEmptySubsequences: true) {
        let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = Int(bounds[0]), (0..<4096).contains(first),
              let last = bounds.count == 2 ? Int(bounds[1]) : first, (first..<4096).contains(last) else {
            throw fail("'\(part)' is not a CPU number or range such as 2 or 0-3 (CPUs 0...4095)")
        }
        for cpu in first...last where !cpus.contains(cpu) { cpus.append(cpu) }
    }
    guard !cpus.isEmpty else { throw fail("needs a CPU list such as 0-3,6") }
    return cpus
}
