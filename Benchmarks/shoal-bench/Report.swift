#if canImport(Glibc)
import Glibc
#endif
import MQTTCodec

// MARK: - Report

/// Every figure of a run: the summary table on stdout and, with `--json`, one JSON line.
struct Report {
    let options: Options
    let plan: Plan
    var measuredSeconds = 0.0
    var setupSeconds = 0.0
    var connectSeconds = 0.0
    var sentMeasured: UInt64 = 0
    var deliveredMeasured: UInt64 = 0
    var payloadBytesDeliveredMeasured: UInt64 = 0
    var sentTotal: UInt64 = 0
    var deliveredTotal: UInt64 = 0
    var uniqueDelivered: UInt64 = 0
    var expectedDeliveries: UInt64 = 0
    var lost: UInt64 = 0
    var duplicates: UInt64 = 0
    var reordered: UInt64 = 0
    var unexpected: UInt64 = 0
    var lostConnections = 0
    var lostConnectionNotes: [String] = []
    var histogram = Histogram()
    var generatorCPUSeconds = 0.0
    var workerCPUSeconds: [Double] = []
    var brokerCPUSeconds: Double? = nil
    var brokerRSSBaseline: UInt64? = nil
    var brokerRSS: UInt64? = nil
    var brokerRSSPeak: UInt64? = nil
    var brokerGone = false

    var publishedRate: Double { Double(sentMeasured) / measuredSeconds }
    var deliveredRate: Double { Double(deliveredMeasured) / measuredSeconds }
    var publishedMBps: Double { publishedRate * Double(options.payloadByteCount) / 1e6 }
    var deliveredMBps: Double { Double(payloadBytesDeliveredMeasured) / measuredSeconds / 1e6 }
    /// Broker CPU per delivered message (publish-side work included), in µs.
    var brokerMicrosPerMessage: Double? {
        guard let cpu = brokerCPUSeconds, deliveredMeasured > 0 else { return nil }
        return cpu * 1e6 / Double(deliveredMeasured)
    }
    var generatorCPUFraction: Double { generatorCPUSeconds / measuredSeconds }
    /// A worker thread busy for more than 90% of the measured interval cannot be trusted to have kept up.
    var saturatedThreads: Int { workerCPUSeconds.filter { $0 / measuredSeconds > 0.9 }.count }
    var isIdle: Bool { options.scenario == .idle }
    var rssPerConnection: Double? {
        guard let baseline = brokerRSSBaseline, let rss = brokerRSS, plan.idleCount > 0 else { return nil }
        return (Double(rss) - Double(baseline)) / Double(plan.idleCount)
    }

    func print() {
        var lines: [String] = []
        let scenarioName = options.scenario == .slowSubscriber
            ? "slow-subscriber(base \(options.slowBase.rawValue))" : options.scenario.rawValue
        let rateText = options.ratePerPublisher > 0 ? "\(rate(options.ratePerPublisher))/s per publisher" : "max"
        lines.append(
            "shoal-bench  scenario \(scenarioName)  MQTT \(options.protocolVersion)\(options.tls ? " over TLS" : "")"
                + "  QoS \(options.qos.rawValue)"
                + "  payload \(options.payloadByteCount) B  rate \(rateText)  window \(options.window)"
                + "  threads \(options.threads)  measured \(fixed(measuredSeconds, 1)) s"
        )
        lines.append(
            "connections   \(plan.publisherCount) publishers, \(plan.subscriberCount) subscribers"
                + (plan.stalledCount > 0 ? ", \(plan.stalledCount) stalled" : "")
                + (plan.idleCount > 0 ? ", \(plan.idleCount) idle" : "")
                + "; setup \(fixed(setupSeconds, 2)) s"
                + (isIdle ? ", \(rate(Double(plan.idleCount) / connectSeconds)) connects/s" : "")
        )
        if !isIdle {
            lines.append("published     \(rate(publishedRate)) msg/s   \(fixed(publishedMBps, 2)) MB/s payload")
            lines.append("delivered     \(rate(deliveredRate)) msg/s   \(fixed(deliveredMBps, 2)) MB/s payload")
            let h = histogram
            lines.append(
                "latency       p50 \(duration(h.quantile(0.5)))  p90 \(duration(h.quantile(0.9)))"
                    + "  p99 \(duration(h.quantile(0.99)))  p99.9 \(duration(h.quantile(0.999)))"
                    + "  max \(duration(h.maximum))  mean \(duration(UInt64(h.mean)))  (n \(h.total))"
            )
            lines.append(
                "integrity     lost \(lost)  duplicates \(duplicates)  reordered \(reordered)  unexpected \(unexpected)"
                    + "  (expected \(expectedDeliveries), unique \(uniqueDelivered)\(plan.isShared ? ", shared: loss only" : ""))"
            )
        }
        if options.brokerPID != nil {
            var broker = "broker        "
            if let cpu = brokerCPUSeconds {
                broker += "cpu \(fixed(cpu / measuredSeconds, 2)) s/s"
                if let micros = brokerMicrosPerMessage { broker += "  \(fixed(micros, 2)) µs/msg delivered" }
            }
            if let rss = brokerRSS { broker += "  rss \(mebibytes(rss))" }
            if let peak = brokerRSSPeak { broker += " (peak \(mebibytes(peak)))" }
            if let perConnection = rssPerConnection { broker += "  \(fixed(perConnection / 1024, 1)) KiB/connection" }
            if brokerGone { broker += "  BROKER EXITED" }
            lines.append(broker)
        }
        let perThread = workerCPUSeconds.map { percent($0 / measuredSeconds) }.joined(separator: " ")
        lines.append(
            "generator     cpu \(fixed(generatorCPUSeconds / measuredSeconds, 2)) s/s over \(options.threads) thread(s)"
                + "  per thread [\(perThread)]" + (saturatedThreads > 0 ? "  SATURATED" : "")
        )
        if lostConnections > 0 {
            lines.append("disconnects   \(lostConnections): " + lostConnectionNotes.joined(separator: "; "))
        }
        for line in lines { Swift.print(line) }
        if options.json { Swift.print(json) }
    }

    var json: String {
        var fields: [(String, String)] = []
        func add(_ key: String, _ value: String) { fields.append((key, value)) }
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return fixed(value, 3)
        }
        func text(_ value: String) -> String {
            var escaped = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case _ where scalar.value < 0x20: escaped += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
                default: escaped.unicodeScalars.append(scalar)
                }
            }
            return escaped + "\""
        }
        let h = histogram
        add("label", text(options.label))
        add("scenario", text(options.scenario.rawValue))
        add("base", text(options.effectiveScenario.rawValue))
        add("protocol", "\(options.protocolVersion.rawValue)")
        add("tls", options.tls ? "true" : "false")
        add("qos", "\(options.qos.rawValue)")
        add("payload_bytes", "\(options.payloadByteCount)")
        add("rate_per_publisher", number(options.ratePerPublisher))
        add("window", "\(options.window)")
        add("threads", "\(options.threads)")
        add("warmup_s", number(options.warmupSeconds))
        add("duration_s", number(measuredSeconds))
        add("publishers", "\(plan.publisherCount)")
        add("subscribers", "\(plan.subscriberCount)")
        add("stalled", "\(plan.stalledCount)")
        add("idle_connections", "\(plan.idleCount)")
        add("setup_s", number(setupSeconds))
        add("connects_per_s", number(plan.connectionCount > 0 ? Double(plan.connectionCount) / connectSeconds : nil))
        add("published_msgs", "\(sentMeasured)")
        add("delivered_msgs", "\(deliveredMeasured)")
        add("published_msg_per_s", number(publishedRate))
        add("delivered_msg_per_s", number(deliveredRate))
        add("published_mb_per_s", number(publishedMBps))
        add("delivered_mb_per_s", number(deliveredMBps))
        add("latency_samples", "\(h.total)")
        add("latency_p50_us", number(Double(h.quantile(0.5)) / 1e3))
        add("latency_p90_us", number(Double(h.quantile(0.9)) / 1e3))
        add("latency_p99_us", number(Double(h.quantile(0.99)) / 1e3))
        add("latency_p999_us", number(Double(h.quantile(0.999)) / 1e3))
        add("latency_max_us", number(Double(h.maximum) / 1e3))
        add("latency_mean_us", number(h.mean / 1e3))
        add("sent_total", "\(sentTotal)")
        add("delivered_total", "\(deliveredTotal)")
        add("expected_deliveries", "\(expectedDeliveries)")
        add("unique_deliveries", "\(uniqueDelivered)")
        add("lost", "\(lost)")
        add("duplicates", "\(duplicates)")
        add("reordered", "\(reordered)")
        add("unexpected", "\(unexpected)")
        add("disconnects", "\(lostConnections)")
        add("broker_cpu_s", number(brokerCPUSeconds))
        add("broker_cpu_us_per_msg", number(brokerMicrosPerMessage))
        add("broker_rss_bytes", brokerRSS.map { "\($0)" } ?? "null")
        add("broker_rss_peak_bytes", brokerRSSPeak.map { "\($0)" } ?? "null")
        add("broker_rss_baseline_bytes", brokerRSSBaseline.map { "\($0)" } ?? "null")
        add("broker_rss_per_connection_bytes", number(rssPerConnection))
        add("broker_exited", brokerGone ? "true" : "false")
        add("generator_cpu_s", number(generatorCPUSeconds))
        add("generator_cpu_fraction", number(generatorCPUFraction))
        add("generator_thread_cpu_fraction", "[" + workerCPUSeconds.map { number($0 / measuredSeconds) }.joined(separator: ",") + "]")
        add("generator_saturated", saturatedThreads > 0 ? "true" : "false")
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }
}
