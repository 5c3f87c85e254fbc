"""The local database on real SQLite files: durability settings, serial uniqueness, atomic activation, outbox."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from station.domain import Batch, DeliveryState, Product, StampState, VoidReason
from station.errors import DuplicateSerial, InvalidTransition
from station.store import ScanRecord, Store, StoreError, utcnow
from station.store.models import Base

GTIN = "08938603001013"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "station.db")
    s.sync_products([Product(GTIN, "Mè xừng Thông Hương 250g", "Cơ sở Thông Hương", shelf_life_days=180)])
    yield s
    s.close()


@pytest.fixture
def batch(store: Store) -> Batch:
    return store.create_batch(Batch(None, GTIN, "MX2611A", dt.date(2026, 11, 29), dt.date(2027, 5, 28)))


def serials(*values: str):
    it = iter(values)
    return lambda: next(it)


def uri(serial: str) -> str:
    return f"https://truyxuat.example.vn/01/{GTIN}/10/MX2611A/21/{serial}"


def event(n: int) -> dict:
    return {"eventID": f"urn:uuid:00000000-0000-4000-8000-{n:012d}", "type": "ObjectEvent"}


def test_every_connection_is_wal_full_with_busy_timeout(store: Store) -> None:
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("busy_timeout") == 10_000
    assert store.pragma("foreign_keys") == 1


def test_migrations_match_the_models(store: Store) -> None:
    with store._reader_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_runs_no_migration_twice(tmp_path: Path) -> None:
    Store(tmp_path / "a.db").close()
    with Store(tmp_path / "a.db") as again:
        assert again.products() == []


def test_serial_is_unique_per_gtin_for_ever(store: Store, batch: Batch) -> None:
    first = store.allocate_stamp(batch.id, serials("AAAAAAAAAA"), uri)
    # The generator offers the same serial again: the database refuses it and the next candidate is taken.
    second = store.allocate_stamp(batch.id, serials("AAAAAAAAAA", "BBBBBBBBBB"), uri)
    assert (first.serial, second.serial) == ("AAAAAAAAAA", "BBBBBBBBBB")
    with pytest.raises(DuplicateSerial):
        store.allocate_stamp(batch.id, lambda: "AAAAAAAAAA", uri)
    # Not even a raw insert gets past the unique index.
    with sqlite3.connect(store.path) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute("INSERT INTO stamps (gtin, serial, batch_id, state, uri, void_detail, allocated_at) "
                    "VALUES (?, 'AAAAAAAAAA', ?, 'allocated', 'x', '', '2026-01-01')", (GTIN, batch.id))


def test_activation_writes_stamp_outbox_and_scan_together(store: Store, batch: Batch) -> None:
    stamp = store.allocate_stamp(batch.id, serials("K7Q2M9X4PA"), uri)
    store.mark_sent_to_printer(stamp.id)
    scan = ScanRecord("verifier", stamp.uri, stamp.uri.encode(), "verified")
    done = store.activate(stamp.id, stamp.uri, event(1), scan=scan)
    assert done.state is StampState.ACTIVATED
    assert [i.event_id for i in store.due_outbox(utcnow(), 10)] == [event(1)["eventID"]]
    assert store.scans()[0].outcome == "verified"


def test_failed_activation_leaves_nothing_behind(store: Store, batch: Batch) -> None:
    a = store.allocate_stamp(batch.id, serials("AAAAAAAAA1"), uri)
    b = store.allocate_stamp(batch.id, serials("AAAAAAAAA2"), uri)
    for s in (a, b):
        store.mark_sent_to_printer(s.id)
    store.activate(a.id, a.uri, event(1))
    # Same eventID again: the outbox insert fails, so the stamp must not be activated either.
    with pytest.raises(Exception):
        store.activate(b.id, b.uri, event(1))
    assert store.stamp(b.id).state is StampState.SENT_TO_PRINTER
    assert store.outbox_counts()[DeliveryState.PENDING] == 1


def test_transitions_are_enforced(store: Store, batch: Batch) -> None:
    stamp = store.allocate_stamp(batch.id, serials("AAAAAAAAA1"), uri)
    with pytest.raises(InvalidTransition):
        store.activate(stamp.id, stamp.uri, event(1))  # never sent to the printer
    store.void(stamp.id, VoidReason.OPERATOR, "test", event(2))
    with pytest.raises(InvalidTransition, match="'voided' cannot become 'sent_to_printer'"):
        store.mark_sent_to_printer(stamp.id)


def test_closed_batch_gets_no_new_stamps(store: Store, batch: Batch) -> None:
    store.close_batch(batch.id)
    with pytest.raises(StoreError, match="closed"):
        store.allocate_stamp(batch.id, serials("AAAAAAAAA1"), uri)


def test_duplicate_lot_is_refused(store: Store, batch: Batch) -> None:
    with pytest.raises(StoreError, match="already exists"):
        store.create_batch(Batch(None, GTIN, "MX2611A"))


def test_outbox_lifecycle(store: Store, batch: Batch) -> None:
    ids = []
    for n in range(3):
        s = store.allocate_stamp(batch.id, serials(f"SERIAL{n:04d}"), uri)
        store.mark_sent_to_printer(s.id)
        store.activate(s.id, s.uri, event(n))
    due = store.due_outbox(utcnow(), 10)
    ids = [i.id for i in due]
    assert len(due) == 3 and [i.attempts for i in due] == [0, 0, 0]
    assert len(store.due_outbox(utcnow(), 10, exclude_ids=ids[:2])) == 1
    later = utcnow() + dt.timedelta(seconds=30)
    store.mark_published(ids, utcnow(), later)
    assert store.due_outbox(utcnow(), 10) == []                     # waiting for the server's ack
    assert len(store.due_outbox(later, 10)) == 3                    # not acked in time: due again
    assert store.mark_confirmed([event(0)["eventID"], event(1)["eventID"]], utcnow()) == 2
    assert store.mark_confirmed([event(0)["eventID"]], utcnow()) == 0   # a repeated ack changes nothing
    assert [i.event_id for i in store.due_outbox(later, 10)] == [event(2)["eventID"]]
    store.mark_publish_failed([ids[2]], "broker refused", utcnow())
    counts = store.outbox_counts()
    assert counts[DeliveryState.CONFIRMED] == 2 and counts[DeliveryState.SENT] == 1


def test_counts_by_state_and_reason(store: Store, batch: Batch) -> None:
    names = (f"C{n:09d}" for n in itertools.count())
    for n in range(4):
        s = store.allocate_stamp(batch.id, lambda: next(names), uri)
        store.mark_sent_to_printer(s.id)
        if n < 2:
            store.activate(s.id, s.uri, event(n))
        else:
            store.void(s.id, VoidReason.NO_READ, "timeout", event(n))
    counts = store.counts(batch.id)
    assert counts.state(StampState.ACTIVATED) == 2
    assert counts.voided_by_reason == {"no_read": 2}
    assert counts.printed == 4
    assert counts.delivery[DeliveryState.PENDING] == 4


def test_two_stores_on_one_file_wait_for_each_other(tmp_path: Path) -> None:
    """A relay in a second process shares the file: BEGIN IMMEDIATE + busy_timeout, no 'database is locked'."""
    path = tmp_path / "shared.db"
    a, b = Store(path), Store(path)
    try:
        a.sync_products([Product(GTIN, "A", "P")])
        batch = a.create_batch(Batch(None, GTIN, "L1"))
        names = (f"S{n:09d}" for n in itertools.count())
        import threading

        def work(store: Store) -> None:
            for _ in range(50):
                s = store.allocate_stamp(batch.id, lambda: next(names), uri)
                store.mark_sent_to_printer(s.id)

        threads = [threading.Thread(target=work, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert a.counts().state(StampState.SENT_TO_PRINTER) == 100
    finally:
        a.close()
        b.close()
