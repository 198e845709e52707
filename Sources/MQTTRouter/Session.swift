import MQTTCodec

// MARK: - Session identity

/// A session slot on its home shard: index into the router's session slab and a generation, so a stale identifier
/// (a timer or a retained reply that outlived its session) never reaches a reused slot.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    /// Slot index.
    public var index: UInt32
    /// Slot generation.
    public var generation: UInt32

    public var description: String { "session \(index).\(generation)" }
}

/// What the subscription trie keeps per subscription.
public struct SubscriptionValue: Sendable, Hashable {
    /// The options of the subscription.
    public var options: SubscriptionOptions
    /// The Subscription Identifier given with it (5.0), if any.
    public var identifier: Int?
}

// MARK: - Messages waiting for or in flight to a subscriber

/// One message for one subscriber: the shared message and what differs per subscriber.
struct Delivery {
    var message: SharedPublish
    var qos: QoS
    var retain: Bool
    var subscriptionIdentifiers: SubscriptionIdentifiers

    /// What the delivery counts against the queued-bytes budget (`Limits.queuedBytesBudget`): its slot plus the
    /// message, as if every queued delivery held its own copy. Deliveries of one message share it, so this is an
    /// upper bound of the memory really held, cheap to keep exact.
    var heldByteCount: Int { MemoryLayout<Delivery>.stride + message.byteCount }
}

/// An outgoing QoS 1/2 message holding a packet identifier.
struct InflightMessage {
    enum Phase: Equatable {
        /// PUBLISH sent (or to be sent), waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
        case awaitingAcknowledgement
        /// PUBREL sent (or to be sent), waiting for PUBCOMP.
        case awaitingCompletion
    }

    var packetIdentifier: UInt16
    var delivery: Delivery
    var phase: Phase
    /// Whether the current packet of the exchange (PUBLISH or PUBREL) is in the connection's outbound queue:
    /// false after a failed write or on session resumption (then it is sent again, PUBLISH with DUP).
    var sent: Bool
    /// Whether a PUBLISH for it was ever written (a resend then carries DUP, [MQTT-3.3.1-1]).
    var everSent: Bool
}

// MARK: - Session

/// A client's session on its home shard. Plain data: a later durability log can serialise it as is.
struct Session {
    var id: SessionID
    let clientIdentifier: String
    /// The connection attached, or `nil` while offline.
    var connection: ConnectionKey?
    /// The protocol version of the last connection.
    var protocolVersion: ProtocolVersion
    /// The user name of the last CONNECT (for the ACL).
    var username: String? = nil
    /// The client's ACL rules, resolved at CONNECT; `nil` when no ACL is configured.
    var access: ClientAccess? = nil
    /// Session Expiry Interval in seconds after the connection ends: 0 ends the session with it, `UInt32.max`
    /// never expires.
    var expirySeconds: UInt32
    /// The timer that ends an offline session.
    var expiryTimer: TimerHandle?

    // Outgoing (broker to client).
    /// The client's Receive Maximum (5.0) or `Limits.inflightMessagesMax`.
    var inflightMax: Int
    /// The client's Maximum Packet Size (5.0), or the protocol ceiling.
    var clientPacketSizeMax: Int
    /// Topic aliases set towards the attached connection (5.0); replaced at every CONNECT, emptied when it ends.
    var topicAliasesToClient = OutgoingTopicAliases()
    var packetIdentifiers = PacketIdentifierAllocator()
    /// QoS 1/2 messages holding a packet identifier, in the order they were first sent.
    private(set) var inflight: [InflightMessage] = []
    /// Messages waiting for room in the inflight window or for the client to come back, oldest first.
    private(set) var queue: [Delivery] = []
    private(set) var queueHead = 0
    /// Budget bytes of the deliveries in `queue` and `inflight` (see `Delivery.heldByteCount`). Every mutation of
    /// either goes through a method below that returns its change, which the router adds to its shard total.
    private(set) var heldBytes = 0
    /// Since when the client has not kept up (its outbound queue refused a write, or its session queue is full),
    /// or `nil` while it keeps up; with `Limits.queueFullDisconnectMillis` it is disconnected after that long.
    var stalledSinceMillis: UInt64? = nil
    /// The timer checking `stalledSinceMillis` against `Limits.queueFullDisconnectMillis`.
    var stalledTimer: TimerHandle? = nil

    // Incoming (client to broker).
    /// QoS 2 packet identifiers received (PUBREC sent), awaiting PUBREL: [MQTT-4.3.3-10] a repeated PUBLISH
    /// with one of these is not delivered again.
    var incomingQoS2: Set<UInt16> = []

    // Will.
    var will: ConnectPacket.Will?
    var willDelaySeconds: UInt32 = 0
    /// The will-delay timer while a will waits to be published.
    var willTimer: TimerHandle?
    /// Set when a write to the connection failed; cleared by `Router.writable`. QoS 1/2 then queue, QoS 0 drops.
    var outboundBlocked = false

    // Matching scratch (see `Router.deliverMatching`): the publish sequence this session was last matched for, and
    // its slot in the match scratch, so overlapping subscriptions merge into one delivery with no allocation.
    var matchStamp: UInt64 = 0
    var matchSlot: Int = 0

    var queuedCount: Int { queue.count - queueHead }

    /// Appends to the queue. - Returns: the change of `heldBytes`.
    mutating func enqueue(_ delivery: Delivery) -> Int {
        queue.append(delivery)
        heldBytes += delivery.heldByteCount
        return delivery.heldByteCount
    }

    /// Takes the oldest queued delivery; the caller accounts `-delivery.heldByteCount`.
    mutating func dequeue() -> Delivery? {
        guard queueHead < queue.count else { return nil }
        let delivery = queue[queueHead]
        queueHead += 1
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        } else if queueHead >= 64 && queueHead * 2 >= queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        heldBytes -= delivery.heldByteCount
        return delivery
    }

    /// Drops the oldest queued delivery. - Returns: the change of `heldBytes` (0 when the queue was empty).
    mutating func dropOldestQueued() -> Int {
        guard let dropped = dequeue() else { return 0 }
        return -dropped.heldByteCount
    }

    /// Puts a delivery back at the head of the queue. - Returns: the change of `heldBytes`.
    mutating func requeueFront(_ delivery: Delivery) -> Int {
        if queueHead > 0 {
            queueHead -= 1
            queue[queueHead] = delivery
        } else {
            queue.insert(delivery, at: 0)
        }
        heldBytes += delivery.heldByteCount
        return delivery.heldByteCount
    }

    /// Adds a message to the inflight window. - Returns: the change of `heldBytes`.
    mutating func appendInflight(_ message: InflightMessage) -> Int {
        inflight.append(message)
        heldBytes += message.delivery.heldByteCount
        return message.delivery.heldByteCount
    }

    /// Removes an inflight message. - Returns: the change of `heldBytes`.
    mutating func removeInflight(at position: Int) -> Int {
        let removed = inflight.remove(at: position)
        heldBytes -= removed.delivery.heldByteCount
        return -removed.delivery.heldByteCount
    }

    /// Marks whether the current packet of inflight message `position` is in the outbound queue.
    mutating func setInflightSent(_ position: Int, _ sent: Bool) {
        inflight[position].sent = sent
        if sent { inflight[position].everSent = true }
    }

    /// Marks every inflight packet as not sent: on resumption each is sent again (PUBLISH with DUP, or PUBREL).
    mutating func markAllInflightUnsent() {
        for position in inflight.indices { inflight[position].sent = false }
    }

    /// Moves inflight message `position` to its second phase (PUBREL owed, waiting for PUBCOMP).
    mutating func setInflightAwaitingCompletion(_ position: Int) {
        inflight[position].phase = .awaitingCompletion
        inflight[position].sent = false
    }

    func inflightPosition(_ packetIdentifier: UInt16) -> Int? {
        inflight.firstIndex { $0.packetIdentifier == packetIdentifier }
    }
}

// MARK: - SessionSlab

/// The router's session slots, indexed by `SessionID.index`.
///
/// A plain `[Session?]` returns a copy from its subscript getter, so every `sessions[live: index].field` read on the
/// publish path copied the whole `Session` (retaining and releasing each of its arrays): about a fifth of the
/// router's instructions per delivered message (RouterBenchmarks under callgrind). And even read in place, each
/// `!` asked the optional for its tag through an outlined call: 6% of the broker's CPU in the slow-subscriber
/// benchmark (perf). So slots hold plain `Session`s, a free one a placeholder, beside a filled flag, and the hot
/// path reads and writes through ``subscript(live:)`` in place with no check beyond a debug assertion.
struct SessionSlab {
    private var slots: [Session] = []
    private var filled: [Bool] = []

    /// The number of slots, free ones included.
    var count: Int { slots.count }

    /// Every slot index, free ones included.
    var indices: Range<Int> { slots.indices }

    /// Whether slot `index` holds a session.
    func isFilled(_ index: Int) -> Bool { filled[index] }

    /// The session in slot `index`, or `nil` for a free slot: a copy (control plane only); setting `nil` frees the
    /// slot and releases what its session held.
    subscript(index: Int) -> Session? {
        get { filled[index] ? slots[index] : nil }
        set {
            if let newValue {
                slots[index] = newValue
                filled[index] = true
            } else {
                slots[index] = .placeholder
                filled[index] = false
            }
        }
    }

    /// The session in a filled slot (an index from `Router.liveSessionIndex`, whose generation check guarantees
    /// it), read or changed in place.
    subscript(live index: Int) -> Session {
        _read {
            assert(filled[index], "session slot \(index) is free")
            yield slots[index]
        }
        _modify {
            assert(filled[index], "session slot \(index) is free")
            yield &slots[index]
        }
    }

    /// Adds a slot.
    mutating func append(_ session: Session?) {
        slots.append(session ?? .placeholder)
        filled.append(session != nil)
    }
}

extension Session {
    /// What a free slot of ``SessionSlab`` holds: no client, no storage.
    static var placeholder: Session {
        Session(id: SessionID(index: 0, generation: 0), clientIdentifier: "", connection: nil,
                protocolVersion: .v3_1_1, expirySeconds: 0, inflightMax: 0, clientPacketSizeMax: 0)
    }
}
