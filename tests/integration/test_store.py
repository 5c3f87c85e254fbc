"""The local database on real SQLite files: durability settings, serial uniqueness, atomic activation, outbox."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from station.domain import Batch, DeliveryState, Product, StampState, VoidReason
from station.errors import DuplicateSerial, InvalidTransition
from station.store import ScanRecord, Store, StoreError, utcnow
from station.store.models import Base
from tests.integration.store_fixtures import (  # noqa: F401 (fixtures)
    GTIN, batch, event, plain_rows, printed_stamps, serials, store, uri)


def test_every_connection_is_wal_full_with_busy_timeout(store: Store) -> None:
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("busy_timeout") == 10_000
    assert store.pragma("foreign_keys") == 1


def test_migrations_match_the_models(store: Store) -> None:
    with store.database.reader_engine.connect() as conn:
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
    # Every time below is `now` and steps from it, so the schedule is asserted at its boundary, whatever the wall
    # clock does meanwhile (rows are due from their activation, which came before `now`).
    now = utcnow()
    due = store.due_outbox(now, 10)
    ids = [i.id for i in due]
    assert len(due) == 3 and [i.attempts for i in due] == [0, 0, 0]
    assert len(store.due_outbox(now, 10, exclude_ids=ids[:2])) == 1
    later = now + dt.timedelta(seconds=30)
    store.mark_published(ids, now, later)
    assert store.due_outbox(later - dt.timedelta(milliseconds=1), 10) == []   # waiting for the server's ack
    assert len(store.due_outbox(later, 10)) == 3                    # not acked in time: due again
    assert store.mark_confirmed([event(0)["eventID"], event(1)["eventID"]], now) == 2
    assert store.mark_confirmed([event(0)["eventID"]], now) == 0   # a repeated ack changes nothing
    assert [i.event_id for i in store.due_outbox(later, 10)] == [event(2)["eventID"]]
    store.mark_publish_failed([ids[2]], "broker refused", now)
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


def test_printed_only_leaves_out_serials_given_back_unprinted(store: Store, batch: Batch) -> None:
    a, b, c = printed_stamps(store, batch, 3)
    unprinted = store.allocate_stamp(batch.id, serials("U000000001"), uri)
    store.void(a.id, VoidReason.NO_READ, "no read within 3s", event(1))
    store.activate(c.id, c.uri, event(3))
    assert store.release_unused([unprinted.id]) == 1
    assert [s.id for s in store.stamps(batch_id=batch.id, state=StampState.VOIDED, printed_only=True)] == [a.id]
    assert {s.id for s in store.stamps(batch_id=batch.id, printed_only=True)} == {a.id, b.id, c.id}
    assert [s.id for s in store.stamps(batch_id=batch.id, state=StampState.UNUSED)] == [unprinted.id]


# -- serials reserved and never printed (issue 9 #5) ------------------------------------------------------------------

def test_serials_given_back_unprinted_are_kept_counted_never_published_nor_reused(store: Store, batch: Batch) -> None:
    (printed,) = printed_stamps(store, batch, 1)
    store.activate(printed.id, printed.uri, event(1))
    reserved = store.allocate_stamps(batch.id, 3, serials("R000000001", "R000000002", "R000000003"), uri)
    assert store.release_unused([s.id for s in reserved]) == 3
    assert store.release_unused([s.id for s in reserved]) == 0          # only allocated stamps change
    assert store.release_unused([printed.id]) == 0                      # an activated one stays activated
    assert plain_rows(store.path, "SELECT state, void_reason, void_detail FROM stamps WHERE serial LIKE 'R%'") \
        == [("unused", None, "reserved, never printed")] * 3
    assert plain_rows(store.path, "SELECT kind FROM outbox") == [("activation",)]   # no event for them
    counts = store.counts(batch.id)
    assert (counts.unused, counts.printed, counts.voided_by_reason) == (3, 1, {})
    assert counts.delivery == {DeliveryState.PENDING: 1}
    assert store.in_flight_stamps() == []
    # Never reused: the serial stays taken, and an unused stamp can become nothing else.
    with pytest.raises(DuplicateSerial):
        store.allocate_stamp(batch.id, lambda: "R000000001", uri)
    with pytest.raises(InvalidTransition, match="'unused' cannot become 'sent_to_printer'"):
        store.mark_sent_to_printer(reserved[0].id)
    with pytest.raises(InvalidTransition, match="'unused' cannot become 'voided'"):
        store.void(reserved[0].id, VoidReason.OPERATOR, "by hand", event(2))
    with sqlite3.connect(store.path) as raw, pytest.raises(sqlite3.IntegrityError, match="ck_stamps_state"):
        raw.execute("UPDATE stamps SET state = 'lost' WHERE id = ?", (reserved[0].id,))


def test_an_interrupted_run_splits_into_stamps_that_may_be_on_labels_and_serials_never_sent(
        store: Store, batch: Batch) -> None:
    names = (f"S{n:09d}" for n in itertools.count()).__next__
    block = store.allocate_stamps(batch.id, 10, names, uri)
    store.commit_line(printed=[s.id for s in block[:3]])         # written as printed: 0, 1, 2
    store.activate(block[0].id, block[0].uri, event(1))
    maybe, never = store.interrupted_stamps(unrecorded_prints=4)
    # 1 and 2 were sent to the printer; 3-6 (the four after the last print written) may have gone to it before
    # their print was written; 7-9 cannot have.
    assert [s.serial for s in maybe] == [block[i].serial for i in (1, 2, 3, 4, 5, 6)]
    assert [s.serial for s in never] == [block[i].serial for i in (7, 8, 9)]
    # A run that wrote no print at all: its first serials may be on labels too.
    other = store.create_batch(Batch(None, GTIN, "MX2611B"))
    fresh = store.allocate_stamps(other.id, 3, names, uri)
    maybe, never = store.interrupted_stamps(unrecorded_prints=2)
    assert [s.id for s in maybe if s.batch_id == other.id] == [fresh[0].id, fresh[1].id]
    assert [s.id for s in never if s.batch_id == other.id] == [fresh[2].id]


def _database_at_0004(path: Path) -> None:
    """A database as the station before migration 0005 left it: a stamp voided 'unused' with its void event."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from station.store import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    engine.dispose()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("INSERT INTO products (gtin, name, producer, region, updated_at) VALUES (?, 'x', 'y', '', "
                    "'2026-12-01')", (GTIN,))
        raw.execute("INSERT INTO batches (id, gtin, lot, origin, stages, created_at) VALUES (1, ?, 'L1', '', '[]', "
                    "'2026-12-01')", (GTIN,))
        for n, (state, reason, outbox) in enumerate([("activated", None, "confirmed"), ("voided", "unused", "pending"),
                                                     ("voided", "unused", "confirmed"), ("voided", "no_read", "pending"),
                                                     ("allocated", None, None)], start=1):
            raw.execute("INSERT INTO stamps (id, gtin, serial, batch_id, state, uri, void_reason, void_detail, "
                        "allocated_at, voided_at) VALUES (?, ?, ?, 1, ?, 'u', ?, '', '2026-12-01', ?)",
                        (n, GTIN, f"M{n:09d}", state, reason, "2026-12-01" if reason else None))
            if outbox:
                raw.execute("INSERT INTO outbox (event_id, stamp_id, kind, event_json, state, attempts, created_at, "
                            "next_attempt_at, last_error) VALUES (?, ?, ?, '{}', ?, 1, '2026-12-01', '2026-12-01', '')",
                            (f"urn:uuid:{n}", n, "activation" if state == "activated" else "void", outbox))
        raw.execute("INSERT INTO scans (at, source, text, raw_hex, outcome, detail, stamp_id) VALUES "
                    "('2026-12-01', 'v', 'u', '', 'verified', '', 1)")


def test_migration_0005_keeps_serials_voided_unused_as_unused_and_drops_their_unsent_events(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _database_at_0004(path)
    with Store(path) as store:
        assert plain_rows(path, "SELECT id, state, void_reason FROM stamps ORDER BY id") == [
            (1, "activated", None), (2, "unused", None), (3, "unused", None), (4, "voided", "no_read"),
            (5, "allocated", None)]
        # The void event never confirmed leaves the outbox; the one the server has is kept as the record.
        assert plain_rows(path, "SELECT stamp_id, state FROM outbox ORDER BY id") == [
            (1, "confirmed"), (3, "confirmed"), (4, "pending")]
        assert plain_rows(path, "SELECT stamp_id FROM scans") == [(1,)]
        assert store.counts().unused == 2
        assert store.pragma("foreign_keys") == 1
        assert plain_rows(path, "PRAGMA foreign_key_check") == []
        # The copied table kept its unique serials and its indexes.
        indexes = {row[0] for row in plain_rows(path, "SELECT name FROM sqlite_master WHERE tbl_name = 'stamps' "
                                                      "AND type = 'index'")}
        assert {"ix_stamps_batch_state", "ix_stamps_state"} <= indexes
        with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError):
            raw.execute("INSERT INTO stamps (gtin, serial, batch_id, state, uri, void_detail, allocated_at) "
                        "VALUES (?, 'M000000001', 1, 'allocated', 'x', '', '2026-01-01')", (GTIN,))
    with Store(path) as store:   # and the line's own connection has its foreign keys on
        assert store.database.plain_connection.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_recovery_voids_what_may_be_on_labels_and_gives_back_what_was_never_sent(store: Store, batch: Batch) -> None:
    from station.engine import UNRECORDED_PRINTS, LineEngine, StationIdentity

    names = (f"K{n:09d}" for n in itertools.count()).__next__
    block = store.allocate_stamps(batch.id, UNRECORDED_PRINTS + 12, names, uri)   # what a killed run left
    store.commit_line(printed=[s.id for s in block[:2]])
    engine = LineEngine(store, None, StationIdentity("hue", "line-1", "truyxuat.example.vn", "urn:x"))  # type: ignore[arg-type]
    alarms: list[str] = []
    engine.add_listener(lambda e: alarms.append(e.alarm.code) if hasattr(e, "alarm") else None)
    assert engine.recover() == 2 + UNRECORDED_PRINTS
    state = dict(plain_rows(store.path, "SELECT id, coalesce(void_reason, state) FROM stamps"))
    assert [state[s.id] for s in block] == ["line_stopped"] * (2 + UNRECORDED_PRINTS) + ["unused"] * 10
    # A void event for each voided stamp, nothing for the serials given back.
    assert plain_rows(store.path, "SELECT count(*), count(DISTINCT stamp_id) FROM outbox WHERE kind = 'void'") \
        == [(2 + UNRECORDED_PRINTS, 2 + UNRECORDED_PRINTS)]
    assert alarms == ["interrupted_stamps_voided"]
    assert engine.recover() == 0 and store.in_flight_stamps() == []
