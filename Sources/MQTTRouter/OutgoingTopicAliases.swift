import MQTTCodec

// MARK: - Topic aliases from the broker to one connection

/// The topic aliases the broker has set towards one client connection (MQTT 5.0 §3.3.2.3.4): topic → alias,
/// bounded by the Topic Alias Maximum the client sent in CONNECT.
///
/// Policy, first come first served: the first `maximum` distinct topics delivered on the connection get aliases
/// 1, 2, 3 … in order. The first delivery of such a topic carries the topic and its alias; later ones carry an
/// empty topic and the alias. Once every alias is taken, existing ones are kept (an alias is never re-pointed, so
/// nothing depends on the client having seen a replacement) and other topics are sent in full without an alias.
/// Topics shorter than ``shortestAliasedTopicByteCount`` are never aliased: the 3-byte Topic Alias property
/// would make their packets no smaller, and they would take a slot a longer topic could use.
///
/// The table belongs to the connection attached to the session, not to the session: it is replaced on every
/// CONNECT and emptied when the connection ends, since aliases do not survive a reconnect ([MQTT-3.3.2-7]).
/// A client that sends no Topic Alias Maximum (or 0) gets `maximum == 0`: the router then takes its ordinary
/// delivery path and this table stays empty, allocating nothing.
///
/// Memory: at most `maximum` (≤ 65,535) entries, each sharing the routed message's topic storage.
struct OutgoingTopicAliases {
    /// The shortest topic, in bytes, that gets an alias: a reused alias costs a 3-byte property in place of the
    /// topic's bytes, so only topics of 4 bytes or more get smaller.
    static let shortestAliasedTopicByteCount = 4

    /// The client's Topic Alias Maximum for the attached connection; 0 when it accepts no aliases.
    private(set) var maximum: UInt16
    private var aliasByTopic: [TopicName: UInt16] = [:]

    /// A table for a connection that accepts no aliases.
    init() { maximum = 0 }

    /// A new, empty table for a connection whose CONNECT gave `maximum` as its Topic Alias Maximum.
    init(maximum: UInt16) { self.maximum = maximum }

    /// Whether the client accepts aliases at all.
    var isEnabled: Bool { maximum != 0 }

    /// The number of aliases set.
    var count: Int { aliasByTopic.count }

    /// How one delivery names its topic.
    enum Use: Equatable {
        /// The topic in full, without an alias (table full, or a topic too short to be worth one).
        case topicOnly
        /// The topic in full with a new alias, which is set once the packet is written (``assigned(_:to:)``).
        case assign(UInt16)
        /// An empty topic and the alias the client already knows.
        case reuse(UInt16)
    }

    /// How a delivery to `topic` should name it. Does not change the table: the caller commits a new alias with
    /// ``assigned(_:to:)`` only once the packet carrying it was queued, so a packet that was not sent (outbound
    /// queue full, larger than the client's Maximum Packet Size) never leaves the client without the mapping.
    func use(for topic: TopicName) -> Use {
        if let alias = aliasByTopic[topic] { return .reuse(alias) }
        guard aliasByTopic.count < Int(maximum), topic.bytes.count >= Self.shortestAliasedTopicByteCount else {
            return .topicOnly
        }
        // Aliases are never evicted, so the next free one is always count + 1 (≤ maximum: [MQTT-3.3.2-11]).
        return .assign(UInt16(aliasByTopic.count + 1))
    }

    /// Records that a packet setting `alias` for `topic` was queued to the client.
    /// - Precondition: `alias` is the one ``use(for:)`` answered with `.assign` for `topic`.
    mutating func assigned(_ alias: UInt16, to topic: TopicName) {
        precondition(Int(alias) == aliasByTopic.count + 1 && alias <= maximum, "alias out of order")
        aliasByTopic[topic] = alias
    }
}
