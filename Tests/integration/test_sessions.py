"""Sessions, retained messages, wills, keepalive and takeover through the real broker."""
import socket
import time

from conftest import TIMEOUT, Client, CONNECT, WILLMESSAGE, properties


def test_retained_set_clear_and_handling(broker):
    # Proves: a retained message is delivered on subscribe (exact and wildcard), with retain handling 2 not at all,
    # and an empty retained payload clears it.
    p = Client(broker)
    p.publish("ret/a", b"A", qos=1, retain=True)
    p.publish("ret/b", b"B", qos=1, retain=True)
    s = Client(broker)
    s.subscribe("ret/a", 1)
    [m] = s.expect(1)
    assert (m.payload, m.retain) == (b"A", True)
    s2 = Client(broker)
    s2.subscribe("ret/#", 1)
    assert sorted(m.payload for m in s2.expect(2)) == [b"A", b"B"]
    import paho.mqtt.client as mqtt
    s3 = Client(broker)
    s3.subscribe("ret/#", options=mqtt.SubscribeOptions(qos=1, retainHandling=2))
    s3.expect_none(0.5)
    p.publish("ret/a", b"", qos=1, retain=True)
    s4 = Client(broker)
    s4.subscribe("ret/#", 1)
    assert [m.payload for m in s4.expect(1)] == [b"B"]
    s4.expect_none(0.5)


def test_persistent_session_queues_and_resumes_v311(broker):
    # Proves: a 3.1.1 client with clean session 0 gets the messages published while it was away, and CONNACK
    # says session present.
    s = Client(broker, version=4, client_id="persist-311", clean=False)
    s.subscribe("q/t", 1)
    s.disconnect()
    p = Client(broker)
    for i in range(5):
        p.publish("q/t", str(i).encode(), qos=1)
    s = Client(broker, version=4, client_id="persist-311", clean=False)
    assert s.session_present
    assert [m.payload for m in s.expect(5)] == [str(i).encode() for i in range(5)]


def test_clean_start_discards_session_v5(broker):
    # Proves: clean start discards the previous session: no session present, no subscription left.
    s = Client(broker, client_id="clean-v5", clean=False, properties=properties(CONNECT, SessionExpiryInterval=60))
    s.subscribe("c/t", 1)
    s.disconnect()
    s = Client(broker, client_id="clean-v5", clean=True)
    assert not s.session_present
    p = Client(broker)
    p.publish("c/t", b"x", qos=1)
    s.expect_none(1.0)


def test_takeover_disconnects_old_connection(broker):
    # Proves: a second connection with the same client ID takes over; the old one gets DISCONNECT 0x8E (v5).
    old = Client(broker, client_id="dup-id")
    new = Client(broker, client_id="dup-id")
    reason, _ = old.disconnects.get(timeout=TIMEOUT)
    assert reason.value == 0x8E
    new.subscribe("tk", 0)
    Client(broker).publish("tk", b"x")
    new.expect(1)


def test_will_published_on_abrupt_close(broker):
    # Proves: the will is published when the connection closes without DISCONNECT, and not after a clean one.
    s = Client(broker)
    s.subscribe("will/#", 1)
    w = Client(broker, version=4, will=("will/gone", b"bye", 1, False))
    w.drop()
    [m] = s.expect(1)
    assert (m.topic, m.payload) == ("will/gone", b"bye")
    w2 = Client(broker, version=4, will=("will/clean", b"no", 1, False))
    w2.disconnect()
    s.expect_none(1.0)


def test_will_delay_cancelled_by_reconnect(broker):
    # Proves: a v5 will with a delay is not published if the client reconnects within the delay, and is
    # published once the delay passes otherwise.
    s = Client(broker)
    s.subscribe("wd/#", 1)
    will_props = properties(WILLMESSAGE, WillDelayInterval=2)
    connect_props = properties(CONNECT, SessionExpiryInterval=60)
    w = Client(broker, client_id="wd-client", clean=False, will=("wd/a", b"late", 1, False, will_props),
               properties=connect_props)
    w.drop()
    time.sleep(0.5)
    w = Client(broker, client_id="wd-client", clean=False, properties=connect_props)
    s.expect_none(3.0)
    w2 = Client(broker, client_id="wd-client2", will=("wd/b", b"late2", 1, False, properties(
        WILLMESSAGE, WillDelayInterval=1)), properties=properties(CONNECT, SessionExpiryInterval=60))
    w2.drop()
    [m] = s.expect(1, timeout=10)
    assert m.payload == b"late2"


def test_keepalive_enforced(broker):
    # Proves: a client that stays silent past 1.5x its keepalive is disconnected (and its will published).
    s = Client(broker)
    s.subscribe("ka/#", 0)
    raw = socket.create_connection(("127.0.0.1", broker.port))
    # CONNECT v3.1.1, keepalive 1 s, client id "ka", will topic "ka/w" payload "x".
    body = (b"\x00\x04MQTT\x04\x06\x00\x01" + b"\x00\x02ka" + b"\x00\x04ka/w" + b"\x00\x01x")
    raw.sendall(bytes([0x10, len(body)]) + body)
    raw.settimeout(TIMEOUT)
    assert raw.recv(4) == b"\x20\x02\x00\x00"
    [m] = s.expect(1, timeout=10)
    assert m.topic == "ka/w"
    assert raw.recv(1) == b""


def test_assigned_client_identifier_v5(broker):
    # Proves: an empty client ID gets an Assigned Client Identifier in CONNACK (v5).
    c = Client(broker, client_id="")
    assert c.connack_properties.AssignedClientIdentifier


def test_qos2_no_duplicates_on_resume(broker):
    # Proves: QoS 2 messages queued for an offline session arrive exactly once after resumption.
    s = Client(broker, client_id="q2-sub", clean=False, properties=properties(CONNECT, SessionExpiryInterval=60))
    s.subscribe("q2/t", 2)
    s.disconnect()
    p = Client(broker)
    for i in range(10):
        p.publish("q2/t", str(i).encode(), qos=2)
    s = Client(broker, client_id="q2-sub", clean=False, properties=properties(CONNECT, SessionExpiryInterval=60))
    assert [m.payload for m in s.expect(10)] == [str(i).encode() for i in range(10)]
    s.expect_none(1.0)
