import MQTTRouter
import ShardRuntime
import Testing
@testable import Broker

/// A snapshot whose figures depend on `seed`, so two shards differ.
private func snapshot(seed: Int) -> ShardSnapshot {
    var snapshot = ShardSnapshot()
    snapshot.router.publishReceivedQoS0 = 10 * seed
    snapshot.router.publishReceivedQoS1 = 20 * seed
    snapshot.router.publishSentQoS2 = 3 * seed
    snapshot.router.connectionsAccepted = 7 + seed
    snapshot.router.droppedSessionQueueFullQoS1 = seed
    snapshot.routerGauges.connections = 2 * seed
    snapshot.routerGauges.sessions = 5 * seed
    snapshot.runtime.bytesReceived = UInt64(1000 * seed)
    snapshot.runtime.acceptRefused = UInt64(seed)
    snapshot.runtimeGauges.meshRingOccupancy = seed
    snapshot.requests.ok = seed
    for nanos in [5_000, 20_000, 20_000, 300_000_000] where seed > 0 {
        snapshot.runtime.turnDurations.record(nanos: UInt64(nanos * seed))
    }
    return snapshot
}

/// The exposition's samples: name with labels → value.
private func samples(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let parts = line.split(separator: " ")
        result[String(parts[0])] = String(parts[1])
    }
    return result
}

@Suite("Metrics exposition")
struct MetricsExpositionTests {
    @Test func everyLineIsWellFormedAndEveryFamilyDeclaredOnceBeforeItsSamples() {
        // Proves the text follows exposition format 0.0.4: HELP then TYPE once per family, samples after their
        // family's TYPE, names and label syntax valid, counters ending in _total, values numeric.
        let text = MetricsExposition.render(snapshots: [snapshot(seed: 1), snapshot(seed: 2)], uptimeSeconds: 42)
        #expect(text.hasSuffix("\n"))
        var declared: [String: String] = [:]
        var current: String? = nil
        var sampleCount = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let parts = line.split(separator: " ", maxSplits: 3)
            if line.hasPrefix("# HELP ") {
                let name = String(parts[2])
                #expect(declared[name] == nil, "\(name) declared twice")
                #expect(parts.count == 4 && !parts[3].isEmpty, "\(name) has no help text")
                current = name
            } else if line.hasPrefix("# TYPE ") {
                let name = String(parts[2])
                #expect(name == current, "TYPE of \(name) does not follow its HELP")
                let type = String(parts[3])
                #expect(["counter", "gauge", "histogram"].contains(type))
                if type == "counter" { #expect(name.hasSuffix("_total"), "counter \(name) must end in _total") }
                declared[name] = type
            } else {
                sampleCount += 1
                let sample = String(parts[0])
                let name = sample.split(separator: "{").first.map(String.init) ?? sample
                #expect(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && name.hasPrefix("shoal_"),
                        "bad metric name \(name)")
                let family = declared[name] != nil ? name
                    : ["_bucket", "_sum", "_count"].compactMap { suffix in
                        name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
                    }.first { declared[$0] == "histogram" }
                #expect(family != nil && family == current, "sample \(sample) outside its family")
                if sample.contains("{") {
                    #expect(sample.hasSuffix("}"))
                    let labels = sample.drop { $0 != "{" }.dropFirst().dropLast()
                    for pair in labels.split(separator: ",") {
                        let keyValue = pair.split(separator: "=", maxSplits: 1)
                        #expect(keyValue.count == 2 && keyValue[1].hasPrefix("\"") && keyValue[1].hasSuffix("\""),
                                "bad label \(pair) in \(sample)")
                    }
                }
                #expect(parts.count == 2 && Double(parts[1]) != nil, "bad value in \(line)")
            }
        }
        #expect(sampleCount > 200)
        for name in ["shoal_tls_handshakes_total", "shoal_paused_publishers", "shoal_retained_messages",
                     "shoal_mesh_ring_occupancy_messages", "shoal_mesh_overflow_total", "shoal_session_queued_messages",
                     "shoal_connections_refused_total", "shoal_messages_dropped_total", "shoal_subscriptions",
                     "shoal_sessions", "shoal_connections", "shoal_loop_turn_duration_seconds"] {
            #expect(declared[name] != nil, "\(name) missing")
        }
    }

    @Test func totalsAreTheSumOfTheShardSeries() {
        let values = samples(MetricsExposition.render(snapshots: [snapshot(seed: 1), snapshot(seed: 2)],
                                                      uptimeSeconds: 0))
        #expect(values["shoal_messages_received_total{qos=\"0\"}"] == "30")
        #expect(values["shoal_shard_messages_received_total{shard=\"0\",qos=\"0\"}"] == "10")
        #expect(values["shoal_shard_messages_received_total{shard=\"1\",qos=\"0\"}"] == "20")
        #expect(values["shoal_messages_received_total{qos=\"1\"}"] == "60")
        #expect(values["shoal_messages_sent_total{qos=\"2\"}"] == "9")
        #expect(values["shoal_connections_accepted_total"] == "17")
        #expect(values["shoal_connections"] == "6")
        #expect(values["shoal_shard_connections{shard=\"1\"}"] == "4")
        #expect(values["shoal_bytes_received_total"] == "3000")
        #expect(values["shoal_connections_refused_total{reason=\"shard_full\"}"] == "3")
        #expect(values["shoal_messages_dropped_total{reason=\"session_queue_full\"}"] == "3")
        #expect(values["shoal_mesh_ring_occupancy_messages"] == "3")
        #expect(values["shoal_metrics_requests_total{code=\"200\"}"] == "3")
        #expect(values["shoal_tls_handshakes_total{result=\"success\"}"] == "0")
        #expect(values["shoal_shards"] == "2")
        #expect(values["shoal_shards_reporting"] == "2")
    }

    @Test func histogramBucketsAreCumulativeAndEndInTheCount() {
        let values = samples(MetricsExposition.render(snapshots: [snapshot(seed: 1)], uptimeSeconds: 0))
        // seed 1 records 5 µs, 20 µs, 20 µs and 300 ms.
        let name = "shoal_shard_loop_turn_duration_seconds"
        #expect(values["\(name)_bucket{shard=\"0\",le=\"1e-05\"}"] == "1")
        #expect(values["\(name)_bucket{shard=\"0\",le=\"2.5e-05\"}"] == "3")
        #expect(values["\(name)_bucket{shard=\"0\",le=\"0.25\"}"] == "3")
        #expect(values["\(name)_bucket{shard=\"0\",le=\"+Inf\"}"] == "4")
        #expect(values["\(name)_count{shard=\"0\"}"] == "4")
        #expect(values["\(name)_sum{shard=\"0\"}"] == "0.300045000")
        #expect(values["shoal_loop_turn_duration_seconds_bucket{le=\"+Inf\"}"] == "4")
        #expect(MetricsExposition.turnBucketLabels.count == TurnDurationHistogram.bucketCount)
        #expect(TurnDurationHistogram.upperBoundsNanos.count == TurnDurationHistogram.bucketCount - 1)
    }

    @Test func histogramRecordsOnBucketBoundaries() {
        // Each finite bound is inclusive (Prometheus' `le`): a duration equal to it lands in its bucket.
        var histogram = TurnDurationHistogram()
        for (bucket, bound) in TurnDurationHistogram.upperBoundsNanos.enumerated() {
            histogram.record(nanos: bound)
            #expect(histogram.counts[bucket] == 1, "bound \(bound)")
            histogram.record(nanos: bound + 1)
            #expect(histogram.counts[bucket + 1] == 1, "above bound \(bound)")
            histogram = TurnDurationHistogram()
        }
    }

    @Test func shardsThatHaveNotReportedAreLeftOut() {
        let values = samples(MetricsExposition.render(snapshots: [nil, snapshot(seed: 2)], uptimeSeconds: 0))
        #expect(values["shoal_shards"] == "2")
        #expect(values["shoal_shards_reporting"] == "1")
        #expect(values["shoal_messages_received_total{qos=\"0\"}"] == "20")
        #expect(values["shoal_shard_messages_received_total{shard=\"0\",qos=\"0\"}"] == nil)
        #expect(values["shoal_shard_messages_received_total{shard=\"1\",qos=\"0\"}"] == "20")
    }

    @Test func helpTextIsEscaped() {
        #expect(MetricsExposition.escapeHelp("a\\b\nc") == "a\\\\b\\nc")
        #expect(MetricsExposition.formatSeconds(nanos: 1_000_250_000) == "1.000250000")
        #expect(MetricsExposition.formatSeconds(nanos: 7) == "0.000000007")
    }
}

@Suite("Metrics board")
struct MetricsBoardTests {
    @Test func readsWhatTheShardWrote() {
        let board = MetricsBoard(shardCount: 2)
        #expect(board.snapshot(of: 0) == nil, "nothing before the first snapshot")
        let written = snapshot(seed: 3)
        board.publish(written, shard: 1)
        #expect(board.snapshot(of: 1) == written)
        #expect(board.snapshot(of: 0) == nil)
        #expect(board.snapshots() == [nil, written])
    }

    @Test func aReaderNeverSeesAHalfWrittenSnapshot() async {
        // Proves the seqlock: a writer publishes snapshots whose every field holds the same generation number while
        // a reader on another thread reads; every snapshot read must be whole (all fields equal).
        let board = MetricsBoard(shardCount: 1)
        func uniform(_ generation: Int) -> ShardSnapshot {
            var snapshot = ShardSnapshot()
            snapshot.takenAtMillis = UInt64(generation)
            snapshot.router.packetsReceived = generation
            snapshot.router.publishSentQoS1 = generation
            snapshot.runtime.turns = UInt64(generation)
            snapshot.runtime.turnDurations.counts[14] = UInt64(generation)
            snapshot.connectionsMax = generation
            snapshot.tlsHandshakeFailures = generation
            return snapshot
        }
        let generations = 100_000
        let writer = Task.detached {
            for generation in 1...generations { board.publish(uniform(generation), shard: 0) }
        }
        let reader = Task.detached { () async -> (reads: Int, torn: Int) in
            var reads = 0
            var torn = 0
            var last = 0
            while last < generations {
                guard let read = board.snapshot(of: 0) else {
                    await Task.yield()
                    continue
                }
                reads += 1
                let generation = read.router.packetsReceived
                if read != uniform(generation) || generation < last { torn += 1 }
                last = generation
            }
            return (reads, torn)
        }
        await writer.value
        let (reads, torn) = await reader.value
        #expect(reads > 0)
        #expect(torn == 0)
    }
}
