// Writes the fuzzer's seed corpus: one valid packet per file, for each protocol version, plus one whole
// session stream per version (CONNECT first, so the version-learning path is reached). Compiled by
// scripts/fuzz with Sources/MQTTCodec/*.swift; run as `seed-corpus <directory>`.

#if canImport(Glibc)
    import Glibc
#endif

@main
struct SeedCorpus {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count == 2 else {
            print("usage: seed-corpus <directory>")
            exit(2)
        }
        let directory = arguments[1]
        var written = 0
        for version in ProtocolVersion.allCases {
            let packets = [Packet.connect(connect(version))] + packets(version)
            for (index, packet) in packets.enumerated() {
                write(
                    packet.encode(version: version),
                    to: "\(directory)/v\(version.rawValue)-\(index)-\(packet.packetType)")
                written += 1
            }
            write(packets.flatMap { $0.encode(version: version) }, to: "\(directory)/v\(version.rawValue)-session")
            written += 1
        }
        print("wrote \(written) seed files to \(directory)")
    }

    static func write(_ bytes: [UInt8], to path: String) {
        guard let file = fopen(path, "wb") else {
            print("cannot open \(path)")
            exit(1)
        }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }

    static func topic(_ string: String) -> TopicName { TopicName(uncheckedBytes: Array(string.utf8)) }

    static func filter(_ string: String) -> TopicFilter {
        (try? TopicFilter(validating: string)) ?? (try? TopicFilter(validating: "#"))!
    }

    static func connect(_ version: ProtocolVersion) -> ConnectPacket {
        let v5 = version == .v5
        return ConnectPacket(
            protocolVersion: version, clientIdentifier: "seed", cleanStart: true, keepAliveSeconds: 30,
            userName: "u", password: [1],
            will: .init(
                topic: topic("w/t"), payload: [1, 2], qos: .atLeastOnce, retain: false,
                properties: v5 ? [.willDelayInterval(1), .contentType("t")] : []
            ),
            properties: v5
                ? [.sessionExpiryInterval(10), .receiveMaximum(5), .userProperty(name: "a", value: "b")] : []
        )
    }

    static func packets(_ version: ProtocolVersion) -> [Packet] {
        let v5 = version == .v5
        let identifier = PacketIdentifier(nonZero: 10)
        var list: [Packet] = [
            .connack(
                ConnAckPacket(
                    sessionPresent: false, properties: v5 ? [.maximumQoS(.atLeastOnce), .topicAliasMaximum(4)] : [])),
            .publish(PublishPacket(topic: topic("a/b"), payload: Array("hello".utf8))),
            .publish(
                PublishPacket(
                    qos: .exactlyOnce, retain: true, topic: topic("a"), packetIdentifier: identifier,
                    properties: v5 ? [.topicAlias(2), .messageExpiryInterval(3), .subscriptionIdentifier(4)] : [],
                    payload: [0xFF, 0x00]
                )
            ),
            .puback(PubAckPacket(packetIdentifier: identifier, reasonCode: v5 ? .noMatchingSubscribers : .success)),
            .pubrec(PubRecPacket(packetIdentifier: identifier)),
            .pubrel(PubRelPacket(packetIdentifier: identifier)),
            .pubcomp(PubCompPacket(packetIdentifier: identifier)),
            .subscribe(
                SubscribePacket(
                    packetIdentifier: identifier,
                    subscriptions: [.init(filter: filter("a/+/#"), options: .init(qos: .atLeastOnce))],
                    properties: v5 ? [.subscriptionIdentifier(7)] : []
                )
            ),
            .suback(SubAckPacket(packetIdentifier: identifier, reasonCodes: [.grantedQoS1])),
            .unsubscribe(UnsubscribePacket(packetIdentifier: identifier, filters: [filter("a/+/#")])),
            .unsuback(UnsubAckPacket(packetIdentifier: identifier, reasonCodes: v5 ? [.success] : [])),
            .pingreq, .pingresp,
            .disconnect(DisconnectPacket(reasonCode: v5 ? .disconnectWithWillMessage : .normalDisconnection)),
        ]
        if v5 {
            list.append(
                .auth(AuthPacket(reasonCode: .continueAuthentication, properties: [.authenticationMethod("m")])))
        }
        return list
    }
}
