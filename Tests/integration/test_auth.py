"""Authentication and authorization against the real binary: password files made by mosquitto_passwd and by
`shoal passwd`, allow_anonymous, the ACL allow/deny matrix (mosquitto_pub/mosquitto_sub and paho-mqtt, 3.1.1 and
5.0, 1 and 4 shards), and SIGHUP reload of the ACL without dropping a connected client."""
import signal
import socket
import struct
import subprocess
import time
import uuid

import pytest

from conftest import TIMEOUT, Broker, Client, shoal_binary

PASSWORDS = {"alice": "wonderland", "bob": "builder", "dev": "device-pw"}

ACL = """\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read sensors/#
topic deny sensors/secret

user bob
topic write sensors/#
topic read public/#

pattern readwrite devices/%c/#
pattern read inbox/%u
"""


@pytest.fixture
def security_files(tmp_path):
    password_file = tmp_path / "passwords"
    first = True
    for user, password in PASSWORDS.items():
        args = ["mosquitto_passwd", "-b", str(password_file), user, password]
        if first:
            args.insert(1, "-c")
            first = False
        subprocess.run(args, check=True, timeout=TIMEOUT)
    acl_file = tmp_path / "acl"
    acl_file.write_text(ACL)
    return password_file, acl_file


@pytest.fixture(params=[1, 4], ids=["shards1", "shards4"])
def secured(request, security_files):
    password_file, acl_file = security_files
    b = Broker(shards=request.param, extra_args=["--password-file", str(password_file), "--acl-file", str(acl_file),
                                                 "--allow-anonymous", "true"])
    b.password_file, b.acl_file = password_file, acl_file
    yield b
    assert b.stop() == 0


@pytest.fixture(params=[1, 4], ids=["shards1", "shards4"])
def closed_broker(request, security_files):
    """Password file, no ACL, anonymous clients refused."""
    password_file, _ = security_files
    b = Broker(shards=request.param, extra_args=["--password-file", str(password_file), "--allow-anonymous", "false"])
    yield b
    assert b.stop() == 0


def raw_connect(port, version, client_id, username=None, password=None):
    """Sends a CONNECT over a plain socket and returns the CONNACK bytes and the socket."""
    flags = 0x02
    payload = struct.pack(">H", len(client_id)) + client_id.encode()
    if username is not None:
        flags |= 0x80
        payload += struct.pack(">H", len(username)) + username.encode()
    if password is not None:
        flags |= 0x40
        payload += struct.pack(">H", len(password)) + password.encode()
    header = b"\x00\x04MQTT" + bytes([version, flags]) + b"\x00\x3c" + (b"\x00" if version == 5 else b"")
    body = header + payload
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(bytes([0x10, len(body)]) + body)
    data = b""
    while len(data) < 2 or len(data) < 2 + data[1]:
        chunk = sock.recv(64)
        if not chunk:
            break
        data += chunk
    return data, sock


def closed_by_peer(sock):
    sock.settimeout(TIMEOUT)
    try:
        return sock.recv(64) == b""
    except ConnectionResetError:
        return True


def mosquitto_pub(broker, topic, message, version="mqttv5", user=None, password=None, qos=1, client_id=None):
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", version, "-t", topic, "-m", message,
            "-q", str(qos)]
    if client_id:
        args += ["-i", client_id]
    if user is not None:
        args += ["-u", user]
    if password is not None:
        args += ["-P", password]
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)


def sub_process(broker, topic, version="mqttv5", user=None, password=None, count=1, client_id=None):
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", version, "-t", topic, "-C", str(count),
            "-W", str(int(TIMEOUT)), "-v"]
    if client_id:
        args += ["-i", client_id]
    if user is not None:
        args += ["-u", user]
    if password is not None:
        args += ["-P", password]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def client_ids(prefix, count=8):
    # Several IDs: with 4 shards most of them home on a shard other than the accepting one.
    return [f"{prefix}-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]


# MARK: - Authentication


@pytest.mark.parametrize("version", [4, 5])
def test_connack_codes_for_credentials(closed_broker, version):
    """Good credentials connect; a wrong password or unknown user gets 0x86 (v5) / 4 (3.1.1), anonymous gets 0x87
    / 5; refused connections are closed and logged with client ID and peer address."""
    good, bad, anon = (b"\x20\x03\x00\x00", b"\x20\x03\x00\x86\x00", b"\x20\x03\x00\x87\x00") if version == 5 \
        else (b"\x20\x02\x00\x00", b"\x20\x02\x00\x04", b"\x20\x02\x00\x05")
    for client_id in client_ids("good", 4):
        data, sock = raw_connect(closed_broker.port, version, client_id, "alice", "wonderland")
        assert data[0] == 0x20 and data[3] == 0x00 if version == 5 else data == good
        sock.close()
    for client_id in client_ids("bad", 4):
        data, sock = raw_connect(closed_broker.port, version, client_id, "alice", "wrong")
        assert data == bad
        assert closed_by_peer(sock)
        sock.close()
    data, sock = raw_connect(closed_broker.port, version, "who", "mallory", "wonderland")
    assert data == bad
    sock.close()
    data, sock = raw_connect(closed_broker.port, version, "nopw", "alice")
    assert data == bad
    sock.close()
    data, sock = raw_connect(closed_broker.port, version, "anon-client")
    assert data == anon
    assert closed_by_peer(sock)
    sock.close()
    deadline = time.monotonic() + TIMEOUT
    while "anon-client" not in closed_broker.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = closed_broker.output()
    assert "refused client 'anon-client' from 127.0.0.1:" in log and "anonymous clients not allowed" in log
    assert "refused client 'who' from 127.0.0.1:" in log and "bad user name or password" in log


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_clients_with_password(closed_broker, version):
    """mosquitto_pub/mosquitto_sub with -u/-P against a password file made by mosquitto_passwd ($7$)."""
    sub = sub_process(closed_broker, "t/pw", version=version, user="bob", password="builder")
    time.sleep(0.5)
    deadline = time.monotonic() + TIMEOUT
    while sub.poll() is None and time.monotonic() < deadline:
        ok = mosquitto_pub(closed_broker, "t/pw", "hello", version=version, user="alice", password="wonderland")
        assert ok.returncode == 0, ok.stderr
        try:
            out, _ = sub.communicate(timeout=1)
            break
        except subprocess.TimeoutExpired:
            continue
    assert sub.returncode == 0
    assert "t/pw hello" in out
    wrong = mosquitto_pub(closed_broker, "t/pw", "x", version=version, user="alice", password="nope")
    assert wrong.returncode != 0
    assert "not authori" in wrong.stderr.lower() or "bad user name or password" in wrong.stderr.lower()
    anonymous = mosquitto_pub(closed_broker, "t/pw", "x", version=version)
    assert anonymous.returncode != 0


def test_sha512_and_shoal_passwd_files(tmp_path):
    """A file mixing mosquitto_passwd -H sha512 ($6$) lines and `shoal passwd` lines (password from -b and from
    stdin) is accepted."""
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-H", "sha512", "-b", str(path), "old", "oldpw"], check=True)
    subprocess.run([shoal_binary(), "passwd", "-b", str(path), "new", "newpw"], check=True, timeout=TIMEOUT)
    subprocess.run([shoal_binary(), "passwd", str(path), "piped"], input="pipedpw\n", text=True, check=True,
                   timeout=TIMEOUT)
    text = path.read_text()
    assert text.startswith("old:$6$") and "\nnew:$7$101$" in text and "\npiped:$7$101$" in text
    b = Broker(shards=2, extra_args=["--password-file", str(path), "--allow-anonymous", "false"])
    try:
        for user, password in [("old", "oldpw"), ("new", "newpw"), ("piped", "pipedpw")]:
            result = mosquitto_pub(b, "t", "x", user=user, password=password)
            assert result.returncode == 0, (user, result.stderr)
        assert mosquitto_pub(b, "t", "x", user="new", password="oldpw").returncode != 0
    finally:
        assert b.stop() == 0


def test_bad_security_files_stop_startup(tmp_path):
    """A bad ACL or password file stops startup with exit 1 and a message naming the setting, file and line."""
    acl = tmp_path / "acl"
    acl.write_text("topic read a/#\ntopic sideways b\n")
    result = subprocess.run([shoal_binary(), "--port", "0", "--bind", "127.0.0.1", "--acl-file", str(acl)],
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 1
    assert f"acl_file: {acl}:2: invalid access type 'sideways'" in result.stderr
    pw = tmp_path / "pw"
    pw.write_text("alice:plain\n")
    result = subprocess.run([shoal_binary(), "--port", "0", "--bind", "127.0.0.1", "--password-file", str(pw)],
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 1
    assert f"password_file: {pw}:1: unknown password hash format" in result.stderr


# MARK: - Authorization


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_codes(secured, version):
    """SUBACK per filter: granted where the ACL lets the client read something the filter matches, 0x87 (v5) /
    0x80 (3.1.1) for that filter only otherwise."""
    alice = Client(secured, version=version, username="alice", password="wonderland")
    try:
        codes = alice.subscribe([("alice/#", 1), ("secret/#", 1), ("sensors/secret", 1), ("#", 0)])
        values = [c.value if hasattr(c, "value") else c for c in codes]
        failure = 0x87 if version == 5 else 0x80
        assert values == [1, failure, failure, 0]
    finally:
        alice.disconnect()


@pytest.mark.parametrize("version", [4, 5])
def test_acl_matrix(secured, version):
    """Who receives what: alice reads sensors/# except sensors/secret and readwrite alice/#; bob writes sensors/#
    and reads public/#; anonymous reads public/#; patterns give devices/%c/# and inbox/%u. A `#` subscriber gets
    only what it may read."""
    for alice_id in client_ids("alice", 2):
        alice = Client(secured, version=version, client_id=alice_id, username="alice", password="wonderland")
        anonymous = Client(secured, version=version)
        bob = Client(secured, version=version, client_id="bob-dev", username="bob", password="builder")
        try:
            alice.subscribe("#", 1)
            anonymous.subscribe("#", 1)
            bob.subscribe("inbox/bob", 1)
            bob.publish("sensors/temp", b"21", qos=1)           # bob may write sensors/#
            bob.publish("sensors/secret", b"s", qos=1)          # written, but alice may not read it
            bob.publish("public/news", b"n", qos=1)             # bob may not write public/#: dropped
            alice.publish("alice/notes", b"mine", qos=1)        # alice readwrite alice/#
            alice.publish(f"devices/{alice_id}/state", b"on", qos=1)  # pattern %c
            alice.publish("inbox/bob", b"hi bob", qos=1)        # alice may not write inbox/bob
            got = sorted((m.topic, m.payload) for m in alice.expect(3))
            assert got == [("alice/notes", b"mine"), (f"devices/{alice_id}/state", b"on"), ("sensors/temp", b"21")]
            alice.expect_none(0.5)
            anonymous.expect_none(0.5)
            bob.expect_none(0.2)
        finally:
            for c in (alice, anonymous, bob):
                c.disconnect()


def test_v5_publish_refused_gets_0x87(secured):
    """v5: a QoS 1 publish to a topic the client may not write is answered PUBACK 0x87, QoS 2 PUBREC 0x87."""
    data, sock = raw_connect(secured.port, 5, "raw-bob", "bob", "builder")
    assert data[3] == 0
    topic = b"public/x"
    body = struct.pack(">H", len(topic)) + topic + b"\x00\x05" + b"\x00" + b"payload"
    sock.sendall(bytes([0x32, len(body)]) + body)
    assert sock.recv(16) == b"\x40\x03\x00\x05\x87"
    body = struct.pack(">H", len(topic)) + topic + b"\x00\x06" + b"\x00" + b"payload"
    sock.sendall(bytes([0x34, len(body)]) + body)
    assert sock.recv(16) == b"\x50\x03\x00\x06\x87"
    sock.close()


def test_v311_publish_refused_is_acknowledged_and_dropped(secured):
    """3.1.1: mosquitto_pub to a topic bob may not write succeeds (PUBACK) but nobody receives it."""
    watcher = Client(secured, version=4, username="alice", password="wonderland")
    try:
        watcher.subscribe("alice/#", 1)
        result = mosquitto_pub(secured, "alice/x", "from-bob", version="mqttv311", user="bob", password="builder")
        assert result.returncode == 0, result.stderr
        watcher.expect_none(1.0)
        result = mosquitto_pub(secured, "alice/x", "from-alice", version="mqttv311", user="alice",
                               password="wonderland")
        assert result.returncode == 0
        assert watcher.expect(1)[0].payload == b"from-alice"
    finally:
        watcher.disconnect()


# MARK: - Reload


def test_sighup_reloads_acl_without_dropping_clients(security_files):
    """SIGHUP: a changed ACL applies to connected clients (the subscriber stays connected and starts receiving a
    topic it could not read before); a broken ACL is refused with a logged error and the previous one kept."""
    password_file, acl_file = security_files
    b = Broker(shards=4, extra_args=["--password-file", str(password_file), "--acl-file", str(acl_file)])
    try:
        subscriber = Client(b, version=5, username="alice", password="wonderland")
        subscriber.subscribe("#", 1)
        publisher = Client(b, version=5, username="bob", password="builder")
        publisher.publish("sensors/secret", b"before", qos=1)
        subscriber.expect_none(0.5)

        acl_file.write_text(ACL.replace("topic deny sensors/secret\n", ""))
        b.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while "security reloaded" not in b.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "security reloaded" in b.output()
        received = []
        deadline = time.monotonic() + TIMEOUT
        while not received and time.monotonic() < deadline:
            publisher.publish("sensors/secret", b"after", qos=1)
            try:
                received = subscriber.expect(1, timeout=0.5)
            except Exception:
                pass
        assert received and received[0].payload == b"after"

        acl_file.write_text("topic bogus line\n")
        b.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while "security reload refused" not in b.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"acl_file: {acl_file}:1: invalid access type 'bogus'" in b.output()
        publisher.publish("sensors/temp", b"still", qos=1)
        while True:
            message = subscriber.expect(1)[0]
            if message.payload == b"still":
                break
        assert subscriber.disconnects.empty() and publisher.disconnects.empty()
        subscriber.disconnect()
        publisher.disconnect()
    finally:
        assert b.stop() == 0
