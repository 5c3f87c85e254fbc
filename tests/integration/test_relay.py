"""The outbox relay end to end: real Mosquitto brokers, real SQLite files, the real central ingest.

Rows reach the outbox the way the line engine writes them (product, batch, allocate, sent to printer, activate
with its EPCIS event); a Relay with the MQTT driver behind the MqttPublisher adapter delivers them. Each test uses
its own topic prefix and client ids, because the machine's broker at 127.0.0.1:1883 is shared.

What is due when (the ack wait doubling up to retry_max_s, the back-off after a refused publish) is asserted on a
FakeClock the test moves, with the relay turned by the test (`Relay.step`), never on real seconds.

The drain-rate benchmark (5,000 events) runs only with RELAY_BENCH=1 and prints its figures (`pytest -s`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.devices import MqttPublisher
from drivers.mqtt import MessageReceived, MqttClient, Subscribed
from station import epcis
from station.domain import Batch, DeliveryState, Product
from station.gs1 import digital_link
from station.relay import Relay, RelaySettings, Topics
from station.serials import SerialGenerator
from station.store import Store, utcnow
from tests.integration.central_fixtures import central_on
from tests.integration.mqtt_fixtures import (  # noqa: F401  (fixtures)
    MOSQUITTO,
    Broker,
    broker,
    broker_url,
    next_event,
    no_leaked_threads,
    unique,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaked_threads", "no_leaked_relay_threads")]

GTIN = "08938603001013"
LOT = "MX2611A"
RESOLVER = "truyxuat.example.vn"
SITE = "hue"
READ_POINT = f"https://{RESOLVER}/station/{SITE}/line-1"
TEMPLATE_ROWS = 300


# -- the outbox, written the way the line engine writes it ---------------------------------------------------


def fill_outbox(store: Store, count: int, lot: str = LOT) -> list[str]:
    """Activate `count` stamps of a batch (created if new), each with its outbox row; returns their eventIDs."""
    store.sync_products([Product(GTIN, "Mè xừng Thông Hương 250g", "Cơ sở Thông Hương", shelf_life_days=180)])
    batch = store.find_batch(GTIN, lot) or store.create_batch(
        Batch(None, GTIN, lot, dt.date(2026, 11, 29), dt.date(2027, 5, 28))
    )
    assert batch.id is not None
    serials = SerialGenerator(12)
    event_ids = []
    for _ in range(count):
        stamp = store.allocate_stamp(batch.id, serials.next,
                                     lambda s: digital_link(RESOLVER, GTIN, lot, s, batch.expiry_date))
        store.mark_sent_to_printer(stamp.id)  # type: ignore[arg-type]
        event = epcis.activation_event(
            gtin=GTIN, serial=stamp.serial, lot=lot, expiry=batch.expiry_date,
            event_time=dt.datetime.now(dt.timezone.utc), read_point=READ_POINT,
        )
        store.activate(stamp.id, stamp.uri, event)  # type: ignore[arg-type]
        event_ids.append(event["eventID"])
    return event_ids


def make_outbox(path: Path, count: int, lot: str = LOT) -> list[str]:
    with Store(path) as store:
        return fill_outbox(store, count, lot)


def copy_outbox(source: Path, target: Path) -> Path:
    """A closed store's file (checkpointed: its WAL is gone) copied for another test."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def bulk_outbox(path: Path, count: int, first_id: int | None = None) -> list[str]:
    """`count` pending activation rows written straight into the outbox table in one transaction (the line's
    plain-SQL commit writes the same columns): for backlogs too big to activate stamp by stamp in a test. Each
    event is a real one (station.epcis, valid against the schema) with its own eventID and serial. Row ids
    follow the table's unless first_id is given."""
    Store(path).close()  # creates the file and runs the migrations
    model = epcis.activation_event(gtin=GTIN, serial="SERIAL0", lot=LOT, expiry=dt.date(2027, 5, 28),
                                   event_time=dt.datetime.now(dt.timezone.utc), read_point=READ_POINT)
    serials = SerialGenerator(12)
    now = (dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1))
    created = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = []
    for _ in range(count):
        event = dict(model, eventID=f"urn:uuid:{uuid.uuid4()}",
                     epcList=[model["epcList"][0].replace("SERIAL0", serials.next())])
        row_id = None if first_id is None else first_id + len(rows)
        rows.append((row_id, event["eventID"], json.dumps(event, ensure_ascii=False, separators=(",", ":")),
                     created, created))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO outbox (id, event_id, stamp_id, kind, event_json, state, attempts, created_at, "
            "next_attempt_at, last_error) VALUES (?, ?, NULL, 'activation', ?, 'pending', 0, ?, ?, '')", rows)
    return [r[1] for r in rows]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """300 activations written once per module; tests that need them copy the file."""
    path = tmp_path_factory.mktemp("outbox") / "template.db"
    return path, make_outbox(path, TEMPLATE_ROWS)


def outbox_rows(path: Path) -> list[dict[str, Any]]:
    """The outbox as it is on disk, read on a connection of our own (not through the Store under test)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT id, event_id, state, attempts, last_error, next_attempt_at FROM outbox ORDER BY id")]


def states(path: Path) -> Counter[str]:
    return Counter(r["state"] for r in outbox_rows(path))


# -- the station's delivery side and observers ---------------------------------------------------------------


class CountingPublisher(MqttPublisher):
    """MqttPublisher that records what the relay hands it: events publishes, the window size, the caller's thread."""

    def __init__(self, client: MqttClient, events_topic: str) -> None:
        super().__init__(client)
        self.events_topic = events_topic
        self.relay: Relay | None = None
        self.events_published = 0
        self.max_window = 0
        self.max_paho_held = 0
        self.threads: set[str] = set()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        mid = super().publish(topic, payload, qos, retain)
        self.threads.add(threading.current_thread().name)
        if topic == self.events_topic:
            self.events_published += 1
            if self.relay is not None:
                # Called on the relay's thread, before it records this message: its window is len + 1.
                self.max_window = max(self.max_window, len(self.relay._inflight) + 1)
            self.max_paho_held = max(self.max_paho_held, self.paho_held())
        return mid

    def paho_held(self) -> int:
        """Events messages paho holds unacknowledged (queued or in flight), whatever the relay believes."""
        paho = self.client._client
        with paho._out_message_mutex:
            return sum(1 for m in paho._out_messages.values() if m.topic == self.events_topic)


class FakeClock:
    """The relay's two clocks, moved only by the test: monotonic seconds from 0, and the naive UTC time of the
    outbox schedule, `start` + those seconds (start defaults to now, so rows written before are due)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.start = start or utcnow()
        self.seconds = 0.0

    def monotonic(self) -> float:
        return self.seconds

    def utcnow(self) -> dt.datetime:
        return self.at(self.seconds)

    def at(self, seconds: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=seconds)

    def set(self, seconds: float) -> None:
        assert seconds >= self.seconds, "a monotonic clock does not go back"
        self.seconds = seconds


def step_until(relay: Relay, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Turn the relay on the test's thread until predicate holds. A wait for events (PUBACKs and acks come on
    paho's thread, writes on the store's): nothing is asserted on how long it takes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        relay.step()
    return True


def stored_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")


class Station:
    """Store + MqttClient + MqttPublisher + Relay on one SQLite file, wired as app.runtime wires them."""

    def __init__(self, url: str, db: Path, topics: Topics, settings: RelaySettings, *,
                 client_id: str | None = None, session_expiry: int = 0, keepalive: int = 30,
                 clock: FakeClock | None = None) -> None:
        self.db = db
        self.topics = topics
        self.store = Store(db)
        self.client = MqttClient(
            url, client_id or unique("station"), session_expiry=session_expiry, keepalive=keepalive,
            reconnect_min_delay=0.1,
            reconnect_max_delay=0.5, max_inflight=settings.max_inflight, max_queued=settings.max_inflight * 2 + 10,
        )
        self.publisher = CountingPublisher(self.client, topics.events)
        clocks = {} if clock is None else {"clock": clock.monotonic, "wall_clock": clock.utcnow}
        self.relay = Relay(self.store, self.publisher, topics, settings, sender=READ_POINT, **clocks)
        self.publisher.relay = self.relay
        self._running = False

    def start(self, wait: bool = True, *, thread: bool = True) -> Station:
        """Connect and deliver; thread=False: the test turns the relay itself (begin() is done here)."""
        self.client.start()
        if thread:
            self.relay.start()
        self._running = True
        if wait:
            assert self.client.wait_connected(5), "station client did not connect"
        if not thread:
            self.relay.begin()
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            self.relay.stop()
            self.client.stop()
        self.store.close()

    def counts(self) -> dict[DeliveryState, int]:
        return self.store.outbox_counts()


class Observer:
    """A plain MQTT client on one topic filter, keeping every message it gets."""

    def __init__(self, url: str, topic: str) -> None:
        self.client = MqttClient(url, unique("observer"), session_expiry=0, reconnect_min_delay=0.1)
        self.client.subscribe(topic, qos=1)
        self.client.start()
        assert next_event(self.client.events, Subscribed).ok
        self.messages: list[MessageReceived] = []

    def collect(self) -> list[MessageReceived]:
        while not self.client.events.empty():
            event = self.client.events.get_nowait()
            if isinstance(event, MessageReceived):
                self.messages.append(event)
        return self.messages

    def stop(self) -> None:
        self.client.stop()


def event_ids_of(message: MessageReceived) -> list[str]:
    return [e["eventID"] for e in json.loads(message.payload)["epcisBody"]["eventList"]]


@pytest.fixture
def no_leaked_relay_threads() -> Iterator[None]:
    yield

    def leaked() -> list[str]:
        return [t.name for t in threading.enumerate()
                if t.name.startswith(("outbox-relay", "db-writer")) and t.is_alive()]

    wait_until(lambda: not leaked(), timeout=2.0)
    assert not leaked(), f"threads left running: {leaked()}"


@pytest.fixture
def prefix() -> str:
    return unique("rly")


@pytest.fixture
def topics(prefix: str) -> Topics:
    return Topics.for_station(prefix, SITE, unique("line"))


@pytest.fixture
def stations() -> Iterator[list[Station]]:
    """Every Station made in a test, stopped at its end even when an assertion failed."""
    made: list[Station] = []
    yield made
    for station in made:
        station.stop()


FAST = RelaySettings(retry_initial_s=0.2, retry_max_s=1.0, status_interval_s=1.0)


# -- 1. everything arrives once, confirmed, valid --------------------------------------------------------------


def test_300_events_reach_the_server_once_and_are_confirmed(
    broker_url: str, prefix: str, topics: Topics, template: tuple[Path, list[str]], tmp_path: Path,
    stations: list[Station],
) -> None:
    db = copy_outbox(template[0], tmp_path / "station.db")
    expected = template[1]
    observer = Observer(broker_url, topics.events)
    try:
        with central_on(broker_url, prefix, tmp_path, session_expiry_s=0) as central:
            station = Station(broker_url, db, topics, FAST)
            stations.append(station)
            station.start()
            assert station.relay.wait_drained(30), f"not drained: {station.counts()}"

            assert central.count() == TEMPLATE_ROWS
            assert sorted(central.event_ids()) == sorted(expected)
            assert central.duplicates() == 0, "a healthy run resends nothing"
            assert central.rejected() == []
            assert wait_until(lambda: len(observer.collect()) >= TEMPLATE_ROWS, timeout=5)
    finally:
        observer.stop()

    rows = outbox_rows(db)
    assert {r["state"] for r in rows} == {"confirmed"}
    assert {r["attempts"] for r in rows} == {1}
    assert {r["last_error"] for r in rows} == {""}
    seen: Counter[str] = Counter()
    for message in observer.messages:
        document = json.loads(message.payload)
        epcis.validate(document)  # raises EpcisInvalid with the schema's message
        assert document["sender"] == READ_POINT
        assert not message.retain
        seen.update(event_ids_of(message))
    assert seen == Counter(expected), "each event published exactly once"


# -- 2. the window -----------------------------------------------------------------------------------------------


def test_window_never_exceeds_max_inflight_and_the_drain_completes_after_a_hung_broker(
    broker: Broker, prefix: str, topics: Topics, template: tuple[Path, list[str]], tmp_path: Path,
    stations: list[Station],
) -> None:
    db = copy_outbox(template[0], tmp_path / "station.db")
    window = 10
    with central_on(broker.url, prefix, tmp_path) as central:
        central.set_delay(0.003)
        station = Station(broker.url, db, topics, RelaySettings(max_inflight=window, retry_initial_s=0.2))
        stations.append(station)
        station.start()
        assert wait_until(lambda: central.count() >= 30, timeout=10)

        broker.pause()  # SIGSTOP: sockets stay open, no PUBACK comes back
        try:
            # The line goes on while the broker hangs. (The relay may well have handed over the whole template
            # already: the broker PUBACKs at once, however slowly the server stores.)
            later = fill_outbox(station.store, 3 * window, lot="MX2611B")
            station.relay.notify()

            # The relay fills the window and no more (publisher.max_window, checked at every publish, says it
            # never went beyond), however much of the backlog is left. PUBACKs the broker wrote before it stopped
            # may still trickle in and move the window on: only a row still in the window after the outbox was
            # read cannot have had its PUBACK when it was read.
            def in_window() -> set[int]:
                return {i for item in dict(station.relay._inflight).values() for i in item.ids}

            seen: dict[str, Any] = {}

            def stalled_with_full_window() -> bool:
                before = in_window()
                seen["rows"] = outbox_rows(db)
                seen["waiting"] = before & in_window()
                return len(before) == window and len(seen["waiting"]) == window

            assert wait_until(stalled_with_full_window, timeout=5), seen.get("waiting")
            assert station.counts()[DeliveryState.CONFIRMED] < TEMPLATE_ROWS + len(later)
            # Handed over but not PUBACKed: still pending on disk (nothing is sent before its PUBACK).
            assert {r["state"] for r in seen["rows"] if r["id"] in seen["waiting"]} == {"pending"}
        finally:
            broker.resume()

        assert station.relay.wait_drained(30), f"not drained: {station.counts()}"
        assert central.count() == TEMPLATE_ROWS + len(later)
        assert sorted(central.event_ids()) == sorted(template[1] + later)
    assert station.publisher.max_window == window
    assert station.publisher.max_paho_held <= window
    print(f"\nwindow {window}: {station.publisher.events_published} events messages for {TEMPLATE_ROWS} rows")


def test_a_connection_lost_with_a_full_window_is_not_handed_to_paho_twice(
    broker: Broker, prefix: str, topics: Topics, template: tuple[Path, list[str]], tmp_path: Path,
    stations: list[Station],
) -> None:
    """paho keeps unacknowledged QoS 1 messages over a reconnect and sends them again itself (same mid, DUP):
    the relay must count them in its window until their PUBACK, not publish the same rows once more on top."""
    db = copy_outbox(template[0], tmp_path / "station.db")
    window = 10
    with central_on(broker.url, prefix, tmp_path) as central:
        central.set_delay(0.003)
        station = Station(broker.url, db, topics, RelaySettings(max_inflight=window, retry_initial_s=0.2),
                          keepalive=1, session_expiry=60)
        stations.append(station)
        station.start()
        assert wait_until(lambda: central.count() >= 30, timeout=10)
        broker.pause()
        try:
            later = fill_outbox(station.store, 3 * window, lot="MX2611B")  # the line goes on meanwhile
            station.relay.notify()
            assert wait_until(lambda: len(station.relay._inflight) == window, timeout=5)
            # keepalive 1 s: paho gives up on the silent broker and drops the connection with a full window
            assert wait_until(lambda: not station.relay.stats.connected, timeout=10)
        finally:
            broker.resume()
        assert station.relay.wait_drained(30), f"not drained: {station.counts()}"
        assert sorted(central.event_ids()) == sorted(template[1] + later)
    assert station.publisher.max_paho_held <= window, station.publisher.max_paho_held


# -- 3. broker outage --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outage", ["stop", "kill"])
def test_broker_outage_loses_nothing_and_duplicates_are_dropped_by_event_id(
    outage: str, broker: Broker, prefix: str, topics: Topics, template: tuple[Path, list[str]], tmp_path: Path,
    stations: list[Station],
) -> None:
    """stop: SIGTERM, Mosquitto saves its sessions. kill: SIGKILL, every session and queued message is lost."""
    db = copy_outbox(template[0], tmp_path / "station.db")
    with central_on(broker.url, prefix, tmp_path) as central:
        central.set_delay(0.003)
        station = Station(broker.url, db, topics, RelaySettings(max_inflight=20, ack_timeout_s=2.0,
                                                                retry_initial_s=0.1, retry_max_s=0.5),
                          session_expiry=3600)
        stations.append(station)
        station.start()
        assert wait_until(lambda: central.count() >= 60, timeout=10)
        getattr(broker, outage)()
        assert wait_until(lambda: not station.client.connected, timeout=5)
        assert central.count() < TEMPLATE_ROWS, "the outage came too late to test anything"
        broker.start()  # same port, same persistence directory

        assert station.relay.wait_drained(30), f"not drained: {station.counts()}"
        assert central.count() == TEMPLATE_ROWS
        assert sorted(central.event_ids()) == sorted(template[1])
        duplicates = central.duplicates()
    assert set(states(db)) == {"confirmed"}
    # paho retransmits what it held after reconnecting: the relay must not hand it a second copy on top.
    assert station.publisher.max_paho_held <= 20
    print(f"\nbroker {outage}: {TEMPLATE_ROWS} events stored once each, {duplicates} duplicates dropped by eventID, "
          f"{station.publisher.events_published} events publishes")


# -- 4. a server that stores but does not ack ---------------------------------------------------------------------


def test_unacked_events_are_resent_with_the_same_event_ids_until_the_server_acks(
    broker_url: str, prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    db = tmp_path / "station.db"
    expected = make_outbox(db, 20)
    observer = Observer(broker_url, topics.events)
    try:
        with central_on(broker_url, prefix, tmp_path, session_expiry_s=0, send_acks=False) as central:
            station = Station(broker_url, db, topics, RelaySettings(ack_timeout_s=0.5, retry_max_s=2.0))
            stations.append(station)
            station.start()

            def resent_twice() -> bool:
                rows = outbox_rows(db)
                return all(r["state"] == "sent" and r["attempts"] >= 3 for r in rows)

            assert wait_until(resent_twice, timeout=15, interval=0.05), outbox_rows(db)
            assert central.count() == 20
            assert wait_until(lambda: central.duplicates() >= 40, timeout=5), central.duplicates()
            assert station.counts()[DeliveryState.CONFIRMED] == 0

            central.set_ack(True)
            assert station.relay.wait_drained(15), f"not drained: {station.counts()}"
    finally:
        observer.stop()

    assert set(states(db)) == {"confirmed"}
    copies: dict[str, list[dict[str, Any]]] = {}
    for message in observer.collect():
        for event in json.loads(message.payload)["epcisBody"]["eventList"]:
            copies.setdefault(event["eventID"], []).append(event)
    assert sorted(copies) == sorted(expected), "no new eventIDs on resend"
    for event_id, sent in copies.items():
        assert len(sent) >= 3, event_id
        assert all(e == sent[0] for e in sent), f"{event_id} changed between resends"


def test_resends_to_a_server_that_does_not_ack_wait_ack_timeout_then_twice_that_up_to_retry_max(
    broker_url: str, prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    """ack_timeout_s 0.3, retry_max_s 1.0: sends at 0, 0.3, 0.9, 1.9, 2.9 on the relay's clock (waits 0.3, 0.6, then
    1.0 capped), not every 0.3 s; and not a moment before each is due."""
    db = tmp_path / "station.db"
    make_outbox(db, 5)
    clock = FakeClock()
    with central_on(broker_url, prefix, tmp_path, session_expiry_s=0, send_acks=False) as central:
        station = Station(broker_url, db, topics, RelaySettings(ack_timeout_s=0.3, retry_max_s=1.0), clock=clock)
        stations.append(station)
        relay = station.start(thread=False).relay
        sends = [0.0, 0.3, 0.9, 1.9, 2.9]
        for n, at in enumerate(sends, start=1):
            if n > 1:
                clock.set(round(at - 0.001, 3))  # a millisecond early: the outbox says not yet
                relay.notify()
                relay.step()
                relay.step()
                assert {r["attempts"] for r in outbox_rows(db)} == {n - 1}
                assert station.publisher.events_published == 5 * (n - 1)
            clock.set(at)
            relay.notify()
            assert step_until(relay, lambda: {r["attempts"] for r in outbox_rows(db)} == {n}), outbox_rows(db)
            rows = outbox_rows(db)
            assert {r["state"] for r in rows} == {"sent"}
            wait = min(0.3 * 2 ** (n - 1), 1.0)
            assert {stored_time(r["next_attempt_at"]) for r in rows} == {clock.at(round(at + wait, 3))}, rows
        assert station.publisher.events_published == 5 * len(sends)
        assert wait_until(lambda: central.duplicates() == 5 * (len(sends) - 1), timeout=5), central.duplicates()
        assert central.count() == 5 and station.counts()[DeliveryState.CONFIRMED] == 0


def refused_attempts(db: Path, clock: FakeClock, relay: Relay, sends: list[float], error: str) -> None:
    """Each refused send is tried again after the back-off (retry_initial_s 0.1 doubling, retry_max_s 0.4) on the
    relay's clock, and not a moment before; the rows stay pending and say why."""
    for n, at in enumerate(sends, start=1):
        if n > 1:
            clock.set(round(at - 0.001, 3))
            relay.notify()
            relay.step()
            relay.step()
            assert {r["attempts"] for r in outbox_rows(db)} == {n - 1}
        clock.set(at)
        relay.notify()
        assert step_until(relay, lambda: {r["attempts"] for r in outbox_rows(db)} == {n}), outbox_rows(db)
        rows = outbox_rows(db)
        assert {r["state"] for r in rows} == {"pending"}, "a refused message is not sent"
        assert all(error in r["last_error"] for r in rows), rows
        backoff = min(0.1 * 2 ** (n - 1), 0.4)
        assert {stored_time(r["next_attempt_at"]) for r in rows} == {clock.at(round(at + backoff, 3))}, rows


# -- 5. relay restart ----------------------------------------------------------------------------------------------


def test_restart_delivers_what_the_previous_run_left_unconfirmed(
    broker_url: str, prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    db = tmp_path / "station.db"
    first_batch = make_outbox(db, 30)
    client_id = unique("station")
    with central_on(broker_url, prefix, tmp_path, session_expiry_s=0, send_acks=False) as central:
        before = Station(broker_url, db, topics, RelaySettings(ack_timeout_s=0.5), client_id=client_id)
        stations.append(before)
        before.start()
        assert wait_until(lambda: states(db) == Counter(sent=30), timeout=10), states(db)
        before.stop()
        stations.remove(before)

        # While the relay is down the line goes on: these rows were never published at all.
        second_batch = make_outbox(db, 10, lot="MX2611B")
        assert states(db) == Counter(sent=30, pending=10)
        central.set_ack(True)

        # The new run's own ack timeout is long: what it delivers is due from the schedule kept on disk.
        after = Station(broker_url, db, topics, RelaySettings(ack_timeout_s=30.0), client_id=client_id)
        stations.append(after)
        after.start()
        assert after.relay.wait_drained(15), f"not drained: {after.counts()}"
        assert sorted(central.event_ids()) == sorted(first_batch + second_batch)
    assert set(states(db)) == {"confirmed"}


# -- 6. broker-ack delivery and 0x10 ------------------------------------------------------------------------------


def test_broker_ack_delivery_confirms_on_puback_but_not_when_nobody_subscribes(
    broker: Broker, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    """No central server at all. Mosquitto answers 0x10 No matching subscribers: the message went nowhere, so it
    is not delivered; the row stays pending, backs off, and says why. Once somebody subscribes, PUBACK confirms."""
    db = tmp_path / "station.db"
    expected = make_outbox(db, 10)
    clock = FakeClock()
    station = Station(broker.url, db, topics, RelaySettings(broker_ack_confirms=True, retry_initial_s=0.1,
                                                            retry_max_s=0.4), clock=clock)
    stations.append(station)
    relay = station.start(thread=False).relay
    # Backed off: 0.1, 0.2, 0.4, 0.4 … s after each refusal, not a tight loop.
    refused_attempts(db, clock, relay, [0.0, 0.1, 0.3, 0.7, 1.1], "No matching subscribers (0x10)")
    assert "No matching subscribers" in relay.stats.last_error
    assert relay.stats.confirmed == 0

    subscriber = Observer(broker.url, topics.events)  # the central server's ingest comes up
    try:
        clock.set(1.5)
        assert step_until(relay, relay.drained), f"not drained: {station.counts()}"
        assert wait_until(lambda: {i for m in subscriber.collect() for i in event_ids_of(m)} == set(expected))
    finally:
        subscriber.stop()
    assert {r["last_error"] for r in outbox_rows(db)} == {""}


# -- 7. 0x87 not authorised ---------------------------------------------------------------------------------------


def test_publish_denied_by_acl_is_not_sent_and_backs_off(
    prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    if not os.path.exists(MOSQUITTO):
        pytest.skip(f"mosquitto not installed at {MOSQUITTO}")
    acl = tmp_path / "acl"
    # Lines before any "user" line apply to anonymous clients: they may read acks and write status, nothing else.
    acl.write_text(f"topic read {prefix}/+/+/acks\ntopic readwrite {prefix}/+/+/status\n")
    db = tmp_path / "station.db"
    make_outbox(db, 5)
    clock = FakeClock()
    with Broker(tmp_path / "broker", extra_config=f"acl_file {acl}\n") as broker:
        station = Station(broker.url, db, topics, RelaySettings(retry_initial_s=0.1, retry_max_s=0.4), clock=clock)
        stations.append(station)
        relay = station.start(thread=False).relay
        refused_attempts(db, clock, relay, [0.0, 0.1, 0.3, 0.7, 1.1], "Not authorized (0x87)")
        assert "Not authorized" in relay.stats.last_error
        assert station.publisher.events_published == 5 * 5
        station.stop()
        stations.remove(station)


# -- 8. garbage acks, and the retained status ----------------------------------------------------------------------


def test_garbage_and_unknown_acks_are_ignored_and_status_is_retained_with_counts(
    broker_url: str, prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    db = tmp_path / "station.db"
    make_outbox(db, 10)
    station = Station(broker_url, db, topics, FAST)
    stations.append(station)
    problems: list = []
    station.relay._on_problem = problems.append
    station.start()
    assert wait_until(lambda: station.relay.stats.connected, timeout=5)
    noise = MqttClient(broker_url, unique("noise"), session_expiry=0)
    noise.start()
    try:
        assert noise.wait_connected(5)
        for payload in (b"not json", b"\xff\xfe", b"null", b"[1, 2]", b'"stored"', b'{"eventID": 5}',
                        b'{"status": "stored"}', b'{"eventID": "urn:uuid:not-ours", "status": "stored"}',
                        b'{"eventID": "urn:uuid:also-not-ours", "status": "failed"}', b"{" * 10_000,
                        b'{"eventID": "urn:uuid:never-sent", "status": "rejected", "reason": "noise"}'):
            noise.publish(topics.acks, payload, qos=1)
        assert wait_until(lambda: station.relay.stats.acks_unknown >= 1, timeout=5)
    finally:
        noise.stop()
    assert station.relay._thread is not None and station.relay._thread.is_alive()
    assert station.relay.stats.confirmed == 0
    # A rejection of an event this relay never sent marks nothing and raises no alarm.
    assert wait_until(lambda: station.relay.stats.rejected == 1, timeout=5) and problems == []
    assert states(db) == {"pending": 10}

    with central_on(broker_url, prefix, tmp_path, session_expiry_s=0):
        # Nobody subscribed so far (0x10): the rows back off and go as soon as the server is there.
        assert station.relay.wait_drained(10), f"not drained: {station.counts()}"
        live = Observer(broker_url, topics.status)
        try:
            assert wait_until(lambda: any(json.loads(m.payload)["outbox"]["confirmed"] == 10
                                          for m in live.collect()), timeout=5)
        finally:
            live.stop()
        status = Observer(broker_url, topics.status)  # subscribes after the fact: gets the retained message
        try:
            assert wait_until(lambda: len(status.collect()) >= 1, timeout=5)
        finally:
            status.stop()
    assert status.messages[0].retain
    payload = json.loads(status.messages[0].payload)
    assert payload["online"] is True
    assert payload["outbox"] == {"pending": 0, "sent": 0, "confirmed": 10, "rejected": 0}
    assert "at" in payload


# -- 9. no database work on paho's thread --------------------------------------------------------------------------


def test_store_writes_run_on_the_writer_thread_called_from_the_relay_thread(
    broker_url: str, prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    db = tmp_path / "station.db"
    make_outbox(db, 20)
    station = Station(broker_url, db, topics, FAST)
    stations.append(station)
    callers: set[str] = set()
    writers: set[str] = set()
    # Every write the store does goes through its one writer executor, waited for (_write) or not
    # (record_delivery_async): trace the executor itself.
    executor = station.store.database._writer
    original = executor.submit

    def traced_submit(fn: Any, *args: Any, **kwargs: Any) -> Any:
        callers.add(threading.current_thread().name)

        def job() -> Any:
            writers.add(threading.current_thread().name)
            return fn(*args, **kwargs)

        return original(job)

    executor.submit = traced_submit  # type: ignore[method-assign]
    with central_on(broker_url, prefix, tmp_path, session_expiry_s=0):
        station.start()
        assert station.relay.wait_drained(10)
    assert callers == {"outbox-relay"}
    assert len(writers) == 1 and all(name.startswith("db-writer") for name in writers), writers
    assert station.publisher.threads == {"outbox-relay"}


# -- 10. the relay never waits on the disk while the window could move ---------------------------------------------


def test_publishing_goes_on_while_a_delivery_write_is_committed_and_nothing_is_sent_twice(
    broker: Broker, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    """Each write of PUBACKs and acks is held 0.2 s (a slow SD card's fsync). The relay hands the client more
    messages meanwhile instead of waiting for it, but no more than max_unwritten events' outcomes wait for the
    disk; the rows of a write in progress are not due again, and the drain ends with every event sent once and
    confirmed."""
    db = tmp_path / "station.db"
    expected = bulk_outbox(db, 2_000)
    observer = Observer(broker.url, topics.events)  # the only subscriber: PUBACK 0x00, broker-ack delivery
    try:
        station = Station(broker.url, db, topics, RelaySettings(broker_ack_confirms=True, max_unwritten=300))
        stations.append(station)
        relay = station.relay
        unwritten: list[int] = []
        writing = threading.Event()
        writes: list[int] = []
        published_during_writes: list[str] = []
        delivery_job = station.store.outbox_repo._delivery_job

        def slow_delivery_job(*args: Any, **kwargs: Any) -> Any:
            job = delivery_job(*args, **kwargs)

            def slow(session: Any) -> Any:
                writing.set()
                try:
                    time.sleep(0.2)   # the stimulus, a slow fsync: nothing below is asserted on time
                    changed = job(session)
                    writes.append(changed)
                    return changed
                finally:
                    writing.clear()

            return slow

        station.store.outbox_repo._delivery_job = slow_delivery_job  # type: ignore[method-assign]
        publish = station.publisher.publish

        def watched_publish(topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
            if topic == topics.events:  # on the relay's thread: its state is stable here
                unwritten.append(relay._unwritten + (len(relay._writing.ids) if relay._writing else 0))
                if writing.is_set():
                    published_during_writes.append(topic)
            return publish(topic, payload, qos, retain)

        station.publisher.publish = watched_publish  # type: ignore[method-assign]
        station.start()
        assert station.relay.wait_drained(60), f"not drained: {station.counts()}"
        assert len(writes) >= 2 and sum(writes) == len(expected)
        assert published_during_writes, "the relay waited for each write instead of publishing on"
        assert 0 < max(unwritten) < 300, max(unwritten)
        assert wait_until(lambda: len(observer.collect()) >= len(expected), timeout=10)
    finally:
        observer.stop()
    seen = Counter(i for m in observer.messages for i in event_ids_of(m))
    assert seen == Counter(expected), "each event published exactly once"
    assert set(states(db)) == {"confirmed"}
    assert station.relay.stats.confirmed == len(expected)


def test_read_ahead_smaller_than_the_backlog_hands_each_row_over_once_in_full_groups(
    broker_url: str, prefix: str, topics: Topics, template: tuple[Path, list[str]], tmp_path: Path,
    stations: list[Station],
) -> None:
    db = copy_outbox(template[0], tmp_path / "station.db")
    observer = Observer(broker_url, topics.events)
    try:
        with central_on(broker_url, prefix, tmp_path, session_expiry_s=0) as central:
            settings = RelaySettings(read_ahead=7, events_per_message=4, max_inflight=5, retry_initial_s=0.2)
            station = Station(broker_url, db, topics, settings)
            stations.append(station)
            station.start()
            assert station.relay.wait_drained(30), f"not drained: {station.counts()}"
            assert central.count() == TEMPLATE_ROWS and central.duplicates() == 0
            assert wait_until(lambda: len(observer.collect()) >= TEMPLATE_ROWS // 4, timeout=5)
    finally:
        observer.stop()
    sizes = [len(event_ids_of(m)) for m in observer.messages]
    assert Counter(i for m in observer.messages for i in event_ids_of(m)) == Counter(template[1])
    assert max(sizes) == 4 and sizes.count(4) >= len(sizes) - 10, sizes  # partial groups only at read-ahead ends
    assert station.publisher.max_window <= 5


def test_a_restart_does_not_resend_what_the_server_acks_while_it_waits_its_turn(
    broker: Broker, prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    """The first run hands rows 21-200 to the broker and stops before the (paused) server has stored any. Rows
    1-20 are written while no relay runs. The second run reads everything ahead and starts with rows 1-20 (due
    the longest) behind a window of 4 unconfirmed events; the server's acks for the first run's sends reach it
    while rows 21-200 wait their turn in its read-ahead. None of them is published after the relay got its ack,
    so they are not sent again at all."""
    db = tmp_path / "station.db"
    later = bulk_outbox(db, 180, first_id=21)
    client_id = unique("station")
    with central_on(broker.url, prefix, tmp_path) as central:
        central.pause()
        first = Station(broker.url, db, topics, RelaySettings(), client_id=client_id, session_expiry=60)
        stations.append(first)
        first.start()
        assert wait_until(lambda: states(db) == Counter(sent=180), timeout=10), states(db)
        first.stop()
        stations.remove(first)
        earlier = bulk_outbox(db, 20, first_id=1)
        expected = earlier + later

        second = Station(broker.url, db, topics, RelaySettings(max_inflight=2, max_unconfirmed=4),
                         client_id=client_id, session_expiry=60)
        stations.append(second)
        relay = second.relay
        acked: set[str] = set()
        published: list[str] = []
        resent_after_ack: list[str] = []
        on_ack, publish = relay._on_ack, second.publisher.publish

        def recording_on_ack(payload: bytes) -> None:  # both wrappers run on the relay's thread
            with contextlib.suppress(ValueError, KeyError, TypeError):
                ack = json.loads(payload)
                if ack["status"] == "stored":
                    acked.add(ack["eventID"])
            on_ack(payload)

        def checked_publish(topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
            if topic == topics.events:
                ids = [e["eventID"] for e in json.loads(payload)["epcisBody"]["eventList"]]
                published.extend(ids)
                resent_after_ack.extend(i for i in ids if i in acked)
            return publish(topic, payload, qos, retain)

        relay._on_ack = recording_on_ack  # type: ignore[method-assign]
        second.publisher.publish = checked_publish  # type: ignore[method-assign]
        second.start()
        assert wait_until(lambda: len(published) >= 4, timeout=5)
        assert len(relay._queued) >= 150, "the second run did not read the backlog ahead"
        central.resume()
        assert relay.wait_drained(30), f"not drained: {second.counts()}"
        assert sorted(central.event_ids()) == sorted(expected)
    assert resent_after_ack == []
    assert set(earlier) <= set(published)
    assert len(published) < 40, f"{len(published)} events published again for 20 never sent"


# -- 11. SIGKILL mid-drain -------------------------------------------------------------------------------------------

RELAY_PROCESS = """
import sys, time
from app.devices import MqttPublisher
from drivers.mqtt import MqttClient
from station.relay import Relay, RelaySettings, Topics
from station.store import Store

db, url, events, acks, status, broker_ack = sys.argv[1:7]
store = Store(db)
client = MqttClient(url, "killed-" + status.split("/")[-2], session_expiry=0, max_inflight=100, max_queued=210)
relay = Relay(store, MqttPublisher(client), Topics(events, acks, status),
              RelaySettings(broker_ack_confirms=broker_ack == "1"), sender="urn:test:killed")
client.start()
relay.start()
print("relaying", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("delivery", ["broker-ack", "server-ack"])
def test_sigkill_mid_drain_loses_nothing_and_the_next_run_sends_what_was_not_confirmed(
    delivery: str, prefix: str, topics: Topics, tmp_path: Path, stations: list[Station],
) -> None:
    """The relay in a process of its own is killed (SIGKILL: no final write, no clean disconnect) while it drains
    a backlog. Every row the outbox says is confirmed was delivered (broker-ack: the subscriber got it; server-ack:
    the server stored it); a new relay on the same file then delivers everything else."""
    if not os.path.exists(MOSQUITTO):
        pytest.skip(f"mosquitto not installed at {MOSQUITTO}")
    broker_ack = delivery == "broker-ack"
    total, kill_after = (10_000, 1_000) if broker_ack else (2_000, 200)
    db = tmp_path / "station.db"
    expected = bulk_outbox(db, total)

    def confirmed_on_disk() -> set[str]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return {r[0] for r in conn.execute("SELECT event_id FROM outbox WHERE state = 'confirmed'")}

    # The observer must not lose messages however far behind it is: the broker queues 10,000 for it.
    with Broker(tmp_path / "broker", extra_config=f"max_queued_messages {2 * total}\n") as broker:
        observer = Observer(broker.url, topics.events)
        central = None if broker_ack else central_on(broker.url, prefix, tmp_path, session_expiry_s=0).start()
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", RELAY_PROCESS, str(db), broker.url, topics.events, topics.acks,
                 topics.status, "1" if broker_ack else "0"],
                cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
            try:
                assert process.stdout is not None and process.stdout.readline().strip() == "relaying"
                assert wait_until(lambda: len(confirmed_on_disk()) >= kill_after, timeout=30, interval=0.005)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                if process.stdout is not None:
                    process.stdout.close()
            confirmed = confirmed_on_disk()
            assert len(confirmed) < total, "the drain ended before the kill: nothing was tested"
            if broker_ack:
                assert wait_until(lambda: confirmed <= {i for m in observer.collect() for i in event_ids_of(m)},
                                  timeout=15), "confirmed on a PUBACK, yet the subscriber never got it"
            else:
                assert confirmed <= set(central.event_ids()), "confirmed, yet the server never stored it"

            station = Station(broker.url, db, topics, RelaySettings(broker_ack_confirms=broker_ack))
            stations.append(station)
            station.start()
            assert station.relay.wait_drained(60), f"not drained after the restart: {station.counts()}"
            assert set(states(db)) == {"confirmed"}
            if broker_ack:
                assert wait_until(lambda: {i for m in observer.collect() for i in event_ids_of(m)} == set(expected),
                                  timeout=15)
            else:
                assert sorted(central.event_ids()) == sorted(expected), "each event stored once"
        finally:
            observer.stop()
            if central is not None:
                central.stop()
                central.close()
            for station in stations:
                station.stop()
            stations.clear()


# -- benchmark -----------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("RELAY_BENCH"), reason="benchmark: set RELAY_BENCH=1 and run with -s")
def test_drain_rate_of_5000_events_on_the_machine_broker(
    broker_url: str, tmp_path: Path, stations: list[Station],
) -> None:
    """Prints events/s from relay start to every row confirmed, through the real ingest on a SQLite file."""
    count = 5_000
    source = tmp_path / "source.db"
    started = time.perf_counter()
    make_outbox(source, count)
    print(f"\nwriting {count} activations the engine's way: {time.perf_counter() - started:.1f} s")
    for per_message in (1, 10):
        prefix = unique("bench")
        topics = Topics.for_station(prefix, SITE, "line-1")
        run = tmp_path / f"epm{per_message}"
        run.mkdir()
        db = copy_outbox(source, run / "station.db")
        with central_on(broker_url, prefix, run, session_expiry_s=0) as central:
            station = Station(broker_url, db, topics, RelaySettings(events_per_message=per_message))
            stations.append(station)
            started = time.perf_counter()
            station.start()
            drained = station.relay.wait_drained(300)
            elapsed = time.perf_counter() - started
            stored, duplicates = central.count(), central.duplicates()
        assert drained, f"not drained: {station.counts()}"
        print(f"events_per_message={per_message}: {count} events "
              f"confirmed in {elapsed:.2f} s = {count / elapsed:,.0f} events/s; {station.publisher.events_published} "
              f"events published for {-(-count // per_message)} messages' worth, stored {stored}, duplicates "
              f"{duplicates}")
