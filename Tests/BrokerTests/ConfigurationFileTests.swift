// The configuration file (`shoal -c FILE`, mosquitto.conf syntax): every valid key lands on its field, every
// invalid case names FILE:LINE: setting, Mosquitto's own files load or name the unsupported setting, include_dir,
// and command-line flags override the file wherever they stand.
import Foundation
import MQTTRouter
import ShardRuntime
import Testing

@testable import Broker

/// Parses `text` as file "test.conf".
func parseConfiguration(_ text: String) throws(ConfigurationError) -> BrokerConfiguration {
    try BrokerConfiguration.parse(configurationText: text, file: "test.conf")
}

/// The error `text` raises (fails the test when it parses).
func configurationError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigurationError? {
    do throws(ConfigurationError) {
        _ = try parseConfiguration(text)
        Issue.record("parsed without error: \(text)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Writes `text` to a new temporary file and returns its path.
func writeTemporary(_ name: String, _ text: String) throws -> String {
    let path = temporaryPath(name)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite struct ConfigurationFileTests {
    @Test func emptyAndCommentOnlyFilesGiveTheDefaults() throws {
        // Proves comments, blank lines, CRLF line ends and indentation are ignored and defaults stay.
        let configuration = try parseConfiguration("# comment\n\n   # indented comment\r\n\t\n")
        var expected = BrokerConfiguration()
        expected.listeners = [BrokerListener(host: "0.0.0.0", port: 1883)]
        #expect(configuration == expected)
    }

    @Test func readsEveryGlobalSetting() throws {
        // Proves each global key reaches its field of BrokerConfiguration or Limits.
        let configuration = try parseConfiguration("""
            allow_anonymous false
            password_file /etc/shoal/passwd
            acl_file /etc/shoal/acl
            max_queued_messages 500
            max_queued_bytes 65536
            max_inflight_messages 7
            max_packet_size 4096
            max_keepalive 120
            retain_available false
            persistent_client_expiration 2d
            log_type error
            log_type warning
            log_dest file /var/log/shoal.log
            sys_interval 30
            max_connections 1000
            shards 3
            cpus 0-1,3
            queue_full_policy disconnect
            queue_full_disconnect_seconds 15
            queued_bytes_budget 67108864
            mesh_ring_slots 1024
            mesh_overflow_messages 5000
            max_connections_per_shard 2000
            receive_maximum 100
            topic_alias_maximum 10
            connection_messages false
            log_timestamp true
            metrics_listener 9100 127.0.0.1
            """)
        #expect(configuration.allowAnonymous == false)
        #expect(configuration.passwordFile == "/etc/shoal/passwd")
        #expect(configuration.aclFile == "/etc/shoal/acl")
        #expect(configuration.limits.sessionQueuedMessagesMax == 500)
        #expect(configuration.limits.outboundBytesMax == 65536)
        #expect(configuration.limits.inflightMessagesMax == 7)
        #expect(configuration.limits.packetSizeBytesMax == 4096)
        #expect(configuration.limits.keepAliveSecondsMax == 120)
        #expect(configuration.limits.retainAvailable == false)
        #expect(configuration.limits.sessionExpirySecondsMax == 2 * 86_400)
        #expect(configuration.logLevel == .warning)
        #expect(configuration.logDestination == .file("/var/log/shoal.log"))
        #expect(configuration.sysIntervalSeconds == 30)
        #expect(configuration.connectionsMax == 1000)
        #expect(configuration.shardCount == 3)
        #expect(configuration.cpus == [0, 1, 3])
        #expect(configuration.limits.sessionQueueFullPolicy == .disconnect)
        #expect(configuration.limits.queueFullDisconnectMillis == 15_000)
        #expect(configuration.limits.queuedBytesBudget == 67_108_864)
        #expect(configuration.limits.meshRingSlots == 1024)
        #expect(configuration.limits.meshOverflowMessagesMax == 5000)
        #expect(configuration.limits.connectionsPerShardMax == 2000)
        #expect(configuration.limits.receiveMaximum == 100)
        #expect(configuration.limits.topicAliasMaximum == 10)
        #expect(configuration.connectionMessages == false)
        #expect(configuration.metricsListener == ListenerConfiguration(host: "127.0.0.1", port: 9100))
        #expect(configuration.listeners == [BrokerListener(host: "0.0.0.0", port: 1883)])
    }

    @Test func readsMosquittoValueForms() throws {
        // Proves the Mosquitto spellings: 0 = no limit for max_packet_size, message_size_limit as a payload
        // bound, max_topic_alias, log_type all/none/notice, log_level, duration units, log_dest stdout/stderr.
        #expect(try parseConfiguration("max_packet_size 0").limits.packetSizeBytesMax == 268_435_455)
        #expect(try parseConfiguration("message_size_limit 1000").limits.packetSizeBytesMax
            == 1000 + ConfigurationFileParser.messageHeaderAllowance)
        #expect(try parseConfiguration("message_size_limit 0").limits.packetSizeBytesMax == 268_435_455)
        #expect(try parseConfiguration("max_topic_alias 5").limits.topicAliasMaximum == 5)
        #expect(try parseConfiguration("log_type all").logLevel == .debug)
        #expect(try parseConfiguration("log_type none").logLevel == .error)
        #expect(try parseConfiguration("log_type notice subscribe").logLevel == .info)
        #expect(try parseConfiguration("log_level debug").logLevel == .debug)
        #expect(try parseConfiguration("log_dest stdout").logDestination == .standardOutput)
        #expect(try parseConfiguration("log_dest stderr\nlog_dest stderr").logDestination == .standardError)
        #expect(try parseConfiguration("log_dest file /tmp/a b.log").logDestination == .file("/tmp/a b.log"))
        #expect(try parseConfiguration("queue_full_disconnect_seconds 0").limits.queueFullDisconnectMillis == nil)
        #expect(try parseConfiguration("max_connections -1").connectionsMax == nil)
        #expect(try parseConfiguration("cpus 2").cpus == [2])
        #expect(try parseConfiguration("cpus 0 2-3").cpus == [0, 2, 3])
        for (text, seconds) in [("1h", 3600), ("2d", 172_800), ("3w", 1_814_400), ("4m", 10_368_000),
                                ("5y", 157_680_000)] {
            #expect(try parseConfiguration("persistent_client_expiration \(text)").limits.sessionExpirySecondsMax
                == UInt32(seconds))
        }
        #expect(try parseConfiguration("allow_anonymous yes").allowAnonymous == true)
    }

    @Test func listenerBlocksAndTheDefaultListener() throws {
        // Proves `listener` replaces the default listener unless `port`/`bind_address` ask for it, TLS keys apply
        // to the block they are in, and per_listener_settings scopes allow_anonymous to a listener.
        let configuration = try parseConfiguration("""
            per_listener_settings true
            allow_anonymous false
            listener 1884 127.0.0.1
            allow_anonymous true
            listener 8883 ::1
            certfile /etc/shoal/server.pem
            keyfile /etc/shoal/server.key
            cafile /etc/shoal/ca.pem
            capath /etc/shoal/ca.d
            require_certificate true
            use_identity_as_username true
            ciphers ECDHE-RSA-AES128-GCM-SHA256
            ciphers_tls1.3 TLS_AES_128_GCM_SHA256
            tls_version tlsv1.3
            protocol mqtt
            metrics_listener 9100
            """)
        #expect(configuration.allowAnonymous == false)
        #expect(configuration.listeners.count == 2)
        #expect(configuration.listeners[0] == BrokerListener(host: "127.0.0.1", port: 1884, allowAnonymous: true))
        let tlsListener = configuration.listeners[1]
        #expect(tlsListener.host == "::1" && tlsListener.port == 8883 && tlsListener.allowAnonymous == nil)
        var tls = TLSConfiguration(certificateFile: "/etc/shoal/server.pem", keyFile: "/etc/shoal/server.key")
        tls.caFile = "/etc/shoal/ca.pem"
        tls.caPath = "/etc/shoal/ca.d"
        tls.requireCertificate = true
        tls.useIdentityAsUsername = true
        tls.ciphers = "ECDHE-RSA-AES128-GCM-SHA256"
        tls.cipherSuitesTLS13 = "TLS_AES_128_GCM_SHA256"
        tls.minimumVersion = .tls13
        #expect(tlsListener.tls == tls)
        // The metrics listener takes the first MQTT listener's address when it names none.
        #expect(configuration.metricsListener == ListenerConfiguration(host: "127.0.0.1", port: 9100))

        let withDefault = try parseConfiguration("port 1885\nbind_address 127.0.0.1\nlistener 1886")
        #expect(withDefault.listeners == [BrokerListener(host: "127.0.0.1", port: 1885),
                                          BrokerListener(host: "0.0.0.0", port: 1886)])
        // Without per_listener_settings, allow_anonymous in a listener block is global (Mosquitto's rule).
        let global = try parseConfiguration("listener 1884\nallow_anonymous false")
        #expect(global.allowAnonymous == false && global.listeners[0].allowAnonymous == nil)
        // TLS settings before any listener belong to the default listener.
        let defaultTLS = try parseConfiguration("certfile a.pem\nkeyfile a.key")
        #expect(defaultTLS.listeners.count == 1 && defaultTLS.listeners[0].tls?.certificateFile == "a.pem")
    }

    @Test func everyInvalidCaseNamesFileLineAndSetting() throws {
        // Proves every refusal reads `test.conf:LINE: key` with the reason, on the right line.
        let cases: [(String, String, String)] = [
            ("frobnicate 1", "test.conf:1: frobnicate", "unknown setting"),
            ("\n\nmax_queued_messages lots", "test.conf:3: max_queued_messages",
             "'lots' is not an integer in 0...10000000"),
            ("max_queued_messages 0", "test.conf:1: max_queued_messages",
             "0 (no limit) is not supported: Shoal bounds every queue; give a number"),
            ("max_queued_bytes 0", "test.conf:1: max_queued_bytes",
             "0 (no limit) is not supported: Shoal bounds every queue; give a number"),
            ("max_queued_bytes 100", "test.conf:1: max_queued_bytes", "'100' is below the minimum of 1024"),
            ("max_inflight_messages 0", "test.conf:1: max_inflight_messages",
             "0 (no limit) is not supported: Shoal bounds every queue; give a number"),
            ("max_queued_messages 1 2", "test.conf:1: max_queued_messages", "takes one value, got 2"),
            ("max_keepalive", "test.conf:1: max_keepalive", "needs a value"),
            ("max_keepalive 5", "test.conf:1: max_keepalive", "'5' is not an integer in 10...65535"),
            ("max_packet_size 8", "test.conf:1: max_packet_size", "'8' is below 16, the smallest useful packet"),
            ("max_packet_size 268435456", "test.conf:1: max_packet_size",
             "'268435456' is not an integer in 0...268435455"),
            ("message_size_limit -1", "test.conf:1: message_size_limit", "'-1' is not an integer in 0...268435455"),
            ("retain_available maybe", "test.conf:1: retain_available", "'maybe' is not true or false"),
            ("allow_anonymous", "test.conf:1: allow_anonymous", "needs a value"),
            ("persistent_client_expiration 10", "test.conf:1: persistent_client_expiration",
             "'10' is not a duration: an integer followed by h, d, w, m or y (e.g. 2d)"),
            ("persistent_client_expiration 3s", "test.conf:1: persistent_client_expiration",
             "'3s' is not a duration: an integer followed by h, d, w, m or y (e.g. 2d)"),
            ("persistent_client_expiration 200y", "test.conf:1: persistent_client_expiration",
             "'200y' is longer than about 136 years"),
            ("listener", "test.conf:1: listener", "needs PORT [ADDRESS]"),
            ("listener 70000", "test.conf:1: listener", "'70000' is not a port number in 0...65535"),
            ("listener 1884 localhost", "test.conf:1: listener",
             "'localhost' is not an IPv4 or IPv6 address (Shoal binds numeric addresses)"),
            ("port x", "test.conf:1: port", "'x' is not a port number in 0...65535"),
            ("bind_address 999.1.1.1", "test.conf:1: bind_address",
             "'999.1.1.1' is not an IPv4 or IPv6 address (Shoal binds numeric addresses)"),
            ("metrics_listener", "test.conf:1: metrics_listener", "needs PORT [ADDRESS]"),
            ("protocol websockets", "test.conf:1: protocol",
             "protocol websockets is not supported by Shoal (MQTT over TCP only)"),
            ("protocol http", "test.conf:1: protocol", "'http' is not mqtt or websockets"),
            ("tls_version tlsv1.1", "test.conf:1: tls_version",
             "'tlsv1.1' is not supported by Shoal (TLS 1.2 or later only): use tlsv1.2 or tlsv1.3"),
            ("tls_version ssl3", "test.conf:1: tls_version", "'ssl3' is not tlsv1.2 or tlsv1.3"),
            ("listener 8883\ncafile ca.pem\ncertfile c.pem", "test.conf:2: cafile",
             "TLS settings for listener 8883 need both certfile and keyfile (keyfile is missing)"),
            ("require_certificate sometimes", "test.conf:1: require_certificate", "'sometimes' is not true or false"),
            ("per_listener_settings true\nlistener 1884\npassword_file p", "test.conf:3: password_file",
             "a password_file per listener is not supported by Shoal (one for all listeners): give it before the "
                + "first listener, or set per_listener_settings false"),
            ("per_listener_settings true\nlistener 1884\nacl_file a", "test.conf:3: acl_file",
             "a acl_file per listener is not supported by Shoal (one for all listeners): give it before the "
                + "first listener, or set per_listener_settings false"),
            ("listener 1884\nper_listener_settings true", "test.conf:2: per_listener_settings",
             "must come before the first listener"),
            ("max_connections 10\nlistener 1884\nmax_connections 20", "test.conf:3: max_connections",
             "Shoal has one max_connections for all listeners; a different one was given at test.conf:1"),
            ("shards 0", "test.conf:1: shards", "'0' is not an integer in 1...1024"),
            ("cpus", "test.conf:1: cpus", "needs a CPU list such as 0-3,6"),
            ("cpus 3-1", "test.conf:1: cpus", "'3-1' is not a CPU number or range such as 2 or 0-3 (CPUs 0...4095)"),
            ("cpus a", "test.conf:1: cpus", "'a' is not a CPU number or range such as 2 or 0-3 (CPUs 0...4095)"),
            ("queue_full_policy block", "test.conf:1: queue_full_policy",
             "'block' is not one of drop_newest, drop_oldest, disconnect"),
            ("queue_full_disconnect_seconds -1", "test.conf:1: queue_full_disconnect_seconds",
             "'-1' is not an integer in 0...86400"),
            ("queued_bytes_budget 10", "test.conf:1: queued_bytes_budget",
             "'10' is not an integer in 1048576...1099511627776"),
            ("mesh_ring_slots 1000", "test.conf:1: mesh_ring_slots", "'1000' is not a power of two"),
            ("mesh_ring_slots 8", "test.conf:1: mesh_ring_slots", "'8' is not an integer in 16...1048576"),
            ("mesh_overflow_messages x", "test.conf:1: mesh_overflow_messages",
             "'x' is not an integer in 0...10000000"),
            ("max_connections_per_shard 0", "test.conf:1: max_connections_per_shard",
             "'0' is not an integer in 1...10000000"),
            ("receive_maximum 0", "test.conf:1: receive_maximum", "'0' is not an integer in 1...65535"),
            ("topic_alias_maximum 70000", "test.conf:1: topic_alias_maximum", "'70000' is not an integer in 0...65535"),
            ("log_type verbose", "test.conf:1: log_type", "'verbose' is not one of error, warning, notice, "
                + "information, subscribe, unsubscribe, websockets, debug, all, none"),
            ("log_type", "test.conf:1: log_type", "needs a type"),
            ("log_level loud", "test.conf:1: log_level", "'loud' is not error, warning, info or debug"),
            ("log_dest syslog", "test.conf:1: log_dest",
             "log_dest syslog is not supported by Shoal (stderr, stdout or file PATH)"),
            ("log_dest topic", "test.conf:1: log_dest",
             "log_dest topic is not supported by Shoal (stderr, stdout or file PATH)"),
            ("log_dest dlt", "test.conf:1: log_dest",
             "log_dest dlt is not supported by Shoal (stderr, stdout or file PATH)"),
            ("log_dest file", "test.conf:1: log_dest", "log_dest file needs a path"),
            ("log_dest", "test.conf:1: log_dest", "needs stderr, stdout or file PATH"),
            ("log_dest pigeon", "test.conf:1: log_dest", "'pigeon' is not stderr, stdout or file PATH"),
            ("log_dest stderr\nlog_dest stdout", "test.conf:2: log_dest",
             "Shoal writes to one log destination; another was given at test.conf:1"),
            ("log_timestamp false", "test.conf:1: log_timestamp", "Shoal always writes timestamps (ISO 8601 UTC)"),
            ("connection_messages 2", "test.conf:1: connection_messages", "'2' is not true or false"),
            ("sys_interval -5", "test.conf:1: sys_interval", "'-5' is not an integer in 0...86400"),
            ("include_dir /nonexistent/shoal.d", "test.conf:1: include_dir",
             "cannot read directory '/nonexistent/shoal.d': No such file or directory"),
        ]
        for (text, setting, reason) in cases {
            let error = configurationError(text)
            #expect(error == ConfigurationError(setting: setting, reason: reason), "\(text)")
            #expect(error?.description == "\(setting): \(reason)")
        }
    }

    @Test func everyUnsupportedMosquittoSettingIsRefusedByName() throws {
        // Proves each Mosquitto setting Shoal lacks (bridges, persistence, plugins, websockets...) stops parsing
        // with its name, including the auth_opt_/plugin_opt_ families.
        for name in unsupportedMosquittoSettings.sorted() + ["auth_opt_db_host", "plugin_opt_x"] {
            let error = configurationError("\n\(name) value")
            #expect(error == ConfigurationError(setting: "test.conf:2: \(name)",
                                                reason: "Mosquitto setting \(name) is not supported by Shoal"))
        }
        // The names mosquitto.conf(5) lists in its example file are all known: supported or refused by name.
        let examples = "/usr/share/doc/mosquitto/examples/mosquitto.conf"
        if let text = try? String(contentsOfFile: examples, encoding: .utf8) {
            let names = text.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("#"), line.dropFirst().first?.isLowercase == true,
                      let word = line.dropFirst().split(separator: " ").first,
                      word.allSatisfy({ $0.isLowercase || $0 == "_" || $0.isNumber || $0 == "." }),
                      word.contains("_") || ["listener", "port", "user", "address", "connection", "topic",
                                             "protocol", "threshold", "cafile", "capath", "certfile", "keyfile",
                                             "ciphers", "notifications", "cleansession", "persistence",
                                             "crlfile", "dhparamfile"].contains(String(word))
                else { return nil }
                return String(word)
            }
            #expect(names.count > 50)
            for name in Set(names) {
                do throws(ConfigurationError) {
                    _ = try parseConfiguration("\(name) 1")
                } catch {
                    #expect(error.reason != "unknown setting", "\(name) is a Mosquitto setting")
                }
            }
        }
    }

    @Test func mosquittoFilesLoadOrNameTheUnsupportedSetting() throws {
        // Proves Debian's /etc/mosquitto/mosquitto.conf (as shipped) stops at pid_file, and its example file
        // (everything commented out) loads with Shoal's defaults. The text is embedded so the test needs no package.
        let debianDefault = """
            # Place your local configuration in /etc/mosquitto/conf.d/
            #
            # A full description of the configuration file is at
            # /usr/share/doc/mosquitto/examples/mosquitto.conf.example

            pid_file /run/mosquitto/mosquitto.pid

            persistence true
            persistence_location /var/lib/mosquitto/

            log_dest file /var/log/mosquitto/mosquitto.log

            include_dir /etc/mosquitto/conf.d
            """
        #expect(configurationError(debianDefault) == ConfigurationError(
            setting: "test.conf:6: pid_file", reason: "Mosquitto setting pid_file is not supported by Shoal"))
        // The same file without the settings Shoal lacks loads: its log_dest and an include of an empty dir.
        let directory = temporaryPath("conf.d")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "Any files placed in this directory that have a .conf ending ...\n"
            .write(toFile: directory + "/README", atomically: true, encoding: .utf8)
        let trimmed = debianDefault.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("pid_file") && !$0.hasPrefix("persistence") }
            .joined(separator: "\n").replacingOccurrences(of: "/etc/mosquitto/conf.d", with: directory)
        let configuration = try parseConfiguration(trimmed)
        #expect(configuration.logDestination == .file("/var/log/mosquitto/mosquitto.log"))
        let example = "/usr/share/doc/mosquitto/examples/mosquitto.conf"
        if FileManager.default.fileExists(atPath: example) {
            var expected = try BrokerConfiguration.load(configurationFile: example)
            #expect(expected.configurationFile == example)
            expected.configurationFile = nil
            #expect(expected == BrokerConfiguration())
        }
    }

    @Test func includeDirReadsConfFilesInOrderWhereTheLineStands() throws {
        // Proves include_dir reads only *.conf, sorted, at its place (a later line overrides an included one),
        // reports errors with the included file's name and line, and refuses an include loop.
        let directory = temporaryPath("conf.d")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "max_queued_messages 10\nsys_interval 5\n"
            .write(toFile: directory + "/b.conf", atomically: true, encoding: .utf8)
        try "max_queued_messages 20\nmax_inflight_messages 3\n"
            .write(toFile: directory + "/a.conf", atomically: true, encoding: .utf8)
        try "frobnicate\n".write(toFile: directory + "/notes.txt", atomically: true, encoding: .utf8)
        let main = try writeTemporary(
            "shoal.conf", "sys_interval 1\ninclude_dir \(directory)\nmax_inflight_messages 9\n")
        let configuration = try BrokerConfiguration.load(configurationFile: main)
        #expect(configuration.limits.sessionQueuedMessagesMax == 10)
        #expect(configuration.sysIntervalSeconds == 5)
        #expect(configuration.limits.inflightMessagesMax == 9)

        try "\nmax_keepalive 1\n".write(toFile: directory + "/c.conf", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError(setting: "\(directory)/c.conf:2: max_keepalive",
                                           reason: "'1' is not an integer in 10...65535")) {
            try BrokerConfiguration.load(configurationFile: main)
        }
        try "include_dir \(directory)\n".write(toFile: directory + "/c.conf", atomically: true, encoding: .utf8)
        let loop = "'\(directory)' includes itself (directly or through another include_dir)"
        #expect(throws: ConfigurationError(setting: "\(directory)/c.conf:1: include_dir", reason: loop)) {
            try BrokerConfiguration.load(configurationFile: main)
        }
        #expect(throws: ConfigurationError(setting: "/nonexistent/shoal.conf",
                                           reason: "cannot read the configuration file: No such file or directory")) {
            try BrokerConfiguration.load(configurationFile: "/nonexistent/shoal.conf")
        }
    }

    @Test func commandLineFlagsOverrideTheFileWhereverTheyStand() throws {
        // Proves -c/--config/--config= load the file, every flag wins over it before or after -c, the arguments
        // are kept for a reload, and -c errors name -c or the file.
        let path = try writeTemporary("shoal.conf", """
            listener 1884 127.0.0.1
            max_queued_messages 10
            max_inflight_messages 5
            sys_interval 3
            log_type debug
            """)
        for arguments in [["--max-queued-messages", "99", "-c", path, "--port", "1999"],
                          ["--config", path, "--max-queued-messages", "99", "--port=1999"],
                          ["--config=\(path)", "--port", "1999", "--max-queued-messages=99"]] {
            guard case .run(let configuration) = try parseCommandLine(arguments) else {
                Issue.record("not a run request"); continue
            }
            #expect(configuration.limits.sessionQueuedMessagesMax == 99)
            #expect(configuration.limits.inflightMessagesMax == 5)
            #expect(configuration.sysIntervalSeconds == 3)
            #expect(configuration.logLevel == .debug)
            #expect(configuration.listeners == [BrokerListener(host: "127.0.0.1", port: 1999)])
            #expect(configuration.configurationFile == path)
        }
        guard case .run(let kept) = try parseCommandLine(["-c", path, "--log-level", "error"]) else {
            Issue.record("not a run request"); return
        }
        #expect(kept.logLevel == .error)
        #expect(kept.commandLineArguments == ["-c", path, "--log-level", "error"])
        #expect(throws: ConfigurationError(setting: "-c", reason: "needs a value")) { try parseCommandLine(["-c"]) }
        #expect(throws: ConfigurationError(setting: "-c", reason: "only one configuration file can be given")) {
            try parseCommandLine(["-c", path, "--config", path])
        }
        let bad = try writeTemporary("bad.conf", "\nmax_keepalive zero\n")
        #expect(throws: ConfigurationError(setting: "\(bad):2: max_keepalive",
                                           reason: "'zero' is not an integer in 10...65535")) {
            try parseCommandLine(["--port", "1", "-c", bad])
        }
        // --help and --version answer without reading the file.
        #expect(try parseCommandLine(["-c", "/nonexistent", "--help"]) == .help)
        // A flag value spelled like -c is a value, not the flag.
        guard case .run(let odd) = try parseCommandLine(["--password-file", "-c"]) else { return }
        #expect(odd.passwordFile == "-c" && odd.configurationFile == nil)
    }
}
