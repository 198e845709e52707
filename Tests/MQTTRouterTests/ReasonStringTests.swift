// Reason Strings on the broker's DISCONNECT (5.0): the cause in words, within the client's Maximum Packet Size.
import MQTTCodec
import Testing

@testable import MQTTRouter

@Suite struct DisconnectReasonStringTests {
    @Test func malformedPacketDisconnectNamesTheBrokenRule() {
        // Proves a decode error closes with its reason code and a Reason String naming the rule, byte for byte.
        var cluster = Cluster(shards: 1)
        let (pub, _) = cluster.connect("w", on: 0)
        _ = cluster.packets(pub)
        // PUBLISH with QoS 0 and DUP set [MQTT-3.3.1-2]: 0x38, remaining length 4, topic "a", no properties.
        cluster.feed(pub, [0x38, 0x04, 0x00, 0x01, 0x61, 0x00])
        let text = "[MQTT-3.3.1-2] DUP set on QoS 0 PUBLISH"
        let bytes = cluster.envs[0].outbound[pub] ?? []
        // DISCONNECT 0x81, properties: Reason String (0x1F) with its 2-byte length.
        let expected: [UInt8] = [0xE0, UInt8(2 + 1 + 2 + text.utf8.count), 0x81, UInt8(1 + 2 + text.utf8.count),
                                 0x1F, 0x00, UInt8(text.utf8.count)] + Array(text.utf8)
        #expect(bytes == expected)
        #expect(cluster.isClosed(pub))
    }

    @Test func reasonStringLeftOutWhenItExceedsClientMaximumPacketSize() {
        // Proves [MQTT-3.14.2-3]: a client whose Maximum Packet Size cannot hold the Reason String gets the bare
        // DISCONNECT with the reason code.
        var cluster = Cluster(shards: 1)
        let (pub, _) = cluster.connect("w", on: 0, properties: [.maximumPacketSize(16)])
        cluster.feed(pub, [0x38, 0x04, 0x00, 0x01, 0x61, 0x00])
        let packets = cluster.packets(pub)
        #expect(packets == [.disconnect(DisconnectPacket(reasonCode: .malformedPacket))])
    }

    @Test func v311ConnectionsGetNoDisconnect() {
        // Proves a 3.1.1 connection is closed without any packet (3.1.1 has no server DISCONNECT).
        var cluster = Cluster(shards: 1)
        let (pub, _) = cluster.connect("w", on: 0, version: .v3_1_1)
        _ = cluster.packets(pub)
        cluster.feed(pub, [0x38, 0x03, 0x00, 0x01, 0x61])
        #expect(cluster.envs[0].outbound[pub] == nil)
        #expect(cluster.isClosed(pub))
    }
}
