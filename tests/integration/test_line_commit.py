"""The line's commit in plain SQL (station/store/line_commit.py) on real SQLite files: one activation as fast as a
plain sqlite3 commit, every guard kept, all or nothing."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path

import pytest

from station.domain import Batch, StampState, VoidReason
from station.errors import InvalidTransition
from station.store import BatchLocked, DuplicateEvent, ScanRecord, Store, StoreError, Voiding
from tests.integration.store_fixtures import (  # noqa: F401 (fixtures)
    activation, batch, event, plain_rows, printed_stamps, serials, store, uri)


def test_the_line_connection_is_wal_full_with_busy_timeout_and_foreign_keys(store: Store) -> None:
    conn = store.database.plain_connection
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (10_000,)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_activate_commits_stamp_outbox_and_scan_and_returns_the_stamp_as_committed(store: Store, batch: Batch) -> None:
    stamp = printed_stamps(store, batch, 1)[0]
    scan = ScanRecord("verifier", stamp.uri, stamp.uri.encode() + b"\r\n", "verified")
    done = store.activate(stamp.id, stamp.uri, event(7), scan=scan)
    assert done == store.stamp(stamp.id)
    assert (done.state, done.serial, done.uri, done.batch_id) == (StampState.ACTIVATED, stamp.serial, stamp.uri,
                                                                  batch.id)
    # Committed, not left in an open transaction: a second connection sees all three rows.
    assert plain_rows(store.path, "SELECT state, read_text FROM stamps WHERE id = ?", (stamp.id,)) == [
        ("activated", stamp.uri)]
    assert plain_rows(store.path, "SELECT event_id, stamp_id, kind, state FROM outbox") == [
        (event(7)["eventID"], stamp.id, "activation", "pending")]
    assert plain_rows(store.path, "SELECT stamp_id, outcome, raw_hex FROM scans") == [
        (stamp.id, "verified", scan.raw.hex())]


def test_void_and_mark_sent_to_printer_return_the_stamp_as_committed(store: Store, batch: Batch) -> None:
    stamp = store.allocate_stamp(batch.id, serials("AAAAAAAAA1"), uri)
    sent = store.mark_sent_to_printer(stamp.id)
    assert sent.state is StampState.SENT_TO_PRINTER and sent == store.stamp(stamp.id)
    voided = store.void(stamp.id, VoidReason.WRONG_CONTENT, "read HUE0000001", event(1), read_text="HUE0000001")
    assert (voided.state, voided.void_reason, voided.void_detail) == (StampState.VOIDED, VoidReason.WRONG_CONTENT,
                                                                      "read HUE0000001")
    assert voided == store.stamp(stamp.id)


def test_a_duplicate_event_is_named_and_nothing_of_its_commit_is_written(store: Store, batch: Batch) -> None:
    a, b, c = printed_stamps(store, batch, 3)
    store.activate(a.id, a.uri, event(1))
    with pytest.raises(DuplicateEvent, match=event(1)["eventID"]):
        store.activate(b.id, b.uri, event(1), scan=ScanRecord("verifier", b.uri, b"x", "verified"))
    # The same eventID twice in one group commit: refused too, even though neither is in the outbox yet.
    with pytest.raises(DuplicateEvent, match=event(2)["eventID"]):
        store.commit_line(activations=[activation(b, 2), activation(c, 2)])
    assert [store.stamp(s.id).state for s in (b, c)] == [StampState.SENT_TO_PRINTER] * 2
    assert plain_rows(store.path, "SELECT count(*) FROM outbox") == [(1,)]
    assert plain_rows(store.path, "SELECT count(*) FROM scans") == [(0,)]
    assert store.activate(b.id, b.uri, event(3)).state is StampState.ACTIVATED  # the connection is usable again


def test_activating_twice_or_too_early_names_the_state(store: Store, batch: Batch) -> None:
    a = printed_stamps(store, batch, 1)[0]
    store.activate(a.id, a.uri, event(1))
    with pytest.raises(InvalidTransition, match=f"stamp {a.id} \\(serial {a.serial}\\): a stamp in state "
                                                "'activated' cannot become 'activated'"):
        store.activate(a.id, a.uri, event(2))
    fresh = store.allocate_stamp(batch.id, serials("NEVERSENT1"), uri)
    with pytest.raises(InvalidTransition, match="'allocated' cannot become 'activated'"):
        store.activate(fresh.id, fresh.uri, event(3))
    with pytest.raises(StoreError, match="unknown stamp 999999"):
        store.activate(999_999, "x", event(4))
    assert plain_rows(store.path, "SELECT count(*) FROM outbox") == [(1,)]


def test_a_refused_stamp_in_a_group_is_named_by_its_own_state_and_the_group_writes_nothing(
    store: Store, batch: Batch,
) -> None:
    a, b, c, d = printed_stamps(store, batch, 4)
    store.activate(c.id, c.uri, event(1))
    # a and b would be activated by the statement before c refuses: they must neither be blamed nor stay changed.
    with pytest.raises(InvalidTransition, match=f"stamp {c.id} .*'activated' cannot become 'activated'"):
        store.commit_line(activations=[activation(a, 2), activation(b, 3), activation(c, 4), activation(d, 5)])
    fresh = store.allocate_stamp(batch.id, serials("NEVERSENT1"), uri)
    with pytest.raises(InvalidTransition, match=f"stamp {fresh.id} \\(serial NEVERSENT1\\): .*'allocated' cannot"):
        store.commit_line(activations=[activation(a, 6), activation(fresh, 7)])
    with pytest.raises(InvalidTransition, match=f"stamp {a.id} .*'activated' cannot become 'activated'"):
        store.commit_line(activations=[activation(a, 8), activation(a, 9)])  # the same stamp twice
    with pytest.raises(InvalidTransition, match=f"stamp {c.id} .*'activated' cannot become 'voided'"):
        store.commit_line(voids=[Voiding(d.id, VoidReason.NO_READ, "timeout", event(10)),
                                 Voiding(c.id, VoidReason.NO_READ, "timeout", event(11))])
    assert [store.stamp(s.id).state for s in (a, b, d)] == [StampState.SENT_TO_PRINTER] * 3
    assert plain_rows(store.path, "SELECT count(*) FROM outbox") == [(1,)]


def test_a_stamp_printed_and_activated_in_the_same_commit(store: Store, batch: Batch) -> None:
    stamps = store.allocate_stamps(batch.id, 3, (f"Q{n:09d}" for n in itertools.count()).__next__, uri)
    store.commit_line(printed=[s.id for s in stamps], activations=[activation(s, n) for n, s in enumerate(stamps)])
    assert {store.stamp(s.id).state for s in stamps} == {StampState.ACTIVATED}


def test_the_batch_lock_is_checked_inside_the_single_activation(store: Store, batch: Batch) -> None:
    a, b = printed_stamps(store, batch, 2)
    store.lock_batch(batch.id, "recall 2026-12")
    with pytest.raises(BatchLocked, match="MX2611A is locked \\(recall 2026-12\\)"):
        store.activate(a.id, a.uri, event(1), scan=ScanRecord("verifier", a.uri, b"x", "verified"))
    with pytest.raises(BatchLocked):
        store.commit_line(activations=[activation(b, 2)])
    assert [store.stamp(s.id).state for s in (a, b)] == [StampState.SENT_TO_PRINTER] * 2
    assert plain_rows(store.path, "SELECT count(*) FROM outbox WHERE kind = 'activation'") == [(0,)]
    assert plain_rows(store.path, "SELECT count(*) FROM scans") == [(0,)]
    # A void is not an activation: a locked batch's stamps can still be voided.
    assert store.void(a.id, VoidReason.BATCH_LOCKED, "recall", event(3)).state is StampState.VOIDED
    store.unlock_batch(batch.id, "released")
    assert store.activate(b.id, b.uri, event(4)).state is StampState.ACTIVATED


def test_a_waited_commit_never_overtakes_commits_its_caller_queued(store: Store, batch: Batch) -> None:
    """activate() runs on its caller's thread only when nothing is queued; otherwise behind the queued commits."""
    stamps = store.allocate_stamps(batch.id, 200, (f"R{n:09d}" for n in itertools.count()).__next__, uri)
    futures = [store.commit_line_async(printed=[s.id]) for s in stamps]
    # Only the last queued commit sends the last stamp to the printer: overtaking it would be an InvalidTransition.
    done = store.activate(stamps[-1].id, stamps[-1].uri, event(1))
    assert all(f.done() for f in futures) and done.state is StampState.ACTIVATED


def test_waited_and_queued_commits_from_many_threads_are_all_written(store: Store, batch: Batch) -> None:
    stamps = printed_stamps(store, batch, 120)
    errors: list[BaseException] = []

    def activate(chunk: list, base: int) -> None:
        try:
            for n, s in enumerate(chunk):
                if n % 3 == 0:
                    store.commit_line_async(activations=[activation(s, base + n, scan=True)]).result()
                else:
                    store.activate(s.id, s.uri, event(base + n), scan=ScanRecord("verifier", s.uri, b"", "verified"))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=activate, args=(stamps[i::4], 1000 * (i + 1))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.counts(batch.id).state(StampState.ACTIVATED) == 120
    assert plain_rows(store.path, "SELECT count(*), count(DISTINCT stamp_id) FROM outbox") == [(120, 120)]
    assert plain_rows(store.path, "SELECT count(*) FROM scans") == [(120,)]


def test_a_closed_store_refuses_line_commits(tmp_path: Path) -> None:
    store = Store(tmp_path / "closed.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.activate(1, "x", event(1))
    with pytest.raises(StoreError, match="closed"):
        store.commit_line_async(printed=[1])

