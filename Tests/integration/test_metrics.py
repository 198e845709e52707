"""Operations: the Prometheus listener (`--metrics-port`) and the $SYS topics (`--sys-interval`), against the real
binary at 1 and 4 shards. Every wait is bounded; values are polled because shards publish snapshots at most every
250 ms."""
import http.client
import socket
import subprocess
import time

import pytest

from conftest import TIMEOUT, Broker, Client, free_port


def start(shards, sys_interval=0, metrics=True, extra_args=()):
    args = ["--sys-interval", str(sys_interval), *extra_args]
    metrics_port = None
    if metrics:
        metrics_port = free_port()
        args += ["--metrics-port", str(metrics_port)]
    broker = Broker(shards=shards, extra_args=args)
    broker.metrics_port = metrics_port
    if metrics:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", metrics_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    broker.stop()
                    raise
                time.sleep(0.05)
    return broker


@pytest.fixture(params=[1, 4], ids=["shards1", "shards4"])
def metrics_broker(request):
    broker = start(request.param)
    yield broker
    assert broker.stop() == 0, broker.output()


def scrape(broker, connection=None):
    """GET /metrics: (response, {sample: value})."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", broker.metrics_port, timeout=TIMEOUT)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    body = response.read().decode()
    if own:
        connection.close()
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return response, samples


def wait_for(broker, condition, what):
    deadline = time.monotonic() + TIMEOUT
    while True:
        _, samples = scrape(broker)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached; last scrape {dict((k, v) for k, v in samples.items() if 'shard_' not in k)}")
        time.sleep(0.1)


def raw_exchange(port, data, timeout=TIMEOUT):
    """Sends bytes, returns everything received until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# MARK: - Prometheus


def test_scrape_counts_traffic_per_shard_and_in_total(metrics_broker):
    # Proves a real scrape works and its counters move with traffic: N QoS 1 messages published and delivered
    # raise the received and sent counters by at least N, and the totals equal the sum of the per-shard series.
    response, before = scrape(metrics_broker)
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    assert before["shoal_shards"] == metrics_broker.shards
    n = 50
    subscriber = Client(metrics_broker)
    subscriber.subscribe("metrics/test", qos=1)
    publisher = Client(metrics_broker)
    for i in range(n):
        publisher.publish("metrics/test", f"m{i}".encode(), qos=1)
    subscriber.expect(n)
    q1_in, q1_out = 'shoal_messages_received_total{qos="1"}', 'shoal_messages_sent_total{qos="1"}'
    payload_in = 'shoal_publish_payload_bytes_received_total{qos="1"}'
    payload_bytes = sum(len(f"m{i}") for i in range(n))

    # Snapshots lag by up to 250 ms per shard: wait until every expected growth shows, then check the sums.
    def grown(s):
        return (s[q1_in] >= before[q1_in] + n and s[q1_out] >= before[q1_out] + n
                and s["shoal_connections"] >= 2 and s["shoal_subscriptions"] >= 1
                and s[payload_in] >= before[payload_in] + payload_bytes
                and s["shoal_bytes_received_total"] > before["shoal_bytes_received_total"]
                and s["shoal_connections_accepted_total"] >= before["shoal_connections_accepted_total"] + 2
                and s["shoal_packets_received_total"] >= before["shoal_packets_received_total"] + n)
    after = wait_for(metrics_broker, grown, "counters grew by the traffic")
    assert after["shoal_shards_reporting"] == metrics_broker.shards
    for family, labels in [("messages_received_total", ',qos="1"'), ("messages_sent_total", ',qos="1"'),
                           ("loop_turns_total", ""), ("connections_accepted_total", "")]:
        per_shard = [after[f'shoal_shard_{family}{{shard="{shard}"{labels}}}'] for shard in range(metrics_broker.shards)]
        total = after[f"shoal_{family}" + (f"{{{labels[1:]}}}" if labels else "")]
        assert sum(per_shard) == total, family
    histogram = after['shoal_loop_turn_duration_seconds_bucket{le="+Inf"}']
    assert histogram == after["shoal_loop_turn_duration_seconds_count"] > 0
    subscriber.disconnect()
    publisher.disconnect()


def test_keep_alive_then_connection_close(metrics_broker):
    # Proves HTTP/1.1 keep-alive (two scrapes on one connection) and that Connection: close is honoured.
    connection = http.client.HTTPConnection("127.0.0.1", metrics_broker.metrics_port, timeout=TIMEOUT)
    first, _ = scrape(metrics_broker, connection)
    second, samples = scrape(metrics_broker, connection)
    assert first.status == second.status == 200
    assert second.getheader("Connection") == "keep-alive"
    assert samples['shoal_metrics_requests_total{code="200"}'] >= 1
    connection.close()
    reply = raw_exchange(metrics_broker.metrics_port,
                         b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in head
    length = int([line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")][0].split(b":")[1])
    assert len(body) == length and b"shoal_uptime_seconds" in body
    head_only = raw_exchange(metrics_broker.metrics_port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert head_only.startswith(b"HTTP/1.1 200 OK\r\n") and head_only.endswith(b"\r\n\r\n")


def test_not_found_and_bad_requests_do_not_hurt_the_broker(metrics_broker):
    # Proves other paths get 404, malformed or oversized requests 400/431 and a close, MQTT bytes on the metrics
    # port 400; and that afterwards MQTT traffic and scrapes still work and the refusals are counted.
    # The fixture's start-up probe is the one MQTT connection so far (snapshots may lag it by up to 250 ms).
    before = wait_for(metrics_broker, lambda s: s["shoal_connections_accepted_total"] >= 1, "probe counted")
    not_found = raw_exchange(metrics_broker.metrics_port,
                             b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert not_found.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert raw_exchange(metrics_broker.metrics_port, b"this is not http\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(metrics_broker.metrics_port, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(metrics_broker.metrics_port,
                        b"POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    mqtt_connect = bytes([0x10, 0x10, 0x00, 0x04]) + b"MQTT" + bytes([0x04, 0x02, 0x00, 0x3C, 0x00, 0x04]) + b"abcd"
    assert raw_exchange(metrics_broker.metrics_port, mqtt_connect + b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    endless = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 20000
    assert raw_exchange(metrics_broker.metrics_port, endless).startswith(b"HTTP/1.1 431 ")
    # A connection that closes mid-request costs nothing.
    with socket.create_connection(("127.0.0.1", metrics_broker.metrics_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /met")
    subscriber = Client(metrics_broker)
    subscriber.subscribe("still/works")
    Client(metrics_broker).publish("still/works", b"yes")
    assert subscriber.expect(1)[0].payload == b"yes"
    samples = wait_for(metrics_broker, lambda s: s['shoal_metrics_requests_total{code="400"}'] >= 3
                       and s['shoal_metrics_requests_total{code="404"}'] >= 1
                       and s['shoal_metrics_requests_total{code="431"}'] >= 1
                       and s['shoal_metrics_requests_total{code="405"}'] >= 1
                       and s["shoal_connections_accepted_total"] >= before["shoal_connections_accepted_total"] + 2,
                       "refusals and MQTT connections counted")
    # Metrics connections never reach the router: only the two MQTT clients were accepted as MQTT connections.
    time.sleep(0.5)
    _, samples = scrape(metrics_broker)
    assert samples["shoal_connections_accepted_total"] == before["shoal_connections_accepted_total"] + 2
    subscriber.disconnect()


def test_metrics_listener_is_off_by_default():
    # Proves no metrics socket exists unless asked for: the broker listens on its MQTT port only.
    broker = start(1, metrics=False)
    try:
        output = broker.output()
        assert "metrics on" not in output
    finally:
        assert broker.stop() == 0


# MARK: - $SYS


def read_sys(broker, needed, timeout=TIMEOUT):
    """Runs `mosquitto_sub -t '$SYS/#' -v` until every topic in `needed` was seen; returns {topic: [payloads]}."""
    # Topics may hold spaces ("retained messages/count"): print topic and payload with a separator of our own.
    process = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "$SYS/#",
                                "-F", "%t|%p"],
                               stdout=subprocess.PIPE, text=True)
    seen = {}
    deadline = time.monotonic() + timeout
    try:
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and not needed(seen):
            if not selector.select(timeout=0.5):
                continue
            line = process.stdout.readline()
            if not line:
                break
            topic, _, payload = line.rstrip("\n").partition("|")
            seen.setdefault(topic, []).append(payload)
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)
    return seen


@pytest.mark.parametrize("shards", [1, 4], ids=["shards1", "shards4"])
def test_mosquitto_sub_reads_sys_topics(shards):
    # Proves `$SYS/#` delivers the broker's version, an uptime that advances, clients/connected counting the
    # subscriber itself, and every shard's own topics, with --sys-interval 1.
    broker = start(shards, sys_interval=1, metrics=False)
    try:
        def complete(seen):
            uptimes = set(seen.get("$SYS/broker/uptime", []))
            return ("$SYS/broker/version" in seen and len(uptimes) >= 2
                    and any(int(v) >= 1 for v in seen.get("$SYS/broker/clients/connected", []))
                    and all(f"$SYS/broker/shards/{n}/clients/connected" in seen for n in range(shards)))
        seen = read_sys(broker, complete)
        assert complete(seen), sorted(seen)
        assert seen["$SYS/broker/version"][0].startswith("shoal version ")
        assert all(v.endswith(" seconds") for v in seen["$SYS/broker/uptime"])
        for topic in ["$SYS/broker/clients/total", "$SYS/broker/messages/received", "$SYS/broker/messages/sent",
                      "$SYS/broker/publish/messages/received", "$SYS/broker/publish/messages/sent",
                      "$SYS/broker/bytes/received", "$SYS/broker/bytes/sent", "$SYS/broker/subscriptions/count",
                      "$SYS/broker/retained messages/count", "$SYS/broker/clients/maximum",
                      f"$SYS/broker/shards/{shards - 1}/publish/messages/received"]:
            assert topic in seen, topic
    finally:
        assert broker.stop() == 0


def test_sys_figures_move_with_traffic_and_load_appears():
    # Proves the broker-wide figures are totals over shards: N publishes raise publish/messages/received by N, and
    # the load averages (Mosquitto's moving averages) are published from the second update on.
    broker = start(4, sys_interval=1, metrics=False)
    try:
        watcher = Client(broker)
        watcher.subscribe("$SYS/broker/publish/messages/received")
        watcher.subscribe("$SYS/broker/load/publish/received/1min")
        publishers = [Client(broker) for _ in range(4)]
        n = 40
        for i in range(n):
            publishers[i % 4].publish("sys/traffic", b"x", qos=1)
        deadline = time.monotonic() + TIMEOUT
        received, load = 0, None
        while time.monotonic() < deadline and (received < n or load is None or load <= 0):
            try:
                message = watcher.messages.get(timeout=0.5)
            except Exception:
                continue
            if message.topic.endswith("/1min"):
                load = float(message.payload)
            else:
                received = int(message.payload)
        assert received >= n
        assert load is not None and load > 0
        for client in publishers + [watcher]:
            client.disconnect()
    finally:
        assert broker.stop() == 0


def test_sys_off_with_interval_zero():
    # Proves --sys-interval 0 publishes nothing under $SYS.
    broker = start(1, sys_interval=0, metrics=False)
    try:
        client = Client(broker)
        client.subscribe("$SYS/#")
        client.expect_none(wait=2.5)
        client.disconnect()
    finally:
        assert broker.stop() == 0


def test_clients_cannot_publish_sys_even_when_the_broker_does():
    # Proves the broker's own $SYS messages do not open $SYS to clients: a client's publish there is dropped.
    broker = start(1, sys_interval=1, metrics=False)
    try:
        client = Client(broker)
        client.subscribe("$SYS/broker/version")
        assert client.expect(1)[0].payload.startswith(b"shoal version ")
        client.publish("$SYS/broker/version", b"forged", qos=1)
        client.expect_none(wait=2.5)
        client.disconnect()
    finally:
        assert broker.stop() == 0
