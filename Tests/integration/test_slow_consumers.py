"""Slow consumers cannot hurt anyone: the real binary with real clients and subscribers that stop reading.

A "stalled" subscriber is a raw socket with a tiny receive buffer that subscribes and then never reads again, so
the broker's writes to it back up into its bounded outbound queue and session queue. The tests check behaviour,
never speed: every wait is bounded and generous, and the memory check compares against the configured bounds
with a wide margin."""
import time
import uuid

import pytest

from conftest import TIMEOUT, Client, home_client_id
from rawmqtt import RawClient
from test_metrics import scrape, wait_for
from test_metrics import start as start_with_metrics


def stalled_subscriber(port, topic, qos=1, client_id=None):
    """Connects (3.1.1, clean session) with a 4 KiB receive window, subscribes to `topic`, and returns the socket,
    which nobody reads again."""
    client = RawClient(port, client_id or "stalled-" + uuid.uuid4().hex[:8], version=4, keepalive=0,
                       receive_buffer_bytes=4096)
    assert client.connack_code == 0
    suback = client.subscribe(topic, qos=qos)
    assert suback.body[2] == qos, suback
    return client.sock


def start(shards, *args):
    """A broker with a metrics listener (the counters are how these tests see drops and pauses)."""
    return start_with_metrics(shards, extra_args=args)


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
        healthy = Client(broker, version=5, client_id=home_client_id("healthy", 1, shards))
        healthy.subscribe("load/#", qos=1)
        stalled = None
        if bound == "budget":
            stalled = stalled_subscriber(broker.port, "load/#", client_id=home_client_id("stalled", 1, shards))
        publishers = [Client(broker, version=4, client_id=home_client_id(f"pub{k}", 0, shards)) for k in range(3)]
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
        # The healthy subscriber's last acknowledgements may still be on their way: wait for the drain.
        samples = wait_for(broker, lambda s: totals(s, "paused_publishers") == 0 and totals(s, "under_pressure") == 0
                           and totals(s, "queued_bytes_held") == 0, "every publisher read again, nothing held")
        reason = "mesh_full" if bound == "mesh" else "queued_bytes_budget"
        assert samples.get(f'shoal_publishers_paused_total{{reason="{reason}"}}', 0) > 0
        for client in publishers + [healthy]:
            client.disconnect()
    finally:
        assert broker.stop() == 0, broker.output()
