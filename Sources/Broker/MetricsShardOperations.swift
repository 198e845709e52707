import MQTTCodec
import MQTTRouter
import ShardRuntime

// MARK: - Per-shard state for metrics, $SYS and the metrics listener

/// One HTTP connection on the metrics listener.
struct HTTPConnectionState {
    /// When it last sent bytes (the idle timeout counts from here).
    var lastActivityMillis: UInt64
    /// A `Connection: close` answer or an error answer is queued: further bytes are ignored.
    var closing = false
}

/// What a ``BrokerShard`` keeps for operations: its snapshot cadence, its metrics connections and its `$SYS`
/// publishers. Touched once per loop turn (one comparison), at snapshot time, and by metrics connections; never
/// by the MQTT data path.
struct ShardOperations {
    /// Runtime timer tokens with this bit belong to operations, not to the router (whose tokens count up from 1).
    static let timerFlag: UInt64 = 1 << 63
    /// With ``timerFlag``: an HTTP connection's idle timer; the low 56 bits are its ``ConnectionKey``.
    static let httpIdleFlag: UInt64 = 1 << 62
    static let snapshotToken: UInt64 = timerFlag | 1
    static let sysToken: UInt64 = timerFlag | 2
    /// An HTTP connection with no bytes for this long is closed (Prometheus scrapes every 15–60 s and reconnects
    /// when needed; an idle socket must not hold a slot forever).
    static let httpIdleMillis: UInt64 = 65_000

    /// Where snapshots go; nil when neither metrics nor `$SYS` are on (then nothing is gathered).
    let board: MetricsBoard?
    /// The index of the metrics listener in the runtime's listeners, if there is one.
    let metricsListenerIndex: Int?
    /// `sys_interval` in milliseconds; 0 = no `$SYS`. A reload may change it (``BrokerShard/updateSysInterval``).
    var sysIntervalMillis: UInt64
    /// Whether a `$SYS` timer is pending (so a reload from 0 to N arms one, and never a second).
    var sysTimerArmed = false

    var startedAtMillis: UInt64? = nil
    var lastSnapshotMillis: UInt64 = 0
    var hasPublishedSnapshot = false
    var snapshotTimerArmed = false
    var connectionsMax = 0
    var brokerConnectionsMax = 0
    var requests = MetricsRequestCounters()
    var http: [ConnectionID: HTTPConnectionState] = [:]
    var shardSys: SysTopicPublisher
    var brokerSys: SysTopicPublisher?

    init(shard: Int, configuration: BrokerConfiguration, board: MetricsBoard?) {
        self.board = board
        metricsListenerIndex = configuration.metricsListener == nil ? nil : configuration.listeners.count
        sysIntervalMillis = UInt64(max(0, configuration.sysIntervalSeconds)) * 1000
        shardSys = SysTopicPublisher(prefix: "$SYS/broker/shards/\(shard)/")
        brokerSys = shard == 0 ? SysTopicPublisher(prefix: "$SYS/broker/") : nil
    }
}

// MARK: - Hooks called by BrokerShard

extension BrokerShard {
    /// Once per loop turn: the first turn starts the `$SYS` timer; later turns publish a snapshot when the last is
    /// older than the board's interval, or else make sure a timer brings one (so an idle shard's final state is
    /// published too, and then it sleeps).
    mutating func operationsTurnEnded(_ context: inout ShardContext<BrokerShard>) {
        guard let board = operations.board else { return }
        let now = context.nowMillis
        if operations.startedAtMillis == nil {
            operations.startedAtMillis = now
            if operations.sysIntervalMillis > 0 {
                publishSys(&context)
                _ = context.armTimer(deadlineMillis: now &+ operations.sysIntervalMillis, token: ShardOperations.sysToken)
                operations.sysTimerArmed = true
            }
        }
        if !operations.hasPublishedSnapshot || now &- operations.lastSnapshotMillis >= board.snapshotIntervalMillis {
            _ = publishSnapshot(&context)
        } else if !operations.snapshotTimerArmed {
            operations.snapshotTimerArmed = true
            _ = context.armTimer(deadlineMillis: operations.lastSnapshotMillis &+ board.snapshotIntervalMillis,
                                 token: ShardOperations.snapshotToken)
        }
    }

    /// Takes this shard's snapshot now and publishes it on the board.
    @discardableResult
    mutating func publishSnapshot(_ context: inout ShardContext<BrokerShard>) -> ShardSnapshot {
        var snapshot = ShardSnapshot()
        snapshot.takenAtMillis = context.nowMillis
        snapshot.runtime = context.counters
        snapshot.runtimeGauges = context.runtimeGauges()
        snapshot.router = router.counters
        snapshot.routerGauges = router.gauges()
        operations.connectionsMax = max(operations.connectionsMax, snapshot.routerGauges.connections)
        snapshot.connectionsMax = operations.connectionsMax
        snapshot.requests = operations.requests
        snapshot.tlsHandshakes = tls.handshakesCompleted
        snapshot.tlsHandshakeFailures = tls.handshakesFailed
        snapshot.tlsHandshakesDeferred = tls.handshakesDeferred
        operations.board?.publish(snapshot, shard: context.shardID.rawValue)
        operations.lastSnapshotMillis = context.nowMillis
        operations.hasPublishedSnapshot = true
        return snapshot
    }

    /// An operations timer fired (``ShardOperations/timerFlag`` set).
    mutating func operationsTimerFired(_ token: UInt64, context: inout ShardContext<BrokerShard>) {
        if token & ShardOperations.httpIdleFlag != 0 {
            let key = ConnectionKey(rawValue: token & ~(ShardOperations.timerFlag | ShardOperations.httpIdleFlag))
            let connection = ConnectionID(key)
            guard let state = operations.http[connection] else { return }
            let deadline = state.lastActivityMillis &+ ShardOperations.httpIdleMillis
            if context.nowMillis >= deadline {
                logger.debug("metrics connection \(connection) idle for \(ShardOperations.httpIdleMillis / 1000) s: closed")
                context.close(connection, afterFlush: false)
            } else {
                _ = context.armTimer(deadlineMillis: deadline, token: token)
            }
            return
        }
        switch token {
        case ShardOperations.snapshotToken:
            // The turn's turnEnded publishes the snapshot.
            operations.snapshotTimerArmed = false
        case ShardOperations.sysToken:
            operations.sysTimerArmed = false
            // A reload may have turned $SYS off since the timer was armed.
            guard operations.sysIntervalMillis > 0 else { break }
            publishSys(&context)
            _ = context.armTimer(deadlineMillis: context.nowMillis &+ operations.sysIntervalMillis,
                                 token: ShardOperations.sysToken)
            operations.sysTimerArmed = true
        default:
            break
        }
    }

    /// A reload changed `sys_interval`: the next update comes after the new interval (at once when `$SYS` was
    /// off). Without a metrics board (`$SYS` and metrics both off at startup) nothing is gathered: the reload
    /// reports that this change needs a restart, and it is ignored here.
    mutating func updateSysInterval(seconds: Int, context: inout ShardContext<BrokerShard>) {
        let millis = UInt64(max(0, seconds)) * 1000
        guard millis != operations.sysIntervalMillis, operations.board != nil else { return }
        operations.sysIntervalMillis = millis
        guard millis > 0, !operations.sysTimerArmed, operations.startedAtMillis != nil else { return }
        publishSys(&context)
        _ = context.armTimer(deadlineMillis: context.nowMillis &+ millis, token: ShardOperations.sysToken)
        operations.sysTimerArmed = true
    }

    // MARK: - $SYS

    /// Publishes this shard's `$SYS/broker/shards/N/...` topics and, on shard 0, the broker-wide ones gathered from
    /// every shard's latest snapshot, as retained QoS 0 messages through the router's ordinary publish path.
    mutating func publishSys(_ context: inout ShardContext<BrokerShard>) {
        let own = publishSnapshot(&context)
        let now = context.nowMillis
        var messages = operations.shardSys.messages(SysFigures(own), nowMillis: now)
        if operations.brokerSys != nil, let board = operations.board {
            var total = SysFigures()
            var shardMaximum = 0
            for (shard, snapshot) in board.snapshots().enumerated() {
                guard let snapshot = shard == context.shardID.rawValue ? own : snapshot else { continue }
                let figures = SysFigures(snapshot)
                total = total + figures
                shardMaximum = max(shardMaximum, figures.clientsMaximum)
            }
            // The broker-wide peak is sampled: the largest total seen at an update, and at least any shard's peak.
            operations.brokerConnectionsMax = max(operations.brokerConnectionsMax, total.clientsConnected, shardMaximum)
            total.clientsMaximum = operations.brokerConnectionsMax
            let uptime = (now &- (operations.startedAtMillis ?? now)) / 1000
            messages += operations.brokerSys!.messages(
                total, nowMillis: now,
                extra: [("version", "shoal version \(shoalVersion)"), ("uptime", "\(uptime) seconds")])
        }
        for (topic, payload) in messages {
            let name = TopicName(uncheckedBytes: Array(topic.utf8))
            withEnvironment(&context) { router, env in
                router.publishSystemMessage(topic: name, payload: Array(payload.utf8), retain: true, now: now, env: &env)
            }
        }
    }

    // MARK: - Metrics listener

    /// A connection on the metrics listener: it is served here and never reaches the router.
    mutating func metricsConnectionAccepted(_ connection: ConnectionID, context: inout ShardContext<BrokerShard>) {
        operations.http[connection] = HTTPConnectionState(lastActivityMillis: context.nowMillis)
        let token = ShardOperations.timerFlag | ShardOperations.httpIdleFlag | ConnectionKey(connection).rawValue
        _ = context.armTimer(afterMillis: ShardOperations.httpIdleMillis, token: token)
    }

    /// Bytes on a metrics connection: answers every whole request head in them (pipelining included).
    /// - Returns: the bytes consumed; a partial head stays with the runtime until more arrives.
    mutating func metricsReceived(
        _ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<BrokerShard>
    ) -> Int {
        guard var state = operations.http[connection], !state.closing else { return bytes.count }
        state.lastActivityMillis = context.nowMillis
        defer { operations.http[connection] = state }
        var consumed = 0
        while consumed < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
            let request: HTTPRequest
            do throws(HTTPRequestError) {
                switch try HTTPRequestParser.parse(rest) {
                case .needMoreBytes:
                    return consumed
                case .request(let parsed, let byteCount):
                    request = parsed
                    consumed += byteCount
                }
            } catch {
                logger.debug("metrics connection \(connection): bad request (\(error)), answered \(error.statusCode)")
                countResponse(error.statusCode)
                _ = writeResponse(.error(error.statusCode), to: connection, keepAlive: false, includeBody: true,
                                  context: &context)
                state.closing = true
                context.close(connection, afterFlush: true)
                return bytes.count
            }
            var response = HTTPResponse.answer(request) { renderExposition(&context) }
            if !writeResponse(response, to: connection, keepAlive: request.keepAlive,
                              includeBody: request.method != "HEAD", context: &context) {
                // Larger than the connection's outbound bound (a very large shard count): say so and close.
                logger.warning("metrics exposition of \(response.body.count) bytes exceeds the outbound bound; answered 503")
                response = .error(503)
                _ = writeResponse(response, to: connection, keepAlive: false, includeBody: true, context: &context)
                state.closing = true
                context.close(connection, afterFlush: true)
                countResponse(503)
                return bytes.count
            }
            countResponse(response.statusCode)
            if !request.keepAlive {
                state.closing = true
                context.close(connection, afterFlush: true)
                return bytes.count
            }
        }
        return consumed
    }

    /// A metrics connection closed.
    mutating func metricsConnectionClosed(_ connection: ConnectionID) {
        operations.http.removeValue(forKey: connection)
    }

    /// The exposition from every shard's latest snapshot, this shard's taken fresh.
    mutating func renderExposition(_ context: inout ShardContext<BrokerShard>) -> String {
        let own = publishSnapshot(&context)
        guard let board = operations.board else { return "" }
        var snapshots = board.snapshots()
        snapshots[context.shardID.rawValue] = own
        let uptime = (context.nowMillis &- (operations.startedAtMillis ?? context.nowMillis)) / 1000
        return MetricsExposition.render(snapshots: snapshots, uptimeSeconds: uptime)
    }

    private mutating func writeResponse(
        _ response: HTTPResponse, to connection: ConnectionID, keepAlive: Bool, includeBody: Bool,
        context: inout ShardContext<BrokerShard>
    ) -> Bool {
        let bytes = response.encoded(keepAlive: keepAlive, includeBody: includeBody)
        return bytes.withUnsafeBytes { context.enqueue(connection, bytes: $0) }
    }

    private mutating func countResponse(_ statusCode: Int) {
        switch statusCode {
        case 200: operations.requests.ok += 1
        case 400: operations.requests.badRequest += 1
        case 404: operations.requests.notFound += 1
        case 405: operations.requests.methodNotAllowed += 1
        case 431: operations.requests.headerTooLarge += 1
        case 503: operations.requests.unavailable += 1
        case 505: operations.requests.versionNotSupported += 1
        default: break
        }
    }
}
