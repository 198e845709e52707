// MARK: - Subscriber list (the subscribers of one filter)

/// The subscribers of one filter on one node, each with its per-subscription value, in a stable order.
///
/// Members live in one array, so iterating is a linear walk and the order depends only on the sequence of
/// operations (insertion order, with swap-removal), never on hashing: a simulation replays identically.
/// Lookup is a linear scan up to ``linearScanCountMax`` members; above it a position index is kept too.
public struct SubscriberList<Subscriber: Hashable, Value> {
    /// One member: a subscriber and its value.
    public struct Member {
        /// The subscriber.
        public var subscriber: Subscriber
        /// The subscription's value (for example options and subscription identifier).
        public var value: Value

        @inlinable
        init(subscriber: Subscriber, value: Value) {
            self.subscriber = subscriber
            self.value = value
        }
    }

    /// Up to this many members, lookups scan; beyond it a `Subscriber -> position` index is maintained.
    /// Most filters have one subscriber, and an empty dictionary costs no allocation.
    public static var linearScanCountMax: Int { 8 }

    @usableFromInline var members: [Member]
    @usableFromInline var positions: [Subscriber: Int]

    /// An empty list.
    @inlinable
    public init() {
        members = []
        positions = [:]
    }

    /// The number of members.
    @inlinable
    public var count: Int { members.count }

    /// Whether the list has no member.
    @inlinable
    public var isEmpty: Bool { members.isEmpty }

    /// The member at `position`, `0..<count`.
    @inlinable
    public subscript(position: Int) -> Member { members[position] }

    /// Calls `body` for each member in order.
    @inlinable
    public func forEach(_ body: (Subscriber, Value) -> Void) {
        for member in members { body(member.subscriber, member.value) }
    }

    /// The position of `subscriber`, or `nil`.
    @inlinable
    public func position(of subscriber: Subscriber) -> Int? {
        if members.count > SubscriberList.linearScanCountMax { return positions[subscriber] }
        for position in members.indices where members[position].subscriber == subscriber { return position }
        return nil
    }

    /// The value of `subscriber`, or `nil`.
    @inlinable
    public func value(of subscriber: Subscriber) -> Value? {
        position(of: subscriber).map { members[$0].value }
    }

    /// The member chosen by `counter` (`counter mod count`): with a rotating counter, round robin.
    /// - Precondition: the list is not empty.
    @inlinable
    public func select(using counter: UInt64) -> Member {
        precondition(!members.isEmpty, "selecting from an empty subscriber list")
        return members[Int(counter % UInt64(members.count))]
    }

    /// Sets the value of `subscriber`, adding it at the end if absent.
    /// - Returns: the previous value, or `nil` if the subscriber was added.
    @discardableResult
    public mutating func updateValue(_ value: Value, for subscriber: Subscriber) -> Value? {
        if let position = position(of: subscriber) {
            let previous = members[position].value
            members[position].value = value
            return previous
        }
        members.append(Member(subscriber: subscriber, value: value))
        if members.count > SubscriberList.linearScanCountMax {
            if members.count == SubscriberList.linearScanCountMax + 1 {
                positions.reserveCapacity(members.count)
                for (position, member) in members.enumerated() { positions[member.subscriber] = position }
            } else {
                positions[subscriber] = members.count - 1
            }
        }
        return nil
    }

    /// Removes `subscriber`, moving the last member into its place.
    /// - Returns: its value, or `nil` if it was absent.
    @discardableResult
    public mutating func removeValue(for subscriber: Subscriber) -> Value? {
        guard let position = position(of: subscriber) else { return nil }
        let removed = members[position].value
        let indexed = members.count > SubscriberList.linearScanCountMax
        let last = members.count - 1
        if position != last {
            members[position] = members[last]
            if indexed { positions[members[position].subscriber] = position }
        }
        members.removeLast()
        if indexed {
            if members.count > SubscriberList.linearScanCountMax {
                positions.removeValue(forKey: subscriber)
            } else {
                positions = [:]
            }
        }
        return removed
    }
}
