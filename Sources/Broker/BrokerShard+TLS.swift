import BrokerTLS
import MQTTCodec
import MQTTRouter
import ShardRuntime
import Synchronization

// MARK: - Loading contexts

extension TLSConfiguration {
    /// The engine's view of these settings.
    var serverSettings: TLSServerSettings {
        var settings = TLSServerSettings(certificateChainFile: certificateFile, privateKeyFile: keyFile)
        settings.caFile = caFile
        settings.caPath = caPath
        settings.requireClientCertificate = requireCertificate
        settings.ciphers = ciphers
        settings.cipherSuitesTLS13 = cipherSuitesTLS13
        settings.groups = groups
        settings.minimumVersion = minimumVersion == .tls13 ? .tls13 : .tls12
        return settings
    }
}

/// Builds one TLS context per listener (nil for plain listeners), reading the certificate, key and CA files.
/// - Throws: ``ConfigurationError`` naming the setting (configuration-file key and command-line flag) at fault.
public func loadTLSContexts(_ configuration: BrokerConfiguration) throws(ConfigurationError) -> [TLSContext?] {
    var contexts: [TLSContext?] = []
    for listener in configuration.listeners {
        guard let tls = listener.tls else {
            contexts.append(nil)
            continue
        }
        do throws(TLSError) {
            contexts.append(try TLSContext(server: tls.serverSettings))
        } catch {
            let setting: String
            switch error {
            case .certificateFile: setting = "certfile (--certfile)"
            case .keyFile, .keyMismatch: setting = "keyfile (--keyfile)"
            case .caFile(let path, _): setting = path == tls.caPath ? "capath (--capath)" : "cafile (--cafile)"
            case .noTrustedCA: setting = "require_certificate (--require-certificate)"
            case .ciphers: setting = "ciphers (--ciphers)"
            case .cipherSuites: setting = "ciphers_tls1.3 (--ciphers-tls1.3)"
            case .groups: setting = "groups (--tls-groups)"
            default: setting = "listener \(listener.port)"
            }
            throw ConfigurationError(setting: setting, reason: error.description)
        }
    }
    return contexts
}

// MARK: - Handing new contexts to the shards

/// Where a SIGHUP reload leaves new TLS contexts (certificate files read again) for the shards, as
/// ``SecurityExchange`` does for the password file and ACL: shards compare ``generation`` once per loop turn and
/// use the new contexts for connections accepted from then on; established sessions keep theirs.
public final class TLSContextExchange: Sendable {
    private let contexts: Mutex<[TLSContext?]>
    private let generationCounter = Atomic<UInt64>(1)

    /// Starts with `contexts` (one per listener, nil for plain ones).
    public init(_ contexts: [TLSContext?]) { self.contexts = Mutex(contexts) }

    /// Increases with each ``publish(_:)``.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// The contexts in force, with their generation.
    public func current() -> (contexts: [TLSContext?], generation: UInt64) {
        contexts.withLock { ($0, generationCounter.load(ordering: .relaxed)) }
    }

    /// Replaces the contexts; shards pick them up on their next loop turn.
    public func publish(_ new: [TLSContext?]) {
        contexts.withLock {
            $0 = new
            generationCounter.add(1, ordering: .releasing)
        }
    }
}

/// Reads the TLS listeners' certificate, key and CA files again (SIGHUP). A file that fails to load is refused with
/// a logged error and the contexts in force stay.
/// - Returns: whether new contexts were installed (false also when there is no TLS listener).
@discardableResult
public func reloadTLS(configuration: BrokerConfiguration, exchange: TLSContextExchange, logger: Logger) -> Bool {
    guard configuration.listeners.contains(where: { $0.tls != nil }) else { return false }
    do throws(ConfigurationError) {
        exchange.publish(try loadTLSContexts(configuration))
        logger.info("TLS certificates reloaded for new connections")
        return true
    } catch {
        logger.error("TLS reload refused, keeping the previous certificates: \(error)")
        return false
    }
}

// MARK: - One shard's TLS state

/// A TLS connection on its way to its home shard: the session (handshake done), what it established, and the
/// plaintext already decrypted but not yet consumed by the router. Travels in ``HandoffState/transport``.
final class TLSHandoff: @unchecked Sendable {
    let session: TLSSession
    let listener: Int
    let peer: SocketAddress
    let identity: String?
    /// Filled by the accepting shard right after the router hands the connection off, before the runtime ships it.
    var plaintext: [UInt8] = []

    init(session: TLSSession, listener: Int, peer: SocketAddress, identity: String?) {
        self.session = session
        self.listener = listener
        self.peer = peer
        self.identity = identity
    }
}

/// One TLS connection on this shard.
struct TLSConnection {
    let generation: UInt32
    let session: TLSSession
    let listener: Int
    let peer: SocketAddress
    /// The client certificate's CN, read once the handshake completes (listeners with `use_identity_as_username`).
    var identity: String?
    /// Decrypted bytes of an incomplete MQTT packet (the router's unconsumed tail).
    var inboundPlaintext: [UInt8] = []
    /// What the router wrote during the current callback; encrypted into one run of records when it ends.
    var outboundPlaintext: [UInt8] = []
}

/// A shard's TLS side: the contexts of its listeners and its TLS connections, indexed by the runtime's slot index
/// (plain connections leave their slot nil; a shard without TLS listeners only ever reads ``active``).
struct ShardTLS {
    /// Plaintext decrypted per `SSL_read`: one full record (16 KiB) and then some.
    static let scratchByteCount = 16_384 + 256

    /// Handshake steps (each a call into OpenSSL with new handshake bytes) per loop turn
    /// (``Limits/tlsHandshakeStepsPerTurnMax``); past it, handshakes wait for the next turn so established connections
    /// keep their latency during a reconnect storm. A full handshake costs the shard about 0.3 ms with a P-256
    /// certificate (README, TLS).
    let handshakeStepsPerTurnMax: Int
    /// Whether any listener is a TLS listener: the one check plain connections pay.
    let active: Bool
    let exchange: TLSContextExchange?
    var contexts: [TLSContext?]
    var generation: UInt64
    /// Per listener: whether the certificate CN becomes the user name.
    let useIdentity: [Bool]
    var connections: [TLSConnection?] = []
    /// Slots whose `outboundPlaintext` is not empty.
    var dirty: [UInt32] = []
    var handshakeBudget: Int
    var handshakesCompleted = 0
    var handshakesFailed = 0
    /// Handshake steps pushed to a later turn by the budget.
    var handshakesDeferred = 0
    /// Set by a hand-off during a `received` call, so the caller can attach the router's unconsumed plaintext.
    var handedOff: TLSHandoff?
    /// Where `SSL_read` decrypts to; owned by ``storage`` (freed with the shard's handler).
    let scratch: UnsafeMutableRawBufferPointer
    private let storage: ScratchStorage?

    /// Owns the scratch buffer, so a handler value (a struct) frees it when the shard stops.
    final class ScratchStorage {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ShardTLS.scratchByteCount, alignment: 16)
        deinit { buffer.deallocate() }
    }

    init(configuration: BrokerConfiguration, exchange: TLSContextExchange?) {
        self.exchange = exchange
        handshakeStepsPerTurnMax = max(1, configuration.limits.tlsHandshakeStepsPerTurnMax)
        handshakeBudget = handshakeStepsPerTurnMax
        self.useIdentity = configuration.listeners.map { $0.tls?.useIdentityAsUsername ?? false }
        if let exchange {
            (contexts, generation) = exchange.current()
        } else {
            (contexts, generation) = ([], 0)
        }
        active = contexts.contains { $0 != nil }
        storage = active ? ScratchStorage() : nil
        scratch = storage?.buffer ?? UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    /// The slot index of `connection` when it is a live TLS connection.
    @inline(__always)
    func index(of connection: ConnectionID) -> Int? {
        let index = Int(connection.index)
        guard index < connections.count, let entry = connections[index], entry.generation == connection.generation
        else { return nil }
        return index
    }

    mutating func install(_ connection: ConnectionID, _ entry: TLSConnection) {
        let index = Int(connection.index)
        if index >= connections.count {
            connections.append(contentsOf: repeatElement(nil, count: index + 1 - connections.count))
        }
        connections[index] = entry
    }
}

// MARK: - BrokerShard: TLS callbacks

extension BrokerShard {
    /// A connection accepted on a TLS listener gets a session (from the contexts in force now).
    mutating func tlsConnectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress,
                                        context: inout ShardContext<BrokerShard>) -> Bool {
        guard listener < tls.contexts.count, let tlsContext = tls.contexts[listener] else { return true }
        do throws(TLSError) {
            let session = try tlsContext.makeSession()
            tls.install(connection, TLSConnection(generation: connection.generation, session: session,
                                                  listener: listener, peer: peer))
            return true
        } catch {
            logger.warning("TLS connection from \(peer) refused: \(error)")
            context.close(connection, afterFlush: false)
            return false
        }
    }

    /// Forgets a closed connection's session.
    mutating func tlsConnectionClosed(_ connection: ConnectionID) {
        guard let index = tls.index(of: connection) else { return }
        tls.connections[index] = nil
    }

    /// Installs the session of a TLS connection handed over by another shard, before the router adopts it.
    mutating func tlsAdopting(_ connection: ConnectionID, state: HandoffState) -> TLSHandoff? {
        guard let handoff = state.transport as? TLSHandoff else { return nil }
        tls.install(connection, TLSConnection(generation: connection.generation, session: handoff.session,
                                              listener: handoff.listener, peer: handoff.peer,
                                              identity: handoff.identity))
        return handoff
    }

    /// Once per turn: a fresh handshake budget, and new contexts after a reload.
    mutating func tlsTurnEnded(_ context: inout ShardContext<BrokerShard>) {
        tls.handshakeBudget = tls.handshakeStepsPerTurnMax
        guard let exchange = tls.exchange, exchange.generation != tls.generation else { return }
        (tls.contexts, tls.generation) = exchange.current()
        logger.debug("shard \(context.shardID.rawValue) uses TLS contexts generation \(tls.generation)")
    }
}

// MARK: - RuntimeEnvironment: the TLS data path

extension RuntimeEnvironment {
    /// Ciphertext arrived on a TLS connection. During the handshake it advances the handshake (at most
    /// `Limits.tlsHandshakeStepsPerTurnMax` steps per turn on this shard; beyond that the bytes stay with the
    /// runtime and come back next turn). Afterwards it hands OpenSSL one whole record at a time and passes the
    /// plaintext to the router, stopping between records when the connection closed or moved: the unconsumed
    /// ciphertext then stays with the runtime (or travels with the hand-off). As for plain connections, a pause
    /// asked for during the call stops further receives, not the processing of bytes already received.
    /// - Returns: ciphertext bytes consumed.
    func tlsReceived(_ connection: ConnectionID, index: Int, bytes: UnsafeRawBufferPointer, router: inout Router,
                     now: UInt64) -> Int {
        let session = tls.pointee.connections[index]!.session
        if !session.isHandshakeComplete {
            guard tls.pointee.handshakeBudget > 0 else {
                tls.pointee.handshakesDeferred &+= 1
                context.pointee.redeliverNextTurn(connection)
                return 0
            }
            tls.pointee.handshakeBudget -= 1
            session.feed(bytes)
            let complete: Bool
            do throws(TLSError) {
                complete = try session.handshake()
            } catch {
                tls.pointee.handshakesFailed &+= 1
                logger.debug("TLS handshake with \(tls.pointee.connections[index]!.peer) failed: \(error)")
                drainCiphertext(connection, session: session)  // the alert
                context.pointee.close(connection, afterFlush: true)
                return bytes.count
            }
            drainCiphertext(connection, session: session)
            guard complete else { return bytes.count }
            tls.pointee.handshakesCompleted &+= 1
            let listener = tls.pointee.connections[index]!.listener
            if tls.pointee.useIdentity[listener] { tls.pointee.connections[index]!.identity = session.peerCommonName }
            logger.debug("TLS with \(tls.pointee.connections[index]!.peer): \(session.protocolVersion) "
                + "\(session.cipherName)\(session.isSessionReused ? " (resumed)" : "")")
            // Application data may have come with the client's last flight.
            _ = readPlaintext(connection, index: index, session: session, router: &router, now: now)
            return bytes.count
        }
        var consumed = 0
        while let length = TLSRecord.firstRecordByteCount(UnsafeRawBufferPointer(rebasing: bytes[consumed...])) {
            session.feed(UnsafeRawBufferPointer(rebasing: bytes[consumed..<consumed + length]))
            consumed += length
            guard readPlaintext(connection, index: index, session: session, router: &router, now: now) else { break }
        }
        return consumed
    }

    /// Decrypts everything the session holds and passes it to the router.
    /// - Returns: whether the caller may feed more records (the connection is still here and open).
    func readPlaintext(_ connection: ConnectionID, index: Int, session: TLSSession, router: inout Router,
                       now: UInt64) -> Bool {
        let key = ConnectionKey(connection)
        let scratch = tls.pointee.scratch
        while true {
            let count: Int
            do throws(TLSError) {
                count = try session.read(into: scratch)
            } catch {
                logger.debug("TLS connection \(tls.pointee.connections[index]!.peer) ended: \(error)")
                drainCiphertext(connection, session: session)
                context.pointee.close(connection, afterFlush: error == .closedByPeer)
                return false
            }
            if count == 0 { break }
            let fresh = UnsafeRawBufferPointer(rebasing: scratch[0..<count])
            var buffered = tls.pointee.connections[index]!.inboundPlaintext
            tls.pointee.connections[index]!.inboundPlaintext = []
            let consumed: Int
            // The environment holds only pointers: a copy acts on the same shard state.
            var env = self
            if buffered.isEmpty {
                consumed = router.received(key, bytes: fresh, now: now, env: &env)
                buffered = Array(UnsafeRawBufferPointer(rebasing: fresh[consumed...]))
            } else {
                buffered.append(contentsOf: fresh)
                consumed = buffered.withUnsafeBytes { router.received(key, bytes: $0, now: now, env: &env) }
                buffered.removeFirst(consumed)
            }
            if let handoff = tls.pointee.handedOff {
                // The router moved the connection: its unconsumed plaintext goes along (the session itself, with
                // any records it has not decrypted yet, already went into the hand-off state).
                handoff.plaintext = buffered
                tls.pointee.handedOff = nil
                return false
            }
            guard tls.pointee.index(of: connection) == index, context.pointee.isOpen(connection) else { return false }
            tls.pointee.connections[index]!.inboundPlaintext = buffered
        }
        drainCiphertext(connection, session: session)
        return context.pointee.isOpen(connection)
    }

    /// Moves what OpenSSL wants to send into the connection's outbound queue. Records already made are never
    /// dropped (their sequence numbers are spent), so this may pass the outbound bound by up to one callback's
    /// output; ``tlsWrite(_:index:byteCount:_:)`` keeps plaintext within it.
    func drainCiphertext(_ connection: ConnectionID, session: TLSSession) {
        let count = session.outboundByteCount
        guard count > 0 else { return }
        let queued = context.pointee.enqueueBeyondLimit(connection, byteCount: count) { buffer in
            let moved = session.readOutbound(into: buffer)
            precondition(moved == buffer.count, "memory BIO gave \(moved) of \(buffer.count) pending bytes")
        }
        if !queued {
            // The connection is gone: discard what OpenSSL produced.
            while session.readOutbound(into: tls.pointee.scratch) > 0 {}
        }
    }

    /// The router writes to a TLS connection: the plaintext is kept until the end of the callback, then encrypted
    /// in one run of records (``tlsFlush()``).
    func tlsWrite(_ connection: ConnectionID, index: Int, byteCount: Int,
                  _ encode: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        guard context.pointee.isOpen(connection) else { return false }
        let pending = tls.pointee.connections[index]!.outboundPlaintext.count
        if context.pointee.outboundBytesQueued(connection) + pending + byteCount
            > context.pointee.configuration.outboundBytesMax {
            context.pointee.requestWritable(connection)
            return false
        }
        if byteCount == 0 { return true }
        if pending == 0 { tls.pointee.dirty.append(UInt32(index)) }
        tls.pointee.connections[index]!.outboundPlaintext.append(contentsOf: repeatElement(0, count: byteCount))
        tls.pointee.connections[index]!.outboundPlaintext.withUnsafeMutableBytes { buffer in
            encode(UnsafeMutableRawBufferPointer(rebasing: buffer[pending...]))
        }
        return true
    }

    /// Encrypts what the router wrote to TLS connections during this callback (one `SSL_write` per connection).
    func tlsFlush() {
        for raw in tls.pointee.dirty {
            let index = Int(raw)
            guard index < tls.pointee.connections.count, tls.pointee.connections[index] != nil else { continue }
            tlsFlushConnection(index)
        }
        tls.pointee.dirty.removeAll(keepingCapacity: true)
    }

    func tlsFlushConnection(_ index: Int) {
        let entry = tls.pointee.connections[index]!
        guard !entry.outboundPlaintext.isEmpty else { return }
        let connection = ConnectionID(index: UInt32(index), generation: entry.generation)
        // `withUnsafeBytes` rethrows untyped errors: carry the typed one out as a value.
        let failure: TLSError? = entry.outboundPlaintext.withUnsafeBytes { plaintext in
            do throws(TLSError) {
                try entry.session.write(plaintext)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            logger.debug("TLS connection \(entry.peer) failed to encrypt: \(failure)")
            context.pointee.close(connection, afterFlush: false)
        }
        // Keep the buffer's capacity for the next batch unless it grew large (a burst).
        if entry.outboundPlaintext.count > 65_536 {
            tls.pointee.connections[index]!.outboundPlaintext = []
        } else {
            tls.pointee.connections[index]!.outboundPlaintext.removeAll(keepingCapacity: true)
        }
        drainCiphertext(connection, session: entry.session)
    }

    /// Before a TLS connection is closed: with `afterFlush`, its pending plaintext and a close_notify are queued.
    func tlsClosing(_ connection: ConnectionID, index: Int, afterFlush: Bool) {
        guard afterFlush else { return }
        tlsFlushConnection(index)
        let session = tls.pointee.connections[index]!.session
        session.close()
        drainCiphertext(connection, session: session)
    }

    /// Before a TLS connection is handed off: its output is queued (the runtime sends it before shipping the
    /// socket) and its session leaves this shard inside `state`.
    func tlsHandingOff(_ connection: ConnectionID, index: Int, state: inout HandoffState) {
        tlsFlushConnection(index)
        let entry = tls.pointee.connections[index]!
        let handoff = TLSHandoff(session: entry.session, listener: entry.listener, peer: entry.peer,
                                 identity: entry.identity)
        handoff.plaintext = entry.inboundPlaintext
        tls.pointee.connections[index] = nil
        tls.pointee.handedOff = handoff
        state.transport = handoff
    }

    /// The home shard adopted a TLS connection: plaintext the accepting shard had decrypted and records the session
    /// still holds go to the router now.
    func tlsAdopted(_ connection: ConnectionID, handoff: TLSHandoff, router: inout Router, now: UInt64) {
        guard let index = tls.pointee.index(of: connection) else { return }
        if !handoff.plaintext.isEmpty {
            var buffered = handoff.plaintext
            handoff.plaintext = []
            var env = self
            let consumed = buffered.withUnsafeBytes {
                router.received(ConnectionKey(connection), bytes: $0, now: now, env: &env)
            }
            buffered.removeFirst(consumed)
            guard tls.pointee.index(of: connection) == index, context.pointee.isOpen(connection) else { return }
            tls.pointee.connections[index]!.inboundPlaintext = buffered
        }
        _ = readPlaintext(connection, index: index, session: handoff.session, router: &router, now: now)
    }

    /// `use_identity_as_username`: the CONNECT is accepted on the strength of the client certificate alone; a
    /// client without one is refused. Nil when the connection is not on such a listener.
    func tlsAuthenticate(_ connection: ConnectionKey, connect: ConnectPacket) -> AuthenticationResult? {
        let id = ConnectionID(connection)
        guard tls.pointee.active, let index = tls.pointee.index(of: id) else { return nil }
        let entry = tls.pointee.connections[index]!
        guard tls.pointee.useIdentity[entry.listener] else { return nil }
        security.pointee.awaitingConnect.removeValue(forKey: connection)
        if entry.identity == nil {
            logger.info("refused client '\(connect.clientIdentifier)' from \(entry.peer): "
                + "use_identity_as_username needs a client certificate with a CN")
            return .notAuthorized
        }
        return .accepted
    }
}
