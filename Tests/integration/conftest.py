"""Fixtures for integration tests: the real `shoal` binary on 127.0.0.1 with a free port, and
synchronous wrappers around paho-mqtt so a test reads as a sequence of steps.

Every broker a test starts is stopped by the fixture (SIGTERM, then SIGKILL after a bound). Every wait
has a generous timeout: these tests must hold on a loaded 2-core machine.
"""
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 15.0


def shoal_binary():
    path = os.environ.get("SHOAL_BINARY") or os.path.join(ROOT, ".build", "release", "shoal")
    if not os.path.exists(path):
        pytest.fail(f"shoal binary not found at {path}: build with `swift build -c release --product shoal`")
    return path


def homing_hash(data):
    """The broker's StableHash.homing: FNV-1a 64 followed by the SplitMix64 finaliser (ShardID.swift)."""
    mask = (1 << 64) - 1
    value = 0xCBF29CE484222325
    for byte in data:
        value ^= byte
        value = (value * 0x100000001B3) & mask
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & mask
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & mask
    return value ^ (value >> 31)


def home_client_id(prefix, shard, shards):
    """A client ID starting with `prefix` whose session lives on `shard` of `shards` (to place clients on chosen
    shards: cross-shard delivery, takeover across shards)."""
    for index in range(100_000):
        candidate = f"{prefix}-{index}"
        if homing_hash(candidate.encode()) % shards == shard % shards:
            return candidate
    raise AssertionError("no client ID found")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A running `shoal` process on 127.0.0.1:port."""

    def __init__(self, shards=1, extra_args=()):
        self.port = free_port()
        self.shards = shards
        self.launch(["--bind", "127.0.0.1", "--port", str(self.port), "--shards", str(shards), *extra_args])

    def launch(self, arguments):
        """Starts `shoal ARGUMENTS` and waits until it accepts connections on `self.port`."""
        self.args = [shoal_binary(), *arguments]
        self.log = open(os.path.join("/tmp", f"shoal-test-{self.port}.log"), "w+")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"shoal exited with {self.process.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("shoal did not start listening in time")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


@pytest.fixture(params=[1, 4], ids=["shards1", "shards4"])
def broker(request):
    b = Broker(shards=request.param)
    yield b
    code = b.stop()
    assert code == 0, f"shoal exited with {code}"


@pytest.fixture
def broker1():
    b = Broker(shards=1)
    yield b
    assert b.stop() == 0


@pytest.fixture
def broker4():
    b = Broker(shards=4)
    yield b
    assert b.stop() == 0


class Client:
    """A paho-mqtt client driven synchronously: each call waits for its acknowledgement."""

    def __init__(self, broker, version=5, client_id=None, clean=True, keepalive=60, will=None, properties=None,
                 username=None, password=None, connect=True):
        self.broker = broker
        self.version = version
        self.client_id = client_id if client_id is not None else "t-" + uuid.uuid4().hex[:12]
        protocol = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}[version]
        kwargs = {"client_id": self.client_id, "protocol": protocol}
        if version != 5:
            kwargs["clean_session"] = clean
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        self.clean = clean
        self.keepalive = keepalive
        self.connect_properties = properties
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = {}
        self.unsubacks = {}
        self.disconnects = queue.Queue()
        self.lock = threading.Lock()
        self.events = {}
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe
        self.client.on_disconnect = self._on_disconnect
        if will is not None:
            topic, payload, qos, retain, will_properties = (list(will) + [None] * 5)[:5]
            self.client.will_set(topic, payload, qos or 0, bool(retain), properties=will_properties)
        if username is not None:
            self.client.username_pw_set(username, password)
        if connect:
            self.connect()

    def _event(self, mid):
        with self.lock:
            return self.events.setdefault(mid, threading.Event())

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connacks.put((flags, reason_code, properties))

    def _on_message(self, client, userdata, message):
        self.messages.put(message)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subacks[mid] = reason_codes
        self._event(("sub", mid)).set()

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):
        self.unsubacks[mid] = reason_codes
        self._event(("unsub", mid)).set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnects.put((reason_code, properties))

    def connect(self, expect_success=True):
        kwargs = {"keepalive": self.keepalive}
        if self.version == 5:
            kwargs["clean_start"] = self.clean
            if self.connect_properties is not None:
                kwargs["properties"] = self.connect_properties
        self.client.connect("127.0.0.1", self.broker.port, **kwargs)
        self.client.loop_start()
        flags, reason_code, properties = self.connacks.get(timeout=TIMEOUT)
        if expect_success:
            assert not reason_code.is_failure, f"CONNACK {reason_code}"
        self.session_present = flags.session_present
        self.connack_properties = properties
        self.connack_reason = reason_code
        return flags, reason_code, properties

    def subscribe(self, topic, qos=0, options=None, properties=None):
        if options is not None:
            result, mid = self.client.subscribe(topic, options=options, properties=properties)
        else:
            result, mid = self.client.subscribe(topic, qos, properties=properties)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert self._event(("sub", mid)).wait(TIMEOUT), "no SUBACK"
        return self.subacks[mid]

    def unsubscribe(self, topic):
        result, mid = self.client.unsubscribe(topic)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert self._event(("unsub", mid)).wait(TIMEOUT), "no UNSUBACK"
        return self.unsubacks[mid]

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=TIMEOUT)
        assert info.is_published(), "publish not acknowledged"
        return info

    def expect(self, count=1, timeout=TIMEOUT):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} messages, got {len(out)}: {[m.topic for m in out]}")
            out.append(self.messages.get(timeout=remaining))
        return out

    def expect_none(self, wait=1.0):
        try:
            message = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {message.topic}: {message.payload!r}")

    def disconnect(self, properties=None):
        self.client.disconnect(properties=properties)
        self.client.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT (so the will is published)."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def properties(packet_type, **values):
    p = Properties(packet_type)
    for key, value in values.items():
        setattr(p, key, value)
    return p


PUBLISH = PacketTypes.PUBLISH
CONNECT = PacketTypes.CONNECT
SUBSCRIBE = PacketTypes.SUBSCRIBE
DISCONNECT = PacketTypes.DISCONNECT
WILLMESSAGE = PacketTypes.WILLMESSAGE
