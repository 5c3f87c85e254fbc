"""The real central ingest, as the station's tests use it (tests/integration/central_fixtures.py), on a real
PostgreSQL: a fresh database per test, the machine's broker.

PostgreSQL is the machine's cluster at 127.0.0.1:5432 (scripts/test.sh starts it when it is installed);
CENTRAL_TEST_POSTGRES names another server's maintenance database as a libpq URL. Without a reachable server
these tests are skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed: pip install -e '.[test]' for the PostgreSQL tests"
)
from psycopg import sql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from central.errors import CentralError  # noqa: E402
from station.epcis import activation_event, document  # noqa: E402
from tests.integration.central_fixtures import Central, WireStation, station  # noqa: F401  (fixture)  # noqa: E402
from tests.integration.mqtt_fixtures import (  # noqa: E402, F401  (fixtures)
    broker_url,
    free_port,
    next_event,
    no_leaked_threads,
    unique,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaked_threads")]

ADMIN_URL = os.environ.get("CENTRAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SITE, STATION = "hue", "line-1"
GTIN = "08930000000019"
ICT = dt.timezone(dt.timedelta(hours=7))


def activation(serial: str, lot: str = "L2503") -> dict[str, Any]:
    return activation_event(
        gtin=GTIN,
        serial=serial,
        lot=lot,
        expiry=dt.date(2026, 3, 1),
        event_time=dt.datetime(2025, 3, 1, 8, 30, tzinfo=ICT),
        read_point="urn:epc:id:sgln:8930000.00001.0",
    )


def payload(*events: dict[str, Any]) -> bytes:
    return json.dumps(document(list(events), dt.datetime(2025, 3, 1, 8, 30, 1, tzinfo=ICT))).encode()


@pytest.fixture(scope="module")
def pg_admin() -> str:
    """The libpq URL of a maintenance database; skips when no PostgreSQL answers there."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(
            f"no PostgreSQL at {ADMIN_URL} ({' '.join(str(exc).split())}); scripts/test.sh starts the machine's cluster, "
            "or set CENTRAL_TEST_POSTGRES"
        )
    return ADMIN_URL


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """The SQLAlchemy URL of a database created for this test alone, dropped after it."""
    name = f"central_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(pg_admin).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            # A worker the test failed to close would keep its pooled connections, and DROP would refuse.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def query(pg_url: str, statement: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows seen through a connection of our own, not the worker's: what is committed."""
    url = make_url(pg_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    ) as conn:
        return conn.execute(statement, params).fetchall()


def execute(pg_url: str, statements: str) -> None:
    """Run and commit SQL of the test's own (no parameters) through a connection of our own."""
    url = make_url(pg_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    ) as conn:
        conn.execute(statements.encode())


@pytest.fixture
def prefix() -> str:
    return unique("txpg")


def simulator(broker_url: str, prefix: str, pg_url: str, **options: Any) -> Central:
    return Central(broker_url, prefix, pg_url, **options)


@pytest.fixture
def central(broker_url: str, prefix: str, pg_url: str) -> Iterator[Central]:
    with simulator(broker_url, prefix, pg_url) as started:
        yield started


def test_events_are_stored_then_acked_after_commit(central: Central, station: WireStation, pg_url: str) -> None:
    first, second = activation("A7K2Q9"), activation("Z3M8P1", lot="L2504")
    central.set_delay(0.3)  # a slow commit: an ack that did not wait for it would find no row below

    assert station.publish(payload(first, second)).ok
    for ack in station.acks(2):
        assert ack["status"] == "stored"
        # Another connection sees the row, so the commit happened before the ack went out.
        assert query(pg_url, "SELECT count(*) FROM events WHERE event_id = %s", ack["eventID"]) == [(1,)]

    assert central.event_ids() == sorted([first["eventID"], second["eventID"]])
    assert (central.count(), central.duplicates()) == (2, 0)
    row = central.stored(second["eventID"])
    assert row is not None
    assert (row["site"], row["station"], row["action"], row["biz_step"]) == (SITE, STATION, "ADD", "commissioning")
    assert row["payload"]["ilmd"]["cbvmda:lotNumber"] == "L2504"
    assert row["epc"] == f"https://id.gs1.org/01/{GTIN}/21/Z3M8P1"
    assert row["event_time"] == dt.datetime(2025, 3, 1, 8, 30, tzinfo=ICT)
    assert row["event_time_zone_offset"] == "+07:00"
    assert row["payload"] == second
    received = row["received_at"]
    assert received.utcoffset() is not None  # timestamptz: an instant, not a wall clock
    assert abs(dt.datetime.now(dt.timezone.utc) - received) < dt.timedelta(minutes=1)
    types = dict(
        query(pg_url, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'events'")
    )
    assert types["received_at"] == "timestamp with time zone"


def test_duplicates_are_dropped_by_event_id_and_acked_again(central: Central, station: WireStation, pg_url: str) -> None:
    events = (activation("A7K2Q9"), activation("Z3M8P1"))
    ids = sorted(e["eventID"] for e in events)
    station.publish(payload(*events))
    assert sorted(a["eventID"] for a in station.acks(2)) == ids

    station.publish(payload(*events))  # the station resends what it thinks was never acked

    assert sorted(a["eventID"] for a in station.acks(2)) == ids
    assert (central.count(), central.duplicates()) == (2, 2)
    assert query(pg_url, "SELECT event_id FROM events ORDER BY event_id") == [(i,) for i in ids]
    assert central.stats.database_retries == 0


@pytest.mark.parametrize("reorder", [False, True], ids=["same-order", "reversed-order"])
def test_share_group_consumers_racing_on_one_database_store_each_event_once(
    broker_url: str, prefix: str, station: WireStation, pg_url: str, reorder: bool
) -> None:
    group = unique("ingest")
    # Batches of one message: each transaction is one copy, so the two workers' copies interleave.
    sims = [Central(broker_url, prefix, pg_url, client_id=unique(f"ingest{n}"), group=group, batch_size=1)
            for n in range(2)]
    # Each row takes the database 0.1 s, so the two consumers' transactions interleave insert by insert: the
    # second waits on the first's uncommitted eventID, and, in opposite orders, each would hold a row the other
    # wants next.
    execute(
        pg_url,
        """
        CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(0.1); RETURN NEW; END $$;
        CREATE TRIGGER slow_insert BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_insert();
        """,
    )
    try:
        for sim in sims:
            sim.start()
        events = [activation(f"RACE{n}") for n in range(3)]
        ids = sorted(e["eventID"] for e in events)
        copies = 6
        for n in range(copies):
            # Round robin hands copy n to consumer n % 2; reversed, the two store the events in opposite orders.
            station.publish(payload(*(reversed(events) if reorder and n % 2 else events)))

        acks = station.acks(copies * len(events))
        assert sorted(a["eventID"] for a in acks) == sorted(ids * copies)
        assert {a["status"] for a in acks} == {"stored"}
        assert all(sim.stats.events_stored > 0 for sim in sims)  # both consumers took part
        assert [(sim.stats.database_retries, sim.stats.documents_rejected) for sim in sims] == [(0, 0), (0, 0)]
        assert sims[0].event_ids() == sims[1].event_ids() == ids
        assert sims[0].count() == len(events)
        assert sims[0].duplicates() + sims[1].duplicates() == (copies - 1) * len(events)
        assert query(pg_url, "SELECT event_id, count(*) FROM events GROUP BY event_id ORDER BY event_id") == [
            (i, 1) for i in ids
        ]
    finally:
        for sim in sims:
            sim.close()


def test_restart_keeps_what_was_stored(broker_url: str, prefix: str, station: WireStation, pg_url: str) -> None:
    before = [activation("K1"), activation("K2")]
    with simulator(broker_url, prefix, pg_url) as sim:
        station.publish(payload(*before))
        station.acks(2)
        assert sim.count() == 2

    later = activation("K3")
    with simulator(broker_url, prefix, pg_url) as restarted:  # a new process: tables exist, rows kept
        assert restarted.event_ids() == sorted(e["eventID"] for e in before)
        assert restarted.stored(before[0]["eventID"])["payload"] == before[0]  # type: ignore[index]

        station.publish(payload(before[1], later))
        assert sorted(a["eventID"] for a in station.acks(2)) == sorted([before[1]["eventID"], later["eventID"]])
        assert (restarted.count(), restarted.duplicates()) == (3, 1)


def test_refused_documents_are_acknowledged_to_the_broker_and_never_come_back(
    broker_url: str, prefix: str, station: WireStation, pg_url: str
) -> None:
    # Stored or not, each of these must get its PUBACK: a message failing inside the transaction would come back
    # after every reconnect. Values PostgreSQL cannot hold (a NUL in a text column) are refused before it; a time
    # with 40 decimal places is an RFC 3339 time like any other, stored.
    with simulator(broker_url, prefix, pg_url) as sim:
        nul = activation("N1")
        nul["bizStep"] = "commissioning\u0000"
        long_time = activation("N2")
        long_time["eventTime"] = "2025-03-01T08:30:00." + "0" * 40 + "+07:00"
        numeric = activation("N3")
        numeric["action"] = 7
        for body in (payload(nul), payload(numeric), b"\x00 not json"):
            assert station.publish(body).ok
        acks = station.acks(3)
        assert {a["status"] for a in acks} == {"rejected"}
        assert [a["eventID"] for a in acks] == [nul["eventID"], numeric["eventID"], None]
        rejected = sim.rejected()
        assert [r["reason"] for r in rejected] == [a["reason"] for a in acks]
        assert "bizStep: 'commissioning\\x00' is not a CBV 2.0 business step" in rejected[0]["reason"]
        assert "7 is not of type 'string'" in rejected[1]["reason"]
        assert rejected[2]["document"] == "\ufffd not json"  # kept, its NUL replaced (text cannot hold one)
        assert rejected[2]["received_at"].utcoffset() is not None
        station.publish(payload(long_time))
        assert station.acks(1) == [{"eventID": long_time["eventID"], "status": "stored"}]
        assert (sim.count(), sim.stats.database_retries) == (1, 0)

        # Every message got its PUBACK: reconnecting to the same session brings none of them back. The broker hands
        # a session what it still holds before anything newer, so once a later event is acked, all that came back
        # was handled: nothing did (no more refusals, no duplicate).
        sim.stop()
        sim.start()
        marker = activation("N4")
        station.publish(payload(marker))
        assert station.acks(1) == [{"eventID": marker["eventID"], "status": "stored"}]
        assert (len(sim.rejected()), sim.count(), sim.duplicates()) == (3, 2, 0)
    assert query(pg_url, "SELECT count(*) FROM quarantine") == [(3,)]


def test_workers_starting_together_on_a_fresh_database(broker_url: str, pg_url: str) -> None:
    made: list[Central] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def construct() -> None:
        gate.wait()
        try:
            # Each migrates the database (under PostgreSQL's advisory lock); it does not connect to the broker.
            made.append(Central(broker_url, unique("txpg"), pg_url))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=construct) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert {sim.count() for sim in made} == {0}
    finally:
        for sim in made:
            sim.close()


def test_unreachable_database_is_a_central_error(broker_url: str) -> None:
    with pytest.raises(CentralError, match="cannot migrate database"):
        Central(broker_url, unique("txpg"), f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
