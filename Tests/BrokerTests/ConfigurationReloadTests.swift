// SIGHUP's configuration reload without a running broker: which changed settings apply at run time and which need
// a restart, that a reload hands the run-time part to the shards through SecurityExchange and changes the
// logger, that a bad file keeps everything in force; and that the shipped example configuration is true.
import Foundation
import MQTTRouter
import ShardRuntime
import Testing

@testable import Broker

@Suite struct ConfigurationReloadTests {
    @Test func classifiesChangesIntoRunTimeAndRestart() throws {
        // Proves every setting is compared, run-time ones are applied and restart ones keep their old value.
        let old = try parseConfiguration("listener 1884 127.0.0.1\nshards 2\n")
        let new = try parseConfiguration("""
            listener 1885 127.0.0.1
            shards 4
            cpus 0
            max_connections 10
            metrics_listener 9100
            allow_anonymous false
            password_file /p
            acl_file /a
            sys_interval 20
            log_type debug
            log_dest stdout
            connection_messages false
            max_queued_messages 5
            queue_full_policy drop_oldest
            queue_full_disconnect_seconds 9
            max_inflight_messages 3
            receive_maximum 7
            max_packet_size 999
            max_keepalive 30
            persistent_client_expiration 1h
            topic_alias_maximum 2
            retain_available false
            max_queued_bytes 4096
            queued_bytes_budget 2097152
            mesh_ring_slots 64
            mesh_overflow_messages 100
            max_connections_per_shard 50
            """)
        let changes = old.changes(to: new, sysAvailable: true)
        let runTime = Set(changes.filter(\.appliesAtRunTime).map(\.setting))
        let restart = Set(changes.filter { !$0.appliesAtRunTime }.map(\.setting))
        #expect(runTime == ["allow_anonymous", "password_file", "acl_file", "sys_interval", "log_type", "log_dest",
                            "connection_messages", "max_queued_messages", "queue_full_policy",
                            "queue_full_disconnect_seconds", "max_inflight_messages", "receive_maximum",
                            "max_packet_size", "max_keepalive", "persistent_client_expiration",
                            "topic_alias_maximum", "retain_available"])
        #expect(restart == ["listener", "shards", "cpus", "max_connections", "metrics_listener", "max_queued_bytes",
                            "queued_bytes_budget", "mesh_ring_slots", "mesh_overflow_messages",
                            "max_connections_per_shard"])
        #expect(changes.first { $0.setting == "max_queued_messages" }?.description
            == "max_queued_messages changed from 1000 to 5")
        #expect(changes.first { $0.setting == "shards" }?.description
            == "shards changed from 2 to 4 in the configuration, but needs a restart: still 2")
        #expect(changes.first { $0.setting == "listener" }?.old == "127.0.0.1 1884")

        let applied = old.applyingRunTimeSettings(of: new, sysAvailable: true)
        #expect(applied.listeners == old.listeners && applied.shardCount == 2 && applied.cpus == nil)
        #expect(applied.metricsListener == nil && applied.connectionsMax == nil)
        #expect(applied.allowAnonymous == false && applied.passwordFile == "/p" && applied.aclFile == "/a")
        #expect(applied.sysIntervalSeconds == 20 && applied.logLevel == .debug)
        #expect(applied.logDestination == .standardOutput && applied.connectionMessages == false)
        #expect(applied.limits.sessionQueuedMessagesMax == 5 && applied.limits.packetSizeBytesMax == 999)
        #expect(applied.limits.outboundBytesMax == Limits().outboundBytesMax)
        #expect(applied.limits.meshRingSlots == Limits().meshRingSlots)
        // Nothing left to report once applied, except what needs a restart.
        #expect(applied.changes(to: new, sysAvailable: true).allSatisfy { !$0.appliesAtRunTime })
    }

    @Test func sysIntervalNeedsARestartOnlyWhenNothingIsGathered() throws {
        // Proves turning $SYS on needs a restart when the broker started without metrics snapshots; turning it
        // off, or changing it with snapshots running, applies at once.
        let off = try parseConfiguration("sys_interval 0")
        let on = try parseConfiguration("sys_interval 5")
        #expect(off.changes(to: on, sysAvailable: false).map(\.appliesAtRunTime) == [false])
        #expect(off.applyingRunTimeSettings(of: on, sysAvailable: false).sysIntervalSeconds == 0)
        #expect(off.changes(to: on, sysAvailable: true).map(\.appliesAtRunTime) == [true])
        #expect(on.changes(to: off, sysAvailable: false).map(\.appliesAtRunTime) == [true])
    }

    @Test func perListenerAnonymousChangesApplyWhenTheListenersStayTheSame() throws {
        // Proves allow_anonymous of one listener is a run-time change while its address stays.
        let old = try parseConfiguration("per_listener_settings true\nlistener 1884\nallow_anonymous true")
        let new = try parseConfiguration("per_listener_settings true\nlistener 1884\nallow_anonymous false")
        let changes = old.changes(to: new, sysAvailable: true)
        #expect(changes == [ConfigurationChange(setting: "allow_anonymous (listener 1884)", old: "true", new: "false",
                                                appliesAtRunTime: true)])
        #expect(old.applyingRunTimeSettings(of: new, sysAvailable: true).listeners[0].allowAnonymous == false)
    }

    @Test func reloadHandsNewTablesToShardsAndChangesTheLogger() throws {
        // Proves a reload of an edited file publishes a new generation carrying the new limits, sets the log
        // level, switches log_dest, logs each change, and refuses a broken file keeping everything in force.
        let directory = temporaryPath("reload")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/shoal.conf"
        let log = directory + "/shoal.log"
        let moved = directory + "/other.log"
        try "log_dest file \(log)\nmax_queued_messages 100\nshards 1\n".write(toFile: path, atomically: true,
                                                                            encoding: .utf8)
        guard case .run(let configuration) = try parseCommandLine(["-c", path]) else {
            Issue.record("not a run request"); return
        }
        let logger = try Logger.open(level: configuration.logLevel, destination: configuration.logDestination)
        let exchange = SecurityExchange(try SecurityTables.load(configuration))
        let reloader = ConfigurationReloader(configuration: configuration, exchange: exchange, logger: logger,
                                             sysAvailable: true)
        let generation = exchange.generation

        try "log_dest file \(moved)\nmax_queued_messages 7\nshards 2\nlog_type debug\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(reloader.reload())
        #expect(exchange.generation == generation + 1)
        #expect(exchange.current().tables.limits.sessionQueuedMessagesMax == 7)
        #expect(logger.level == .debug)
        #expect(reloader.configuration.shardCount == 1)
        #expect(reloader.configuration.logDestination == .file(moved))
        let first = readText(log)
        #expect(first.isEmpty)
        let lines = readText(moved)
        #expect(lines.contains("info reload: max_queued_messages changed from 100 to 7"))
        #expect(lines.contains("warning reload: shards changed from 1 to 2 in the configuration, but needs a restart"))
        #expect(lines.contains("info reload: log_dest changed from file \(log) to file \(moved)"))
        #expect(lines.contains("configuration reloaded from \(path): 4 setting(s) changed, 1 need(s) a restart"))

        try "max_queued_messages seven\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(!reloader.reload())
        #expect(exchange.generation == generation + 1)
        #expect(reloader.configuration.limits.sessionQueuedMessagesMax == 7)
        #expect(readText(moved).contains(
            "error configuration reload refused, the running configuration stays: \(path):1: max_queued_messages: "
                + "'seven' is not an integer in 0...10000000"))

        // A password file that cannot be read refuses the whole reload.
        try "log_dest file \(moved)\nshards 2\nlog_type debug\npassword_file /nonexistent/pw\nmax_queued_messages 9\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(!reloader.reload())
        #expect(reloader.configuration.limits.sessionQueuedMessagesMax == 7)
        #expect(readText(moved).contains("security reload refused, keeping the previous files: password_file"))
    }

    @Test func exampleConfigurationShowsEveryDefaultTruly() throws {
        // Proves scripts/shoal.conf loads as is, that uncommenting every "#setting value" line (the documented
        // defaults) gives exactly Shoal's defaults, that every indented example parses, and that it mentions every
        // setting the parser knows.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = root.appendingPathComponent("scripts/shoal.conf").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var loaded = try BrokerConfiguration.load(configurationFile: path)
        loaded.configurationFile = nil
        #expect(loaded == BrokerConfiguration())

        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let defaults = lines.map { line -> Substring in
            guard line.hasPrefix("#"), line.dropFirst().first?.isLowercase == true else { return line }
            return line.dropFirst()
        }.joined(separator: "\n")
        #expect(try parseConfiguration(defaults) == BrokerConfiguration())

        let examples = lines.compactMap { line -> String? in
            guard line.hasPrefix("#   ") else { return nil }
            return String(line.dropFirst(4))
        }
        // include_dir reads the disk; its parsing is covered in ConfigurationFileTests.
        for example in examples where !example.hasPrefix("include_dir") {
            // TLS settings need their listener and both files around them.
            let text = example.hasPrefix("listener") || example.hasPrefix("port") || example.hasPrefix("bind")
                ? example : "listener 8883\ncertfile c\nkeyfile k\n\(example)"
            #expect(throws: Never.self, "\(example)") { try parseConfiguration(text) }
        }
        let mentioned = Set(lines.compactMap { line -> String? in
            let body = line.hasPrefix("#   ") ? line.dropFirst(4) : line.hasPrefix("#") ? line.dropFirst() : line
            guard let word = body.split(separator: " ").first, body.first?.isLowercase == true else { return nil }
            return String(word)
        })
        let known: Set<String> = [
            "listener", "port", "bind_address", "protocol", "max_connections", "metrics_listener", "certfile",
            "keyfile", "cafile", "capath", "require_certificate", "use_identity_as_username", "ciphers",
            "ciphers_tls1.3", "tls_version", "allow_anonymous", "per_listener_settings", "password_file", "acl_file",
            "max_queued_messages", "queue_full_policy", "queue_full_disconnect_seconds", "max_queued_bytes",
            "queued_bytes_budget", "max_inflight_messages", "receive_maximum", "max_packet_size",
            "message_size_limit", "max_keepalive", "persistent_client_expiration", "topic_alias_maximum",
            "retain_available", "shards", "cpus", "mesh_ring_slots", "mesh_overflow_messages",
            "max_connections_per_shard", "log_type", "log_level", "log_dest", "log_timestamp",
            "connection_messages", "sys_interval", "include_dir",
        ]
        #expect(known.subtracting(mentioned).isEmpty, "not documented: \(known.subtracting(mentioned))")
    }
}
