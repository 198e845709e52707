// Router unit tests for the slow-consumer bounds: session queue policies, the queued-bytes budget and stalled
// clients. Time is a parameter (Cluster.advance): nothing here waits on a clock.
import MQTTCodec
import Testing

@testable import MQTTRouter

@Suite struct SlowConsumerTests {
    /// A subscriber `s` on shard 0 with a QoS 1 subscription to `t` whose inflight window is full (it never acks),
    /// so further QoS 1 messages queue in its session; and a publisher `p`.
    static func stalledQoS1Subscriber(
        _ limits: Limits, shards: Int = 1
    ) -> (Cluster, subscriber: ConnectionKey, publisher: ConnectionKey) {
        var cluster = Cluster(shards: shards, limits: limits)
        let (sub, _) = cluster.connect("s", on: 0, properties: [.receiveMaximum(1)])
        cluster.subscribe(sub, "t", qos: .atLeastOnce)
        cluster.settle()
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect(cluster.clientIdentifier("p", homingOn: 0), on: 0)
        return (cluster, sub, pub)
    }

    /// QoS 0 subscribers to `t` named `names` on one shard, with their SUBACKs read, and a publisher `p`.
    static func qos0Subscribers(
        _ names: [String], limits: Limits = Limits()
    ) -> (Cluster, subscribers: [ConnectionKey], publisher: ConnectionKey) {
        var cluster = Cluster(shards: 1, limits: limits)
        var subscribers: [ConnectionKey] = []
        for name in names {
            let (subscriber, _) = cluster.connect(name, on: 0)
            cluster.subscribe(subscriber, "t", qos: .atMostOnce)
            _ = cluster.packets(subscriber)
            subscribers.append(subscriber)
        }
        let (publisher, _) = cluster.connect("p", on: 0)
        return (cluster, subscribers, publisher)
    }

    @Test func dropOldestKeepsTheNewestMessages() {
        // Proves drop_oldest makes room by dropping the oldest queued message (counted by QoS), so the subscriber
        // gets the newest ones once it acknowledges, and the held bytes fall back to zero.
        var limits = Limits()
        limits.sessionQueuedMessagesMax = 2
        limits.sessionQueueFullPolicy = .dropOldest
        var (cluster, sub, pub) = Self.stalledQoS1Subscriber(limits)
        for index in 1...5 { cluster.publish(pub, "t", "\(index)", qos: .atLeastOnce, id: UInt16(index)) }
        // 1 is in flight; 2..5 went through a queue of two: 2 and 3 were dropped.
        #expect(cluster.routers[0].counters.droppedSessionQueueFull == 2)
        #expect(cluster.routers[0].counters.droppedSessionQueueFullQoS1 == 2)
        #expect(cluster.routers[0].queuedBytesHeld == cluster.routers[0].recomputedHeldBytes())
        var received: [String] = []
        for _ in 0..<3 {
            for packet in cluster.packets(sub) {
                guard let publish = packet.publish else { continue }
                received.append(String(decoding: publish.payload, as: UTF8.self))
                cluster.send(sub, .puback(PubAckPacket(packetIdentifier: publish.packetIdentifier!)), version: .v5)
            }
        }
        #expect(received == ["1", "4", "5"])
        #expect(cluster.routers[0].queuedBytesHeld == 0)
    }

    @Test func disconnectPolicyClosesTheSlowClientWithQuotaExceeded() {
        // Proves the disconnect policy closes a subscriber whose session queue overflows, with DISCONNECT 0x97
        // Quota exceeded (5.0), counted as a slow client; the publisher is unaffected.
        var limits = Limits()
        limits.sessionQueuedMessagesMax = 2
        limits.sessionQueueFullPolicy = .disconnect
        var (cluster, sub, pub) = Self.stalledQoS1Subscriber(limits)
        for index in 1...4 { cluster.publish(pub, "t", "\(index)", qos: .atLeastOnce, id: UInt16(index)) }
        #expect(cluster.isClosed(sub))
        #expect(!cluster.isClosed(pub))
        let disconnects = cluster.packets(sub).compactMap { packet -> DisconnectPacket? in
            if case .disconnect(let disconnect) = packet { disconnect } else { nil }
        }
        #expect(disconnects.map(\.reasonCode) == [.quotaExceeded])
        #expect(disconnects.first?.properties.first(.reasonString) != nil)
        #expect(cluster.routers[0].counters.slowClientsDisconnected == 1)
    }

    @Test func stalledQoS0SubscriberIsDisconnectedAfterTheLimit() {
        // Proves a subscriber whose outbound queue stays full past queueFullDisconnectMillis is disconnected with
        // 0x97, and not before; a healthy subscriber of the same topic keeps receiving throughout.
        var limits = Limits()
        limits.queueFullDisconnectMillis = 5_000
        var (cluster, subscribers, pub) = Self.qos0Subscribers(["slow", "healthy"], limits: limits)
        let (slow, healthy) = (subscribers[0], subscribers[1])
        // The slow client's socket takes nothing more: its outbound queue already holds the whole bound.
        cluster.envs[0].outboundBytesMax = 1 << 20
        cluster.envs[0].outbound[slow] = Array(repeating: 0, count: 1 << 20)
        cluster.publish(pub, "t", "first")
        #expect(cluster.packets(healthy).compactMap(\.payloadString) == ["first"])
        #expect(cluster.routers[0].counters.droppedOutboundFull == 1)
        var delivered = 0
        for second in 1...4 {
            cluster.advance(by: 1_000)
            cluster.publish(pub, "t", "s\(second)")
            delivered += cluster.packets(healthy).count
            #expect(!cluster.isClosed(slow), "closed after \(second) s of a 5 s limit")
        }
        cluster.advance(by: 1_001)
        #expect(cluster.isClosed(slow))
        #expect(!cluster.isClosed(healthy))
        #expect(delivered == 4)
        #expect(cluster.routers[0].counters.slowClientsDisconnected == 1)
    }

    @Test func limitSetByReloadReachesAClientAlreadyStalled() {
        // Proves a queue_full_disconnect limit applied at run time (reload) also times a client that was stalled
        // before it: its next missed message arms the timer from the moment it stalled.
        var (cluster, subscribers, pub) = Self.qos0Subscribers(["slow"])
        let slow = subscribers[0]
        cluster.envs[0].outboundBytesMax = 0
        cluster.publish(pub, "t", "missed")
        cluster.advance(by: 10_000)
        var limits = Limits()
        limits.queueFullDisconnectMillis = 5_000
        cluster.routers[0].updateLimits(limits)
        #expect(!cluster.isClosed(slow))
        cluster.publish(pub, "t", "missed again")
        cluster.advance(by: 1)
        #expect(cluster.isClosed(slow))
        #expect(cluster.routers[0].counters.slowClientsDisconnected == 1)
    }

    @Test func subscriberThatCatchesUpIsNotDisconnected() {
        // Proves the stall clock stops when the client drains its queue (writable): a subscriber that is briefly
        // slow, then reads, stays connected past the limit.
        var limits = Limits()
        limits.queueFullDisconnectMillis = 5_000
        var (cluster, subscribers, pub) = Self.qos0Subscribers(["s"], limits: limits)
        let sub = subscribers[0]
        cluster.envs[0].outboundBytesMax = 0
        cluster.publish(pub, "t", "dropped")
        cluster.advance(by: 3_000)
        cluster.envs[0].outboundBytesMax = .max
        cluster.routers[0].writable(sub, now: cluster.now, env: &cluster.envs[0])
        cluster.advance(by: 10_000)
        #expect(!cluster.isClosed(sub))
        cluster.publish(pub, "t", "after")
        #expect(cluster.packets(sub).compactMap(\.payloadString) == ["after"])
    }

    @Test func budgetPausesPublishersOnEveryShardAndResumesThemAfterTheDrain() {
        // Proves that when one shard's held bytes reach its share of the budget, publishers on other shards are
        // paused after their next PUBLISH (nothing is dropped), and all are read again once the subscriber drains.
        var limits = Limits()
        limits.queuedBytesBudget = 2 * 600  // 600 bytes per shard: a few queued deliveries
        var cluster = Cluster(shards: 2, limits: limits)
        let (sub, _) = cluster.connect(cluster.clientIdentifier("s", homingOn: 0), on: 0,
                                       properties: [.receiveMaximum(1)])
        cluster.subscribe(sub, "t", qos: .atLeastOnce)
        cluster.settle()
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect(cluster.clientIdentifier("p", homingOn: 1), on: 1)
        var published = 0
        while !cluster.envs[1].paused.contains(pub) && published < 100 {
            published += 1
            cluster.publish(pub, "t", "m\(published)", qos: .atLeastOnce, id: UInt16(published))
            cluster.settle()
        }
        #expect(cluster.envs[1].paused.contains(pub), "the publisher on the other shard was never paused")
        #expect(cluster.routers[0].isUnderPressure)
        #expect(cluster.routers[1].counters.publishersPausedForBudget == 1)
        // The subscriber reads and acknowledges everything: pressure lifts, the publisher is read again.
        var received: [String] = []
        for _ in 0..<(published + 2) {
            for packet in cluster.packets(sub) {
                guard let publish = packet.publish else { continue }
                received.append(String(decoding: publish.payload, as: UTF8.self))
                cluster.send(sub, .puback(PubAckPacket(packetIdentifier: publish.packetIdentifier!)), version: .v5)
            }
            cluster.settle()
        }
        #expect(received == (1...published).map { "m\($0)" })
        #expect(!cluster.routers[0].isUnderPressure)
        #expect(cluster.routers[0].queuedBytesHeld == 0)
        #expect(!cluster.envs[1].paused.contains(pub))
    }
}
