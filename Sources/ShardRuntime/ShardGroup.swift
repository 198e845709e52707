import CIOUring
import Glibc
import Synchronization

// MARK: - Threads

/// Starts a joinable pthread running `body`.
func startThread(name: String, _ body: sending @escaping () -> Void) throws(ShardRuntimeStartupError) -> pthread_t {
    final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    let box = Unmanaged.passRetained(Box {
        shoal_set_thread_name(name)
        body()
    }).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    if result != 0 {
        Unmanaged<Box>.fromOpaque(box).release()
        throw .threadCreationFailed(Errno(rawValue: result))
    }
    return thread
}

/// The CPUs in the process's affinity mask.
public func allowedCPUs() -> [Int] {
    var cpus = [Int32](repeating: 0, count: 1024)
    let count = shoal_allowed_cpus(&cpus, 1024)
    if count <= 0 { return [0] }
    return cpus[0..<Int(count)].map(Int.init)
}

// MARK: - Listeners

/// Opens one SO_REUSEPORT listening socket per shard for `listener`. With port 0 the first socket's ephemeral
/// port is read back and the others bind to it, so every shard shares one port.
func openListenerSockets(_ listener: ListenerConfiguration, count: Int, backlog: Int32)
    throws(ShardRuntimeStartupError) -> (fds: [Int32], port: UInt16) {
    guard var address = SocketAddress(host: listener.host, port: listener.port) else {
        throw .invalidAddress(listener.host)
    }
    var fds: [Int32] = []
    func fail(_ call: String, _ error: Errno) -> ShardRuntimeStartupError {
        for fd in fds { Glibc.close(fd) }
        switch (call, error.rawValue) {
        case ("bind", EADDRINUSE): return .addressInUse(host: listener.host, port: address.port)
        case ("bind", EACCES), ("bind", EPERM): return .permissionDenied(host: listener.host, port: address.port)
        case ("bind", EADDRNOTAVAIL): return .addressNotAvailable(host: listener.host, port: address.port)
        default: return .listenerFailed(host: listener.host, port: address.port, call: call, error)
        }
    }
    for shard in 0..<count {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw fail("socket", .current) }
        fds.append(fd)
        var one: Int32 = 1
        if setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) != 0
            || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw fail("setsockopt", .current)
        }
        if address.family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = address.withSockAddr { bind(fd, $0, $1) }
        if bound != 0 { throw fail("bind", .current) }
        if listen(fd, backlog) != 0 { throw fail("listen", .current) }
        if shard == 0 && address.port == 0 {
            address.port = SocketAddress.of(socket: fd, peer: false).port
        }
    }
    return (fds, address.port)
}

// MARK: - Startup latch

/// Shard threads report ready (or an error) here; the starter then tells them to run or abort.
final class StartupLatch: Sendable {
    private let state: Mutex<(reports: [ShardRuntimeStartupError?], reported: Int, decision: Int)>

    init(count: Int) { state = Mutex((Array(repeating: nil, count: count), 0, 0)) }

    func report(_ shard: Int, _ error: ShardRuntimeStartupError?) {
        state.withLock {
            $0.reports[shard] = error
            $0.reported += 1
        }
    }

    /// Waits until every shard reported; returns the first error.
    func waitForReports() -> ShardRuntimeStartupError? {
        while true {
            let done: (Bool, ShardRuntimeStartupError?) = state.withLock {
                ($0.reported == $0.reports.count, $0.reports.compactMap { $0 }.first)
            }
            if done.0 { return done.1 }
            usleep(500)
        }
    }

    func decide(run: Bool) { state.withLock { $0.decision = run ? 1 : 2 } }

    /// Waits for the starter's decision (shard side): true means run.
    func waitForDecision() -> Bool {
        while true {
            let decision = state.withLock { $0.decision }
            if decision != 0 { return decision == 1 }
            usleep(200)
        }
    }
}

// MARK: - ShardGroup

/// A running group of shards: one pinned thread each, each with its own io_uring ring, listening sockets
/// (SO_REUSEPORT), connection slab, timer wheel, and the SPSC mesh between them.
///
/// ```swift
/// let group = try ShardGroup<MyHandler>.start(configuration: config) { shard, shardCount in MyHandler(shard) }
/// let port = group.boundPorts[0]
/// group.stopOnTerminationSignal()   // after TerminationSignals.block() before start
/// group.wait()                      // or group.stop()
/// ```
public final class ShardGroup<Handler: ShardHandler>: @unchecked Sendable {
    /// Number of shards.
    public let shardCount: Int
    /// The bound port of each configured listener, in configuration order (the chosen port when 0 was asked).
    public let boundPorts: [UInt16]
    let controls: [ShardControl]
    private let threads: Mutex<[pthread_t]?>
    private let eventFDsOpen = Mutex(true)
    private let reloadHook = Mutex<(@Sendable () -> Void)?>(nil)

    private init(shardCount: Int, boundPorts: [UInt16], controls: [ShardControl], threads: [pthread_t]) {
        self.shardCount = shardCount
        self.boundPorts = boundPorts
        self.controls = controls
        self.threads = Mutex(threads)
    }

    /// Starts the shards and returns once every shard has its ring and is running.
    /// - Parameters:
    ///   - configuration: bounds and listeners.
    ///   - makeHandler: called once per shard, on that shard's thread, with its ID and the shard count.
    /// - Throws: `ShardRuntimeStartupError` naming the cause (address in use, permission, io_uring disabled,
    ///   ring limits...). Nothing is left running when it throws.
    public static func start(
        configuration: RuntimeConfiguration,
        makeHandler: @escaping @Sendable (ShardID, Int) -> Handler
    ) throws(ShardRuntimeStartupError) -> ShardGroup<Handler> {
        let cpus = configuration.cpus ?? allowedCPUs()
        guard !cpus.isEmpty else { throw .invalidConfiguration("an empty CPU list") }
        let shardCount = configuration.shardCount ?? cpus.count
        guard shardCount > 0 && shardCount <= 4096 else { throw .invalidConfiguration("shard count \(shardCount)") }
        guard configuration.outboundBytesMax > 0, configuration.receiveBufferBytes > 0 else {
            throw .invalidConfiguration("outboundBytesMax and receiveBufferBytes must be positive")
        }

        // Listeners: bound here, on the starting thread, so errors are reported synchronously.
        var listenerFDs: [[Int32]] = Array(repeating: [], count: shardCount)  // per shard
        var boundPorts: [UInt16] = []
        var opened: [[Int32]] = []
        for listener in configuration.listeners {
            do {
                let (fds, port) = try openListenerSockets(listener, count: shardCount, backlog: configuration.listenBacklog)
                opened.append(fds)
                boundPorts.append(port)
                for shard in 0..<shardCount { listenerFDs[shard].append(fds[shard]) }
            } catch {
                for fds in opened { for fd in fds { Glibc.close(fd) } }
                throw error
            }
        }
        func closeListeners() { for fds in opened { for fd in fds { Glibc.close(fd) } } }

        var controls: [ShardControl] = []
        for _ in 0..<shardCount {
            let fd = shoal_eventfd()
            if fd < 0 {
                for control in controls { Glibc.close(control.eventFD) }
                closeListeners()
                throw .eventFDFailed(Errno(rawValue: -fd))
            }
            controls.append(ShardControl(eventFD: fd))
        }
        let mesh = ShardMesh<MeshEnvelope<Handler.Message, Handler.ConnectionState>>(
            shardCount: shardCount, ringCapacity: configuration.meshRingCapacity)
        let latch = StartupLatch(count: shardCount)

        var threads: [pthread_t] = []
        for shard in 0..<shardCount {
            let cpu = cpus[shard % cpus.count]
            let fds = listenerFDs[shard]
            let allControls = controls
            do {
                let thread = try startThread(name: "shard-\(shard)") {
                    runShard(shard: shard, shardCount: shardCount, cpu: configuration.pinThreads ? cpu : nil,
                             configuration: configuration, listenerFDs: fds, controls: allControls, mesh: mesh,
                             latch: latch, makeHandler: makeHandler)
                }
                threads.append(thread)
            } catch {
                for _ in threads.count..<shardCount { latch.report(0, nil) }
                _ = latch.waitForReports()
                latch.decide(run: false)
                for thread in threads { pthread_join(thread, nil) }
                for control in controls { Glibc.close(control.eventFD) }
                closeListeners()
                throw error
            }
        }
        if let error = latch.waitForReports() {
            latch.decide(run: false)
            for thread in threads { pthread_join(thread, nil) }
            for control in controls { Glibc.close(control.eventFD) }
            closeListeners()
            throw error
        }
        latch.decide(run: true)
        return ShardGroup(shardCount: shardCount, boundPorts: boundPorts, controls: controls, threads: threads)
    }

    /// Asks every shard to stop (any thread, async-signal context excluded): they stop accepting, flush queued
    /// output for up to `shutdownFlushMillis`, close their connections and exit. Returns at once; `wait()` joins.
    public func requestStop() {
        // Under the lock so that `wait()` cannot close the eventfds while we write to them.
        eventFDsOpen.withLock { open in
            guard open else { return }
            for control in controls {
                control.stopRequested.store(true, ordering: .releasing)
                control.wakeByEventFD()
            }
        }
    }

    /// Waits until every shard thread has exited (after `requestStop()` or a termination signal). Idempotent.
    /// A group must be stopped and waited for before the process exits cleanly; dropping the last reference
    /// without it leaves the shard threads running.
    public func wait() {
        let taken = threads.withLock { threads -> [pthread_t]? in
            let taken = threads
            threads = nil
            return taken
        }
        guard let taken else { return }
        for thread in taken { pthread_join(thread, nil) }
        eventFDsOpen.withLock { open in
            open = false
            for control in controls { Glibc.close(control.eventFD) }
        }
    }

    /// `requestStop()` then `wait()`.
    public func stop() {
        requestStop()
        wait()
    }

    /// Each shard's counters as they were when it exited (nil while it runs).
    public func finalCounters(of shard: ShardID) -> ShardCounters? {
        controls[shard.rawValue].finalCounters.withLock { $0 }
    }

    /// Starts a thread that waits for SIGINT or SIGTERM and then calls `requestStop()`; SIGHUP on the way runs
    /// the hook set with ``onReloadSignal(_:)`` (or is ignored without one). Call `TerminationSignals.block()`
    /// before `start` so that no shard thread receives the signal instead.
    public func stopOnTerminationSignal() {
        _ = try? startThread(name: "signals") { [self] in
            while true {
                let signal = TerminationSignals.wait()
                if signal == SIGHUP {
                    let hook = self.reloadHook.withLock { $0 }
                    hook?()
                    continue
                }
                self.requestStop()
                return
            }
        }
    }

    /// Sets the body run on the signal thread (started by ``stopOnTerminationSignal()``) each time SIGHUP arrives,
    /// replacing any earlier one. The body runs outside every shard: it hands new state to the shards through
    /// something they read on their own loop (and may call ``wakeAll()`` so that sleeping shards notice at once).
    public func onReloadSignal(_ body: @escaping @Sendable () -> Void) {
        reloadHook.withLock { $0 = body }
    }

    /// Wakes every shard for one loop turn (its handler's `turnEnded` runs), from any thread. Does nothing once
    /// the group has been waited for.
    public func wakeAll() {
        eventFDsOpen.withLock { open in
            guard open else { return }
            for control in controls { control.wakeByEventFD() }
        }
    }
}

/// Body of a shard thread: pin, build the ring, report, wait for the go, run, clean up.
func runShard<Handler: ShardHandler>(
    shard: Int, shardCount: Int, cpu: Int?, configuration: RuntimeConfiguration, listenerFDs: [Int32],
    controls: [ShardControl], mesh: ShardMesh<MeshEnvelope<Handler.Message, Handler.ConnectionState>>,
    latch: StartupLatch, makeHandler: @Sendable (ShardID, Int) -> Handler
) {
    if let cpu { _ = shoal_pin_current_thread(Int32(cpu)) }
    let ring: ShardRing
    do {
        ring = try ShardRing(configuration: configuration)
    } catch {
        latch.report(shard, error)
        _ = latch.waitForDecision()
        return
    }
    controls[shard].ringFD.store(ring.ring.pointee.ring_fd, ordering: .releasing)
    latch.report(shard, nil)
    guard latch.waitForDecision() else { return }
    let shardID = ShardID(shard)
    let context = ShardContext<Handler>(shardID: shardID, shardCount: shardCount, configuration: configuration,
                                        ring: ring.ring, mesh: mesh, nowMillis: monotonicMillis())
    var loop = ShardLoop(handler: makeHandler(shardID, shardCount), context: context, controls: controls,
                         listenerFDs: listenerFDs, ring: ring)
    loop.run()
    controls[shard].ringFD.store(-1, ordering: .releasing)
    // Exit the ring first: it cancels whatever is still in flight, so the buffers can then be freed safely.
    _ = consume ring
    loop.cleanUpAfterRingExit()
}

// MARK: - TerminationSignals

/// SIGINT/SIGTERM (stop) and SIGHUP (reload) handling by `sigwait` on a dedicated thread: no async-signal-safety concerns, and the loop
/// never sees EINTR storms.
public enum TerminationSignals {
    /// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread; threads started afterwards (the shards) inherit the mask.
    /// Call it first thing in `main`.
    public static func block() {
        _ = shoal_block_termination_signals()
    }

    /// Waits for SIGINT, SIGTERM or SIGHUP (blocked with `block()`) and returns its number.
    public static func wait() -> Int32 {
        shoal_wait_termination_signal()
    }
}
