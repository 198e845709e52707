import MQTTCodec
import MQTTRouter
import ShardRuntime

// MARK: - BrokerShard: one shard's router on the io_uring runtime

/// The handler each shard runs: it feeds runtime events to the shard's sans-I/O ``Router`` and carries out the
/// router's actions through the shard's `ShardContext`. Everything here runs on the shard's own thread.
///
/// The glue is thin on purpose: decoding, sessions and routing live in the router, sockets and rings in the
/// runtime. Per event it costs one pointer wrap (``RuntimeEnvironment``) and no allocation.
public struct BrokerShard: ShardHandler {
    public typealias Message = ShardMessage
    public typealias ConnectionState = HandoffState

    /// The shard's MQTT state machine.
    public internal(set) var router: Router
    let logger: Logger
    /// Snapshots, `$SYS` and the metrics listener's connections (MetricsShardOperations.swift).
    var operations: ShardOperations
    /// Password file, ACL and `allow_anonymous` in force on this shard (see `Security.swift`).
    var security: ShardSecurity
    /// Rate-limited warnings for drops, pauses and slow-client disconnects, read from the router's counters.
    var overloadWarnings = OverloadWarnings()
    /// TLS listeners' contexts and this shard's TLS sessions (see `BrokerShard+TLS.swift`).
    var tls: ShardTLS

    /// Creates the handler for shard `shard` of `shardCount`. `metrics` is the board every shard publishes its
    /// snapshots on (needed for the metrics listener and `$SYS`; nil gathers nothing). `security` carries the
    /// password file and ACL (a default exchange allows everything); `tls` the TLS listeners' contexts (nil: no TLS).
    public init(shard: ShardRuntime.ShardID, shardCount: Int, configuration: BrokerConfiguration, logger: Logger,
                metrics: MetricsBoard? = nil, security: SecurityExchange = SecurityExchange(SecurityTables()),
                tls: TLSContextExchange? = nil) {
        let routerConfiguration = RouterConfiguration(
            shard: MQTTRouter.ShardID(shard.rawValue), shardCount: shardCount, limits: configuration.limits)
        self.router = Router(configuration: routerConfiguration)
        self.logger = logger
        precondition(metrics == nil || metrics!.shardCount == shardCount, "metrics board sized for another shard count")
        self.operations = ShardOperations(shard: shard.rawValue, configuration: configuration, board: metrics)
        self.security = ShardSecurity(exchange: security)
        self.tls = ShardTLS(configuration: configuration, exchange: tls)
        router.updateAccessControl(self.security.tables.accessControl)
    }

    public mutating func connectionAccepted(
        _ connection: ConnectionID, listener: Int, peer: SocketAddress, context: inout ShardContext<BrokerShard>
    ) {
        if listener == operations.metricsListenerIndex {
            logger.debug("metrics connection from \(peer) as \(connection) on shard \(context.shardID.rawValue)")
            metricsConnectionAccepted(connection, context: &context)
            return
        }
        logger.debug("accepted \(peer) as \(connection) on shard \(context.shardID.rawValue)")
        if tls.active && !tlsConnectionAccepted(connection, listener: listener, peer: peer, context: &context) {
            return
        }
        security.awaitingConnect[ConnectionKey(connection)] = (listener, peer)
        let now = context.nowMillis
        withEnvironment(&context) { router, env in
            router.connectionAccepted(ConnectionKey(connection), now: now, env: &env)
        }
    }

    public mutating func received(
        _ connection: ConnectionID, bytes: UnsafeRawBufferPointer, context: inout ShardContext<BrokerShard>
    ) -> Int {
        if !operations.http.isEmpty, operations.http[connection] != nil {
            return metricsReceived(connection, bytes: bytes, context: &context)
        }
        let now = context.nowMillis
        if tls.active, let index = tls.index(of: connection) {
            return withEnvironment(&context) { router, env in
                env.tlsReceived(connection, index: index, bytes: bytes, router: &router, now: now)
            }
        }
        return withEnvironment(&context) { router, env in
            router.received(ConnectionKey(connection), bytes: bytes, now: now, env: &env)
        }
    }

    public mutating func connectionClosed(
        _ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<BrokerShard>
    ) {
        if !operations.http.isEmpty, operations.http[connection] != nil {
            metricsConnectionClosed(connection)
            return
        }
        logger.debug("closed \(connection) on shard \(context.shardID.rawValue): \(reason)")
        security.awaitingConnect.removeValue(forKey: ConnectionKey(connection))
        let now = context.nowMillis
        security.closeReason = reason
        withEnvironment(&context) { router, env in
            router.connectionClosed(ConnectionKey(connection), now: now, env: &env)
        }
        security.closeReason = nil
        security.peers.removeValue(forKey: ConnectionKey(connection))
        if tls.active { tlsConnectionClosed(connection) }
    }

    public mutating func adopted(
        _ connection: ConnectionID, state: HandoffState, context: inout ShardContext<BrokerShard>
    ) {
        let now = context.nowMillis
        if security.tables.connectionMessages {
            // The accepting shard knew the peer; here the socket tells it again (once per hand-off).
            security.peers[ConnectionKey(connection)] = context.peerAddress(of: connection)?.description
        }
        let handoff = tls.active ? tlsAdopting(connection, state: state) : nil
        withEnvironment(&context) { router, env in
            router.adopted(ConnectionKey(connection), state: state, now: now, env: &env)
            if let handoff { env.tlsAdopted(connection, handoff: handoff, router: &router, now: now) }
        }
    }

    public mutating func message(
        _ message: ShardMessage, from: ShardRuntime.ShardID, context: inout ShardContext<BrokerShard>
    ) {
        let now = context.nowMillis
        withEnvironment(&context) { router, env in
            router.message(message, from: MQTTRouter.ShardID(from.rawValue), now: now, env: &env)
        }
    }

    public mutating func timerFired(_ token: UInt64, context: inout ShardContext<BrokerShard>) {
        if token & ShardOperations.timerFlag != 0 {
            operationsTimerFired(token, context: &context)
            return
        }
        let now = context.nowMillis
        withEnvironment(&context) { router, env in
            router.timerFired(token, now: now, env: &env)
        }
    }

    public mutating func writable(_ connection: ConnectionID, context: inout ShardContext<BrokerShard>) {
        let now = context.nowMillis
        withEnvironment(&context) { router, env in
            router.writable(ConnectionKey(connection), now: now, env: &env)
        }
    }

    /// Once per loop turn: metrics snapshots and `$SYS`, then new tables from a reload (one atomic load when there
    /// are none): password file, ACL, `allow_anonymous`, the limits a running router can change, `sys_interval`
    /// and `connection_messages`.
    public mutating func turnEnded(context: inout ShardContext<BrokerShard>) {
        if tls.active { tlsTurnEnded(&context) }
        operationsTurnEnded(&context)
        overloadWarnings.check(router.counters, shard: context.shardID.rawValue, now: context.nowMillis,
                               logger: logger)
        guard security.exchange.generation != security.generation else { return }
        (security.tables, security.generation) = security.exchange.current()
        router.updateAccessControl(security.tables.accessControl)
        router.updateLimits(security.tables.limits)
        updateSysInterval(seconds: security.tables.sysIntervalSeconds, context: &context)
        if !security.tables.connectionMessages { security.peers.removeAll() }
        logger.debug("shard \(context.shardID.rawValue) applied reload generation \(security.generation)")
    }

    /// Runs `body` with the router and an environment over `context`; then encrypts what the router wrote to TLS
    /// connections meanwhile (one check when it wrote to none).
    @inline(__always)
    mutating func withEnvironment<R>(
        _ context: inout ShardContext<BrokerShard>, _ body: (inout Router, inout RuntimeEnvironment) -> R
    ) -> R {
        withUnsafeMutablePointer(to: &context) { pointer in
            withUnsafeMutablePointer(to: &security) { security in
                withUnsafeMutablePointer(to: &tls) { tls in
                    var env = RuntimeEnvironment(context: pointer, security: security, tls: tls, logger: logger)
                    let result = body(&router, &env)
                    if !tls.pointee.dirty.isEmpty { env.tlsFlush() }
                    return result
                }
            }
        }
    }
}

// MARK: - RuntimeEnvironment: the router's actions on the runtime

/// Carries out the router's actions on the shard's `ShardContext`. It lives only for the duration of one
/// callback, so the pointer never outlives the `inout` access it was made from.
struct RuntimeEnvironment: RouterEnvironment {
    let context: UnsafeMutablePointer<ShardContext<BrokerShard>>
    let security: UnsafeMutablePointer<ShardSecurity>
    let tls: UnsafeMutablePointer<ShardTLS>
    let logger: Logger

    /// Checks the CONNECT against the shard's tables; a refusal is logged at info with client ID and peer.
    func authenticate(_ connection: ConnectionKey, connect: ConnectPacket) -> AuthenticationResult {
        if tls.pointee.active, let result = tlsAuthenticate(connection, connect: connect) { return result }
        let accepted = security.pointee.awaitingConnect.removeValue(forKey: connection)
        let result = security.pointee.tables.authenticate(connect, listener: accepted?.listener)
        if result == .accepted, security.pointee.tables.connectionMessages, let accepted {
            security.pointee.peers[connection] = accepted.peer.description
        }
        if result != .accepted {
            let peer = accepted.map { "\($0.peer)" } ?? "unknown peer"
            let user = connect.userName.map { "user '\($0)'" } ?? "no user name"
            let why = result == .badCredentials ? "bad user name or password" : "anonymous clients not allowed"
            logger.info("refused client '\(loggable(connect.clientIdentifier))' from \(peer) (\(user)): \(why)")
        }
        return result
    }

    /// The certificate CN of a TLS connection on a `use_identity_as_username` listener.
    func transportUserName(_ connection: ConnectionKey) -> String? {
        guard tls.pointee.active, let index = tls.pointee.index(of: ConnectionID(connection)) else { return nil }
        let entry = tls.pointee.connections[index]!
        return tls.pointee.useIdentity[entry.listener] ? entry.identity : nil
    }

    func write(_ connection: ConnectionKey, byteCount: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Void)
        -> Bool {
        let id = ConnectionID(connection)
        if tls.pointee.active, let index = tls.pointee.index(of: id) {
            return tlsWrite(id, index: index, byteCount: byteCount, encode)
        }
        return context.pointee.enqueue(id, byteCount: byteCount, write: encode)
    }

    func outboundBytesQueued(_ connection: ConnectionKey) -> Int {
        let id = ConnectionID(connection)
        let queued = context.pointee.outboundBytesQueued(id)
        guard tls.pointee.active, let index = tls.pointee.index(of: id) else { return queued }
        return queued + tls.pointee.connections[index]!.outboundPlaintext.count
    }

    func close(_ connection: ConnectionKey, afterFlush: Bool) {
        let id = ConnectionID(connection)
        if tls.pointee.active, let index = tls.pointee.index(of: id) {
            tlsClosing(id, index: index, afterFlush: afterFlush)
        }
        context.pointee.close(id, afterFlush: afterFlush)
    }

    func pauseReading(_ connection: ConnectionKey) {
        context.pointee.pauseReading(ConnectionID(connection))
    }

    func resumeReading(_ connection: ConnectionKey) {
        context.pointee.resumeReading(ConnectionID(connection))
    }

    func send(_ message: ShardMessage, to shard: MQTTRouter.ShardID) -> MeshSendResult {
        switch context.pointee.send(message, to: ShardRuntime.ShardID(shard.index)) {
        case .ok: .accepted
        case .queuedInOverflow: .overflowed
        case .refused: .refused
        }
    }

    func handOff(_ connection: ConnectionKey, to shard: MQTTRouter.ShardID, state: HandoffState) {
        // The home shard logs the connection; it reads the peer from the socket.
        security.pointee.peers.removeValue(forKey: connection)
        let id = ConnectionID(connection)
        var state = state
        if tls.pointee.active, let index = tls.pointee.index(of: id) {
            tlsHandingOff(id, index: index, state: &state)
        }
        context.pointee.handOff(id, to: ShardRuntime.ShardID(shard.index), state: state)
    }

    /// `client ID connected from ADDRESS:PORT as MQTT 5.0 (shard N, clean=true, keepalive=60)` at info.
    func clientConnected(_ connection: ConnectionKey, event: ClientConnectedEvent) {
        guard security.pointee.tables.connectionMessages, logger.isEnabled(.info) else { return }
        let peer = security.pointee.peers[connection] ?? "unknown address"
        let shard = context.pointee.shardID.rawValue
        logger.info("client \(loggable(event.clientIdentifier)) connected from \(peer) as MQTT \(event.protocolVersion)"
            + " (shard \(shard), clean=\(event.cleanStart), keepalive=\(event.keepAliveSeconds)"
            + (event.sessionPresent ? ", session resumed" : "")
            + (event.userName.map { ", user \(loggable($0))" } ?? "") + ")")
    }

    /// `client ID disconnected from ADDRESS:PORT: REASON (shard N)` at info.
    func clientDisconnected(_ connection: ConnectionKey, clientIdentifier: String, cause: DisconnectCause) {
        let peer = security.pointee.peers.removeValue(forKey: connection) ?? "unknown address"
        guard security.pointee.tables.connectionMessages, logger.isEnabled(.info) else { return }
        var reason = cause.description
        if cause == .connectionLost, let closed = security.pointee.closeReason {
            switch closed {
            case .endOfFile: reason = "connection closed by the client without DISCONNECT"
            case .reset: reason = "connection reset by the client"
            case .error(let error): reason = "socket error \(error)"
            case .closedLocally: reason = "closed by the broker"
            case .shutdown: reason = "broker shutting down"
            }
        }
        logger.info("client \(loggable(clientIdentifier)) disconnected from \(peer): \(reason) "
            + "(shard \(context.pointee.shardID.rawValue))")
    }

    func armTimer(deadlineMillis: UInt64, token: UInt64) -> UInt64 {
        let id = context.pointee.armTimer(deadlineMillis: deadlineMillis, token: token)
        return UInt64(id.index) << 32 | UInt64(id.generation)
    }

    func cancelTimer(_ id: UInt64) {
        _ = context.pointee.cancelTimer(
            TimerID(index: UInt32(truncatingIfNeeded: id >> 32), generation: UInt32(truncatingIfNeeded: id)))
    }
}

// MARK: - Key packing

extension ConnectionKey {
    /// Packs the runtime's (slab index, generation) so a stale key never matches a reused slot.
    @inline(__always)
    init(_ connection: ConnectionID) {
        self.init(rawValue: UInt64(connection.index) << 32 | UInt64(connection.generation))
    }
}

extension ConnectionID {
    /// Unpacks a ``ConnectionKey`` made by `ConnectionKey.init(_:)`.
    @inline(__always)
    init(_ key: ConnectionKey) {
        self.init(index: UInt32(truncatingIfNeeded: key.rawValue >> 32),
                  generation: UInt32(truncatingIfNeeded: key.rawValue))
    }
}

// MARK: - Log text

/// A client-supplied string made safe for one log line: control characters (a newline could forge a line) become
/// `?`. Client IDs, user names and topics are UTF-8 and may hold anything else.
func loggable(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
    return String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
}
