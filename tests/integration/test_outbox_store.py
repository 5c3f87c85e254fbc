"""The outbox functions the relay uses, on real SQLite files: due rows, grouped delivery writes, counts.

Rows are written straight into the outbox table (as the line's plain-SQL commit writes them): these tests are
about reading and updating them, not about activations.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from station.domain import DeliveryState
from station.store import Store, StoreError, utcnow
from station.store.outbox import SQL_DUE

T0 = dt.datetime(2026, 11, 29, 3, 0, 0)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def sql_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def event_id(n: int) -> str:
    return f"urn:uuid:00000000-0000-4000-8000-{n:012d}"


def add_rows(path: Path, rows: list[tuple[int, str, float]]) -> None:
    """(n, state, next attempt in seconds after T0) for each row; row n gets id n and event_id(n)."""
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO outbox (id, event_id, stamp_id, kind, event_json, state, attempts, created_at, "
            "next_attempt_at, last_error) VALUES (?, ?, NULL, 'activation', ?, ?, 0, ?, ?, '')",
            [(n, event_id(n), f'{{"eventID":"{event_id(n)}"}}', state, sql_time(T0), sql_time(at(due)))
             for n, state, due in rows],
        )


def rows(path: Path) -> dict[int, dict]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY id")}


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "station.db")
    yield s
    s.close()


def test_due_rows_of_both_states_come_oldest_first_and_skip_excluded_confirmed_and_future_rows(store: Store) -> None:
    add_rows(store.path, [
        (1, "pending", 5), (2, "sent", 1), (3, "pending", 1), (4, "confirmed", 0), (5, "sent", 3),
        (6, "pending", 3), (7, "pending", 60), (8, "sent", 60), (9, "pending", 2),
    ])
    due = store.due_outbox(at(10), limit=10)
    # next_attempt_at first, then id, across pending and sent; row 4 is confirmed, rows 7 and 8 not due yet
    assert [item.id for item in due] == [2, 3, 9, 5, 6, 1]
    assert [item.state for item in due[:2]] == [DeliveryState.SENT, DeliveryState.PENDING]
    assert due[0].event_id == event_id(2) and due[0].event_json == f'{{"eventID":"{event_id(2)}"}}'
    assert [item.id for item in store.due_outbox(at(10), limit=3)] == [2, 3, 9]
    # The limit counts rows returned, however many excluded rows are skipped on the way.
    assert [item.id for item in store.due_outbox(at(10), limit=3, exclude_ids=[2, 3, 9, 5])] == [6, 1]
    assert [item.id for item in store.due_outbox(at(2), limit=10)] == [2, 3, 9]
    assert store.due_outbox(at(10), limit=0) == []


def test_due_rows_are_read_along_the_index_without_sorting_the_outbox(store: Store) -> None:
    """With state IN (…) SQLite sorted every due row, event JSON included, to return the first few: 4 ms a
    call with 30,000 rows due, and the relay asks many times a second while it drains a backlog."""
    with sqlite3.connect(store.path) as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN " + SQL_DUE, ("pending", sql_time(T0), 10)).fetchall()
    details = " / ".join(row[-1] for row in plan)
    assert "ix_outbox_due" in details and "TEMP B-TREE" not in details, details


def test_one_grouped_write_marks_sent_failed_and_confirmed_in_that_order(store: Store) -> None:
    add_rows(store.path, [(n, "pending", 0) for n in range(1, 1301)])
    add_rows(store.path, [(2000, "confirmed", 0)])
    now, retry, backoff = at(10), at(40), at(12)
    sent = list(range(1, 1201))                        # more than one IN list's worth
    confirmed = [event_id(n) for n in range(1, 601)] + [event_id(5), event_id(2000), "urn:uuid:unknown"]
    changed = store.record_delivery_async(
        sent=sent + [2000], sent_at=now, retry_at=retry,
        failed=[([1250, 1251], "broker refused: Not authorized (0x87)" + "!" * 600, backoff)],
        confirmed=confirmed, confirmed_at=now,
    ).result(timeout=10)
    assert changed == 600  # rows 1..600 once each; event 5 repeated, 2000 already confirmed, one unknown

    after = rows(store.path)
    assert {after[n]["state"] for n in range(1, 601)} == {"confirmed"}         # sent, then confirmed: confirmed
    assert {after[n]["confirmed_at"] for n in range(1, 601)} == {sql_time(now)}
    assert {after[n]["state"] for n in range(601, 1201)} == {"sent"}
    assert {(after[n]["sent_at"], after[n]["next_attempt_at"], after[n]["attempts"]) for n in range(601, 1201)} \
        == {(sql_time(now), sql_time(retry), 1)}
    assert after[1250]["state"] == "pending" and after[1250]["attempts"] == 1
    assert after[1250]["next_attempt_at"] == sql_time(backoff)
    assert after[1250]["last_error"].startswith("broker refused: Not authorized (0x87)")
    assert len(after[1250]["last_error"]) == 500
    assert after[1299]["attempts"] == 0 and after[1299]["state"] == "pending"   # not named: untouched
    assert after[2000]["state"] == "confirmed" and after[2000]["attempts"] == 0  # never set back to sent
    assert store.outbox_counts() == {DeliveryState.PENDING: 100, DeliveryState.SENT: 600,
                                     DeliveryState.CONFIRMED: 601}


def test_the_synchronous_marks_keep_their_meaning(store: Store) -> None:
    add_rows(store.path, [(n, "pending", 0) for n in range(1, 4)])
    store.mark_published([1, 2], at(1), at(31))
    assert store.mark_confirmed([event_id(1), event_id(1)], at(2)) == 1
    assert store.mark_confirmed([event_id(1)], at(3)) == 0
    store.mark_publish_failed([1, 3], "no PUBACK", at(4))
    after = rows(store.path)
    assert (after[1]["state"], after[1]["attempts"], after[1]["last_error"]) == ("confirmed", 1, "")
    assert (after[2]["state"], after[2]["next_attempt_at"]) == ("sent", sql_time(at(31)))
    assert (after[3]["state"], after[3]["attempts"], after[3]["last_error"]) == ("pending", 1, "no PUBACK")
    assert [item.id for item in store.due_outbox(at(10), 10)] == [3]
    assert [item.id for item in store.due_outbox(at(40), 10)] == [3, 2]


def test_a_grouped_write_is_refused_once_the_store_is_closed(tmp_path: Path) -> None:
    s = Store(tmp_path / "station.db")
    s.close()
    with pytest.raises(StoreError):
        s.record_delivery_async(confirmed=[event_id(1)], confirmed_at=utcnow())


def test_outbox_counts_on_an_empty_outbox(store: Store) -> None:
    assert store.outbox_counts() == {DeliveryState.PENDING: 0, DeliveryState.SENT: 0, DeliveryState.CONFIRMED: 0}
