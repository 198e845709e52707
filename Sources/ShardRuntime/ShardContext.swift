import CIOUring
import Glibc
import Synchronization

// MARK: - Completion user data

/// What a completion belongs to; packed into the top byte of `user_data`.
enum CompletionKind: UInt8 {
    case ignore = 0
    case accept = 1
    case receive = 2
    case send = 3
    case doorbell = 4
    case eventRead = 5
}

/// `user_data` layout: kind (8 bits) | slot index (24 bits) | generation (32 bits).
@inline(__always)
func packUserData(_ kind: CompletionKind, index: UInt32, generation: UInt32) -> UInt64 {
    UInt64(kind.rawValue) << 56 | UInt64(index & 0xFF_FFFF) << 32 | UInt64(generation)
}

// MARK: - Shared per-shard control

/// The part of a shard other threads touch: its sleep announcement, stop request, ring fd (for MSG_RING
/// doorbells) and eventfd (for wake-ups from outside the mesh, and doorbells where MSG_RING is missing).
final class ShardControl: @unchecked Sendable {
    let sleeping = Atomic<Bool>(false)
    let stopRequested = Atomic<Bool>(false)
    let ringFD = Atomic<Int32>(-1)
    let eventFD: Int32
    let finalCounters = Mutex<ShardCounters?>(nil)

    init(eventFD: Int32) { self.eventFD = eventFD }

    /// Wakes the shard through its eventfd (any thread).
    func wakeByEventFD() {
        var one: UInt64 = 1
        _ = write(eventFD, &one, 8)
    }
}

/// A connection on its way to another shard: the descriptor, bytes already read, and the handler's state.
/// If it is never adopted (the receiver stopped), its deinit closes the descriptor.
final class HandoffPayload<State: Sendable>: @unchecked Sendable {
    private var fd: Int32
    let pendingBytes: [UInt8]
    var state: State?

    init(fd: Int32, pendingBytes: [UInt8], state: State) {
        self.fd = fd
        self.pendingBytes = pendingBytes
        self.state = state
    }

    func takeFD() -> Int32 {
        let taken = fd
        fd = -1
        return taken
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }
}

/// What travels on the mesh: a handler message, or a connection handoff.
enum MeshEnvelope<Message: Sendable, State: Sendable>: Sendable {
    case message(Message)
    case handoff(HandoffPayload<State>)
}

// MARK: - Connection slot

enum SlotState: UInt8 {
    /// On the free list.
    case free
    /// Owned by the handler.
    case open
    /// The handler handed it off; waiting for the receive to stop and output to drain before shipping it.
    case handingOff
    /// Closed from the handler's view; waiting for in-flight operations before the fd is closed and the slot freed.
    case closing
}

/// One slab slot. An idle connection holds no buffers: assembly and outbound buffers are allocated on demand
/// and released when empty. Deliberately not generic (a handoff's state lives in `ShardContext.handoffStates`),
/// so its layout is fixed even in unspecialised generic code.
struct ConnectionSlot {
    var fd: Int32 = -1
    var generation: UInt32 = 0
    var state = SlotState.free
    var receiveArmed = false
    var paused = false
    var sendInFlight = false
    var inDirtyList = false
    var closeAfterFlush = false
    var wantsWritable = false
    var closeReason = CloseReason.closedLocally
    var handoffTarget = -1
    // Assembly buffer (unconsumed received bytes).
    var assembly: UnsafeMutableRawPointer?
    var assemblyCount = 0
    var assemblyCapacity = 0
    // Outbound: `pending` is appended to; `inflight` is what the kernel is sending.
    var pending: UnsafeMutableRawPointer?
    var pendingCount = 0
    var pendingCapacity = 0
    var inflight: UnsafeMutableRawPointer?
    var inflightCount = 0
    var inflightSent = 0

    var queuedBytes: Int { pendingCount + inflightCount - inflightSent }
}

// MARK: - ShardContext

/// A shard's runtime state, lent to the handler inout in every callback.
///
/// Requests made through it take effect at defined points: bytes queued with `enqueue` are sent at the end of
/// the turn (one send per connection covering everything queued); `close` and `handOff` stop delivery at once
/// and finish when in-flight operations complete; `connectionClosed` and `writable` notifications raised by
/// these calls are delivered after the current callback returns. Messages sent with `send` become visible to
/// the receiver at the end of the turn.
public struct ShardContext<Handler: ShardHandler> {
    typealias Envelope = MeshEnvelope<Handler.Message, Handler.ConnectionState>

    // MARK: Identity and time

    /// This shard.
    public let shardID: ShardID
    /// Number of shards in the group.
    public let shardCount: Int
    /// Monotonic milliseconds, read once per loop turn.
    public internal(set) var nowMillis: UInt64
    /// This shard's counters.
    public internal(set) var counters = ShardCounters()
    /// The configuration the group was started with.
    public let configuration: RuntimeConfiguration

    // MARK: Internal state

    let ring: UnsafeMutablePointer<io_uring>
    /// The shard's thread: every call must come from it (checked in debug builds, as NIO's
    /// `preconditionInEventLoop`).
    let ownerThread = pthread_self()
    var slots: [ConnectionSlot] = []
    var handoffStates: [UInt32: Handler.ConnectionState] = [:]
    var freeSlots: [UInt32] = []
    var openCount = 0
    var dirty: [UInt32] = []
    var rearmReceive: [UInt32] = []
    var deliverAssembly: [UInt32] = []
    var closing: [UInt32] = []
    var handingOff: [UInt32] = []
    var closedEvents: [(ConnectionID, CloseReason)] = []
    var writableEvents: [ConnectionID] = []
    var timers: TimerWheel
    var outbox: MeshOutbox<Envelope>
    var inbox: MeshInbox<Envelope>
    var localMessages = OverflowQueue<Handler.Message>()
    var stopping = false

    init(shardID: ShardID, shardCount: Int, configuration: RuntimeConfiguration, ring: UnsafeMutablePointer<io_uring>,
         mesh: ShardMesh<Envelope>, nowMillis: UInt64) {
        self.shardID = shardID
        self.shardCount = shardCount
        self.configuration = configuration
        self.ring = ring
        self.nowMillis = nowMillis
        timers = TimerWheel(nowMillis: nowMillis)
        outbox = MeshOutbox(mesh: mesh, source: shardID, overflowCountMax: configuration.meshOverflowCountMax)
        inbox = MeshInbox(mesh: mesh, destination: shardID)
    }

    // MARK: - Connections

    /// Resolves a live connection ID to its slot index, or nil when it is stale or not in `state`.
    @inline(__always)
    func slotIndex(_ connection: ConnectionID, state: SlotState = .open) -> Int? {
        let index = Int(connection.index)
        guard index < slots.count, slots[index].generation == connection.generation,
              slots[index].state == state else { return nil }
        return index
    }

    /// Whether `connection` is open (not closed, not handed off).
    public func isOpen(_ connection: ConnectionID) -> Bool { slotIndex(connection) != nil }

    /// The peer address of an open connection (`getpeername`), for example of one adopted from another shard;
    /// nil when it is not open or the peer is already gone. A system call: control plane only.
    public func peerAddress(of connection: ConnectionID) -> SocketAddress? {
        guard let index = slotIndex(connection), slots[index].fd >= 0 else { return nil }
        let address = SocketAddress.of(socket: slots[index].fd, peer: true)
        return address.length == 0 ? nil : address
    }

    /// Number of open connections on this shard.
    public var connectionCount: Int { openCount }

    /// Bytes queued to `connection` and not yet written (pending plus in flight); 0 for a dead ID.
    public func outboundBytesQueued(_ connection: ConnectionID) -> Int {
        guard let index = slotIndex(connection) else { return 0 }
        return slots[index].queuedBytes
    }

    /// Appends `byteCount` bytes, written by `write` directly into the connection's outbound queue.
    /// - Returns: false (and counts `enqueueRefused`) when the connection is not open or the bytes would exceed
    ///   `outboundBytesMax`; nothing is written then. The caller applies its drop policy, and gets `writable`
    ///   once the queue drains below the low-water mark.
    public mutating func enqueue(_ connection: ConnectionID, byteCount: Int,
                                 write: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        enqueue(connection, byteCount: byteCount, limit: configuration.outboundBytesMax, write: write)
    }

    /// Appends like `enqueue(_:byteCount:write:)` but past `outboundBytesMax`: for bytes that cannot be dropped
    /// once produced (TLS records, whose sequence numbers are already spent). The layer above bounds them itself.
    /// - Returns: false only when the connection is not open.
    public mutating func enqueueBeyondLimit(_ connection: ConnectionID, byteCount: Int,
                                            write: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        enqueue(connection, byteCount: byteCount, limit: Int.max, write: write)
    }

    /// Asks for `writable` once the connection's queue drains below the low-water mark: for a layer above that
    /// refused bytes by its own bound (a TLS connection's plaintext). A dead ID is ignored.
    public mutating func requestWritable(_ connection: ConnectionID) {
        guard let index = slotIndex(connection) else { return }
        slots[index].wantsWritable = true
        counters.enqueueRefused &+= 1
    }

    /// Delivers the connection's kept (unconsumed) received bytes again on the next loop turn, without waiting for
    /// new bytes; the loop does not sleep meanwhile. For a handler that deferred work (a TLS handshake beyond its
    /// per-turn budget) by consuming nothing. A dead or paused ID is ignored.
    public mutating func redeliverNextTurn(_ connection: ConnectionID) {
        guard let index = slotIndex(connection), !slots[index].paused else { return }
        deliverAssembly.append(UInt32(index))
    }

    mutating func enqueue(_ connection: ConnectionID, byteCount: Int, limit: Int,
                          write: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        assertOnShardThread()
        precondition(byteCount >= 0, "negative byte count")
        guard let index = slotIndex(connection) else { return false }
        let queued = slots[index].queuedBytes
        if queued + byteCount > limit {
            counters.enqueueRefused &+= 1
            slots[index].wantsWritable = true
            return false
        }
        if byteCount == 0 { return true }
        let needed = slots[index].pendingCount + byteCount
        if needed > slots[index].pendingCapacity {
            var capacity = max(slots[index].pendingCapacity * 2, 4096)
            while capacity < needed { capacity *= 2 }
            let grown = realloc(slots[index].pending, capacity)
            precondition(grown != nil, "out of memory growing an outbound queue to \(capacity) bytes")
            slots[index].pending = grown
            slots[index].pendingCapacity = capacity
        }
        // Safe: pending has capacity ≥ pendingCount + byteCount (grown above).
        write(UnsafeMutableRawBufferPointer(start: slots[index].pending! + slots[index].pendingCount, count: byteCount))
        slots[index].pendingCount = needed
        if queued + byteCount >= configuration.outboundLowWaterBytes { slots[index].wantsWritable = true }
        markDirty(index)
        return true
    }

    /// Appends a copy of `bytes` to the connection's outbound queue; see `enqueue(_:byteCount:write:)`.
    public mutating func enqueue(_ connection: ConnectionID, bytes: UnsafeRawBufferPointer) -> Bool {
        enqueue(connection, byteCount: bytes.count) { destination in
            // Safe: destination has exactly bytes.count bytes.
            if let base = bytes.baseAddress { destination.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
        }
    }

    /// Closes `connection`. With `afterFlush`, queued output is sent first and reading continues meanwhile
    /// (data is still delivered); otherwise queued output is dropped and the socket shut down now. Either way
    /// `connectionClosed(.closedLocally)` follows. A dead ID is ignored.
    public mutating func close(_ connection: ConnectionID, afterFlush: Bool) {
        assertOnShardThread()
        guard let index = slotIndex(connection) else { return }
        if afterFlush {
            slots[index].closeAfterFlush = true
            slots[index].closeReason = .closedLocally
            markDirty(index)
        } else {
            beginTeardown(index, reason: .closedLocally)
        }
    }

    /// Stops reading `connection` (backpressure): no receive is re-armed while paused; bytes that arrive
    /// meanwhile are kept and delivered after `resumeReading`.
    public mutating func pauseReading(_ connection: ConnectionID) {
        assertOnShardThread()
        guard let index = slotIndex(connection), !slots[index].paused else { return }
        slots[index].paused = true
        if slots[index].receiveArmed { submitCancelReceive(index) }
    }

    /// Resumes reading `connection`: kept bytes are delivered this turn and the receive is re-armed.
    public mutating func resumeReading(_ connection: ConnectionID) {
        assertOnShardThread()
        guard let index = slotIndex(connection), slots[index].paused else { return }
        slots[index].paused = false
        if slots[index].assemblyCount > 0 { deliverAssembly.append(UInt32(index)) }
        if !slots[index].receiveArmed { rearmReceive.append(UInt32(index)) }
    }

    /// Whether reading `connection` is paused.
    public func isReadingPaused(_ connection: ConnectionID) -> Bool {
        guard let index = slotIndex(connection) else { return false }
        return slots[index].paused
    }

    /// Hands `connection` to shard `destination` with `state`. The handler forgets the ID now (no
    /// `connectionClosed` follows). The runtime stops the receive, lets queued output drain, then ships the
    /// descriptor, the unconsumed received bytes and `state` through the mesh; the receiver gets `adopted`.
    /// - Precondition: `destination` is another shard of the group.
    public mutating func handOff(_ connection: ConnectionID, to destination: ShardID, state: Handler.ConnectionState) {
        assertOnShardThread()
        precondition(destination != shardID && destination.rawValue < shardCount,
                     "handOff to \(destination) from \(shardID): must be another shard of the group")
        guard let index = slotIndex(connection) else { return }
        slots[index].state = .handingOff
        slots[index].handoffTarget = destination.rawValue
        handoffStates[UInt32(index)] = state
        openCount -= 1
        if slots[index].receiveArmed { submitCancelReceive(index) }
        handingOff.append(UInt32(index))
    }

    // MARK: - Mesh

    /// Sends `message` to shard `destination` (possibly this shard). Never blocks; see `SendResult`.
    public mutating func send(_ message: Handler.Message, to destination: ShardID) -> SendResult {
        assertOnShardThread()
        precondition(destination.rawValue < shardCount, "send to \(destination) of a \(shardCount)-shard group")
        if destination == shardID {
            localMessages.append(message)
            return .ok
        }
        let result = outbox.send(.message(message), to: destination)
        switch result {
        case .ok: counters.meshSent &+= 1
        case .queuedInOverflow: counters.meshSent &+= 1; counters.meshOverflowQueued &+= 1
        case .refused: counters.meshRefused &+= 1
        }
        return result
    }

    /// Messages waiting in this shard's overflow list for `destination` (pressure indicator).
    public func meshOverflowCount(to destination: ShardID) -> Int { outbox.overflowCount(to: destination) }

    // MARK: - Timers

    /// Arms a timer firing `token` at `deadlineMillis` (same clock as `nowMillis`).
    public mutating func armTimer(deadlineMillis: UInt64, token: UInt64) -> TimerID {
        assertOnShardThread()
        return timers.arm(deadlineMillis: deadlineMillis, token: token)
    }

    /// Arms a timer firing `token` `afterMillis` from this turn's `nowMillis`.
    public mutating func armTimer(afterMillis: UInt64, token: UInt64) -> TimerID {
        timers.arm(deadlineMillis: nowMillis &+ afterMillis, token: token)
    }

    /// Cancels a timer; false when it already fired or was cancelled.
    @discardableResult
    public mutating func cancelTimer(_ id: TimerID) -> Bool { timers.cancel(id) }

    // MARK: - Internals

    /// Debug-build check that the caller runs on this shard's thread.
    @inline(__always)
    func assertOnShardThread() {
        assert(pthread_equal(pthread_self(), ownerThread) != 0, "ShardContext of \(shardID) used from another thread")
    }

    mutating func markDirty(_ index: Int) {
        if !slots[index].inDirtyList {
            slots[index].inDirtyList = true
            dirty.append(UInt32(index))
        }
    }

    /// Gets an SQE, submitting to make room when the queue is full.
    mutating func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let entry = io_uring_get_sqe(ring) { return entry }
        _ = io_uring_submit(ring)
        guard let entry = io_uring_get_sqe(ring) else {
            preconditionFailure("io_uring submission queue still full after submit")
        }
        return entry
    }

    mutating func submitCancelReceive(_ index: Int) {
        let entry = sqe()
        io_uring_prep_cancel64(entry, packUserData(.receive, index: UInt32(index), generation: slots[index].generation), 0)
        io_uring_sqe_set_data64(entry, packUserData(.ignore, index: 0, generation: 0))
    }

    mutating func armReceive(_ index: Int) {
        let entry = sqe()
        io_uring_prep_recv_multishot(entry, slots[index].fd, nil, 0, 0)
        shoal_sqe_set_flags(entry, shoal_IOSQE_BUFFER_SELECT)
        shoal_sqe_set_buf_group(entry, 0)
        io_uring_sqe_set_data64(entry, packUserData(.receive, index: UInt32(index), generation: slots[index].generation))
        slots[index].receiveArmed = true
    }

    mutating func submitSend(_ index: Int) {
        let entry = sqe()
        let slot = slots[index]
        // Safe: inflight holds inflightCount bytes and stays allocated until this send's completion.
        io_uring_prep_send(entry, slot.fd, slot.inflight! + slot.inflightSent, slot.inflightCount - slot.inflightSent,
                           Int32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(entry, packUserData(.send, index: UInt32(index), generation: slot.generation))
        slots[index].sendInFlight = true
        counters.sendsSubmitted &+= 1
    }

    /// Allocates a slot for `fd` (state open) or returns nil when the shard is full.
    mutating func allocateSlot(fd: Int32) -> Int? {
        if openCount + closing.count + handingOff.count >= configuration.connectionCountMax { return nil }
        let index: Int
        if let free = freeSlots.popLast() {
            index = Int(free)
        } else {
            precondition(slots.count < 0xFF_FFFF, "connection slab index space exhausted")
            index = slots.count
            slots.append(ConnectionSlot())
        }
        let generation = slots[index].generation
        slots[index] = ConnectionSlot()
        slots[index].generation = generation
        slots[index].fd = fd
        slots[index].state = .open
        openCount += 1
        return index
    }

    /// The connection leaves the handler's view: output dropped, socket shut down, notification queued; the slot
    /// is freed once its in-flight operations complete.
    mutating func beginTeardown(_ index: Int, reason: CloseReason) {
        precondition(slots[index].state == .open, "teardown of a slot that is not open")
        slots[index].state = .closing
        openCount -= 1
        free(slots[index].pending)
        slots[index].pending = nil
        slots[index].pendingCount = 0
        slots[index].pendingCapacity = 0
        // Shutting down wakes any in-flight receive (EOF) and send (EPIPE) so the slot can be freed promptly; the
        // descriptor itself is closed only after they complete, so its number cannot be reused under them.
        shutdown(slots[index].fd, Int32(SHUT_RDWR))
        if slots[index].receiveArmed { submitCancelReceive(index) }
        closing.append(UInt32(index))
        closedEvents.append((ConnectionID(index: UInt32(index), generation: slots[index].generation), reason))
        counters.closed &+= 1
    }

    /// Frees a slot's buffers and returns it to the free list (bumping its generation). Closes the descriptor
    /// unless `keepFD` (handoff).
    mutating func releaseSlot(_ index: Int, keepFD: Bool) {
        precondition(!slots[index].sendInFlight && !slots[index].receiveArmed, "releasing a slot with operations in flight")
        if !keepFD && slots[index].fd >= 0 { Glibc.close(slots[index].fd) }
        free(slots[index].assembly)
        free(slots[index].pending)
        free(slots[index].inflight)
        let generation = slots[index].generation &+ 1
        slots[index] = ConnectionSlot()
        slots[index].generation = generation
        freeSlots.append(UInt32(index))
    }

    /// Appends bytes to a slot's assembly buffer, growing it as needed.
    mutating func appendAssembly(_ index: Int, _ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let needed = slots[index].assemblyCount + bytes.count
        if needed > slots[index].assemblyCapacity {
            var capacity = max(slots[index].assemblyCapacity * 2, 512)
            while capacity < needed { capacity *= 2 }
            let grown = realloc(slots[index].assembly, capacity)
            precondition(grown != nil, "out of memory growing an assembly buffer to \(capacity) bytes")
            slots[index].assembly = grown
            slots[index].assemblyCapacity = capacity
        }
        // Safe: capacity ≥ assemblyCount + bytes.count.
        (slots[index].assembly! + slots[index].assemblyCount).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        slots[index].assemblyCount = needed
    }

    /// Drops the first `count` bytes of the assembly buffer; frees it when empty.
    mutating func consumeAssembly(_ index: Int, _ count: Int) {
        let remaining = slots[index].assemblyCount - count
        if remaining == 0 {
            free(slots[index].assembly)
            slots[index].assembly = nil
            slots[index].assemblyCount = 0
            slots[index].assemblyCapacity = 0
        } else if count > 0 {
            // Safe: both ranges lie within the buffer's assemblyCount bytes.
            slots[index].assembly!.copyMemory(from: slots[index].assembly! + count, byteCount: remaining)
            slots[index].assemblyCount = remaining
        }
    }
}
