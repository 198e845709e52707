// The router's authentication and authorisation: CONNACK, SUBACK and PUBACK codes as byte vectors, delivery
// filtering, reload, and authentication exactly once across a hand-off.
import MQTTCodec
import Testing

@testable import MQTTRouter

extension Cluster {
    /// Connects with credentials; returns the connection and the raw bytes the broker wrote (CONNACK...).
    mutating func connectRaw(
        _ clientIdentifier: String, on shard: Int, version: ProtocolVersion, user: String? = nil,
        password: String? = nil
    ) -> (ConnectionKey, [UInt8]) {
        let connection = open(on: shard, version: version)
        let connect = ConnectPacket(protocolVersion: version, clientIdentifier: clientIdentifier,
                                    userName: user, password: password.map { Array($0.utf8) })
        send(connection, .connect(connect), version: version)
        return (connection, takeRaw(connection))
    }

    /// The raw bytes written to a connection since the last call.
    mutating func takeRaw(_ connection: ConnectionKey) -> [UInt8] {
        guard let shard = owner[connection] else { return [] }
        return envs[shard].outbound.removeValue(forKey: connection) ?? []
    }

    mutating func install(_ acl: String) {
        let list = try! AccessControlList(parsing: acl)
        for index in routers.indices { routers[index].updateAccessControl(list) }
    }

    mutating func setAuthenticator(_ body: @escaping (ConnectPacket) -> AuthenticationResult) {
        for index in envs.indices { envs[index].authenticator = body }
    }
}

/// Accepts user "alice" with password "secret", refuses other credentials, and anonymous clients.
func aliceOnly(_ connect: ConnectPacket) -> AuthenticationResult {
    guard let user = connect.userName else { return .notAuthorized }
    return user == "alice" && connect.password == Array("secret".utf8) ? .accepted : .badCredentials
}

@Suite struct RouterAuthenticationTests {
    @Test func badCredentialsGetConnAck0x86InV5AndClose() {
        // Proves a refused v5 CONNECT gets exactly CONNACK 0x86 (no properties), is closed and counted.
        var cluster = Cluster(shards: 1)
        cluster.setAuthenticator(aliceOnly)
        let (connection, bytes) = cluster.connectRaw("c", on: 0, version: .v5, user: "alice", password: "wrong")
        #expect(bytes == [0x20, 0x03, 0x00, 0x86, 0x00])  // CONNACK, length 3, flags 0, 0x86, no properties
        #expect(cluster.isClosed(connection))
        #expect(!cluster.routers[0].hasSession("c"))
        #expect(cluster.routers[0].counters.authenticationFailures == 1)
        #expect(cluster.routers[0].counters.connectionsRefused == 1)
    }

    @Test func badCredentialsGetReturnCode4InV311() {
        // Proves 3.1.1 refuses with return code 4 (bad user name or password).
        var cluster = Cluster(shards: 1)
        cluster.setAuthenticator(aliceOnly)
        let (connection, bytes) = cluster.connectRaw("c", on: 0, version: .v3_1_1, user: "bob", password: "x")
        #expect(bytes == [0x20, 0x02, 0x00, 0x04])
        #expect(cluster.isClosed(connection))
    }

    @Test func anonymousNotAllowedGetsNotAuthorized() {
        // Proves a client without credentials where they are required gets 0x87 (v5) / 5 (3.1.1).
        var cluster = Cluster(shards: 1)
        cluster.setAuthenticator(aliceOnly)
        let (_, v5) = cluster.connectRaw("c5", on: 0, version: .v5)
        #expect(v5 == [0x20, 0x03, 0x00, 0x87, 0x00])
        let (_, v3) = cluster.connectRaw("c3", on: 0, version: .v3_1_1)
        #expect(v3 == [0x20, 0x02, 0x00, 0x05])
        #expect(cluster.routers[0].counters.authenticationFailures == 2)
    }

    @Test func goodCredentialsConnect() {
        // Proves accepted credentials get CONNACK 0.
        var cluster = Cluster(shards: 1)
        cluster.setAuthenticator(aliceOnly)
        let (connection, bytes) = cluster.connectRaw("c", on: 0, version: .v3_1_1, user: "alice", password: "secret")
        #expect(bytes == [0x20, 0x02, 0x00, 0x00])
        #expect(!cluster.isClosed(connection))
    }

    @Test func authenticationHappensOnceOnTheAcceptingShardBeforeHandOff() {
        // Proves a client homed elsewhere is authenticated by the accepting shard only (not again at home), and a
        // refused one is never handed off.
        var cluster = Cluster(shards: 3)
        cluster.setAuthenticator(aliceOnly)
        let id = cluster.clientIdentifier("h", homingOn: 2)
        let (connection, bytes) = cluster.connectRaw(id, on: 0, version: .v5, user: "alice", password: "secret")
        #expect(bytes.count >= 4 && bytes[0] == 0x20 && bytes[3] == 0x00)  // CONNACK success from home
        #expect(cluster.owner[connection] == 2)
        #expect(cluster.envs[0].authenticated == [connection])
        #expect(cluster.envs[2].authenticated.isEmpty)
        let refusedID = cluster.clientIdentifier("r", homingOn: 1)
        let (refused, refusal) = cluster.connectRaw(refusedID, on: 0, version: .v5, user: "alice", password: "no")
        #expect(refusal == [0x20, 0x03, 0x00, 0x86, 0x00])
        #expect(cluster.owner[refused] == 0)
        #expect(cluster.routers[0].counters.connectionsHandedOff == 1)
        #expect(cluster.envs[1].authenticated.isEmpty)
    }
}

@Suite struct RouterAuthorizationTests {
    static let acl = """
        user alice
        topic read sensors/#
        topic write out/#
        topic readwrite chat
        pattern readwrite devices/%c/#
        """

    func connected(_ version: ProtocolVersion, shards: Int = 1) -> (Cluster, ConnectionKey) {
        var cluster = Cluster(shards: shards)
        cluster.install(Self.acl)
        let (connection, _) = cluster.connectRaw("dev1", on: 0, version: version, user: "alice", password: "x")
        return (cluster, connection)
    }

    @Test func subscribeToUnreadableFilterGetsSubAck0x87InV5() {
        // Proves a SUBSCRIBE with one allowed and one refused filter gets SUBACK [0x01, 0x87]: that filter only.
        var (cluster, connection) = connected(.v5)
        let subscribe = SubscribePacket(packetIdentifier: PacketIdentifier(nonZero: 7), subscriptions: [
            TopicSubscription(filter: try! TopicFilter(validating: "sensors/#"), options: SubscriptionOptions(qos: .atLeastOnce)),
            TopicSubscription(filter: try! TopicFilter(validating: "out/#"), options: SubscriptionOptions(qos: .atLeastOnce)),
        ])
        cluster.send(connection, .subscribe(subscribe), version: .v5)
        // SUBACK, length 5, packet id 7, no properties, 0x01 granted, 0x87 not authorized.
        #expect(cluster.takeRaw(connection) == [0x90, 0x05, 0x00, 0x07, 0x00, 0x01, 0x87])
        #expect(cluster.routers[0].counters.subscriptionsDenied == 1)
        #expect(cluster.routers[0].counters.subscriptions == 1)
    }

    @Test func subscribeToUnreadableFilterGetsSubAck0x80InV311() {
        // Proves 3.1.1's only failure code 0x80 for a refused filter.
        var (cluster, connection) = connected(.v3_1_1)
        cluster.subscribe(connection, "secret/#", qos: .atLeastOnce, id: 3, version: .v3_1_1)
        #expect(cluster.takeRaw(connection) == [0x90, 0x03, 0x00, 0x03, 0x80])
    }

    @Test func publishToUnwritableTopicGetsPubAck0x87InV5() {
        // Proves a refused v5 QoS 1 publish gets PUBACK 0x87 and a QoS 2 one PUBREC 0x87; neither is delivered.
        var (cluster, connection) = connected(.v5)
        cluster.subscribe(connection, "sensors/#", qos: .atLeastOnce, id: 1)
        _ = cluster.takeRaw(connection)
        cluster.publish(connection, "sensors/t", "x", qos: .atLeastOnce, id: 2)
        #expect(cluster.takeRaw(connection) == [0x40, 0x03, 0x00, 0x02, 0x87])
        cluster.publish(connection, "sensors/t", "x", qos: .exactlyOnce, id: 3)
        #expect(cluster.takeRaw(connection) == [0x50, 0x03, 0x00, 0x03, 0x87])
        cluster.publish(connection, "sensors/t", "x", qos: .atMostOnce)
        #expect(cluster.takeRaw(connection).isEmpty)
        #expect(cluster.routers[0].counters.publishesDenied == 3)
    }

    @Test func publishToUnwritableTopicIsAcknowledgedAndDroppedInV311() {
        // Proves 3.1.1 (no reason codes) gets a normal PUBACK/PUBREC, and the message goes nowhere; the QoS 2
        // exchange completes with PUBCOMP.
        var (cluster, connection) = connected(.v3_1_1)
        let (watcher, _) = cluster.connectRaw("dev2", on: 0, version: .v3_1_1, user: "alice")
        cluster.subscribe(watcher, "sensors/#", qos: .atLeastOnce, id: 1, version: .v3_1_1)
        _ = cluster.takeRaw(watcher)
        cluster.publish(connection, "sensors/t", "x", qos: .atLeastOnce, id: 2, version: .v3_1_1)
        #expect(cluster.takeRaw(connection) == [0x40, 0x02, 0x00, 0x02])
        cluster.publish(connection, "sensors/t", "x", qos: .exactlyOnce, id: 3, version: .v3_1_1)
        #expect(cluster.takeRaw(connection) == [0x50, 0x02, 0x00, 0x03])
        cluster.send(connection, .pubrel(PubRelPacket(packetIdentifier: PacketIdentifier(nonZero: 3))), version: .v3_1_1)
        #expect(cluster.takeRaw(connection) == [0x70, 0x02, 0x00, 0x03])
        #expect(cluster.takeRaw(watcher).isEmpty)
    }

    @Test func wildcardSubscriberReceivesOnlyReadableTopics() {
        // Proves the delivery check: a `#` subscriber gets sensors/... but not devices/other/..., which its ACL
        // does not let it read, while the publisher (another client) may write both.
        var cluster = Cluster(shards: 2)
        cluster.install("""
            user reader
            topic read sensors/#
            user writer
            topic write #
            """)
        let readerID = cluster.clientIdentifier("reader", homingOn: 1)
        let (reader, _) = cluster.connectRaw(readerID, on: 1, version: .v5, user: "reader")
        cluster.subscribe(reader, "#", qos: .atMostOnce, id: 1)
        cluster.settle()
        #expect(cluster.packets(reader).first == .suback(SubAckPacket(packetIdentifier: PacketIdentifier(nonZero: 1),
                                                                      reasonCodes: [.grantedQoS0])))
        let writerID = cluster.clientIdentifier("writer", homingOn: 0)
        let (writer, _) = cluster.connectRaw(writerID, on: 0, version: .v5, user: "writer")
        cluster.publish(writer, "sensors/1", "yes")
        cluster.publish(writer, "private/1", "no")
        cluster.settle()
        #expect(cluster.packets(reader).compactMap(\.payloadString) == ["yes"])
        #expect(cluster.routers[1].counters.deliveriesDenied == 1)
    }

    @Test func patternRulesFollowTheClientIdentifier() {
        // Proves %c: client dev1 may publish to devices/dev1/... and not to devices/dev2/....
        var (cluster, connection) = connected(.v5)
        cluster.publish(connection, "devices/dev1/t", "x", qos: .atLeastOnce, id: 1)
        #expect(cluster.takeRaw(connection) == [0x40, 0x02, 0x00, 0x01])
        cluster.publish(connection, "devices/dev2/t", "x", qos: .atLeastOnce, id: 2)
        #expect(cluster.takeRaw(connection) == [0x40, 0x03, 0x00, 0x02, 0x87])
    }

    @Test func reloadAppliesToConnectedClients() {
        // Proves updateAccessControl re-resolves a connected session's rules: a topic refused before is allowed
        // after, the connection stays, and removing the ACL allows everything.
        var (cluster, connection) = connected(.v5)
        cluster.publish(connection, "new/x", "x", qos: .atLeastOnce, id: 1)
        #expect(cluster.takeRaw(connection).last == 0x87)
        cluster.install("user alice\ntopic write new/#\n")
        cluster.publish(connection, "new/x", "x", qos: .atLeastOnce, id: 2)
        #expect(cluster.takeRaw(connection) == [0x40, 0x02, 0x00, 0x02])
        cluster.routers[0].updateAccessControl(nil)
        cluster.publish(connection, "anything", "x", qos: .atLeastOnce, id: 3)
        #expect(cluster.takeRaw(connection) == [0x40, 0x02, 0x00, 0x03])
        #expect(!cluster.isClosed(connection))
    }

    @Test func willNeedsWriteAccess() {
        // Proves a will to a topic the client may not write is not published when the connection drops.
        var cluster = Cluster(shards: 1)
        cluster.install("user w\ntopic read #\ntopic write allowed/#\n")
        let (watcher, _) = cluster.connectRaw("watch", on: 0, version: .v5, user: "w")
        cluster.subscribe(watcher, "#", qos: .atMostOnce, id: 1)
        _ = cluster.takeRaw(watcher)
        for (id, topic) in [("a", "allowed/will"), ("b", "forbidden/will")] {
            let connection = cluster.open(on: 0, version: .v5)
            let will = ConnectPacket.Will(topic: try! TopicName(validating: topic), payload: Array(id.utf8))
            cluster.send(connection, .connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: id, userName: "w",
                                                            will: will)), version: .v5)
            cluster.drop(connection)
        }
        #expect(cluster.packets(watcher).compactMap(\.payloadString) == ["a"])
        #expect(cluster.routers[0].counters.publishesDenied == 1)
    }
}
