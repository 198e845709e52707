import Synchronization

// MARK: - ShardMesh

/// N×N SPSC rings, one per ordered pair of distinct shards: `ring(from: a, to: b)` is written only by shard
/// `a`'s thread and read only by shard `b`'s thread. A shard's messages to itself do not use the mesh.
///
/// ```
///            to 0      to 1      to 2
/// from 0  [  —    ] [ ring 01 ] [ ring 02 ]
/// from 1  [ ring10 ] [   —    ] [ ring 12 ]
/// from 2  [ ring20 ] [ ring 21 ] [   —    ]
/// ```
public final class ShardMesh<Element: Sendable>: @unchecked Sendable {
    /// Number of shards.
    public let shardCount: Int
    /// Slot count of each ring.
    public let ringCapacity: Int
    @usableFromInline let rings: [SPSCRing<Element>?]

    /// Creates `shardCount × (shardCount - 1)` rings of `ringCapacity` slots (rounded up to a power of two).
    public init(shardCount: Int, ringCapacity: Int) {
        precondition(shardCount > 0, "a mesh needs at least one shard")
        self.shardCount = shardCount
        var rings: [SPSCRing<Element>?] = []
        rings.reserveCapacity(shardCount * shardCount)
        for from in 0..<shardCount {
            for to in 0..<shardCount {
                rings.append(from == to ? nil : SPSCRing<Element>(capacity: ringCapacity))
            }
        }
        self.rings = rings
        self.ringCapacity = rings.first(where: { $0 != nil })??.capacity ?? ringCapacity
    }

    /// The ring carrying messages from `from` to `to`.
    /// - Precondition: `from != to`, both below `shardCount`.
    @inlinable
    public func ring(from: ShardID, to: ShardID) -> SPSCRing<Element> {
        precondition(from != to && from.rawValue < shardCount && to.rawValue < shardCount,
                     "no mesh ring from \(from) to \(to)")
        return rings[from.rawValue &* shardCount &+ to.rawValue].unsafelyUnwrapped
    }
}

// MARK: - OverflowQueue

/// A growable FIFO used for the producer-side overflow of a full ring (control plane: it allocates).
@usableFromInline
struct OverflowQueue<Element> {
    @usableFromInline var items: [Element?] = []
    @usableFromInline var headIndex = 0

    @usableFromInline init() {}

    @inlinable var count: Int { items.count - headIndex }
    @inlinable var isEmpty: Bool { headIndex == items.count }

    @inlinable mutating func append(_ element: Element) { items.append(element) }

    @inlinable func peek() -> Element? { isEmpty ? nil : items[headIndex] }

    @inlinable mutating func removeFirst() -> Element? {
        if isEmpty { return nil }
        let element = items[headIndex].take()
        headIndex += 1
        if headIndex == items.count {
            items.removeAll(keepingCapacity: items.count <= 1024)
            headIndex = 0
        } else if headIndex >= 1024 && headIndex * 2 >= items.count {
            items.removeFirst(headIndex)
            headIndex = 0
        }
        return element
    }
}

// MARK: - MeshOutbox

/// One shard's sending side of the mesh: a producer on each outgoing ring plus a bounded local overflow list
/// per destination. Sending never blocks: when a ring is full the message waits in overflow (reported as
/// pressure); past the cap it is refused. Overflow moves into the rings at `flush()`, in order, before
/// tails are published.
public struct MeshOutbox<Element: Sendable> {
    /// The sending shard.
    public let source: ShardID
    @usableFromInline let mesh: ShardMesh<Element>
    @usableFromInline var overflow: [OverflowQueue<Element>]
    @usableFromInline var dirty: [Bool]
    /// Maximum messages kept in one destination's overflow list.
    public let overflowCountMax: Int
    /// Messages that went to overflow because a ring was full.
    public var overflowQueuedCount: UInt64 = 0
    /// Messages refused because an overflow list was at its cap.
    public var refusedCount: UInt64 = 0

    /// Creates the outbox of shard `source`.
    public init(mesh: ShardMesh<Element>, source: ShardID, overflowCountMax: Int) {
        self.mesh = mesh
        self.source = source
        self.overflowCountMax = overflowCountMax
        overflow = Array(repeating: OverflowQueue(), count: mesh.shardCount)
        dirty = Array(repeating: false, count: mesh.shardCount)
    }

    /// Sends `element` to shard `destination` (not `source`). Visible to the receiver after `flush()`.
    @inlinable
    public mutating func send(_ element: Element, to destination: ShardID) -> SendResult {
        let index = destination.rawValue
        if overflow[index].isEmpty {
            if mesh.ring(from: source, to: destination).push(element) {
                dirty[index] = true
                return .ok
            }
        }
        if overflow[index].count >= overflowCountMax {
            refusedCount &+= 1
            return .refused
        }
        overflow[index].append(element)
        overflowQueuedCount &+= 1
        return .queuedInOverflow
    }

    /// Messages waiting in the overflow list for `destination`.
    public func overflowCount(to destination: ShardID) -> Int { overflow[destination.rawValue].count }

    /// Total messages waiting in overflow lists.
    public var overflowCountTotal: Int { overflow.reduce(0) { $0 + $1.count } }

    /// Moves overflow into rings while they have room, publishes every ring that got something new, and
    /// calls `published` with each destination that did (so the caller can ring its doorbell).
    @inlinable
    public mutating func flush(_ published: (ShardID) -> Void) {
        for index in 0..<mesh.shardCount where index != source.rawValue {
            let destination = ShardID(index)
            if !overflow[index].isEmpty {
                let ring = mesh.ring(from: source, to: destination)
                while let next = overflow[index].peek() {
                    if !ring.push(next) { break }
                    _ = overflow[index].removeFirst()
                    dirty[index] = true
                }
            }
            if dirty[index] {
                dirty[index] = false
                if mesh.ring(from: source, to: destination).publish() { published(destination) }
            }
        }
    }
}

// MARK: - MeshInbox

/// One shard's receiving side of the mesh: a consumer on each incoming ring, drained round-robin in bounded
/// batches for fairness.
public struct MeshInbox<Element: Sendable> {
    /// The receiving shard.
    public let destination: ShardID
    @usableFromInline let mesh: ShardMesh<Element>
    @usableFromInline var nextSource = 0

    /// Creates the inbox of shard `destination`.
    public init(mesh: ShardMesh<Element>, destination: ShardID) {
        self.mesh = mesh
        self.destination = destination
    }

    /// Takes up to `batchCountMax` messages from each incoming ring and passes each to `body` with its sender.
    /// - Returns: the number of messages taken.
    @inlinable
    @discardableResult
    public mutating func drain(batchCountMax: Int, _ body: (Element, ShardID) -> Void) -> Int {
        let shardCount = mesh.shardCount
        var total = 0
        for step in 0..<shardCount {
            let index = (nextSource &+ step) % shardCount
            if index == destination.rawValue { continue }
            let source = ShardID(index)
            let ring = mesh.ring(from: source, to: destination)
            var taken = 0
            while taken < batchCountMax, let element = ring.pop() {
                body(element, source)
                taken &+= 1
            }
            if taken > 0 { ring.releaseConsumed() }
            total &+= taken
        }
        nextSource = (nextSource &+ 1) % shardCount
        return total
    }

    /// Whether every incoming ring looks empty (reloading the published tails): the re-check a shard makes
    /// after announcing that it sleeps.
    public func allEmpty() -> Bool {
        for index in 0..<mesh.shardCount where index != destination.rawValue {
            if !mesh.ring(from: ShardID(index), to: destination).consumerSeesEmpty() { return false }
        }
        return true
    }
}
