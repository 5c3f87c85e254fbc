"""`central ingest`: workers that take the stations' EPCIS documents off MQTT, store them, then ack them.

Each worker holds one MQTT 5 connection with the shared subscription `$share/{group}/{prefix}/+/+/events`
(QoS 1), so the broker splits the stations' messages between however many workers run. A worker gathers what
arrives into batches (up to `batch_size` messages, or what came within `batch_wait_s` of the first), validates each
document (EPCIS 2.0 schema, CBV values, eventIDs), stores the batch in one transaction (central.store), and only
after the commit publishes the acks on each station's `…/acks` — `{"eventID", "status": "stored"}` for each event,
again for a duplicate; `{"eventID", "status": "rejected", "reason"}` for each event of a refused document, which is
kept in quarantine — and then sends the broker its PUBACKs (manual acknowledgement). A worker that dies before its
commit leaves the messages unacknowledged: the broker hands them out again, and the station's outbox resends
whatever was never acked. A database that is away (restarting) holds the batch and is retried with a back-off.

About 440 lines in one module: a worker's MQTT session, its batches, their commit and the acks after it are one
ordering (nothing acked before its commit), kept in one place to be checked as one.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import queue
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from central import db
from central.errors import CentralError
from central.store import Prepared, ack_payloads, prepare, reject, store
from contracts.topics import DEFAULT_PREFIX, DEFAULT_SHARE_GROUP, check_prefix, shared_events_subscription

log = logging.getLogger(__name__)

ACKS_IN_FLIGHT = 100
STATS_INTERVAL_S = 60.0  # how often a worker logs its counters


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> Broker:
    """`mqtt://[user[:password]@]host[:port]` (1883) or `mqtts://…` (8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise CentralError(f"broker URL {url!r}: expected mqtt://host[:port] or mqtts://host[:port]")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError as exc:
        raise CentralError(f"broker URL {url!r}: {exc}") from exc
    return Broker(parts.hostname, port, parts.scheme == "mqtts",
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None)


@dataclass(frozen=True)
class IngestSettings:
    db: str
    broker: str = "mqtt://127.0.0.1:1883"
    prefix: str = DEFAULT_PREFIX
    group: str = DEFAULT_SHARE_GROUP
    client_id: str | None = None          # default central-ingest-{host}-{index}
    batch_size: int = 500                 # messages stored in one transaction at most
    batch_wait_s: float = 0.005           # how long a batch waits for more after its first message
    session_expiry_s: int = 3600          # the broker keeps a worker's session (and its queue) this long
    ca_file: str | None = None
    send_acks: bool = True                # False: store but never answer (a server that lost its ack path)
    retry_initial_s: float = 0.2          # the database is away: the batch is tried again after this, doubling
    retry_max_s: float = 5.0

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        parse_broker_url(self.broker)
        if self.batch_size < 1:
            raise CentralError("batch size must be at least 1")

    @property
    def subscription(self) -> str:
        return shared_events_subscription(self.prefix, self.group)


@dataclass
class IngestStats:
    messages: int = 0
    events_stored: int = 0       # acked "stored" (new or duplicate)
    duplicates: int = 0          # events stored before (a resend, a redelivery): acked again, not stored again
    documents_rejected: int = 0
    batches: int = 0
    database_retries: int = 0


@dataclass
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    prepared: Prepared | None = field(default=None)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class IngestWorker:
    """One worker: an MQTT connection, a thread that stores batches, and the acks after each commit."""

    def __init__(self, settings: IngestSettings, *, engine: Engine | None = None, index: int = 0,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.settings = settings
        self.client_id = settings.client_id or f"central-ingest-{socket.gethostname()}-{index}"
        self._own_engine = engine is None
        self.engine = engine if engine is not None else db.make_engine(settings.db)
        self._clock = clock
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._thread: threading.Thread | None = None
        self.stats = IngestStats()
        # Fault switches for the station's tests (what simulators/central.py offered): acks off, a slow commit,
        # consuming paused.
        self._send_acks = settings.send_acks
        self._hold_s = 0.0
        self._consuming = threading.Event()
        self._consuming.set()
        self._received = 0  # messages handed over by paho; `held` is those not yet stored and answered
        self._handled = 0
        self._logged_at = time.monotonic()
        self._client = self._make_client()

    # the MQTT side

    def _make_client(self) -> mqtt.Client:
        broker = parse_broker_url(self.settings.broker)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if broker.username is not None:
            client.username_pw_set(broker.username, os.environ.get("CENTRAL_MQTT_PASSWORD", broker.password))
        if broker.tls:
            client.tls_set(ca_certs=self.settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        # Acks in flight (QoS 1, waiting for the broker's PUBACK). paho walks its whole outgoing list on every PUBACK
        # to send the next queued one, so a long list costs as much as the ack itself (measured: 60 µs a PUBACK
        # at 1,000); 100 keeps a LAN's round trip covered. A broker that allows fewer says so in its CONNACK.
        client.max_inflight_messages_set(ACKS_IN_FLIGHT)
        client.reconnect_delay_set(0.2, 5)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("%s: the broker refused the connection: %s", self.client_id, reason)
            self._refused = str(reason)
            return
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if receive_maximum is not None and receive_maximum < ACKS_IN_FLIGHT:
            # MQTT 5 §3.2.2.3.3: never more QoS 1 publishes in flight than the broker's Receive Maximum (EMQX and
            # HiveMQ set one; Mosquitto does not). paho reads it nowhere and refuses the setter once connected.
            client._max_inflight_messages = receive_maximum
        log.info("%s: connected to %s", self.client_id, parse_broker_url(self.settings.broker).url)
        client.subscribe(self.settings.subscription, qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        failures = [r for r in reasons if r.is_failure]
        if failures:
            self._refused = f"subscription {self.settings.subscription} refused: {failures[0]}"
            log.error("%s: %s", self.client_id, self._refused)
            return
        log.info("%s: subscribed to %s", self.client_id, self.settings.subscription)
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._received += 1  # paho's one network thread: no lock needed
        self._inbox.put(_Message(message.topic, message.payload, message.mid, message.qos))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not self._stopping.is_set():
            log.warning("%s: disconnected (%s); reconnecting", self.client_id, reason)

    # life cycle

    def start(self, timeout: float = 10.0) -> IngestWorker:
        """Connect, subscribe and start storing; returns once the broker granted the subscription."""
        broker = parse_broker_url(self.settings.broker)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        # The broker hands out at most this many messages not yet PUBACKed: a batch and the next one.
        properties.ReceiveMaximum = min(65535, 2 * self.settings.batch_size)
        self._thread = threading.Thread(target=self._run, name=f"ingest-{self.client_id}", daemon=True)
        self._thread.start()
        try:
            self._client.connect_async(broker.host, broker.port, keepalive=30, clean_start=False,
                                       properties=properties)
            self._client.loop_start()
        except (OSError, ValueError) as exc:
            self.stop()
            raise CentralError(f"cannot reach the broker {broker.url}: {exc}") from exc
        deadline = time.monotonic() + timeout
        while not self._subscribed.wait(0.05):
            if self._refused is not None or time.monotonic() > deadline:
                reason = self._refused or f"no subscription to {self.settings.subscription} within {timeout} s"
                self.stop()
                raise CentralError(f"{self.client_id}: {reason}")
        return self

    def stop(self) -> None:
        """Finish the batch in hand and disconnect; what was not stored stays unacknowledged with the broker."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._client.disconnect()
        self._client.loop_stop()
        if self._own_engine:
            self.engine.dispose()

    def __enter__(self) -> IngestWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # fault switches

    def set_ack(self, enabled: bool) -> None:
        """Store events but send no acks (a server that lost its ack path), or send them again."""
        self._send_acks = enabled

    def set_delay(self, seconds: float) -> None:
        """Hold every batch's transaction open this long before its commit (a slow database)."""
        self._hold_s = max(0.0, seconds)

    def pause(self) -> None:
        """Stop storing: what arrives waits, unacknowledged to the broker."""
        self._consuming.clear()

    def resume(self) -> None:
        self._consuming.set()

    @property
    def held(self) -> int:
        """Messages the broker handed over that are not stored and answered yet (waiting, or held by pause())."""
        return self._received - self._handled

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def wait(self) -> None:
        """Run until stop() is called (from a signal handler)."""
        while not self._stopping.wait(1.0):
            pass

    # the storing thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._consuming.wait(0.05):
                continue
            batch = self._gather()
            # Checked again once the batch is taken: a pause() that came while it was gathered still holds it.
            while batch and not self._consuming.wait(0.05):
                if self._stopping.is_set():
                    return  # unacknowledged: the broker hands it out again
            if batch:
                self._handle(batch)
            if time.monotonic() - self._logged_at >= STATS_INTERVAL_S:
                self._logged_at = time.monotonic()
                log.info("%s: %s", self.client_id, self.stats)

    def _gather(self) -> list[_Message]:
        try:
            first = self._inbox.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_wait_s
        while len(batch) < self.settings.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[_Message]) -> None:
        now = self._clock()
        for message in batch:
            message.prepared = prepare(message.topic, message.payload, self.settings.prefix, now)
        prepared = [m.prepared for m in batch if m.prepared is not None]
        new = self._store(prepared)
        if new is None:
            return  # stopping with the database away: nothing acked, the broker and the outbox resend
        self.stats.duplicates += sum(len(p.event_rows) for p in prepared) - len(new)
        self.stats.batches += 1
        self.stats.messages += len(batch)
        for message in batch:
            assert message.prepared is not None
            self._answer(message.prepared)
            # PUBACK last, and in the order the messages came (MQTT 5 §4.6): the broker may now forget them.
            self._client.ack(message.mid, message.qos)
            self._handled += 1

    def _store(self, prepared: list[Prepared]) -> set[str] | None:
        """Store the batch, retrying while the database is away; the eventIDs that were new, None only when
        stopping meanwhile."""
        delay = self.settings.retry_initial_s
        while True:
            try:
                try:
                    return store(self.engine, prepared, hold_s=self._hold_s)
                except SQLAlchemyError as exc:
                    if _database_away(exc):
                        raise
                    # The database refused a row for its content: find which message it was and quarantine it,
                    # rather than retry for ever a batch that can never commit.
                    return self._store_one_by_one(prepared, exc)
            except SQLAlchemyError as exc:
                self.stats.database_retries += 1
                log.warning("%s: the database is unavailable (%s); retrying in %.1f s", self.client_id,
                            " ".join(str(getattr(exc, "orig", exc)).split())[:200], delay)
            if self._stopping.wait(delay):
                return None
            delay = min(delay * 2, self.settings.retry_max_s)

    def _store_one_by_one(self, prepared: list[Prepared], cause: Exception) -> set[str]:
        log.error("%s: the database refused a batch (%s); storing its messages one by one", self.client_id,
                  " ".join(str(cause).split())[:200])
        new: set[str] = set()
        for item in prepared:
            try:
                new |= store(self.engine, [item])
            except SQLAlchemyError as exc:
                if _database_away(exc):
                    raise  # retried whole: what was stored meanwhile is a duplicate, dropped by its eventID
                reason = f"the database refused it: {' '.join(str(getattr(exc, 'orig', exc)).split())[:300]}"
                reject(item, reason, [row["event_id"] for row in item.event_rows], self._clock())
                store(self.engine, [item])  # the quarantine row alone
        return new

    def _answer(self, prepared: Prepared) -> None:
        if prepared.rejected:
            self.stats.documents_rejected += 1
            assert prepared.rejection is not None
            log.warning("%s: quarantined a document from %s: %s", self.client_id, prepared.topic,
                        prepared.rejection["reason"])
        else:
            self.stats.events_stored += len(prepared.acks)
        if not self._send_acks or prepared.acks_topic is None:
            return
        for body in ack_payloads(prepared):
            info = self._client.publish(prepared.acks_topic, body, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # paho queues while disconnected; anything else is lost here, and the station resends.
                log.warning("%s: an ack to %s was not sent (%s)", self.client_id, prepared.acks_topic,
                            mqtt.error_string(info.rc))


def _database_away(exc: SQLAlchemyError) -> bool:
    """The database is not answering (restarting, the network), as opposed to refusing what was sent."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _install_stop(stop: Callable[[], None]) -> None:
    def handler(_signum: int, _frame: Any) -> None:
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


def run_worker(settings: IngestSettings, index: int = 0) -> int:
    """One worker until SIGTERM/SIGINT (the body of a worker process)."""
    worker = IngestWorker(settings, index=index)
    stopped = threading.Event()
    _install_stop(stopped.set)
    try:
        worker.start()
    except CentralError as exc:
        log.error("%s", exc)
        return 1
    print(f"central ingest: {worker.client_id} subscribed to {settings.subscription}", flush=True)
    while not stopped.wait(1.0):
        pass
    worker.stop()
    log.info("%s: stopped after %s", worker.client_id, worker.stats)
    return 0


def _worker_process(settings: IngestSettings, index: int, level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(run_worker(settings, index))


def run(settings: IngestSettings, workers: int = 1, *, migrate: bool = True) -> int:
    """`central ingest`: migrate once, then one worker in this process or `workers` processes, restarted if they die."""
    engine = db.make_engine(settings.db)
    try:
        if migrate:
            db.upgrade(engine)
    finally:
        engine.dispose()
    if workers <= 1:
        return run_worker(settings)
    context = multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    stopping = threading.Event()
    _install_stop(stopping.set)
    children: dict[int, Any] = {}
    base = settings.client_id or f"central-ingest-{socket.gethostname()}"

    def spawn(index: int) -> None:
        child_settings = replace(settings, client_id=f"{base}-{index}")
        process = context.Process(target=_worker_process, args=(child_settings, index, level),
                                  name=f"central-ingest-{index}", daemon=False)
        process.start()
        children[index] = process

    for index in range(workers):
        spawn(index)
    while not stopping.wait(0.5):
        for index, process in list(children.items()):
            if not process.is_alive() and process.exitcode != 0:  # 0: it was told to stop
                log.error("ingest worker %d ended (exit %s); starting it again", index, process.exitcode)
                spawn(index)
    for process in children.values():
        if process.is_alive():
            process.terminate()  # SIGTERM: it finishes its batch
    for process in children.values():
        process.join(30)
    return 0
