"""Fixtures of the central service's tests: a throwaway PostgreSQL database per session, the machine's broker.

PostgreSQL is the machine's cluster at 127.0.0.1:5432 (trust auth, user postgres); CENTRAL_TEST_POSTGRES names
another server's maintenance database as a libpq URL. The session's database is migrated once and emptied
before each test; it is dropped at the end of the session.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

psycopg = pytest.importorskip("psycopg", reason="pip install -e '.[central]' for the central tests")
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from central import db  # noqa: E402
from tests.central.throwaway import throwaway_database  # noqa: E402
from tests.integration.mqtt_fixtures import broker_url, unique  # noqa: E402, F401  (fixtures)

ADMIN_URL = os.environ.get("CENTRAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
ICT = dt.timezone(dt.timedelta(hours=7))
GTIN = "08938603001013"
READ_POINT = "https://truyxuat.hue.example.vn/station/hue-01/line-1"
TABLES = ["events", "stamps", "quarantine", "scans", "scan_totals", "scan_networks", "diary_stages", "batches",
          "products", "producers"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The SQLAlchemy URL of a database made for this test session (migrated), dropped after it."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at {ADMIN_URL} ({' '.join(str(exc).split())}); set CENTRAL_TEST_POSTGRES")
    with throwaway_database(ADMIN_URL, "central_test") as libpq_url:
        url = make_url(libpq_url).set(drivername="postgresql+psycopg").render_as_string(False)
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's database, emptied for this test."""
    engine = db.make_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_database


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    made = db.make_engine(pg_url)
    yield made
    made.dispose()


def query(url: str, statement: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows seen through a connection of our own, not the service's: what is committed."""
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database) as conn:
        return conn.execute(statement, params).fetchall()


@pytest.fixture
def prefix() -> str:
    return unique("txc")


def activation(serial: str, lot: str = "MX2611A", *, gtin: str = GTIN, expiry: str | None = "2027-05-28",
               at: dt.datetime | None = None, batch_id: str = "7", event_id: str | None = None) -> dict[str, Any]:
    """An activation as station.epcis writes it (tests of the contract build it by hand, not by station code)."""
    ilmd = {"cbvmda:lotNumber": lot}
    if expiry:
        ilmd["cbvmda:itemExpirationDate"] = expiry
    return {
        "type": "ObjectEvent",
        "eventID": event_id or f"urn:uuid:{uuid.uuid4()}",
        "eventTime": (at or dt.datetime(2026, 11, 29, 8, 30, tzinfo=ICT)).isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+07:00",
        "epcList": [f"https://id.gs1.org/01/{gtin}/21/{serial}"],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": READ_POINT},
        "ilmd": ilmd,
        "stn:site": "hue-01",
        "stn:station": "line-1",
        "stn:batchId": batch_id,
    }


def void(serial: str, reason: str = "verify_mismatch", *, gtin: str = GTIN,
         at: dt.datetime | None = None) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": (at or dt.datetime(2026, 11, 29, 8, 31, tzinfo=ICT)).isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+07:00",
        "epcList": [f"https://id.gs1.org/01/{gtin}/21/{serial}"],
        "action": "DELETE",
        "bizStep": "decommissioning",
        "disposition": "inactive",
        "readPoint": {"id": READ_POINT},
        "stn:voidReason": reason,
    }


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                     {"stn": "https://ns.packing-station.example/epcis/"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-29T08:30:01.000+07:00",
        "epcisBody": {"eventList": list(events)},
    }


def payload(*events: dict[str, Any]) -> bytes:
    return json.dumps(document(*events), ensure_ascii=False).encode()


class FakeStation:
    """The station's side of the wire, in plain paho: publishes documents on events, collects acks."""

    def __init__(self, url: str, prefix: str, site: str = "hue-01", station: str | None = None) -> None:
        self.station = station or unique("line")
        base = f"{prefix}/{site}/{self.station}"
        self.events_topic, self.acks_topic = f"{base}/events", f"{base}/acks"
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self.pubacks: queue.Queue[int] = queue.Queue()
        subscribed: queue.Queue[bool] = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("station"), protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(1000)
        client.on_message = lambda _c, _u, m: self.acks.put(json.loads(m.payload))
        client.on_publish = lambda _c, _u, mid, _r, _p: self.pubacks.put(mid)
        client.on_subscribe = lambda _c, _u, _m, reasons, _p: subscribed.put(not reasons[0].is_failure)
        host, port = url.removeprefix("mqtt://").split(":")
        client.connect(host, int(port))
        client.loop_start()
        client.subscribe(self.acks_topic, qos=1)
        assert subscribed.get(timeout=5)
        self.client = client

    def publish(self, body: bytes) -> None:
        info = self.client.publish(self.events_topic, body, qos=1)
        info.wait_for_publish(5)

    def take_acks(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return [self.acks.get(timeout=timeout) for _ in range(count)]

    def no_ack(self, quiet: float = 0.3) -> None:
        """Nothing arrives within `quiet` seconds (absence can only be watched for a while)."""
        with pytest.raises(queue.Empty):
            got = self.acks.get(timeout=quiet)
            pytest.fail(f"unexpected ack {got}")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def station(broker_url: str, prefix: str) -> Iterator[FakeStation]:
    made = FakeStation(broker_url, prefix)
    yield made
    made.stop()
