"""A broker that refuses delivery is said, not silent: a Mosquitto of the test's own with a password file and an ACL,
the real MQTT client and relay on a real SQLite outbox, and the real `station` command in a process of its own.

Mosquitto answers a wrong password (and a user it does not know, and a client id it does not allow) with CONNACK
0x87 Not authorised, and a publish its ACL denies with PUBACK 0x87. 0x86 and 0x85, which other brokers send, come
from a one-packet MQTT 5 answerer on a real socket (`refusing_broker`).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.devices import MqttPublisher
from drivers.mqtt import ConnectFailed, MqttClient, MqttEvent
from simulators.printer import PrinterSimulator
from simulators.scanner import ScannerSimulator
from station.relay import DeliveryProblem, Relay, RelaySettings, Topics
from station.store import Store
from tests.integration.line_harness import write_config
from tests.integration.mqtt_fixtures import MOSQUITTO, Broker, free_port, unique, wait_until
from tests.integration.test_relay import Observer, event_ids_of, make_outbox, outbox_rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
SITE = "hue"
STATION_PASSWORD = "đúng-mật-khẩu 1"   # the password the broker knows for user "station"


def set_password(passwd: Path, user: str, password: str) -> None:
    create = [] if passwd.exists() else ["-c"]
    subprocess.run([MOSQUITTO_PASSWD, *create, "-b", str(passwd), user, password], check=True, capture_output=True)


@dataclass
class SecuredBroker:
    """Mosquitto without anonymous access: users "station" and "central" in a password file, rights in an ACL."""

    broker: Broker
    passwd: Path
    acl: Path
    prefix: str

    @property
    def url(self) -> str:
        return self.broker.url

    def write_acl(self, *, station_may_publish_events: bool) -> None:
        rules = ["user central", f"topic readwrite {self.prefix}/#",
                 "user station", f"topic read {self.prefix}/+/+/acks", f"topic readwrite {self.prefix}/+/+/status"]
        if station_may_publish_events:
            rules.append(f"topic write {self.prefix}/+/+/events")
        self.acl.write_text("\n".join(rules) + "\n", encoding="utf-8")


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[SecuredBroker]:
    if not (os.path.exists(MOSQUITTO) and os.path.exists(MOSQUITTO_PASSWD)):
        pytest.skip("mosquitto and mosquitto_passwd are needed")
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    set_password(passwd, "station", STATION_PASSWORD)
    set_password(passwd, "central", "central-secret")
    secured = SecuredBroker(Broker(tmp_path / "broker", anonymous=False,
                                   extra_config=f"password_file {passwd}\nacl_file {acl}\n"),
                            passwd, acl, unique("sec"))
    secured.write_acl(station_may_publish_events=True)
    with secured.broker:
        yield secured


class RefusalCounter(queue.Queue):  # type: ignore[type-arg]
    """The MQTT client's event queue, counting the connection attempts the broker refused."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def put(self, item: MqttEvent, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, ConnectFailed) and item.refused:
            self.refused += 1
        super().put(item, block, timeout)


class Delivery:
    """Store + MqttClient + MqttPublisher + Relay, wired as app.runtime wires them, with the station's credentials;
    broker-ack delivery (a subscriber stands in for the central server)."""

    def __init__(self, url: str, db: Path, topics: Topics, *, username: str | None, password: str | None,
                 client_id: str | None = None) -> None:
        self.store = Store(db)
        self.events = RefusalCounter()
        self.client = MqttClient(url, client_id or unique("station"), username=username, password=password,
                                 session_expiry=0, reconnect_min_delay=0.1, reconnect_max_delay=0.2,
                                 events=self.events)
        self.announced: list[DeliveryProblem] = []
        self.relay = Relay(self.store, MqttPublisher(self.client), topics,
                           RelaySettings(broker_ack_confirms=True, retry_initial_s=0.1, retry_max_s=0.2),
                           on_problem=self.announced.append)

    def __enter__(self) -> Delivery:
        self.client.start()
        self.relay.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.relay.stop()
        self.client.stop()
        self.store.close()

    def open_problems(self) -> list[tuple[str, str]]:
        """The delivery problems open on disk, read back through a store of their own (as `station status` would)."""
        with Store(self.store.path) as other:
            return [(p.code, p.detail) for p in other.delivery_problems()]


def test_a_wrong_password_is_announced_once_recorded_and_cleared_when_the_broker_accepts(
        secured: SecuredBroker, tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    expected = make_outbox(db, 5)
    topics = Topics.for_station(secured.prefix, SITE, unique("line"))
    with Delivery(secured.url, db, topics, username="station", password="sai-mật-khẩu") as station:
        assert wait_until(lambda: station.events.refused >= 3, timeout=10), "paho stopped trying"
        assert wait_until(lambda: station.relay.problems != [], timeout=5)
        # Announced once for the problem, not once for every refused attempt.
        assert [(p.code, p.reason) for p in station.announced] == [("mqtt_not_authorised", "Not authorized (0x87)")]
        assert [(p.code, p.reason) for p in station.relay.problems] == [("mqtt_not_authorised",
                                                                          "Not authorized (0x87)")]
        assert "broker refused the connection: Not authorized (0x87)" in station.relay.stats.last_error
        assert station.open_problems() == [("mqtt_not_authorised", "Not authorized (0x87)")]
        rows = outbox_rows(db)
        assert {(r["state"], r["attempts"]) for r in rows} == {("pending", 0)}, "events stay in the outbox"

        # The technician gives the broker the password the station has: no restart of the station is needed.
        observer = Observer(secured.url.replace("mqtt://", "mqtt://central:central-secret@"), topics.events)
        try:
            set_password(secured.passwd, "station", "sai-mật-khẩu")
            secured.broker.reload()
            assert wait_until(station.relay.drained, timeout=15), outbox_rows(db)
            assert wait_until(lambda: {i for m in observer.collect() for i in event_ids_of(m)} == set(expected))
        finally:
            observer.stop()
        assert station.relay.problems == []
        assert station.open_problems() == []
        assert len(station.announced) == 1


def test_a_publish_the_acl_denies_is_announced_with_its_topic_and_cleared_once_allowed(
        secured: SecuredBroker, tmp_path: Path) -> None:
    secured.write_acl(station_may_publish_events=False)
    secured.broker.reload()
    db = tmp_path / "station.db"
    expected = make_outbox(db, 5)
    topics = Topics.for_station(secured.prefix, SITE, unique("line"))
    observer = Observer(secured.url.replace("mqtt://", "mqtt://central:central-secret@"), topics.events)
    try:
        with Delivery(secured.url, db, topics, username="station", password=STATION_PASSWORD) as station:
            assert station.client.wait_connected(5), "the login itself is accepted"
            assert wait_until(lambda: all(r["attempts"] >= 2 for r in outbox_rows(db)), timeout=10)
            assert [(p.code, p.reason, p.topic) for p in station.announced] == [
                ("mqtt_publish_denied", "Not authorized (0x87)", topics.events)]
            assert station.open_problems() == [("mqtt_publish_denied", f"Not authorized (0x87) for {topics.events}")]
            assert {r["state"] for r in outbox_rows(db)} == {"pending"}

            secured.write_acl(station_may_publish_events=True)
            secured.broker.reload()
            assert wait_until(station.relay.drained, timeout=15), outbox_rows(db)
            assert station.relay.problems == [] and station.open_problems() == []
            assert len(station.announced) == 1
        assert wait_until(lambda: {i for m in observer.collect() for i in event_ids_of(m)} == set(expected))
    finally:
        observer.stop()


@pytest.fixture
def refusing_broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """A TCP listener that answers every MQTT 5 CONNECT with a CONNACK refusing it with the given reason code,
    as brokers other than Mosquitto do (0x86 for a bad password, 0x85 for a client id they do not accept)."""
    code: int = request.param
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)                                  # the CONNECT
                    conn.sendall(bytes([0x20, 3, 0x00, code, 0x00]))  # CONNACK: no session, reason, no properties
                    conn.recv(1)                                     # until the client closes
                except OSError:
                    pass

    thread = threading.Thread(target=answer, name="refusing-broker", daemon=True)
    thread.start()
    try:
        yield f"mqtt://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.mark.parametrize("refusing_broker, code, reason", [
    (0x86, "mqtt_bad_credentials", "Bad user name or password (0x86)"),
    (0x85, "mqtt_client_id_refused", "Client identifier not valid (0x85)"),
    (0x8A, "mqtt_not_authorised", "Banned (0x8A)"),
    (0x9F, "mqtt_connection_refused", "Connection rate exceeded (0x9F)"),
], indirect=["refusing_broker"])
def test_each_connack_refusal_names_its_cause(refusing_broker: str, tmp_path: Path, code: str, reason: str) -> None:
    db = tmp_path / "station.db"
    make_outbox(db, 1)
    topics = Topics.for_station("refused", SITE, unique("line"))
    with Delivery(refusing_broker, db, topics, username="station", password="x") as station:
        assert wait_until(lambda: station.announced != [], timeout=10)
        assert [(p.code, p.reason) for p in station.announced] == [(code, reason)]
        assert station.open_problems() == [(code, reason)]


# -- the station command, as a technician on a headless Pi runs it -----------------------------------------------------


def station_command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The printer and verification scanner simulators (the scanner reads what the printer prints)."""
    printer = PrinterSimulator(port=0).start()
    scanner = ScannerSimulator(link=str(tmp_path / "scanner"), read_delay=0.01, seed=7).start()
    printer.add_listener(scanner.on_label)
    try:
        yield printer.url, f"serial://{tmp_path / 'scanner'}"
    finally:
        scanner.stop()
        printer.stop()


def test_headless_run_with_a_wrong_password_says_so_in_the_log_the_summary_the_exit_code_and_status(
        secured: SecuredBroker, devices: tuple[str, str], tmp_path: Path) -> None:
    printer_url, scanner_url = devices
    overrides: dict[str, Any] = {"mqtt.username": "station", "mqtt.password": "sai-mật-khẩu",
                                 "mqtt.delivery": "broker-ack", "mqtt.retry_max_s": 0.5,
                                 "station.id": "line-1"}
    config = write_config(tmp_path, printer_url, scanner_url, secured.url, secured.prefix, overrides)

    # A refused login ends the wait for the server at once (a 600 s drain would outlast the test's timeout).
    run = station_command("run", "--headless", "--config", str(config), "--count", "3", "--lot", "MX2611A",
                          "--drain-timeout", "600")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "activated 3" in run.stdout
    # The log names the cause and what to check, in Vietnamese and in English.
    assert "[mqtt_not_authorised] Máy chủ MQTT không cho trạm đăng nhập" in run.stderr
    assert "check mqtt.username / mqtt.password" in run.stderr and "Not authorized (0x87)" in run.stderr
    assert "user 'station'" in run.stderr and str(config) in run.stderr
    summary = run.stdout[run.stdout.index("summary:"):]
    assert "delivery refused by the broker, events kept in the outbox: [mqtt_not_authorised]" in summary
    assert "sai-mật-khẩu" not in run.stdout + run.stderr, "the password itself is never printed"

    status = station_command("status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    assert "outbox pending: 7" in status.stdout   # 3 activations, the batch and its diary's 3 stages (issue 10)
    assert "delivery refused by the broker since" in status.stdout
    assert "[mqtt_not_authorised] Máy chủ MQTT không cho trạm đăng nhập" in status.stdout
    assert "Not authorized (0x87)" in status.stdout

    # The technician corrects the password; the next run delivers what waited, and status says all is well.
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["mqtt"]["password"] = STATION_PASSWORD
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    events = f"{secured.prefix}/test-site/line-1/events"
    observer = Observer(secured.url.replace("mqtt://", "mqtt://central:central-secret@"), events)
    try:
        again = station_command("run", "--headless", "--config", str(config), "--count", "1", "--lot", "MX2611A",
                                "--drain-timeout", "30")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "delivery refused" not in again.stdout
    finally:
        observer.stop()
    status = station_command("status", "--config", str(config))
    assert "outbox pending: 0" in status.stdout and "outbox sent: 0" in status.stdout
    assert "delivery: no refusal by the broker recorded" in status.stdout


def test_the_retained_status_and_the_line_alarms_carry_an_acl_denial(secured: SecuredBroker, tmp_path: Path) -> None:
    """The status topic is allowed, the events topic is not: the central team sees why nothing comes."""
    from app.runtime import Station
    from station.config import load_config

    secured.write_acl(station_may_publish_events=False)
    secured.broker.reload()
    config = load_config(write_config(
        tmp_path, f"tcp://127.0.0.1:{free_port()}", f"serial://{tmp_path / 'no-scanner'}", secured.url, secured.prefix,
        {"mqtt.username": "station", "mqtt.password": STATION_PASSWORD, "mqtt.delivery": "broker-ack",
         "mqtt.status_interval_s": 0.5, "station.id": "line-1"}))
    make_outbox(config.database.path, 2)
    status_topic = f"{secured.prefix}/test-site/line-1/status"
    observer = Observer(secured.url.replace("mqtt://", "mqtt://central:central-secret@"), status_topic)
    station = Station(config)
    try:
        station.start()

        def denial() -> dict[str, Any] | None:
            for message in observer.collect():
                broker = json.loads(message.payload).get("devices", {}).get("broker", {})
                if broker.get("problems"):
                    return broker
            return None

        assert wait_until(lambda: denial() is not None, timeout=15)
        broker = denial()
        assert broker is not None and broker["connected"] is True
        events = f"{secured.prefix}/test-site/line-1/events"
        assert [(p["code"], p["detail"]) for p in broker["problems"]] == [
            ("mqtt_publish_denied", f"Not authorized (0x87) for {events}")]
        alarms = [a for a in station.line.alarms if a.code == "mqtt_publish_denied"]
        assert len(alarms) == 1 and events in alarms[0].detail and "user 'station'" in alarms[0].detail
        assert alarms[0].text.vi.startswith("Máy chủ MQTT không cho trạm gửi sự kiện (ACL)")
    finally:
        station.stop()
        observer.stop()
