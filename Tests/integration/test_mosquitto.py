"""Mosquitto's own command-line clients (mosquitto_pub / mosquitto_sub 2.0) against the real broker at one and at
four shards: retained messages with 5.0 properties, and persistent sessions in both protocol versions."""
import subprocess

import pytest



def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30)


def test_retained_message_with_v5_properties(broker):
    # Proves: a retained v5 message from mosquitto_pub, with content type, user property and message expiry,
    # reaches a later mosquitto_sub with RETAIN set, its properties intact and the expiry at most what was sent.
    port = str(broker.port)
    pub = run("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-r", "-t", "mqr/t",
              "-m", "hello", "-D", "publish", "content-type", "text/x", "-D", "publish", "user-property", "k", "v",
              "-D", "publish", "message-expiry-interval", "100")
    assert pub.returncode == 0, pub.stderr
    sub = run("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "mqr/t", "-C", "1",
              "-W", "20", "-F", "%r|%q|%C|%P|%E|%p")
    assert sub.returncode == 0, sub.stderr
    retain, qos, content_type, user_property, expiry, payload = sub.stdout.strip().split("|")
    assert (retain, qos, content_type, user_property, payload) == ("1", "1", "text/x", "k:v", "hello")
    assert 0 < int(expiry) <= 100
    clear = run("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-r", "-t", "mqr/t", "-n")
    assert clear.returncode == 0, clear.stderr
    empty = run("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "mqr/t", "-C", "1", "-W", "2")
    assert empty.stdout == ""


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_persistent_session_with_mosquitto_sub(broker, version):
    # Proves: mosquitto_sub -c (clean session 0 / session expiry in 5.0) subscribes and leaves; QoS 1 messages
    # published meanwhile are queued and delivered, in order, when it comes back with the same client ID.
    port = str(broker.port)
    client_id = f"mq-persist-{version}"
    session = ["-c", "-i", client_id] + (["-x", "60"] if version == "mqttv5" else [])
    first = run("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", version, "-q", "1", "-t", f"mqs/{version}",
                "-E", *session)
    assert first.returncode == 0, first.stderr
    for index in range(3):
        pub = run("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", version, "-q", "1", "-t",
                  f"mqs/{version}", "-m", f"m{index}")
        assert pub.returncode == 0, pub.stderr
    again = run("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", version, "-q", "1", "-t",
                f"mqs/{version}", "-C", "3", "-W", "20", *session)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["m0", "m1", "m2"]
