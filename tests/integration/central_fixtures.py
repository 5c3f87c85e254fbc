"""The real central ingest (`central.ingest.IngestWorker`) as the station's tests use it: on the machine's broker
and a database of its own (a SQLite file, or PostgreSQL where the test is about PostgreSQL), with its fault switches
(no acks, a slow commit, paused) and what it stored, read back from the central tables.

A restart is a new worker on the same client id and database, as a restarted `central ingest` process would be: the
broker keeps its session (unless `session_expiry_s=0`) and the switches carry over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from central import db
from central.ingest import IngestSettings, IngestStats, IngestWorker
from drivers.mqtt import MessageReceived, MqttClient, PublishAcked
from tests.integration.mqtt_fixtures import next_event, unique


class Central:
    """One ingest worker at a time on one database; every query reads the committed tables."""

    def __init__(self, broker_url: str, prefix: str, db_url: str, *, client_id: str | None = None,
                 group: str | None = None, send_acks: bool = True, session_expiry_s: int = 3_600,
                 batch_size: int = 500) -> None:
        self.settings = IngestSettings(db=db_url, broker=broker_url, prefix=prefix, group=group or unique("ingest"),
                                       client_id=client_id or unique("central"), session_expiry_s=session_expiry_s,
                                       send_acks=send_acks, batch_size=batch_size)
        self.engine: Engine = db.make_engine(db_url)
        db.upgrade(self.engine)
        self._ack = send_acks
        self._delay = 0.0
        self._paused = False
        self._stats = IngestStats()   # of the workers stopped so far
        self.worker: IngestWorker | None = None

    # life cycle

    def start(self, timeout: float = 10.0) -> Central:
        """A new worker (a new process, as it were) on the same session; returns once subscribed."""
        assert self.worker is None, "already started"
        worker = IngestWorker(self.settings, engine=self.engine)
        worker.set_ack(self._ack)
        worker.set_delay(self._delay)
        if self._paused:
            worker.pause()
        self.worker = worker.start(timeout)
        return self

    def stop(self) -> None:
        """Stop the worker: what it holds unstored stays unacknowledged with the broker."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()         # paused, it stops without storing what it holds
            for name, value in vars(worker.stats).items():
                setattr(self._stats, name, getattr(self._stats, name) + value)

    def close(self) -> None:
        self.stop()
        self.engine.dispose()

    def __enter__(self) -> Central:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # fault switches (IngestWorker's)

    def set_ack(self, enabled: bool) -> None:
        self._ack = enabled
        if self.worker is not None:
            self.worker.set_ack(enabled)

    def set_delay(self, seconds: float) -> None:
        self._delay = seconds
        if self.worker is not None:
            self.worker.set_delay(seconds)

    def pause(self) -> None:
        self._paused = True
        if self.worker is not None:
            self.worker.pause()

    def resume(self) -> None:
        self._paused = False
        if self.worker is not None:
            self.worker.resume()

    # what it did

    @property
    def connected(self) -> bool:
        return self.worker is not None and self.worker.connected

    @property
    def held(self) -> int:
        """Messages taken from the broker and neither stored nor acknowledged (waiting, or held by pause())."""
        return self.worker.held if self.worker is not None else 0

    @property
    def stats(self) -> IngestStats:
        """The counters of every worker so far (this one included)."""
        total = IngestStats(**vars(self._stats))
        if self.worker is not None:
            for name, value in vars(self.worker.stats).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def duplicates(self) -> int:
        """Deliveries of events already stored: acked again, not stored again."""
        return self.stats.duplicates

    def event_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            # Sorted here, not by ORDER BY: a PostgreSQL database's collation need not sort as Python does.
            return sorted(conn.scalars(select(db.events.c.event_id)))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(db.events)) or 0)

    def stored(self, event_id: str) -> dict[str, Any] | None:
        """The stored row of one event (`payload` the event as sent), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(db.events).where(db.events.c.event_id == event_id)).mappings().first()
        return dict(row) if row is not None else None

    def events(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(select(db.events)).mappings()]

    def rejected(self) -> list[dict[str, Any]]:
        """The quarantine, oldest first: topic, reason, the eventIDs named, the document as received."""
        with self.engine.connect() as conn:
            return [dict(row) for row in
                    conn.execute(select(db.quarantine).order_by(db.quarantine.c.id)).mappings()]


def central_on(broker_url: str, prefix: str, folder: Path, db_url: str | None = None, **options: Any) -> Central:
    """A Central on `folder/central.db` (or `db_url`), not started."""
    return Central(broker_url, prefix, db_url or f"sqlite:///{folder / 'central.db'}", **options)



class WireStation:
    """A station's side of the wire with nothing of the station behind it: publishes documents on its events topic
    and collects the acks the central service sends back (for tests of the contract itself)."""

    def __init__(self, url: str, prefix: str, site: str = "hue", station: str = "line-1") -> None:
        self.events_topic = f"{prefix}/{site}/{station}/events"
        self.client = MqttClient(url, unique("station"), session_expiry=0, reconnect_min_delay=0.1)
        self.client.start()
        assert self.client.wait_connected(5)
        self.client.subscribe(f"{prefix}/{site}/{station}/acks")

    def publish(self, payload: bytes) -> PublishAcked:
        mid = self.client.publish(self.events_topic, payload)
        ack = next_event(self.client.events, PublishAcked)
        assert ack.mid == mid
        return ack

    def acks(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return [json.loads(next_event(self.client.events, MessageReceived, timeout).payload) for _ in range(count)]


@pytest.fixture
def station(broker_url: str, prefix: str) -> Iterator[WireStation]:
    """A WireStation on the test module's `prefix` (each module says its own)."""
    made = WireStation(broker_url, prefix)
    yield made
    made.client.stop()
