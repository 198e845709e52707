"""Publish/subscribe semantics through the real broker, with paho-mqtt for MQTT 3.1, 3.1.1 and 5.0, at one
and at four shards (so most pairs of clients live on different shards)."""
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import TIMEOUT, Client, PUBLISH, SUBSCRIBE, CONNECT, properties


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_reaches_subscriber_at_each_qos(broker, version, qos):
    # Proves: a message published at QoS q reaches a subscriber at QoS q, whatever the protocol version.
    subscriber = Client(broker, version=version)
    subscriber.subscribe("sensors/+/temp", qos)
    publisher = Client(broker, version=version)
    publisher.publish("sensors/kitchen/temp", b"21.5", qos=qos)
    [message] = subscriber.expect(1)
    assert message.topic == "sensors/kitchen/temp"
    assert message.payload == b"21.5"
    assert message.qos == qos
    subscriber.disconnect()
    publisher.disconnect()


def test_many_clients_across_shards_all_receive(broker):
    # Proves: with clients spread over shards, every subscriber of a topic receives every message once, in order.
    subscribers = [Client(broker, version=5 if i % 2 else 4) for i in range(8)]
    for s in subscribers:
        s.subscribe("fan/out", 1)
    publisher = Client(broker)
    for i in range(20):
        publisher.publish("fan/out", str(i).encode(), qos=1)
    for s in subscribers:
        got = [m.payload for m in s.expect(20)]
        assert got == [str(i).encode() for i in range(20)]
        s.expect_none(0.2)
        s.disconnect()
    publisher.disconnect()


def test_wildcards_and_dollar_topics(broker):
    # Proves: '#' and '+' match per the spec, '#' matches the parent level, and wildcards at the first level do
    # not match '$' topics [MQTT-4.7.2-1].
    s = Client(broker)
    s.subscribe("#", 0)
    s2 = Client(broker)
    s2.subscribe("a/#", 0)
    p = Client(broker)
    p.publish("a", b"1")
    p.publish("$x/y", b"2")
    assert [m.topic for m in s.expect(1)] == ["a"]
    assert [m.topic for m in s2.expect(1)] == ["a"]
    s.expect_none(0.5)


def test_sys_topics_cannot_be_published_by_clients(broker):
    # Proves: a client's PUBLISH to $SYS/... is not delivered to subscribers of it.
    s = Client(broker)
    s.subscribe("$SYS/test/#", 0)
    p = Client(broker, version=4)
    p.publish("$SYS/test/x", b"forged")
    s.expect_none(1.0)


def test_unsubscribe_stops_delivery(broker):
    # Proves: after UNSUBACK no more messages arrive for that filter.
    s = Client(broker)
    s.subscribe("u/t", 1)
    p = Client(broker)
    p.publish("u/t", b"a", qos=1)
    s.expect(1)
    s.unsubscribe("u/t")
    p.publish("u/t", b"b", qos=1)
    s.expect_none(1.0)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_then_publish_never_missed(broker4, version):
    # Proves: a message published right after SUBACK is delivered, even when the publisher is on another shard
    # (the SUBACK waits for every shard to learn of the new interest).
    publisher = Client(broker4, version=version)
    for round_ in range(20):
        topic = f"race/{round_}"
        s = Client(broker4, version=version)
        s.subscribe(topic, 1)
        publisher.publish(topic, b"x", qos=1)
        s.expect(1)
        s.disconnect()


def test_overlapping_subscriptions_v5_one_copy_with_all_identifiers(broker):
    # Proves: v5 delivers one copy for overlapping subscriptions, carrying every matching subscription identifier
    # and the maximum QoS.
    s = Client(broker)
    s.subscribe("o/+", 0, properties=properties(SUBSCRIBE, SubscriptionIdentifier=7))
    s.subscribe("o/#", 1, properties=properties(SUBSCRIBE, SubscriptionIdentifier=9))
    p = Client(broker)
    p.publish("o/x", b"m", qos=1)
    [m] = s.expect(1)
    s.expect_none(0.5)
    assert sorted(m.properties.SubscriptionIdentifier) == [7, 9]
    assert m.qos == 1


def test_no_local(broker):
    # Proves: a v5 subscription with No Local does not receive its own publications.
    c = Client(broker)
    c.subscribe("nl/t", options=mqtt.SubscribeOptions(qos=1, noLocal=True))
    c.publish("nl/t", b"mine", qos=1)
    other = Client(broker)
    other.publish("nl/t", b"theirs", qos=1)
    [m] = c.expect(1)
    assert m.payload == b"theirs"


def test_properties_passed_through(broker):
    # Proves: payload format, content type, response topic, correlation data and user properties reach the
    # subscriber unchanged.
    s = Client(broker)
    s.subscribe("props", 1)
    p = Client(broker)
    p.publish("props", b"{}", qos=1, properties=properties(
        PUBLISH, PayloadFormatIndicator=1, ContentType="application/json", ResponseTopic="reply/here",
        CorrelationData=b"\x01\x02", UserProperty=[("a", "1"), ("b", "2")]))
    [m] = s.expect(1)
    assert m.properties.PayloadFormatIndicator == 1
    assert m.properties.ContentType == "application/json"
    assert m.properties.ResponseTopic == "reply/here"
    assert m.properties.CorrelationData == b"\x01\x02"
    assert m.properties.UserProperty == [("a", "1"), ("b", "2")]


@pytest.mark.parametrize("version", [4, 5])
def test_message_expiry(broker, version):
    # Proves: a queued message whose expiry passed is not delivered (to 3.1.1 subscribers too), and a delivered
    # one carries the interval received minus the time it waited [MQTT-3.3.2-6]: at least 2.5 s passed, so at
    # most 98 of 100 s are left (a bound a slow machine can only make easier).
    connect_properties = properties(CONNECT, SessionExpiryInterval=300) if version == 5 else None
    s = Client(broker, version=version, client_id=f"expiry-sub{version}", clean=False, properties=connect_properties)
    s.subscribe("exp/#", 1)
    s.disconnect()
    p = Client(broker)
    p.publish("exp/short", b"gone", qos=1, properties=properties(PUBLISH, MessageExpiryInterval=1))
    p.publish("exp/long", b"kept", qos=1, properties=properties(PUBLISH, MessageExpiryInterval=100))
    time.sleep(2.5)
    s = Client(broker, version=version, client_id=f"expiry-sub{version}", clean=False, properties=connect_properties)
    [m] = s.expect(1)
    assert m.payload == b"kept"
    if version == 5:
        assert 80 <= m.properties.MessageExpiryInterval <= 98
    s.expect_none(0.5)


def test_shared_subscription_delivers_each_message_once(broker):
    # Proves: members of a shared subscription ($share/group/filter), homed on different shards, together get
    # each message exactly once; an ordinary subscriber of the same topics gets every message.
    from conftest import home_client_id
    members = [Client(broker, client_id=home_client_id(f"shm{shard}", shard, broker.shards)) for shard in range(3)]
    for member in members:
        member.subscribe("$share/g/sh/#", 1)
    watcher = Client(broker)
    watcher.subscribe("sh/#", 1)
    publisher = Client(broker, client_id=home_client_id("shp", 3, broker.shards))
    for index in range(30):
        publisher.publish(f"sh/{index % 3}", str(index).encode(), qos=1)
    assert sorted(int(m.payload) for m in watcher.expect(30)) == list(range(30))
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < 30 and time.monotonic() < deadline:
        for member in members:
            try:
                got.append(member.messages.get(timeout=0.05))
            except Exception:
                pass
    assert sorted(int(m.payload) for m in got) == list(range(30))
    for member in members:
        member.expect_none(0.3)


def test_topic_alias_from_client(broker):
    # Proves: a PUBLISH using a topic alias the client set earlier is routed to the aliased topic.
    s = Client(broker)
    s.subscribe("alias/topic", 0)
    p = Client(broker)
    p.publish("alias/topic", b"1", properties=properties(PUBLISH, TopicAlias=1))
    p.publish("", b"2", properties=properties(PUBLISH, TopicAlias=1))
    assert [m.payload for m in s.expect(2)] == [b"1", b"2"]


def test_mosquitto_clients_v311_and_v5(broker):
    # Proves: Mosquitto's own command-line clients interoperate, in both protocol versions.
    for version in ["mqttv311", "mqttv5"]:
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", version,
                                "-t", "mq/" + version, "-q", "1", "-C", "3", "-W", "20"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        for i in range(3):
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", version,
                            "-t", "mq/" + version, "-q", "1", "-m", f"m{i}"], check=True, timeout=TIMEOUT)
        out, err = sub.communicate(timeout=30)
        assert sub.returncode == 0, err
        assert out.split() == ["m0", "m1", "m2"]
