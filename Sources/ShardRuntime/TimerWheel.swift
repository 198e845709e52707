// MARK: - TimerID

/// A timer in one shard's wheel: slab slot plus generation, so cancelling a timer that already fired (and whose
/// slot was reused) is recognised and does nothing.
public struct TimerID: Hashable, Sendable {
    /// Slot index in the wheel's node slab.
    public var index: UInt32
    /// Generation of the slot when the timer was armed.
    public var generation: UInt32
    /// Rebuilds an ID (for instance from a packed UInt64 kept by the layer above).
    @inlinable public init(index: UInt32, generation: UInt32) {
        self.index = index
        self.generation = generation
    }
}

// MARK: - TimerWheel

/// A hierarchical timer wheel with millisecond ticks (the design of tokio's and Linux's wheels).
///
/// Six levels of 64 slots: level L's slots each span 64^L ms, so level 0 covers the next 64 ms at 1 ms
/// resolution, level 1 the next ~4 s at 64 ms, level 2 ~4.4 min, level 3 ~4.7 h, level 4 ~12 days and level 5
/// ~2.2 years; deadlines further out are parked in the top level and re-placed as time passes. A timer is put
/// in the level of the highest bit in which its deadline differs from the wheel's current time; when its slot
/// comes due, it either fires or moves down a level. Each level keeps a 64-bit occupancy mask, so finding
/// the next deadline is at most six bit scans.
///
/// ```
/// level 5 [..64 slots..]  4096^... ms per slot
///   ...
/// level 1 [s0 s1 ... s63]  64 ms per slot  ──cascade──┐
/// level 0 [s0 s1 ... s63]   1 ms per slot  ◄──────────┘ fire
/// ```
///
/// Time is a parameter (`nowMillis` values supplied by the caller), so the wheel is tested without clocks.
/// Arm and cancel are O(1) (a doubly linked list per slot over a node slab); timers due in the same
/// millisecond fire in arming order; timers fire in deadline order across milliseconds.
public struct TimerWheel {
    @usableFromInline static var levelCount: Int { 6 }
    @usableFromInline static var maxDurationMillis: UInt64 { 1 << 36 }
    @usableFromInline static var dueList: Int { 6 * 64 }
    @usableFromInline static var none: Int32 { -1 }

    @usableFromInline struct Node {
        @usableFromInline var deadline: UInt64 = 0
        @usableFromInline var token: UInt64 = 0
        @usableFromInline var previous: Int32 = -1
        @usableFromInline var next: Int32 = -1
        @usableFromInline var generation: UInt32 = 0
        /// List index (level * 64 + slot, or `dueList`), or -1 when the node is free.
        @usableFromInline var list: Int32 = -1
    }

    /// The wheel's current time in milliseconds (the latest `advance(to:)`).
    public private(set) var elapsedMillis: UInt64
    /// Number of armed timers.
    public private(set) var count = 0
    @usableFromInline var nodes: [Node] = []
    @usableFromInline var freeHead: Int32 = -1
    @usableFromInline var heads: [Int32]
    @usableFromInline var tails: [Int32]
    @usableFromInline var occupied: [UInt64]

    /// Creates an empty wheel whose current time is `nowMillis`.
    public init(nowMillis: UInt64) {
        elapsedMillis = nowMillis
        heads = Array(repeating: -1, count: 6 * 64 + 1)
        tails = Array(repeating: -1, count: 6 * 64 + 1)
        occupied = Array(repeating: 0, count: 6)
    }

    // MARK: - Arm and cancel

    /// Arms a timer that fires `token` at `deadlineMillis` (absolute, same clock as `advance(to:)`). A deadline at
    /// or before the current time fires at the next `advance`.
    public mutating func arm(deadlineMillis: UInt64, token: UInt64) -> TimerID {
        let index: Int32
        if freeHead != TimerWheel.none {
            index = freeHead
            freeHead = nodes[Int(index)].next
        } else {
            precondition(nodes.count < Int(Int32.max), "timer wheel full")
            index = Int32(nodes.count)
            nodes.append(Node())
        }
        nodes[Int(index)].deadline = deadlineMillis
        nodes[Int(index)].token = token
        count += 1
        insert(index)
        return TimerID(index: UInt32(index), generation: nodes[Int(index)].generation)
    }

    /// Cancels a timer.
    /// - Returns: false when it already fired or was cancelled.
    @discardableResult
    public mutating func cancel(_ id: TimerID) -> Bool {
        let index = Int(id.index)
        guard index < nodes.count, nodes[index].generation == id.generation, nodes[index].list >= 0 else { return false }
        unlink(Int32(index))
        free(Int32(index))
        return true
    }

    /// The earliest deadline of an armed timer (a lower bound: a timer parked in a coarse slot reports its slot's
    /// start), or nil when none is armed. Use it as the wait timeout.
    public func nextDeadlineMillis() -> UInt64? {
        if heads[TimerWheel.dueList] != TimerWheel.none { return elapsedMillis }
        return nextExpiration()?.deadline
    }

    /// Moves the wheel's time to `nowMillis` and appends the token of every timer due by then to `fired`, in
    /// deadline order. Fired timers are released before this returns, so the caller may arm and cancel while
    /// handling them.
    public mutating func advance(to nowMillis: UInt64, fired: inout [UInt64]) {
        takeList(TimerWheel.dueList, into: &fired)
        while let expiration = nextExpiration(), expiration.deadline <= nowMillis {
            elapsedMillis = expiration.deadline
            let list = expiration.level * 64 + expiration.slot
            var index = heads[list]
            heads[list] = TimerWheel.none
            tails[list] = TimerWheel.none
            occupied[expiration.level] &= ~(1 << UInt64(expiration.slot))
            while index != TimerWheel.none {
                let next = nodes[Int(index)].next
                nodes[Int(index)].list = -1
                if nodes[Int(index)].deadline <= elapsedMillis {
                    fired.append(nodes[Int(index)].token)
                    free(index)
                } else {
                    insert(index)
                }
                index = next
            }
            takeList(TimerWheel.dueList, into: &fired)
        }
        if nowMillis > elapsedMillis { elapsedMillis = nowMillis }
    }

    // MARK: - Internals

    mutating func takeList(_ list: Int, into fired: inout [UInt64]) {
        var index = heads[list]
        heads[list] = TimerWheel.none
        tails[list] = TimerWheel.none
        while index != TimerWheel.none {
            let next = nodes[Int(index)].next
            fired.append(nodes[Int(index)].token)
            nodes[Int(index)].list = -1
            free(index)
            index = next
        }
    }

    mutating func insert(_ index: Int32) {
        let deadline = nodes[Int(index)].deadline
        let list: Int
        if deadline <= elapsedMillis {
            list = TimerWheel.dueList
        } else {
            var masked = (elapsedMillis ^ deadline) | 63
            if masked >= TimerWheel.maxDurationMillis { masked = TimerWheel.maxDurationMillis - 1 }
            let level = (63 - masked.leadingZeroBitCount) / 6
            // A deadline beyond the top level's reach is placed by its top-level digit (the top level acts as a
            // ring) and re-placed when that slot comes due.
            let slot = Int((deadline >> UInt64(level * 6)) & 63)
            list = level * 64 + slot
            occupied[level] |= 1 << UInt64(slot)
        }
        nodes[Int(index)].list = Int32(list)
        nodes[Int(index)].next = TimerWheel.none
        nodes[Int(index)].previous = tails[list]
        if tails[list] != TimerWheel.none {
            nodes[Int(tails[list])].next = index
        } else {
            heads[list] = index
        }
        tails[list] = index
    }

    mutating func unlink(_ index: Int32) {
        let node = nodes[Int(index)]
        let list = Int(node.list)
        if node.previous != TimerWheel.none { nodes[Int(node.previous)].next = node.next } else { heads[list] = node.next }
        if node.next != TimerWheel.none { nodes[Int(node.next)].previous = node.previous } else { tails[list] = node.previous }
        if heads[list] == TimerWheel.none && list < TimerWheel.dueList {
            occupied[list / 64] &= ~(1 << UInt64(list % 64))
        }
        nodes[Int(index)].list = -1
    }

    mutating func free(_ index: Int32) {
        nodes[Int(index)].generation &+= 1
        nodes[Int(index)].list = -1
        nodes[Int(index)].next = freeHead
        freeHead = index
        count -= 1
    }

    func nextExpiration() -> (level: Int, slot: Int, deadline: UInt64)? {
        for level in 0..<TimerWheel.levelCount where occupied[level] != 0 {
            let slotRange: UInt64 = 1 << UInt64(6 * level)
            let levelRange: UInt64 = slotRange << 6
            let nowSlot = Int((elapsedMillis / slotRange) & 63)
            let rotated = (occupied[level] >> UInt64(nowSlot)) | (occupied[level] << UInt64((64 - nowSlot) & 63))
            let rotatedMask = nowSlot == 0 ? occupied[level] : rotated
            let slot = (rotatedMask.trailingZeroBitCount + nowSlot) & 63
            let levelStart = elapsedMillis & ~(levelRange &- 1)
            var deadline = levelStart &+ UInt64(slot) &* slotRange
            if deadline <= elapsedMillis && level > 0 { deadline &+= levelRange }
            return (level, slot, deadline)
        }
        return nil
    }
}
