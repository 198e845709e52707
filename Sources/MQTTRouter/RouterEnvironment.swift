import MQTTCodec

// MARK: - What the router asks of its driver

/// A connection as the router knows it: opaque. The broker packs the runtime's (slab index, generation) into it,
/// so a stale key never reaches a reused slot.
public struct ConnectionKey: Hashable, Sendable, CustomStringConvertible {
    /// The packed identity.
    public var rawValue: UInt64

    /// Wraps a packed identity.
    @inlinable
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public var description: String { "connection \(rawValue)" }
}

/// What happened to a message handed to the shard mesh.
public enum MeshSendResult: Sendable, Hashable {
    /// The message is in the ring.
    case accepted
    /// The ring was full; the message waits in the producer's local overflow list (pressure: it will arrive).
    case overflowed
    /// The overflow list is at its cap; the message was not taken.
    case refused
}

/// The actions a ``Router`` emits, carried out by its driver (the io_uring runtime, or a test's recorder).
///
/// The router is generic over its environment (`Router.received(_:bytes:now:env:)` takes `inout E`), so every
/// call below is resolved at compile time: no existential and no escaping closure per operation.
public protocol RouterEnvironment {
    /// Appends an encoded packet to the connection's bounded outbound queue: `encode` writes exactly `byteCount`
    /// bytes at the start of the buffer it is given.
    /// - Returns: `false`, with nothing written and `encode` not called, when the connection's byte bound would
    ///   be exceeded (or the connection is gone). QoS 0 to it is then dropped (counted); QoS 1/2 stays in the
    ///   session queue until ``Router/writable(_:now:env:)`` is called.
    mutating func write(_ connection: ConnectionKey, byteCount: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Void)
        -> Bool
    /// Bytes queued for the connection's socket and not yet sent.
    func outboundBytesQueued(_ connection: ConnectionKey) -> Int
    /// Closes the connection; with `afterFlush`, what is queued is sent first. The router has already forgotten
    /// the connection: a later ``Router/connectionClosed(_:now:env:)`` for it is ignored.
    mutating func close(_ connection: ConnectionKey, afterFlush: Bool)
    /// Stops reading from the connection (backpressure towards a publisher).
    mutating func pauseReading(_ connection: ConnectionKey)
    /// Resumes reading from the connection.
    mutating func resumeReading(_ connection: ConnectionKey)
    /// Sends a message to another shard over the SPSC mesh.
    mutating func send(_ message: ShardMessage, to shard: ShardID) -> MeshSendResult
    /// Moves the connection to its home shard, which will call ``Router/adopted(_:state:now:env:)``. The bytes the
    /// router did not consume (``Router/received(_:bytes:now:env:)``'s answer) travel with it.
    mutating func handOff(_ connection: ConnectionKey, to shard: ShardID, state: HandoffState)
    /// Arms a one-shot timer that calls ``Router/timerFired(_:now:env:)`` with `token` at or after `deadlineMillis`.
    /// - Returns: an identifier for ``cancelTimer(_:)``.
    mutating func armTimer(deadlineMillis: UInt64, token: UInt64) -> UInt64
    /// Cancels a timer that has not fired (cancelling a fired or unknown one does nothing).
    mutating func cancelTimer(_ id: UInt64)
    /// Decides whether the client of a CONNECT may connect (user name, password, anonymous access). Asked once
    /// per connection, on the accepting shard, before any hand-off; an adopted connection is not asked again.
    /// Verifying a password is I/O-free but not pure (OpenSSL), so it lives in the environment, not the router.
    mutating func authenticate(_ connection: ConnectionKey, connect: ConnectPacket) -> AuthenticationResult
    /// A client's session is attached to `connection` on this, its home, shard and CONNACK 0x00 is queued: the
    /// driver logs the connection line. Once per successful CONNECT; never on the per-message path.
    mutating func clientConnected(_ connection: ConnectionKey, event: ClientConnectedEvent)
    /// The connection of an established client ended (its session is detached or ended): the driver logs the
    /// disconnection line. Not called for connections that never completed CONNECT.
    mutating func clientDisconnected(_ connection: ConnectionKey, clientIdentifier: String, cause: DisconnectCause)
    /// The user name the transport established for the connection (a TLS client certificate's CN under
    /// `use_identity_as_username`), which replaces the CONNECT's user name and password; nil to keep them.
    /// Asked once per connection, before ``authenticate(_:connect:)``.
    mutating func transportUserName(_ connection: ConnectionKey) -> String?
}

/// What ``RouterEnvironment/clientConnected(_:event:)`` reports.
public struct ClientConnectedEvent: Sendable, Hashable {
    /// The client identifier (the assigned one for an empty CONNECT identifier).
    public var clientIdentifier: String
    /// The protocol version of the CONNECT.
    public var protocolVersion: ProtocolVersion
    /// Clean session (3.1.1) or clean start (5.0).
    public var cleanStart: Bool
    /// The keepalive in force, in seconds (the Server Keep Alive when the broker imposed one); 0 = none.
    public var keepAliveSeconds: Int
    /// Whether an existing session was resumed.
    public var sessionPresent: Bool
    /// The user name of the CONNECT, if any.
    public var userName: String?

    public init(clientIdentifier: String, protocolVersion: ProtocolVersion, cleanStart: Bool, keepAliveSeconds: Int,
                sessionPresent: Bool, userName: String?) {
        self.clientIdentifier = clientIdentifier
        self.protocolVersion = protocolVersion
        self.cleanStart = cleanStart
        self.keepAliveSeconds = keepAliveSeconds
        self.sessionPresent = sessionPresent
        self.userName = userName
    }
}

/// Why an established client's connection ended (for the disconnection log line).
public enum DisconnectCause: Sendable, Hashable, CustomStringConvertible {
    /// The client sent DISCONNECT with this reason code.
    case clientDisconnect(ReasonCode)
    /// The socket closed without a DISCONNECT: the peer closed or reset it, a socket error, or shutdown. The
    /// driver knows which and says so.
    case connectionLost
    /// A new connection with the same client identifier took the session over ([MQTT-3.1.4-3]).
    case takenOver
    /// The broker closed it: keepalive timeout, protocol violation, quota exceeded... (`nil`: no reason code).
    case closedByBroker(ReasonCode?)

    public var description: String {
        switch self {
        case .clientDisconnect(let code):
            code == .normalDisconnection ? "client sent DISCONNECT"
                : "client sent DISCONNECT \(code) (\(DisconnectCause.name(of: code)))"
        case .connectionLost: "connection lost"
        case .takenOver: "session taken over by a new connection with the same client ID"
        case .closedByBroker(let code?): "closed by the broker: \(code) (\(DisconnectCause.name(of: code)))"
        case .closedByBroker(nil): "closed by the broker"
        }
    }

    /// A few words for the reason codes a disconnection carries.
    static func name(of code: ReasonCode) -> String {
        switch code {
        case .normalDisconnection: "normal disconnection"
        case .disconnectWithWillMessage: "disconnect with will message"
        case .malformedPacket: "malformed packet"
        case .protocolError: "protocol error"
        case .notAuthorized: "not authorized"
        case .serverShuttingDown: "server shutting down"
        case .keepAliveTimeout: "keep alive timeout"
        case .sessionTakenOver: "session taken over"
        case .topicNameInvalid: "topic name invalid"
        case .topicFilterInvalid: "topic filter invalid"
        case .receiveMaximumExceeded: "receive maximum exceeded"
        case .topicAliasInvalid: "topic alias invalid"
        case .packetTooLarge: "packet too large"
        case .quotaExceeded: "quota exceeded"
        case .payloadFormatInvalid: "payload format invalid"
        case .retainNotSupported: "retain not supported"
        case .qosNotSupported: "QoS not supported"
        case .badAuthenticationMethod: "bad authentication method"
        case .administrativeAction: "administrative action"
        default: "reason code"
        }
    }
}

/// The answer to ``RouterEnvironment/authenticate(_:connect:)``.
public enum AuthenticationResult: Sendable, Hashable {
    /// The client may connect.
    case accepted
    /// Unknown user name or wrong password: CONNACK 0x86 (5.0) / 4 (3.1.1).
    case badCredentials
    /// No credentials where they are required: CONNACK 0x87 (5.0) / 5 (3.1.1).
    case notAuthorized
}

extension RouterEnvironment {
    /// Default: every client is accepted (no authentication configured).
    public mutating func authenticate(_ connection: ConnectionKey, connect: ConnectPacket) -> AuthenticationResult {
        .accepted
    }

    /// Default: nothing is logged.
    public mutating func clientConnected(_ connection: ConnectionKey, event: ClientConnectedEvent) {}

    /// Default: nothing is logged.
    public mutating func clientDisconnected(_ connection: ConnectionKey, clientIdentifier: String,
                                            cause: DisconnectCause) {}

    /// Default: the transport establishes no identity.
    public mutating func transportUserName(_ connection: ConnectionKey) -> String? { nil }
}

// MARK: - Hand-off

/// What travels with a connection that moves to its home shard after CONNECT: the decoded CONNECT, so that the
/// home shard does not decode it again. The socket and unconsumed bytes travel in the runtime's part; the
/// transport's state (a TLS session) in ``transport``, which the router never looks at.
public struct HandoffState: Sendable {
    /// The CONNECT packet, already validated by the accepting shard.
    public var connect: ConnectPacket
    /// When the accepting shard accepted the connection (for connect-time metrics).
    public var acceptedAtMillis: UInt64
    /// The shard that accepted the connection.
    public var acceptingShard: ShardID
    /// The transport's per-connection state (the broker's TLS session), opaque to the router; nil for plain TCP.
    public var transport: (any Sendable)? = nil

    /// Creates a hand-off state.
    public init(connect: ConnectPacket, acceptedAtMillis: UInt64, acceptingShard: ShardID) {
        self.connect = connect
        self.acceptedAtMillis = acceptedAtMillis
        self.acceptingShard = acceptingShard
    }
}

// MARK: - Configuration

/// One shard's router configuration.
public struct RouterConfiguration: Sendable {
    /// This shard.
    public var shard: ShardID
    /// The number of shards (homing is `hash mod shardCount`).
    public var shardCount: Int
    /// Every bound.
    public var limits: Limits
    /// Time a new connection has to send CONNECT before it is closed, in milliseconds. Default 10 s.
    public var connectTimeoutMillis: UInt64
    /// Delay before retrying mesh messages the mesh refused, in milliseconds. Default 1 ms.
    public var meshRetryMillis: UInt64
    /// Response Information sent to a v5 client that asks for it (Request Response Information 1): this prefix
    /// followed by the client identifier. `nil` sends none.
    public var responseInformationPrefix: String?

    /// Creates a configuration.
    public init(
        shard: ShardID, shardCount: Int, limits: Limits = Limits(), connectTimeoutMillis: UInt64 = 10_000,
        meshRetryMillis: UInt64 = 1, responseInformationPrefix: String? = "response/"
    ) {
        precondition(shardCount > 0 && shardCount <= ShardSet.capacity, "shard count out of range")
        precondition(shard.index < shardCount, "shard outside the shard count")
        self.shard = shard
        self.shardCount = shardCount
        self.limits = limits
        self.connectTimeoutMillis = connectTimeoutMillis
        self.meshRetryMillis = meshRetryMillis
        self.responseInformationPrefix = responseInformationPrefix
    }
}
