// Test support for the router: a recording environment and a cluster of routers driven in one thread.
import MQTTCodec
import Testing

@testable import MQTTRouter

// MARK: - Seeded randomness

/// SplitMix64, private to the router simulation so that it replays from its seed.
struct SimulationRandom {
    var state: UInt64

    /// Seeds pass through a non-linear mix first: with SplitMix's additive state, seeds `k` and `k + 1` would
    /// otherwise give the same sequence shifted by one draw.
    init(seed: UInt64) { state = StableHash.mix(seed ^ 0x5851_F42D_4C95_7F2D) }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

// MARK: - Recording environment

/// Records every action of one router: bytes per connection, closes, mesh sends, hand-offs, timers.
struct RecordingEnvironment: RouterEnvironment {
    var outbound: [ConnectionKey: [UInt8]] = [:]
    /// The byte bound per connection (`write` answers false past it).
    var outboundBytesMax = Int.max
    var closed: [ConnectionKey] = []
    var paused: Set<ConnectionKey> = []
    var sent: [(ShardMessage, ShardID)] = []
    /// When set, the mesh refuses every message.
    var meshRefuses = false
    var handoffs: [(ConnectionKey, ShardID, HandoffState)] = []
    var timers: [UInt64: (deadline: UInt64, token: UInt64)] = [:]
    var nextTimerID: UInt64 = 1

    mutating func write(
        _ connection: ConnectionKey, byteCount: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Void
    ) -> Bool {
        if closed.contains(connection) { return false }
        let queued = outbound[connection]?.count ?? 0
        if queued + byteCount > outboundBytesMax { return false }
        var bytes = [UInt8](repeating: 0xEE, count: byteCount)
        bytes.withUnsafeMutableBytes { encode($0) }
        outbound[connection, default: []].append(contentsOf: bytes)
        return true
    }

    func outboundBytesQueued(_ connection: ConnectionKey) -> Int { outbound[connection]?.count ?? 0 }

    mutating func close(_ connection: ConnectionKey, afterFlush: Bool) { closed.append(connection) }
    mutating func pauseReading(_ connection: ConnectionKey) { paused.insert(connection) }
    mutating func resumeReading(_ connection: ConnectionKey) { paused.remove(connection) }

    mutating func send(_ message: ShardMessage, to shard: ShardID) -> MeshSendResult {
        if meshRefuses { return .refused }
        sent.append((message, shard))
        return .accepted
    }

    mutating func handOff(_ connection: ConnectionKey, to shard: ShardID, state: HandoffState) {
        handoffs.append((connection, shard, state))
    }

    mutating func armTimer(deadlineMillis: UInt64, token: UInt64) -> UInt64 {
        let id = nextTimerID
        nextTimerID += 1
        timers[id] = (deadlineMillis, token)
        return id
    }

    mutating func cancelTimer(_ id: UInt64) { timers.removeValue(forKey: id) }

    /// The answer to each CONNECT's authentication (default: accepted), and the connections asked about.
    var authenticator: (ConnectPacket) -> AuthenticationResult = { _ in .accepted }
    var authenticated: [ConnectionKey] = []

    mutating func authenticate(_ connection: ConnectionKey, connect: ConnectPacket) -> AuthenticationResult {
        authenticated.append(connection)
        return authenticator(connect)
    }

    /// Connection and disconnection events, in order.
    var connected: [(ConnectionKey, ClientConnectedEvent)] = []
    var disconnected: [(ConnectionKey, String, DisconnectCause)] = []

    mutating func clientConnected(_ connection: ConnectionKey, event: ClientConnectedEvent) {
        connected.append((connection, event))
    }

    mutating func clientDisconnected(_ connection: ConnectionKey, clientIdentifier: String, cause: DisconnectCause) {
        disconnected.append((connection, clientIdentifier, cause))
    }
}

// MARK: - Cluster

/// N routers in one thread with the mesh between them as FIFO queues per ordered pair, and clients scripted by
/// the test as packets. Mesh delivery order across pairs is deterministic, or seeded-random with `random`.
struct Cluster {
    var routers: [Router]
    var envs: [RecordingEnvironment]
    var now: UInt64 = 1_000_000
    /// rings[from][to]
    var rings: [[[ShardMessage]]]
    var owner: [ConnectionKey: Int] = [:]
    var decoders: [ConnectionKey: PacketStreamDecoder] = [:]
    var inbound: [ConnectionKey: [UInt8]] = [:]
    /// Packets decoded by `connect` after the CONNACK, returned by the next `packets`.
    var leftover: [ConnectionKey: [Packet]] = [:]
    var nextConnection: UInt64 = 1

    init(shards: Int, limits: Limits = Limits()) {
        routers = (0..<shards).map {
            Router(configuration: RouterConfiguration(shard: ShardID($0), shardCount: shards, limits: limits))
        }
        envs = Array(repeating: RecordingEnvironment(), count: shards)
        rings = Array(repeating: Array(repeating: [], count: shards), count: shards)
    }

    var shardCount: Int { routers.count }

    /// A client identifier, derived from `base`, that homes on `shard`.
    func clientIdentifier(_ base: String, homingOn shard: Int) -> String {
        var counter = 0
        while true {
            let candidate = "\(base)-\(counter)"
            if ShardID.home(forClientIdentifier: candidate.utf8, shardCount: shardCount).index == shard {
                return candidate
            }
            counter += 1
        }
    }

    /// Opens a connection on `shard`.
    mutating func open(on shard: Int, version: ProtocolVersion) -> ConnectionKey {
        let connection = ConnectionKey(rawValue: nextConnection)
        nextConnection += 1
        owner[connection] = shard
        decoders[connection] = PacketStreamDecoder(PacketDecoder(protocolVersion: version))
        routers[shard].connectionAccepted(connection, now: now, env: &envs[shard])
        collect()
        return connection
    }

    /// Sends a packet from a client.
    mutating func send(_ connection: ConnectionKey, _ packet: Packet, version: ProtocolVersion) {
        feed(connection, packet.encode(version: version))
    }

    /// Sends raw bytes from a client, following hand-offs.
    mutating func feed(_ connection: ConnectionKey, _ bytes: [UInt8]) {
        inbound[connection, default: []].append(contentsOf: bytes)
        while let shard = owner[connection], let pending = inbound[connection], !pending.isEmpty {
            let consumed = pending.withUnsafeBytes {
                routers[shard].received(connection, bytes: $0, now: now, env: &envs[shard])
            }
            inbound[connection]!.removeFirst(consumed)
            collect()
            if owner[connection] == shard || owner[connection] == nil { break }
        }
    }

    /// Moves mesh sends into the rings and carries out hand-offs.
    mutating func collect() {
        var progress = true
        while progress {
            progress = false
            for shard in envs.indices {
                let sent = envs[shard].sent
                envs[shard].sent.removeAll()
                for (message, target) in sent { rings[shard][target.index].append(message) }
                let handoffs = envs[shard].handoffs
                envs[shard].handoffs.removeAll()
                for (connection, target, state) in handoffs {
                    progress = true
                    owner[connection] = target.index
                    routers[target.index].adopted(connection, state: state, now: now, env: &envs[target.index])
                }
            }
        }
    }

    var meshIsEmpty: Bool { rings.allSatisfy { $0.allSatisfy(\.isEmpty) } }

    /// Delivers one ring message, from the first non-empty pair or a seeded-random one.
    @discardableResult
    mutating func deliverOne(random: inout SimulationRandom?) -> Bool {
        var pairs: [(Int, Int)] = []
        for from in rings.indices { for to in rings[from].indices where !rings[from][to].isEmpty { pairs.append((from, to)) } }
        guard !pairs.isEmpty else { return false }
        let (from, to) = random.map { _ in pairs[random!.below(pairs.count)] } ?? pairs[0]
        let message = rings[from][to].removeFirst()
        routers[to].message(message, from: ShardID(from), now: now, env: &envs[to])
        collect()
        return true
    }

    /// Delivers ring messages until the mesh is quiet.
    mutating func settle() {
        var random: SimulationRandom? = nil
        while deliverOne(random: &random) {}
    }

    /// Advances time and fires due timers in deadline order.
    mutating func advance(by millis: UInt64) {
        now += millis
        while true {
            var best: (shard: Int, id: UInt64, deadline: UInt64, token: UInt64)? = nil
            for shard in envs.indices {
                for (id, timer) in envs[shard].timers where timer.deadline <= now {
                    if best == nil || timer.deadline < best!.deadline || (timer.deadline == best!.deadline && id < best!.id) {
                        best = (shard, id, timer.deadline, timer.token)
                    }
                }
            }
            guard let best else { return }
            envs[best.shard].timers.removeValue(forKey: best.id)
            routers[best.shard].timerFired(best.token, now: now, env: &envs[best.shard])
            collect()
        }
    }

    /// The packets written to a client since the last call, decoded with the codec.
    mutating func packets(_ connection: ConnectionKey) -> [Packet] {
        guard let shard = owner[connection] else { return [] }
        let bytes = envs[shard].outbound.removeValue(forKey: connection) ?? []
        decoders[connection]!.append(contentsOf: bytes)
        var result: [Packet] = leftover.removeValue(forKey: connection) ?? []
        while true {
            do {
                guard let packet = try decoders[connection]!.next() else { break }
                result.append(packet)
            } catch {
                Issue.record("client could not decode broker bytes: \(error)")
                break
            }
        }
        return result
    }

    func isClosed(_ connection: ConnectionKey) -> Bool {
        guard let shard = owner[connection] else { return false }
        return envs[shard].closed.contains(connection)
    }

    /// The runtime reports the socket gone.
    mutating func drop(_ connection: ConnectionKey) {
        guard let shard = owner[connection] else { return }
        routers[shard].connectionClosed(connection, now: now, env: &envs[shard])
        collect()
    }

    // MARK: Client conveniences

    /// Connects and returns the connection and its CONNACK.
    mutating func connect(
        _ clientIdentifier: String, on shard: Int, version: ProtocolVersion = .v5, cleanStart: Bool = true,
        keepAlive: UInt16 = 0, will: ConnectPacket.Will? = nil, properties: Properties = []
    ) -> (ConnectionKey, ConnAckPacket?) {
        let connection = open(on: shard, version: version)
        let connect = ConnectPacket(
            protocolVersion: version, clientIdentifier: clientIdentifier, cleanStart: cleanStart,
            keepAliveSeconds: keepAlive, will: will, properties: properties
        )
        send(connection, .connect(connect), version: version)
        var all = packets(connection)
        guard let position = all.firstIndex(where: { if case .connack = $0 { true } else { false } }),
              case .connack(let ack) = all[position] else { return (connection, nil) }
        all.remove(at: position)
        if !all.isEmpty { leftover[connection] = all }
        return (connection, ack)
    }

    mutating func subscribe(
        _ connection: ConnectionKey, _ filter: String, qos: QoS = .exactlyOnce, id: UInt16 = 1,
        version: ProtocolVersion = .v5, options: SubscriptionOptions? = nil, properties: Properties = []
    ) {
        let subscription = TopicSubscription(
            filter: try! TopicFilter(validating: filter, allowShared: version == .v5),
            options: options ?? SubscriptionOptions(qos: qos)
        )
        send(connection, .subscribe(SubscribePacket(
            packetIdentifier: PacketIdentifier(nonZero: id), subscriptions: [subscription], properties: properties
        )), version: version)
    }

    mutating func publish(
        _ connection: ConnectionKey, _ topic: String, _ payload: String, qos: QoS = .atMostOnce, id: UInt16? = nil,
        retain: Bool = false, version: ProtocolVersion = .v5, properties: Properties = []
    ) {
        let packet = PublishPacket(
            qos: qos, retain: retain, topic: try! TopicName(validating: topic),
            packetIdentifier: qos == .atMostOnce ? nil : PacketIdentifier(nonZero: id ?? 1), properties: properties,
            payload: Array(payload.utf8)
        )
        send(connection, .publish(packet), version: version)
    }
}

extension Packet {
    var publish: PublishPacket? { if case .publish(let packet) = self { packet } else { nil } }
    var payloadString: String? { publish.map { String(decoding: $0.payload, as: UTF8.self) } }
    /// The reason code of a DISCONNECT, `nil` for other packets.
    var disconnectReason: ReasonCode? { if case .disconnect(let packet) = self { packet.reasonCode } else { nil } }
    /// The Reason String of a DISCONNECT, if any.
    var disconnectReasonString: String? {
        guard case .disconnect(let packet) = self, case .reasonString(let text)? = packet.properties.first(.reasonString)
        else { return nil }
        return text
    }
}
