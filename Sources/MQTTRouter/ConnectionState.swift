import MQTTCodec

// MARK: - Per-connection state

/// One connection as its shard's router sees it.
struct ConnectionState {
    enum Phase: Equatable {
        /// Accepted; only CONNECT is valid.
        case awaitingConnect
        /// CONNACK sent; attached to a session.
        case connected(SessionID)
    }

    var phase: Phase = .awaitingConnect
    /// The frame decoder: protocol version and the packet size limit.
    var decoder: PacketDecoder
    var acceptedAtMillis: UInt64
    /// The CONNECT timeout, then the keep-alive timer.
    var timer: TimerHandle?
    /// Keep alive enforced, in milliseconds (1.5 × the keep alive; 0 disables it).
    var keepAliveWindowMillis: UInt64 = 0
    var lastPacketMillis: UInt64
    /// Topic aliases the client set (5.0): alias → topic.
    var topicAliases: [UInt16: TopicName] = [:]
    /// The session expiry given in CONNECT (5.0), for the DISCONNECT rule [MQTT-3.14.2-2].
    var connectSessionExpirySeconds: UInt32 = 0
    /// Whether the connection is paused because the mesh refused its publishes.
    var pausedForMesh = false

    var protocolVersion: ProtocolVersion { decoder.protocolVersion ?? .v3_1_1 }

    var sessionID: SessionID? {
        if case .connected(let id) = phase { return id }
        return nil
    }
}
