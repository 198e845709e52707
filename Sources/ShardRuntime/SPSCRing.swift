import Synchronization

// MARK: - SPSCRing

/// A fixed-capacity, lock-free, single-producer/single-consumer ring of Swift values.
///
/// Built as Seastar and Glommio build theirs: power-of-two capacity, published indices on separate 128-byte
/// cache lines, each side keeping a cached view of the other side's index (so the shared line is read only
/// when the cached view says "full" or "empty"), acquire/release ordering, and batched publication: `push`
/// writes the slot and advances a private cursor; `publish()` makes everything pushed so far visible with one
/// release store (the shard calls it once per loop turn). The consumer likewise frees slots in batches with
/// `releaseConsumed()`.
///
/// ```
/// control (4 × 128 bytes, 128-byte aligned)
/// ┌──────────────────────────────┐ 0    written by the producer, read by the consumer
/// │ tail: Atomic<Int>            │
/// ├──────────────────────────────┤ 128  written by the consumer, read by the producer
/// │ head: Atomic<Int>            │
/// ├──────────────────────────────┤ 256  producer-private
/// │ localTail, cachedHead,       │
/// │ publishedTail                │
/// ├──────────────────────────────┤ 384  consumer-private
/// │ localHead, cachedTail        │
/// └──────────────────────────────┘
/// slots: capacity × Element, index = counter & (capacity - 1); counters are free-running Ints.
/// ```
///
/// Elements may hold class references: they are initialised into a slot on push, moved out on pop, and any
/// left over are deinitialised when the ring is freed.
///
/// Thread rules: exactly one thread calls the producer methods (`push`, `publish`) and exactly one thread
/// calls the consumer methods (`pop`, `releaseConsumed`, `consumerSeesEmpty`). `SPSCProducer` and
/// `SPSCConsumer` wrap those halves as noncopyable owners; the shard mesh calls them directly from the
/// owning shard threads.
public final class SPSCRing<Element: Sendable>: @unchecked Sendable {
    /// Number of slots (a power of two).
    public let capacity: Int
    @usableFromInline let mask: Int
    @usableFromInline let control: UnsafeMutableRawPointer
    @usableFromInline let slots: UnsafeMutablePointer<Element>

    @usableFromInline static var lineBytes: Int { 128 }

    /// Creates a ring.
    /// - Parameter capacity: slot count; rounded up to a power of two, at least 2.
    public init(capacity: Int) {
        precondition(capacity > 0 && capacity <= 1 << 30, "SPSCRing capacity out of range: \(capacity)")
        var rounded = 2
        while rounded < capacity { rounded <<= 1 }
        self.capacity = rounded
        self.mask = rounded - 1
        control = UnsafeMutableRawPointer.allocate(byteCount: 4 * 128, alignment: 128)
        // Safe: the control block is 512 bytes, each field sits at its own offset within it.
        control.initializeMemory(as: UInt8.self, repeating: 0, count: 4 * 128)
        control.bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (control + 128).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (control + 256).bindMemory(to: Int.self, capacity: 3).initialize(repeating: 0, count: 3)
        (control + 384).bindMemory(to: Int.self, capacity: 2).initialize(repeating: 0, count: 2)
        slots = UnsafeMutablePointer<Element>.allocate(capacity: rounded)
    }

    deinit {
        // Both ends are gone (they hold references), so [localHead, localTail) are exactly the initialised slots,
        // published or not.
        var index = localHead.pointee
        let end = localTail.pointee
        while index != end {
            // Safe: slots in [localHead, localTail) were initialised by push and not yet moved out.
            (slots + (index & mask)).deinitialize(count: 1)
            index &+= 1
        }
        slots.deallocate()
        (control).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
        (control + 128).assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
        control.deallocate()
    }

    // MARK: - Field access

    @usableFromInline var tail: UnsafeMutablePointer<Atomic<Int>> {
        @inline(__always) get { control.assumingMemoryBound(to: Atomic<Int>.self) }
    }
    @usableFromInline var head: UnsafeMutablePointer<Atomic<Int>> {
        @inline(__always) get { (control + 128).assumingMemoryBound(to: Atomic<Int>.self) }
    }
    @usableFromInline var localTail: UnsafeMutablePointer<Int> {
        @inline(__always) get { (control + 256).assumingMemoryBound(to: Int.self) }
    }
    @usableFromInline var cachedHead: UnsafeMutablePointer<Int> {
        @inline(__always) get { (control + 256 + 8).assumingMemoryBound(to: Int.self) }
    }
    @usableFromInline var publishedTail: UnsafeMutablePointer<Int> {
        @inline(__always) get { (control + 256 + 16).assumingMemoryBound(to: Int.self) }
    }
    @usableFromInline var localHead: UnsafeMutablePointer<Int> {
        @inline(__always) get { (control + 384).assumingMemoryBound(to: Int.self) }
    }
    @usableFromInline var cachedTail: UnsafeMutablePointer<Int> {
        @inline(__always) get { (control + 384 + 8).assumingMemoryBound(to: Int.self) }
    }

    // MARK: - Producer side

    /// Appends `element` if a slot is free; it becomes visible to the consumer at the next `publish()`.
    /// Producer thread only.
    /// - Returns: false when the ring is full (the element is not stored).
    @inlinable
    public func push(_ element: Element) -> Bool {
        let position = localTail.pointee
        if position &- cachedHead.pointee == capacity {
            cachedHead.pointee = head.pointee.load(ordering: .acquiring)
            if position &- cachedHead.pointee == capacity { return false }
        }
        // Safe: position - head < capacity, so the slot is free (moved out by the consumer or never used).
        (slots + (position & mask)).initialize(to: element)
        localTail.pointee = position &+ 1
        return true
    }

    /// Number of elements pushed but not yet published. Producer thread only.
    @inlinable
    public var unpublishedCount: Int { localTail.pointee &- publishedTail.pointee }

    /// Makes every pushed element visible to the consumer with one release store. Producer thread only.
    /// - Returns: true when something new was published.
    @inlinable
    @discardableResult
    public func publish() -> Bool {
        let position = localTail.pointee
        if position == publishedTail.pointee { return false }
        publishedTail.pointee = position
        tail.pointee.store(position, ordering: .releasing)
        return true
    }

    // MARK: - Consumer side

    /// Removes the oldest published element, or returns nil when none is visible. Consumer thread only.
    /// The slot is returned to the producer at the next `releaseConsumed()`.
    @inlinable
    public func pop() -> Element? {
        let position = localHead.pointee
        if position == cachedTail.pointee {
            cachedTail.pointee = tail.pointee.load(ordering: .acquiring)
            if position == cachedTail.pointee { return nil }
        }
        localHead.pointee = position &+ 1
        // Safe: position < published tail, so the slot was initialised and published by the producer.
        return (slots + (position & mask)).move()
    }

    /// Returns consumed slots to the producer with one release store. Consumer thread only.
    @inlinable
    public func releaseConsumed() {
        head.pointee.store(localHead.pointee, ordering: .releasing)
    }

    /// Whether the consumer sees no published element (reloads the published tail). Consumer thread only.
    /// Used for the re-check after announcing sleep.
    @inlinable
    public func consumerSeesEmpty() -> Bool {
        cachedTail.pointee = tail.pointee.load(ordering: .acquiring)
        return cachedTail.pointee == localHead.pointee
    }
}

// MARK: - Noncopyable ends

/// The producing half of an `SPSCRing`, as a noncopyable owner: exactly one exists per ring by construction
/// when rings are used through `SPSCRing.makeEnds(capacity:)`.
public struct SPSCProducer<Element: Sendable>: ~Copyable, @unchecked Sendable {
    /// The shared ring.
    @usableFromInline let ring: SPSCRing<Element>

    /// Wraps the producing half of `ring`. The caller guarantees that no other producer exists.
    public init(_ ring: SPSCRing<Element>) { self.ring = ring }

    /// See `SPSCRing.push(_:)`.
    @inlinable public func push(_ element: Element) -> Bool { ring.push(element) }

    /// See `SPSCRing.publish()`.
    @inlinable @discardableResult public func publish() -> Bool { ring.publish() }

    deinit { ring.publish() }
}

/// The consuming half of an `SPSCRing`, as a noncopyable owner.
public struct SPSCConsumer<Element: Sendable>: ~Copyable, @unchecked Sendable {
    /// The shared ring.
    @usableFromInline let ring: SPSCRing<Element>

    /// Wraps the consuming half of `ring`. The caller guarantees that no other consumer exists.
    public init(_ ring: SPSCRing<Element>) { self.ring = ring }

    /// See `SPSCRing.pop()`.
    @inlinable public func pop() -> Element? { ring.pop() }

    /// See `SPSCRing.releaseConsumed()`.
    @inlinable public func releaseConsumed() { ring.releaseConsumed() }

    deinit { ring.releaseConsumed() }
}
