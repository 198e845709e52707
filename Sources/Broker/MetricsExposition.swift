import MQTTRouter
import ShardRuntime

// MARK: - Metric definitions

/// The Prometheus metric types Shoal exposes.
public enum MetricType: String, Sendable {
    case counter, gauge, histogram
}

/// One series of a metric family: its labels (besides `shard`) and how to read its value from a snapshot.
struct MetricSeries: Sendable {
    /// Label pairs as they appear between the braces, e.g. `qos="1"`; empty for none.
    var labels: String
    var value: @Sendable (ShardSnapshot) -> UInt64
}

/// A metric family: rendered once as a broker-wide total (`shoal_<name>`) and once per shard
/// (`shoal_shard_<name>{shard="N"}`), so that summing either never counts a shard twice.
struct MetricDefinition: Sendable {
    var name: String
    var help: String
    var type: MetricType
    var series: [MetricSeries]

    init(_ name: String, _ type: MetricType, _ help: String, _ value: @escaping @Sendable (ShardSnapshot) -> UInt64) {
        self.name = name
        self.help = help
        self.type = type
        self.series = [MetricSeries(labels: "", value: value)]
    }

    init(_ name: String, _ type: MetricType, _ help: String, series: [MetricSeries]) {
        self.name = name
        self.help = help
        self.type = type
        self.series = series
    }
}

/// A non-negative count as an exposition value (router gauges are `Int`).
private func count(_ value: Int) -> UInt64 { UInt64(clamping: value) }

/// Series by QoS.
private func byQoS(_ zero: @escaping @Sendable (ShardSnapshot) -> Int, _ one: @escaping @Sendable (ShardSnapshot) -> Int,
                   _ two: @escaping @Sendable (ShardSnapshot) -> Int) -> [MetricSeries] {
    [MetricSeries(labels: "qos=\"0\"", value: { count(zero($0)) }),
     MetricSeries(labels: "qos=\"1\"", value: { count(one($0)) }),
     MetricSeries(labels: "qos=\"2\"", value: { count(two($0)) })]
}

private func labelled(_ key: String, _ pairs: [(String, @Sendable (ShardSnapshot) -> UInt64)]) -> [MetricSeries] {
    pairs.map { MetricSeries(labels: "\(key)=\"\($0.0)\"", value: $0.1) }
}

extension MetricsExposition {
    /// Every metric family but the loop-turn histogram (rendered by ``MetricsExposition/render(snapshots:uptimeSeconds:)``).
    static let definitions: [MetricDefinition] = [
        // MARK: Connections
        MetricDefinition("connections", .gauge, "MQTT connections open (those still awaiting CONNECT included).") {
            count($0.routerGauges.connections)
        },
        MetricDefinition("connections_accepted_total", .counter, "MQTT connections accepted.") {
            count($0.router.connectionsAccepted)
        },
        MetricDefinition("connections_refused_total", .counter,
                         "Connections refused, by reason: shard_full (at accept: connection limit or stopping), "
                            + "connect_rejected (CONNACK with a failure code), connect_timeout (no CONNECT in time).",
                         series: labelled("reason", [
                            ("shard_full", { $0.runtime.acceptRefused }),
                            ("connect_rejected", { count($0.router.connectionsRefused) }),
                            ("connect_timeout", { count($0.router.connectTimeouts) }),
                         ])),
        MetricDefinition("disconnects_total", .counter,
                         "Connections the broker closed after CONNECT, by reason.",
                         series: labelled("reason", [
                            ("keepalive_timeout", { count($0.router.keepAliveTimeouts) }),
                            ("protocol_error", { count($0.router.protocolErrors) }),
                            ("takeover", { count($0.router.takeovers) }),
                            ("slow_client", { count($0.router.slowClientsDisconnected) }),
                         ])),
        MetricDefinition("connections_handed_off_total", .counter,
                         "Connections moved to their session's home shard after CONNECT.") {
            count($0.router.connectionsHandedOff)
        },
        MetricDefinition("connections_adopted_total", .counter, "Connections adopted from another shard.") {
            count($0.router.connectionsAdopted)
        },
        MetricDefinition("sockets_open", .gauge, "Sockets open (MQTT and metrics listeners).") {
            count($0.runtimeGauges.openConnections)
        },
        MetricDefinition("sockets_accepted_total", .counter, "Sockets accepted (MQTT and metrics listeners).") {
            $0.runtime.accepted
        },
        MetricDefinition("sockets_closed_total", .counter, "Sockets closed (handed-off ones excluded).") {
            $0.runtime.closed
        },
        MetricDefinition("accept_errors_total", .counter, "Accept completions that failed (EMFILE, ENFILE, ENOMEM...).") {
            $0.runtime.acceptErrors
        },
        MetricDefinition("tls_handshakes_total", .counter, "TLS handshakes on TLS listeners, by result.",
                         series: labelled("result", [
                            ("success", { count($0.tlsHandshakes) }),
                            ("failure", { count($0.tlsHandshakeFailures) }),
                         ])),
        MetricDefinition("tls_handshakes_deferred_total", .counter,
                         "TLS handshake steps put off to a later loop turn (per-turn handshake budget spent).") {
            count($0.tlsHandshakesDeferred)
        },

        // MARK: Sessions and subscriptions
        MetricDefinition("sessions", .gauge, "Sessions, online and offline.") { count($0.routerGauges.sessions) },
        MetricDefinition("sessions_created_total", .counter, "Sessions created.") { count($0.router.sessionsCreated) },
        MetricDefinition("sessions_resumed_total", .counter, "Sessions resumed by a reconnecting client.") {
            count($0.router.sessionsResumed)
        },
        MetricDefinition("sessions_ended_total", .counter, "Sessions ended.") { count($0.router.sessionsEnded) },
        MetricDefinition("sessions_expired_total", .counter, "Sessions ended by their expiry interval.") {
            count($0.router.sessionsExpired)
        },
        MetricDefinition("subscriptions", .gauge, "Subscriptions held by sessions.") { count($0.router.subscriptions) },
        MetricDefinition("retained_messages", .gauge, "Retained messages stored.") {
            count($0.router.retainedMessages)
        },

        // MARK: Messages and bytes
        MetricDefinition("messages_received_total", .counter, "PUBLISH packets received from clients, by QoS.",
                         series: byQoS({ $0.router.publishReceivedQoS0 }, { $0.router.publishReceivedQoS1 },
                                       { $0.router.publishReceivedQoS2 })),
        MetricDefinition("messages_sent_total", .counter, "PUBLISH packets written to clients (resends included), by QoS.",
                         series: byQoS({ $0.router.publishSentQoS0 }, { $0.router.publishSentQoS1 },
                                       { $0.router.publishSentQoS2 })),
        MetricDefinition("publish_payload_bytes_received_total", .counter,
                         "Application payload bytes of PUBLISH packets received, by QoS.",
                         series: byQoS({ $0.router.publishPayloadBytesReceivedQoS0 },
                                       { $0.router.publishPayloadBytesReceivedQoS1 },
                                       { $0.router.publishPayloadBytesReceivedQoS2 })),
        MetricDefinition("publish_payload_bytes_sent_total", .counter,
                         "Application payload bytes of PUBLISH packets written to clients, by QoS.",
                         series: byQoS({ $0.router.publishPayloadBytesSentQoS0 },
                                       { $0.router.publishPayloadBytesSentQoS1 },
                                       { $0.router.publishPayloadBytesSentQoS2 })),
        MetricDefinition("packets_received_total", .counter, "MQTT control packets received (every type).") {
            count($0.router.packetsReceived)
        },
        MetricDefinition("packets_sent_total", .counter, "MQTT control packets written (every type).") {
            count($0.router.packetsSent)
        },
        MetricDefinition("bytes_received_total", .counter, "Bytes read from sockets (metrics listener included).") {
            $0.runtime.bytesReceived
        },
        MetricDefinition("bytes_sent_total", .counter, "Bytes written to sockets (metrics listener included).") {
            $0.runtime.bytesSent
        },
        MetricDefinition("redeliveries_total", .counter, "QoS 1/2 messages sent again with DUP.") {
            count($0.router.redeliveries)
        },
        MetricDefinition("topic_aliases_to_clients_total", .counter,
                         "Topic aliases the broker set towards clients (5.0), one per topic and connection.") {
            count($0.router.topicAliasesToClients)
        },
        MetricDefinition("wills_published_total", .counter, "Will messages published.") {
            count($0.router.willsPublished)
        },

        // MARK: Drops and backpressure
        MetricDefinition("messages_dropped_total", .counter, "Messages dropped, by reason.",
                         series: labelled("reason", [
                            ("outbound_full", { count($0.router.droppedOutboundFull) }),
                            ("session_queue_full", { count($0.router.droppedSessionQueueFull) }),
                            ("expired", { count($0.router.droppedExpired) }),
                            ("too_large_for_client", { count($0.router.droppedTooLargeForClient) }),
                            ("offline_qos0", { count($0.router.droppedOfflineQoS0) }),
                            ("mesh_refused", { count($0.router.droppedMeshRefused) }),
                            ("not_authorized", { count($0.router.droppedNotAuthorized) }),
                            ("no_shared_member", { count($0.router.droppedNoSharedMember) }),
                         ])),
        MetricDefinition("control_packets_dropped_total", .counter,
                         "Acknowledgements and other control packets dropped because the outbound queue was full.") {
            count($0.router.droppedControlOutboundFull)
        },
        MetricDefinition("outbound_full_deferrals_total", .counter,
                         "QoS 1/2 writes deferred because the connection's outbound queue was full.") {
            count($0.router.outboundFullDeferrals)
        },
        MetricDefinition("enqueue_refused_total", .counter, "Writes refused by the per-connection outbound byte bound.") {
            $0.runtime.enqueueRefused
        },
        MetricDefinition("session_queue_dropped_total", .counter,
                         "QoS 1/2 messages that found their session queue full (drop_newest, drop_oldest or disconnect), by QoS.",
                         series: labelled("qos", [
                            ("1", { count($0.router.droppedSessionQueueFullQoS1) }),
                            ("2", { count($0.router.droppedSessionQueueFullQoS2) }),
                         ])),
        MetricDefinition("slow_clients_disconnected_total", .counter,
                         "Clients disconnected for staying stalled past queue_full_disconnect_seconds, or by the "
                            + "disconnect queue policy (0x97 Quota exceeded in 5.0).") {
            count($0.router.slowClientsDisconnected)
        },
        MetricDefinition("publishers_paused_total", .counter,
                         "Times a publisher stopped being read (backpressure), by cause.",
                         series: labelled("reason", [
                            ("mesh_full", { count($0.router.publishersPausedForMesh) }),
                            ("queued_bytes_budget", { count($0.router.publishersPausedForBudget) }),
                         ])),
        MetricDefinition("budget_pressure_trips_total", .counter,
                         "Times the shard's held bytes reached its share of queued_bytes_budget.") {
            count($0.router.budgetPressureTrips)
        },
        MetricDefinition("paused_publishers", .gauge,
                         "Publishers not being read now (mesh full or queued-bytes budget reached), by cause.",
                         series: labelled("reason", [
                            ("mesh_full", { count($0.routerGauges.pausedPublishers) }),
                            ("queued_bytes_budget", { count($0.routerGauges.budgetPausedPublishers) }),
                         ])),
        MetricDefinition("queued_bytes_held", .gauge,
                         "Bytes of QoS 1/2 deliveries held in sessions (queued or in flight), as counted against "
                            + "queued_bytes_budget.") {
            count($0.routerGauges.queuedBytesHeld)
        },
        MetricDefinition("under_pressure", .gauge,
                         "1 while the shard's held bytes are over its share of queued_bytes_budget.") {
            $0.routerGauges.underPressure ? 1 : 0
        },
        MetricDefinition("reading_paused_connections", .gauge, "Connections whose socket reading is paused.") {
            count($0.runtimeGauges.readingPausedConnections)
        },

        // MARK: Queues and rings
        MetricDefinition("session_queued_messages", .gauge,
                         "QoS 1/2 messages queued in sessions (offline, or waiting for the inflight window).") {
            count($0.routerGauges.sessionQueuedMessages)
        },
        MetricDefinition("inflight_messages", .gauge, "Outgoing QoS 1/2 messages awaiting acknowledgement.") {
            count($0.routerGauges.inflightMessages)
        },
        MetricDefinition("outbound_queued_bytes", .gauge, "Bytes queued to sockets and not yet written.") {
            count($0.runtimeGauges.outboundBytesQueued)
        },
        MetricDefinition("mesh_ring_occupancy_messages", .gauge,
                         "Messages in the shard's outgoing mesh rings not yet taken by the receiving shard.") {
            count($0.runtimeGauges.meshRingOccupancy)
        },
        MetricDefinition("mesh_ring_occupancy_max_messages", .gauge, "Occupancy of the shard's fullest outgoing ring.") {
            count($0.runtimeGauges.meshRingOccupancyMax)
        },
        MetricDefinition("mesh_overflow_messages", .gauge, "Messages waiting in overflow lists because a ring was full.") {
            count($0.runtimeGauges.meshOverflowMessages)
        },
        MetricDefinition("mesh_backlog_messages", .gauge, "Messages the mesh refused, waiting in the router for a retry.") {
            count($0.routerGauges.meshBacklogMessages)
        },
        MetricDefinition("mesh_messages_sent_total", .counter, "Messages sent to other shards.") { $0.runtime.meshSent },
        MetricDefinition("mesh_messages_received_total", .counter, "Messages received from other shards.") {
            $0.runtime.meshReceived
        },
        MetricDefinition("mesh_overflow_total", .counter, "Messages that went to an overflow list (ring full).") {
            $0.runtime.meshOverflowQueued
        },
        MetricDefinition("mesh_refused_total", .counter, "Messages refused because an overflow list was at its cap.") {
            $0.runtime.meshRefused
        },
        MetricDefinition("doorbells_total", .counter, "Wake-ups rung to sleeping shards.") { $0.runtime.doorbellsRung },

        // MARK: Loop and I/O
        MetricDefinition("loop_turns_total", .counter, "Event-loop turns.") { $0.runtime.turns },
        MetricDefinition("loop_sleeps_total", .counter, "Event-loop turns that ended waiting in the kernel.") {
            $0.runtime.sleeps
        },
        MetricDefinition("sends_total", .counter, "Send requests submitted (at most one per connection per turn).") {
            $0.runtime.sendsSubmitted
        },
        MetricDefinition("short_sends_total", .counter, "Sends that wrote less than asked.") { $0.runtime.shortSends },
        MetricDefinition("receive_buffers_exhausted_total", .counter,
                         "Multishot receives stopped because the provided-buffer ring ran dry.") {
            $0.runtime.receiveNoBuffers
        },
        MetricDefinition("metrics_requests_total", .counter, "Requests answered by the metrics listener, by status code.",
                         series: labelled("code", [
                            ("200", { count($0.requests.ok) }),
                            ("400", { count($0.requests.badRequest) }),
                            ("404", { count($0.requests.notFound) }),
                            ("405", { count($0.requests.methodNotAllowed) }),
                            ("431", { count($0.requests.headerTooLarge) }),
                            ("503", { count($0.requests.unavailable) }),
                            ("505", { count($0.requests.versionNotSupported) }),
                         ])),
    ]
}

// MARK: - MetricsExposition

/// Renders shard snapshots in the Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines,
/// then one sample per line. Each family appears as a broker-wide total (`shoal_<name>`) and per shard
/// (`shoal_shard_<name>{shard="N"}`). Counters end in `_total`. Control plane: it allocates freely.
public enum MetricsExposition {
    /// The `Content-Type` of the exposition.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The loop-turn histogram's bucket bounds as `le` labels (seconds), matching
    /// `TurnDurationHistogram.upperBoundsNanos`, then `+Inf`.
    static let turnBucketLabels = [
        "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
        "0.05", "0.1", "0.25", "+Inf",
    ]

    /// Renders the exposition.
    /// - Parameters:
    ///   - snapshots: every shard's latest snapshot in shard order; nil for a shard that has not reported (it is
    ///     left out of the per-shard series and the totals, and `shoal_shards_reporting` says so).
    ///   - uptimeSeconds: seconds since the broker started.
    public static func render(snapshots: [ShardSnapshot?], uptimeSeconds: UInt64) -> String {
        var text = ""
        text.reserveCapacity(4096 + snapshots.count * 8192)
        let reporting = snapshots.enumerated().compactMap { shard, snapshot in snapshot.map { (shard, $0) } }

        family(&text, "shoal_build_info", .gauge, "Shoal's version, as a label.")
        text += "shoal_build_info{version=\"\(shoalVersion)\"} 1\n"
        family(&text, "shoal_uptime_seconds", .gauge, "Seconds since the broker started.")
        text += "shoal_uptime_seconds \(uptimeSeconds)\n"
        family(&text, "shoal_shards", .gauge, "Shards (threads with their own io_uring ring) the broker runs.")
        text += "shoal_shards \(snapshots.count)\n"
        family(&text, "shoal_shards_reporting", .gauge, "Shards whose snapshot this scrape could read.")
        text += "shoal_shards_reporting \(reporting.count)\n"

        for definition in definitions {
            let total = "shoal_\(definition.name)"
            family(&text, total, definition.type, definition.help)
            for series in definition.series {
                var sum: UInt64 = 0
                for (_, snapshot) in reporting { sum &+= series.value(snapshot) }
                sample(&text, total, labels: series.labels, sum)
            }
            let perShard = "shoal_shard_\(definition.name)"
            family(&text, perShard, definition.type, definition.help + " Per shard.")
            for series in definition.series {
                for (shard, snapshot) in reporting {
                    let labels = series.labels.isEmpty ? "shard=\"\(shard)\"" : "shard=\"\(shard)\",\(series.labels)"
                    sample(&text, perShard, labels: labels, series.value(snapshot))
                }
            }
        }

        let help = "Busy time of one event-loop turn (completions, routing, flush), sleep excluded."
        var total = TurnDurationHistogram()
        for (_, snapshot) in reporting {
            let histogram = snapshot.runtime.turnDurations
            for bucket in 0..<TurnDurationHistogram.bucketCount { total.counts[bucket] &+= histogram.counts[bucket] }
            total.sumNanos &+= histogram.sumNanos
            total.count &+= histogram.count
        }
        family(&text, "shoal_loop_turn_duration_seconds", .histogram, help)
        histogram(&text, "shoal_loop_turn_duration_seconds", labels: "", total)
        family(&text, "shoal_shard_loop_turn_duration_seconds", .histogram, help + " Per shard.")
        for (shard, snapshot) in reporting {
            histogram(&text, "shoal_shard_loop_turn_duration_seconds", labels: "shard=\"\(shard)\"",
                      snapshot.runtime.turnDurations)
        }
        return text
    }

    // MARK: - Lines

    static func family(_ text: inout String, _ name: String, _ type: MetricType, _ help: String) {
        text += "# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) \(type.rawValue)\n"
    }

    static func sample(_ text: inout String, _ name: String, labels: String, _ value: UInt64) {
        text += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
    }

    static func histogram(_ text: inout String, _ name: String, labels: String, _ histogram: TurnDurationHistogram) {
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative: UInt64 = 0
        for bucket in 0..<TurnDurationHistogram.bucketCount {
            cumulative &+= histogram.counts[bucket]
            text += "\(name)_bucket{\(prefix)le=\"\(turnBucketLabels[bucket])\"} \(cumulative)\n"
        }
        let sum = formatSeconds(nanos: histogram.sumNanos)
        text += labels.isEmpty ? "\(name)_sum \(sum)\n" : "\(name)_sum{\(labels)} \(sum)\n"
        text += labels.isEmpty ? "\(name)_count \(histogram.count)\n" : "\(name)_count{\(labels)} \(histogram.count)\n"
    }

    /// Nanoseconds as decimal seconds with nine fraction digits ("1.000250000"): exact, and what Prometheus parses.
    static func formatSeconds(nanos: UInt64) -> String {
        let fraction = String(nanos % 1_000_000_000)
        return "\(nanos / 1_000_000_000)." + String(repeating: "0", count: 9 - fraction.count) + fraction
    }

    /// HELP text escapes backslash and line feed (exposition format 0.0.4).
    static func escapeHelp(_ help: String) -> String {
        guard help.contains("\\") || help.contains("\n") else { return help }
        var escaped = ""
        for character in help {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
