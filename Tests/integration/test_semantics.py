"""The MQTT semantics of issue 4 §3 that the other integration files leave out, through the real broker at one
and at four shards, for 3.1.1 and 5.0 where both have the feature: will delay, Receive Maximum both ways,
redelivery with DUP, retain handling 1 and retain-as-published, overlapping subscriptions in 3.1.1, request /
response information, Maximum Packet Size both ways, `$SYS` refusals, takeover across shards, session expiry,
Server Keep Alive, PINGREQ and QoS downgrade.

paho-mqtt hides DUP flags, packet identifiers and acknowledgements, so those tests use the raw client in
rawmqtt.py. Waits are generous; where a test checks that something does NOT happen early, it waits a short,
fixed time, which a slow machine can only make pass more easily, never fail.
"""
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import (TIMEOUT, Broker, Client, CONNECT, PUBLISH, WILLMESSAGE, home_client_id, homing_hash,
                      properties)
import rawmqtt
from rawmqtt import (RawClient, PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT, PINGRESP, RECEIVE_MAXIMUM,
                     SESSION_EXPIRY_INTERVAL, MAXIMUM_PACKET_SIZE)


@pytest.fixture(params=[1, 4], ids=["shards1", "shards4"])
def limited_broker(request):
    """A broker with small limits: Receive Maximum 2, 2 inflight messages to 3.1.1 clients, packets up to
    1024 bytes, keepalive at most 5 s."""
    b = Broker(shards=request.param, extra_args=["--receive-maximum", "2", "--max-inflight", "2",
                                                 "--max-packet-size", "1024", "--max-keepalive", "5"])
    yield b
    assert b.stop() == 0


# MARK: - Test plumbing checked against the broker


def test_homing_in_tests_matches_the_broker(broker4):
    # Proves: conftest's homing_hash is the broker's, so tests can place clients on chosen shards. The broker
    # assigns identifiers "shoal-S-N" that home on the accepting shard S.
    seen = set()
    for _ in range(12):
        c = Client(broker4, client_id="")
        assigned = c.connack_properties.AssignedClientIdentifier
        shard = int(assigned.split("-")[1])
        assert homing_hash(assigned.encode()) % 4 == shard, assigned
        seen.add(shard)
        c.disconnect()
    assert seen, "no identifier assigned"


# MARK: - Will delay


def test_will_delay_publishes_after_the_delay(broker):
    # Proves: a v5 will with Will Delay Interval 2 s is not published at once when the connection drops, and is
    # published once the delay has passed.
    s = Client(broker)
    s.subscribe("wdl/#", 1)
    w = Client(broker, client_id=home_client_id("wdl", 1, broker.shards), clean=False,
               will=("wdl/x", b"late", 1, False, properties(WILLMESSAGE, WillDelayInterval=2)),
               properties=properties(CONNECT, SessionExpiryInterval=60))
    w.drop()
    started = time.monotonic()
    s.expect_none(1.0)
    [m] = s.expect(1, timeout=TIMEOUT)
    assert m.payload == b"late"
    assert time.monotonic() - started >= 1.0


def test_will_is_sent_when_the_session_ends_before_the_delay(broker):
    # Proves: a will whose delay (300 s) outlasts the session (Session Expiry 1 s) is published when the session
    # ends (MQTT 5.0 §3.1.3.2.2), long before the delay.
    s = Client(broker)
    s.subscribe("wse/#", 1)
    w = Client(broker, will=("wse/x", b"ended", 1, False, properties(WILLMESSAGE, WillDelayInterval=300)),
               properties=properties(CONNECT, SessionExpiryInterval=1))
    w.drop()
    [m] = s.expect(1, timeout=TIMEOUT)
    assert m.payload == b"ended"


def test_will_with_delay_and_no_session_expiry_is_sent_at_once(broker):
    # Proves: with Session Expiry 0 the session ends with the connection, so a delayed will is sent then.
    s = Client(broker)
    s.subscribe("wz/#", 1)
    w = Client(broker, will=("wz/x", b"now", 1, False, properties(WILLMESSAGE, WillDelayInterval=300)))
    w.drop()
    [m] = s.expect(1, timeout=TIMEOUT)
    assert m.payload == b"now"


# MARK: - Receive Maximum and inflight windows


def test_client_receive_maximum_bounds_messages_in_flight(broker):
    # Proves: the broker sends a v5 client at most its Receive Maximum (2) unacknowledged QoS 1 messages; the rest
    # wait and follow, in order, as acknowledgements come.
    sub = RawClient(broker.port, home_client_id("rm-sub", 0, broker.shards),
                    connect_properties=[(RECEIVE_MAXIMUM, 2)])
    sub.subscribe("rm/t", qos=1)
    publisher = Client(broker, client_id=home_client_id("rm-pub", 1, broker.shards))
    for index in range(5):
        publisher.publish("rm/t", str(index).encode(), qos=1)
    first = [sub.read_publish(), sub.read_publish()]
    assert [p.payload for p in first] == [b"0", b"1"]
    sub.read_nothing(1.0)
    sub.ack(PUBACK, first[0].packet_id)
    third = sub.read_publish()
    assert third.payload == b"2"
    sub.read_nothing(0.5)
    for p in (first[1], third):
        sub.ack(PUBACK, p.packet_id)
    assert [sub.read_publish().payload for _ in range(2)] == [b"3", b"4"]
    sub.close()


def test_v311_inflight_window_is_max_inflight(limited_broker):
    # Proves: a 3.1.1 client (no Receive Maximum in its protocol) gets at most --max-inflight (2) unacknowledged
    # QoS 1 messages.
    sub = RawClient(limited_broker.port, "rm311-sub", version=4)
    sub.subscribe("rm311", qos=1)
    publisher = Client(limited_broker, version=4)
    for index in range(3):
        publisher.publish("rm311", str(index).encode(), qos=1)
    first = [sub.read_publish(), sub.read_publish()]
    sub.read_nothing(1.0)
    sub.ack(PUBACK, first[0].packet_id)
    assert sub.read_publish().payload == b"2"
    sub.close()


def test_client_exceeding_broker_receive_maximum_gets_0x93(limited_broker):
    # Proves [MQTT-3.3.4-9]: the broker announces Receive Maximum 2 in CONNACK, and a client with more than 2
    # QoS 2 publications unacknowledged gets DISCONNECT 0x93; other clients are unaffected.
    healthy = Client(limited_broker)
    healthy.subscribe("rx/ok", 0)
    pub = RawClient(limited_broker.port, "rx-pub")
    assert pub.connack_properties.get(RECEIVE_MAXIMUM) == 2
    for packet_id in (1, 2, 3):
        pub.publish("rx/t", b"x", qos=2, packet_id=packet_id)
    packets = pub.read_until_close()
    assert [p.type for p in packets] == [PUBREC, PUBREC, DISCONNECT], packets
    assert packets[-1].body[0] == 0x93
    Client(limited_broker).publish("rx/ok", b"fine")
    healthy.expect(1)


def test_receive_maximum_counts_only_unreleased_qos2(limited_broker):
    # Proves: completing a QoS 2 exchange (PUBREL → PUBCOMP) frees its place: many QoS 2 messages in sequence,
    # never more than 2 open, are all accepted.
    pub = RawClient(limited_broker.port, "rx-seq")
    for packet_id in range(1, 8):
        pub.publish("rx/seq", b"x", qos=2, packet_id=packet_id)
        rec = pub.read()
        assert rec.type == PUBREC, rec
        pub.ack(PUBREL, packet_id)
        comp = pub.read()
        assert comp.type == PUBCOMP, comp
    pub.close()


# MARK: - Redelivery with DUP on session resumption


@pytest.mark.parametrize("version", [4, 5])
def test_unacknowledged_messages_are_resent_with_dup_on_resumption(broker, version):
    # Proves [MQTT-4.4.0-1] / [MQTT-3.3.1-1]: on session resumption the broker resends an unacknowledged QoS 1
    # PUBLISH and QoS 2 PUBLISH with DUP set and the same packet identifiers, and a PUBREL whose PUBCOMP did not
    # come; after the acknowledgements nothing more is sent.
    client_id = home_client_id(f"dup{version}", 2, broker.shards)
    connect_properties = [(SESSION_EXPIRY_INTERVAL, 60)]
    sub = RawClient(broker.port, client_id, version=version, clean=False, connect_properties=connect_properties)
    sub.subscribe("dup/#", qos=2)
    publisher = Client(broker, client_id=home_client_id(f"dup{version}-pub", 0, broker.shards), version=version)
    publisher.publish("dup/one", b"q1", qos=1)
    publisher.publish("dup/two", b"q2", qos=2)
    publisher.publish("dup/three", b"q2b", qos=2)
    sent = [sub.read_publish() for _ in range(3)]
    assert [(p.payload, p.qos, p.dup) for p in sent] == [(b"q1", 1, False), (b"q2", 2, False), (b"q2b", 2, False)]
    # Answer PUBREC for the last one only: the broker then owes a PUBREL, not the PUBLISH.
    sub.ack(PUBREC, sent[2].packet_id)
    rel = sub.read()
    assert rel.type == PUBREL, rel
    sub.close()

    sub = RawClient(broker.port, client_id, version=version, clean=False, connect_properties=connect_properties)
    assert sub.session_present
    again = [sub.read_publish(), sub.read_publish()]
    assert [(p.payload, p.qos, p.dup, p.packet_id) for p in again] == [
        (b"q1", 1, True, sent[0].packet_id), (b"q2", 2, True, sent[1].packet_id)]
    rel = sub.read()
    assert rel.type == PUBREL and rel.body[:2] == sent[2].packet_id.to_bytes(2, "big"), rel
    sub.ack(PUBACK, sent[0].packet_id)
    sub.ack(PUBREC, sent[1].packet_id)
    rel = sub.read()
    assert rel.type == PUBREL, rel
    sub.ack(PUBCOMP, sent[1].packet_id)
    sub.ack(PUBCOMP, sent[2].packet_id)
    sub.read_nothing(1.0)
    sub.close()


# MARK: - Retained messages


def test_retain_handling_1_sends_retained_only_for_a_new_subscription(broker):
    # Proves: Retain Handling 1 sends retained messages when the subscription is new, not when it is repeated;
    # Retain Handling 0 sends them on every SUBSCRIBE.
    p = Client(broker)
    p.publish("rh1/t", b"kept", qos=1, retain=True)
    s = Client(broker)
    s.subscribe("rh1/t", options=mqtt.SubscribeOptions(qos=1, retainHandling=1))
    [m] = s.expect(1)
    assert (m.payload, m.retain) == (b"kept", True)
    s.subscribe("rh1/t", options=mqtt.SubscribeOptions(qos=1, retainHandling=1))
    s.expect_none(1.0)
    s.subscribe("rh1/t", options=mqtt.SubscribeOptions(qos=1, retainHandling=0))
    [m] = s.expect(1)
    assert m.payload == b"kept"


def test_retain_as_published(broker):
    # Proves [MQTT-3.3.1-12] / [MQTT-3.3.1-13]: a live retained publication reaches a Retain As Published
    # subscriber with RETAIN 1 and others (5.0 and 3.1.1) with RETAIN 0; retained messages sent because of a
    # SUBSCRIBE carry RETAIN 1 for everyone.
    rap = Client(broker)
    rap.subscribe("rap/t", options=mqtt.SubscribeOptions(qos=1, retainAsPublished=True))
    plain = Client(broker)
    plain.subscribe("rap/t", options=mqtt.SubscribeOptions(qos=1))
    old = Client(broker, version=4)
    old.subscribe("rap/t", 1)
    Client(broker).publish("rap/t", b"live", qos=1, retain=True)
    assert [m.retain for m in rap.expect(1)] == [True]
    assert [m.retain for m in plain.expect(1)] == [False]
    assert [m.retain for m in old.expect(1)] == [False]
    late = Client(broker, version=4)
    late.subscribe("rap/t", 1)
    assert [(m.payload, m.retain) for m in late.expect(1)] == [(b"live", True)]
    Client(broker).publish("rap/t", b"", qos=1, retain=True)


# MARK: - Overlapping subscriptions and QoS


def test_overlapping_subscriptions_v311_one_copy_at_the_highest_qos(broker):
    # Proves: a 3.1.1 client with two matching subscriptions gets the message once (3.1.1 allows one copy per
    # subscription; Shoal sends one) at the highest granted QoS.
    s = Client(broker, version=4)
    s.subscribe("ov/+", 0)
    s.subscribe("ov/#", 1)
    Client(broker, version=4).publish("ov/x", b"m", qos=1)
    [m] = s.expect(1)
    s.expect_none(0.5)
    assert m.qos == 1


@pytest.mark.parametrize("version", [4, 5])
def test_delivery_qos_is_the_minimum_of_published_and_granted(broker, version):
    # Proves: a message is delivered at the lower of its QoS and the subscription's (MQTT 3.1.1 §3.8.4, 5.0
    # §3.8.4).
    s0 = Client(broker, version=version)
    s0.subscribe("dq/t", 0)
    s2 = Client(broker, version=version)
    s2.subscribe("dq/t", 2)
    p = Client(broker, version=version)
    p.publish("dq/t", b"two", qos=2)
    p.publish("dq/t", b"one", qos=1)
    assert [(m.payload, m.qos) for m in s0.expect(2)] == [(b"two", 0), (b"one", 0)]
    # Order is kept per topic and QoS only ([MQTT-4.6.0-5]); paho also hands a QoS 2 message over at PUBREL, so
    # the QoS 1 one may overtake it here.
    assert sorted((m.payload, m.qos) for m in s2.expect(2)) == [(b"one", 1), (b"two", 2)]


# MARK: - Request / response information


def test_request_response_information(broker):
    # Proves: Request Response Information 1 gets a Response Information in CONNACK (the prefix the broker
    # offers, ending in the client ID); without the request there is none; and a request/response exchange over
    # it works with Response Topic and Correlation Data.
    requester = Client(broker, properties=properties(CONNECT, RequestResponseInformation=1))
    info = requester.connack_properties.ResponseInformation
    assert info.startswith("response/") and info.endswith(requester.client_id)
    plain = Client(broker)
    assert not hasattr(plain.connack_properties, "ResponseInformation")
    responder = Client(broker)
    responder.subscribe("service/echo", 1)
    requester.subscribe(info, 1)
    requester.publish("service/echo", b"ping", qos=1,
                      properties=properties(PUBLISH, ResponseTopic=info, CorrelationData=b"42"))
    [request] = responder.expect(1)
    responder.publish(request.properties.ResponseTopic, b"pong", qos=1,
                      properties=properties(PUBLISH, CorrelationData=request.properties.CorrelationData))
    [response] = requester.expect(1)
    assert (response.topic, response.payload, response.properties.CorrelationData) == (info, b"pong", b"42")


# MARK: - Maximum Packet Size


def test_client_maximum_packet_size_is_respected(broker):
    # Proves [MQTT-3.1.2-25]: the broker never sends a client a packet above the Maximum Packet Size it gave in
    # CONNECT; the message is skipped for that client only, later ones still arrive.
    small = Client(broker, properties=properties(CONNECT, MaximumPacketSize=128))
    small.subscribe("mps/#", 1)
    large = Client(broker)
    large.subscribe("mps/#", 1)
    p = Client(broker)
    p.publish("mps/big", b"x" * 500, qos=1)
    p.publish("mps/small", b"ok", qos=1)
    assert [m.payload for m in small.expect(1)] == [b"ok"]
    small.expect_none(0.5)
    assert [len(m.payload) for m in large.expect(2)] == [500, 2]


@pytest.mark.parametrize("version", [4, 5])
def test_broker_maximum_packet_size(limited_broker, version):
    # Proves: with --max-packet-size 1024 the broker announces Maximum Packet Size 1024 (5.0) and accepts a
    # packet under it; a larger PUBLISH closes that connection, with DISCONNECT 0x95 in 5.0 and without a
    # DISCONNECT in 3.1.1; other clients are unaffected.
    healthy = Client(limited_broker)
    healthy.subscribe("mpb/#", 0)
    c = RawClient(limited_broker.port, f"mpb{version}", version=version)
    if version == 5:
        assert c.connack_properties.get(MAXIMUM_PACKET_SIZE) == 1024
    c.publish("mpb/ok", b"y" * 900)
    [m] = healthy.expect(1)
    assert len(m.payload) == 900
    c.publish("mpb/big", b"z" * 2000)
    packets = c.read_until_close()
    if version == 5:
        assert [(p.type, p.body[:1]) for p in packets] == [(DISCONNECT, b"\x95")], packets
    else:
        assert packets == []
    Client(limited_broker).publish("mpb/after", b"fine")
    assert [m.topic for m in healthy.expect(1)] == ["mpb/after"]


# MARK: - $SYS


@pytest.mark.parametrize("version", [4, 5])
def test_sys_publish_is_refused(broker, version):
    # Proves: a client's PUBLISH to $SYS is not delivered; in 5.0 a QoS 1 one is answered PUBACK 0x87 (Not
    # authorized), in 3.1.1 (no reason codes) with a plain PUBACK.
    s = Client(broker)
    s.subscribe("$SYS/forged/#", 0)
    p = RawClient(broker.port, f"sys{version}", version=version)
    p.publish("$SYS/forged/x", b"no", qos=1, packet_id=5)
    ack = p.read()
    assert ack.type == PUBACK and ack.body[:2] == b"\x00\x05", ack
    if version == 5:
        assert ack.body[2] == 0x87, ack
    else:
        assert len(ack.body) == 2
    s.expect_none(1.0)


# MARK: - Takeover across shards


@pytest.mark.parametrize("version", [4, 5])
def test_takeover_across_shards(broker, version):
    # Proves [MQTT-3.1.4-3]: each new connection with a client ID in use takes over, wherever it was accepted
    # (at four shards the kernel spreads the connections, and the session's home shard does the takeover); the
    # old connection gets DISCONNECT 0x8E in 5.0 and is just closed in 3.1.1; the session stays usable.
    client_id = home_client_id(f"tk{version}", 3, broker.shards)
    old = RawClient(broker.port, client_id, version=version)
    for _ in range(4):
        new = RawClient(broker.port, client_id, version=version)
        packets = old.read_until_close()
        if version == 5:
            assert [(p.type, p.body[:1]) for p in packets] == [(DISCONNECT, b"\x8e")], packets
        else:
            assert packets == []
        old = new
    old.subscribe("tka/t", qos=1)
    Client(broker).publish("tka/t", b"after", qos=1)
    assert old.read_publish().payload == b"after"


# MARK: - Sessions and keepalive


def test_session_expires_after_its_interval(broker):
    # Proves: a v5 session with Session Expiry 1 s is gone some time after the connection closes (no session
    # present, no subscription), while one with 60 s survives.
    short = Client(broker, client_id="exp-short", clean=False, properties=properties(CONNECT, SessionExpiryInterval=1))
    short.subscribe("se/t", 1)
    short.disconnect()
    long_ = Client(broker, client_id="exp-long", clean=False, properties=properties(CONNECT, SessionExpiryInterval=60))
    long_.subscribe("se/t", 1)
    long_.disconnect()
    time.sleep(4.0)
    short = Client(broker, client_id="exp-short", clean=False, properties=properties(CONNECT, SessionExpiryInterval=1))
    assert not short.session_present
    long_ = Client(broker, client_id="exp-long", clean=False, properties=properties(CONNECT, SessionExpiryInterval=60))
    assert long_.session_present


def test_clean_session_v311_discards_the_session(broker):
    # Proves: a 3.1.1 CONNECT with clean session 1 discards the stored session (no session present, nothing
    # queued arrives).
    s = Client(broker, version=4, client_id="clean-311", clean=False)
    s.subscribe("c311/t", 1)
    s.disconnect()
    Client(broker).publish("c311/t", b"queued", qos=1)
    s = Client(broker, version=4, client_id="clean-311", clean=True)
    assert not s.session_present
    s.expect_none(1.0)


def test_server_keep_alive(limited_broker):
    # Proves: a v5 client asking for keepalive 60 above --max-keepalive 5 gets Server Keep Alive 5 in CONNACK, and
    # a silent one is disconnected with 0x8D after about 1.5 × 5 s.
    c = RawClient(limited_broker.port, "ska", keepalive=60)
    assert c.connack_properties.get(0x13) == 5
    packets = c.read_until_close()
    assert [(p.type, p.body[:1]) for p in packets] == [(DISCONNECT, b"\x8d")], packets


@pytest.mark.parametrize("version", [4, 5])
def test_pingreq_gets_pingresp(broker, version):
    # Proves: PINGREQ is answered with PINGRESP in both protocol versions.
    c = RawClient(broker.port, f"ping{version}", version=version)
    c.send(0xC0, b"")
    packet = c.read()
    assert packet.type == PINGRESP and packet.body == b"", packet
    c.close()


# MARK: - More of §3: `$` topics, retained expiry, wills, DISCONNECT options


def test_plus_at_first_level_does_not_match_dollar_topics(broker):
    # Proves [MQTT-4.7.2-1]: '+' at the first level does not match a topic starting with '$', '$x/+' does.
    s = Client(broker)
    s.subscribe("+/dl", 0)
    d = Client(broker)
    d.subscribe("$dx/+", 0)
    p = Client(broker)
    p.publish("$dx/dl", b"dollar")
    p.publish("a/dl", b"plain")
    assert [m.payload for m in s.expect(1)] == [b"plain"]
    assert [m.payload for m in d.expect(1)] == [b"dollar"]
    s.expect_none(0.5)


def test_retained_message_expires(broker):
    # Proves: a retained message is not sent once its Message Expiry Interval has passed, and one still alive is
    # sent with the time left (at least 2.5 s passed, so at most 98 of 100 s).
    p = Client(broker)
    p.publish("rexp/short", b"gone", qos=1, retain=True, properties=properties(PUBLISH, MessageExpiryInterval=1))
    p.publish("rexp/long", b"kept", qos=1, retain=True, properties=properties(PUBLISH, MessageExpiryInterval=100))
    time.sleep(2.5)
    s = Client(broker)
    s.subscribe("rexp/#", 1)
    [m] = s.expect(1)
    s.expect_none(0.5)
    assert (m.topic, m.retain) == ("rexp/long", True)
    assert 80 <= m.properties.MessageExpiryInterval <= 98
    p.publish("rexp/long", b"", qos=1, retain=True)


def test_will_properties_pass_through_and_retained_will(broker):
    # Proves: a will's PUBLISH properties (content type, user properties) reach subscribers, its Will Delay
    # Interval does not (it is not a PUBLISH property), and a retained will is kept for later subscribers.
    s = Client(broker)
    s.subscribe("wp/#", 1)
    will_properties = properties(WILLMESSAGE, ContentType="text/plain", UserProperty=[("k", "v")],
                                 WillDelayInterval=0)
    w = Client(broker, will=("wp/status", b"offline", 1, True, will_properties))
    w.drop()
    [m] = s.expect(1)
    assert m.payload == b"offline"
    assert m.properties.ContentType == "text/plain"
    assert m.properties.UserProperty == [("k", "v")]
    assert not hasattr(m.properties, "WillDelayInterval")
    late = Client(broker, version=4)
    late.subscribe("wp/#", 1)
    assert [(m.payload, m.retain) for m in late.expect(1)] == [(b"offline", True)]
    Client(broker).publish("wp/status", b"", qos=1, retain=True)


def test_disconnect_with_will_message_publishes_the_will(broker):
    # Proves [MQTT-3.1.2-10]: DISCONNECT 0x00 discards the will, DISCONNECT 0x04 (Disconnect with Will Message)
    # publishes it.
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode
    s = Client(broker)
    s.subscribe("dw/#", 1)
    normal = Client(broker, will=("dw/normal", b"no", 1, False))
    normal.disconnect()
    with_will = Client(broker, will=("dw/will", b"yes", 1, False))
    with_will.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=0x04))
    [m] = s.expect(1)
    assert (m.topic, m.payload) == ("dw/will", b"yes")
    s.expect_none(0.5)


def test_disconnect_can_shorten_session_expiry(broker):
    # Proves: a v5 DISCONNECT with Session Expiry Interval 0 ends a session that CONNECT asked to keep 60 s. (Raw
    # client: the broker closing the socket shows it processed the DISCONNECT before the next CONNECT.)
    keep = [(SESSION_EXPIRY_INTERVAL, 60)]
    c = RawClient(broker.port, "dse", clean=False, connect_properties=keep)
    c.subscribe("dse/t", qos=1)
    c.send(0xE0, b"\x00" + rawmqtt.properties([(SESSION_EXPIRY_INTERVAL, 0)]))
    assert c.read_until_close() == []
    again = RawClient(broker.port, "dse", clean=False, connect_properties=keep)
    assert not again.session_present
    again.close()
