#if canImport(Glibc)
import Glibc
#endif
import MQTTCodec
import Synchronization

// MARK: - Run

/// Drives one benchmark run: plan, threads, phases, samples, report.
enum Bench {
    static func main(_ arguments: [String]) -> Int32 {
        let options = Options.parse(arguments)
        guard let target = TargetAddress(host: options.host, port: options.port) else {
            printError("shoal-bench: --host \(options.host): not an IPv4 or IPv6 literal (or localhost)")
            return 2
        }
        guard target.isLoopback || options.allowRemote else {
            printError("shoal-bench: refusing target \(options.host) outside 127.0.0.0/8 and ::1 (use --allow-remote)")
            return 2
        }
        signal(SIGPIPE, SIG_IGN)
        var tls: ClientTLS? = nil
        if options.tls {
            guard let context = ClientTLS(caFile: options.caFile) else { return 2 }
            tls = context
        }
        if options.scenario == .handshakes {
            startWatchdog(seconds: options.warmupSeconds + options.durationSeconds + 30)
            return HandshakeBench.run(options: options, target: target, tls: tls!)
        }
        let plan = Plan(options: options)
        let fileLimit = raiseFileLimit()
        if plan.connectionCount + 64 > fileLimit {
            printError("shoal-bench: \(plan.connectionCount) connections need more descriptors than RLIMIT_NOFILE \(fileLimit)")
            return 2
        }
        startWatchdog(seconds: options.warmupSeconds + options.durationSeconds + 30)

        let shared = SharedState(publisherCount: plan.publisherCount, threadCount: options.threads)
        let workers = plan.threads.enumerated().map { index, specs in
            Worker(index: index, specs: specs, options: options, shared: shared, target: target, fanout: plan.fanout,
                   tls: tls)
        }
        let brokerBaseline = options.brokerPID.flatMap { ProcessSample.read(pid: $0) }
        if let pid = options.brokerPID, brokerBaseline == nil {
            printError("shoal-bench: --broker-pid \(pid): no such process (or /proc unreadable)")
            return 2
        }
        let threads = workers.map { worker in startThread { worker.run() } }
        func stopAndJoin() {
            shared.phase.store(Phase.stop.rawValue, ordering: .releasing)
            for thread in threads { pthread_join(thread, nil) }
        }

        // Setup: every connection connected (and subscribed) before anyone publishes.
        let setupStart = monotonicNanos()
        let setupDeadline = setupStart + 20_000_000_000
        while true {
            if shared.failed.load(ordering: .acquiring) {
                stopAndJoin()
                printFailures(shared)
                return 1
            }
            let ready = shared.progress.reduce(0) { $0 + $1.ready.load(ordering: .relaxed) }
            if ready == plan.connectionCount { break }
            if monotonicNanos() > setupDeadline {
                stopAndJoin()
                printError("shoal-bench: setup timed out: \(ready) of \(plan.connectionCount) connections ready after 20 s")
                return 1
            }
            sleepUntil(monotonicNanos() + 2_000_000)
        }
        let setupEnd = monotonicNanos()
        let firstConnect = workers.map(\.firstConnectNanos).filter { $0 > 0 }.min() ?? setupStart
        let lastReady = workers.map(\.lastReadyNanos).max() ?? setupEnd
        let connectSeconds = Double(max(lastReady - firstConnect, 1)) / 1e9

        let warmupNanos = UInt64(options.warmupSeconds * 1e9)
        let durationNanos = UInt64(options.durationSeconds * 1e9)
        let runStart = monotonicNanos()
        let measureStart = runStart + warmupNanos
        let measureEnd = measureStart + durationNanos
        shared.runStartNanos.store(runStart, ordering: .relaxed)
        shared.measureStartNanos.store(measureStart, ordering: .relaxed)
        shared.measureEndNanos.store(measureEnd, ordering: .relaxed)
        shared.phase.store(Phase.running.rawValue, ordering: .releasing)

        // Progress once per second; samples at the edges of the measured interval.
        var brokerStart: ProcessSample? = nil
        var brokerEnd: ProcessSample? = nil
        var cpuStart: UInt64 = 0
        var cpuEnd: UInt64 = 0
        var lastTick = runStart
        var lastSent: UInt64 = 0
        var lastDelivered: UInt64 = 0
        var lastBroker = brokerBaseline
        var lastCPU = processCPUNanos()
        var drainDeadline: UInt64 = 0
        var brokerGone = false
        func totals() -> (sent: UInt64, delivered: UInt64) {
            shared.progress.reduce((UInt64(0), UInt64(0))) {
                ($0.0 + $1.sent.load(ordering: .relaxed), $0.1 + $1.delivered.load(ordering: .relaxed))
            }
        }
        while true {
            let now = monotonicNanos()
            if brokerStart == nil && now >= measureStart {
                brokerStart = options.brokerPID.flatMap { ProcessSample.read(pid: $0) }
                cpuStart = processCPUNanos()
            }
            if brokerEnd == nil && now >= measureEnd {
                brokerEnd = options.brokerPID.flatMap { ProcessSample.read(pid: $0) }
                cpuEnd = processCPUNanos()
                drainDeadline = now + UInt64(options.drainSeconds * 1e9)
                if options.brokerPID != nil && brokerEnd == nil { brokerGone = true }
            }
            if now - lastTick >= 1_000_000_000 {
                let (sent, delivered) = totals()
                let seconds = Double(now - lastTick) / 1e9
                let cpu = processCPUNanos()
                var line = String(format1("t=%5.1fs", Double(now - runStart) / 1e9))
                line += now < measureStart ? " warmup " : (now < measureEnd ? " measure" : " drain  ")
                line += "  published \(rate(Double(sent - lastSent) / seconds))/s"
                line += "  delivered \(rate(Double(delivered - lastDelivered) / seconds))/s"
                if let pid = options.brokerPID {
                    if let sample = ProcessSample.read(pid: pid), let previous = lastBroker {
                        let brokerCPU = Double(sample.cpuNanos - previous.cpuNanos) / 1e9 / seconds
                        line += "  broker cpu \(percent(brokerCPU)) rss \(mebibytes(sample.residentBytes))"
                        lastBroker = sample
                    } else {
                        line += "  broker GONE"
                    }
                }
                line += "  generator cpu \(percent(Double(cpu - lastCPU) / 1e9 / seconds))"
                if !options.quiet { printError(line) }
                lastTick = now
                lastSent = sent
                lastDelivered = delivered
                lastCPU = cpu
            }
            if brokerEnd != nil || (options.brokerPID == nil && now >= measureEnd) {
                if drainDeadline == 0 { drainDeadline = now + UInt64(options.drainSeconds * 1e9) }
                let (sent, delivered) = totals()
                if delivered >= sent * UInt64(plan.fanout) || now >= drainDeadline { break }
            }
            if shared.failed.load(ordering: .relaxed) { break }
            sleepUntil(min(now + 20_000_000, now >= measureStart ? now + 20_000_000 : measureStart))
        }
        if cpuEnd == 0 { cpuEnd = processCPUNanos() }
        let brokerFinal = options.brokerPID.flatMap { ProcessSample.read(pid: $0) }
        stopAndJoin()
        printFailures(shared)

        var report = Report(options: options, plan: plan)
        report.measuredSeconds = options.durationSeconds
        report.setupSeconds = Double(setupEnd - setupStart) / 1e9
        report.connectSeconds = connectSeconds
        report.generatorCPUSeconds = Double(cpuEnd - max(cpuStart, 1) + (cpuStart == 0 ? 1 : 0)) / 1e9
        report.workerCPUSeconds = workers.map { Double($0.cpuNanosMeasured) / 1e9 }
        report.brokerGone = brokerGone || (options.brokerPID != nil && brokerFinal == nil)
        if let start = brokerStart, let end = brokerEnd {
            report.brokerCPUSeconds = Double(end.cpuNanos - start.cpuNanos) / 1e9
        }
        report.brokerRSSBaseline = brokerBaseline?.residentBytes
        report.brokerRSS = (brokerEnd ?? brokerFinal)?.residentBytes
        report.brokerRSSPeak = (brokerFinal ?? brokerEnd)?.residentPeakBytes
        var histogram = Histogram()
        var sentPerPublisher = [UInt64](repeating: 0, count: plan.publisherCount)
        for worker in workers {
            histogram.merge(worker.histogram)
            report.sentMeasured += worker.sentMeasured
            report.deliveredMeasured += worker.deliveredMeasured
            report.payloadBytesDeliveredMeasured += worker.payloadBytesDeliveredMeasured
            report.sentTotal += worker.sentTotal
            report.deliveredTotal += worker.deliveredTotal
            report.unexpected += worker.unexpectedMessages
            report.lostConnections += worker.lostConnections
            report.lostConnectionNotes += worker.lostConnectionNotes
            for pair in worker.pairs {
                report.duplicates += pair.duplicates
                report.reordered += pair.reordered
                report.uniqueDelivered += pair.received - pair.duplicates
            }
            for connection in worker.connections where connection.spec.role == .publisher {
                sentPerPublisher[connection.spec.publisherIndex] = connection.sent
            }
        }
        report.histogram = histogram
        let expected = sentPerPublisher.reduce(0, +) * UInt64(plan.fanout)
        report.expectedDeliveries = expected
        report.lost = expected > report.uniqueDelivered ? expected - report.uniqueDelivered : 0
        report.print()
        if shared.failed.load(ordering: .relaxed) { return 1 }
        return report.brokerGone ? 1 : 0
    }

    /// Kills the process if the run overstays: the last line of defence for unattended scripts.
    static func startWatchdog(seconds: Double) {
        let limit = UInt64(seconds * 1e9)
        _ = startThread {
            sleepUntil(monotonicNanos() + limit)
            printError("shoal-bench: hard time limit of \(Int(seconds)) s reached; exiting")
            _exit(3)
        }
    }
}

/// Prints the first failure (later ones are usually its echoes on other connections) and how many followed.
func printFailures(_ shared: SharedState) {
    let failures = shared.failures.withLock { $0 }
    guard let first = failures.first else { return }
    printError("shoal-bench: \(first)" + (failures.count > 1 ? " (and \(failures.count - 1) similar failures)" : ""))
}

// MARK: - Formatting

func format1(_ format: String, _ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, format, $0) }
    return String(cString: buffer)
}

func fixed(_ value: Double, _ digits: Int) -> String { format1("%.\(digits)f", value) }

func rate(_ value: Double) -> String {
    if value >= 1e6 { return fixed(value / 1e6, 2) + "M" }
    if value >= 1e3 { return fixed(value / 1e3, 1) + "k" }
    return fixed(value, 0)
}

func percent(_ fraction: Double) -> String { fixed(fraction * 100, 0) + "%" }

func mebibytes(_ bytes: UInt64) -> String { fixed(Double(bytes) / 1_048_576, 1) + " MiB" }

func duration(_ nanos: UInt64) -> String {
    if nanos >= 1_000_000_000 { return fixed(Double(nanos) / 1e9, 2) + " s" }
    if nanos >= 1_000_000 { return fixed(Double(nanos) / 1e6, 2) + " ms" }
    if nanos >= 1_000 { return fixed(Double(nanos) / 1e3, 1) + " µs" }
    return "\(nanos) ns"
}
