"""Topic aliases from the broker to clients (MQTT 5.0 §3.3.2.3.4) through the real broker, with paho-mqtt v5
subscribers that set Topic Alias Maximum in CONNECT, at one and at four shards (publishers homed on every
shard, so at four shards most messages are forwarded to the subscriber's shard first).

paho-mqtt 2.2 hands an aliased PUBLISH to the application as it is on the wire (empty topic plus a TopicAlias
property), so the test keeps the alias table a client keeps and resolves each message itself. (libmosquitto
2.0.11, hence mosquitto_sub, refuses any PUBLISH with an empty topic even after announcing a Topic Alias Maximum,
so it cannot take part here.)
"""
from conftest import Client, CONNECT, PUBLISH, home_client_id, properties


def resolve(messages):
    """Resolves topics as a client must: a PUBLISH with topic and alias sets the alias, one with an empty topic
    uses it. Returns [(topic, alias or None, topic sent empty?, payload)]."""
    table = {}
    out = []
    for m in messages:
        alias = getattr(m.properties, "TopicAlias", None)
        if m.topic:
            if alias is not None:
                table[alias] = m.topic
            out.append((m.topic, alias, False, m.payload))
        else:
            assert alias is not None, "empty topic without a topic alias"
            assert alias in table, f"alias {alias} used before it was set"
            out.append((table[alias], alias, True, m.payload))
    return out


def publishers_on_every_shard(broker, prefix):
    return [Client(broker, client_id=home_client_id(prefix, shard, broker.shards)) for shard in range(broker.shards)]


def test_subscriber_with_topic_alias_maximum_receives_aliases(broker):
    # Proves: a v5 subscriber with Topic Alias Maximum 2 gets aliases 1 and 2 for its first two topics (topic and
    # alias first, then an empty topic and the alias), a third topic in full without an alias, every message
    # resolving to the topic it was published to, never an alias above 2 [MQTT-3.3.2-11]; and the publishers'
    # shards do not matter.
    subscriber = Client(broker, client_id=home_client_id("ta-sub", 0, broker.shards),
                        properties=properties(CONNECT, TopicAliasMaximum=2))
    subscriber.subscribe("ta/#", 1)
    publishers = publishers_on_every_shard(broker, "ta-pub")
    topics = ["ta/alpha", "ta/alpha", "ta/beta", "ta/gamma", "ta/alpha", "ta/beta", "ta/gamma", "ta/beta"]
    for index, topic in enumerate(topics):
        publishers[index % len(publishers)].publish(topic, f"{topic} {index}".encode(), qos=1)
    got = resolve(subscriber.expect(len(topics)))
    subscriber.expect_none(0.5)
    for topic, alias, _, payload in got:
        assert payload.decode().split()[0] == topic, f"{payload!r} resolved to {topic}"
        assert alias is None or 1 <= alias <= 2
    assert sorted(p for _, _, _, p in got) == sorted(f"{t} {i}".encode() for i, t in enumerate(topics))
    aliased = {topic for topic, alias, _, _ in got if alias is not None}
    assert len(aliased) == 2, got
    # Each aliased topic was named once with its alias, then sent empty; the third never had an alias.
    for topic in aliased:
        forms = [empty for t, alias, empty, _ in got if t == topic]
        assert forms[0] is False and all(forms[1:]), got
    [plain] = set(topics) - aliased
    assert all(alias is None and not empty for t, alias, empty, _ in got if t == plain)
    subscriber.disconnect()
    for p in publishers:
        p.disconnect()


def test_aliases_reset_on_reconnect(broker):
    # Proves [MQTT-3.3.2-7]: aliases do not carry over to a new connection of the same client: after
    # reconnecting, the first message on a topic names the topic again.
    client_id = home_client_id("ta-re", broker.shards - 1, broker.shards)
    connect_properties = properties(CONNECT, TopicAliasMaximum=4, SessionExpiryInterval=60)
    subscriber = Client(broker, client_id=client_id, clean=False, properties=connect_properties)
    subscriber.subscribe("tr/#", 1)
    publisher = Client(broker, client_id=home_client_id("ta-re-pub", 0, broker.shards))
    for index in range(2):
        publisher.publish("tr/topic", str(index).encode(), qos=1)
    first = resolve(subscriber.expect(2))
    assert [(alias, empty) for _, alias, empty, _ in first] == [(1, False), (1, True)]
    subscriber.disconnect()
    subscriber = Client(broker, client_id=client_id, clean=False, properties=connect_properties)
    assert subscriber.session_present
    for index in range(2, 4):
        publisher.publish("tr/topic", str(index).encode(), qos=1)
    again = resolve(subscriber.expect(2))
    assert [(topic, alias, empty) for topic, alias, empty, _ in again] == [
        ("tr/topic", 1, False), ("tr/topic", 1, True)]
    assert [p for _, _, _, p in again] == [b"2", b"3"]


def test_clients_without_topic_alias_maximum_get_full_topics(broker):
    # Proves: v5 clients that announce no Topic Alias Maximum, and 3.1.1 clients, get every message with its
    # full topic and no alias, while an alias-accepting subscriber of the same messages gets aliases.
    plain5 = Client(broker)
    plain4 = Client(broker, version=4)
    aliasing = Client(broker, properties=properties(CONNECT, TopicAliasMaximum=10))
    for c in (plain5, plain4, aliasing):
        c.subscribe("tf/#", 1)
    publisher = Client(broker)
    for index in range(3):
        publisher.publish("tf/same/topic", str(index).encode(), qos=1)
    for c in (plain5, plain4):
        got = c.expect(3)
        assert [m.topic for m in got] == ["tf/same/topic"] * 3
        assert all(getattr(m.properties, "TopicAlias", None) is None for m in got if m.properties is not None)
    resolved = resolve(aliasing.expect(3))
    assert [(t, a, e) for t, a, e, _ in resolved] == [
        ("tf/same/topic", 1, False), ("tf/same/topic", 1, True), ("tf/same/topic", 1, True)]


def test_broker_announces_topic_alias_maximum(broker):
    # Proves: CONNACK announces the broker's Topic Alias Maximum (default 10) and a client may use aliases up to
    # it.
    c = Client(broker)
    assert c.connack_properties.TopicAliasMaximum == 10
    s = Client(broker)
    s.subscribe("tam/#", 0)
    c.publish("tam/ten", b"1", properties=properties(PUBLISH, TopicAlias=10))
    c.publish("", b"2", properties=properties(PUBLISH, TopicAlias=10))
    assert [(m.topic, m.payload) for m in s.expect(2)] == [("tam/ten", b"1"), ("tam/ten", b"2")]
