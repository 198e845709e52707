import MQTTCodec

// MARK: - ConnectionTable: the router's connections by key

/// The router's connections by ``ConnectionKey``: an open-addressing hash table with linear probing and
/// backward-shift deletion, keyed by the packed 64-bit key.
///
/// Why not `[ConnectionKey: ConnectionState]`: every PUBLISH looks its connection up several times, and
/// `Dictionary` hashes each lookup with SipHash through `Hasher` (about 100 instructions) and copies the value out
/// of `get`. Here a lookup is one multiply and a short probe (keys are distinct packed (slot, generation) pairs
/// from the runtime, not attacker-chosen strings, so a seeded hash buys nothing), and the `_modify` accessor
/// changes one field in place. Reads use a plain getter: a `_read` coroutine here was not elided and heap-
/// allocated its frame, 3 mallocs per PUBLISH (RouterBenchmarks' allocation counter).
///
/// ```
///   keys:   [ k0 | 0 | k2 | k3 | 0 | ... ]   raw key + 1; 0 = empty
///   values: [ s0 | - | s2 | s3 | - | ... ]   ConnectionState? per slot, nil where the key is empty
/// ```
///
/// Capacity is a power of two and at most half full.
struct ConnectionTable {
    private var keys: [UInt64]
    private var values: [ConnectionState?]
    private var shift: UInt64
    /// The number of connections stored.
    private(set) var count = 0

    init() {
        keys = Array(repeating: 0, count: 16)
        values = Array(repeating: nil, count: 16)
        shift = 64 - 4
    }

    private var mask: Int { keys.count - 1 }

    /// The key as stored: the raw value plus one, so that 0 can mark an empty slot (the runtime's first slot
    /// with generation 0 packs to raw value 0). `UInt64.max` is the one key that cannot be stored.
    private static func stored(_ key: ConnectionKey) -> UInt64 {
        precondition(key.rawValue != .max, "ConnectionKey.max cannot be stored")
        return key.rawValue &+ 1
    }

    private func home(_ raw: UInt64) -> Int {
        // Fibonacci hashing: the high bits of key × 2^64/φ.
        Int(truncatingIfNeeded: (raw &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The slot holding `raw`, or the empty slot where it would go.
    private func probe(_ raw: UInt64) -> (slot: Int, found: Bool) {
        var slot = home(raw)
        while true {
            let key = keys[slot]
            if key == raw { return (slot, true) }
            if key == 0 { return (slot, false) }
            slot = (slot + 1) & mask
        }
    }

    /// The connection's state, read or changed in place; assigning `nil` removes it.
    subscript(key: ConnectionKey) -> ConnectionState? {
        get {
            let (slot, found) = probe(Self.stored(key))
            return found ? values[slot] : nil
        }
        _modify {
            let (slot, found) = probe(Self.stored(key))
            if found {
                yield &values[slot]
                if values[slot] == nil { remove(at: slot) }
            } else {
                var value: ConnectionState? = nil
                yield &value
                if let value { insert(Self.stored(key), value, at: slot) }
            }
        }
    }

    // MARK: Hot fields, read in place
    //
    // The subscript's getter copies the whole state (its alias table retained and released); these read one field
    // through the buffer's addressor instead. Per PUBLISH the receive loop and the publish handler need only these.

    /// The connection's session, if it is connected (`nil` also when the connection is unknown).
    func sessionID(of key: ConnectionKey) -> SessionID? {
        let (slot, found) = probe(Self.stored(key))
        guard found else { return nil }
        return values.withUnsafeBufferPointer { $0[slot]?.sessionID }
    }

    /// The connection's protocol version (3.1.1 until CONNECT set it), or `nil` when the connection is unknown.
    func protocolVersion(of key: ConnectionKey) -> ProtocolVersion? {
        let (slot, found) = probe(Self.stored(key))
        guard found else { return nil }
        return values.withUnsafeBufferPointer { $0[slot]?.protocolVersion }
    }

    /// The connection's frame decoder, or `nil` when the connection is unknown.
    func decoder(of key: ConnectionKey) -> PacketDecoder? {
        let (slot, found) = probe(Self.stored(key))
        guard found else { return nil }
        return values.withUnsafeBufferPointer { $0[slot]?.decoder }
    }

    /// Whether the connection is in the table (no copy of its state).
    func contains(_ key: ConnectionKey) -> Bool { probe(Self.stored(key)).found }

    /// Removes and returns the connection's state.
    @discardableResult
    mutating func removeValue(forKey key: ConnectionKey) -> ConnectionState? {
        let (slot, found) = probe(Self.stored(key))
        guard found else { return nil }
        let value = values[slot]
        remove(at: slot)
        return value
    }

    private mutating func insert(_ raw: UInt64, _ value: ConnectionState, at slot: Int) {
        if (count + 1) * 2 > keys.count {
            grow()
            let (newSlot, _) = probe(raw)
            keys[newSlot] = raw
            values[newSlot] = value
        } else {
            keys[slot] = raw
            values[slot] = value
        }
        count += 1
    }

    /// Empties `slot` and shifts later entries of the probe run back, so no tombstones are needed.
    private mutating func remove(at slot: Int) {
        var hole = slot
        keys[hole] = 0
        values[hole] = nil
        count -= 1
        var next = (hole + 1) & mask
        while keys[next] != 0 {
            let wanted = home(keys[next])
            // Move the entry into the hole when its home is not in (hole, next], cyclically.
            let distanceToNext = (next - wanted) & mask
            let distanceToHole = (hole - wanted) & mask
            if distanceToHole < distanceToNext {
                keys[hole] = keys[next]
                values[hole] = values[next].take()
                keys[next] = 0
                hole = next
            }
            next = (next + 1) & mask
        }
    }

    private mutating func grow() {
        let oldKeys = keys
        var oldValues = values
        keys = Array(repeating: 0, count: oldKeys.count * 2)
        values = Array(repeating: nil, count: oldKeys.count * 2)
        shift -= 1
        for index in oldKeys.indices where oldKeys[index] != 0 {
            let (slot, _) = probe(oldKeys[index])
            keys[slot] = oldKeys[index]
            values[slot] = oldValues[index].take()
        }
    }
}
