import MQTTRouter
import ShardRuntime

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Running the broker

extension BrokerConfiguration {
    /// The runtime's share of the configuration: listeners, shard count and the bounds the runtime enforces
    /// (outbound bytes per connection, ring slots, overflow cap, connections per shard).
    public var runtimeConfiguration: RuntimeConfiguration {
        var runtime = RuntimeConfiguration()
        runtime.shardCount = shardCount ?? cpus?.count
        runtime.cpus = cpus
        // MQTT listeners first, in configuration order, then the metrics listener: the index a connection was
        // accepted on tells BrokerShard which protocol it speaks.
        runtime.listeners = listeners.map(\.address) + (metricsListener.map { [$0] } ?? [])
        runtime.outboundBytesMax = limits.outboundBytesMax
        runtime.outboundLowWaterBytes = max(1, limits.outboundBytesMax / 4)
        runtime.meshRingCapacity = limits.meshRingSlots
        runtime.meshOverflowCountMax = limits.meshOverflowMessagesMax
        runtime.connectionCountMax = limits.connectionsPerShardMax
        // A packet larger than one provided buffer is assembled from several receives; 16 KiB buffers keep an
        // idle connection free of receive memory and a busy one at one buffer per receive.
        return runtime
    }
}

/// Starts the broker's shards with `configuration`, logs where it listens, and blocks until SIGINT or SIGTERM;
/// then stops the shards (flushing what is queued) and returns the process exit status: 0 after a clean stop,
/// 1 when startup failed (the reason is logged, naming the cause).
public func runBroker(_ configuration: BrokerConfiguration) -> Int32 {
    let logger: Logger
    do throws(ConfigurationError) {
        logger = try Logger.open(level: configuration.logLevel, destination: configuration.logDestination)
    } catch {
        Logger(level: .error).error("shoal: \(error)")
        return 1
    }
    // Block SIGINT/SIGTERM before any shard thread exists, so only the signal thread receives them.
    TerminationSignals.block()
    // A peer that resets while we write must not kill the process.
    signal(SIGPIPE, SIG_IGN)

    if let cpus = configuration.cpus {
        let allowed = Set(allowedCPUs())
        if let missing = cpus.first(where: { !allowed.contains($0) }) {
            logger.error("shoal: cpus: CPU \(missing) is not in this process's affinity mask "
                + "(\(allowed.sorted().map(String.init).joined(separator: ",")))")
            return 1
        }
    }

    let security: SecurityExchange
    let tls: TLSContextExchange
    do throws(ConfigurationError) {
        security = SecurityExchange(try SecurityTables.load(configuration))
        // Certificates, keys and CA files are read and checked now: a bad one stops startup, naming the setting.
        tls = TLSContextExchange(try loadTLSContexts(configuration))
    } catch {
        logger.error("shoal: \(error)")
        return 1
    }

    var runtime = configuration.runtimeConfiguration
    // The shard count is fixed here, so the metrics board and the group agree on it.
    runtime.shardCount = runtime.shardCount ?? allowedCPUs().count
    if let connectionsMax = configuration.connectionsMax {
        // max_connections is broker-wide; the kernel spreads new connections evenly over the shards' sockets.
        let perShard = (connectionsMax + runtime.shardCount! - 1) / runtime.shardCount!
        runtime.connectionCountMax = max(1, min(runtime.connectionCountMax, perShard))
    }
    // Snapshots are gathered only when someone reads them: the metrics listener or $SYS.
    let metrics = configuration.metricsListener != nil || configuration.sysIntervalSeconds > 0
        ? MetricsBoard(shardCount: runtime.shardCount!) : nil
    let group: ShardGroup<BrokerShard>
    do {
        group = try ShardGroup<BrokerShard>.start(configuration: runtime) { shard, shardCount in
            BrokerShard(shard: shard, shardCount: shardCount, configuration: configuration, logger: logger,
                        metrics: metrics, security: security, tls: tls)
        }
    } catch {
        logger.error("shoal: cannot start: \(error)")
        return 1
    }
    let addresses = zip(configuration.listeners, group.boundPorts).map { listener, port in
        (listener.host.contains(":") ? "[\(listener.host)]:\(port)" : "\(listener.host):\(port)")
            + (listener.tls != nil ? " (TLS)" : "")
    }
    logger.info(
        "shoal \(shoalVersion) listening on \(addresses.joined(separator: ", ")) with \(group.shardCount) shard"
            + (group.shardCount == 1 ? "" : "s")
            + (configuration.allowAnonymous && configuration.passwordFile == nil
                ? "; anonymous clients allowed (no authentication configured)" : ""))
    if let metricsListener = configuration.metricsListener, group.boundPorts.count > configuration.listeners.count {
        let host = metricsListener.host.contains(":") ? "[\(metricsListener.host)]" : metricsListener.host
        logger.info("metrics on http://\(host):\(group.boundPorts[configuration.listeners.count])/metrics")
    }
    if let file = configuration.configurationFile {
        logger.info("configuration read from \(file); SIGHUP reads it again")
    }
    if configuration.sysIntervalSeconds > 0 {
        logger.info("$SYS topics every \(configuration.sysIntervalSeconds) s")
    }
    // SIGHUP: the configuration file, the command line, the password file and the ACL are read again, and the
    // TLS certificate files of the listeners (new certificates serve new connections); the shards apply what can
    // change at run time on their next loop turn (ConfigurationReload.swift).
    let reloader = ConfigurationReloader(configuration: configuration, exchange: security, logger: logger,
                                         sysAvailable: metrics != nil)
    group.onReloadSignal {
        let configurationReloaded = reloader.reload()
        let tlsReloaded = reloadTLS(configuration: configuration, exchange: tls, logger: logger)
        if configurationReloaded || tlsReloaded { group.wakeAll() }
    }
    group.stopOnTerminationSignal()
    group.wait()
    logger.info("shoal stopped")
    return 0
}
