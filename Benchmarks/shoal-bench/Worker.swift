#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import MQTTCodec
import Synchronization

// MARK: - Per-connection state

enum ConnectionState: UInt8 {
    case connecting
    /// TCP connected; TLS handshake in progress (`--tls`).
    case handshaking
    case awaitingConnack
    case awaitingSuback
    case ready
    /// Subscribed, removed from epoll, never read again.
    case stalled
    case closed
}

/// One publisher–subscriber pair's sequence tracking: the highest sequence seen and a 64-bit bitmap of the
/// ones just below it, which tells a duplicate from a late (reordered) arrival.
struct PairState {
    /// Highest sequence seen plus one; 0 before the first message.
    var next: UInt64 = 0
    /// Bit i: sequence `next - 1 - i` arrived.
    var recent: UInt64 = 0
    var received: UInt64 = 0
    var duplicates: UInt64 = 0
    var reordered: UInt64 = 0

    @inline(__always)
    mutating func record(_ sequence: UInt64) {
        received &+= 1
        if sequence >= next {
            let shift = sequence - next + 1
            recent = shift >= 64 ? 1 : (recent << shift) | 1
            next = sequence + 1
        } else {
            let distance = next - 1 - sequence
            if distance < 64 {
                let bit: UInt64 = 1 << distance
                if recent & bit != 0 {
                    duplicates &+= 1
                } else {
                    recent |= bit
                    reordered &+= 1
                }
            } else {
                // Too far back to tell apart; counted as reordered (a duplicate this late is itself a finding).
                reordered &+= 1
            }
        }
    }
}

/// A connection's buffers, protocol state and role-specific counters. Lives in the worker's slab (an array
/// of structs, index = epoll user data).
struct Connection {
    var spec: ConnectionSpec
    var fd: Int32 = -1
    /// The TLS session over `fd` (`--tls`).
    var ssl: OpaquePointer? = nil
    var state = ConnectionState.connecting
    var decoder: PacketDecoder
    /// Received bytes not yet parsed: `input[0..<inputCount]`.
    var input: UnsafeMutableRawBufferPointer
    var inputCount = 0
    /// Bytes queued for send: `output[outputStart..<outputEnd]`.
    var output: UnsafeMutableRawBufferPointer
    var outputStart = 0
    var outputEnd = 0
    var watchingWritable = false
    /// Parsing stopped because acknowledgements could not be queued; resumes once the socket drains.
    var parseBlocked = false

    // Publisher
    var topic: UnsafeMutableRawBufferPointer
    var publishByteCount = 0
    var sent: UInt64 = 0
    var inflight = 0
    var inflightMax = 65_535
    var nextPacketIdentifier: UInt16 = 1
    var identifiersInUse: UnsafeMutablePointer<UInt64>? = nil
    var rateStartNanos: UInt64 = 0

    // Subscriber: pair states for publishers in spec.publisherRange start here in the worker's `pairs`.
    var pairBase = 0

    var pendingBytes: Int { outputEnd - outputStart }
}

// MARK: - Worker

/// One event-loop thread: an epoll instance over non-blocking sockets, level-triggered reads into large
/// per-connection buffers parsed incrementally, and writes coalesced per connection (one `send` per
/// connection per turn carrying every PUBLISH that the window, the rate and the buffer allow).
final class Worker: @unchecked Sendable {
    let index: Int
    let options: Options
    let shared: SharedState
    let target: TargetAddress
    let version: ProtocolVersion
    let qos: QoS
    let fanout: UInt64
    /// TLS client context when `--tls`.
    let tls: ClientTLS?
    var connections: [Connection] = []
    var publisherSlots: [Int] = []
    var epollFD: Int32 = -1
    let payloadTemplate: UnsafeMutableRawBufferPointer
    static let subscribeIdentifier = PacketIdentifier(1)!

    // Figures (read by the main thread after join).
    var histogram = Histogram()
    var pairs: [PairState] = []
    var sentTotal: UInt64 = 0
    var deliveredTotal: UInt64 = 0
    var sentMeasured: UInt64 = 0
    var deliveredMeasured: UInt64 = 0
    var payloadBytesDeliveredMeasured: UInt64 = 0
    var unexpectedMessages: UInt64 = 0
    var lostConnections = 0
    var lostConnectionNotes: [String] = []
    var firstConnectNanos: UInt64 = 0
    var lastReadyNanos: UInt64 = 0
    var cpuNanosMeasured: UInt64 = 0

    // Setup progress.
    private var nextToConnect = 0
    private var pendingSetup = 0
    private var readyCount = 0
    private var runStart: UInt64 = 0
    private var measureStart: UInt64 = 0
    private var measureEnd: UInt64 = .max

    init(index: Int, specs: [ConnectionSpec], options: Options, shared: SharedState, target: TargetAddress, fanout: Int,
         tls: ClientTLS? = nil) {
        self.index = index
        self.tls = tls
        self.options = options
        self.shared = shared
        self.target = target
        self.version = options.protocolVersion
        self.qos = options.qos
        self.fanout = UInt64(max(fanout, 1))
        payloadTemplate = .allocate(byteCount: options.payloadByteCount, alignment: 16)
        payloadTemplate.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
        connections.reserveCapacity(specs.count)
        for spec in specs {
            let topicBytes = Array(spec.topic.utf8)
            let topic = UnsafeMutableRawBufferPointer.allocate(byteCount: max(topicBytes.count, 1), alignment: 1)
            topicBytes.withUnsafeBytes { topic.copyMemory(from: $0) }
            let topicView = UnsafeMutableRawBufferPointer(rebasing: topic[0..<topicBytes.count])
            let publishByteCount = PublishEncoding.encodedSize(
                version: version, qos: qos, topicByteCount: topicBytes.count, propertiesByteCount: 0,
                payloadByteCount: options.payloadByteCount
            )
            let inputCapacity: Int
            let outputCapacity: Int
            switch spec.role {
            case .publisher:
                inputCapacity = 64 << 10
                outputCapacity = max(256 << 10, 4 * publishByteCount)
            case .subscriber:
                inputCapacity = max(256 << 10, 4 * publishByteCount)
                outputCapacity = 64 << 10
            case .stalled, .idle:
                inputCapacity = 4 << 10
                outputCapacity = 4 << 10
            }
            var connection = Connection(
                spec: spec,
                decoder: PacketDecoder(protocolVersion: version),
                input: .allocate(byteCount: inputCapacity, alignment: 16),
                output: .allocate(byteCount: outputCapacity, alignment: 16),
                topic: topicView
            )
            connection.publishByteCount = publishByteCount
            if spec.role == .publisher {
                connection.inflightMax = options.inflightMax
                if qos != .atMostOnce {
                    let words = UnsafeMutablePointer<UInt64>.allocate(capacity: 1024)
                    words.initialize(repeating: 0, count: 1024)
                    connection.identifiersInUse = words
                }
            }
            if spec.role == .subscriber {
                connection.pairBase = pairs.count
                pairs.append(contentsOf: repeatElement(PairState(), count: spec.publisherRange.count))
            }
            connections.append(connection)
        }
        publisherSlots = connections.indices.filter { connections[$0].spec.role == .publisher }
    }

    deinit {
        for connection in connections {
            connection.input.deallocate()
            connection.output.deallocate()
            // The topic view starts at its allocation (a zero-length view of a 1-byte allocation may leak 1 byte).
            connection.topic.baseAddress?.deallocate()
            connection.identifiersInUse?.deallocate()
        }
        payloadTemplate.deallocate()
    }

    // MARK: - Loop

    /// Runs until the main thread says stop.
    func run() {
        epollFD = Epoll.create()
        precondition(epollFD >= 0, "epoll_create1 failed: \(errno)")
        let eventCapacity = 1024
        let events = UnsafeMutableRawPointer.allocate(byteCount: eventCapacity * Epoll.eventStride, alignment: 16)
        defer { events.deallocate() }
        let progress = shared.progress[index]
        var running = false
        var measuring = false
        var cpuAtMeasureStart: UInt64 = 0
        while true {
            let phase = shared.phase.load(ordering: .acquiring)
            if phase == Phase.stop.rawValue { break }
            if !running && phase == Phase.running.rawValue {
                running = true
                runStart = shared.runStartNanos.load(ordering: .relaxed)
                measureStart = shared.measureStartNanos.load(ordering: .relaxed)
                measureEnd = shared.measureEndNanos.load(ordering: .relaxed)
                let count = UInt64(max(publisherSlots.count, 1))
                for (order, slot) in publisherSlots.enumerated() where options.ratePerPublisher > 0 {
                    // Stagger publishers across one period so that rate-limited sends do not all coincide.
                    let period = 1e9 / options.ratePerPublisher
                    connections[slot].rateStartNanos = runStart + UInt64(period * Double(order) / Double(count))
                }
            }
            if nextToConnect < connections.count && !shared.failed.load(ordering: .relaxed) { startConnects() }
            var now = monotonicNanos()
            if running {
                if !measuring && now >= measureStart {
                    measuring = true
                    cpuAtMeasureStart = threadCPUNanos()
                }
                if measuring && cpuNanosMeasured == 0 && now >= measureEnd {
                    cpuNanosMeasured = max(threadCPUNanos() - cpuAtMeasureStart, 1)
                }
                if now < measureEnd {
                    for slot in publisherSlots { publish(slot, now: now) }
                }
            }
            var timeout: Int32 = 20
            if running && now < measureEnd && !publisherSlots.isEmpty {
                // Rate-limited publishers and publishers whose subscribers live on other threads are woken by
                // time, not by their own sockets.
                if options.ratePerPublisher > 0 || options.threads > 1 { timeout = 1 }
            }
            let count = Epoll.wait(epollFD, events, count: Int32(eventCapacity), timeoutMillis: timeout)
            if count < 0 {
                if errno == EINTR { continue }
                preconditionFailure("epoll_wait failed: \(errno)")
            }
            now = monotonicNanos()
            for eventIndex in 0..<Int(count) {
                let event = Epoll.event(events, eventIndex)
                handle(Int(event.data), events: event.events, now: now)
            }
            progress.sent.store(sentTotal, ordering: .relaxed)
            progress.delivered.store(deliveredTotal, ordering: .relaxed)
            progress.ready.store(readyCount, ordering: .relaxed)
        }
        if measuring && cpuNanosMeasured == 0 { cpuNanosMeasured = max(threadCPUNanos() - cpuAtMeasureStart, 1) }
        for slot in connections.indices where connections[slot].fd >= 0 {
            if let ssl = connections[slot].ssl { SSL_free(ssl) }
            connections[slot].ssl = nil
            close(connections[slot].fd)
            connections[slot].fd = -1
        }
        close(epollFD)
    }

    // MARK: - Setup

    private func startConnects() {
        while pendingSetup < options.connectConcurrency && nextToConnect < connections.count {
            let slot = nextToConnect
            nextToConnect += 1
            if firstConnectNanos == 0 { firstConnectNanos = monotonicNanos() }
            switch target.startConnect() {
            case .failure(let error):
                shared.fail("cannot connect to \(options.host):\(options.port): \(error)")
                return
            case .success(let fd):
                connections[slot].fd = fd
                connections[slot].state = .connecting
                pendingSetup += 1
                let added = Epoll.control(epollFD, Epoll.add, fd, events: Epoll.output, data: UInt64(slot))
                precondition(added == 0, "epoll_ctl ADD failed: \(errno)")
                connections[slot].watchingWritable = true
            }
        }
    }

    private func connected(_ slot: Int) {
        let error = socketError(connections[slot].fd)
        if error != 0 {
            shared.fail(
                "cannot connect to \(options.host):\(options.port): \(String(cString: strerror(error))) "
                    + "(is the broker running?)"
            )
            // Closed quietly: the failure above already says what happened.
            _ = Epoll.control(epollFD, Epoll.delete, connections[slot].fd, events: 0, data: 0)
            close(connections[slot].fd)
            connections[slot].fd = -1
            connections[slot].state = .closed
            return
        }
        if let tls {
            guard let ssl = tls.session(fd: connections[slot].fd) else {
                shared.fail("cannot create a TLS session")
                return
            }
            connections[slot].ssl = ssl
            connections[slot].state = .handshaking
            continueHandshake(slot)
            return
        }
        sendConnect(slot)
    }

    /// Advances the TLS handshake; sends CONNECT once it completes.
    private func continueHandshake(_ slot: Int) {
        guard let ssl = connections[slot].ssl else { return }
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            sendConnect(slot)
            return
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: watch(slot, writable: false)
        case SSL_ERROR_WANT_WRITE: watch(slot, writable: true)
        default: lose(slot, "TLS handshake: \(ClientTLS.reason(ssl, result))")
        }
    }

    private func sendConnect(_ slot: Int) {
        var properties: Properties = []
        if version == .v5 { properties = [.receiveMaximum(65_535)] }
        let connect = ConnectPacket(
            protocolVersion: version, clientIdentifier: "sb\(getpid())-\(index)-\(slot)", cleanStart: true,
            keepAliveSeconds: options.keepAliveSeconds, properties: properties
        )
        queue(slot, connect)
        connections[slot].state = .awaitingConnack
        watch(slot, writable: false)
        _ = flush(slot)
    }

    private func becameReady(_ slot: Int) {
        pendingSetup -= 1
        readyCount += 1
        lastReadyNanos = monotonicNanos()
    }

    private func controlPacket(_ slot: Int, _ packet: Packet) {
        switch packet {
        case .connack(let connack):
            guard connections[slot].state == .awaitingConnack else { return }
            if connack.reasonCode.isFailure {
                shared.fail("broker refused CONNECT: reason \(connack.reasonCode)")
                return
            }
            for property in connack.properties.list {
                if case .receiveMaximum(let maximum) = property {
                    connections[slot].inflightMax = min(connections[slot].inflightMax, Int(maximum))
                }
            }
            switch connections[slot].spec.role {
            case .subscriber, .stalled:
                let filter: TopicFilter
                do throws(TopicError) {
                    filter = try TopicFilter(validating: connections[slot].spec.filter, allowShared: true)
                } catch {
                    shared.fail("invalid filter \(connections[slot].spec.filter): \(error)")
                    return
                }
                let subscribe = SubscribePacket(
                    packetIdentifier: Worker.subscribeIdentifier,
                    subscriptions: [TopicSubscription(filter: filter, options: SubscriptionOptions(qos: qos))]
                )
                queue(slot, subscribe)
                connections[slot].state = .awaitingSuback
                _ = flush(slot)
            case .publisher, .idle:
                connections[slot].state = .ready
                becameReady(slot)
            }
        case .suback(let suback):
            guard connections[slot].state == .awaitingSuback else { return }
            if let failure = suback.reasonCodes.first(where: { $0.isFailure }) {
                shared.fail("broker refused SUBSCRIBE to \(connections[slot].spec.filter): reason \(failure)")
                return
            }
            if connections[slot].spec.role == .stalled {
                connections[slot].state = .stalled
                // From now on the broker's messages pile up in the kernel and then in the broker.
                _ = Epoll.control(epollFD, Epoll.delete, connections[slot].fd, events: 0, data: 0)
            } else {
                connections[slot].state = .ready
            }
            becameReady(slot)
        case .disconnect(let disconnect):
            lose(slot, "DISCONNECT from broker: reason \(disconnect.reasonCode)")
        default:
            break
        }
    }

    // MARK: - Events

    private func handle(_ slot: Int, events: UInt32, now: UInt64) {
        guard connections[slot].state != .closed else { return }
        if connections[slot].state == .connecting {
            if events & (Epoll.output | Epoll.error | Epoll.hangUp) != 0 { connected(slot) }
            return
        }
        if connections[slot].state == .handshaking {
            continueHandshake(slot)
            return
        }
        if events & Epoll.output != 0 {
            guard flush(slot) else { return }
            if connections[slot].parseBlocked {
                connections[slot].parseBlocked = false
                parse(slot, now: now)
            }
        }
        if events & Epoll.input != 0 {
            readable(slot)
        } else if events & (Epoll.error | Epoll.hangUp) != 0 {
            lose(slot, "socket error or hang-up")
        }
    }

    private func readable(_ slot: Int) {
        if connections[slot].parseBlocked { return }
        if connections[slot].ssl != nil {
            readableTLS(slot)
            return
        }
        let capacity = connections[slot].input.count
        let count = connections[slot].inputCount
        guard let base = connections[slot].input.baseAddress else { return }
        let received = recv(connections[slot].fd, base + count, capacity - count, 0)
        if received == 0 {
            lose(slot, "closed by broker")
            return
        }
        if received < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
            lose(slot, "recv: \(String(cString: strerror(errno)))")
            return
        }
        connections[slot].inputCount += received
        // Every message in this read had arrived by now; one clock read serves the whole batch.
        parse(slot, now: monotonicNanos())
    }

    /// Reads and parses until OpenSSL wants more from the socket: decrypted bytes may wait inside OpenSSL, where
    /// level-triggered epoll cannot see them.
    private func readableTLS(_ slot: Int) {
        while connections[slot].state != .closed && !connections[slot].parseBlocked, let ssl = connections[slot].ssl {
            let capacity = connections[slot].input.count
            let count = connections[slot].inputCount
            guard let base = connections[slot].input.baseAddress, capacity > count else { return }
            var received = 0
            let result = SSL_read_ex(ssl, base + count, capacity - count, &received)
            if result != 1 {
                switch SSL_get_error(ssl, result) {
                case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return
                case SSL_ERROR_ZERO_RETURN: lose(slot, "closed by broker (close_notify)")
                default: lose(slot, "TLS read: \(ClientTLS.reason(ssl, result))")
                }
                return
            }
            connections[slot].inputCount += received
            parse(slot, now: monotonicNanos())
        }
    }

    /// Parses every whole packet in the input buffer, then moves the partial tail to the front.
    private func parse(_ slot: Int, now: UInt64) {
        guard let base = connections[slot].input.baseAddress else { return }
        var offset = 0
        let end = connections[slot].inputCount
        let decoder = connections[slot].decoder
        parsing: while offset < end {
            let bytes = UnsafeRawBufferPointer(start: base + offset, count: end - offset)
            let frame: PacketDecoder.Frame
            do throws(MQTTDecodeError) {
                switch try decoder.readFrame(bytes) {
                case .needMoreBytes(let more):
                    if end - offset + more > connections[slot].input.count { growInput(slot, to: end - offset + more) }
                    break parsing
                case .frame(let whole): frame = whole
                }
            } catch {
                lose(slot, "malformed packet from broker: \(error)")
                return
            }
            // An acknowledgement may be needed: make sure it fits, else stop until the socket drains.
            if connections[slot].output.count - connections[slot].outputEnd < 16 {
                compactOutput(slot)
                if connections[slot].output.count - connections[slot].outputEnd < 16 {
                    _ = flush(slot)
                    compactOutput(slot)
                    if connections[slot].output.count - connections[slot].outputEnd < 16 {
                        connections[slot].parseBlocked = true
                        break parsing
                    }
                }
            }
            let packet = UnsafeRawBufferPointer(start: base + offset, count: frame.byteCount)
            guard process(slot, frame: frame, packet: packet, now: now) else { return }
            offset += frame.byteCount
        }
        // The buffer may have been replaced by growInput (only when no frame was consumed past offset).
        guard connections[slot].state != .closed, let current = connections[slot].input.baseAddress else { return }
        let rest = connections[slot].inputCount - offset
        if offset > 0 && rest > 0 { current.copyMemory(from: current + offset, byteCount: rest) }
        connections[slot].inputCount = rest
        if connections[slot].pendingBytes > 0 { _ = flush(slot) }
    }

    private func growInput(_ slot: Int, to byteCount: Int) {
        // Only reached with offset data still unparsed; copy it to the new buffer's front.
        let old = connections[slot].input
        let capacity = max(byteCount, old.count * 2)
        let new = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        new.copyMemory(from: UnsafeRawBufferPointer(rebasing: old[0..<connections[slot].inputCount]))
        old.deallocate()
        connections[slot].input = new
    }

    /// Handles one packet from the broker; answers false when the connection was lost.
    private func process(_ slot: Int, frame: PacketDecoder.Frame, packet: UnsafeRawBufferPointer, now: UInt64) -> Bool {
        let body = UnsafeRawBufferPointer(rebasing: packet[frame.headerByteCount...])
        switch frame.type {
        case .publish:
            let view: PublishView
            do throws(MQTTDecodeError) {
                view = try connections[slot].decoder.decodePublish(frame, in: packet)
            } catch {
                lose(slot, "malformed PUBLISH from broker: \(error)")
                return false
            }
            deliver(slot, view.payload, now: now)
            if let identifier = view.packetIdentifier {
                if view.qos == .atLeastOnce {
                    queue(slot, PubAckPacket(packetIdentifier: identifier))
                } else {
                    queue(slot, PubRecPacket(packetIdentifier: identifier))
                }
            }
        case .puback, .pubcomp:
            guard body.count >= 2 else { return true }
            complete(slot, UInt16(body[0]) << 8 | UInt16(body[1]))
        case .pubrec:
            guard body.count >= 2, let identifier = PacketIdentifier(UInt16(body[0]) << 8 | UInt16(body[1])) else {
                return true
            }
            if body.count >= 3 && body[2] >= 0x80 {
                // MQTT 5.0 §4.3.3: a PUBREC with a failure reason code ends the exchange.
                complete(slot, identifier.rawValue)
            } else {
                queue(slot, PubRelPacket(packetIdentifier: identifier))
            }
        case .pubrel:
            guard body.count >= 2, let identifier = PacketIdentifier(UInt16(body[0]) << 8 | UInt16(body[1])) else {
                return true
            }
            queue(slot, PubCompPacket(packetIdentifier: identifier))
        case .pingresp:
            break
        default:
            let packetValue: Packet
            do throws(MQTTDecodeError) {
                packetValue = try connections[slot].decoder.decodePacket(frame, in: packet)
            } catch {
                lose(slot, "malformed \(frame.type) from broker: \(error)")
                return false
            }
            controlPacket(slot, packetValue)
            if connections[slot].state == .closed { return false }
        }
        return true
    }

    /// Counts one application message arriving at a subscriber.
    @inline(__always)
    private func deliver(_ slot: Int, _ payload: UnsafeRawBufferPointer, now: UInt64) {
        guard payload.count >= Payload.headerByteCount else {
            unexpectedMessages &+= 1
            return
        }
        let sendTime = UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let publisher = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        let sequence = UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
        let range = connections[slot].spec.publisherRange
        guard range.contains(publisher) else {
            unexpectedMessages &+= 1
            return
        }
        pairs[connections[slot].pairBase + publisher - range.lowerBound].record(sequence)
        shared.publishers[publisher].delivered.add(1, ordering: .relaxed)
        deliveredTotal &+= 1
        if now >= measureStart && now < measureEnd {
            deliveredMeasured &+= 1
            payloadBytesDeliveredMeasured &+= UInt64(payload.count)
            histogram.record(now > sendTime ? now - sendTime : 0)
        }
    }

    /// Ends a QoS 1 or 2 exchange of a publisher.
    private func complete(_ slot: Int, _ identifier: UInt16) {
        guard let words = connections[slot].identifiersInUse else { return }
        let word = Int(identifier >> 6)
        let bit: UInt64 = 1 << UInt64(identifier & 63)
        guard words[word] & bit != 0 else { return }
        words[word] &= ~bit
        connections[slot].inflight -= 1
    }

    // MARK: - Publishing

    /// Encodes as many PUBLISH packets as the window, the inflight limit, the rate and the buffer allow, and
    /// sends them with one `send`.
    private func publish(_ slot: Int, now: UInt64) {
        guard connections[slot].state == .ready else { return }
        let publisher = connections[slot].spec.publisherIndex
        let sent = connections[slot].sent
        let delivered = shared.publishers[publisher].delivered.load(ordering: .relaxed) / fanout
        let outstanding = sent > delivered ? Int(sent - delivered) : 0
        var allowed = options.window - outstanding
        if qos != .atMostOnce { allowed = min(allowed, connections[slot].inflightMax - connections[slot].inflight) }
        if options.ratePerPublisher > 0 {
            let start = connections[slot].rateStartNanos
            guard now >= start else { return }
            let due = Int(Double(now - start) * options.ratePerPublisher / 1e9) + 1 - Int(sent)
            allowed = min(allowed, due)
        }
        guard allowed > 0 else { return }
        let packetByteCount = connections[slot].publishByteCount
        if connections[slot].output.count - connections[slot].outputEnd < packetByteCount { compactOutput(slot) }
        let room = (connections[slot].output.count - connections[slot].outputEnd) / packetByteCount
        let batch = min(allowed, room, 1024)
        guard batch > 0, let base = connections[slot].output.baseAddress else { return }
        let timestamp = monotonicNanos()
        let topic = UnsafeRawBufferPointer(connections[slot].topic)
        let payload = UnsafeRawBufferPointer(payloadTemplate)
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let payloadCount = payload.count
        var end = connections[slot].outputEnd
        for _ in 0..<batch {
            var identifier: PacketIdentifier? = nil
            if qos != .atMostOnce { identifier = allocateIdentifier(slot) }
            let destination = UnsafeMutableRawBufferPointer(start: base + end, count: packetByteCount)
            let written = PublishEncoding.encode(
                into: destination, version: version, qos: qos, retain: false, packetIdentifier: identifier,
                topic: topic, properties: empty, payload: payload
            )
            // Safe: the payload is the last payloadCount bytes of the packet just written inside destination.
            let header = base + end + written - payloadCount
            header.storeBytes(of: timestamp.littleEndian, toByteOffset: 0, as: UInt64.self)
            header.storeBytes(of: UInt32(truncatingIfNeeded: publisher).littleEndian, toByteOffset: 8, as: UInt32.self)
            header.storeBytes(of: connections[slot].sent.littleEndian, toByteOffset: 12, as: UInt64.self)
            connections[slot].sent &+= 1
            end += written
        }
        connections[slot].outputEnd = end
        sentTotal &+= UInt64(batch)
        if timestamp >= measureStart && timestamp < measureEnd { sentMeasured &+= UInt64(batch) }
        _ = flush(slot)
    }

    private func allocateIdentifier(_ slot: Int) -> PacketIdentifier {
        guard let words = connections[slot].identifiersInUse else { preconditionFailure("QoS 0 publisher") }
        var candidate = connections[slot].nextPacketIdentifier
        while true {
            if candidate == 0 { candidate = 1 }
            let word = Int(candidate >> 6)
            let bit: UInt64 = 1 << UInt64(candidate & 63)
            if words[word] & bit == 0 {
                words[word] |= bit
                connections[slot].inflight += 1
                connections[slot].nextPacketIdentifier = candidate &+ 1
                return PacketIdentifier(candidate)!
            }
            candidate &+= 1
        }
    }

    // MARK: - Output

    private func queue(_ slot: Int, _ packet: some MQTTPacket) {
        let size = packet.encodedSize(version: version)
        if connections[slot].output.count - connections[slot].outputEnd < size { compactOutput(slot) }
        precondition(connections[slot].output.count - connections[slot].outputEnd >= size, "output buffer full")
        let destination = UnsafeMutableRawBufferPointer(rebasing: connections[slot].output[connections[slot].outputEnd...])
        connections[slot].outputEnd += packet.encode(into: destination, version: version)
    }

    private func compactOutput(_ slot: Int) {
        let start = connections[slot].outputStart
        guard start > 0, let base = connections[slot].output.baseAddress else { return }
        let pending = connections[slot].outputEnd - start
        if pending > 0 { base.copyMemory(from: base + start, byteCount: pending) }
        connections[slot].outputStart = 0
        connections[slot].outputEnd = pending
    }

    /// Sends what is queued; watches for writability when the socket is full. Answers false if lost.
    private func flush(_ slot: Int) -> Bool {
        guard let base = connections[slot].output.baseAddress else { return true }
        while connections[slot].outputStart < connections[slot].outputEnd {
            let start = connections[slot].outputStart
            if let ssl = connections[slot].ssl {
                var written = 0
                let result = SSL_write_ex(ssl, base + start, connections[slot].outputEnd - start, &written)
                if result == 1 {
                    connections[slot].outputStart += written
                    continue
                }
                switch SSL_get_error(ssl, result) {
                case SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_READ:
                    watch(slot, writable: true)
                    return true
                default:
                    lose(slot, "TLS write: \(ClientTLS.reason(ssl, result))")
                    return false
                }
            }
            let sent = send(
                connections[slot].fd, base + start, connections[slot].outputEnd - start, Int32(MSG_NOSIGNAL)
            )
            if sent > 0 {
                connections[slot].outputStart += sent
                continue
            }
            if sent < 0 && errno == EINTR { continue }
            if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(slot, writable: true)
                return true
            }
            lose(slot, "send: \(String(cString: strerror(errno)))")
            return false
        }
        connections[slot].outputStart = 0
        connections[slot].outputEnd = 0
        watch(slot, writable: false)
        return true
    }

    private func watch(_ slot: Int, writable: Bool) {
        let state = connections[slot].state
        guard state != .stalled && state != .closed else { return }
        // While connecting the socket was registered for EPOLLOUT only; leaving that state flips the flag to
        // false, so the MOD below adds EPOLLIN.
        if connections[slot].watchingWritable == writable { return }
        let events = Epoll.input | (writable ? Epoll.output : 0)
        _ = Epoll.control(epollFD, Epoll.modify, connections[slot].fd, events: events, data: UInt64(slot))
        connections[slot].watchingWritable = writable
    }

    private func lose(_ slot: Int, _ why: String) {
        guard connections[slot].state != .closed else { return }
        let role = connections[slot].spec.role
        let wasSetup = connections[slot].state != .ready && connections[slot].state != .stalled
        connections[slot].state = .closed
        _ = Epoll.control(epollFD, Epoll.delete, connections[slot].fd, events: 0, data: 0)
        if let ssl = connections[slot].ssl { SSL_free(ssl) }
        connections[slot].ssl = nil
        close(connections[slot].fd)
        connections[slot].fd = -1
        lostConnections += 1
        let note = "\(role) connection \(index)/\(slot): \(why)"
        if lostConnectionNotes.count < 5 { lostConnectionNotes.append(note) }
        if wasSetup && shared.phase.load(ordering: .relaxed) == Phase.setup.rawValue {
            shared.fail("during setup, \(note)")
        }
    }
}
