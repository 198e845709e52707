"""Configuration file, reload, logging and installation against the real binary: `shoal -c FILE` applies its
listener and limits, flags override it, a bad file stops startup naming FILE:LINE: setting, Mosquitto's own
files load or name the unsupported setting, SIGHUP changes limits and the log level without dropping a client,
connection and disconnection lines carry client ID and address, `log_dest file` is reopened after logrotate,
and scripts/install fills a temporary prefix."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import TIMEOUT, Broker, Client, ROOT, free_port, shoal_binary


class ConfigBroker(Broker):
    """A `shoal` started with a configuration file (and optional flags); `port` is the MQTT port to use."""

    def __init__(self, conf, port, flags=()):
        self.port = port
        self.launch(["-c", str(conf), *flags])

    def wait_for(self, text, after=0):
        """Waits until `text` appears in the output past offset `after`; returns the output."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            output = self.output()
            if text in output[after:]:
                return output
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the log:\n{self.output()[after:]}")


def run_shoal(*args):
    """Runs shoal to completion (it must exit by itself) and returns (exit status, stderr+stdout)."""
    result = subprocess.run([shoal_binary(), *args], capture_output=True, text=True, timeout=TIMEOUT)
    return result.returncode, result.stdout + result.stderr


def test_config_file_sets_listener_shards_and_limits(tmp_path):
    """A file's listener, shard count and limits apply: CONNACK announces max_packet_size and max_keepalive as
    Maximum Packet Size and Server Keep Alive, and a bigger PUBLISH is refused with 0x95."""
    port = free_port()
    conf = tmp_path / "shoal.conf"
    conf.write_text(f"# test\nlistener {port} 127.0.0.1\nshards 2\nmax_packet_size 2000\nmax_keepalive 30\n"
                    "sys_interval 0\n")
    b = ConfigBroker(conf, port)
    try:
        assert f"listening on 127.0.0.1:{port} with 2 shards" in b.output()
        assert f"configuration read from {conf}" in b.output()
        client = Client(b, version=5, keepalive=120)
        assert client.connack_properties.MaximumPacketSize == 2000
        assert client.connack_properties.ServerKeepAlive == 30
        client.client.publish("big", b"x" * 3000, qos=0)
        reason, _ = client.disconnects.get(timeout=TIMEOUT)
        assert reason.value == 0x95
        client.client.loop_stop()
    finally:
        assert b.stop() == 0


def test_flags_override_the_file_wherever_they_stand(tmp_path):
    """--port and --max-packet-size win over the file's listener port and max_packet_size, before or after -c."""
    file_port, flag_port = free_port(), free_port()
    conf = tmp_path / "shoal.conf"
    conf.write_text(f"listener {file_port} 127.0.0.1\nmax_packet_size 2000\nshards 1\n")
    b = ConfigBroker(conf, flag_port, flags=["--port", str(flag_port), "--max-packet-size", "4000"])
    try:
        client = Client(b, version=5)
        assert client.connack_properties.MaximumPacketSize == 4000
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", file_port), timeout=1).close()
        client.disconnect()
    finally:
        assert b.stop() == 0


@pytest.mark.parametrize("text,line,setting,reason", [
    ("listener 1883 127.0.0.1\nfrobnicate 1\n", 2, "frobnicate", "unknown setting"),
    ("\n# comment\nmax_queued_messages many\n", 3, "max_queued_messages",
     "'many' is not an integer in 0...10000000"),
    ("persistence true\n", 1, "persistence", "Mosquitto setting persistence is not supported by Shoal"),
    ("log_dest syslog\n", 1, "log_dest", "log_dest syslog is not supported by Shoal (stderr, stdout or file PATH)"),
    ("connection bridge-1\naddress 10.0.0.1\n", 1, "connection",
     "Mosquitto setting connection is not supported by Shoal"),
])
def test_bad_configuration_stops_startup_naming_file_line_and_setting(tmp_path, text, line, setting, reason):
    """An unknown, invalid or unsupported setting: exit status 2 and `shoal: FILE:LINE: setting: reason`."""
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    status, output = run_shoal("-c", str(conf))
    assert status == 2
    assert f"shoal: {conf}:{line}: {setting}: {reason}" in output


def test_missing_configuration_file_is_named(tmp_path):
    status, output = run_shoal("--config", str(tmp_path / "none.conf"))
    assert status == 2
    assert f"shoal: {tmp_path / 'none.conf'}: cannot read the configuration file: No such file or directory" in output


def test_mosquitto_sample_files_load_or_name_the_unsupported_setting():
    """Debian's /etc/mosquitto/mosquitto.conf stops at its first setting Shoal lacks (pid_file); the example
    file (every setting commented out) starts a broker with Shoal's defaults (address and port from flags)."""
    shipped = "/etc/mosquitto/mosquitto.conf"
    example = "/usr/share/doc/mosquitto/examples/mosquitto.conf"
    assert os.path.exists(shipped) and os.path.exists(example), "the mosquitto package is installed by scripts/test"
    status, output = run_shoal("-c", shipped)
    assert status == 2
    assert f"{shipped}:" in output and ": pid_file: Mosquitto setting pid_file is not supported by Shoal" in output
    port = free_port()
    b = ConfigBroker(example, port, flags=["--bind", "127.0.0.1", "--port", str(port), "--shards", "1"])
    try:
        client = Client(b, version=4)
        client.disconnect()
    finally:
        assert b.stop() == 0


def test_sighup_reload_changes_limits_and_log_level_without_dropping_clients(tmp_path):
    """SIGHUP with an edited file: max_packet_size and the log level change at once and are logged, a shard
    count change is logged as needing a restart, the connected subscriber stays connected and keeps receiving,
    and a new client hears the new limit in its CONNACK. A broken file is refused and changes nothing."""
    port = free_port()
    conf = tmp_path / "shoal.conf"
    base = f"listener {port} 127.0.0.1\nshards 2\nsys_interval 0\n"
    conf.write_text(base + "max_packet_size 5000\nlog_type information\n")
    b = ConfigBroker(conf, port)
    try:
        subscriber = Client(b, version=5, client_id="reload-sub")
        subscriber.subscribe("r/#", 1)
        publisher = Client(b, version=5, client_id="reload-pub")
        publisher.publish("r/1", b"before", qos=1)
        assert subscriber.expect(1)[0].payload == b"before"
        assert "applied reload generation" not in b.output()

        mark = len(b.output())
        conf.write_text(f"listener {port} 127.0.0.1\nshards 3\nsys_interval 0\nmax_packet_size 1000\nlog_type all\n")
        b.process.send_signal(signal.SIGHUP)
        output = b.wait_for("configuration reloaded", mark)
        assert "info reload: max_packet_size changed from 5000 to 1000" in output
        assert "info reload: log_type changed from info to debug" in output
        assert "warning reload: shards changed from 2 to 3 in the configuration, but needs a restart: still 2" in output
        b.wait_for("applied reload generation", mark)

        publisher.publish("r/2", b"after", qos=1)
        assert subscriber.expect(1)[0].payload == b"after"
        newcomer = Client(b, version=5)
        assert newcomer.connack_properties.MaximumPacketSize == 1000
        assert subscriber.disconnects.empty() and publisher.disconnects.empty()

        mark = len(b.output())
        conf.write_text(base + "max_packet_size lots\n")
        b.process.send_signal(signal.SIGHUP)
        output = b.wait_for("configuration reload refused", mark)
        assert f"{conf}:4: max_packet_size: 'lots' is not an integer in 0...268435455" in output
        publisher.publish("r/3", b"still", qos=1)
        assert subscriber.expect(1)[0].payload == b"still"
        assert Client(b, version=5).connack_properties.MaximumPacketSize == 1000
        for client in (subscriber, publisher, newcomer):
            client.disconnect()
    finally:
        assert b.stop() == 0


def test_connection_and_disconnection_lines_name_client_address_and_reason(tmp_path):
    """Info lines per connection (client ID, peer address and port, protocol, shard, clean, keepalive) and per
    disconnection (client ID, address, reason), also for a client handed off to its home shard."""
    port = free_port()
    conf = tmp_path / "shoal.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nshards 4\nsys_interval 0\n")
    b = ConfigBroker(conf, port)
    try:
        clients = []
        for index in range(4):
            client = Client(b, version=4, client_id=f"log-client-{index}", keepalive=42)
            local = client.client.socket().getsockname()
            clients.append((client, f"127.0.0.1:{local[1]}"))
        for index, (client, address) in enumerate(clients):
            b.wait_for(f"info client log-client-{index} connected from {address} as MQTT 3.1.1 (shard ")
            assert "clean=true, keepalive=42)" in b.output()
        clients[0][0].disconnect()
        b.wait_for(f"info client log-client-0 disconnected from {clients[0][1]}: client sent DISCONNECT (shard ")
        clients[1][0].drop()
        b.wait_for(f"info client log-client-1 disconnected from {clients[1][1]}: "
                   "connection closed by the client without DISCONNECT")
        v5 = Client(b, version=5, client_id="log-v5", clean=False)
        b.wait_for("info client log-v5 connected from 127.0.0.1:")
        assert "as MQTT 5.0 (shard " in b.output()
        v5.disconnect()
        for index, (client, address) in enumerate(clients[2:], start=2):
            client.disconnect()
            b.wait_for(f"info client log-client-{index} disconnected from {address}: client sent DISCONNECT")
    finally:
        assert b.stop() == 0


def test_log_file_is_appended_and_reopened_on_sighup(tmp_path):
    """log_dest file: lines go to the file (appended to what it held); after logrotate renames it, SIGHUP
    reopens the path and new lines go to the new file."""
    port = free_port()
    log = tmp_path / "shoal.log"
    log.write_text("older line\n")
    conf = tmp_path / "shoal.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nshards 1\nsys_interval 0\nlog_dest file {log}\n")
    b = ConfigBroker(conf, port)
    try:
        deadline = time.monotonic() + TIMEOUT
        while "listening on" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text().startswith("older line\n")
        assert "listening on" in log.read_text()
        assert "listening on" not in b.output()
        rotated = tmp_path / "shoal.log.1"
        log.rename(rotated)
        b.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while not (log.exists() and "configuration reloaded" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        client = Client(b, version=4, client_id="after-rotate")
        client.disconnect()
        deadline = time.monotonic() + TIMEOUT
        while "after-rotate disconnected" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "client after-rotate connected" in log.read_text()
        assert "after-rotate" not in rotated.read_text()
        assert "listening on" in rotated.read_text()
    finally:
        assert b.stop() == 0


def test_install_into_a_temporary_prefix(tmp_path):
    """scripts/install PREFIX (with the release binary already built) installs bin/shoal, the example
    configuration (kept on a second run) and a systemd unit pointing at both; systemd-analyze accepts the unit
    when it is available."""
    prefix = tmp_path / "prefix"
    env = dict(os.environ, SHOAL_INSTALL_BINARY=shoal_binary())
    result = subprocess.run([os.path.join(ROOT, "scripts", "install"), str(prefix)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    binary = prefix / "bin" / "shoal"
    conf = prefix / "etc" / "shoal" / "shoal.conf"
    unit = prefix / "lib" / "systemd" / "system" / "shoal.service"
    assert os.access(binary, os.X_OK)
    assert subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.startswith("shoal ")
    assert conf.read_text() == open(os.path.join(ROOT, "scripts", "shoal.conf")).read()
    text = unit.read_text()
    assert f"ExecStart={binary} -c {conf}\n" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                    "LimitMEMLOCK=infinity", "LimitNOFILE="):
        assert setting in text
    assert "@" not in text.replace("$MAINPID", "")
    # The installed example configuration starts a broker (address and port from flags).
    port = free_port()
    b = ConfigBroker(conf, port, flags=["--bind", "127.0.0.1", "--port", str(port), "--shards", "1"])
    assert b.stop() == 0
    conf.write_text("# edited by the operator\n")
    result = subprocess.run([os.path.join(ROOT, "scripts", "install"), str(prefix)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert conf.read_text() == "# edited by the operator\n"
    assert (conf.parent / "shoal.conf.example").exists()
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                                timeout=60)
        # Only the unit's own problems count (the binary's path and the user exist only on a real install).
        problems = [line for line in (verify.stdout + verify.stderr).splitlines()
                    if "shoal.service:" in line]
        assert problems == [], problems


def test_max_connections_and_cpus_from_the_file(tmp_path):
    """max_connections caps the broker's MQTT connections (one shard here, so exactly N), refusing the next at
    accept; cpus pins to the listed CPUs, and a CPU outside the affinity mask stops startup naming cpus."""
    port = free_port()
    conf = tmp_path / "shoal.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nshards 1\ncpus 0\nmax_connections 2\nsys_interval 0\n")
    b = ConfigBroker(conf, port)
    try:
        first, second = Client(b, version=4), Client(b, version=4)
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as refused:
            # CONNECT 3.1.1, client ID "x": the broker closes the socket without answering (a close with the
            # CONNECT unread may reach us as a reset).
            try:
                refused.sendall(bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 1]) + b"x")
                assert refused.recv(16) == b""
            except ConnectionResetError:
                pass
        first.disconnect()
        second.disconnect()
    finally:
        assert b.stop() == 0
    conf.write_text(f"listener {port} 127.0.0.1\ncpus 4095\n")
    status, output = run_shoal("-c", str(conf))
    assert status == 1
    assert "shoal: cpus: CPU 4095 is not in this process's affinity mask" in output
