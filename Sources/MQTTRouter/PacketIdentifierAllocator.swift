// MARK: - Packet identifiers for outgoing QoS 1 and 2

/// Hands out the packet identifiers of one session's outgoing QoS 1 and QoS 2 PUBLISH packets.
///
/// [MQTT-2.2.1-3] Each time a server sends a new PUBLISH with QoS > 0 it MUST assign it a currently unused
/// non-zero packet identifier. Identifiers are `1...65535`, never 0, and a released one is not reused until the
/// cursor comes round again (identifiers are handed out in rotating order), which keeps a late acknowledgement
/// of an old identifier from being mistaken for a new one as long as possible.
///
/// Memory follows use: while at most ``smallSetCountMax`` identifiers are in use (the common case: inflight is
/// bounded by receive-maximum, 20 by default) they are kept in a small hash set, and the rotating cursor finds
/// a free identifier in O(1) amortised probes. Past that, a two-level bitmap (8 KiB of words plus a 128-byte
/// summary of full words) takes over: any allocation is a bounded number of word operations (at most 17
/// summary words and one `trailingZeroBitCount`). The bitmap is dropped when the session's use returns to zero.
public struct PacketIdentifierAllocator: Sendable {
    /// The most identifiers kept in the small set before switching to the bitmap.
    public static var smallSetCountMax: Int { 1024 }

    /// The number of usable identifiers: `1...65535`.
    public static var capacity: Int { 65535 }

    @usableFromInline var cursor: UInt16
    @usableFromInline var small: Set<UInt16>
    /// Bit `id & 63` of word `id >> 6` is set when `id` is in use; bit 0 (identifier 0) is always set.
    /// Empty while the small set is in use.
    @usableFromInline var words: [UInt64]
    /// Bit `w & 63` of summary word `w >> 6` is set when bitmap word `w` is full.
    @usableFromInline var fullWords: [UInt64]

    /// The number of identifiers in use.
    public private(set) var count: Int

    /// No identifier in use; the first allocation returns 1.
    public init() {
        cursor = 1
        small = []
        words = []
        fullWords = []
        count = 0
    }

    /// Whether every identifier is in use: the session must queue further QoS 1/2 messages.
    @inlinable
    public var isExhausted: Bool { count == PacketIdentifierAllocator.capacity }

    /// Whether `identifier` is in use.
    public func isAllocated(_ identifier: UInt16) -> Bool {
        if identifier == 0 { return false }
        if words.isEmpty { return small.contains(identifier) }
        return words[Int(identifier >> 6)] & (1 &<< UInt64(identifier & 63)) != 0
    }

    /// Takes a free identifier.
    /// - Returns: the identifier, or `nil` when all 65,535 are in use (an operating condition, not an error:
    ///   the caller keeps the message queued).
    /// - Complexity: O(1) amortised.
    public mutating func allocate() -> UInt16? {
        if isExhausted { return nil }
        if words.isEmpty && count < PacketIdentifierAllocator.smallSetCountMax {
            // At most count + 1 probes; with the cursor rotating, usually one.
            while true {
                let candidate = cursor
                advanceCursor(past: candidate)
                if small.insert(candidate).inserted {
                    count += 1
                    return candidate
                }
            }
        }
        if words.isEmpty { promote() }
        var wordIndex = Int(cursor >> 6)
        var free = ~words[wordIndex] & (~UInt64(0) &<< UInt64(cursor & 63))
        if free == 0 {
            wordIndex = nextWordWithFreeBit(after: wordIndex)
            free = ~words[wordIndex]
        }
        let identifier = UInt16(truncatingIfNeeded: wordIndex << 6 | free.trailingZeroBitCount)
        assert(identifier != 0, "identifier 0 must stay reserved")
        setBit(identifier)
        advanceCursor(past: identifier)
        count += 1
        return identifier
    }

    /// Marks `identifier` as in use (restoring a session whose inflight messages already carry identifiers).
    /// - Returns: whether it was free.
    /// - Precondition: `identifier != 0`.
    @discardableResult
    public mutating func markAllocated(_ identifier: UInt16) -> Bool {
        precondition(identifier != 0, "packet identifier 0 is not valid")
        if isAllocated(identifier) { return false }
        if words.isEmpty && count >= PacketIdentifierAllocator.smallSetCountMax { promote() }
        if words.isEmpty {
            small.insert(identifier)
        } else {
            setBit(identifier)
        }
        count += 1
        return true
    }

    /// Returns `identifier` to the free pool (its PUBACK, or PUBCOMP, arrived).
    /// - Returns: whether it was in use; `false` means the peer acknowledged an identifier we did not send,
    ///   which the caller treats as a protocol error of that connection.
    @discardableResult
    public mutating func release(_ identifier: UInt16) -> Bool {
        guard isAllocated(identifier) else { return false }
        if words.isEmpty {
            small.remove(identifier)
        } else {
            let wordIndex = Int(identifier >> 6)
            words[wordIndex] &= ~(1 &<< UInt64(identifier & 63))
            fullWords[wordIndex >> 6] &= ~(1 &<< UInt64(wordIndex & 63))
        }
        count -= 1
        if count == 0 && !words.isEmpty {
            // Back to the small representation: 8 KiB per busy session is fine, per idle one it is not.
            words = []
            fullWords = []
        }
        return true
    }

    mutating func advanceCursor(past identifier: UInt16) {
        cursor = identifier == UInt16.max ? 1 : identifier + 1
    }

    mutating func setBit(_ identifier: UInt16) {
        let wordIndex = Int(identifier >> 6)
        words[wordIndex] |= 1 &<< UInt64(identifier & 63)
        if words[wordIndex] == ~UInt64(0) { fullWords[wordIndex >> 6] |= 1 &<< UInt64(wordIndex & 63) }
    }

    mutating func promote() {
        words = Array(repeating: 0, count: 1024)
        fullWords = Array(repeating: 0, count: 16)
        words[0] = 1  // Identifier 0 is never handed out.
        for identifier in small { setBit(identifier) }
        small = []
    }

    /// The first bitmap word after `wordIndex` (wrapping, `wordIndex` itself last) with a free bit.
    func nextWordWithFreeBit(after wordIndex: Int) -> Int {
        var index = (wordIndex + 1) & 1023
        for _ in 0...16 {
            let summary = index >> 6
            let candidates = ~fullWords[summary] & (~UInt64(0) &<< UInt64(index & 63))
            if candidates != 0 { return summary << 6 | candidates.trailingZeroBitCount }
            index = ((summary + 1) & 15) << 6
        }
        preconditionFailure("no free packet identifier although the allocator is not exhausted")
    }
}
