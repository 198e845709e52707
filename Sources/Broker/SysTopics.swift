import MQTTRouter

#if canImport(Glibc)
import Glibc
#endif

// MARK: - The figures behind $SYS

/// The figures one `$SYS` scope reports (one shard, or the whole broker), with Mosquitto's meanings: `messages`
/// counts MQTT packets of every type, `publish/messages` only PUBLISH packets.
struct SysFigures: Equatable {
    var clientsConnected = 0
    var clientsTotal = 0
    var clientsMaximum = 0
    var clientsExpired = 0
    var packetsReceived = 0
    var packetsSent = 0
    var publishReceived = 0
    var publishSent = 0
    var publishDropped = 0
    var publishBytesReceived = 0
    var publishBytesSent = 0
    var bytesReceived = 0
    var bytesSent = 0
    var subscriptions = 0
    var retained = 0
    var connectionsAccepted = 0
    var socketsAccepted = 0

    init() {}

    /// One shard's figures.
    init(_ snapshot: ShardSnapshot) {
        let router = snapshot.router
        clientsConnected = snapshot.routerGauges.connections
        clientsTotal = max(snapshot.routerGauges.sessions, snapshot.routerGauges.connections)
        clientsMaximum = snapshot.connectionsMax
        clientsExpired = router.sessionsExpired
        packetsReceived = router.packetsReceived
        packetsSent = router.packetsSent
        publishReceived = router.publishReceivedQoS0 + router.publishReceivedQoS1 + router.publishReceivedQoS2
        publishSent = router.publishSentQoS0 + router.publishSentQoS1 + router.publishSentQoS2
        publishDropped = router.droppedOutboundFull + router.droppedSessionQueueFull + router.droppedExpired
            + router.droppedTooLargeForClient + router.droppedOfflineQoS0 + router.droppedMeshRefused
            + router.droppedNotAuthorized + router.droppedNoSharedMember
        publishBytesReceived = router.publishPayloadBytesReceivedQoS0 + router.publishPayloadBytesReceivedQoS1
            + router.publishPayloadBytesReceivedQoS2
        publishBytesSent = router.publishPayloadBytesSentQoS0 + router.publishPayloadBytesSentQoS1
            + router.publishPayloadBytesSentQoS2
        bytesReceived = Int(clamping: snapshot.runtime.bytesReceived)
        bytesSent = Int(clamping: snapshot.runtime.bytesSent)
        subscriptions = router.subscriptions
        retained = router.retainedMessages
        connectionsAccepted = router.connectionsAccepted
        socketsAccepted = Int(clamping: snapshot.runtime.accepted)
    }

    /// The sum of several scopes' figures (the maximum is summed too: a lower bound of the broker-wide peak that
    /// the caller raises with the current total).
    static func + (lhs: SysFigures, rhs: SysFigures) -> SysFigures {
        var sum = SysFigures()
        sum.clientsConnected = lhs.clientsConnected + rhs.clientsConnected
        sum.clientsTotal = lhs.clientsTotal + rhs.clientsTotal
        sum.clientsMaximum = lhs.clientsMaximum + rhs.clientsMaximum
        sum.clientsExpired = lhs.clientsExpired + rhs.clientsExpired
        sum.packetsReceived = lhs.packetsReceived + rhs.packetsReceived
        sum.packetsSent = lhs.packetsSent + rhs.packetsSent
        sum.publishReceived = lhs.publishReceived + rhs.publishReceived
        sum.publishSent = lhs.publishSent + rhs.publishSent
        sum.publishDropped = lhs.publishDropped + rhs.publishDropped
        sum.publishBytesReceived = lhs.publishBytesReceived + rhs.publishBytesReceived
        sum.publishBytesSent = lhs.publishBytesSent + rhs.publishBytesSent
        sum.bytesReceived = lhs.bytesReceived + rhs.bytesReceived
        sum.bytesSent = lhs.bytesSent + rhs.bytesSent
        sum.subscriptions = lhs.subscriptions + rhs.subscriptions
        sum.retained = lhs.retained + rhs.retained
        sum.connectionsAccepted = lhs.connectionsAccepted + rhs.connectionsAccepted
        sum.socketsAccepted = lhs.socketsAccepted + rhs.socketsAccepted
        return sum
    }
}

// MARK: - Load averages

/// Mosquitto's `$SYS/broker/load/...` figures: per-minute rates smoothed by exponential moving averages over 1, 5
/// and 15 minutes. At each update `dt` seconds after the previous one, for each counter, with `rate` its increase
/// over the interval scaled to one minute and `current` the average so far:
/// `current = rate + exp(-dt / window) × (current - rate)` (mosquitto's `calc_load`).
struct SysLoadAverages: Equatable {
    /// The series, in topic order: (topic path under `load/`, figure).
    static let series: [(path: String, value: @Sendable (SysFigures) -> Int)] = [
        ("messages/received", { $0.packetsReceived }),
        ("messages/sent", { $0.packetsSent }),
        ("publish/dropped", { $0.publishDropped }),
        ("publish/received", { $0.publishReceived }),
        ("publish/sent", { $0.publishSent }),
        ("bytes/received", { $0.bytesReceived }),
        ("bytes/sent", { $0.bytesSent }),
        ("sockets", { $0.socketsAccepted }),
        ("connections", { $0.connectionsAccepted }),
    ]
    /// The windows, in seconds, with their topic suffixes.
    static let windows: [(suffix: String, seconds: Double)] = [("1min", 60), ("5min", 300), ("15min", 900)]

    /// `averages[series][window]`.
    var averages: [[Double]] = Array(repeating: [0, 0, 0], count: SysLoadAverages.series.count)
    var previous: SysFigures? = nil
    var previousMillis: UInt64 = 0

    /// Folds in the figures at `nowMillis`. Returns false on the first call (no interval yet, as Mosquitto, which
    /// publishes no load before its second update).
    mutating func update(_ figures: SysFigures, nowMillis: UInt64) -> Bool {
        defer {
            previous = figures
            previousMillis = nowMillis
        }
        guard let previous, nowMillis > previousMillis else { return false }
        let seconds = Double(nowMillis - previousMillis) / 1000
        for (index, series) in Self.series.enumerated() {
            let rate = Double(max(0, series.value(figures) - series.value(previous))) * 60 / seconds
            for (window, (_, windowSeconds)) in Self.windows.enumerated() {
                let exponent = exp(-seconds / windowSeconds)
                averages[index][window] = rate + exponent * (averages[index][window] - rate)
            }
        }
        return true
    }
}

// MARK: - SysTopicPublisher

/// Turns one scope's figures into `$SYS` topics and payloads, every `sys_interval`, publishing (as Mosquitto
/// does) only the values that changed since the last publication: the messages are retained, so a new subscriber
/// still gets every topic at once.
struct SysTopicPublisher {
    /// `"$SYS/broker/"` for the broker-wide scope, `"$SYS/broker/shards/N/"` for shard N.
    let prefix: String
    var load = SysLoadAverages()
    var lastPayloads: [String: String] = [:]

    init(prefix: String) { self.prefix = prefix }

    /// The (topic, payload) pairs to publish now: the figures, the load averages from the second update on, and
    /// `extra` (version, uptime), each only when its payload changed.
    mutating func messages(_ figures: SysFigures, nowMillis: UInt64, extra: [(String, String)] = [])
        -> [(topic: String, payload: String)] {
        var values: [(String, String)] = extra
        values += [
            ("clients/connected", "\(figures.clientsConnected)"),
            ("clients/disconnected", "\(max(0, figures.clientsTotal - figures.clientsConnected))"),
            ("clients/total", "\(figures.clientsTotal)"),
            ("clients/maximum", "\(figures.clientsMaximum)"),
            ("clients/expired", "\(figures.clientsExpired)"),
            ("messages/received", "\(figures.packetsReceived)"),
            ("messages/sent", "\(figures.packetsSent)"),
            ("publish/messages/received", "\(figures.publishReceived)"),
            ("publish/messages/sent", "\(figures.publishSent)"),
            ("publish/messages/dropped", "\(figures.publishDropped)"),
            ("publish/bytes/received", "\(figures.publishBytesReceived)"),
            ("publish/bytes/sent", "\(figures.publishBytesSent)"),
            ("bytes/received", "\(figures.bytesReceived)"),
            ("bytes/sent", "\(figures.bytesSent)"),
            ("subscriptions/count", "\(figures.subscriptions)"),
            ("retained messages/count", "\(figures.retained)"),
        ]
        if load.update(figures, nowMillis: nowMillis) {
            for (index, series) in SysLoadAverages.series.enumerated() {
                for (window, (suffix, _)) in SysLoadAverages.windows.enumerated() {
                    values.append(("load/\(series.path)/\(suffix)", Self.formatHundredths(load.averages[index][window])))
                }
            }
        }
        var changed: [(topic: String, payload: String)] = []
        for (path, payload) in values where lastPayloads[path] != payload {
            lastPayloads[path] = payload
            changed.append((prefix + path, payload))
        }
        return changed
    }

    /// `%.2f` without Foundation.
    static func formatHundredths(_ value: Double) -> String {
        let hundredths = Int((max(0, value) * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }
}
