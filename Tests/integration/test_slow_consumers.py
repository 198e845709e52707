"""Slow consumers cannot hurt anyone: the real binary with real clients and subscribers that stop reading.

A "stalled" subscriber is a raw socket with a tiny receive buffer that subscribes and then never reads again, so
the broker's writes to it back up into its bounded outbound queue and session queue. The tests check behaviour,
never speed: every wait is bounded and generous, and the memory check compares against the configured bounds
with a wide margin."""
import socket
import struct
import time
import uuid

import pytest

from conftest import TIMEOUT, Broker, Client, free_port
from test_metrics import scrape, wait_for


# MARK: - A raw MQTT 3.1.1 subscriber that stops reading


def _varint(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise AssertionError("broker closed the connection")
        data += chunk
    return data


def _read_packet(sock):
    header = _read_exactly(sock, 1)[0]
    length, shift = 0, 0
    while True:
        byte = _read_exactly(sock, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return header, _read_exactly(sock, length)


def stalled_subscriber(port, topic, qos=1, client_id=None):
    """Connects (3.1.1, clean session), subscribes to `topic`, and returns the socket, which nobody reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window before connecting: the kernel buffers little, so the broker's queues fill.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    client_id = client_id or "stalled-" + uuid.uuid4().hex[:8]
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id)
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    header, payload = _read_packet(sock)
    assert header == 0x20 and payload[1] == 0, f"CONNACK {header:#x} {payload!r}"
    body = struct.pack("!H", 1) + _string(topic) + bytes([qos])
    sock.sendall(b"\x82" + _varint(len(body)) + body)
    header, payload = _read_packet(sock)
    assert header == 0x90 and payload[2] == qos, f"SUBACK {header:#x} {payload!r}"
    return sock


def start(shards, *args):
    """A broker with a metrics listener (the counters are how these tests see drops and pauses)."""
    metrics_port = free_port()
    broker = Broker(shards=shards, extra_args=["--sys-interval", "0", "--metrics-port", str(metrics_port), *args])
    broker.metrics_port = metrics_port
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", metrics_port), timeout=1).close()
            return broker
        except OSError:
            if time.monotonic() > deadline:
                broker.stop()
                raise
            time.sleep(0.05)


def home_shard(client_id, shards):
    """The shard a client ID lives on: FNV-1a 64 then the SplitMix64 finaliser, mod the shard count."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for byte in client_id.encode():
        h = ((h ^ byte) * 0x100000001B3) & mask
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & mask
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & mask
    h ^= h >> 31
    return h % shards


def client_id_on(shard, shards, base):
    counter = 0
    while home_shard(f"{base}-{counter}", shards) != shard:
        counter += 1
    return f"{base}-{counter}"


def totals(samples, name):
    """Sum of a broker-wide metric's series (every label set), per-shard series excluded."""
    prefix = "shoal_" + name
    return sum(value for key, value in samples.items() if key == prefix or key.startswith(prefix + "{"))


def receive_all(client, count):
    """Drains `count` messages from a paho client, returning their payloads."""
    return [m.payload for m in client.expect(count, timeout=max(TIMEOUT, count / 200))]


# MARK: - Tests


@pytest.mark.parametrize("shards", [1, 4], ids=["shards1", "shards4"])
def test_stalled_subscribers_do_not_hurt_a_healthy_one(shards):
    # Proves the heart of the product: with ten subscribers that never read on the same topic as a healthy one,
    # the healthy one receives every QoS 0 and QoS 1 message of a burst of thousands, the stalled ones lose
    # messages per policy (counted), and the broker's memory stays within the configured bounds.
    broker = start(shards)
    try:
        healthy = Client(broker, version=4)
        healthy.subscribe("burst/#", qos=1)
        stalled = [stalled_subscriber(broker.port, "burst/#") for _ in range(10)]
        publisher = Client(broker, version=5)
        rss_before = broker.rss_kib()

        qos0_count, qos1_count = 4000, 2000
        payload = b"x" * 100
        # Closed loop on the healthy subscriber: each chunk is published, then read by it before the next, so a
        # Python subscriber slower than a Python publisher never overflows its own (healthy) bounds.
        received = []
        for qos, count in ((0, qos0_count), (1, qos1_count)):
            for start_index in range(0, count, 200):
                infos = [publisher.client.publish(f"burst/{qos}/{index % 7}", payload + str(index).encode(), qos=qos)
                         for index in range(start_index, start_index + 200)]
                for info in infos:
                    info.wait_for_publish(timeout=TIMEOUT)
                    assert info.is_published()
                received += receive_all(healthy, 200)
        assert sorted(received) == sorted(
            [payload + str(i).encode() for i in range(qos0_count)] + [payload + str(i).encode() for i in range(qos1_count)])
        healthy.expect_none(wait=0.5)

        samples = wait_for(broker, lambda s: totals(s, "session_queue_dropped_total") > 0
                           and totals(s, "messages_dropped_total") > 0, "drops for the stalled subscribers")
        # Each stalled subscriber's QoS 1 backlog is bounded by max_queued_messages (1000) plus its inflight window (256):
        # the rest was dropped for it alone.
        assert totals(samples, "session_queue_dropped_total") >= 10 * (qos1_count - 1000 - 256) * 0.9
        rss_growth_kib = broker.rss_kib() - rss_before
        # Bounds: 10 × (1 MiB outbound + 1000 queued deliveries of ~150 bytes) ≈ 12 MiB; allow generous slack for
        # allocator behaviour, but nothing near "every message to every stalled subscriber" would exceed it.
        assert rss_growth_kib < 64 * 1024, f"RSS grew {rss_growth_kib} KiB"
        for sock in stalled:
            sock.close()
        healthy.disconnect()
        publisher.disconnect()
    finally:
        assert broker.stop() == 0, broker.output()


def test_stalled_subscriber_is_disconnected_after_the_limit():
    # Proves --queue-full-disconnect: a QoS 0 subscriber that stops reading is disconnected once it has been
    # stalled for the limit (counted), while a healthy subscriber of the same topic keeps receiving throughout.
    broker = start(1, "--queue-full-disconnect", "2", "--max-queued-bytes", "65536")
    try:
        healthy = Client(broker, version=5)
        healthy.subscribe("flood", qos=0)
        stalled = stalled_subscriber(broker.port, "flood", qos=0)
        publisher = Client(broker, version=5)
        # Chunks of 500 × 100 bytes stay under the healthy subscriber's 64 KiB bound while it reads each chunk;
        # the stalled one's kernel buffers fill first, then its outbound queue, then the clock runs.
        payload = b"y" * 100
        deadline = time.monotonic() + TIMEOUT * 4
        samples = {}
        while time.monotonic() < deadline:
            for _ in range(500):
                publisher.client.publish("flood", payload, qos=0)
            receive_all(healthy, 500)
            _, samples = scrape(broker)
            if totals(samples, "slow_clients_disconnected_total") >= 1:
                break
        assert totals(samples, "slow_clients_disconnected_total") == 1, "the stalled subscriber was not disconnected"
        # Its socket is closed by the broker: reading it now ends (after what the kernel still buffered).
        stalled.settimeout(TIMEOUT)
        try:
            while stalled.recv(65536):
                pass
        except ConnectionResetError:
            pass
        # The healthy subscriber still gets everything.
        for _ in range(3):
            publisher.publish("flood", b"after", qos=0)
        assert [m.payload for m in healthy.expect(3)] == [b"after"] * 3
        healthy.disconnect()
        publisher.disconnect()
        stalled.close()
    finally:
        assert broker.stop() == 0, broker.output()


@pytest.mark.parametrize("bound", ["mesh", "budget"])
def test_cross_shard_backpressure_pauses_and_resumes_publishers(bound):
    # Proves backpressure across shards: publishers on shard 0 and subscribers on shard 1; with a tiny mesh ring
    # (the rings fill) or a tiny queued-bytes budget held by a stalled subscriber, the publishers are paused
    # (counted), later read again, and every QoS 1 message the broker acknowledged reaches the healthy subscriber.
    shards = 2
    if bound == "mesh":
        args = ["--mesh-ring-slots", "2", "--mesh-overflow", "0"]
    else:
        args = ["--queued-bytes-budget", "65536", "--max-queued-messages", "100000"]
    broker = start(shards, *args)
    try:
        healthy = Client(broker, version=5, client_id=client_id_on(1, shards, "healthy"))
        healthy.subscribe("load/#", qos=1)
        stalled = None
        if bound == "budget":
            stalled = stalled_subscriber(broker.port, "load/#", client_id=client_id_on(1, shards, "stalled"))
        publishers = [Client(broker, version=4, client_id=client_id_on(0, shards, f"pub{k}")) for k in range(3)]
        count = 3000
        infos = []
        for index in range(count):
            for k, publisher in enumerate(publishers):
                infos.append(publisher.client.publish(f"load/{k}", f"{k}:{index}".encode(), qos=1))
        wait_for(broker, lambda s: totals(s, "publishers_paused_total") > 0, "publishers paused")
        if stalled is not None:
            # The stalled subscriber leaves: its session ends, the held bytes go, the pressure lifts.
            stalled.close()
        for info in infos:
            info.wait_for_publish(timeout=TIMEOUT * 4)
            assert info.is_published(), "a publish was never acknowledged: its publisher stayed paused"
        expected = sorted(f"{k}:{i}".encode() for k in range(3) for i in range(count))
        assert sorted(receive_all(healthy, len(expected))) == expected
        samples = wait_for(broker, lambda s: totals(s, "paused_publishers") == 0, "every publisher read again")
        reason = "mesh_full" if bound == "mesh" else "queued_bytes_budget"
        assert samples.get(f'shoal_publishers_paused_total{{reason="{reason}"}}', 0) > 0
        assert totals(samples, "under_pressure") == 0
        for client in publishers + [healthy]:
            client.disconnect()
    finally:
        assert broker.stop() == 0, broker.output()
