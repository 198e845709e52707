import MQTTCodec
import ShoalTestSupport
import Testing

// MARK: - Round trips, streams, borrowed PUBLISH, raw-pieces encoder

/// One sample of every packet type a connection speaking `version` may carry (AUTH only for 5.0).
func samplePackets(version: ProtocolVersion) -> [Packet] {
    let v5 = version == .v5
    let reason: (ReasonCode) -> ReasonCode = { v5 ? $0 : .success }
    let properties: (Properties) -> Properties = { v5 ? $0 : [] }
    var packets: [Packet] = [
        .connack(
            ConnAckPacket(sessionPresent: true, reasonCode: .success, properties: properties([.retainAvailable(false)]))
        ),
        .publish(PublishPacket(topic: topic("sensors/1/temp"), payload: utf8("21.5"))),
        .publish(
            PublishPacket(
                qos: .exactlyOnce, retain: true, topic: topic("a"), packetIdentifier: id(65_535),
                properties: properties([.contentType("text/plain"), .correlationData([1, 2, 3]), .responseTopic("r")]),
                payload: [UInt8](repeating: 0xAB, count: 300)
            )
        ),
        .puback(PubAckPacket(packetIdentifier: id(1), reasonCode: reason(.quotaExceeded))),
        .pubrec(PubRecPacket(packetIdentifier: id(2), properties: properties([.userProperty(name: "a", value: "b")]))),
        .pubrel(PubRelPacket(packetIdentifier: id(3))),
        .pubcomp(PubCompPacket(packetIdentifier: id(4), reasonCode: reason(.packetIdentifierNotFound))),
        .subscribe(
            SubscribePacket(
                packetIdentifier: id(5),
                subscriptions: [
                    .init(filter: filter("a/+/c", shared: v5), options: .init(qos: .exactlyOnce)),
                    .init(filter: filter("$share/g/x/#", shared: v5), options: .init(qos: .atLeastOnce)),
                ],
                properties: properties([.subscriptionIdentifier(200_000)])
            )
        ),
        .suback(SubAckPacket(packetIdentifier: id(5), reasonCodes: [.grantedQoS2, .unspecifiedError])),
        .unsubscribe(UnsubscribePacket(packetIdentifier: id(6), filters: [filter("a/+/c"), filter("#")])),
        .unsuback(UnsubAckPacket(packetIdentifier: id(6), reasonCodes: v5 ? [.success, .noSubscriptionExisted] : [])),
        .pingreq,
        .pingresp,
        .disconnect(DisconnectPacket(reasonCode: reason(.disconnectWithWillMessage))),
    ]
    if v5 {
        packets.append(.auth(AuthPacket(reasonCode: .reAuthenticate, properties: [.authenticationData([9])])))
        packets.append(
            .connack(
                ConnAckPacket(
                    properties: [
                        .sessionExpiryInterval(1), .assignedClientIdentifier("id"), .serverKeepAlive(30),
                        .authenticationMethod("m"), .authenticationData([1]), .responseInformation("ri"),
                        .serverReference("s"), .reasonString("ok"), .receiveMaximum(5), .topicAliasMaximum(7),
                        .maximumQoS(.atMostOnce), .retainAvailable(true), .userProperty(name: "k", value: "v"),
                        .maximumPacketSize(1024), .wildcardSubscriptionAvailable(true),
                        .subscriptionIdentifierAvailable(false), .sharedSubscriptionAvailable(true),
                    ]
                )
            )
        )
    }
    return packets
}

/// A CONNECT for `version` with every optional part present.
func sampleConnect(version: ProtocolVersion) -> ConnectPacket {
    let v5 = version == .v5
    return ConnectPacket(
        protocolVersion: version, clientIdentifier: "client-1", cleanStart: false, keepAliveSeconds: 65_535,
        userName: "user", password: [0, 1, 2],
        will: .init(
            topic: topic("will/topic"), payload: utf8("gone"), qos: .exactlyOnce, retain: true,
            properties: v5
                ? [.willDelayInterval(10), .payloadFormatIndicator(1), .messageExpiryInterval(5), .contentType("c")]
                : []
        ),
        properties: v5
            ? [
                .sessionExpiryInterval(60), .receiveMaximum(100), .maximumPacketSize(65_536), .topicAliasMaximum(10),
                .requestResponseInformation(true), .requestProblemInformation(false),
                .userProperty(name: "x", value: "y"), .authenticationMethod("SCRAM"),
            ]
            : []
    )
}

@Suite("Round trips and streams")
struct RoundTripTests {
    @Test("Every packet type round-trips in every protocol version", arguments: ProtocolVersion.allCases)
    func everyPacketRoundTrips(version: ProtocolVersion) throws {
        // Proves encode then decode is the identity, and encodedSize equals the bytes written.
        for packet in [Packet.connect(sampleConnect(version: version))] + samplePackets(version: version) {
            let bytes = packet.encode(version: version)
            #expect(bytes.count == packet.encodedSize(version: version))
            let decoded = try decodeOne(bytes, version: packet.packetType == .connect ? nil : version)
            #expect(decoded == packet, "\(packet.packetType) in \(version)")
        }
    }

    @Test(
        "A whole session stream decodes the same whole, byte by byte and at random splits",
        arguments: ProtocolVersion.allCases)
    func sessionStreamVerifier(version: ProtocolVersion) throws {
        // Proves the decoder learns the version from CONNECT and does not depend on how bytes arrive.
        let packets = [Packet.connect(sampleConnect(version: version))] + samplePackets(version: version)
        let stream = concatenated(packets.map { $0.encode(version: version) })
        for seed in UInt64(1)...4 {
            try DecoderVerifier.verify(stream: stream, expected: packets, seed: seed)
        }
    }

    @Test("A malformed packet after good ones stops every feeding strategy at the same point")
    func errorPositionIsStable() throws {
        // Proves the verifier compares errors too: two good packets, then PUBLISH with QoS 3.
        let good = [Packet.connect(sampleConnect(version: .v3_1_1)), .pingreq]
        let stream = concatenated(good.map { $0.encode(version: .v3_1_1) }) + [0x36, 0x03, 0x00, 0x01, 0x61]
        let outcome = try DecoderVerifier.verify(stream: stream, seed: 7)
        #expect(outcome.packets == good)
        #expect(outcome.error == .publishQoSInvalid)
    }

    @Test("Seeded random PUBLISH packets round-trip in both wire formats")
    func randomPublishes() throws {
        // Proves random topics, payload sizes (across remaining-length boundaries), flags and properties survive.
        var random = SeededRandom(seed: 0x5EED)
        for round in 0..<200 {
            let version: ProtocolVersion = round % 2 == 0 ? .v5 : .v3_1_1
            let qos = QoS(rawValue: UInt8(random.next() % 3)) ?? .atMostOnce
            let levels = Int(random.next() % 4) + 1
            let name = (0..<levels).map { _ in String(random.next() % 1000) }.joined(separator: "/")
            let payloadSizes = [0, 1, 127, 128, 16_383, 16_384, Int(random.next() % 4096)]
            let payload = random.bytes(payloadSizes[round % payloadSizes.count])
            var properties: Properties = []
            if version == .v5 && random.next() % 2 == 0 {
                properties = [
                    .messageExpiryInterval(UInt32(truncatingIfNeeded: random.next())),
                    .userProperty(name: "n", value: name),
                ]
            }
            let publish = PublishPacket(
                dup: qos != .atMostOnce && random.next() % 2 == 0, qos: qos, retain: random.next() % 2 == 0,
                topic: topic(name), packetIdentifier: qos == .atMostOnce ? nil : PacketIdentifier(UInt16(round + 1)),
                properties: properties, payload: payload
            )
            let bytes = publish.encode(version: version)
            #expect(try decodeOne(bytes, version: version) == .publish(publish), "seed 0x5EED round \(round)")
        }
    }

    @Test("The stream decoder learns the protocol version from CONNECT")
    func streamDecoderLearnsVersion() throws {
        // Proves a server-side decoder reads 5.0 properties only after a 5.0 CONNECT.
        var stream = PacketStreamDecoder()
        let connect = ConnectPacket(protocolVersion: .v5, clientIdentifier: "x")
        let publish = PublishPacket(topic: topic("t"), properties: [.topicAlias(1)], payload: [1])
        stream.append(contentsOf: connect.encode(version: .v5) + publish.encode(version: .v5))
        #expect(try stream.next() == .connect(connect))
        #expect(stream.decoder.protocolVersion == .v5)
        #expect(try stream.next() == .publish(publish))
        #expect(try stream.next() == nil)
        #expect(stream.bufferedByteCount == 0)
    }

    // MARK: Borrowed PUBLISH

    @Test("PublishView points into the caller's buffer and matches the owned decode")
    func publishViewIsBorrowed() throws {
        // Proves the view's topic, properties and payload are slices of the received bytes, not copies.
        let publish = PublishPacket(
            qos: .atLeastOnce, topic: topic("a/b"), packetIdentifier: id(9),
            properties: [.topicAlias(3), .messageExpiryInterval(30), .payloadFormatIndicator(1)],
            payload: utf8("payload")
        )
        let bytes = publish.encode(version: .v5)
        let decoder = PacketDecoder(protocolVersion: .v5)
        bytes.withUnsafeBytes { buffer in
            guard case .frame(let frame)? = try? decoder.readFrame(buffer),
                let view = try? decoder.decodePublish(frame, in: buffer)
            else {
                Issue.record("did not decode")
                return
            }
            let range = UInt(bitPattern: buffer.baseAddress)..<UInt(bitPattern: buffer.baseAddress! + buffer.count)
            #expect(range.contains(UInt(bitPattern: view.topic.baseAddress)))
            #expect(range.contains(UInt(bitPattern: view.payload.baseAddress)))
            #expect(range.contains(UInt(bitPattern: view.properties.baseAddress)))
            #expect(Array(view.topic) == utf8("a/b"))
            #expect(Array(view.payload) == utf8("payload"))
            #expect(view.topicAlias == 3 && view.messageExpiryInterval == 30 && view.payloadFormatIndicator == 1)
            #expect(view.packetIdentifier == id(9) && view.qos == .atLeastOnce && !view.hasSubscriptionIdentifier)
            #expect(view.owned == publish)
        }
    }

    @Test("Raw-pieces encoder reproduces the received PUBLISH and re-lays it out for 3.1.1")
    func rawPiecesEncoder() throws {
        // Proves a broker can re-encode a borrowed PUBLISH from its pieces, for the same or another version.
        let publish = PublishPacket(
            qos: .atLeastOnce, retain: true, topic: topic("x/y"), packetIdentifier: id(77),
            properties: [.userProperty(name: "k", value: "v"), .messageExpiryInterval(9)], payload: [1, 2, 3]
        )
        let bytes = publish.encode(version: .v5)
        let decoder = PacketDecoder(protocolVersion: .v5)
        try bytes.withUnsafeBytes { (buffer) throws -> Void in
            guard case .frame(let frame)? = try? decoder.readFrame(buffer),
                let view = try? decoder.decodePublish(frame, in: buffer)
            else {
                Issue.record("did not decode")
                return
            }
            for version in [ProtocolVersion.v5, .v3_1_1] {
                let size = PublishEncoding.encodedSize(
                    version: version, qos: view.qos, topicByteCount: view.topic.count,
                    propertiesByteCount: view.properties.count, payloadByteCount: view.payload.count
                )
                var out = [UInt8](repeating: 0, count: size)
                let written = out.withUnsafeMutableBytes {
                    PublishEncoding.encode(
                        into: $0, version: version, qos: view.qos, retain: view.retain,
                        packetIdentifier: view.packetIdentifier, topic: view.topic, properties: view.properties,
                        payload: view.payload
                    )
                }
                #expect(written == size)
                if version == .v5 { #expect(out == bytes) }
                // Patch the packet identifier in place, as a broker does per subscriber.
                let offset = PublishEncoding.packetIdentifierOffset(
                    version: version, topicByteCount: view.topic.count, propertiesByteCount: view.properties.count,
                    payloadByteCount: view.payload.count
                )
                out[offset] = 0x01
                out[offset + 1] = 0x02
                var expected = publish
                expected.packetIdentifier = id(0x0102)
                if version != .v5 { expected.properties = [] }
                #expect(try decodeOne(out, version: version) == .publish(expected))
            }
        }
    }

    @Test("Encoding into a larger buffer writes exactly encodedSize bytes")
    func encodeIntoBuffer() {
        // Proves encode(into:version:) leaves bytes past the packet untouched.
        let packet = Packet.suback(SubAckPacket(packetIdentifier: id(1), reasonCodes: [.grantedQoS1]))
        var buffer = [UInt8](repeating: 0xEE, count: 64)
        let written = buffer.withUnsafeMutableBytes { packet.encode(into: $0, version: .v5) }
        #expect(written == packet.encodedSize(version: .v5))
        #expect(buffer[written...].allSatisfy { $0 == 0xEE })
        #expect(Array(buffer[..<written]) == packet.encode(version: .v5))
    }

    @Test("Random bytes never crash the decoder in any version")
    func randomBytesNeverCrash() {
        // Proves, on seeded garbage, the decoder answers a packet, an error or "need more", never a trap.
        var random = SeededRandom(seed: 0xF022)
        for _ in 0..<3_000 {
            let length = Int(random.next() % 48)
            var bytes = random.bytes(length)
            if !bytes.isEmpty, random.next() % 2 == 0 { bytes[0] = bytes[0] & 0xF0 | (bytes[0] >> 4 == 3 ? 0 : 2) }
            if bytes.count > 1 { bytes[1] = UInt8(min(Int(bytes[1] & 0x7F), bytes.count - 2)) }
            for version in [nil] + ProtocolVersion.allCases.map(Optional.some) {
                _ = DecoderVerifier.decode(chunks: [bytes], decoder: PacketDecoder(protocolVersion: version))
            }
        }
    }
}

@Suite("Borrowed property access")
struct BorrowedPropertyTests {
    @Test("forEachRawProperty yields each property's exact wire bytes in order")
    func forEachRawProperty() {
        // Proves a broker can split received PUBLISH properties into pass-through and per-hop ones without
        // re-encoding them.
        let publish = PublishPacket(
            topic: topic("t"),
            properties: [
                .topicAlias(2), .userProperty(name: "k", value: "v"), .subscriptionIdentifier(300), .contentType("c"),
            ],
            payload: []
        )
        let bytes = publish.encode(version: .v5)
        let decoder = PacketDecoder(protocolVersion: .v5)
        bytes.withUnsafeBytes { buffer in
            guard case .frame(let frame)? = try? decoder.readFrame(buffer),
                let view = try? decoder.decodePublish(frame, in: buffer)
            else {
                Issue.record("did not decode")
                return
            }
            var seen: [(PropertyIdentifier, [UInt8])] = []
            view.forEachRawProperty { identifier, raw in seen.append((identifier, Array(raw))) }
            #expect(seen.map(\.0) == [.topicAlias, .userProperty, .subscriptionIdentifier, .contentType])
            #expect(seen.flatMap(\.1) == Array(view.properties))
            #expect(seen[0].1 == [0x23, 0x00, 0x02])
            #expect(seen[2].1 == [0x0B, 0xAC, 0x02])
        }
    }
}
