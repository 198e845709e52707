// Router unit tests: byte vectors in, decoded packets out, through a RecordingEnvironment.
import MQTTCodec
import Testing

@testable import MQTTRouter

@Suite struct RouterConnectTests {
    @Test func connectV311AnswersConnAckAndCreatesSessionOnHome() {
        // Proves a 3.1.1 CONNECT homed on the accepting shard gets CONNACK 0 without session present.
        var cluster = Cluster(shards: 1)
        let (_, ack) = cluster.connect("alpha", on: 0, version: .v3_1_1)
        #expect(ack == ConnAckPacket(sessionPresent: false, reasonCode: .success))
        #expect(cluster.routers[0].hasSession("alpha"))
        #expect(cluster.routers[0].counters.sessions == 1)
    }

    @Test func connectRawBytesV311() {
        // Proves the router decodes a hand-written CONNECT byte vector and answers the exact CONNACK bytes.
        var cluster = Cluster(shards: 1)
        let connection = cluster.open(on: 0, version: .v3_1_1)
        cluster.feed(connection, [
            0x10, 0x0D,  // CONNECT, remaining length 13
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54,  // "MQTT"
            0x04, 0x02, 0x00, 0x3C,  // level 4, clean session, keep alive 60
            0x00, 0x01, 0x61,  // client identifier "a"
        ])
        #expect(cluster.envs[0].outbound[connection] == [0x20, 0x02, 0x00, 0x00])
    }

    @Test func emptyClientIdentifierIsAssignedOneHomedHere() {
        // Proves a v5 CONNECT with an empty identifier gets an Assigned Client Identifier homing on this shard.
        var cluster = Cluster(shards: 4)
        let (connection, ack) = cluster.connect("", on: 2)
        guard case .assignedClientIdentifier(let assigned)? = ack?.properties.first(.assignedClientIdentifier) else {
            Issue.record("no assigned client identifier")
            return
        }
        #expect(ShardID.home(forClientIdentifier: assigned.utf8, shardCount: 4) == ShardID(2))
        #expect(cluster.owner[connection] == 2)
        #expect(cluster.routers[2].hasSession(assigned))
    }

    @Test func connectOnWrongShardIsHandedOffHome() {
        // Proves CONNECT on a non-home shard hands the connection to home, which answers CONNACK.
        var cluster = Cluster(shards: 3)
        let id = cluster.clientIdentifier("h", homingOn: 1)
        let (connection, ack) = cluster.connect(id, on: 0)
        #expect(ack?.reasonCode == .success)
        #expect(cluster.owner[connection] == 1)
        #expect(cluster.routers[0].counters.connectionsHandedOff == 1)
        #expect(cluster.routers[1].hasSession(id))
        #expect(!cluster.routers[0].hasSession(id))
    }

    @Test func bytesAfterConnectTravelWithHandoff() {
        // Proves bytes following CONNECT in the same read are not consumed by the accepting shard but by home.
        var cluster = Cluster(shards: 2)
        let id = cluster.clientIdentifier("t", homingOn: 1)
        let connection = cluster.open(on: 0, version: .v5)
        var bytes = Packet.connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: id)).encode(version: .v5)
        bytes += Packet.pingreq.encode(version: .v5)
        cluster.feed(connection, bytes)
        let packets = cluster.packets(connection)
        #expect(packets.count == 2)
        #expect(packets.last == .pingresp)
    }

    @Test func packetBeforeConnectClosesWithoutConnAck() {
        // Proves [MQTT-3.1.0-1]: a first packet other than CONNECT closes the connection with nothing sent.
        var cluster = Cluster(shards: 1)
        let connection = cluster.open(on: 0, version: .v5)
        cluster.send(connection, .pingreq, version: .v5)
        #expect(cluster.isClosed(connection))
        #expect(cluster.envs[0].outbound[connection] == nil)
    }

    @Test func unsupportedProtocolLevelGetsReturnCode1() {
        // Proves [MQTT-3.1.2-2]: protocol level 6 gets CONNACK return code 0x01, then close.
        var cluster = Cluster(shards: 1)
        let connection = cluster.open(on: 0, version: .v3_1_1)
        cluster.feed(connection, [0x10, 0x0D, 0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x3C, 0x00, 0x01, 0x61])
        #expect(cluster.envs[0].outbound[connection] == [0x20, 0x02, 0x00, 0x01])
        #expect(cluster.isClosed(connection))
    }

    @Test func emptyIdentifierWithoutCleanSessionRejectedV311() {
        // Proves [MQTT-3.1.3-8]: 3.1.1 empty client identifier with clean session 0 gets return code 0x02.
        var cluster = Cluster(shards: 2)
        let connection = cluster.open(on: 0, version: .v3_1_1)
        cluster.send(connection, .connect(ConnectPacket(protocolVersion: .v3_1_1, clientIdentifier: "", cleanStart: false)),
                     version: .v3_1_1)
        #expect(cluster.envs[0].outbound[connection] == [0x20, 0x02, 0x00, 0x02])
        #expect(cluster.isClosed(connection))
    }

    @Test func disconnectSettingExpiryAfterZeroIsProtocolError() {
        // Proves [MQTT-3.14.2-2]: DISCONNECT with a Session Expiry Interval after CONNECT gave 0 is 0x82.
        var cluster = Cluster(shards: 1)
        let (connection, _) = cluster.connect("z", on: 0)
        cluster.send(connection, .disconnect(DisconnectPacket(properties: [.sessionExpiryInterval(30)])), version: .v5)
        #expect(cluster.packets(connection) == [.disconnect(DisconnectPacket(
            reasonCode: .protocolError,
            properties: [.reasonString("[MQTT-3.14.2-2] Session Expiry Interval set at DISCONNECT after 0")]
        ))])
        #expect(!cluster.routers[0].hasSession("z"))
    }

    @Test func secondConnectIsProtocolError() {
        // Proves a second CONNECT closes the connection with DISCONNECT 0x82.
        var cluster = Cluster(shards: 1)
        let (connection, _) = cluster.connect("c", on: 0)
        cluster.send(connection, .connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: "c")), version: .v5)
        #expect(cluster.packets(connection) == [.disconnect(DisconnectPacket(
            reasonCode: .protocolError, properties: [.reasonString("[MQTT-3.1.0-2] second CONNECT")]
        ))])
        #expect(cluster.isClosed(connection))
    }

    @Test func connectTimeoutCloses() {
        // Proves a connection that sends no CONNECT within the timeout is closed.
        var cluster = Cluster(shards: 1)
        let connection = cluster.open(on: 0, version: .v5)
        cluster.advance(by: 9_999)
        #expect(!cluster.isClosed(connection))
        cluster.advance(by: 1)
        #expect(cluster.isClosed(connection))
        #expect(cluster.routers[0].counters.connectTimeouts == 1)
    }

    @Test func keepAliveEnforcedAtOneAndAHalfTimes() {
        // Proves keep alive 10 s closes a silent connection after 15 s (0x8D), and PINGREQ keeps it open.
        var cluster = Cluster(shards: 1)
        let (connection, _) = cluster.connect("k", on: 0, keepAlive: 10)
        cluster.advance(by: 14_000)
        cluster.send(connection, .pingreq, version: .v5)
        #expect(cluster.packets(connection) == [.pingresp])
        cluster.advance(by: 14_000)
        #expect(!cluster.isClosed(connection))
        cluster.advance(by: 1_000)
        #expect(cluster.isClosed(connection))
        #expect(cluster.packets(connection) == [.disconnect(DisconnectPacket(
            reasonCode: .keepAliveTimeout, properties: [.reasonString("keep alive timeout")]
        ))])
    }

    @Test func serverKeepAliveWhenClientAsksTooMuch() {
        // Proves a v5 client asking more than keepAliveSecondsMax gets Server Keep Alive in CONNACK.
        var limits = Limits()
        limits.keepAliveSecondsMax = 30
        var cluster = Cluster(shards: 1, limits: limits)
        let (_, ack) = cluster.connect("k", on: 0, keepAlive: 100)
        #expect(ack?.properties.first(.serverKeepAlive) == .serverKeepAlive(30))
    }

    @Test func takeoverSendsSessionTakenOver() {
        // Proves a second connection with the same client identifier closes the first with DISCONNECT 0x8E.
        var cluster = Cluster(shards: 2)
        let id = cluster.clientIdentifier("dup", homingOn: 0)
        let (first, _) = cluster.connect(id, on: 0, cleanStart: false, properties: [.sessionExpiryInterval(60)])
        let (second, ack) = cluster.connect(id, on: 1, cleanStart: false, properties: [.sessionExpiryInterval(60)])
        #expect(ack?.sessionPresent == true)
        #expect(cluster.packets(first) == [.disconnect(DisconnectPacket(reasonCode: .sessionTakenOver))])
        #expect(cluster.isClosed(first))
        #expect(!cluster.isClosed(second))
        #expect(cluster.routers[0].counters.takeovers == 1)
    }
}

@Suite struct RouterPublishTests {
    @Test func qos0And1And2DeliveryOnOneShard() {
        // Proves QoS 0/1/2 both directions: publisher acks, subscriber gets packet ids, QoS 2 handshake completes.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("sub", on: 0)
        cluster.subscribe(sub, "a/+", qos: .exactlyOnce)
        #expect(cluster.packets(sub) == [.suback(SubAckPacket(packetIdentifier: PacketIdentifier(nonZero: 1), reasonCodes: [.grantedQoS2]))])
        let (pub, _) = cluster.connect("pub", on: 0)
        cluster.publish(pub, "a/b", "zero")
        cluster.publish(pub, "a/b", "one", qos: .atLeastOnce, id: 7)
        cluster.publish(pub, "a/b", "two", qos: .exactlyOnce, id: 8)
        #expect(cluster.packets(pub) == [
            .puback(PubAckPacket(packetIdentifier: PacketIdentifier(nonZero: 7))),
            .pubrec(PubRecPacket(packetIdentifier: PacketIdentifier(nonZero: 8))),
        ])
        // A duplicate QoS 2 PUBLISH before PUBREL is acknowledged but not delivered again.
        cluster.publish(pub, "a/b", "two", qos: .exactlyOnce, id: 8)
        #expect(cluster.packets(pub) == [.pubrec(PubRecPacket(packetIdentifier: PacketIdentifier(nonZero: 8)))])
        cluster.send(pub, .pubrel(PubRelPacket(packetIdentifier: PacketIdentifier(nonZero: 8))), version: .v5)
        #expect(cluster.packets(pub) == [.pubcomp(PubCompPacket(packetIdentifier: PacketIdentifier(nonZero: 8)))])

        let received = cluster.packets(sub)
        #expect(received.compactMap(\.payloadString) == ["zero", "one", "two"])
        let publishes = received.compactMap(\.publish)
        #expect(publishes.map(\.qos) == [.atMostOnce, .atLeastOnce, .exactlyOnce])
        #expect(publishes[0].packetIdentifier == nil)
        let id1 = publishes[1].packetIdentifier!
        let id2 = publishes[2].packetIdentifier!
        #expect(id1 != id2)
        cluster.send(sub, .puback(PubAckPacket(packetIdentifier: id1)), version: .v5)
        cluster.send(sub, .pubrec(PubRecPacket(packetIdentifier: id2)), version: .v5)
        #expect(cluster.packets(sub) == [.pubrel(PubRelPacket(packetIdentifier: id2))])
        cluster.send(sub, .pubcomp(PubCompPacket(packetIdentifier: id2)), version: .v5)
        #expect(cluster.routers[0].sessionLoad("sub")?.inflight == 0)
    }

    @Test func crossShardSubAckWaitsForInterestAcknowledgements() {
        // Proves SUBACK for a filter new on its shard waits for every other shard's ack, then publishes on
        // another shard are forwarded and delivered.
        var cluster = Cluster(shards: 3)
        let subID = cluster.clientIdentifier("sub", homingOn: 0)
        let pubID = cluster.clientIdentifier("pub", homingOn: 2)
        let (sub, _) = cluster.connect(subID, on: 0)
        cluster.subscribe(sub, "x/#", qos: .atLeastOnce)
        #expect(cluster.packets(sub).isEmpty)
        cluster.settle()
        #expect(cluster.packets(sub).count == 1)
        #expect(cluster.routers[2].interestReplica.shards(forFilter: try! TopicFilter(validating: "x/#")).contains(ShardID(0)))
        let (pub, _) = cluster.connect(pubID, on: 2)
        cluster.publish(pub, "x/y", "hello", qos: .atLeastOnce)
        cluster.settle()
        let got = cluster.packets(sub)
        #expect(got.compactMap(\.payloadString) == ["hello"])
        #expect(got.first?.publish?.qos == .atLeastOnce)
        #expect(cluster.routers[2].counters.meshMessagesSent >= 1)
        // No interest on shard 1: nothing forwarded there (it saw the interest delta and the retained request).
        #expect(cluster.routers[1].counters.meshMessagesReceived == 2)
    }

    @Test func unsubscribeStopsDeliveryAndRemovesInterest() {
        // Proves UNSUBSCRIBE answers UNSUBACK and withdraws the shard's interest from the replicas.
        var cluster = Cluster(shards: 2)
        let subID = cluster.clientIdentifier("s", homingOn: 0)
        let (sub, _) = cluster.connect(subID, on: 0)
        cluster.subscribe(sub, "u/1")
        cluster.settle()
        _ = cluster.packets(sub)
        let filter = try! TopicFilter(validating: "u/1")
        cluster.send(sub, .unsubscribe(UnsubscribePacket(packetIdentifier: PacketIdentifier(nonZero: 2), filters: [filter, try! TopicFilter(validating: "nope")])), version: .v5)
        #expect(cluster.packets(sub) == [.unsuback(UnsubAckPacket(packetIdentifier: PacketIdentifier(nonZero: 2), reasonCodes: [.success, .noSubscriptionExisted]))])
        cluster.settle()
        #expect(cluster.routers[1].interestReplica.shards(forFilter: filter).isEmpty)
    }

    @Test func overlappingSubscriptionsGiveOneCopyWithAllIdentifiers() {
        // Proves [MQTT-3.3.4-3]/[MQTT-3.3.4-5]: one copy at max QoS carrying every matching subscription identifier.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("o", on: 0)
        cluster.subscribe(sub, "o/+", qos: .atMostOnce, id: 1, properties: [.subscriptionIdentifier(5)])
        cluster.subscribe(sub, "o/#", qos: .atLeastOnce, id: 2, properties: [.subscriptionIdentifier(9)])
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0)
        cluster.publish(pub, "o/x", "m", qos: .exactlyOnce)
        let publishes = cluster.packets(sub).compactMap(\.publish)
        #expect(publishes.count == 1)
        #expect(publishes.first?.qos == .atLeastOnce)
        let identifiers = publishes.first?.properties.list.compactMap { property -> Int? in
            if case .subscriptionIdentifier(let value) = property { value } else { nil }
        }
        #expect(Set(identifiers ?? []) == [5, 9])
    }

    @Test func noLocalSkipsOwnMessages() {
        // Proves No Local: a client's own publish is not sent back to its no-local subscription.
        var cluster = Cluster(shards: 1)
        let (client, _) = cluster.connect("n", on: 0)
        cluster.subscribe(client, "n/t", options: SubscriptionOptions(qos: .atMostOnce, noLocal: true))
        _ = cluster.packets(client)
        cluster.publish(client, "n/t", "self")
        #expect(cluster.packets(client).isEmpty)
    }

    @Test func systemTopicPublishRefused() {
        // Proves a client PUBLISH to $SYS is dropped and a v5 QoS 1 one is answered PUBACK 0x87.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s", on: 0)
        cluster.subscribe(sub, "$SYS/#")
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0)
        cluster.publish(pub, "$SYS/x", "bad", qos: .atLeastOnce, id: 3)
        #expect(cluster.packets(pub) == [.puback(PubAckPacket(packetIdentifier: PacketIdentifier(nonZero: 3), reasonCode: .notAuthorized))])
        #expect(cluster.packets(sub).isEmpty)
    }

    @Test func wildcardInPublishTopicClosesWith0x90() {
        // Proves [MQTT-3.3.2-2]: a wildcard in a PUBLISH topic closes the connection with DISCONNECT 0x90.
        var cluster = Cluster(shards: 1)
        let (pub, _) = cluster.connect("w", on: 0)
        cluster.feed(pub, [0x30, 0x06, 0x00, 0x03, 0x61, 0x2F, 0x23, 0x00])  // PUBLISH "a/#", no properties
        #expect(cluster.packets(pub).map(\.disconnectReason) == [.topicNameInvalid])
        #expect(cluster.isClosed(pub))
    }

    @Test func oversizedPacketClosesWith0x95() {
        // Proves a packet over packetSizeBytesMax is refused from its fixed header with DISCONNECT 0x95.
        var limits = Limits()
        limits.packetSizeBytesMax = 64
        var cluster = Cluster(shards: 1, limits: limits)
        let (pub, _) = cluster.connect("big", on: 0)
        cluster.feed(pub, [0x30, 0x80, 0x01])
        #expect(cluster.packets(pub).map(\.disconnectReason) == [.packetTooLarge])
    }

    @Test func topicAliasFromClient() {
        // Proves a topic alias set by a client is resolved on later publishes, and an unknown one is 0x82.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s", on: 0)
        cluster.subscribe(sub, "al/#")
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0)
        cluster.publish(pub, "al/one", "1", properties: [.topicAlias(3)])
        cluster.send(pub, .publish(PublishPacket(topic: TopicName(uncheckedBytes: []), properties: [.topicAlias(3)], payload: Array("2".utf8))), version: .v5)
        let got = cluster.packets(sub)
        #expect(got.compactMap(\.payloadString) == ["1", "2"])
        #expect(got.compactMap(\.publish).allSatisfy { $0.topic.description == "al/one" && $0.properties.first(.topicAlias) == nil })
        cluster.send(pub, .publish(PublishPacket(topic: TopicName(uncheckedBytes: []), properties: [.topicAlias(4)], payload: [])), version: .v5)
        #expect(cluster.packets(pub) == [.disconnect(DisconnectPacket(
            reasonCode: .protocolError, properties: [.reasonString("topic alias not set")]
        ))])
    }

    @Test func receiveMaximumExceededCloses() {
        // Proves a client exceeding the broker's Receive Maximum with QoS 2 gets DISCONNECT 0x93.
        var limits = Limits()
        limits.receiveMaximum = 2
        var cluster = Cluster(shards: 1, limits: limits)
        let (pub, ack) = cluster.connect("r", on: 0)
        #expect(ack?.properties.first(.receiveMaximum) == .receiveMaximum(2))
        cluster.publish(pub, "r", "1", qos: .exactlyOnce, id: 1)
        cluster.publish(pub, "r", "2", qos: .exactlyOnce, id: 2)
        cluster.publish(pub, "r", "3", qos: .exactlyOnce, id: 3)
        #expect(cluster.packets(pub).last?.disconnectReason == .receiveMaximumExceeded)
    }

    @Test func inflightWindowHonoursClientReceiveMaximum() {
        // Proves at most Receive Maximum QoS 1 messages are unacknowledged; the rest wait in the session queue.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s", on: 0, properties: [.receiveMaximum(2)])
        cluster.subscribe(sub, "q", qos: .atLeastOnce)
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0)
        for index in 1...5 { cluster.publish(pub, "q", "\(index)", qos: .atLeastOnce, id: UInt16(index)) }
        var got = cluster.packets(sub).compactMap(\.publish)
        #expect(got.map { String(decoding: $0.payload, as: UTF8.self) } == ["1", "2"])
        #expect(cluster.routers[0].sessionLoad("s")?.queued == 3)
        cluster.send(sub, .puback(PubAckPacket(packetIdentifier: got[0].packetIdentifier!)), version: .v5)
        got = cluster.packets(sub).compactMap(\.publish)
        #expect(got.map { String(decoding: $0.payload, as: UTF8.self) } == ["3"])
    }

    @Test func outboundFullQueuesQoS1AndDropsQoS0UntilWritable() {
        // Proves a full outbound queue drops QoS 0 (counted) and keeps QoS 1 queued until writable.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s", on: 0)
        cluster.subscribe(sub, "f")
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0)
        cluster.envs[0].outboundBytesMax = 0
        cluster.publish(pub, "f", "q1", qos: .atLeastOnce)
        cluster.publish(pub, "f", "q0")
        #expect(cluster.routers[0].counters.droppedOutboundFull == 1)
        cluster.envs[0].outboundBytesMax = .max
        cluster.routers[0].writable(sub, now: cluster.now, env: &cluster.envs[0])
        #expect(cluster.packets(sub).compactMap(\.payloadString) == ["q1"])
    }

    @Test func messageLargerThanClientMaximumIsNotSent() {
        // Proves [MQTT-3.1.2-25]: a message larger than the client's Maximum Packet Size is not sent to it.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s", on: 0, properties: [.maximumPacketSize(30)])
        cluster.subscribe(sub, "m")
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect("p", on: 0)
        cluster.publish(pub, "m", String(repeating: "x", count: 40), qos: .atLeastOnce)
        cluster.publish(pub, "m", "ok", qos: .atLeastOnce)
        #expect(cluster.packets(sub).compactMap(\.payloadString) == ["ok"])
        #expect(cluster.routers[0].counters.droppedTooLargeForClient == 1)
    }

    @Test func propertiesPassThroughAndExpiryIsDecremented() {
        // Proves user properties, content type and correlation data pass through, and Message Expiry is reduced
        // by the time queued; an expired queued message is dropped.
        var cluster = Cluster(shards: 1)
        let (sub, _) = cluster.connect("s", on: 0, cleanStart: false, properties: [.sessionExpiryInterval(100)])
        cluster.subscribe(sub, "p", qos: .atLeastOnce)
        _ = cluster.packets(sub)
        cluster.send(sub, .disconnect(DisconnectPacket()), version: .v5)
        let (pub, _) = cluster.connect("p", on: 0)
        cluster.publish(pub, "p", "keep", qos: .atLeastOnce, id: 1, properties: [
            .messageExpiryInterval(10), .contentType("text/plain"), .userProperty(name: "k", value: "v"),
            .correlationData([1, 2]),
        ])
        cluster.publish(pub, "p", "gone", qos: .atLeastOnce, id: 2, properties: [.messageExpiryInterval(2)])
        cluster.advance(by: 4_000)
        let (again, ack) = cluster.connect("s", on: 0, cleanStart: false, properties: [.sessionExpiryInterval(100)])
        #expect(ack?.sessionPresent == true)
        let got = cluster.packets(again).compactMap(\.publish)
        #expect(got.map { String(decoding: $0.payload, as: UTF8.self) } == ["keep"])
        let properties = got.first?.properties
        #expect(properties?.first(.messageExpiryInterval) == .messageExpiryInterval(6))
        #expect(properties?.first(.contentType) == .contentType("text/plain"))
        #expect(properties?.first(.userProperty) == .userProperty(name: "k", value: "v"))
        #expect(properties?.first(.correlationData) == .correlationData([1, 2]))
        #expect(cluster.routers[0].counters.droppedExpired == 1)
    }

    @Test func sharedSubscriptionDeliversToOneMemberEach() {
        // Proves a shared group gets each message once, spread over its members on two shards.
        var cluster = Cluster(shards: 2)
        let aID = cluster.clientIdentifier("a", homingOn: 0)
        let bID = cluster.clientIdentifier("b", homingOn: 1)
        let (a, _) = cluster.connect(aID, on: 0)
        let (b, _) = cluster.connect(bID, on: 1)
        cluster.subscribe(a, "$share/g/s/#", qos: .atLeastOnce)
        cluster.subscribe(b, "$share/g/s/#", qos: .atLeastOnce)
        cluster.settle()
        _ = cluster.packets(a)
        _ = cluster.packets(b)
        let (pub, _) = cluster.connect(cluster.clientIdentifier("p", homingOn: 0), on: 0)
        for index in 0..<10 { cluster.publish(pub, "s/x", "\(index)") }
        cluster.settle()
        let gotA = cluster.packets(a).compactMap(\.payloadString)
        let gotB = cluster.packets(b).compactMap(\.payloadString)
        #expect(gotA.count + gotB.count == 10)
        #expect(Set(gotA + gotB).count == 10)
        #expect(!gotA.isEmpty && !gotB.isEmpty)
    }
}

@Suite struct RouterSessionTests {
    @Test func retainedMessageAcrossShardsDeliveredAfterSubAck() {
        // Proves a retained message set on its topic's home shard reaches a wildcard subscriber on another shard
        // after its SUBACK, with RETAIN set; an empty retained payload clears it.
        var cluster = Cluster(shards: 3)
        let (pub, _) = cluster.connect(cluster.clientIdentifier("p", homingOn: 0), on: 0)
        cluster.publish(pub, "r/1", "kept", qos: .atLeastOnce, retain: true)
        cluster.publish(pub, "r/2", "also", retain: true)
        cluster.settle()
        #expect(cluster.routers.map(\.counters.retainedMessages).reduce(0, +) == 2)
        let (sub, _) = cluster.connect(cluster.clientIdentifier("s", homingOn: 1), on: 1)
        cluster.subscribe(sub, "r/#", qos: .atLeastOnce)
        cluster.settle()
        let got = cluster.packets(sub)
        guard case .suback = got.first else {
            Issue.record("SUBACK not first: \(got)")
            return
        }
        #expect(Set(got.compactMap(\.payloadString)) == ["kept", "also"])
        #expect(got.compactMap(\.publish).allSatisfy { $0.retain })
        // Exact-topic subscribe asks one shard.
        let (exact, _) = cluster.connect(cluster.clientIdentifier("e", homingOn: 2), on: 2)
        cluster.subscribe(exact, "r/1", qos: .atMostOnce)
        cluster.settle()
        #expect(cluster.packets(exact).compactMap(\.payloadString) == ["kept"])
        // Clear.
        cluster.publish(pub, "r/1", "", retain: true)
        cluster.settle()
        #expect(cluster.routers.map(\.counters.retainedMessages).reduce(0, +) == 1)
    }

    @Test func retainHandlingDoNotSend() {
        // Proves Retain Handling 2 sends no retained messages, and 1 only for a new subscription.
        var cluster = Cluster(shards: 1)
        let (pub, _) = cluster.connect("p", on: 0)
        cluster.publish(pub, "h", "r", retain: true)
        let (sub, _) = cluster.connect("s", on: 0)
        cluster.subscribe(sub, "h", options: SubscriptionOptions(qos: .atMostOnce, retainHandling: .doNotSend))
        #expect(cluster.packets(sub).compactMap(\.payloadString).isEmpty)
        cluster.subscribe(sub, "h", options: SubscriptionOptions(qos: .atMostOnce, retainHandling: .sendOnNewSubscribe))
        #expect(cluster.packets(sub).compactMap(\.payloadString).isEmpty)
        cluster.subscribe(sub, "h", options: SubscriptionOptions(qos: .atMostOnce, retainHandling: .sendOnSubscribe))
        #expect(cluster.packets(sub).compactMap(\.payloadString) == ["r"])
    }

    @Test func willPublishedOnAbnormalCloseNotOnDisconnect() {
        // Proves the will goes out when the socket drops, and not after DISCONNECT 0x00.
        var cluster = Cluster(shards: 2)
        let (watcher, _) = cluster.connect(cluster.clientIdentifier("w", homingOn: 1), on: 1)
        cluster.subscribe(watcher, "will/#")
        cluster.settle()
        _ = cluster.packets(watcher)
        let will = ConnectPacket.Will(topic: try! TopicName(validating: "will/a"), payload: Array("bye".utf8))
        let (a, _) = cluster.connect(cluster.clientIdentifier("a", homingOn: 0), on: 0, will: will)
        cluster.drop(a)
        cluster.settle()
        #expect(cluster.packets(watcher).compactMap(\.payloadString) == ["bye"])
        let (b, _) = cluster.connect(cluster.clientIdentifier("b", homingOn: 0), on: 0, will: will)
        cluster.send(b, .disconnect(DisconnectPacket()), version: .v5)
        cluster.drop(b)
        cluster.settle()
        #expect(cluster.packets(watcher).isEmpty)
    }

    @Test func willDelayCancelledByReconnectAndSentWhenDue() {
        // Proves a delayed will is not sent if the client reconnects in time, and is sent when the delay passes.
        var cluster = Cluster(shards: 1)
        let (watcher, _) = cluster.connect("watch", on: 0)
        cluster.subscribe(watcher, "lw")
        _ = cluster.packets(watcher)
        let will = ConnectPacket.Will(
            topic: try! TopicName(validating: "lw"), payload: Array("late".utf8), properties: [.willDelayInterval(5)]
        )
        let props: Properties = [.sessionExpiryInterval(60)]
        let (first, _) = cluster.connect("d", on: 0, cleanStart: false, will: will, properties: props)
        cluster.drop(first)
        cluster.advance(by: 3_000)
        let (second, _) = cluster.connect("d", on: 0, cleanStart: false, will: will, properties: props)
        cluster.advance(by: 10_000)
        #expect(cluster.packets(watcher).isEmpty)
        cluster.drop(second)
        cluster.advance(by: 4_000)
        #expect(cluster.packets(watcher).isEmpty)
        cluster.advance(by: 1_000)
        #expect(cluster.packets(watcher).compactMap(\.payloadString) == ["late"])
    }

    @Test func persistentSessionQueuesOfflineAndRedeliversWithDup() {
        // Proves a 3.1.1 persistent session keeps subscriptions, queues QoS 1 while offline, and resends an
        // unacknowledged message with DUP on resumption.
        var cluster = Cluster(shards: 2)
        let subID = cluster.clientIdentifier("ps", homingOn: 1)
        let (sub, _) = cluster.connect(subID, on: 1, version: .v3_1_1, cleanStart: false)
        cluster.subscribe(sub, "ps/#", qos: .atLeastOnce, version: .v3_1_1)
        cluster.settle()
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect(cluster.clientIdentifier("pp", homingOn: 0), on: 0, version: .v3_1_1)
        cluster.publish(pub, "ps/1", "first", qos: .atLeastOnce, version: .v3_1_1)
        cluster.settle()
        let unacked = cluster.packets(sub).compactMap(\.publish)
        #expect(unacked.count == 1)
        cluster.drop(sub)
        cluster.publish(pub, "ps/2", "second", qos: .atLeastOnce, version: .v3_1_1)
        cluster.publish(pub, "ps/3", "lost-qos0", version: .v3_1_1)
        cluster.settle()
        let (again, ack) = cluster.connect(subID, on: 0, version: .v3_1_1, cleanStart: false)
        #expect(ack?.sessionPresent == true)
        let got = cluster.packets(again).compactMap(\.publish)
        #expect(got.map { String(decoding: $0.payload, as: UTF8.self) } == ["first", "second"])
        #expect(got[0].dup && got[0].packetIdentifier == unacked[0].packetIdentifier)
        #expect(!got[1].dup)
    }

    @Test func cleanSessionEndsSessionAndInterest() {
        // Proves a clean session ends with its connection: its subscriptions leave every replica.
        var cluster = Cluster(shards: 2)
        let id = cluster.clientIdentifier("c", homingOn: 0)
        let (sub, _) = cluster.connect(id, on: 0, version: .v3_1_1)
        cluster.subscribe(sub, "c/1", version: .v3_1_1)
        cluster.settle()
        cluster.drop(sub)
        cluster.settle()
        #expect(!cluster.routers[0].hasSession(id))
        #expect(cluster.routers[1].interestReplica.entryCount == 0)
        #expect(cluster.routers[0].counters.subscriptions == 0)
    }

    @Test func sessionExpiresAfterInterval() {
        // Proves a v5 session with expiry 5 s ends 5 s after its connection closes.
        var cluster = Cluster(shards: 1)
        let (client, _) = cluster.connect("e", on: 0, cleanStart: false, properties: [.sessionExpiryInterval(5)])
        cluster.drop(client)
        cluster.advance(by: 4_999)
        #expect(cluster.routers[0].hasSession("e"))
        cluster.advance(by: 1)
        #expect(!cluster.routers[0].hasSession("e"))
        #expect(cluster.routers[0].counters.sessionsExpired == 1)
    }

    @Test func offlineQueueBoundDropsNewest() {
        // Proves an offline session queues at most sessionQueuedMessagesMax messages, dropping the newest (counted),
        // and delivers the kept ones in order on resumption.
        var limits = Limits()
        limits.sessionQueuedMessagesMax = 2
        var cluster = Cluster(shards: 1, limits: limits)
        let props: Properties = [.sessionExpiryInterval(600)]
        let (sub, _) = cluster.connect("q", on: 0, cleanStart: false, properties: props)
        cluster.subscribe(sub, "q", qos: .atLeastOnce)
        cluster.drop(sub)
        let (pub, _) = cluster.connect("p", on: 0)
        for index in 1...4 { cluster.publish(pub, "q", "\(index)", qos: .atLeastOnce, id: UInt16(index)) }
        #expect(cluster.routers[0].counters.droppedSessionQueueFull == 2)
        let (again, _) = cluster.connect("q", on: 0, cleanStart: false, properties: props)
        #expect(cluster.packets(again).compactMap(\.payloadString) == ["1", "2"])
    }

    @Test func malformedV5ConnectGetsConnAckReason() {
        // Proves a v5 CONNECT with the reserved flag set gets CONNACK 0x81 Malformed Packet, then close.
        var cluster = Cluster(shards: 1)
        let connection = cluster.open(on: 0, version: .v5)
        var bytes = Packet.connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: "m")).encode(version: .v5)
        bytes[9] |= 0x01  // connect flags: reserved bit
        cluster.feed(connection, bytes)
        #expect(cluster.packets(connection) == [.connack(ConnAckPacket(reasonCode: .malformedPacket))])
        #expect(cluster.isClosed(connection))
    }

    @Test func requestResponseInformationAnswered() {
        // Proves a v5 client asking for Response Information gets it in CONNACK.
        var cluster = Cluster(shards: 1)
        let (_, ack) = cluster.connect("rr", on: 0, properties: [.requestResponseInformation(true)])
        #expect(ack?.properties.first(.responseInformation) == .responseInformation("response/rr"))
    }

    @Test func meshRefusalBacklogsAndPausesPublisher() {
        // Proves a refused QoS 1 forward waits in the router's backlog, pauses the publisher, and goes out later.
        var cluster = Cluster(shards: 2)
        let (sub, _) = cluster.connect(cluster.clientIdentifier("s", homingOn: 1), on: 1)
        cluster.subscribe(sub, "b", qos: .atLeastOnce)
        cluster.settle()
        _ = cluster.packets(sub)
        let (pub, _) = cluster.connect(cluster.clientIdentifier("p", homingOn: 0), on: 0)
        cluster.envs[0].meshRefuses = true
        cluster.publish(pub, "b", "later", qos: .atLeastOnce)
        #expect(cluster.envs[0].paused.contains(pub))
        cluster.envs[0].meshRefuses = false
        cluster.advance(by: 1)
        cluster.settle()
        #expect(!cluster.envs[0].paused.contains(pub))
        #expect(cluster.packets(sub).compactMap(\.payloadString) == ["later"])
    }
}
