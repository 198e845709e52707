"""TLS listeners against the real binary: `openssl s_client` (versions, client certificates, resumption),
mosquitto_pub/mosquitto_sub with --cafile and --cert/--key, paho-mqtt over TLS (3.1.1 and 5.0), the certificate
CN as user name with an ACL, hand-off of TLS connections between 4 shards, a bounded handshake flood while an
established TLS subscriber keeps receiving, SIGHUP reload of the certificate files, and startup checks.
Certificates come from `scripts/certs`."""
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import types
import uuid

import pytest

from conftest import ROOT, TIMEOUT, Broker, Client, free_port, shoal_binary

CLIENT_CN = "tls-client"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run([os.path.join(ROOT, "scripts", "certs"), str(directory)], check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    return types.SimpleNamespace(**{name: str(directory / file) for name, file in [
        ("ca", "ca.crt"), ("server_cert", "server.crt"), ("server_key", "server.key"),
        ("client_cert", "client.crt"), ("client_key", "client.key"),
        ("other_cert", "other-client.crt"), ("other_key", "other-client.key"),
        ("mismatched_key", "mismatched.key")]}, dir=str(directory))


def tls_broker(certs, shards=1, extra=()):
    """A broker with a plain listener and a TLS listener (`broker.tls_port`)."""
    tls_port = free_port()
    b = Broker(shards=shards, extra_args=["--tls-port", str(tls_port), "--certfile", certs.server_cert,
                                          "--keyfile", certs.server_key, *extra])
    b.tls_port = tls_port
    b.tls = types.SimpleNamespace(port=tls_port)  # what Client connects to
    return b


@pytest.fixture(params=[1, 4], ids=["shards1", "shards4"])
def broker_tls(request, certs):
    b = tls_broker(certs, shards=request.param)
    yield b
    assert b.stop() == 0, b.output()


@pytest.fixture
def broker_mtls(certs):
    """Client certificates required, signed by the test CA."""
    b = tls_broker(certs, shards=1, extra=["--cafile", certs.ca, "--require-certificate", "true"])
    yield b
    assert b.stop() == 0, b.output()


def s_client(port, *options, stdin=b""):
    """Runs `openssl s_client` against 127.0.0.1:port; returns (exit status, combined output)."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *options],
                            input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    return result.returncode, result.stdout.decode(errors="replace")


def tls_client(broker, certs, version=5, client_id=None, cert=True, username=None, password=None):
    """A connected paho client over TLS trusting the test CA (presenting the client certificate when `cert`)."""
    c = Client(broker.tls, version=version, client_id=client_id, username=username, password=password,
               connect=False)
    c.client.tls_set(ca_certs=certs.ca, certfile=certs.client_cert if cert else None,
                     keyfile=certs.client_key if cert else None)
    c.connect()
    return c


def mqtt_connect_packet(client_id, version=4):
    payload = struct.pack(">H", len(client_id)) + client_id.encode()
    variable = b"\x00\x04MQTT" + bytes([version, 0x02]) + b"\x00\x3c" + (b"\x00" if version == 5 else b"")
    body = variable + payload
    return bytes([0x10, len(body)]) + body


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return data


# MARK: - openssl s_client


def test_s_client_tls12_and_tls13_succeed_tls11_refused(broker_tls, certs):
    for flag, name in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")]:
        code, out = s_client(broker_tls.tls_port, flag, "-CAfile", certs.ca, "-verify_return_error")
        assert code == 0, out
        assert f"Protocol  : {name}" in out or f"New, {name}" in out, out
        assert "Verify return code: 0 (ok)" in out, out
    # The client offers only TLS 1.1 (security level 0 lets OpenSSL 3 send it at all): the broker refuses.
    code, out = s_client(broker_tls.tls_port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", certs.ca)
    assert code != 0, out
    assert "Cipher is (NONE)" in out or "alert" in out or "unsupported protocol" in out, out
    # The refused handshake closed only that connection.
    code, out = s_client(broker_tls.tls_port, "-tls1_3", "-CAfile", certs.ca)
    assert code == 0, out


def test_minimum_version_tls13_refuses_tls12(certs):
    b = tls_broker(certs, extra=["--tls-version", "tlsv1.3"])
    try:
        code, out = s_client(b.tls_port, "-tls1_2", "-CAfile", certs.ca)
        assert code != 0, out
        code, out = s_client(b.tls_port, "-tls1_3", "-CAfile", certs.ca)
        assert code == 0, out
    finally:
        assert b.stop() == 0


def test_ciphers_and_groups_are_applied(certs):
    b = tls_broker(certs, extra=["--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305", "--ciphers-tls1.3",
                                 "TLS_CHACHA20_POLY1305_SHA256", "--tls-groups", "P-256"])
    try:
        code, out = s_client(b.tls_port, "-tls1_2", "-CAfile", certs.ca)
        assert code == 0 and "ECDHE-ECDSA-CHACHA20-POLY1305" in out, out
        code, out = s_client(b.tls_port, "-tls1_3", "-CAfile", certs.ca)
        assert code == 0 and "TLS_CHACHA20_POLY1305_SHA256" in out, out
        # A client offering only a group the broker does not accept cannot agree on a key exchange.
        code, out = s_client(b.tls_port, "-tls1_3", "-groups", "X25519", "-CAfile", certs.ca)
        assert code != 0, out
    finally:
        assert b.stop() == 0


def test_session_resumption_tls12_with_s_client(broker_tls, certs, tmp_path):
    session = str(tmp_path / "session.pem")
    code, out = s_client(broker_tls.tls_port, "-tls1_2", "-CAfile", certs.ca, "-sess_out", session)
    assert code == 0, out
    code, out = s_client(broker_tls.tls_port, "-tls1_2", "-CAfile", certs.ca, "-sess_in", session)
    assert code == 0, out
    assert "Reused, TLSv1.2" in out, out


def test_session_resumption_tls13_with_tickets(broker_tls, certs):
    """TLS 1.3 resumption with a ticket, across an MQTT session (and across shards with 4 shards)."""
    context = ssl.create_default_context(cafile=certs.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    saved = None
    for attempt in range(2):
        with socket.create_connection(("127.0.0.1", broker_tls.tls_port), timeout=TIMEOUT) as raw:
            with context.wrap_socket(raw, server_hostname="localhost", session=saved) as sock:
                sock.sendall(mqtt_connect_packet(f"resume-{attempt}"))
                assert read_exactly(sock, 4) == b"\x20\x02\x00\x00"
                if attempt == 0:
                    saved = sock.session
                    assert saved is not None
                else:
                    assert sock.session_reused


# MARK: - mosquitto clients


def mosquitto_args(broker, certs, cert=None):
    args = ["-h", "127.0.0.1", "-p", str(broker.tls_port), "--cafile", certs.ca]
    if cert is not None:
        args += ["--cert", cert[0], "--key", cert[1]]
    return args


def test_mosquitto_pub_sub_with_cafile(broker_tls, certs):
    topic = "tls/" + uuid.uuid4().hex[:8]
    sub = subprocess.Popen(["mosquitto_sub", *mosquitto_args(broker_tls, certs), "-t", topic, "-C", "3", "-q", "1",
                            "-W", str(int(TIMEOUT))], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # mosquitto_sub has no "subscribed" signal; the messages are QoS 1 and bounded anyway
        for i in range(3):
            subprocess.run(["mosquitto_pub", *mosquitto_args(broker_tls, certs), "-t", topic, "-m", f"m{i}",
                            "-q", "1"], check=True, timeout=TIMEOUT)
        out, err = sub.communicate(timeout=TIMEOUT)
    finally:
        sub.kill()
    assert out.split() == ["m0", "m1", "m2"], (out, err)


def test_require_certificate(broker_mtls, certs):
    topic = "mtls/" + uuid.uuid4().hex[:8]
    ok = subprocess.run(["mosquitto_pub", *mosquitto_args(broker_mtls, certs, (certs.client_cert, certs.client_key)),
                         "-t", topic, "-m", "x", "-q", "1"], capture_output=True, text=True, timeout=TIMEOUT)
    assert ok.returncode == 0, ok.stderr
    without = subprocess.run(["mosquitto_pub", *mosquitto_args(broker_mtls, certs), "-t", topic, "-m", "x",
                              "-q", "1"], capture_output=True, text=True, timeout=TIMEOUT)
    assert without.returncode != 0
    other = subprocess.run(["mosquitto_pub", *mosquitto_args(broker_mtls, certs, (certs.other_cert, certs.other_key)),
                            "-t", topic, "-m", "x", "-q", "1"], capture_output=True, text=True, timeout=TIMEOUT)
    assert other.returncode != 0
    # s_client: a certificate from another CA fails the handshake; the right one passes.
    code, out = s_client(broker_mtls.tls_port, "-CAfile", certs.ca, "-cert", certs.other_cert, "-key",
                         certs.other_key, "-tls1_2")
    assert code != 0, out
    code, out = s_client(broker_mtls.tls_port, "-CAfile", certs.ca, "-cert", certs.client_cert, "-key",
                         certs.client_key, "-tls1_2")
    assert code == 0, out
    # The broker is still serving.
    c = tls_client(broker_mtls, certs)
    c.disconnect()


# MARK: - paho-mqtt


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_paho_over_tls(broker_tls, certs, version):
    sub = tls_client(broker_tls, certs, version=version, cert=False)
    pub = tls_client(broker_tls, certs, version=version, cert=False)
    topic = "paho/" + uuid.uuid4().hex[:8]
    sub.subscribe(topic, qos=1)
    payloads = [os.urandom(n) for n in (1, 100, 20_000, 70_000)]  # the large ones span several TLS records
    for p in payloads:
        pub.publish(topic, p, qos=1)
    got = [m.payload for m in sub.expect(len(payloads))]
    assert got == payloads
    sub.disconnect()
    pub.disconnect()


def test_plain_and_tls_clients_exchange(broker_tls, certs):
    plain = Client(broker_tls, version=5)
    secure = tls_client(broker_tls, certs, cert=False)
    secure.subscribe("mix/#", qos=1)
    plain.subscribe("mix/#", qos=1)
    plain.publish("mix/a", b"from-plain", qos=1)
    secure.publish("mix/b", b"from-tls", qos=1)
    assert sorted(m.payload for m in secure.expect(2)) == [b"from-plain", b"from-tls"]
    assert sorted(m.payload for m in plain.expect(2)) == [b"from-plain", b"from-tls"]
    plain.disconnect()
    secure.disconnect()


def test_tls_connections_handed_between_shards(certs):
    """With 4 shards, most client IDs home on a shard other than the one that accepted them: the TLS session moves
    with the connection, and every client can still publish and receive."""
    b = tls_broker(certs, shards=4)
    try:
        clients = [tls_client(b, certs, version=5 if i % 2 else 4, client_id=f"handoff-{i}", cert=False)
                   for i in range(12)]
        for i, c in enumerate(clients):
            c.subscribe(f"handoff/{i}", qos=1)
        for i, c in enumerate(clients):
            target = (i + 1) % len(clients)
            c.publish(f"handoff/{target}", f"to-{target}".encode() * 1000, qos=1)
        for i, c in enumerate(clients):
            [m] = c.expect(1)
            assert m.payload == f"to-{i}".encode() * 1000
        # The same IDs again: session takeover on the home shard, still over TLS.
        again = tls_client(b, certs, client_id="handoff-3", cert=False)
        again.subscribe("handoff/again", qos=0)
        clients[5].publish("handoff/again", b"x", qos=1)
        assert again.expect(1)[0].payload == b"x"
        for c in clients + [again]:
            c.disconnect()
    finally:
        assert b.stop() == 0, b.output()


def mqtt_subscribe_packet(topic, packet_id=1):
    body = struct.pack(">H", packet_id) + struct.pack(">H", len(topic)) + topic.encode() + b"\x00"
    return bytes([0x82, len(body)]) + body


def mqtt_publish_packet(topic, payload):
    body = struct.pack(">H", len(topic)) + topic.encode() + payload
    return bytes([0x30, len(body)]) + body


@pytest.mark.parametrize("split", [False, True], ids=["one-record", "three-records"])
def test_pipelined_packets_follow_a_handed_off_tls_connection(certs, split):
    """CONNECT, SUBSCRIBE and PUBLISH sent back to back right after the handshake (3.1.1), at 4 shards: what the
    accepting shard had decrypted but not used, and records it had not decrypted yet, reach the home shard."""
    b = tls_broker(certs, shards=4)
    context = ssl.create_default_context(cafile=certs.ca)
    try:
        for i in range(8):
            topic = f"pipe/{i}"
            packets = [mqtt_connect_packet(f"pipelined-{i}"), mqtt_subscribe_packet(topic),
                       mqtt_publish_packet(topic, b"echo-%d" % i)]
            with socket.create_connection(("127.0.0.1", b.tls_port), timeout=TIMEOUT) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as sock:
                    if split:
                        for packet in packets:
                            sock.sendall(packet)  # one TLS record each
                    else:
                        sock.sendall(b"".join(packets))
                    assert read_exactly(sock, 4) == b"\x20\x02\x00\x00"  # CONNACK
                    suback = b"\x90\x03\x00\x01\x00"  # QoS 0 granted
                    echo = mqtt_publish_packet(topic, b"echo-%d" % i)
                    # The broker may send matching messages before the SUBACK (MQTT 3.1.1 section 3.8.4).
                    assert read_exactly(sock, len(suback) + len(echo)) in (suback + echo, echo + suback)
    finally:
        assert b.stop() == 0, b.output()


# MARK: - use_identity_as_username


ACL = f"""\
user {CLIENT_CN}
topic readwrite ident/#
"""


@pytest.mark.parametrize("shards", [1, 4])
def test_identity_as_username_with_acl(certs, tmp_path, shards):
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    b = tls_broker(certs, shards=shards, extra=["--cafile", certs.ca, "--require-certificate", "true",
                                                "--use-identity-as-username", "true", "--acl-file", str(acl),
                                                "--allow-anonymous", "false"])
    try:
        # The client's own user name is replaced by the certificate's CN, whose ACL rules apply.
        c = tls_client(b, certs, version=5, username="somebody-else", password="ignored")
        assert not c.subscribe("ident/#", qos=1)[0].is_failure
        assert c.subscribe("other/#", qos=1)[0].value == 0x87
        c.publish("ident/x", b"mine", qos=1)
        assert c.expect(1)[0].payload == b"mine"
        c.disconnect()
        # 3.1.1 too, and with several client IDs (hand-offs at 4 shards).
        for i in range(4):
            d = tls_client(b, certs, version=4, client_id=f"ident-{i}")
            assert d.subscribe("ident/#", qos=1)[0] == 1
            d.disconnect()
    finally:
        assert b.stop() == 0, b.output()


def test_identity_as_username_without_certificate_is_not_authorized(certs):
    """use_identity_as_username on a listener that does not ask for certificates: no CN, so CONNACK 0x87 / 5, and
    the connection's refusal leaves the broker serving."""
    b = tls_broker(certs, extra=["--use-identity-as-username", "true", "--cafile", certs.ca])
    try:
        for version in (5, 4):
            c = Client(b.tls, version=version, connect=False)
            c.client.tls_set(ca_certs=certs.ca)
            _, reason, _ = c.connect(expect_success=False)
            # paho reports 3.1.1's return code 5 as reason code 0x87 too.
            assert reason.value == 0x87, reason
            c.client.loop_stop()
        plain = Client(b, version=5)  # the plain listener is unaffected
        plain.disconnect()
    finally:
        assert b.stop() == 0, b.output()


# MARK: - Handshake flood


def client_hello_bytes():
    """The first flight of a TLS client, made in memory: sent alone, it leaves the broker mid-handshake."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


@pytest.mark.parametrize("shards", [1, 4])
def test_handshake_flood_does_not_starve_an_established_subscriber(certs, shards):
    """A few hundred TLS connects (complete, abandoned after the ClientHello, garbage), bounded in count and time,
    while an established TLS subscriber receives every QoS 1 message published during the flood."""
    metrics_port = free_port()
    b = tls_broker(certs, shards=shards, extra=["--metrics-port", str(metrics_port)])
    try:
        sub = tls_client(b, certs, version=5, client_id="flood-sub", cert=False)
        pub = tls_client(b, certs, version=5, client_id="flood-pub", cert=False)
        sub.subscribe("flood/t", qos=1)
        hello = client_hello_bytes()
        context = ssl.create_default_context(cafile=certs.ca)
        completed, failed_connects = [0], [0]
        lock = threading.Lock()
        stop_at = time.monotonic() + 60

        def flood(worker, count):
            held = []
            for i in range(count):
                if time.monotonic() > stop_at:
                    break
                kind = i % 3
                try:
                    raw = socket.create_connection(("127.0.0.1", b.tls_port), timeout=TIMEOUT)
                    if kind == 0:
                        with context.wrap_socket(raw, server_hostname="localhost") as s:
                            s.sendall(mqtt_connect_packet(f"flood-{worker}-{i}"))
                            assert read_exactly(s, 4) == b"\x20\x02\x00\x00"
                        with lock:
                            completed[0] += 1
                    elif kind == 1:
                        raw.sendall(hello)  # abandoned mid-handshake; closed later
                        held.append(raw)
                    else:
                        raw.sendall(b"\x16\x03\x01\x00\x05hello-this-is-not-tls")
                        held.append(raw)
                except OSError:
                    with lock:
                        failed_connects[0] += 1
            time.sleep(0.5)
            for s in held:
                s.close()

        workers = [threading.Thread(target=flood, args=(w, 75)) for w in range(4)]
        for w in workers:
            w.start()
        sent = []
        for n in range(200):
            payload = f"msg-{n}".encode()
            pub.publish("flood/t", payload, qos=1)
            sent.append(payload)
        for w in workers:
            w.join(timeout=90)
            assert not w.is_alive(), "flood worker did not finish"
        received = [m.payload for m in sub.expect(len(sent), timeout=60)]
        assert received == sent
        assert completed[0] == 100 and failed_connects[0] == 0, (completed, failed_connects)
        # Handshake counters reached the metrics: 100 flood + 2 clients succeeded; the garbage ones failed.
        deadline = time.monotonic() + TIMEOUT
        while True:
            samples = scrape_tls(metrics_port)
            ok = samples.get('shoal_tls_handshakes_total{result="success"}', 0)
            bad = samples.get('shoal_tls_handshakes_total{result="failure"}', 0)
            if ok >= 102 and bad >= 100:
                break
            assert time.monotonic() < deadline, samples
            time.sleep(0.2)
        sub.disconnect()
        pub.disconnect()
    finally:
        assert b.stop() == 0, b.output()[-3000:]


def scrape_tls(metrics_port):
    body = subprocess.run(["python3", "-c", f"import urllib.request;print(urllib.request.urlopen("
                           f"'http://127.0.0.1:{metrics_port}/metrics',timeout=10).read().decode())"],
                          capture_output=True, text=True, timeout=TIMEOUT).stdout
    samples = {}
    for line in body.splitlines():
        if line.startswith("shoal_tls_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_handshake_burst_is_spread_over_loop_turns(certs):
    """ClientHellos from 150 connections at once on one shard: the shard answers every one of them, handling at
    most its per-turn budget of handshake steps per loop turn and putting the rest off (counted), while an
    established TLS client keeps getting answers."""
    metrics_port = free_port()
    b = tls_broker(certs, shards=1, extra=["--metrics-port", str(metrics_port)])
    try:
        established = tls_client(b, certs, client_id="burst-sub", cert=False)
        established.subscribe("burst/t", qos=1)
        hello = client_hello_bytes()
        deferred = 0
        for attempt in range(3):  # a burst that the kernel happens to trickle in may fit the budget: try again
            sockets = [socket.create_connection(("127.0.0.1", b.tls_port), timeout=TIMEOUT) for _ in range(150)]
            try:
                for s in sockets:
                    s.sendall(hello)
                established.publish("burst/t", f"during-{attempt}".encode(), qos=1)
                for s in sockets:
                    header = read_exactly(s, 5)
                    assert header[0] == 0x16, header  # a handshake record: the ServerHello flight
            finally:
                for s in sockets:
                    s.close()
            assert established.expect(1)[0].payload == f"during-{attempt}".encode()
            # Snapshots lag by up to 250 ms: poll a little.
            deadline = time.monotonic() + 3
            while True:
                samples = scrape_tls(metrics_port)
                deferred = samples.get("shoal_tls_handshakes_deferred_total", 0)
                if deferred > 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if deferred > 0:
                break
        assert deferred > 0, samples
        established.disconnect()
    finally:
        assert b.stop() == 0, b.output()[-3000:]


# MARK: - Reload and startup checks


def test_sighup_reloads_certificates_for_new_connections(certs, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(certs.server_cert, live / "server.crt")
    shutil.copy(certs.server_key, live / "server.key")
    tls_port = free_port()
    b = Broker(shards=2, extra_args=["--tls-port", str(tls_port), "--certfile", str(live / "server.crt"),
                                     "--keyfile", str(live / "server.key")])
    b.tls_port = tls_port
    b.tls = types.SimpleNamespace(port=tls_port)
    try:
        established = tls_client(b, certs, cert=False)
        established.subscribe("reload/#", qos=1)
        fresh = tmp_path / "fresh"
        subprocess.run([os.path.join(ROOT, "scripts", "certs"), str(fresh)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        shutil.copy(fresh / "server.crt", live / "server.crt")
        shutil.copy(fresh / "server.key", live / "server.key")
        b.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while True:
            code, out = s_client(tls_port, "-CAfile", str(fresh / "ca.crt"), "-verify_return_error")
            if code == 0:
                break
            assert time.monotonic() < deadline, out
            time.sleep(0.2)
        code, out = s_client(tls_port, "-CAfile", certs.ca, "-verify_return_error")
        assert code != 0, "the old CA still verifies the new certificate"
        # The connection made before the reload keeps working.
        established.publish("reload/a", b"still-here", qos=1)
        assert established.expect(1)[0].payload == b"still-here"
        # A broken file on reload is refused and the certificates in force stay.
        (live / "server.key").write_text("not a key\n")
        b.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while "TLS reload refused" not in b.output():
            assert time.monotonic() < deadline, b.output()
            time.sleep(0.1)
        code, out = s_client(tls_port, "-CAfile", str(fresh / "ca.crt"), "-verify_return_error")
        assert code == 0, out
        established.disconnect()
    finally:
        assert b.stop() == 0, b.output()


def run_shoal(*args):
    return subprocess.run([shoal_binary(), "--bind", "127.0.0.1", "--port", str(free_port()), *args],
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_startup_refuses_bad_tls_settings(certs, tmp_path):
    port = str(free_port())
    cases = [
        (["--tls-port", port, "--keyfile", certs.server_key], "--certfile"),
        (["--tls-port", port, "--certfile", certs.server_cert], "--keyfile"),
        (["--certfile", certs.server_cert, "--keyfile", certs.server_key], "--certfile: needs --tls-port"),
        (["--cafile", certs.ca], "--cafile: needs --tls-port"),
        (["--tls-port", port, "--certfile", str(tmp_path / "missing.crt"), "--keyfile", certs.server_key],
         "--certfile"),
        (["--tls-port", port, "--certfile", certs.server_key, "--keyfile", certs.server_key], "--certfile"),
        (["--tls-port", port, "--certfile", certs.server_cert, "--keyfile", certs.mismatched_key], "--keyfile"),
        (["--tls-port", port, "--certfile", certs.server_cert, "--keyfile", certs.server_cert], "--keyfile"),
        (["--tls-port", port, "--certfile", certs.server_cert, "--keyfile", certs.server_key,
          "--cafile", str(tmp_path / "missing-ca.crt")], "--cafile"),
        (["--tls-port", port, "--certfile", certs.server_cert, "--keyfile", certs.server_key,
          "--require-certificate", "true"], "--require-certificate"),
        (["--tls-port", port, "--certfile", certs.server_cert, "--keyfile", certs.server_key,
          "--tls-version", "tlsv1.1"], "--tls-version"),
        (["--tls-port", port, "--certfile", certs.server_cert, "--keyfile", certs.server_key,
          "--ciphers", "NOT-A-CIPHER"], "--ciphers"),
        (["--tls-port", port, "--certfile", certs.server_cert, "--keyfile", certs.server_key,
          "--tls-groups", "nonsense"], "--tls-groups"),
    ]
    for args, expected in cases:
        result = run_shoal(*args)
        assert result.returncode != 0, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
