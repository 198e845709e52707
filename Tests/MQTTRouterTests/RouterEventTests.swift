// The router's connection and disconnection events (the broker logs them) and limits changed at run time by a
// configuration reload.
import MQTTCodec
import Testing

@testable import MQTTRouter

@Suite struct RouterConnectionEventTests {
    @Test func connectReportsClientVersionCleanAndKeepAliveOnTheHomeShard() {
        // Proves one clientConnected per CONNACK 0x00, on the home shard after a hand-off, with the client ID,
        // version, clean flag, keepalive and session-present; none on the accepting shard.
        var cluster = Cluster(shards: 2)
        let id = cluster.clientIdentifier("c", homingOn: 1)
        let (connection, ack) = cluster.connect(id, on: 0, version: .v3_1_1, cleanStart: false, keepAlive: 30)
        #expect(ack?.reasonCode == .success)
        #expect(cluster.envs[0].connected.isEmpty)
        #expect(cluster.envs[1].connected.count == 1)
        #expect(cluster.envs[1].connected.first?.0 == connection)
        #expect(cluster.envs[1].connected.first?.1 == ClientConnectedEvent(
            clientIdentifier: id, protocolVersion: .v3_1_1, cleanStart: false, keepAliveSeconds: 30,
            sessionPresent: false, userName: nil))
        cluster.drop(connection)
        let (_, again) = cluster.connect(id, on: 1, version: .v3_1_1, cleanStart: false, keepAlive: 30)
        #expect(again?.sessionPresent == true)
        #expect(cluster.envs[1].connected.last?.1.sessionPresent == true)
    }

    @Test func disconnectionsCarryTheirCause() {
        // Proves the cause of each way an established connection ends: DISCONNECT (with its reason code), socket
        // lost, takeover, keepalive timeout, protocol violation; and that a refused CONNECT reports nothing.
        var cluster = Cluster(shards: 1)
        let (a, _) = cluster.connect("a", on: 0)
        cluster.send(a, .disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage)), version: .v5)
        let (b, _) = cluster.connect("b", on: 0)
        cluster.drop(b)
        let (c, _) = cluster.connect("c", on: 0)
        _ = cluster.connect("c", on: 0)
        let (d, _) = cluster.connect("d", on: 0, version: .v3_1_1, keepAlive: 10)
        cluster.advance(by: 16_000)
        let (e, _) = cluster.connect("e", on: 0)
        // [MQTT-3.1.0-2] A second CONNECT is a protocol violation.
        cluster.send(e, .connect(ConnectPacket(protocolVersion: .v5, clientIdentifier: "e")), version: .v5)
        let events = cluster.envs[0].disconnected
        #expect(events.count == 5)
        #expect(events.map(\.0) == [a, b, c, d, e])
        #expect(events.map(\.1) == ["a", "b", "c", "d", "e"])
        #expect(events.map(\.2) == [.clientDisconnect(.disconnectWithWillMessage), .connectionLost, .takenOver,
                                    .closedByBroker(.keepAliveTimeout), .closedByBroker(.protocolError)])
        #expect(events[0].2.description == "client sent DISCONNECT 0x04 (disconnect with will message)")
        #expect(events[3].2.description == "closed by the broker: 0x8D (keep alive timeout)")

        cluster.envs[0].authenticator = { _ in .notAuthorized }
        let (refused, ack) = cluster.connect("f", on: 0)
        #expect(ack?.reasonCode == .notAuthorized && cluster.isClosed(refused))
        #expect(cluster.envs[0].disconnected.count == 5)
        // a, b, c, c again (the takeover), d, e.
        #expect(cluster.envs[0].connected.count == 6)
    }
}

@Suite struct RouterLimitUpdateTests {
    @Test func updatedLimitsApplyToQueuesAndNewConnectionsButNotRuntimeBounds() {
        // Proves updateLimits changes the session queue bound for the next message and the packet size and
        // keepalive for the next CONNECT, while the runtime's bounds (outbound bytes, ring slots, overflow,
        // connections, budget) keep their startup values.
        var cluster = Cluster(shards: 1)
        var limits = Limits()
        limits.sessionQueuedMessagesMax = 2
        limits.packetSizeBytesMax = 5000
        limits.keepAliveSecondsMax = 30
        limits.outboundBytesMax = 4096
        limits.meshRingSlots = 64
        limits.meshOverflowMessagesMax = 10
        limits.connectionsPerShardMax = 5
        limits.queuedBytesBudget = 1 << 21
        cluster.routers[0].updateLimits(limits)
        let applied = cluster.routers[0].configuration.limits
        #expect(applied.sessionQueuedMessagesMax == 2)
        #expect(applied.packetSizeBytesMax == 5000)
        #expect(applied.keepAliveSecondsMax == 30)
        let defaults = Limits()
        #expect(applied.outboundBytesMax == defaults.outboundBytesMax)
        #expect(applied.meshRingSlots == defaults.meshRingSlots)
        #expect(applied.meshOverflowMessagesMax == defaults.meshOverflowMessagesMax)
        #expect(applied.connectionsPerShardMax == defaults.connectionsPerShardMax)
        #expect(applied.queuedBytesBudget == defaults.queuedBytesBudget)

        // A new v5 CONNECT hears the new bounds in its CONNACK.
        let (_, ack) = cluster.connect("n", on: 0, keepAlive: 600)
        #expect(ack?.properties.first(.maximumPacketSize) == .maximumPacketSize(5000))
        #expect(ack?.properties.first(.serverKeepAlive) == .serverKeepAlive(30))
    }
}
