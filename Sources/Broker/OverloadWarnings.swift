import MQTTRouter

// MARK: - Overload warnings

/// Rate-limited warnings for the slow-consumer counters of one shard: the first drop, pause or disconnect of a
/// kind is logged at once, later ones at most once per ``intervalMillis`` with the count since the last line.
///
/// Checked once per loop turn: a handful of integer comparisons against the router's counters, nothing per
/// message. Lives in the broker because the router has no logger (it is sans-I/O).
struct OverloadWarnings {
    /// The shortest time between two lines of one kind.
    static let intervalMillis: UInt64 = 10_000

    /// One kind of event: how to read its counter, and the sentence that reports `count` of them.
    struct Kind: Sendable {
        let value: @Sendable (RouterCounters) -> Int
        let describe: @Sendable (_ count: Int, _ shard: Int) -> String
    }

    static let kinds: [Kind] = [
        Kind(value: \.droppedOutboundFull) { count, shard in
            "shard \(shard): dropped \(count) QoS 0 message(s) for subscribers whose outbound queue is full "
                + "(max_queued_bytes; reason outbound_full)"
        },
        Kind(value: \.droppedSessionQueueFull) { count, shard in
            "shard \(shard): \(count) QoS 1/2 message(s) hit a full session queue (max_queued_messages; "
                + "policy applied, reason session_queue_full)"
        },
        Kind(value: \.slowClientsDisconnected) { count, shard in
            "shard \(shard): disconnected \(count) slow client(s) (queue_full_disconnect or the disconnect policy)"
        },
        Kind(value: \.budgetPressureTrips) { count, shard in
            "shard \(shard): queued messages reached this shard's share of queued_bytes_budget \(count) time(s); "
                + "publishers are paused until it drains"
        },
        Kind(value: \.publishersPausedForMesh) { count, shard in
            "shard \(shard): paused \(count) publisher(s) because a ring to another shard and its overflow were full"
        },
        Kind(value: \.droppedMeshRefused) { count, shard in
            "shard \(shard): dropped \(count) QoS 0 forward(s) refused by a full ring to another shard"
        },
    ]

    /// Per kind: the counter value at the last line, and when the next line may be written.
    private var reported: [Int]
    private var nextAllowedMillis: [UInt64]

    init() {
        reported = Array(repeating: 0, count: Self.kinds.count)
        nextAllowedMillis = Array(repeating: 0, count: Self.kinds.count)
    }

    /// Logs a warning for each kind whose counter moved, unless one was logged for it less than
    /// ``intervalMillis`` ago (those events are reported with the next line).
    mutating func check(_ counters: RouterCounters, shard: Int, now: UInt64, logger: Logger) {
        for index in Self.kinds.indices {
            let value = Self.kinds[index].value(counters)
            guard value != reported[index], now >= nextAllowedMillis[index] else { continue }
            logger.warning(Self.kinds[index].describe(value - reported[index], shard))
            reported[index] = value
            nextAllowedMillis[index] = now + Self.intervalMillis
        }
    }
}
