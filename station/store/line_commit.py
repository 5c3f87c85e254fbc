"""The line's commit, the station's hot path: what the printed line decided since its last commit (stamps printed,
activated, voided; the reads that decided them) in one plain-SQL transaction, its state guards derived from
``station.domain.ALLOWED_TRANSITIONS``. ``write_scans`` is the one way a read enters the ``scans`` table."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from station.domain import ALLOWED_TRANSITIONS, Stamp, StampState, VoidReason, check_transition
from station.errors import InvalidTransition
from station.store.models import BatchRow, OutboxRow, ScanRow, StampRow
from station.store.outbox import write_events
from station.store.records import Activation, BatchLocked, DuplicateEvent, ScanRecord, StoreError, Voiding, utcnow
from station.store.sql import ExecuteMany, Table, marks, quoted, sql_time

_S, _B, _SC, _O = Table(StampRow), Table(BatchRow), Table(ScanRow), Table(OutboxRow)

# The states a stamp may be in to become each state: the domain's transitions, read backwards.
FROM_STATES: dict[StampState, tuple[str, ...]] = {
    target: tuple(state.value for state, targets in ALLOWED_TRANSITIONS.items() if target in targets)
    for target in StampState
}


def _guard(target: StampState) -> str:
    return f"{_S.state} IN ({quoted(FROM_STATES[target])})"


_SQL_PRINTED = (f"UPDATE {_S.table} SET {_S.state} = '{StampState.SENT_TO_PRINTER.value}', {_S.printed_at} = ? "
                f"WHERE {_S.id} = ? AND {_guard(StampState.SENT_TO_PRINTER)}")
_SQL_ACTIVATE = (f"UPDATE {_S.table} SET {_S.state} = '{StampState.ACTIVATED.value}', {_S.verified_at} = ?, "
                 f"{_S.activated_at} = ?, {_S.read_text} = ?, {_S.quality_grade} = ?, {_S.quality} = ? "
                 f"WHERE {_S.id} = ? AND {_guard(StampState.ACTIVATED)}")
_SQL_VOID_READ = (f"UPDATE {_S.table} SET {_S.state} = '{StampState.VOIDED.value}', {_S.void_reason} = ?, "
                  f"{_S.void_detail} = ?, {_S.voided_at} = ?, {_S.read_text} = ? "
                  f"WHERE {_S.id} = ? AND {_guard(StampState.VOIDED)}")
_SQL_VOID = (f"UPDATE {_S.table} SET {_S.state} = '{StampState.VOIDED.value}', {_S.void_reason} = ?, "
             f"{_S.void_detail} = ?, {_S.voided_at} = ? WHERE {_S.id} = ? AND {_guard(StampState.VOIDED)}")
_SQL_LOCKED = (f"SELECT b.{_B.lot}, b.{_B.lock_reason} FROM {_S.table} s JOIN {_B.table} b ON b.{_B.id} = s.{_S.batch_id} "
               f"WHERE s.{_S.id} IN ({{marks}}) AND b.{_B.locked_at} IS NOT NULL LIMIT 1")
_SQL_STATE = f"SELECT {_S.cols('state', 'serial')} FROM {_S.table} WHERE {_S.id} = ?"
_SQL_STAMP = (f"SELECT {_S.cols('id', 'gtin', 'serial', 'batch_id', 'state', 'uri', 'void_reason', 'void_detail')} "
              f"FROM {_S.table} WHERE {_S.id} = ?")
_SQL_SCAN = (f"INSERT INTO {_SC.table} ({_SC.cols('at', 'source', 'text', 'raw_hex', 'outcome', 'detail', 'stamp_id')}) "
             "VALUES (?, ?, ?, ?, ?, ?, ?)")
_SQL_DUPLICATES = f"SELECT {_O.event_id} FROM {_O.table} WHERE {_O.event_id} IN ({{marks}})"


def write_scans(executemany: ExecuteMany, scans: Iterable[tuple[ScanRecord, int | None]]) -> None:
    """Record reads (each with the stamp it decided, or None), in the caller's transaction."""
    rows = [(sql_time(scan.at), scan.source, scan.text, scan.raw.hex(), scan.outcome, scan.detail, stamp_id)
            for scan, stamp_id in scans]
    if rows:
        executemany(_SQL_SCAN, rows)


def _stamp_of(row: tuple[Any, ...] | None) -> Stamp:
    """A Stamp from a ``_SQL_STAMP`` row."""
    assert row is not None
    stamp_id, gtin, serial, batch_id, state, uri, void_reason, void_detail = row
    return Stamp(id=stamp_id, gtin=gtin, serial=serial, batch_id=batch_id, state=StampState(state), uri=uri,
                 void_reason=VoidReason(void_reason) if void_reason else None, void_detail=void_detail or "")


def _duplicate_events(cur: sqlite3.Cursor, event_ids: list[str]) -> DuplicateEvent:
    """The outbox refused an eventID: roll the commit back, then name the events that were already there (or that
    the commit held twice)."""
    cur.execute("ROLLBACK")
    present = {row[0] for row in cur.execute(_SQL_DUPLICATES.format(marks=marks(len(event_ids))), event_ids)}
    twice = {e for e in event_ids if event_ids.count(e) > 1}
    named = ", ".join(sorted(present | twice)) or "?"
    return DuplicateEvent(f"eventID already in the outbox or twice in one commit: {named}; nothing was written")


def _refuse(cur: sqlite3.Cursor, target: StampState, stamp_id: int) -> None:
    """Raise why the guarded statement left this stamp alone (read inside the transaction)."""
    found = cur.execute(_SQL_STATE, (stamp_id,)).fetchone()
    if found is None:
        raise StoreError(f"unknown stamp {stamp_id}")
    state, serial = found
    if state not in FROM_STATES[target]:
        try:
            check_transition(StampState(state), target)
        except InvalidTransition as exc:
            raise InvalidTransition(f"stamp {stamp_id} (serial {serial}): {exc}") from None
    raise StoreError(f"stamp {stamp_id} (serial {serial}, {state}) changed state under the line's feet")


def _guarded(cur: sqlite3.Cursor, target: StampState, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """A guarded state change for each row; the stamp id is the last parameter of every row."""
    if not rows:
        return
    if len(rows) == 1:  # nothing else changed by this statement: the stamp's state says why it refused
        if cur.execute(sql, rows[0]).rowcount != 1:
            _refuse(cur, target, rows[0][-1])
        return
    cur.execute("SAVEPOINT guarded")
    if cur.executemany(sql, rows).rowcount == len(rows):
        cur.execute("RELEASE guarded")
        return
    # Undo this statement, then row by row: the first stamp that refuses is named with its own state.
    cur.execute("ROLLBACK TO guarded")
    for row in rows:
        if cur.execute(sql, row).rowcount != 1:
            _refuse(cur, target, row[-1])
    raise StoreError(f"stamps {[row[-1] for row in rows]} changed state under the line's feet")


def line_job(printed: Sequence[int], activations: Sequence[Activation], voids: Sequence[Voiding],
             scans: Sequence[ScanRecord], read_back: Sequence[int] = ()) -> Callable[[sqlite3.Cursor], list[Stamp]]:
    """What the line decided since the last commit, as one transaction's job (one fsync for many stamps).

    ``printed`` stamps become sent-to-printer; activations are verified and activated with their outbox
    rows; voids are voided with theirs; stray scans are recorded. All or nothing: a stamp not in a state
    that allows its change (InvalidTransition), a locked batch (BatchLocked) or an eventID already in the
    outbox (DuplicateEvent) leaves every stamp as it was. The ``read_back`` stamps are read at the end of the
    transaction and returned, as committed.

    Plain SQL with executemany on the writer's own sqlite3 connection (``Database.commit_plain``), for one stamp
    as for a hundred: building SQLAlchemy expressions cost three times the commit itself (3.7 ms of CPU a commit,
    measured), and a Session (pool checkout, engine events) around even plain SQL, with an ORM read of the stamp
    after it, cost 1 ms of CPU more (1.23 ms against 0.25 ms for one activation, measured); the line commits a
    hundred times a second on a Raspberry Pi. Each state change is guarded in its own WHERE (``FROM_STATES``), so
    the happy path reads no stamp before it writes it (only the batch lock is read); only when a statement changes
    fewer rows than asked is the refusing stamp looked for.
    """

    def job(cur: sqlite3.Cursor) -> list[Stamp]:
        at = utcnow()
        now = sql_time(at)
        if activations:
            # The last line of defence: nothing is activated into a locked batch, whatever the caller saw.
            ids = tuple(a.stamp_id for a in activations)
            locked = cur.execute(_SQL_LOCKED.format(marks=marks(len(ids))), ids).fetchone()
            if locked is not None:
                raise BatchLocked(f"batch {locked[0]} is locked ({locked[1]}): nothing is activated")
        _guarded(cur, StampState.SENT_TO_PRINTER, _SQL_PRINTED, [(now, i) for i in printed])
        _guarded(cur, StampState.ACTIVATED, _SQL_ACTIVATE, [
            (now, now, a.read_text, a.quality_grade, None if a.quality is None else json.dumps(a.quality),
             a.stamp_id) for a in activations
        ])
        # A void without a read keeps whatever read_text the stamp had: one statement for each shape.
        _guarded(cur, StampState.VOIDED, _SQL_VOID_READ, [
            (v.reason.value, v.detail, now, v.read_text, v.stamp_id) for v in voids if v.read_text is not None
        ])
        _guarded(cur, StampState.VOIDED, _SQL_VOID, [
            (v.reason.value, v.detail, now, v.stamp_id) for v in voids if v.read_text is None
        ])
        events = [("activation", a.stamp_id, a.event) for a in activations]
        events += [("void", v.stamp_id, v.event) for v in voids]
        try:
            write_events(cur.executemany, events, at)
        except sqlite3.IntegrityError as exc:
            if f"{_O.table}.{_O.event_id}" not in str(exc):
                raise
            raise _duplicate_events(cur, [event["eventID"] for _, _, event in events]) from exc
        read = [(a.scan, a.stamp_id) for a in activations if a.scan is not None]
        read += [(v.scan, v.stamp_id) for v in voids if v.scan is not None]
        read += [(scan, None) for scan in scans]
        write_scans(cur.executemany, read)
        return [_stamp_of(cur.execute(_SQL_STAMP, (i,)).fetchone()) for i in read_back]

    return job
