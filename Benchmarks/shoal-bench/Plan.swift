import MQTTCodec
import Synchronization

// MARK: - Connection plan

/// What one connection does.
enum Role: UInt8 {
    case publisher
    case subscriber
    /// Subscribes like a subscriber, then never reads its socket.
    case stalled
    /// Connects and does nothing else.
    case idle
}

/// One connection to open: its role, the publisher it is (publishers) or the filter it subscribes to.
struct ConnectionSpec {
    var role: Role
    /// Global publisher index (publishers), else -1.
    var publisherIndex = -1
    /// Global index among healthy subscribers, else -1.
    var subscriberIndex = -1
    /// Topic a publisher publishes to.
    var topic = ""
    /// Filter a subscriber subscribes to.
    var filter = ""
    /// Publishers whose messages a healthy subscriber expects: `publisherRange`.
    var publisherRange = 0..<0
}

/// The connections of a run, spread over threads, and the figures needed to judge the outcome.
struct Plan {
    /// Connections per thread, subscribers first so that they are subscribed before anyone publishes.
    var threads: [[ConnectionSpec]]
    var publisherCount = 0
    var subscriberCount = 0
    var stalledCount = 0
    var idleCount = 0
    /// Healthy deliveries each published message should produce.
    var fanout = 1
    /// Whether a publisher's messages are split among members (shared): per-pair loss is then meaningless.
    var isShared = false

    var connectionCount: Int { threads.reduce(0) { $0 + $1.count } }

    init(options: Options) {
        let threadCount = options.threads
        var specs = [[ConnectionSpec]](repeating: [], count: threadCount)
        var publishers: [ConnectionSpec] = []
        var subscribers: [ConnectionSpec] = []
        switch options.effectiveScenario {
        case .fanIn:
            let count = options.publishers ?? 10
            for p in 0..<count {
                publishers.append(ConnectionSpec(role: .publisher, publisherIndex: p, topic: "bench/in/\(p)"))
            }
            subscribers.append(
                ConnectionSpec(role: .subscriber, subscriberIndex: 0, filter: "bench/in/+", publisherRange: 0..<count)
            )
            fanout = 1
        case .fanOut:
            let count = options.subscribers ?? 50
            publishers.append(ConnectionSpec(role: .publisher, publisherIndex: 0, topic: "bench/out"))
            for s in 0..<count {
                subscribers.append(
                    ConnectionSpec(role: .subscriber, subscriberIndex: s, filter: "bench/out", publisherRange: 0..<1)
                )
            }
            fanout = count
        case .pairs:
            let count = options.pairs ?? options.publishers ?? 50
            for i in 0..<count {
                publishers.append(ConnectionSpec(role: .publisher, publisherIndex: i, topic: "bench/pair/\(i)"))
                subscribers.append(
                    ConnectionSpec(
                        role: .subscriber, subscriberIndex: i, filter: "bench/pair/\(i)", publisherRange: i..<(i + 1)
                    )
                )
            }
            fanout = 1
        case .shared:
            let publisherCount = options.publishers ?? 4
            let memberCount = options.subscribers ?? 4
            for p in 0..<publisherCount {
                publishers.append(ConnectionSpec(role: .publisher, publisherIndex: p, topic: "bench/shared/\(p)"))
            }
            for s in 0..<memberCount {
                subscribers.append(
                    ConnectionSpec(
                        role: .subscriber, subscriberIndex: s, filter: "$share/g/bench/shared/+",
                        publisherRange: 0..<publisherCount
                    )
                )
            }
            fanout = 1
            isShared = true
        case .idle:
            for k in 0..<options.connections { specs[k % threadCount].append(ConnectionSpec(role: .idle)) }
            idleCount = options.connections
        case .slowSubscriber:
            preconditionFailure("slow-subscriber is resolved to its base scenario")
        case .handshakes:
            preconditionFailure("handshakes runs its own loop (HandshakeBench)")
        }
        // Pairs stay on one thread (the window check then wakes by the subscriber's own read); others round-robin.
        for subscriber in subscribers { specs[subscriber.subscriberIndex % threadCount].append(subscriber) }
        for k in 0..<(options.scenario == .slowSubscriber ? options.stalled : 0) {
            var stalled = subscribers[k % subscribers.count]
            stalled.role = .stalled
            stalled.subscriberIndex = -1
            specs[k % threadCount].append(stalled)
        }
        for publisher in publishers { specs[publisher.publisherIndex % threadCount].append(publisher) }
        threads = specs
        publisherCount = publishers.count
        subscriberCount = subscribers.count
        stalledCount = options.scenario == .slowSubscriber ? options.stalled : 0
    }
}

// MARK: - State shared between threads

/// What a publisher's subscribers tell it: how many of its messages arrived (drives the window).
final class PublisherCounter: Sendable {
    let delivered = Atomic<UInt64>(0)
}

/// One worker's running totals, stored once per loop turn, read by the main thread for progress lines.
final class WorkerProgress: Sendable {
    let sent = Atomic<UInt64>(0)
    let delivered = Atomic<UInt64>(0)
    let ready = Atomic<Int>(0)
}

/// The run's phases, advanced only by the main thread.
enum Phase: Int {
    /// Connecting and subscribing.
    case setup = 0
    /// Publishing (warmup, then measuring, then draining: told apart by the deadlines).
    case running = 1
    /// Close everything and exit.
    case stop = 2
}

/// Everything the threads share; only atomics and values fixed before the threads start.
final class SharedState: Sendable {
    let phase = Atomic<Int>(Phase.setup.rawValue)
    /// When publishing starts, when measuring starts and ends (CLOCK_MONOTONIC ns); written before `phase`
    /// becomes `running` (release), read after (acquire).
    let runStartNanos = Atomic<UInt64>(0)
    let measureStartNanos = Atomic<UInt64>(0)
    let measureEndNanos = Atomic<UInt64>(0)
    let publishers: [PublisherCounter]
    let progress: [WorkerProgress]
    let failed = Atomic<Bool>(false)
    let failures = Mutex<[String]>([])

    init(publisherCount: Int, threadCount: Int) {
        publishers = (0..<publisherCount).map { _ in PublisherCounter() }
        progress = (0..<threadCount).map { _ in WorkerProgress() }
    }

    /// Records a failure that ends the run.
    func fail(_ message: String) {
        failures.withLock { $0.append(message) }
        failed.store(true, ordering: .releasing)
    }
}
