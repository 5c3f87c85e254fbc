"""The outbox (EPCIS events waiting for delivery, and their delivery), the audit log and the delivery problems:
the records the station keeps for others. ``write_events`` is the one way a row enters the outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from station.domain import DeliveryState
from station.store.database import Database
from station.store.models import AuditRow, DeliveryProblemRow, OutboxRow
from station.store.records import AuditEntry, DeliveryProblemRecord, OutboxItem, RejectedEvent, utcnow
from station.store.sql import ExecuteMany, Table, event_text, sql_time

UNCONFIRMED = (DeliveryState.PENDING.value, DeliveryState.SENT.value)
_PENDING, _SENT, _CONFIRMED = DeliveryState.PENDING.value, DeliveryState.SENT.value, DeliveryState.CONFIRMED.value
_REJECTED = DeliveryState.REJECTED.value
_O = Table(OutboxRow)

SQL_INSERT = (f"INSERT INTO {_O.table} ({_O.cols('event_id', 'stamp_id', 'kind', 'event_json', 'state', 'attempts')}, "
              f"{_O.cols('created_at', 'next_attempt_at', 'last_error')}) "
              f"VALUES (?, ?, ?, ?, '{_PENDING}', 0, ?, ?, '')")

# The relay's hot path in plain SQL: SQLAlchemy's expressions and rows cost more CPU than SQLite itself, on the
# relay's thread or the writer's. One state at a time, so SQLite reads the index (state, next_attempt_at, rowid) in
# order and stops after LIMIT rows; ``state IN ('pending', 'sent') ORDER BY next_attempt_at, id`` sorted every due
# row of the outbox, event JSON included, in a temporary B-tree to return the first few (4 ms a call with 30,000
# due).
SQL_DUE = (f"SELECT {_O.cols('id', 'event_id', 'kind', 'event_json', 'attempts', 'state', 'next_attempt_at')} "
           f"FROM {_O.table} WHERE {_O.state} = ? AND {_O.next_attempt_at} <= ? "
           f"ORDER BY {_O.next_attempt_at}, {_O.id} LIMIT ?")
# Updates name their rows in IN lists of at most _IN_CHUNK (half the CPU of executemany, row for row, and under
# SQLite's oldest limit of 999 variables); "{marks}" is the list of placeholders.
_IN_CHUNK = 500
# A confirmed or rejected row is done: nothing sets it back (a PUBACK written after the server's answer).
_UNDONE = f"{_O.state} IN ('{_PENDING}', '{_SENT}')"
_SQL_SENT = (f"UPDATE {_O.table} SET {_O.state} = '{_SENT}', {_O.sent_at} = ?, {_O.next_attempt_at} = ?, "
             f"{_O.attempts} = {_O.attempts} + 1, {_O.last_error} = '' "
             f"WHERE {_O.id} IN ({{marks}}) AND {_UNDONE}")
_SQL_FAILED = (f"UPDATE {_O.table} SET {_O.next_attempt_at} = ?, {_O.attempts} = {_O.attempts} + 1, "
               f"{_O.last_error} = ? WHERE {_O.id} IN ({{marks}}) AND {_UNDONE}")
_SQL_CONFIRMED = (f"UPDATE {_O.table} SET {_O.state} = '{_CONFIRMED}', {_O.confirmed_at} = ?, {_O.last_error} = '' "
                  f"WHERE {_O.event_id} IN ({{marks}}) AND {_O.state} != '{_CONFIRMED}'")
# The server refused the event: its reason kept in last_error. A confirmation (a resend stored after all) wins.
_SQL_REJECTED = (f"UPDATE {_O.table} SET {_O.state} = '{_REJECTED}', {_O.confirmed_at} = ?, {_O.last_error} = ? "
                 f"WHERE {_O.event_id} IN ({{marks}}) AND {_UNDONE}")
# Pending, sent and rejected are counted on their range of the index and confirmed as the rest (the CHECK constraint
# allows no other state): ``GROUP BY state`` compared the state of every row, 45 ms for 100,000 rows, and the relay asks
# twice a second for its retained status.
_SQL_COUNTS = (f"SELECT (SELECT count(*) FROM {_O.table} WHERE {_O.state} = '{_PENDING}'), "
               f"(SELECT count(*) FROM {_O.table} WHERE {_O.state} = '{_SENT}'), "
               f"(SELECT count(*) FROM {_O.table} WHERE {_O.state} = '{_REJECTED}'), (SELECT count(*) FROM {_O.table})")
_DELIVERY_STATES = {state.value: state for state in DeliveryState}


def write_events(executemany: ExecuteMany, events: Iterable[tuple[str, int | None, dict[str, Any]]],
                 at: dt.datetime) -> list[str]:
    """Queue EPCIS events for delivery, in the caller's transaction: each ``(kind, stamp_id, event)`` becomes a
    pending row due at ``at``, its JSON written once and resent byte for byte. Returns the eventIDs, in order.

    Every outbox row is written here, by the line's plain commit (``executemany`` of its cursor) as by the ORM
    writes (``sql.session_executemany``). The unique eventID refuses a second row of an event.
    """
    now = sql_time(at)
    rows = [(event["eventID"], stamp_id, kind, event_text(event), now, now) for kind, stamp_id, event in events]
    if rows:
        executemany(SQL_INSERT, rows)
    return [row[0] for row in rows]


def add_audit(s: Session, actor: str, action: str, detail: str, at: dt.datetime) -> None:
    """One entry of the audit log, in the caller's transaction (kept for ever, never edited)."""
    s.add(AuditRow(at=at, actor=actor[:40], action=action[:40], detail=detail))


class OutboxRepository:
    """Delivery of the outbox's rows (what the relay reads and marks), the audit log and the delivery problems."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- the outbox -------------------------------------------------------------------------------------------

    def due_outbox(self, now: dt.datetime, limit: int, exclude_ids: Iterable[int] = ()) -> list[OutboxItem]:
        """Unconfirmed rows whose next attempt is due, oldest first, skipping those already in flight."""
        if limit <= 0:
            return []
        excluded = set(exclude_ids)
        params = [(state, sql_time(now), limit + len(excluded)) for state in UNCONFIRMED]
        states = _DELIVERY_STATES

        def job(s: Session) -> list[OutboxItem]:
            cursor = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                rows = [r for p in params for r in cursor.execute(SQL_DUE, p).fetchall() if r[0] not in excluded]
            finally:
                cursor.close()
            rows.sort(key=lambda r: (r[6], r[0]))
            return [OutboxItem(r[0], r[1], r[2], r[3], r[4], states[r[5]]) for r in rows[:limit]]

        return self._db.read(job)

    def reschedule_unconfirmed(self, at: dt.datetime) -> int:
        """Make every unconfirmed row due at ``at``: after a restart nothing waits out a schedule from before."""
        return self._db.write(lambda s: s.execute(
            update(OutboxRow).where(OutboxRow.state.in_(UNCONFIRMED), OutboxRow.next_attempt_at > at)
            .values(next_attempt_at=at)
        ).rowcount)

    def _delivery_job(self, sent: Sequence[int] = (), sent_at: dt.datetime | None = None,
                      retry_at: dt.datetime | None = None,
                      failed: Sequence[tuple[Sequence[int], str, dt.datetime]] = (),
                      confirmed: Sequence[str] = (), confirmed_at: dt.datetime | None = None,
                      sent_groups: Sequence[tuple[Sequence[int], dt.datetime]] = (),
                      rejected: Sequence[tuple[Sequence[str], str]] = (),
                      ) -> Callable[[Session], int]:
        """Rows sent (PUBACK ok; `sent` due again at `retry_at`, each of `sent_groups` at its own time), failed
        (with their error and next attempt), events confirmed and events rejected (each group with the server's
        reason), in one transaction, in that order: an event sent and confirmed in the same group ends confirmed,
        nothing confirmed or rejected is ever set back to sent, and a confirmation wins over a rejection. Returns
        how many rows the confirmations changed."""
        groups = [(list(ids), at) for ids, at in sent_groups if ids]
        if sent:
            if retry_at is None:
                raise ValueError("rows sent need retry_at")
            groups.append((list(sent), retry_at))
        if groups and sent_at is None:
            raise ValueError("rows sent need sent_at")
        sent_time = sql_time(sent_at) if sent_at is not None else ""
        confirmed_time = ""
        if confirmed:
            if confirmed_at is None:
                raise ValueError("confirmed events need confirmed_at")
            confirmed_time = sql_time(confirmed_at)
        confirmed = list(confirmed)
        failed = [(list(ids), error, at) for ids, error, at in failed]
        rejected = [(list(event_ids), reason) for event_ids, reason in rejected if event_ids]
        rejected_time = sql_time(confirmed_at or utcnow()) if rejected else ""

        def job(s: Session) -> int:
            conn = s.connection()

            def update(sql: str, values: tuple[Any, ...], keys: Sequence[Any]) -> int:
                changed = 0
                for start in range(0, len(keys), _IN_CHUNK):
                    chunk = tuple(keys[start:start + _IN_CHUNK])
                    marks = ",".join("?" * len(chunk))
                    changed += conn.exec_driver_sql(sql.format(marks=marks), values + chunk).rowcount
                return changed

            for ids, at in groups:
                update(_SQL_SENT, (sent_time, sql_time(at)), ids)
            for ids, error, at in failed:
                update(_SQL_FAILED, (sql_time(at), error[:500]), ids)
            # A repeated eventID changes its row once: the count is of rows confirmed now.
            changed = update(_SQL_CONFIRMED, (confirmed_time,), confirmed) if confirmed else 0
            for event_ids, reason in rejected:
                update(_SQL_REJECTED, (rejected_time, reason[:500]), event_ids)
            return changed

        return job

    def mark_published(self, ids: Sequence[int], at: dt.datetime, retry_at: dt.datetime) -> None:
        """The broker acknowledged these rows: sent; resent at ``retry_at`` unless the server confirms first."""
        if ids:
            self._db.write(self._delivery_job(sent=ids, sent_at=at, retry_at=retry_at))

    def mark_publish_failed(self, ids: Sequence[int], error: str, retry_at: dt.datetime) -> None:
        if ids:
            self._db.write(self._delivery_job(failed=[(ids, error, retry_at)]))

    def mark_confirmed(self, event_ids: Sequence[str], at: dt.datetime) -> int:
        """The central server stored these events. Returns how many rows changed (a repeated ack changes none)."""
        if not event_ids:
            return 0
        return self._db.write(self._delivery_job(confirmed=event_ids, confirmed_at=at))

    def record_delivery_async(self, sent: Sequence[int] = (), sent_at: dt.datetime | None = None,
                              retry_at: dt.datetime | None = None,
                              failed: Sequence[tuple[Sequence[int], str, dt.datetime]] = (),
                              confirmed: Sequence[str] = (), confirmed_at: dt.datetime | None = None,
                              sent_groups: Sequence[tuple[Sequence[int], dt.datetime]] = (),
                              rejected: Sequence[tuple[Sequence[str], str]] = (),
                              ) -> Future[int]:
        """mark_published, mark_publish_failed, mark_confirmed and mark_rejected together, in one transaction (one
        fsync), queued on the writer thread: the relay goes on publishing while it is written and collects the
        result (how many rows the confirmations changed) later. Writes run in the order they were queued."""
        return self._db.write_async(
            self._delivery_job(sent, sent_at, retry_at, failed, confirmed, confirmed_at, sent_groups, rejected))

    def mark_rejected(self, event_ids: Sequence[str], reason: str, at: dt.datetime) -> None:
        """The central server refused these events (`reason`): rejected, never due again."""
        if event_ids:
            self._db.write(self._delivery_job(rejected=[(event_ids, reason)], confirmed_at=at))

    def rejected_events(self, limit: int = 20) -> list[RejectedEvent]:
        """The events the central server refused, newest first, with its reason (for `station status`)."""
        q = (select(OutboxRow.event_id, OutboxRow.kind, OutboxRow.confirmed_at, OutboxRow.last_error)
             .where(OutboxRow.state == _REJECTED).order_by(OutboxRow.id.desc()).limit(limit))
        return self._db.read(lambda s: [RejectedEvent(*row) for row in s.execute(q).all()])

    def outbox_counts(self) -> dict[DeliveryState, int]:
        """Rows by delivery state (cheap: counted on the index, see _SQL_COUNTS)."""
        pending, sent, rejected, total = self._db.read(lambda s: s.connection().exec_driver_sql(_SQL_COUNTS).one())
        return {DeliveryState.PENDING: pending, DeliveryState.SENT: sent,
                DeliveryState.CONFIRMED: total - pending - sent - rejected, DeliveryState.REJECTED: rejected}

    def delivery_states(self, stamp_ids: Sequence[int]) -> dict[int, DeliveryState]:
        """The delivery state of each stamp's latest outbox event (for the recent-stamps list)."""
        if not stamp_ids:
            return {}
        q = select(OutboxRow.stamp_id, OutboxRow.state).where(OutboxRow.stamp_id.in_(list(stamp_ids))) \
            .order_by(OutboxRow.id)
        rows = self._db.read(lambda s: s.execute(q).all())
        return {stamp_id: DeliveryState(state) for stamp_id, state in rows}

    def all_confirmed(self) -> bool:
        """True when no outbox row waits for delivery (an index lookup, however long the outbox)."""
        return self._db.read(lambda s: s.scalar(
            select(OutboxRow.id).where(OutboxRow.state.in_(UNCONFIRMED)).limit(1)
        )) is None

    def oldest_unconfirmed(self) -> dt.datetime | None:
        return self._db.read(lambda s: s.scalar(
            select(func.min(OutboxRow.created_at)).where(OutboxRow.state.in_(UNCONFIRMED))
        ))

    # -- audit ------------------------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, detail: str = "") -> None:
        """Record a login, a refused PIN, a configuration change: kept for ever, never edited."""
        self._db.write(lambda s: add_audit(s, actor, action, detail, utcnow()))

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        return self._db.read(lambda s: [AuditEntry(r.at, r.actor, r.action, r.detail) for r in s.scalars(q)])

    # -- delivery problems (the broker refuses the login, its ACL denies a publish) ---------------------------

    def record_delivery_problem(self, code: str, detail: str, at: dt.datetime) -> None:
        """The problem `code` is seen at `at`: a new row when it is not open already, else its detail and time."""

        def job(s: Session) -> None:
            row = s.scalars(select(DeliveryProblemRow).where(
                DeliveryProblemRow.code == code, DeliveryProblemRow.cleared_at.is_(None)).limit(1)).first()
            if row is None:
                s.add(DeliveryProblemRow(code=code, detail=detail, started_at=at, last_seen_at=at))
            else:
                row.detail, row.last_seen_at = detail, at

        self._db.write(job)

    def clear_delivery_problems(self, codes: Iterable[str], at: dt.datetime) -> int:
        """The broker accepts again: the open problems among `codes` end at `at`. Returns how many were open."""
        wanted = list(codes)
        if not wanted:
            return 0
        row = DeliveryProblemRow
        return self._db.write(lambda s: s.execute(
            update(row).where(row.code.in_(wanted), row.cleared_at.is_(None)).values(cleared_at=at)).rowcount)

    def delivery_problems(self, *, open_only: bool = True, limit: int = 20) -> list[DeliveryProblemRecord]:
        """The open delivery problems (or the latest ones, cleared too), newest first."""
        q = select(DeliveryProblemRow).order_by(DeliveryProblemRow.id.desc()).limit(limit)
        if open_only:
            q = q.where(DeliveryProblemRow.cleared_at.is_(None))
        return self._db.read(lambda s: [DeliveryProblemRecord(r.code, r.detail, r.started_at, r.last_seen_at,
                                                              r.cleared_at) for r in s.scalars(q)])
