// Topic aliases from the broker to clients (MQTT 5.0 §3.3.2.3.4): byte vectors of what a subscriber receives.
import MQTTCodec
import Testing

@testable import MQTTRouter

/// Bytes of a string, for byte vectors.
private func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite struct TopicAliasToClientTests {
    /// One shard, a v5 subscriber on `al/#` at QoS 0 with the given CONNECT properties, and a 3.1.1 publisher
    /// (no properties of its own, so the deliveries' properties are the alias alone).
    private static func setUp(
        subscriberProperties: Properties, cleanStart: Bool = true
    ) -> (Cluster, ConnectionKey, ConnectionKey) {
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s", on: 0, cleanStart: cleanStart, properties: subscriberProperties)
        cluster.subscribe(sub, "al/#", qos: .atMostOnce)
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0, version: .v3_1_1)
        return (cluster, sub, pub)
    }

    @Test func firstUseSendsTopicAndAliasLaterUsesEmptyTopicAndFullTableSendsTopicOnly() {
        // Proves the policy byte for byte: with Topic Alias Maximum 2, the first two topics get aliases 1 and 2
        // (topic + alias on first use, empty topic + alias after), a third topic goes in full without an alias,
        // and the existing aliases stay in use [MQTT-3.3.2-11].
        var (cluster, sub, pub) = Self.setUp(subscriberProperties: [.topicAliasMaximum(2)])
        let sequence = [("al/one", "1"), ("al/one", "2"), ("al/two", "3"), ("al/three", "4"), ("al/one", "5")]
        for (topic, payload) in sequence {
            cluster.publish(pub, topic, payload, version: .v3_1_1)
        }
        let expected: [UInt8] =
            [0x30, 0x0D, 0x00, 0x06] + ascii("al/one") + [0x03, 0x23, 0x00, 0x01] + ascii("1")  // topic + alias 1
            + [0x30, 0x07, 0x00, 0x00] + [0x03, 0x23, 0x00, 0x01] + ascii("2")  // empty topic, alias 1
            + [0x30, 0x0D, 0x00, 0x06] + ascii("al/two") + [0x03, 0x23, 0x00, 0x02] + ascii("3")  // topic + alias 2
            + [0x30, 0x0C, 0x00, 0x08] + ascii("al/three") + [0x00] + ascii("4")  // table full: topic, no alias
            + [0x30, 0x07, 0x00, 0x00] + [0x03, 0x23, 0x00, 0x01] + ascii("5")  // alias 1 again
        #expect(cluster.envs[0].outbound[sub] == expected)
        #expect(cluster.routers[0].counters.topicAliasesToClients == 2)
        // The codec reads them back as a client would.
        let publishes = cluster.packets(sub).compactMap(\.publish)
        #expect(publishes.map { $0.properties.first(.topicAlias) } == [
            .topicAlias(1), .topicAlias(1), .topicAlias(2), nil, .topicAlias(1),
        ])
    }

    @Test func clientsWithoutTopicAliasMaximumGetFullTopicsAndNoAlias() {
        // Proves a v5 client that sent no Topic Alias Maximum (or 0), and a 3.1.1 client, never get an alias:
        // every delivery carries the full topic and, in 5.0, empty properties.
        for properties: Properties in [[], [.topicAliasMaximum(0)]] {
            var (cluster, sub, pub) = Self.setUp(subscriberProperties: properties)
            cluster.publish(pub, "al/one", "1", version: .v3_1_1)
            cluster.publish(pub, "al/one", "2", version: .v3_1_1)
            let one: [UInt8] = [0x30, 0x0A, 0x00, 0x06] + ascii("al/one") + [0x00]
            #expect(cluster.envs[0].outbound[sub] == one + ascii("1") + one + ascii("2"))
            #expect(cluster.routers[0].counters.topicAliasesToClients == 0)
        }
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s3", on: 0, version: .v3_1_1)
        cluster.subscribe(sub, "al/#", qos: .atMostOnce, version: .v3_1_1)
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0, version: .v3_1_1)
        cluster.publish(pub, "al/one", "1", version: .v3_1_1)
        cluster.publish(pub, "al/one", "2", version: .v3_1_1)
        let one: [UInt8] = [0x30, 0x09, 0x00, 0x06] + ascii("al/one")
        #expect(cluster.envs[0].outbound[sub] == one + ascii("1") + one + ascii("2"))
    }

    @Test func shortTopicsAreNotAliased() {
        // Proves topics under 4 bytes get no alias (the 3-byte property would not make them smaller) and take no
        // slot: the next long topic still gets alias 1.
        var (cluster, sub, pub) = Self.setUp(subscriberProperties: [.topicAliasMaximum(1)])
        cluster.subscribe(sub, "x", qos: .atMostOnce, id: 2)
        _ = cluster.packets(sub)
        cluster.publish(pub, "x", "1", version: .v3_1_1)
        cluster.publish(pub, "al/y", "2", version: .v3_1_1)
        #expect(cluster.envs[0].outbound[sub] ==
            [0x30, 0x05, 0x00, 0x01] + ascii("x") + [0x00] + ascii("1")
            + [0x30, 0x0B, 0x00, 0x04] + ascii("al/y") + [0x03, 0x23, 0x00, 0x01] + ascii("2"))
    }

    @Test func aliasesAreResetOnReconnectAndResentMessagesCarryDupAndTheTopic() {
        // Proves [MQTT-3.3.2-7]: aliases do not survive a reconnect. Unacknowledged QoS 1 messages resent on
        // session resumption carry DUP [MQTT-3.3.1-1] and set their aliases afresh on the new connection (the
        // first names its topic again); a reconnect without Topic Alias Maximum gets full topics only.
        var cluster = Cluster(shards: 1)
        let connectProperties: Properties = [.sessionExpiryInterval(60), .topicAliasMaximum(5)]
        let (sub, _) = cluster.connect("s", on: 0, cleanStart: false, properties: connectProperties)
        cluster.subscribe(sub, "al/#", qos: .atLeastOnce)
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0, version: .v3_1_1)
        cluster.publish(pub, "al/one", "1", qos: .atLeastOnce, id: 1, version: .v3_1_1)
        cluster.publish(pub, "al/one", "2", qos: .atLeastOnce, id: 2, version: .v3_1_1)
        let first = cluster.packets(sub).compactMap(\.publish)
        #expect(first.map(\.topic.description) == ["al/one", ""])
        #expect(first.map(\.dup) == [false, false])
        cluster.drop(sub)

        // Reconnect by hand, to see the bytes after CONNACK (session present: 0x20, length, 0x01, 0x00, ...).
        let again = cluster.open(on: 0, version: .v5)
        cluster.send(again, .connect(ConnectPacket(
            protocolVersion: .v5, clientIdentifier: "s", cleanStart: false, properties: connectProperties
        )), version: .v5)
        let bytes = cluster.envs[0].outbound[again] ?? []
        #expect(bytes.count > 4 && bytes[0] == 0x20 && bytes[2] == 0x01)
        let afterConnAck = Array(bytes.dropFirst(2 + Int(bytes.count > 1 ? bytes[1] : 0)))
        // PUBLISH QoS 1 with DUP: 0x3A. Packet identifiers as first sent.
        let id1 = first[0].packetIdentifier!.rawValue
        let id2 = first[1].packetIdentifier!.rawValue
        #expect(afterConnAck ==
            [0x3A, 0x0F, 0x00, 0x06] + ascii("al/one") + [UInt8(id1 >> 8), UInt8(id1 & 0xFF)]
            + [0x03, 0x23, 0x00, 0x01] + ascii("1")
            + [0x3A, 0x09, 0x00, 0x00, UInt8(id2 >> 8), UInt8(id2 & 0xFF), 0x03, 0x23, 0x00, 0x01] + ascii("2"))
        _ = cluster.packets(again)
        cluster.drop(again)

        let (plain, _) = cluster.connect("s", on: 0, cleanStart: false, properties: [.sessionExpiryInterval(60)])
        let resent = cluster.packets(plain).compactMap(\.publish)
        #expect(resent.map(\.topic.description) == ["al/one", "al/one"])
        #expect(resent.allSatisfy { $0.dup && $0.properties.first(.topicAlias) == nil })
    }

    @Test func aliasCountsTowardsClientMaximumPacketSize() {
        // Proves [MQTT-3.1.2-25] with aliases: when topic + alias would exceed the client's Maximum Packet Size
        // the topic goes in full without an alias if that fits (no alias is set), an empty-topic alias is used
        // where it fits, and a message that fits in neither form is not sent (counted).
        // Sizes for topic "al/one" (6 bytes) and a payload of p bytes: plain 11 + p, topic + alias 14 + p,
        // empty topic + alias 8 + p.
        var (cluster, sub, pub) = Self.setUp(subscriberProperties: [.topicAliasMaximum(5), .maximumPacketSize(20)])
        cluster.publish(pub, "al/one", "a", version: .v3_1_1)  // 15: topic + alias 1
        cluster.publish(pub, "al/one", String(repeating: "b", count: 10), version: .v3_1_1)  // 18: alias 1 reused
        cluster.publish(pub, "al/one", String(repeating: "c", count: 15), version: .v3_1_1)  // 23 and 26: not sent
        cluster.publish(pub, "al/two", String(repeating: "d", count: 8), version: .v3_1_1)  // 22, plain 19: no alias
        cluster.publish(pub, "al/two", "e", version: .v3_1_1)  // 15: topic + alias 2
        #expect(cluster.envs[0].outbound[sub] ==
            [0x30, 0x0D, 0x00, 0x06] + ascii("al/one") + [0x03, 0x23, 0x00, 0x01] + ascii("a")
            + [0x30, 0x10, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01] + ascii(String(repeating: "b", count: 10))
            + [0x30, 0x11, 0x00, 0x06] + ascii("al/two") + [0x00] + ascii(String(repeating: "d", count: 8))
            + [0x30, 0x0D, 0x00, 0x06] + ascii("al/two") + [0x03, 0x23, 0x00, 0x02] + ascii("e"))
        #expect(cluster.routers[0].counters.droppedTooLargeForClient == 1)
        #expect(cluster.routers[0].counters.topicAliasesToClients == 2)
    }

    @Test func aliasIsSetOnlyWhenThePacketSettingItWasQueued() {
        // Proves a delivery that could not be queued (outbound queue full) sets no alias: the next delivery of
        // the topic names it again with the alias, so the client never sees an alias it was not told.
        var (cluster, sub, pub) = Self.setUp(subscriberProperties: [.topicAliasMaximum(5)])
        cluster.envs[0].outboundBytesMax = 0
        cluster.publish(pub, "al/one", "lost", version: .v3_1_1)
        #expect(cluster.routers[0].counters.droppedOutboundFull == 1)
        cluster.envs[0].outboundBytesMax = .max
        cluster.routers[0].writable(sub, now: cluster.now, env: &cluster.envs[0])
        cluster.publish(pub, "al/one", "1", version: .v3_1_1)
        cluster.publish(pub, "al/one", "2", version: .v3_1_1)
        #expect(cluster.envs[0].outbound[sub] ==
            [0x30, 0x0D, 0x00, 0x06] + ascii("al/one") + [0x03, 0x23, 0x00, 0x01] + ascii("1")
            + [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01] + ascii("2"))
    }

    @Test func aliasesAcrossShardsAndWithOtherProperties() {
        // Proves a message forwarded from another shard is aliased by the subscriber's home shard, and the alias
        // sits beside Message Expiry, pass-through properties and Subscription Identifiers.
        var cluster = Cluster(shards: 2)
        let subID = cluster.clientIdentifier("s", homingOn: 1)
        let pubID = cluster.clientIdentifier("p", homingOn: 0)
        let (sub, _) = cluster.connect(subID, on: 1, properties: [.topicAliasMaximum(3)])
        cluster.subscribe(sub, "al/#", qos: .atMostOnce, properties: [.subscriptionIdentifier(9)])
        cluster.settle()
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect(pubID, on: 0)
        for payload in ["1", "2"] {
            cluster.publish(pub, "al/one", payload, properties: [
                .messageExpiryInterval(100), .contentType("t"), .topicAlias(1),
            ])
        }
        cluster.settle()
        let got = cluster.packets(sub).compactMap(\.publish)
        #expect(got.map(\.topic.description) == ["al/one", ""])
        for publish in got {
            #expect(publish.properties.first(.topicAlias) == .topicAlias(1))
            #expect(publish.properties.first(.messageExpiryInterval) == .messageExpiryInterval(100))
            #expect(publish.properties.first(.contentType) == .contentType("t"))
            #expect(publish.properties.first(.subscriptionIdentifier) == .subscriptionIdentifier(9))
        }
        #expect(cluster.routers[1].counters.topicAliasesToClients == 1)
    }
}

@Suite struct OutgoingTopicAliasesTests {
    @Test func assignsInOrderUpToTheMaximumAndNeverEvicts() {
        // Proves the table hands out 1...maximum to distinct topics in order, reuses them, and answers
        // `.topicOnly` once full; nothing is set until `assigned` is called.
        var table = OutgoingTopicAliases(maximum: 2)
        let a = try! TopicName(validating: "a/aa")
        let b = try! TopicName(validating: "b/bb")
        let c = try! TopicName(validating: "c/cc")
        #expect(table.use(for: a) == .assign(1))
        #expect(table.use(for: a) == .assign(1))
        table.assigned(1, to: a)
        #expect(table.use(for: a) == .reuse(1))
        #expect(table.use(for: b) == .assign(2))
        table.assigned(2, to: b)
        #expect(table.use(for: c) == .topicOnly)
        #expect(table.use(for: b) == .reuse(2))
        #expect(table.count == 2)
        #expect(!OutgoingTopicAliases().isEnabled)
        #expect(OutgoingTopicAliases().use(for: a) == .topicOnly)
    }
}

@Suite struct TopicAliasFromClientLimitTests {
    @Test func brokerAnnouncesItsTopicAliasMaximumAndRefusesAliasesAboveIt() {
        // Proves [MQTT-3.3.2-9]: CONNACK announces Limits.topicAliasMaximum (default 10, which bounds the topics a
        // connection can pin), and an alias above it closes the connection with 0x94.
        var cluster = Cluster(shards: 1)
        let (pub, ack) = cluster.connect("p", on: 0)
        #expect(ack?.properties.first(.topicAliasMaximum) == .topicAliasMaximum(10))
        cluster.publish(pub, "al/ten", "ok", properties: [.topicAlias(10)])
        #expect(cluster.packets(pub).isEmpty)
        cluster.publish(pub, "al/eleven", "no", properties: [.topicAlias(11)])
        #expect(cluster.packets(pub).map(\.disconnectReason) == [.topicAliasInvalid])
        #expect(cluster.isClosed(pub))
    }

    @Test func topicAliasMaximumZeroAnnouncesNoneAndRefusesEveryAlias() {
        // Proves a broker configured with no client aliases leaves Topic Alias Maximum out of CONNACK (0 by
        // default) and refuses alias 1 with 0x94.
        var limits = Limits()
        limits.topicAliasMaximum = 0
        var cluster = Cluster(shards: 1, limits: limits)
        let (pub, ack) = cluster.connect("p", on: 0)
        #expect(ack?.properties.first(.topicAliasMaximum) == nil)
        cluster.publish(pub, "al/one", "no", properties: [.topicAlias(1)])
        #expect(cluster.packets(pub).map(\.disconnectReason) == [.topicAliasInvalid])
    }
}
