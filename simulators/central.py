"""Stand-in for the central server: stores EPCIS events from MQTT by eventID and acks each after its commit.

One module of about 570 lines: the tables, the MQTT consumer, its acks and its command line are one stand-in,
started as one process by `station sim central`.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from drivers.mqtt import (
    Connected,
    Disconnected,
    MessageReceived,
    MqttClient,
    MqttError,
    Subscribed,
    parse_broker_url,
)
from simulators.errors import SimulatorError

log = logging.getLogger(__name__)

# The copy of the GS1 schema the station ships; the simulator reads the file and imports no station code.
DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "contracts" / "schemas" / "EPCIS-JSON-Schema.json"

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("site", String(100), nullable=False),
    Column("station", String(100), nullable=False),
    Column("action", String(16)),
    Column("biz_step", String(255)),
    Column("epc", Text),  # the epcList joined by spaces (one EPC for a stamp activation)
    Column("lot", String(100)),
    Column("event_time", String(40)),  # as the station wrote it, with its offset
    Column("payload", Text, nullable=False),  # the event's JSON
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("duplicates", Integer, nullable=False, default=0),
)

rejected_table = Table(
    "rejected",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


class DocumentRejected(SimulatorError):
    """A message on an events topic that is not a storable EPCIS document; the reason says why."""


@dataclass(frozen=True)
class _Incoming:
    site: str
    station: str
    rows: list[dict[str, Any]]


class CentralSimulator:
    """Subscribes to `{prefix}/+/+/events`, stores each event once by eventID, then acks it on `…/acks`.

    A worker thread drains the MQTT client's queue, so database work never runs in paho's callbacks.
    MQTT PUBACKs are sent only after the commit, so a crash before it makes the broker redeliver.
    """

    def __init__(
        self,
        broker_url: str,
        prefix: str = "truyxuat",
        db_url: str = "sqlite://",
        client_id: str = "central-sim",
        share_group: str | None = None,
        ack: bool = True,
        validate: bool = True,
        *,
        schema_path: Path | str = DEFAULT_SCHEMA,
        session_expiry: int = 3_600,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        reconnect_min_delay: float = 0.2,
        reconnect_max_delay: float = 5.0,
    ) -> None:
        if not prefix or any(c in prefix for c in "+#") or prefix.startswith("$"):
            raise SimulatorError(f"topic prefix {prefix!r} must be non-empty, without wildcards or a leading $")
        self.broker_url = broker_url
        self.prefix = prefix
        self.client_id = client_id
        self.share_group = share_group
        self.events_filter = f"{prefix}/+/+/events"
        self.subscription = f"$share/{share_group}/{self.events_filter}" if share_group else self.events_filter
        self._client_options: dict[str, Any] = {
            "username": username,
            "password": password,
            "ca_file": ca_file,
            "session_expiry": session_expiry,
            "reconnect_min_delay": reconnect_min_delay,
            "reconnect_max_delay": reconnect_max_delay,
        }
        self._validator: Draft7Validator | None = None
        self._fast_validator: Any = None
        if validate:
            try:
                schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SimulatorError(f"cannot load the EPCIS schema {schema_path}: {exc}") from exc
            self._validator = Draft7Validator(schema)
            # jsonschema-rs decides (same Draft 7 rules, formats unchecked as above, fast enough for every
            # message); the pure-Python validator words the reason when a document fails.
            self._fast_validator = jsonschema_rs.Draft7Validator(schema, validate_formats=False, offline=True)
        self.engine = _make_engine(db_url)
        _create_tables(self.engine)

        self._ack = ack
        self._delay = 0.0
        self._consuming = threading.Event()
        self._consuming.set()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._client: MqttClient | None = None
        self._worker: threading.Thread | None = None
        self._counter_lock = threading.Lock()
        self._acks_sent = 0
        self._acks_failed = 0
        self._db_errors = 0
        self._held = 0

    # life cycle

    def start(self, timeout: float = 10.0) -> CentralSimulator:
        """Connect, subscribe and start consuming; waits until the broker has granted the subscription."""
        if self._worker is not None:
            raise SimulatorError("central simulator already started")
        client = MqttClient(self.broker_url, self.client_id, manual_ack=True, **self._client_options)
        client.subscribe(self.subscription, qos=1)
        self._client = client
        self._stopping.clear()
        self._subscribed.clear()
        self._worker = threading.Thread(target=self._run, name=f"central-sim-{self.client_id}", daemon=True)
        self._worker.start()
        client.start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise SimulatorError(f"no subscription to {self.subscription} on {client.url} within {timeout} s")
        return self

    def stop(self) -> None:
        """Stop consuming and disconnect; messages not yet stored stay with the broker's session."""
        worker, self._worker = self._worker, None
        if worker is not None:
            self._stopping.set()
            worker.join()
        if self._client is not None:
            self._client.stop()
            self._client = None

    def close(self) -> None:
        """stop() and release the database (an in-memory database is gone after this)."""
        self.stop()
        self.engine.dispose()

    def __enter__(self) -> CentralSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # fault injection

    def set_ack(self, enabled: bool) -> None:
        """Store events but send no `stored` acks (a server that lost its ack path)."""
        self._ack = enabled

    def set_delay(self, seconds: float) -> None:
        """Hold every commit this long (a slow database)."""
        self._delay = max(0.0, seconds)

    def pause(self) -> None:
        """Stop consuming: messages wait in the queue, unacknowledged to the broker."""
        self._consuming.clear()

    def resume(self) -> None:
        self._consuming.set()

    # queries

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    @property
    def acks_sent(self) -> int:
        return self._acks_sent

    @property
    def held(self) -> int:
        """Messages taken from the broker and held by pause(): neither stored nor acknowledged (0 or 1)."""
        return self._held

    def event_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            # Sorted here, not by ORDER BY: a PostgreSQL database's collation need not sort as Python does.
            return sorted(conn.scalars(select(events_table.c.event_id)))

    def count(self) -> int:
        """How many distinct events are stored."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(events_table)) or 0)

    def duplicates(self) -> int:
        """How many deliveries of already stored eventIDs were dropped."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.coalesce(func.sum(events_table.c.duplicates), 0))) or 0)

    def stored(self, event_id: str) -> dict[str, Any] | None:
        """The stored row of one event (payload parsed back to a dict), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(events_table).where(events_table.c.event_id == event_id)).mappings().first()
        if row is None:
            return None
        result = dict(row)
        result["payload"] = json.loads(result["payload"])
        return result

    def rejected(self) -> list[dict[str, Any]]:
        """Every message refused, oldest first: topic, reason, payload (as text), received_at."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(rejected_table).order_by(rejected_table.c.id)).mappings().all()
        return [dict(row) for row in rows]

    def describe(self) -> dict[str, Any]:
        return {
            "broker": parse_broker_url(self.broker_url).url,
            "client_id": self.client_id,
            "subscription": self.subscription,
            "events_topic": self.events_filter,
            "acks_topic": f"{self.prefix}/{{site}}/{{station}}/acks",
            "share_group": self.share_group,
            "database": self.engine.url.render_as_string(hide_password=True),
            "validate": self._validator is not None,
            "ack": self._ack,
            "delay_s": self._delay,
            "paused": not self._consuming.is_set(),
            "connected": self.connected,
            "acks_sent": self._acks_sent,
            "held": self._held,
            "acks_failed": self._acks_failed,
            "database_errors": self._db_errors,
        }

    # the worker

    def _run(self) -> None:
        client = self._client
        assert client is not None
        while not self._stopping.is_set():
            try:
                event = client.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(event, MessageReceived):
                # Checked after taking the message, so a pause() that came while we waited still holds it.
                if not self._consuming.is_set():
                    self._held = 1
                    try:
                        while not self._consuming.wait(0.05):
                            if self._stopping.is_set():
                                return
                    finally:
                        self._held = 0
                self._handle(client, event)
            elif isinstance(event, Subscribed):
                if event.ok:
                    self._subscribed.set()
                else:
                    log.error("broker refused subscription %s: %s", event.topic, event.reason)
            elif isinstance(event, Connected | Disconnected):
                log.info("central simulator %s: %s", self.client_id, event)

    def _handle(self, client: MqttClient, message: MessageReceived) -> None:
        now = datetime.now(timezone.utc)
        try:
            incoming = self._parse(message)
        except DocumentRejected as exc:
            log.warning("rejected message on %s: %s", message.topic, exc)
            if self._record_rejection(message, str(exc), now):
                client.ack(message)
            return
        try:
            with self.engine.begin() as conn:
                if self._delay:
                    time.sleep(self._delay)
                # In one order for every consumer: two transactions storing the same events in opposite orders
                # would each wait for a row lock the other holds (PostgreSQL aborts one as a deadlock).
                for row in sorted(incoming.rows, key=lambda r: r["event_id"]):
                    self._store(conn, row, now)
        except SQLAlchemyError as exc:
            # No PUBACK: the broker redelivers after a reconnect, and the station resends without an ack.
            with self._counter_lock:
                self._db_errors += 1
            log.error("storing events from %s failed: %s", message.topic, exc)
            return
        # Committed: only now may the station hear "stored".
        if self._ack:
            acks_topic = f"{self.prefix}/{incoming.site}/{incoming.station}/acks"
            for row in incoming.rows:
                body = json.dumps({"eventID": row["event_id"], "status": "stored"}).encode()
                try:
                    client.publish(acks_topic, body, qos=1)
                    with self._counter_lock:
                        self._acks_sent += 1
                except MqttError as exc:
                    with self._counter_lock:
                        self._acks_failed += 1
                    log.warning("ack for %s not sent: %s", row["event_id"], exc)
        client.ack(message)

    def _parse(self, message: MessageReceived) -> _Incoming:
        levels = message.topic.split("/")
        if len(levels) != 4 or levels[0] != self.prefix or levels[3] != "events" or not all(levels[1:3]):
            raise DocumentRejected(f"topic {message.topic!r} is not {self.prefix}/<site>/<station>/events")
        site, station = levels[1], levels[2]
        try:
            document = json.loads(message.payload.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DocumentRejected(f"payload is not UTF-8: {exc}") from exc
        except ValueError as exc:
            raise DocumentRejected(f"payload is not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("type") != "EPCISDocument":
            raise DocumentRejected("payload is not an EPCISDocument")
        if self._validator is not None and not self._fast_validator.is_valid(document):
            error = best_match(self._validator.iter_errors(document))
            if error is not None:
                raise DocumentRejected(_schema_reason(error))
        body = document.get("epcisBody")
        events = body.get("eventList") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            raise DocumentRejected("epcisBody.eventList is missing or empty")
        rows = [_row(index, event, site, station) for index, event in enumerate(events)]
        return _Incoming(site, station, rows)

    def _store(self, conn: Any, row: dict[str, Any], now: datetime) -> None:
        values = {**row, "received_at": now, "duplicates": 0}
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            # ON CONFLICT DO NOTHING keeps two consumers of one share group from racing on the same eventID.
            # RETURNING, not rowcount: psycopg 3.3 reports -1 once SQLAlchemy has closed the INSERT's cursor,
            # which would count every duplicate as stored.
            builder = sqlite_insert if dialect == "sqlite" else postgresql_insert
            inserted = (
                conn.execute(
                    builder(events_table)
                    .values(**values)
                    .on_conflict_do_nothing(index_elements=["event_id"])
                    .returning(events_table.c.event_id)
                ).first()
                is not None
            )
        else:
            exists = conn.scalar(select(events_table.c.event_id).where(events_table.c.event_id == row["event_id"]))
            if not exists:
                conn.execute(insert(events_table).values(**values))
            inserted = not exists
        if not inserted:
            conn.execute(
                update(events_table)
                .where(events_table.c.event_id == row["event_id"])
                .values(duplicates=events_table.c.duplicates + 1)
            )

    def _record_rejection(self, message: MessageReceived, reason: str, now: datetime) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(rejected_table).values(
                        topic=_text(message.topic),
                        reason=_text(reason),
                        payload=_text(message.payload.decode("utf-8", errors="replace")),
                        received_at=now,
                    )
                )
            return True
        except SQLAlchemyError as exc:
            with self._counter_lock:
                self._db_errors += 1
            log.error("recording a rejected message failed: %s", exc)
            return False


def _row(index: int, event: Any, site: str, station: str) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise DocumentRejected(f"event {index} is not an object")
    event_id = event.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        # Without a stable eventID the server cannot drop the resends that at-least-once delivery makes.
        raise DocumentRejected(f"event {index} has no eventID")
    ilmd = event.get("ilmd")
    ilmd = ilmd if isinstance(ilmd, dict) else {}
    epcs = event.get("epcList")
    epcs = epcs if isinstance(epcs, list) else []
    lot = ilmd.get("cbvmda:lotNumber")
    row = {
        "event_id": event_id,
        "site": site,
        "station": station,
        "action": _optional_text(event.get("action")),
        "biz_step": _optional_text(event.get("bizStep")),
        "epc": " ".join(str(epc) for epc in epcs) or None,
        "lot": str(lot) if lot is not None else None,
        "event_time": _optional_text(event.get("eventTime")),
        # json.dumps writes a NUL as \u0000, so the payload column never holds one
        "payload": json.dumps(event, ensure_ascii=False, sort_keys=True),
    }
    # What PostgreSQL would refuse is refused here on every database, before the transaction: a message that
    # failed there would go unacknowledged and come back after every reconnect, for ever.
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise DocumentRejected(f"event {index}: {name} contains a NUL character")
        limit = getattr(events_table.c[name].type, "length", None)
        if limit is not None and len(value) > limit:
            raise DocumentRejected(f"event {index}: {name} is longer than {limit} characters")
    return row


def _optional_text(value: Any) -> str | None:
    """A JSON value for a text column: strings as they are, anything else (a number, a list) as its JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _text(value: str) -> str:
    """Text PostgreSQL can store: it refuses NUL characters, so they become U+FFFD."""
    return value.replace("\x00", "\ufffd")


def _schema_reason(error: ValidationError) -> str:
    where = _path(error)
    if not error.context:
        return f"schema: {error.message} at {where}"
    # An anyOf failure's own message repeats the whole event; the failures inside its branches say what is wrong.
    leaves: list[str] = []
    pending = list(error.context)
    while pending:
        branch = pending.pop(0)
        if branch.context:
            pending.extend(branch.context)
            continue
        text = f"{_path(branch)}: {_shorten(branch.message)}"
        if text not in leaves:
            leaves.append(text)
    return f"schema: {where} matches none of the allowed forms ({'; '.join(leaves[:6])})"


def _path(error: ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(document)"


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _make_engine(db_url: str) -> Engine:
    try:
        if db_url in ("sqlite://", "sqlite:///:memory:"):
            # One shared connection, or each thread would see its own empty in-memory database.
            return create_engine(db_url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        if db_url.startswith("sqlite"):
            return create_engine(db_url, connect_args={"timeout": 30})
        return create_engine(db_url, pool_pre_ping=True)
    except (ImportError, SQLAlchemyError, ValueError) as exc:
        raise SimulatorError(f"cannot open database {db_url!r}: {exc}") from exc


# The key of the PostgreSQL advisory lock that serialises table creation (any fixed 64-bit number).
_SCHEMA_LOCK = 0x63656E7472616C  # "central"


def _create_tables(engine: Engine) -> None:
    """Create the tables that are missing; safe when several simulators start at once on one database."""
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # create_all checks, then creates: two simulators starting together on a fresh database would
                # both see no table and one CREATE TABLE would fail. The lock lasts until this commit.
                conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            metadata.create_all(conn)
    except SQLAlchemyError as exc:
        engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        raise SimulatorError(f"cannot open database {where!r}: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the central simulator from a shell until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m simulators.central", description=__doc__)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="broker URL, mqtt:// or mqtts://")
    parser.add_argument("--prefix", default="truyxuat", help="topic prefix (default %(default)s)")
    parser.add_argument("--db", default="sqlite:///central-sim.db", help="SQLAlchemy URL (default %(default)s)")
    parser.add_argument("--client-id", default="central-sim")
    parser.add_argument("--share-group", default=None, help="consume through $share/<group>/…")
    parser.add_argument("--no-ack", action="store_true", help="store events but send no acks")
    parser.add_argument("--no-validate", action="store_true", help="skip EPCIS schema validation")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to hold each commit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sim = CentralSimulator(
        args.broker,
        prefix=args.prefix,
        db_url=args.db,
        client_id=args.client_id,
        share_group=args.share_group,
        ack=not args.no_ack,
        validate=not args.no_validate,
    )
    sim.set_delay(args.delay)
    with sim:
        print(json.dumps(sim.describe(), indent=2), flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
