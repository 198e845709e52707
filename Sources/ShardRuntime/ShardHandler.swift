// MARK: - ShardHandler

/// The layer above the runtime (the broker) plugs in here: one handler value per shard, created on the
/// shard's own thread by the group's factory, called only from that thread.
///
/// The runtime is generic over the handler (`ShardGroup<H>`, `ShardContext<H>`), so calls are resolved at
/// compile time: no existential, no escaping closure per event. Every callback receives the shard's
/// `ShardContext` inout: through it the handler queues bytes, closes, pauses, sends to other shards, hands
/// connections off and arms timers. Those requests take effect at well-defined points of the loop turn (see
/// `ShardContext`), never re-entrantly.
///
/// A loop turn: reap completions (accept → `connectionAccepted`, data → `received`, EOF/errors →
/// `connectionClosed`, drained queues → `writable`), drain the mesh (`message`, `adopted`), fire timers
/// (`timerFired`), then `turnEnded`, then flush one send per connection, publish mesh tails, ring doorbells and
/// wait.
public protocol ShardHandler: SendableMetatype {
    /// What shards send each other over the mesh (the broker's message enum).
    associatedtype Message: Sendable
    /// Opaque per-connection state carried by a handoff (session, TLS state...).
    associatedtype ConnectionState: Sendable

    /// A connection was accepted on one of this shard's listeners (TCP_NODELAY is set; reading has started).
    /// `listener` is the index of the listener in `RuntimeConfiguration.listeners` (a broker tells its MQTT, TLS
    /// and metrics listeners apart by it).
    mutating func connectionAccepted(_ connection: ConnectionID, listener: Int, peer: SocketAddress,
                                     context: inout ShardContext<Self>)

    /// Bytes arrived: `bytes` is the connection's assembly buffer (the unconsumed tail of earlier calls)
    /// followed by the newly received bytes. Consume every complete packet and return how many bytes were
    /// consumed (`0 ... bytes.count`); the runtime keeps the rest for the next call. The pointer is valid only
    /// during the call.
    ///
    /// Calling `handOff` during this call sends the unconsumed tail (and anything received later) along with the
    /// connection.
    mutating func received(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer,
                           context: inout ShardContext<Self>) -> Int

    /// The connection is gone from the handler's point of view (EOF, reset, error, closed by us, shutdown):
    /// its ID is dead from now on. Not called for connections this shard handed off.
    mutating func connectionClosed(_ connection: ConnectionID, reason: CloseReason, context: inout ShardContext<Self>)

    /// A connection handed off by another shard arrived. Bytes it had already read are delivered through
    /// `received` right after this call.
    mutating func adopted(_ connection: ConnectionID, state: ConnectionState, context: inout ShardContext<Self>)

    /// A message from shard `from` (or from this shard itself, when it sent to its own ID).
    mutating func message(_ message: Message, from: ShardID, context: inout ShardContext<Self>)

    /// A timer armed with `token` is due.
    mutating func timerFired(_ token: UInt64, context: inout ShardContext<Self>)

    /// Once per loop turn, before the flush: a place to batch work produced during the turn.
    mutating func turnEnded(context: inout ShardContext<Self>)

    /// The connection's outbound queue drained below the low-water mark after it was refused or filled past
    /// the mark: the layer above can move queued messages in.
    mutating func writable(_ connection: ConnectionID, context: inout ShardContext<Self>)
}

extension ShardHandler {
    /// Default: closes the adopted connection (a handler that never hands off never sees this).
    public mutating func adopted(_ connection: ConnectionID, state: ConnectionState, context: inout ShardContext<Self>) {
        context.close(connection, afterFlush: false)
    }
    /// Default: ignores the message.
    public mutating func message(_ message: Message, from: ShardID, context: inout ShardContext<Self>) {}
    /// Default: ignores the timer.
    public mutating func timerFired(_ token: UInt64, context: inout ShardContext<Self>) {}
    /// Default: nothing.
    public mutating func turnEnded(context: inout ShardContext<Self>) {}
    /// Default: nothing.
    public mutating func writable(_ connection: ConnectionID, context: inout ShardContext<Self>) {}
}
