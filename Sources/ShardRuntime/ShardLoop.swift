import CIOUring
import Glibc
import Synchronization

// MARK: - Clock

/// CLOCK_MONOTONIC in nanoseconds.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// CLOCK_MONOTONIC in milliseconds.
@inline(__always)
func monotonicMillis() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
}

// MARK: - List recycling

/// Moves `list`'s contents out, leaving `list` holding the (empty) spare buffer: no copy, no allocation.
@inline(__always)
func take<T>(_ list: inout [T], spare: inout [T]) -> [T] {
    var taken: [T] = []
    swap(&taken, &spare)
    swap(&taken, &list)
    return taken
}

/// Empties a processed list and keeps its buffer as the spare.
@inline(__always)
func giveBack<T>(_ list: inout [T], spare: inout [T]) {
    list.removeAll(keepingCapacity: true)
    if spare.capacity < list.capacity { swap(&list, &spare) }
}

// MARK: - Ring resources

/// A shard's io_uring plus its provided-buffer ring, created on the shard's thread (SINGLE_ISSUER rings must be).
/// Noncopyable owner: deinit unregisters the buffers and exits the ring.
struct ShardRing: ~Copyable {
    let ring: UnsafeMutablePointer<io_uring>
    let bufferRing: UnsafeMutablePointer<io_uring_buf_ring>
    let bufferBase: UnsafeMutableRawPointer
    let bufferCount: Int
    let bufferBytes: Int
    let hasMessageRing: Bool

    init(configuration: RuntimeConfiguration) throws(ShardRuntimeStartupError) {
        precondition(configuration.receiveBufferCount > 0 && configuration.receiveBufferCount <= 32768
                     && configuration.receiveBufferCount & (configuration.receiveBufferCount - 1) == 0,
                     "receiveBufferCount must be a power of two in 1...32768")
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        var result = shoal_queue_init(configuration.ringEntries, ring,
                                      shoal_IORING_SETUP_SINGLE_ISSUER_DEFER_TASKRUN | shoal_IORING_SETUP_SUBMIT_ALL)
        if result == -EINVAL {
            // Kernels before 6.1 lack DEFER_TASKRUN (and before 6.0 SINGLE_ISSUER): fall back step by step.
            result = shoal_queue_init(configuration.ringEntries, ring, shoal_IORING_SETUP_COOP_TASKRUN)
            if result == -EINVAL { result = shoal_queue_init(configuration.ringEntries, ring, 0) }
        }
        if result < 0 {
            ring.deallocate()
            throw ShardRuntimeStartupError.ringSetup(Errno(rawValue: -result))
        }
        var error: Int32 = 0
        guard let bufferRing = shoal_setup_buf_ring(ring, UInt32(configuration.receiveBufferCount), 0, &error) else {
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw .bufferRingSetup(Errno(rawValue: -error))
        }
        self.bufferRing = bufferRing
        bufferCount = configuration.receiveBufferCount
        bufferBytes = configuration.receiveBufferBytes
        bufferBase = .allocate(byteCount: bufferCount * bufferBytes, alignment: 4096)
        let mask = io_uring_buf_ring_mask(UInt32(bufferCount))
        for bid in 0..<bufferCount {
            // Safe: bid < bufferCount, so the buffer lies inside bufferBase's allocation.
            io_uring_buf_ring_add(bufferRing, bufferBase + bid * bufferBytes, UInt32(bufferBytes), UInt16(bid), mask, Int32(bid))
        }
        io_uring_buf_ring_advance(bufferRing, Int32(bufferCount))
        hasMessageRing = shoal_opcode_supported(ring, Int32(IORING_OP_MSG_RING.rawValue)) == 1
    }

    deinit {
        shoal_free_buf_ring(ring, bufferRing, UInt32(bufferCount), 0)
        io_uring_queue_exit(ring)
        ring.deallocate()
        bufferBase.deallocate()
    }
}

// MARK: - ShardLoop

/// The event loop of one shard: owns the handler and the context, and runs turns until stopped.
struct ShardLoop<Handler: ShardHandler> {
    typealias Envelope = MeshEnvelope<Handler.Message, Handler.ConnectionState>

    var handler: Handler
    var context: ShardContext<Handler>
    let controls: [ShardControl]
    let listenerFDs: [Int32]
    var listenerOpen: [Bool]
    var rearmAccept: [Int] = []
    /// After an accept error (EMFILE, ENFILE, ENOMEM...) accepts are re-armed only after a pause, so a
    /// persistent error cannot spin the loop.
    var acceptRetryAtMillis: UInt64 = 0
    let bufferRing: UnsafeMutablePointer<io_uring_buf_ring>
    let bufferBase: UnsafeMutableRawPointer
    let bufferBytes: Int
    let bufferMask: Int32
    var buffersReturned: Int32 = 0
    let useMessageRing: Bool
    let eventBuffer: UnsafeMutablePointer<UInt64>
    let cqes: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    var fired: [UInt64] = []
    // Spare buffers for the per-turn lists: a list is swapped out for processing and its buffer comes back as the
    // spare, so steady-state turns allocate nothing.
    var spareIndices: [UInt32] = []
    var spareClosed: [(ConnectionID, CloseReason)] = []
    var spareWritable: [ConnectionID] = []
    var spareTokens: [UInt64] = []
    var spareInbox: [(Envelope, ShardID)] = []
    var spareShards: [ShardID] = []
    var stopDeadlineMillis: UInt64 = 0
    var forcedClose = false
    /// The start of the last turn whose duration is not yet recorded (0: none). A turn that goes straight on to
    /// the next is measured by the next turn's clock read; only a turn about to sleep reads the clock once more.
    var unrecordedTurnStartNanos: UInt64 = 0
    var control: ShardControl { controls[context.shardID.rawValue] }

    static var cqeBatch: Int { 256 }

    init(handler: Handler, context: ShardContext<Handler>, controls: [ShardControl], listenerFDs: [Int32],
         ring: borrowing ShardRing) {
        self.handler = handler
        self.context = context
        self.controls = controls
        self.listenerFDs = listenerFDs
        listenerOpen = Array(repeating: true, count: listenerFDs.count)
        bufferRing = ring.bufferRing
        bufferBase = ring.bufferBase
        bufferBytes = ring.bufferBytes
        bufferMask = io_uring_buf_ring_mask(UInt32(ring.bufferCount))
        useMessageRing = ring.hasMessageRing && context.configuration.messageRingDoorbell
        eventBuffer = .allocate(capacity: 1)
        eventBuffer.initialize(to: 0)
        cqes = .allocate(capacity: Self.cqeBatch)
    }

    /// Closes every descriptor and frees the loop's memory. Call only after the ring has exited
    /// (io_uring_queue_exit), so that no request still reads or writes these buffers.
    mutating func cleanUpAfterRingExit() {
        for index in context.slots.indices where context.slots[index].state != .free {
            if context.slots[index].fd >= 0 { Glibc.close(context.slots[index].fd) }
            free(context.slots[index].assembly)
            free(context.slots[index].pending)
            free(context.slots[index].inflight)
            context.slots[index] = ConnectionSlot()
        }
        for (index, fd) in listenerFDs.enumerated() where listenerOpen[index] {
            Glibc.close(fd)
            listenerOpen[index] = false
        }
        eventBuffer.deallocate()
        cqes.deallocate()
    }

    // MARK: - Run

    mutating func run() {
        for index in listenerFDs.indices { armAccept(index) }
        armEventRead()
        while true {
            let turnStartNanos = monotonicNanos()
            if unrecordedTurnStartNanos != 0 {
                context.counters.turnDurations.record(nanos: turnStartNanos &- unrecordedTurnStartNanos)
            }
            unrecordedTurnStartNanos = turnStartNanos
            context.nowMillis = turnStartNanos / 1_000_000
            context.counters.turns &+= 1
            reapCompletions()
            drainInbox()
            fireTimers()
            deliverResumed()
            rearm()
            handler.turnEnded(context: &context)
            drainEvents()
            progressHandoffs()
            flush()
            drainEvents()
            finishClosing()
            publishMesh()
            if control.stopRequested.load(ordering: .acquiring) && !context.stopping { beginStop() }
            if context.stopping {
                if stopProgress() { break }
            }
            waitForWork()
        }
        // Final: make sure no operations target memory we free; queue_exit cancels whatever is left.
        control.finalCounters.withLock { $0 = context.counters }
    }

    // MARK: - Completions

    mutating func reapCompletions() {
        while true {
            let count = Int(io_uring_peek_batch_cqe(context.ring, cqes, UInt32(Self.cqeBatch)))
            if count == 0 { break }
            for position in 0..<count {
                // Safe: peek_batch filled `count` valid CQE pointers, valid until cq_advance.
                let cqe = cqes[position]!
                let userData = cqe.pointee.user_data
                let result = cqe.pointee.res
                let flags = cqe.pointee.flags
                handleCompletion(userData: userData, result: result, flags: flags)
            }
            io_uring_cq_advance(context.ring, UInt32(count))
            returnBuffers()
            drainEvents()
            if count < Self.cqeBatch { break }
        }
    }

    mutating func handleCompletion(userData: UInt64, result: Int32, flags: UInt32) {
        let kind = CompletionKind(rawValue: UInt8(userData >> 56)) ?? .ignore
        let index = Int((userData >> 32) & 0xFF_FFFF)
        let generation = UInt32(truncatingIfNeeded: userData)
        switch kind {
        case .ignore, .doorbell:
            break
        case .eventRead:
            armEventRead()
        case .accept:
            handleAccept(listener: index, result: result, flags: flags)
        case .receive:
            handleReceive(index: index, generation: generation, result: result, flags: flags)
        case .send:
            handleSend(index: index, generation: generation, result: result)
        }
    }

    mutating func handleAccept(listener: Int, result: Int32, flags: UInt32) {
        if flags & shoal_IORING_CQE_F_MORE == 0 && listenerOpen[listener] && !context.stopping {
            rearmAccept.append(listener)
        }
        if result < 0 {
            if result != -ECANCELED {
                context.counters.acceptErrors &+= 1
                acceptRetryAtMillis = context.nowMillis &+ 100
            }
            return
        }
        let fd = result
        if context.stopping {
            context.counters.acceptRefused &+= 1
            Glibc.close(fd)
            return
        }
        guard let index = context.allocateSlot(fd: fd) else {
            context.counters.acceptRefused &+= 1
            Glibc.close(fd)
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        context.counters.accepted &+= 1
        context.armReceive(index)
        let peer = SocketAddress.of(socket: fd, peer: true)
        let id = ConnectionID(index: UInt32(index), generation: context.slots[index].generation)
        handler.connectionAccepted(id, listener: listener, peer: peer, context: &context)
        drainEvents()
    }

    mutating func handleReceive(index: Int, generation: UInt32, result: Int32, flags: UInt32) {
        let hasBuffer = flags & shoal_IORING_CQE_F_BUFFER != 0
        let bufferID = Int(flags >> shoal_IORING_CQE_BUFFER_SHIFT)
        defer { if hasBuffer { returnBuffer(bufferID) } }
        guard index < context.slots.count, context.slots[index].generation == generation,
              context.slots[index].state != .free else { return }
        let more = flags & shoal_IORING_CQE_F_MORE != 0
        if !more { context.slots[index].receiveArmed = false }
        let state = context.slots[index].state
        if result > 0 {
            context.counters.bytesReceived &+= UInt64(result)
            precondition(hasBuffer, "receive completion with data but no provided buffer")
            // Safe: the kernel wrote `result` bytes into provided buffer `bufferID`, which we own until returned.
            let bytes = UnsafeRawBufferPointer(start: bufferBase + bufferID * bufferBytes, count: Int(result))
            switch state {
            case .open where !context.slots[index].paused:
                deliver(index, bytes)
            case .open, .handingOff:
                context.appendAssembly(index, bytes)
            case .closing, .free:
                break
            }
        } else if result == 0 {
            if state == .open { context.beginTeardown(index, reason: .endOfFile) }
            // A connection being handed off keeps going: EOF is sticky, the adopter will see it again.
            return
        } else {
            let error = Errno(rawValue: -result)
            switch error {
            case .noBufferSpace:
                context.counters.receiveNoBuffers &+= 1
            case .canceled:
                break
            default:
                if state == .open {
                    let reason: CloseReason = (error == .connectionReset || error == .brokenPipe) ? .reset : .error(error)
                    context.beginTeardown(index, reason: reason)
                }
                return
            }
        }
        if !more, context.slots[index].state == .open, !context.slots[index].paused,
           !context.slots[index].receiveArmed {
            context.rearmReceive.append(UInt32(index))
        }
    }

    mutating func handleSend(index: Int, generation: UInt32, result: Int32) {
        guard index < context.slots.count, context.slots[index].generation == generation,
              context.slots[index].state != .free else { return }
        context.slots[index].sendInFlight = false
        if result > 0 {
            context.counters.bytesSent &+= UInt64(result)
            context.slots[index].inflightSent += Int(result)
            if context.slots[index].inflightSent < context.slots[index].inflightCount {
                context.counters.shortSends &+= 1
                if context.slots[index].state != .closing {
                    context.submitSend(index)
                    return
                }
            }
        } else if context.slots[index].state == .open {
            let error = result == 0 ? Errno.brokenPipe : Errno(rawValue: -result)
            let reason: CloseReason = (error == .connectionReset || error == .brokenPipe) ? .reset : .error(error)
            context.beginTeardown(index, reason: reason)
        }
        // The in-flight buffer is done (fully sent, failed, or the connection is closing).
        free(context.slots[index].inflight)
        context.slots[index].inflight = nil
        context.slots[index].inflightCount = 0
        context.slots[index].inflightSent = 0
        if context.slots[index].state == .open {
            if context.slots[index].pendingCount > 0 || context.slots[index].closeAfterFlush { context.markDirty(index) }
            if context.slots[index].wantsWritable
                && context.slots[index].queuedBytes < context.configuration.outboundLowWaterBytes {
                context.slots[index].wantsWritable = false
                context.writableEvents.append(ConnectionID(index: UInt32(index), generation: generation))
            }
        } else if context.slots[index].state == .handingOff && context.slots[index].pendingCount > 0 {
            context.markDirty(index)
        }
    }

    // MARK: - Delivery

    /// Delivers freshly received bytes: straight from the provided buffer when nothing is assembled, else after
    /// appending them to the assembly buffer. The unconsumed tail is kept.
    mutating func deliver(_ index: Int, _ bytes: UnsafeRawBufferPointer) {
        let id = ConnectionID(index: UInt32(index), generation: context.slots[index].generation)
        if context.slots[index].assemblyCount == 0 {
            let consumed = handler.received(id, bytes: bytes, context: &context)
            precondition(consumed >= 0 && consumed <= bytes.count, "received() consumed \(consumed) of \(bytes.count)")
            let state = context.slots[index].state
            if consumed < bytes.count && (state == .open || state == .handingOff) {
                context.appendAssembly(index, UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
        } else {
            context.appendAssembly(index, bytes)
            deliverAssembled(index)
        }
        drainEvents()
    }

    /// Delivers the assembly buffer's contents. The buffer is neither freed nor reallocated during the call:
    /// closing or handing off only marks the slot.
    mutating func deliverAssembled(_ index: Int) {
        guard context.slots[index].assemblyCount > 0 else { return }
        let id = ConnectionID(index: UInt32(index), generation: context.slots[index].generation)
        // Safe: the assembly buffer holds assemblyCount initialised bytes and stays put during the call.
        let bytes = UnsafeRawBufferPointer(start: context.slots[index].assembly!, count: context.slots[index].assemblyCount)
        let consumed = handler.received(id, bytes: bytes, context: &context)
        precondition(consumed >= 0 && consumed <= bytes.count, "received() consumed \(consumed) of \(bytes.count)")
        context.consumeAssembly(index, consumed)
    }

    mutating func deliverResumed() {
        guard !context.deliverAssembly.isEmpty else { return }
        var list = take(&context.deliverAssembly, spare: &spareIndices)
        defer { giveBack(&list, spare: &spareIndices) }
        for raw in list {
            let index = Int(raw)
            if context.slots[index].state == .open && !context.slots[index].paused {
                deliverAssembled(index)
                drainEvents()
            }
        }
    }

    mutating func rearm() {
        if !rearmAccept.isEmpty && context.nowMillis >= acceptRetryAtMillis {
            for listener in rearmAccept where listenerOpen[listener] { armAccept(listener) }
            rearmAccept.removeAll(keepingCapacity: true)
        }
        guard !context.rearmReceive.isEmpty else { return }
        var list = take(&context.rearmReceive, spare: &spareIndices)
        defer { giveBack(&list, spare: &spareIndices) }
        for raw in list {
            let index = Int(raw)
            if context.slots[index].state == .open && !context.slots[index].paused && !context.slots[index].receiveArmed {
                context.armReceive(index)
            }
        }
    }

    /// Delivers `connectionClosed` and `writable` notifications raised by context calls.
    mutating func drainEvents() {
        while !context.closedEvents.isEmpty || !context.writableEvents.isEmpty {
            if !context.closedEvents.isEmpty {
                var events = take(&context.closedEvents, spare: &spareClosed)
                for (id, reason) in events { handler.connectionClosed(id, reason: reason, context: &context) }
                giveBack(&events, spare: &spareClosed)
            }
            if !context.writableEvents.isEmpty {
                var events = take(&context.writableEvents, spare: &spareWritable)
                for id in events where context.isOpen(id) { handler.writable(id, context: &context) }
                giveBack(&events, spare: &spareWritable)
            }
        }
    }

    // MARK: - Mesh and timers

    mutating func drainInbox() {
        while let message = context.localMessages.removeFirst() {
            handler.message(message, from: context.shardID, context: &context)
            drainEvents()
        }
        var pending: [(Envelope, ShardID)] = []
        swap(&pending, &spareInbox)
        defer { giveBack(&pending, spare: &spareInbox) }
        context.inbox.drain(batchCountMax: context.configuration.meshBatchCountMax) { envelope, source in
            pending.append((envelope, source))
        }
        for (envelope, source) in pending {
            context.counters.meshReceived &+= 1
            switch envelope {
            case .message(let message):
                handler.message(message, from: source, context: &context)
            case .handoff(let payload):
                adopt(payload)
            }
            drainEvents()
        }
    }

    mutating func adopt(_ payload: HandoffPayload<Handler.ConnectionState>) {
        if context.stopping { return }  // payload's deinit closes the descriptor
        let fd = payload.takeFD()
        guard let index = context.allocateSlot(fd: fd) else {
            context.counters.acceptRefused &+= 1
            Glibc.close(fd)
            return
        }
        context.counters.adopted &+= 1
        context.armReceive(index)
        let id = ConnectionID(index: UInt32(index), generation: context.slots[index].generation)
        handler.adopted(id, state: payload.state.take()!, context: &context)
        if !payload.pendingBytes.isEmpty, context.slots[index].state == .open {
            payload.pendingBytes.withUnsafeBytes { context.appendAssembly(index, $0) }
            if !context.slots[index].paused { deliverAssembled(index) }
        }
    }

    mutating func fireTimers() {
        context.timers.advance(to: context.nowMillis, fired: &fired)
        guard !fired.isEmpty else { return }
        var tokens = take(&fired, spare: &spareTokens)
        defer { giveBack(&tokens, spare: &spareTokens) }
        for token in tokens {
            handler.timerFired(token, context: &context)
            drainEvents()
        }
    }

    // MARK: - Handoff, flush, close

    mutating func progressHandoffs() {
        guard !context.handingOff.isEmpty else { return }
        var remaining: [UInt32] = []
        for raw in context.handingOff {
            let index = Int(raw)
            let slot = context.slots[index]
            if slot.receiveArmed || slot.sendInFlight || slot.pendingCount > 0 {
                if slot.pendingCount > 0 { context.markDirty(index) }
                remaining.append(raw)
                continue
            }
            var bytes: [UInt8] = []
            if slot.assemblyCount > 0 {
                // Safe: the assembly buffer holds assemblyCount initialised bytes.
                bytes = Array(UnsafeRawBufferPointer(start: slot.assembly!, count: slot.assemblyCount))
            }
            let payload = HandoffPayload(fd: slot.fd, pendingBytes: bytes, state: context.handoffStates[raw]!)
            let destination = ShardID(slot.handoffTarget)
            // A handoff is never refused: it bypasses the overflow cap by retrying next turn.
            switch context.outbox.send(.handoff(payload), to: destination) {
            case .ok, .queuedInOverflow:
                context.counters.handedOff &+= 1
                context.handoffStates[raw] = nil
                context.releaseSlot(index, keepFD: true)
            case .refused:
                _ = payload.takeFD()
                remaining.append(raw)
            }
        }
        context.handingOff = remaining
    }

    mutating func flush() {
        guard !context.dirty.isEmpty else { return }
        var list = take(&context.dirty, spare: &spareIndices)
        defer { giveBack(&list, spare: &spareIndices) }
        for raw in list {
            let index = Int(raw)
            context.slots[index].inDirtyList = false
            let state = context.slots[index].state
            guard state == .open || state == .handingOff, !context.slots[index].sendInFlight else { continue }
            if context.slots[index].pendingCount > 0 {
                // Swap: what was pending becomes the in-flight buffer; new output starts a fresh pending buffer.
                precondition(context.slots[index].inflight == nil, "in-flight buffer still held")
                context.slots[index].inflight = context.slots[index].pending
                context.slots[index].inflightCount = context.slots[index].pendingCount
                context.slots[index].inflightSent = 0
                context.slots[index].pending = nil
                context.slots[index].pendingCount = 0
                context.slots[index].pendingCapacity = 0
                context.submitSend(index)
            } else if context.slots[index].closeAfterFlush && state == .open {
                context.beginTeardown(index, reason: context.slots[index].closeReason)
            }
        }
    }

    mutating func finishClosing() {
        guard !context.closing.isEmpty else { return }
        var remaining: [UInt32] = []
        for raw in context.closing {
            let index = Int(raw)
            if context.slots[index].receiveArmed || context.slots[index].sendInFlight {
                remaining.append(raw)
            } else {
                context.releaseSlot(index, keepFD: false)
            }
        }
        context.closing = remaining
    }

    mutating func publishMesh() {
        let useMessageRing = self.useMessageRing
        let controls = self.controls
        var toWake: [ShardID] = []
        swap(&toWake, &spareShards)
        defer { giveBack(&toWake, spare: &spareShards) }
        context.outbox.flush { destination in toWake.append(destination) }
        guard !toWake.isEmpty else { return }
        // Pairs with the consumer's fence between announcing sleep and re-checking its rings (Dekker): either it
        // sees our tail, or we see its announcement.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        for destination in toWake {
            let peer = controls[destination.rawValue]
            guard peer.sleeping.load(ordering: .relaxed),
                  peer.sleeping.exchange(false, ordering: .acquiringAndReleasing) else { continue }
            context.counters.doorbellsRung &+= 1
            let ringFD = peer.ringFD.load(ordering: .acquiring)
            if useMessageRing && ringFD >= 0 {
                let entry = context.sqe()
                io_uring_prep_msg_ring(entry, ringFD, 0, packUserData(.doorbell, index: 0, generation: 0), 0)
                io_uring_sqe_set_data64(entry, packUserData(.ignore, index: 0, generation: 0))
                shoal_sqe_set_flags(entry, shoal_IOSQE_CQE_SKIP_SUCCESS)
            } else {
                peer.wakeByEventFD()
            }
        }
    }

    // MARK: - Stop

    mutating func beginStop() {
        context.stopping = true
        stopDeadlineMillis = context.nowMillis &+ context.configuration.shutdownFlushMillis
        for index in listenerFDs.indices where listenerOpen[index] {
            let entry = context.sqe()
            io_uring_prep_cancel64(entry, packUserData(.accept, index: UInt32(index), generation: 0), 0)
            io_uring_sqe_set_data64(entry, packUserData(.ignore, index: 0, generation: 0))
            // The cancel is keyed by user data, not descriptor, so closing the number now is safe.
            Glibc.close(listenerFDs[index])
            listenerOpen[index] = false
        }
        for index in context.slots.indices where context.slots[index].state == .open {
            context.slots[index].closeAfterFlush = true
            context.slots[index].closeReason = .shutdown
            context.markDirty(index)
        }
    }

    /// Returns true when the shard may exit.
    mutating func stopProgress() -> Bool {
        if !forcedClose && context.nowMillis >= stopDeadlineMillis {
            forcedClose = true
            for index in context.slots.indices where context.slots[index].state == .open {
                context.beginTeardown(index, reason: .shutdown)
            }
            drainEvents()
            finishClosing()
        }
        if context.openCount == 0 && context.closing.isEmpty && context.handingOff.isEmpty { return true }
        // Give in-flight operations a bounded time after the forced close; queue_exit cancels the rest.
        return forcedClose && context.nowMillis >= stopDeadlineMillis &+ 2000
    }

    // MARK: - Waiting

    mutating func armAccept(_ listener: Int) {
        let entry = context.sqe()
        io_uring_prep_multishot_accept(entry, listenerFDs[listener], nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(entry, packUserData(.accept, index: UInt32(listener), generation: 0))
    }

    mutating func armEventRead() {
        let entry = context.sqe()
        io_uring_prep_read(entry, control.eventFD, eventBuffer, 8, 0)
        io_uring_sqe_set_data64(entry, packUserData(.eventRead, index: 0, generation: 0))
    }

    mutating func returnBuffer(_ bufferID: Int) {
        // Safe: bufferID came from a completion of this ring, so it indexes a buffer of bufferBase.
        io_uring_buf_ring_add(bufferRing, bufferBase + bufferID * bufferBytes, UInt32(bufferBytes), UInt16(bufferID),
                              bufferMask, buffersReturned)
        buffersReturned += 1
    }

    mutating func returnBuffers() {
        if buffersReturned > 0 {
            io_uring_buf_ring_advance(bufferRing, buffersReturned)
            buffersReturned = 0
        }
    }

    /// Submits, then either polls (work is pending) or sleeps until a completion, a doorbell, or the next deadline.
    mutating func waitForWork() {
        let hasWork = !context.localMessages.isEmpty || !context.deliverAssembly.isEmpty || !context.rearmReceive.isEmpty
            || !context.dirty.isEmpty || (!rearmAccept.isEmpty && context.nowMillis >= acceptRetryAtMillis)
        if hasWork {
            submitNoWait()
            return
        }
        if context.configuration.idleSpinMicros > 0 && spinForMessages() { return }
        control.sleeping.store(true, ordering: .sequentiallyConsistent)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if !context.inbox.allEmpty() || control.stopRequested.load(ordering: .acquiring) {
            control.sleeping.store(false, ordering: .relaxed)
            submitNoWait()
            return
        }
        context.counters.sleeps &+= 1
        // The turn ends here, before the kernel wait: its busy time costs one clock read (clock_gettime measured at
        // 80 ns on the 2-core VM), paid only by turns that go idle.
        if unrecordedTurnStartNanos != 0 {
            context.counters.turnDurations.record(nanos: monotonicNanos() &- unrecordedTurnStartNanos)
            unrecordedTurnStartNanos = 0
        }
        var deadline = context.timers.nextDeadlineMillis()
        if context.stopping {
            let stopCheck = context.nowMillis &+ 50
            deadline = min(deadline ?? stopCheck, stopCheck)
        }
        if !rearmAccept.isEmpty && !context.stopping {
            deadline = min(deadline ?? acceptRetryAtMillis, acceptRetryAtMillis)
        }
        if !context.stopping && context.outbox.overflowCountTotal > 0 {
            // Overflow waits for ring space, which no completion announces: poll it at a modest rate.
            let retry = context.nowMillis &+ 1
            deadline = min(deadline ?? retry, retry)
        }
        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        let result: Int32
        if let deadline {
            let waitMillis = deadline > context.nowMillis ? deadline - context.nowMillis : 0
            var timeout = __kernel_timespec(tv_sec: Int64(waitMillis / 1000), tv_nsec: Int64(waitMillis % 1000) * 1_000_000)
            result = io_uring_submit_and_wait_timeout(context.ring, &cqe, 1, &timeout, nil)
        } else {
            result = io_uring_submit_and_wait(context.ring, 1)
        }
        control.sleeping.store(false, ordering: .relaxed)
        checkSubmit(result)
    }

    /// Submits pending requests, then polls the mesh for up to `idleSpinMicros`. Returns true when a turn should
    /// run now (completions ready, a message arrived, or a stop was requested).
    mutating func spinForMessages() -> Bool {
        submitNoWait()
        if io_uring_cq_ready(context.ring) > 0 { return true }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let end = Int(now.tv_sec) * 1_000_000_000 + now.tv_nsec + context.configuration.idleSpinMicros * 1000
        while true {
            for _ in 0..<64 {
                if !context.inbox.allEmpty() || control.stopRequested.load(ordering: .relaxed) { return true }
            }
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Int(now.tv_sec) * 1_000_000_000 + now.tv_nsec >= end { return false }
        }
    }

    mutating func submitNoWait() {
        checkSubmit(io_uring_submit_and_get_events(context.ring))
    }

    func checkSubmit(_ result: Int32) {
        if result >= 0 || result == -ETIME || result == -EINTR || result == -EAGAIN || result == -EBUSY { return }
        preconditionFailure("io_uring submit failed on \(context.shardID): \(Errno(rawValue: -result))")
    }
}
