"""Bad input closes only the offending connection, with the v5 reason code where there is one."""
import socket

import pytest

from conftest import TIMEOUT, Client

CONNECT_V5 = bytes([0x10, 0x10]) + b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + b"\x00\x03bad"
CONNECT_V4 = bytes([0x10, 0x0F]) + b"\x00\x04MQTT\x04\x02\x00\x3c" + b"\x00\x03bad"


def raw_connect(broker, connect=CONNECT_V5):
    sock = socket.create_connection(("127.0.0.1", broker.port))
    sock.settimeout(TIMEOUT)
    sock.sendall(connect)
    header = sock.recv(2)
    assert header[0] == 0x20
    sock.recv(header[1])
    return sock


def read_until_close(sock):
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("name,packet,reason", [
    ("second CONNECT [MQTT-3.1.0-2]", CONNECT_V5, 0x82),
    ("wildcard in PUBLISH topic [MQTT-3.3.2-2]", bytes([0x30, 0x06, 0x00, 0x03]) + b"a/#" + b"\x00", 0x90),
    ("QoS 3 PUBLISH [MQTT-3.3.1-4]", bytes([0x36, 0x06, 0x00, 0x01, 0x61, 0x00, 0x01, 0x00]), 0x81),
    ("invalid UTF-8 topic [MQTT-1.5.4-1]", bytes([0x30, 0x05, 0x00, 0x02, 0xC0, 0x80, 0x00]), 0x81),
    ("reserved flags on SUBSCRIBE [MQTT-3.8.1-1]", bytes([0x80, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61, 0x00]),
     0x81),
    ("topic alias 0 [MQTT-3.3.2-8]", bytes([0x30, 0x07, 0x00, 0x01, 0x61, 0x03, 0x23, 0x00, 0x00]), 0x94),
    ("topic alias above Topic Alias Maximum 10 [MQTT-3.3.2-9]",
     bytes([0x30, 0x07, 0x00, 0x01, 0x61, 0x03, 0x23, 0x00, 0x0B]), 0x94),
    ("unknown topic alias (5.0 §3.3.2.3.4)", bytes([0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05]), 0x82),
    ("Subscription Identifier in PUBLISH [MQTT-3.3.4-6]", bytes([0x30, 0x06, 0x00, 0x01, 0x61, 0x02, 0x0B, 0x01]),
     0x82),
    ("AUTH without enhanced authentication (5.0 §4.12)", bytes([0xF0, 0x00]), 0x82),
    ("Subscription Identifier 0 in SUBSCRIBE (5.0 §3.8.2.1.2)",
     bytes([0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, 0x61, 0x00]), 0x82),
    ("No Local on a shared subscription [MQTT-3.8.3-4]",
     bytes([0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A]) + b"$share/g/a" + b"\x04", 0x82),
    ("CONNACK from a client", bytes([0x20, 0x03, 0x00, 0x00, 0x00]), 0x82),
])
def test_malformed_packet_closes_only_that_connection(broker, name, packet, reason):
    # Proves: each protocol violation closes the offending v5 connection with the right reason code and a Reason
    # String, and a healthy subscriber on the same broker keeps receiving.
    healthy = Client(broker)
    healthy.subscribe("ok", 0)
    bad = raw_connect(broker)
    bad.sendall(packet)
    data = read_until_close(bad)
    assert data[:1] == b"\xe0", f"{name}: expected DISCONNECT, got {data!r}"
    assert data[2] == reason, f"{name}: reason {data[2]:#x}, expected {reason:#x}"
    # The DISCONNECT explains itself: its properties hold a Reason String (0x1F).
    assert len(data) > 4 and data[4] == 0x1F, f"{name}: no Reason String in {data!r}"
    Client(broker).publish("ok", b"still here")
    healthy.expect(1)


@pytest.mark.parametrize("name,packet", [
    ("second CONNECT [MQTT-3.1.0-2]", CONNECT_V4),
    ("wildcard in PUBLISH topic [MQTT-3.3.2-2]", bytes([0x30, 0x05, 0x00, 0x03]) + b"a/#"),
    ("QoS 3 PUBLISH [MQTT-3.3.1-4]", bytes([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01])),
    ("invalid UTF-8 topic [MQTT-1.5.4-1]", bytes([0x30, 0x04, 0x00, 0x02, 0xC0, 0x80])),
    ("reserved flags on SUBSCRIBE [MQTT-3.8.1-1]", bytes([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00])),
    ("PUBREL with flags 0 [MQTT-3.6.1-1]", bytes([0x60, 0x02, 0x00, 0x01])),
    ("oversized packet", bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F])),
])
def test_malformed_packet_closes_only_that_v311_connection(broker, name, packet):
    # Proves: each protocol violation closes the offending 3.1.1 connection without a DISCONNECT (3.1.1 has no
    # server DISCONNECT), and a healthy 3.1.1 subscriber on the same broker keeps receiving.
    healthy = Client(broker, version=4)
    healthy.subscribe("ok311", 0)
    bad = raw_connect(broker, CONNECT_V4)
    bad.sendall(packet)
    assert read_until_close(bad) == b"", name
    Client(broker, version=4).publish("ok311", b"still here")
    healthy.expect(1)


@pytest.mark.parametrize("name,property_bytes", [
    ("Receive Maximum 0", bytes([0x03, 0x21, 0x00, 0x00])),
    ("Maximum Packet Size 0", bytes([0x05, 0x27, 0x00, 0x00, 0x00, 0x00])),
    ("Topic Alias Maximum twice", bytes([0x06, 0x22, 0x00, 0x01, 0x22, 0x00, 0x02])),
])
def test_invalid_connect_property_gets_connack_0x82(broker, name, property_bytes):
    # Proves: a v5 CONNECT with an invalid property value (5.0 §3.1.2.11) is refused with CONNACK 0x82 and
    # closed.
    body = b"\x00\x04MQTT\x05\x02\x00\x3c" + property_bytes + b"\x00\x03bad"
    sock = socket.create_connection(("127.0.0.1", broker.port))
    sock.settimeout(TIMEOUT)
    sock.sendall(bytes([0x10, len(body)]) + body)
    data = read_until_close(sock)
    assert data[:1] == b"\x20" and data[3] == 0x82, f"{name}: {data!r}"


def test_packet_before_connect_closes(broker):
    # Proves: a packet other than CONNECT first closes the connection [MQTT-3.1.0-1].
    sock = socket.create_connection(("127.0.0.1", broker.port))
    sock.settimeout(TIMEOUT)
    sock.sendall(bytes([0xC0, 0x00]))
    assert read_until_close(sock) == b""


def test_oversized_packet_refused_v5(broker):
    # Proves: a packet over the maximum packet size is refused from its fixed header with 0x95.
    bad = raw_connect(broker)
    bad.sendall(bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F]))
    data = read_until_close(bad)
    assert data[:1] == b"\xe0" and data[2] == 0x95


def test_malformed_v311_closes_without_disconnect(broker):
    # Proves: MQTT 3.1.1 has no server DISCONNECT: a malformed packet just closes the connection.
    bad = raw_connect(broker, CONNECT_V4)
    bad.sendall(bytes([0x36, 0x06, 0x00, 0x01, 0x61, 0x00, 0x01, 0x00]))
    assert read_until_close(bad) == b""


def test_unsupported_protocol_version(broker):
    # Proves: CONNECT with an unknown protocol level gets CONNACK 0x01 (3.1.1 style) and is closed.
    sock = socket.create_connection(("127.0.0.1", broker.port))
    sock.settimeout(TIMEOUT)
    sock.sendall(bytes([0x10, 0x0F]) + b"\x00\x04MQTT\x07\x02\x00\x3c" + b"\x00\x03bad")
    data = read_until_close(sock)
    assert data[:2] == b"\x20\x02" and data[3] == 0x01
