import MQTTCodec
import ShoalTestSupport
import Testing

// MARK: - Byte vectors, every byte annotated

@Suite("Packet byte vectors")
struct PacketVectorTests {
    // MARK: CONNECT

    @Test("CONNECT 3.1 (MQIsdp, level 3)")
    func connect31() {
        // Proves the 3.1 protocol name and level decode to .v3_1 and encode back identically.
        let bytes: [UInt8] = [
            0x10, 0x11,  // CONNECT, remaining length 17
            0x00, 0x06, 0x4D, 0x51, 0x49, 0x73, 0x64, 0x70,  // protocol name "MQIsdp"
            0x03,  // protocol level 3
            0x02,  // connect flags: clean session
            0x00, 0x3C,  // keep alive 60 s
            0x00, 0x03, 0x61, 0x62, 0x63,  // client identifier "abc"
        ]
        expectVector(bytes, .connect(ConnectPacket(protocolVersion: .v3_1, clientIdentifier: "abc")), version: .v3_1)
    }

    @Test("CONNECT 3.1.1 minimal")
    func connect311() {
        // Proves the smallest usual 3.1.1 CONNECT decodes and encodes byte for byte.
        let bytes: [UInt8] = [
            0x10, 0x0F,  // CONNECT, remaining length 15
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54,  // protocol name "MQTT"
            0x04,  // protocol level 4
            0x02,  // connect flags: clean session
            0x00, 0x3C,  // keep alive 60 s
            0x00, 0x03, 0x61, 0x62, 0x63,  // client identifier "abc"
        ]
        expectVector(
            bytes, .connect(ConnectPacket(protocolVersion: .v3_1_1, clientIdentifier: "abc")), version: .v3_1_1)
    }

    @Test("CONNECT 3.1.1 with will, user name and password")
    func connect311Full() {
        // Proves every CONNECT flag and the payload order: client id, will topic, will payload, user, password.
        let bytes: [UInt8] = [
            0x10, 0x1B,  // CONNECT, remaining length 27
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54,  // "MQTT"
            0x04,  // level 4
            0xEE,  // flags: user name, password, will retain, will QoS 1, will, clean session
            0x00, 0x0A,  // keep alive 10 s
            0x00, 0x01, 0x63,  // client identifier "c"
            0x00, 0x01, 0x77,  // will topic "w"
            0x00, 0x03, 0x62, 0x79, 0x65,  // will payload "bye"
            0x00, 0x01, 0x75,  // user name "u"
            0x00, 0x01, 0x70,  // password "p"
        ]
        let connect = ConnectPacket(
            protocolVersion: .v3_1_1, clientIdentifier: "c", keepAliveSeconds: 10, userName: "u", password: [0x70],
            will: .init(topic: topic("w"), payload: utf8("bye"), qos: .atLeastOnce, retain: true)
        )
        expectVector(bytes, .connect(connect), version: .v3_1_1)
    }

    @Test("CONNECT 5.0 with properties and will properties")
    func connect5() {
        // Proves CONNECT properties and Will Properties sit where §3.1.2.11 and §3.1.3.2 put them.
        let bytes: [UInt8] = [
            0x10, 0x23,  // CONNECT, remaining length 35
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54,  // "MQTT"
            0x05,  // level 5
            0x06,  // flags: will (QoS 0), clean start
            0x00, 0x3C,  // keep alive 60 s
            0x08,  // property length 8
            0x11, 0x00, 0x00, 0x00, 0x78,  // Session Expiry Interval 120
            0x21, 0x00, 0x0A,  // Receive Maximum 10
            0x00, 0x03, 0x61, 0x62, 0x63,  // client identifier "abc"
            0x05,  // will property length 5
            0x18, 0x00, 0x00, 0x00, 0x05,  // Will Delay Interval 5
            0x00, 0x01, 0x77,  // will topic "w"
            0x00, 0x00,  // will payload, empty
        ]
        let connect = ConnectPacket(
            protocolVersion: .v5, clientIdentifier: "abc",
            will: .init(topic: topic("w"), payload: [], properties: [.willDelayInterval(5)]),
            properties: [.sessionExpiryInterval(120), .receiveMaximum(10)]
        )
        expectVector(bytes, .connect(connect), version: .v5)
    }

    @Test("CONNECT 5.0 may carry a password without a user name")
    func connect5PasswordOnly() throws {
        // Proves the 3.1.1 rule [MQTT-3.1.2-22] is not applied to 5.0 (§3.1.2.9 allows it).
        let connect = ConnectPacket(protocolVersion: .v5, clientIdentifier: "", password: [1, 2])
        let bytes = connect.encode(version: .v5)
        #expect(try decodeOne(bytes, version: nil) == .connect(connect))
    }

    // MARK: CONNACK

    @Test("CONNACK 3.1.1 session present, accepted")
    func connack311() {
        // Proves the 3.1.1 CONNACK layout.
        let bytes: [UInt8] = [
            0x20, 0x02,  // CONNACK, remaining length 2
            0x01,  // acknowledge flags: session present
            0x00,  // return code 0: accepted
        ]
        expectVector(bytes, .connack(ConnAckPacket(sessionPresent: true)), version: .v3_1_1)
    }

    @Test("CONNACK 3.1.1 return code 5 maps to Not authorized")
    func connack311Refused() {
        // Proves 3.1.1 return codes are carried as their 5.0 reason codes.
        let bytes: [UInt8] = [
            0x20, 0x02,  // CONNACK, remaining length 2
            0x00,  // no session
            0x05,  // return code 5: not authorized
        ]
        expectVector(bytes, .connack(ConnAckPacket(reasonCode: .notAuthorized)), version: .v3_1_1)
    }

    @Test("CONNACK 5.0 with properties")
    func connack5() {
        // Proves 5.0 CONNACK reason code and properties.
        let bytes: [UInt8] = [
            0x20, 0x08,  // CONNACK, remaining length 8
            0x00,  // no session present
            0x00,  // reason code Success
            0x05,  // property length 5
            0x21, 0x00, 0x0A,  // Receive Maximum 10
            0x24, 0x01,  // Maximum QoS 1
        ]
        let connack = ConnAckPacket(properties: [.receiveMaximum(10), .maximumQoS(.atLeastOnce)])
        expectVector(bytes, .connack(connack), version: .v5)
    }

    // MARK: PUBLISH

    @Test("PUBLISH 3.1.1 QoS 0")
    func publish311QoS0() {
        // Proves a QoS 0 PUBLISH has no packet identifier.
        let bytes: [UInt8] = [
            0x30, 0x0A,  // PUBLISH, QoS 0, remaining length 10
            0x00, 0x03, 0x61, 0x2F, 0x62,  // topic "a/b"
            0x68, 0x65, 0x6C, 0x6C, 0x6F,  // payload "hello"
        ]
        expectVector(bytes, .publish(PublishPacket(topic: topic("a/b"), payload: utf8("hello"))), version: .v3_1_1)
    }

    @Test("PUBLISH 3.1.1 QoS 1, DUP and RETAIN")
    func publish311QoS1() {
        // Proves the flag nibble 1011 and the packet identifier after the topic.
        let bytes: [UInt8] = [
            0x3B, 0x09,  // PUBLISH, DUP, QoS 1, RETAIN, remaining length 9
            0x00, 0x03, 0x61, 0x2F, 0x62,  // topic "a/b"
            0x00, 0x07,  // packet identifier 7
            0x68, 0x69,  // payload "hi"
        ]
        let publish = PublishPacket(
            dup: true, qos: .atLeastOnce, retain: true, topic: topic("a/b"), packetIdentifier: id(7),
            payload: utf8("hi")
        )
        expectVector(bytes, .publish(publish), version: .v3_1_1)
    }

    @Test("PUBLISH 5.0 QoS 1 with properties")
    func publish5() {
        // Proves PUBLISH properties sit between packet identifier and payload.
        let bytes: [UInt8] = [
            0x32, 0x14,  // PUBLISH, QoS 1, remaining length 20
            0x00, 0x03, 0x61, 0x2F, 0x62,  // topic "a/b"
            0x00, 0x07,  // packet identifier 7
            0x0A,  // property length 10
            0x01, 0x01,  // Payload Format Indicator: UTF-8
            0x02, 0x00, 0x00, 0x00, 0x3C,  // Message Expiry Interval 60
            0x23, 0x00, 0x05,  // Topic Alias 5
            0x68, 0x69,  // payload "hi"
        ]
        let publish = PublishPacket(
            qos: .atLeastOnce, topic: topic("a/b"), packetIdentifier: id(7),
            properties: [.payloadFormatIndicator(1), .messageExpiryInterval(60), .topicAlias(5)], payload: utf8("hi")
        )
        expectVector(bytes, .publish(publish), version: .v5)
    }

    @Test("PUBLISH 5.0 with an empty topic and a Topic Alias")
    func publish5Alias() {
        // Proves §3.3.2.1: a zero-length topic is accepted when a Topic Alias stands for it.
        let bytes: [UInt8] = [
            0x30, 0x08,  // PUBLISH, QoS 0, remaining length 8
            0x00, 0x00,  // topic: empty
            0x03,  // property length 3
            0x23, 0x00, 0x05,  // Topic Alias 5
            0x68, 0x69,  // payload "hi"
        ]
        let publish = PublishPacket(
            topic: TopicName(uncheckedBytes: []), properties: [.topicAlias(5)], payload: utf8("hi"))
        expectVector(bytes, .publish(publish), version: .v5)
    }

    @Test("PUBLISH 5.0 may repeat User Property and Subscription Identifier")
    func publish5Repeats() throws {
        // Proves the two properties the spec lets repeat in PUBLISH are accepted twice.
        let publish = PublishPacket(
            topic: topic("t"),
            properties: [
                .userProperty(name: "k", value: "1"), .userProperty(name: "k", value: "2"),
                .subscriptionIdentifier(1), .subscriptionIdentifier(268_435_455),
            ],
            payload: []
        )
        #expect(try decodeOne(publish.encode(version: .v5), version: .v5) == .publish(publish))
    }

    // MARK: Acknowledgements

    @Test("PUBACK, PUBREC, PUBREL, PUBCOMP 3.1.1")
    func acknowledgements311() {
        // Proves the four acknowledgements and PUBREL's reserved flags 0010.
        // PUBACK id 7
        expectVector([0x40, 0x02, 0x00, 0x07], .puback(PubAckPacket(packetIdentifier: id(7))), version: .v3_1_1)
        // PUBREC id 7
        expectVector([0x50, 0x02, 0x00, 0x07], .pubrec(PubRecPacket(packetIdentifier: id(7))), version: .v3_1_1)
        // PUBREL id 7
        expectVector([0x62, 0x02, 0x00, 0x07], .pubrel(PubRelPacket(packetIdentifier: id(7))), version: .v3_1_1)
        // PUBCOMP id 7
        expectVector([0x70, 0x02, 0x00, 0x07], .pubcomp(PubCompPacket(packetIdentifier: id(7))), version: .v3_1_1)
    }

    @Test("PUBACK 5.0 short forms and full form")
    func puback5() {
        // Proves remaining length 2 means Success, 3 means a reason code without properties, and the full form.
        expectVector([0x40, 0x02, 0x00, 0x07], .puback(PubAckPacket(packetIdentifier: id(7))), version: .v5)
        let noSubscribers: [UInt8] = [
            0x40, 0x03,  // PUBACK, remaining length 3
            0x00, 0x07,  // packet identifier 7
            0x10,  // reason code: No matching subscribers
        ]
        expectVector(
            noSubscribers, .puback(PubAckPacket(packetIdentifier: id(7), reasonCode: .noMatchingSubscribers)),
            version: .v5)
        let withReason: [UInt8] = [
            0x40, 0x08,  // PUBACK, remaining length 8
            0x00, 0x07,  // packet identifier 7
            0x87,  // reason code: Not authorized
            0x04,  // property length 4
            0x1F, 0x00, 0x01, 0x78,  // Reason String "x"
        ]
        let puback = PubAckPacket(packetIdentifier: id(7), reasonCode: .notAuthorized, properties: [.reasonString("x")])
        expectVector(withReason, .puback(puback), version: .v5)
    }

    @Test("PUBREL 5.0 Packet Identifier not found")
    func pubrel5() {
        // Proves PUBREL carries 0x92 in 5.0.
        let bytes: [UInt8] = [
            0x62, 0x03,  // PUBREL (flags 0010), remaining length 3
            0x00, 0x07,  // packet identifier 7
            0x92,  // reason code: Packet Identifier not found
        ]
        expectVector(
            bytes, .pubrel(PubRelPacket(packetIdentifier: id(7), reasonCode: .packetIdentifierNotFound)), version: .v5)
    }

    // MARK: SUBSCRIBE / SUBACK

    @Test("SUBSCRIBE 3.1.1 with two filters")
    func subscribe311() {
        // Proves the filter/QoS pairs of a 3.1.1 SUBSCRIBE.
        let bytes: [UInt8] = [
            0x82, 0x0C,  // SUBSCRIBE (flags 0010), remaining length 12
            0x00, 0x0A,  // packet identifier 10
            0x00, 0x03, 0x61, 0x2F, 0x2B,  // filter "a/+"
            0x01,  // requested QoS 1
            0x00, 0x01, 0x23,  // filter "#"
            0x00,  // requested QoS 0
        ]
        let subscribe = SubscribePacket(
            packetIdentifier: id(10),
            subscriptions: [
                .init(filter: filter("a/+", shared: false), options: .init(qos: .atLeastOnce)),
                .init(filter: filter("#", shared: false), options: .init(qos: .atMostOnce)),
            ]
        )
        expectVector(bytes, .subscribe(subscribe), version: .v3_1_1)
    }

    @Test("SUBSCRIBE 5.0 with Subscription Identifier and every option bit")
    func subscribe5() {
        // Proves the 5.0 properties and options byte of SUBSCRIBE.
        let bytes: [UInt8] = [
            0x82, 0x0B,  // SUBSCRIBE, remaining length 11
            0x00, 0x0A,  // packet identifier 10
            0x02,  // property length 2
            0x0B, 0x05,  // Subscription Identifier 5
            0x00, 0x03, 0x61, 0x2F, 0x2B,  // filter "a/+"
            0x2E,  // options: retain handling 2, RAP, no local, QoS 2
        ]
        let options = SubscriptionOptions(
            qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend)
        let subscribe = SubscribePacket(
            packetIdentifier: id(10), subscriptions: [.init(filter: filter("a/+"), options: options)],
            properties: [.subscriptionIdentifier(5)]
        )
        expectVector(bytes, .subscribe(subscribe), version: .v5)
    }

    @Test("SUBSCRIBE 5.0 shared subscription")
    func subscribe5Shared() throws {
        // Proves `$share/g/t` is parsed as a shared subscription in 5.0 and as a plain filter in 3.1.1.
        let subscribe = SubscribePacket(
            packetIdentifier: id(1),
            subscriptions: [.init(filter: filter("$share/g/t"), options: .init(qos: .atMostOnce))]
        )
        guard case .subscribe(let decoded) = try decodeOne(subscribe.encode(version: .v5), version: .v5) else {
            Issue.record("not a SUBSCRIBE")
            return
        }
        #expect(decoded.subscriptions.first?.filter.shareName == utf8("g"))
        guard case .subscribe(let plain) = try decodeOne(subscribe.encode(version: .v3_1_1), version: .v3_1_1) else {
            Issue.record("not a SUBSCRIBE")
            return
        }
        #expect(plain.subscriptions.first?.filter.isShared == false)
    }

    @Test("SUBACK 3.1.1 and 5.0")
    func suback() {
        // Proves SUBACK return codes (3.1.1) and reason codes with properties (5.0).
        let bytes311: [UInt8] = [
            0x90, 0x04,  // SUBACK, remaining length 4
            0x00, 0x0A,  // packet identifier 10
            0x01,  // granted QoS 1
            0x80,  // failure
        ]
        expectVector(
            bytes311, .suback(SubAckPacket(packetIdentifier: id(10), reasonCodes: [.grantedQoS1, .unspecifiedError])),
            version: .v3_1_1)
        let bytes5: [UInt8] = [
            0x90, 0x05,  // SUBACK, remaining length 5
            0x00, 0x0A,  // packet identifier 10
            0x00,  // property length 0
            0x02,  // granted QoS 2
            0x8F,  // Topic Filter invalid
        ]
        expectVector(
            bytes5, .suback(SubAckPacket(packetIdentifier: id(10), reasonCodes: [.grantedQoS2, .topicFilterInvalid])),
            version: .v5)
    }

    // MARK: UNSUBSCRIBE / UNSUBACK

    @Test("UNSUBSCRIBE 3.1.1 and 5.0")
    func unsubscribe() {
        // Proves the UNSUBSCRIBE layout with and without the 5.0 property length.
        let bytes311: [UInt8] = [
            0xA2, 0x05,  // UNSUBSCRIBE (flags 0010), remaining length 5
            0x00, 0x0B,  // packet identifier 11
            0x00, 0x01, 0x23,  // filter "#"
        ]
        expectVector(
            bytes311, .unsubscribe(UnsubscribePacket(packetIdentifier: id(11), filters: [filter("#")])),
            version: .v3_1_1)
        let bytes5: [UInt8] = [
            0xA2, 0x06,  // UNSUBSCRIBE, remaining length 6
            0x00, 0x0B,  // packet identifier 11
            0x00,  // property length 0
            0x00, 0x01, 0x23,  // filter "#"
        ]
        expectVector(
            bytes5, .unsubscribe(UnsubscribePacket(packetIdentifier: id(11), filters: [filter("#")])), version: .v5)
    }

    @Test("UNSUBACK 3.1.1 and 5.0")
    func unsuback() {
        // Proves UNSUBACK has only an identifier in 3.1.1 and reason codes in 5.0.
        // UNSUBACK id 11
        expectVector([0xB0, 0x02, 0x00, 0x0B], .unsuback(UnsubAckPacket(packetIdentifier: id(11))), version: .v3_1_1)
        let bytes5: [UInt8] = [
            0xB0, 0x04,  // UNSUBACK, remaining length 4
            0x00, 0x0B,  // packet identifier 11
            0x00,  // property length 0
            0x11,  // No subscription existed
        ]
        expectVector(
            bytes5, .unsuback(UnsubAckPacket(packetIdentifier: id(11), reasonCodes: [.noSubscriptionExisted])),
            version: .v5)
    }

    // MARK: PINGREQ, PINGRESP, DISCONNECT, AUTH

    @Test("PINGREQ and PINGRESP")
    func ping() {
        // Proves the two-byte ping packets in every version.
        for version in ProtocolVersion.allCases {
            expectVector([0xC0, 0x00], .pingreq, version: version)  // PINGREQ, remaining length 0
            expectVector([0xD0, 0x00], .pingresp, version: version)  // PINGRESP, remaining length 0
        }
    }

    @Test("DISCONNECT 3.1.1 and 5.0 forms")
    func disconnect() {
        // Proves DISCONNECT's empty 3.1.1 form and the three 5.0 forms.
        expectVector([0xE0, 0x00], .disconnect(DisconnectPacket()), version: .v3_1_1)  // DISCONNECT, length 0
        expectVector([0xE0, 0x00], .disconnect(DisconnectPacket()), version: .v5)  // length 0: normal disconnection
        expectVector(
            [0xE0, 0x01, 0x8E],  // DISCONNECT, length 1, Session taken over
            .disconnect(DisconnectPacket(reasonCode: .sessionTakenOver)), version: .v5
        )
        let bytes: [UInt8] = [
            0xE0, 0x07,  // DISCONNECT, remaining length 7
            0x8B,  // Server shutting down
            0x05,  // property length 5
            0x11, 0x00, 0x00, 0x00, 0x00,  // Session Expiry Interval 0
        ]
        expectVector(
            bytes,
            .disconnect(DisconnectPacket(reasonCode: .serverShuttingDown, properties: [.sessionExpiryInterval(0)])),
            version: .v5)
    }

    @Test("AUTH 5.0")
    func auth() {
        // Proves AUTH's empty form and its reason code with Authentication Method.
        expectVector([0xF0, 0x00], .auth(AuthPacket()), version: .v5)  // AUTH, length 0: Success
        let bytes: [UInt8] = [
            0xF0, 0x08,  // AUTH, remaining length 8
            0x18,  // Continue authentication
            0x06,  // property length 6
            0x15, 0x00, 0x03, 0x61, 0x62, 0x63,  // Authentication Method "abc"
        ]
        expectVector(
            bytes, .auth(AuthPacket(reasonCode: .continueAuthentication, properties: [.authenticationMethod("abc")])),
            version: .v5)
    }
}
