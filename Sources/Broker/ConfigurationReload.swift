import MQTTRouter
import ShardRuntime
import Synchronization

// MARK: - SIGHUP: read the configuration again, apply what can change at run time
//
// The reload runs on the signal thread. It reads the file and the command line again exactly as at startup,
// compares the result with the configuration in force, and hands the run-time part to the shards through the
// one existing channel, ``SecurityExchange`` (each shard picks it up on its next loop turn): password file, ACL,
// allow_anonymous, the router's limits for new connections and queues, sys_interval and connection_messages.
// The log level and destination change in the shared ``LogControl``. Settings fixed when the shards started
// (listeners, shards, CPUs, ring and connection bounds) are logged as needing a restart and keep their values.
// Nothing is closed: connected clients stay connected. All or nothing: if any part fails (a bad line, an
// unreadable password file, a log file that cannot be opened), the configuration in force stays.

/// One setting that differs between the configuration in force and the one just read.
public struct ConfigurationChange: Sendable, Equatable, CustomStringConvertible {
    /// The configuration-file name of the setting.
    public var setting: String
    /// The value in force, as text.
    public var old: String
    /// The value read, as text.
    public var new: String
    /// Whether a running broker applies it; false means it takes a restart.
    public var appliesAtRunTime: Bool

    public init(setting: String, old: String, new: String, appliesAtRunTime: Bool) {
        self.setting = setting
        self.old = old
        self.new = new
        self.appliesAtRunTime = appliesAtRunTime
    }

    public var description: String {
        appliesAtRunTime
            ? "\(setting) changed from \(old) to \(new)"
            : "\(setting) changed from \(old) to \(new) in the configuration, but needs a restart: still \(old)"
    }
}

extension BrokerConfiguration {
    /// The settings that differ from `self` in `new`, in the order of README's table.
    /// - Parameter sysAvailable: whether the running broker gathers metrics snapshots (then `sys_interval` can
    ///   change at run time; without, turning `$SYS` on needs a restart).
    public func changes(to new: BrokerConfiguration, sysAvailable: Bool) -> [ConfigurationChange] {
        var changes: [ConfigurationChange] = []
        func compare<T: Equatable>(_ setting: String, _ old: T, _ new: T, runTime: Bool,
                                   _ describe: (T) -> String = { "\($0)" }) {
            guard old != new else { return }
            changes.append(ConfigurationChange(setting: setting, old: describe(old), new: describe(new),
                                               appliesAtRunTime: runTime))
        }
        func optional<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "none" }

        if listeners.map(\.shape) != new.listeners.map(\.shape) {
            compare("listener", listeners, new.listeners, runTime: false) { $0.map(\.summary).joined(separator: ", ") }
        } else {
            for (old, read) in zip(listeners, new.listeners) {
                compare("allow_anonymous (listener \(old.port))", old.allowAnonymous, read.allowAnonymous,
                        runTime: true, optional)
            }
        }
        compare("metrics_listener", metricsListener.map { "\($0.host) \($0.port)" },
                new.metricsListener.map { "\($0.host) \($0.port)" }, runTime: false, optional)
        compare("shards", shardCount, new.shardCount, runTime: false) { $0.map { "\($0)" } ?? "one per CPU" }
        compare("cpus", cpus, new.cpus, runTime: false) {
            $0.map { $0.map(String.init).joined(separator: ",") } ?? "the affinity mask"
        }
        compare("max_connections", connectionsMax, new.connectionsMax, runTime: false, optional)
        compare("allow_anonymous", allowAnonymous, new.allowAnonymous, runTime: true)
        compare("password_file", passwordFile, new.passwordFile, runTime: true, optional)
        compare("acl_file", aclFile, new.aclFile, runTime: true, optional)
        let sysRunTime = sysAvailable || new.sysIntervalSeconds == 0
        compare("sys_interval", sysIntervalSeconds, new.sysIntervalSeconds, runTime: sysRunTime)
        compare("log_type", logLevel, new.logLevel, runTime: true) { $0.label }
        compare("log_dest", logDestination, new.logDestination, runTime: true)
        compare("connection_messages", connectionMessages, new.connectionMessages, runTime: true)

        let old = limits, read = new.limits
        compare("max_queued_messages", old.sessionQueuedMessagesMax, read.sessionQueuedMessagesMax, runTime: true)
        compare("queue_full_policy", old.sessionQueueFullPolicy, read.sessionQueueFullPolicy, runTime: true) {
            $0.rawValue
        }
        compare("queue_full_disconnect_seconds", old.queueFullDisconnectMillis, read.queueFullDisconnectMillis,
                runTime: true) { $0.map { "\($0 / 1000)" } ?? "0" }
        compare("max_inflight_messages", old.inflightMessagesMax, read.inflightMessagesMax, runTime: true)
        compare("receive_maximum", old.receiveMaximum, read.receiveMaximum, runTime: true)
        compare("max_packet_size", old.packetSizeBytesMax, read.packetSizeBytesMax, runTime: true)
        compare("max_keepalive", old.keepAliveSecondsMax, read.keepAliveSecondsMax, runTime: true)
        compare("persistent_client_expiration", old.sessionExpirySecondsMax, read.sessionExpirySecondsMax,
                runTime: true) { $0 == .max ? "never" : "\($0) s" }
        compare("topic_alias_maximum", old.topicAliasMaximum, read.topicAliasMaximum, runTime: true)
        compare("retain_available", old.retainAvailable, read.retainAvailable, runTime: true)
        compare("max_queued_bytes", old.outboundBytesMax, read.outboundBytesMax, runTime: false)
        compare("queued_bytes_budget", old.queuedBytesBudget, read.queuedBytesBudget, runTime: false)
        compare("mesh_ring_slots", old.meshRingSlots, read.meshRingSlots, runTime: false)
        compare("mesh_overflow_messages", old.meshOverflowMessagesMax, read.meshOverflowMessagesMax, runTime: false)
        compare("max_connections_per_shard", old.connectionsPerShardMax, read.connectionsPerShardMax, runTime: false)
        return changes
    }

    /// `self` with every setting that applies at run time taken from `new` (see ``changes(to:sysAvailable:)``);
    /// the others keep their values until a restart.
    public func applyingRunTimeSettings(of new: BrokerConfiguration, sysAvailable: Bool) -> BrokerConfiguration {
        var applied = self
        if listeners.map(\.shape) == new.listeners.map(\.shape) {
            for index in applied.listeners.indices {
                applied.listeners[index].allowAnonymous = new.listeners[index].allowAnonymous
            }
        }
        applied.allowAnonymous = new.allowAnonymous
        applied.passwordFile = new.passwordFile
        applied.aclFile = new.aclFile
        if sysAvailable || new.sysIntervalSeconds == 0 { applied.sysIntervalSeconds = new.sysIntervalSeconds }
        applied.logLevel = new.logLevel
        applied.logDestination = new.logDestination
        applied.connectionMessages = new.connectionMessages
        // The same split as Router.updateLimits: the runtime's bounds stay.
        var limits = new.limits
        limits.outboundBytesMax = self.limits.outboundBytesMax
        limits.queuedBytesBudget = self.limits.queuedBytesBudget
        limits.meshRingSlots = self.limits.meshRingSlots
        limits.meshOverflowMessagesMax = self.limits.meshOverflowMessagesMax
        limits.connectionsPerShardMax = self.limits.connectionsPerShardMax
        applied.limits = limits
        return applied
    }
}

extension BrokerListener {
    /// What a running broker cannot change about a listener: its address and TLS.
    fileprivate var shape: Shape { Shape(host: host, port: port, tls: tls) }

    fileprivate struct Shape: Equatable {
        var host: String
        var port: UInt16
        var tls: TLSConfiguration?
    }

    /// `host port` (with ` tls` for a TLS listener), for reload messages.
    fileprivate var summary: String { "\(host) \(port)" + (tls == nil ? "" : " tls") }
}

/// Reloads the configuration on SIGHUP (see the top of this file). Holds the configuration in force.
public final class ConfigurationReloader: Sendable {
    private let running: Mutex<BrokerConfiguration>
    private let exchange: SecurityExchange
    private let logger: Logger
    private let sysAvailable: Bool

    /// - Parameters:
    ///   - configuration: the configuration the broker started with.
    ///   - exchange: where the shards pick up new tables.
    ///   - logger: the broker's logger (its level and destination change here).
    ///   - sysAvailable: whether metrics snapshots are gathered
    ///     (see ``BrokerConfiguration/changes(to:sysAvailable:)``).
    public init(configuration: BrokerConfiguration, exchange: SecurityExchange, logger: Logger, sysAvailable: Bool) {
        self.running = Mutex(configuration)
        self.exchange = exchange
        self.logger = logger
        self.sysAvailable = sysAvailable
    }

    /// The configuration in force.
    public var configuration: BrokerConfiguration { running.withLock { $0 } }

    /// Reads the configuration again and applies it; logs every changed setting. A log file is reopened in any
    /// case (logrotate moves it away and sends SIGHUP).
    /// - Returns: whether new tables were handed to the shards (the caller then wakes them).
    @discardableResult
    public func reload() -> Bool {
        running.withLock { current in
            if case .file = current.logDestination, let destination = logger.control.destination {
                do throws(ConfigurationError) {
                    try logger.control.setDestination(destination)
                } catch {
                    logger.error("cannot reopen the log file, writing to the old one: \(error)")
                }
            }
            let read: BrokerConfiguration
            do throws(ConfigurationError) {
                guard case .run(let parsed) = try parseCommandLine(current.commandLineArguments) else { return false }
                read = parsed
            } catch {
                logger.error("configuration reload refused, the running configuration stays: \(error)")
                return false
            }
            let changes = current.changes(to: read, sysAvailable: sysAvailable)
            let applied = current.applyingRunTimeSettings(of: read, sysAvailable: sysAvailable)
            let tables: SecurityTables
            do throws(ConfigurationError) {
                tables = try SecurityTables.load(applied)
            } catch {
                logger.error("security reload refused, keeping the previous files: \(error)")
                logger.error("configuration reload refused, the running configuration stays")
                return false
            }
            if applied.logDestination != current.logDestination {
                do throws(ConfigurationError) {
                    try logger.control.setDestination(applied.logDestination)
                } catch {
                    logger.error("configuration reload refused, the running configuration stays: \(error)")
                    return false
                }
            }
            logger.control.setLevel(applied.logLevel)
            exchange.publish(tables)
            current = applied
            for change in changes {
                logger.log(change.appliesAtRunTime ? .info : .warning, "reload: \(change)")
            }
            let restarts = changes.filter { !$0.appliesAtRunTime }.count
            logger.info("security reloaded: "
                + (tables.passwordFile.map { "\($0.entries.count) user(s) in \(applied.passwordFile!)" }
                    ?? "no password file")
                + ", " + (applied.aclFile.map { "ACL \($0)" } ?? "no ACL"))
            logger.info("configuration reloaded" + (applied.configurationFile.map { " from \($0)" } ?? "") + ": "
                + (changes.isEmpty ? "no setting changed"
                    : "\(changes.count) setting(s) changed" + (restarts > 0 ? ", \(restarts) need(s) a restart" : "")))
            return true
        }
    }
}
