"""A minimal MQTT client over a raw socket, for what paho hides: DUP flags, packet identifiers, withheld
acknowledgements, the exact reason code of a server DISCONNECT, packets larger than a limit.

Only what the tests need is encoded: CONNECT, SUBSCRIBE, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP, PINGREQ,
DISCONNECT, and a handful of v5 properties. Every read has a generous timeout.
"""
import socket
import struct

from conftest import TIMEOUT

# Packet types (high nibble of the first byte).
CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, PINGRESP, DISCONNECT = 2, 3, 4, 5, 6, 7, 9, 13, 14

# v5 property identifiers used here.
SESSION_EXPIRY_INTERVAL = 0x11
RECEIVE_MAXIMUM = 0x21
MAXIMUM_PACKET_SIZE = 0x27
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23

_FOUR_BYTE = {0x02, 0x11, 0x18, 0x27}
_TWO_BYTE = {0x13, 0x21, 0x22, 0x23}
_ONE_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_STRING_OR_BINARY = {0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F}


def varint(value):
    out = bytearray()
    while True:
        digit = value & 0x7F
        value >>= 7
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def string(text):
    data = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(data)) + data


def properties(pairs):
    """Encodes [(identifier, value)] for the integer properties above; returns length-prefixed bytes."""
    body = bytearray()
    for identifier, value in pairs:
        body.append(identifier)
        if identifier in _FOUR_BYTE:
            body += struct.pack(">I", value)
        elif identifier in _TWO_BYTE:
            body += struct.pack(">H", value)
        elif identifier in _ONE_BYTE:
            body.append(value)
        else:
            raise ValueError(f"property {identifier:#x} not supported here")
    return varint(len(body)) + bytes(body)


def parse_properties(data, offset):
    """Parses a v5 property block at `offset`; returns ({identifier: value or [values]}, offset after it)."""
    length, offset = read_varint(data, offset)
    end = offset + length
    result = {}
    while offset < end:
        identifier = data[offset]
        offset += 1
        if identifier in _FOUR_BYTE:
            value = struct.unpack_from(">I", data, offset)[0]
            offset += 4
        elif identifier in _TWO_BYTE:
            value = struct.unpack_from(">H", data, offset)[0]
            offset += 2
        elif identifier in _ONE_BYTE:
            value = data[offset]
            offset += 1
        elif identifier == 0x0B:  # Subscription Identifier
            value, offset = read_varint(data, offset)
        elif identifier in _STRING_OR_BINARY:
            size = struct.unpack_from(">H", data, offset)[0]
            value = bytes(data[offset + 2:offset + 2 + size])
            offset += 2 + size
        elif identifier == 0x26:  # User Property
            size = struct.unpack_from(">H", data, offset)[0]
            name = bytes(data[offset + 2:offset + 2 + size])
            offset += 2 + size
            size = struct.unpack_from(">H", data, offset)[0]
            value = (name, bytes(data[offset + 2:offset + 2 + size]))
            offset += 2 + size
        else:
            raise ValueError(f"unknown property {identifier:#x}")
        if identifier in result:
            existing = result[identifier]
            result[identifier] = (existing if isinstance(existing, list) else [existing]) + [value]
        else:
            result[identifier] = value
    return result, end


def read_varint(data, offset):
    value, shift = 0, 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


class Packet:
    def __init__(self, first, body):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body

    @property
    def dup(self):
        return bool(self.flags & 0x08)

    @property
    def qos(self):
        return (self.flags >> 1) & 3

    def __repr__(self):
        return f"Packet(type={self.type}, flags={self.flags:#x}, body={self.body!r})"


class Publish:
    """A decoded PUBLISH from the broker."""

    def __init__(self, packet, version):
        data = packet.body
        self.dup, self.qos, self.retain = packet.dup, packet.qos, bool(packet.flags & 1)
        size = struct.unpack_from(">H", data, 0)[0]
        self.topic = bytes(data[2:2 + size]).decode()
        offset = 2 + size
        self.packet_id = None
        if self.qos:
            self.packet_id = struct.unpack_from(">H", data, offset)[0]
            offset += 2
        self.properties = {}
        if version == 5:
            self.properties, offset = parse_properties(data, offset)
        self.payload = bytes(data[offset:])


class RawClient:
    def __init__(self, port, client_id, version=5, clean=True, keepalive=60, connect_properties=(), expect_ack=True,
                 receive_buffer_bytes=None):
        """`receive_buffer_bytes` sets SO_RCVBUF before connecting (a small window makes a client that stops
        reading back up into the broker's queues quickly)."""
        self.version = version
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer_bytes is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        flags = 0x02 if clean else 0x00
        body = string("MQTT") + bytes([version, flags]) + struct.pack(">H", keepalive)
        if version == 5:
            body += properties(connect_properties)
        body += string(client_id)
        self.send(0x10, body)
        self.connack = None
        if expect_ack:
            packet = self.read()
            assert packet.type == CONNACK, packet
            self.connack = packet
            self.session_present = bool(packet.body[0] & 1)
            self.connack_code = packet.body[1]
            self.connack_properties = parse_properties(packet.body, 2)[0] if version == 5 else {}

    def send(self, first, body):
        self.sock.sendall(bytes([first]) + varint(len(body)) + body)

    def read(self, timeout=TIMEOUT):
        """The next packet, or None if the connection closed."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buffer) >= 2:
                try:
                    length, offset = read_varint(self.buffer, 1)
                except IndexError:
                    length = None
                if length is not None and len(self.buffer) >= offset + length:
                    packet = Packet(self.buffer[0], self.buffer[offset:offset + length])
                    self.buffer = self.buffer[offset + length:]
                    return packet
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk

    def read_nothing(self, wait=1.0):
        """Asserts that no packet arrives within `wait` seconds (a lower bound only: never a timing assertion
        on the broker being fast)."""
        try:
            packet = self.read(timeout=wait)
        except socket.timeout:
            return
        raise AssertionError(f"unexpected packet {packet!r}")

    def read_publish(self, timeout=TIMEOUT):
        packet = self.read(timeout)
        assert packet is not None and packet.type == PUBLISH, packet
        return Publish(packet, self.version)

    def subscribe(self, topic_filter, qos=1, packet_id=1):
        body = struct.pack(">H", packet_id)
        if self.version == 5:
            body += b"\x00"
        body += string(topic_filter) + bytes([qos])
        self.send(0x82, body)
        packet = self.read()
        assert packet is not None and packet.type == SUBACK, packet
        return packet

    def publish(self, topic, payload, qos=0, packet_id=None, retain=False, props=()):
        body = string(topic)
        if qos:
            body += struct.pack(">H", packet_id)
        if self.version == 5:
            body += properties(props)
        body += payload
        self.send(0x30 | (qos << 1) | (1 if retain else 0), body)

    def ack(self, packet_type, packet_id):
        first = {PUBACK: 0x40, PUBREC: 0x50, PUBREL: 0x62, PUBCOMP: 0x70}[packet_type]
        self.send(first, struct.pack(">H", packet_id))

    def read_until_close(self):
        """Every packet until the broker closes the connection."""
        packets = []
        while True:
            packet = self.read()
            if packet is None:
                return packets
            packets.append(packet)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
