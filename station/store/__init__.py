"""The station's local database: SQLite in WAL mode, synchronous=FULL, one writer thread, Alembic migrations."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, bindparam, create_engine, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from station.domain import (
    ALLOWED_TRANSITIONS,
    Batch,
    CodeState,
    DeliveryState,
    Product,
    RefusalReason,
    RollState,
    Stage,
    Stamp,
    StampState,
    VoidReason,
    check_transition,
)
from station.errors import DuplicateSerial, InvalidTransition, StationError
from station.store.models import (
    AuditRow,
    BatchRow,
    CodeActivationRow,
    DeliveryProblemRow,
    OutboxRow,
    ProductRow,
    RefusalRow,
    RollCodeRow,
    RollRow,
    ScanRow,
    StampRow,
)

__all__ = ["Store", "StoreError", "BatchLocked", "DuplicateEvent", "OutboxItem", "ScanRecord", "Counts",
           "AuditEntry", "Activation", "Voiding", "DeliveryProblemRecord", "utcnow"]

T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")
UNCONFIRMED = (DeliveryState.PENDING.value, DeliveryState.SENT.value)
SERIAL_ATTEMPTS = 8


class StoreError(StationError):
    """A database operation refused for a domain reason (unknown batch, closed batch, duplicate lot)."""


class BatchLocked(StoreError):
    """An activation into a batch that is locked (a recall or a quality hold)."""


class DuplicateEvent(StoreError):
    """An event whose eventID is already in the outbox (or twice in one commit): nothing of that commit is written."""


def utcnow() -> dt.datetime:
    """Naive UTC: SQLite keeps no time zone, so every stored time is UTC by convention."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    event_id: str
    kind: str
    event_json: str          # exactly as written with the activation: resent byte for byte
    attempts: int
    state: DeliveryState

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.event_json)


@dataclass(frozen=True)
class ScanRecord:
    """One line from a verification device, written beside the stamp it decided (or alone when it matched none)."""

    source: str
    text: str | None
    raw: bytes
    outcome: str
    detail: str = ""
    at: dt.datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Activation:
    """A verified stamp to activate, with its EPCIS event, the read that verified it and its print quality."""

    stamp_id: int
    read_text: str
    event: dict[str, Any]
    scan: ScanRecord | None = None
    quality_grade: str | None = None
    quality: dict[str, Any] | None = None


@dataclass(frozen=True)
class Voiding:
    """A stamp to void for good, with its EPCIS event and, where a read decided it, that read."""

    stamp_id: int
    reason: VoidReason
    detail: str
    event: dict[str, Any]
    scan: ScanRecord | None = None
    read_text: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    detail: str = ""


@dataclass(frozen=True)
class DeliveryProblemRecord:
    """A delivery problem as the relay recorded it (times naive UTC; cleared_at None while it lasts)."""

    code: str
    detail: str
    started_at: dt.datetime
    last_seen_at: dt.datetime
    cleared_at: dt.datetime | None = None


@dataclass
class Counts:
    """Stamp and delivery counters, for a batch or the whole station."""

    by_state: dict[StampState, int] = field(default_factory=dict)
    voided_by_reason: dict[str, int] = field(default_factory=dict)
    delivery: dict[DeliveryState, int] = field(default_factory=dict)

    def state(self, state: StampState) -> int:
        return self.by_state.get(state, 0)

    @property
    def printed(self) -> int:
        """Stamps that went to the printer: everything but the serials reserved ahead (allocated) and those given
        back unprinted (unused)."""
        return sum(self.by_state.values()) - self.state(StampState.ALLOCATED) - self.state(StampState.UNUSED)

    @property
    def unused(self) -> int:
        """Serials reserved and never printed (the run ended first): kept, never published, never reused."""
        return self.state(StampState.UNUSED)


def _stamp(row: StampRow) -> Stamp:
    return Stamp(
        id=row.id,
        gtin=row.gtin,
        serial=row.serial,
        batch_id=row.batch_id,
        state=StampState(row.state),
        uri=row.uri,
        void_reason=VoidReason(row.void_reason) if row.void_reason else None,
        void_detail=row.void_detail or "",
    )


def _batch(row: BatchRow) -> Batch:
    stages = tuple(
        Stage(
            name=s.get("name", ""),
            date=dt.date.fromisoformat(s["date"]) if s.get("date") else None,
            place=s.get("place", ""),
            note=s.get("note", ""),
        )
        for s in (row.stages or [])
    )
    return Batch(
        id=row.id,
        gtin=row.gtin,
        lot=row.lot,
        production_date=row.production_date,
        expiry_date=row.expiry_date,
        origin=row.origin or "",
        stages=stages,
        planned_quantity=row.planned_quantity,
        closed=row.closed_at is not None,
        locked=row.locked_at is not None,
        lock_reason=row.lock_reason or "",
    )


def _product(row: ProductRow) -> Product:
    return Product(
        gtin=row.gtin, name=row.name, producer=row.producer, region=row.region or "",
        shelf_life_days=row.shelf_life_days,
    )



# -- the line's hot path in plain SQL (see Store._line_job) ------------------------------------------------------

def _from_states(target: StampState) -> tuple[str, ...]:
    if target is StampState.ACTIVATED:  # verified and activated in one step
        return (StampState.SENT_TO_PRINTER.value, StampState.VERIFIED.value)
    return tuple(state.value for state, targets in ALLOWED_TRANSITIONS.items() if target in targets)


_FROM_STATES = {target: _from_states(target) for target in StampState}


def _state_guard(target: StampState) -> str:
    return "state IN (" + ",".join(f"'{state}'" for state in _FROM_STATES[target]) + ")"


_SQL_PRINTED = ("UPDATE stamps SET state = 'sent_to_printer', printed_at = ? WHERE id = ? AND "
                + _state_guard(StampState.SENT_TO_PRINTER))
_SQL_ACTIVATE = ("UPDATE stamps SET state = 'activated', verified_at = ?, activated_at = ?, read_text = ?, "
                 "quality_grade = ?, quality = ? WHERE id = ? AND " + _state_guard(StampState.ACTIVATED))
_SQL_VOID_READ = ("UPDATE stamps SET state = 'voided', void_reason = ?, void_detail = ?, voided_at = ?, read_text = ? "
                  "WHERE id = ? AND " + _state_guard(StampState.VOIDED))
_SQL_VOID = ("UPDATE stamps SET state = 'voided', void_reason = ?, void_detail = ?, voided_at = ? "
             "WHERE id = ? AND " + _state_guard(StampState.VOIDED))
_SQL_OUTBOX = ("INSERT INTO outbox (event_id, stamp_id, kind, event_json, state, attempts, created_at, "
               "next_attempt_at, last_error) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, '')")
_SQL_SCAN = "INSERT INTO scans (at, source, text, raw_hex, outcome, detail, stamp_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
_SQL_STAMP = "SELECT id, gtin, serial, batch_id, state, uri, void_reason, void_detail FROM stamps WHERE id = ?"


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _sql_time(moment: dt.datetime) -> str:
    """A naive UTC time as SQLAlchemy's SQLite DateTime stores it, so ORM reads see the same values."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _event_text(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _scan_row(scan: ScanRecord, stamp_id: int | None) -> tuple[Any, ...]:
    return (_sql_time(scan.at), scan.source, scan.text, scan.raw.hex(), scan.outcome, scan.detail, stamp_id)


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
    sql = f"SELECT event_id FROM outbox WHERE event_id IN ({_marks(len(event_ids))})"
    present = {row[0] for row in cur.execute(sql, event_ids)}
    twice = {e for e in event_ids if event_ids.count(e) > 1}
    named = ", ".join(sorted(present | twice)) or "?"
    return DuplicateEvent(f"eventID already in the outbox or twice in one commit: {named}; nothing was written")


class Store:
    """All reads and writes of the station's SQLite file.

    Writes run one at a time (the single writer, under ``_write_lock``), each in a ``BEGIN IMMEDIATE`` transaction
    so a second process sharing the file (a separate relay service) waits on ``busy_timeout`` instead of failing
    on a lock upgrade. They run on one worker thread, in the order they were queued; the one exception is a
    synchronous line commit (commit_line, activate, void, mark_sent_to_printer) made while nothing is queued or
    running, which runs on the caller's thread (it would only wait for the worker otherwise, and the hand-off
    costs as much as the statements: see _commit_line). Callers on any thread get plain domain objects back,
    never live ORM rows.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer_engine = self._engine(immediate=True)
        self._reader_engine = self._engine(immediate=False)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        # Waits on the writer for block reservations, so the caller does not have to.
        self._allocator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serial-allocator")
        self._closed = False
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()   # held by the write that runs, on whichever thread it runs
        self._queued_lock = threading.Lock()
        self._queued = 0                      # writes handed to the worker and not finished
        self._run(self._migrate)
        self._run(self._open_line_connection)

    # -- plumbing -------------------------------------------------------------------------------------------

    def _engine(self, *, immediate: bool) -> Engine:
        engine = create_engine(
            f"sqlite:///{self.path}", connect_args={"check_same_thread": False}, pool_size=4, max_overflow=4
        )
        timeout = self.busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own BEGIN handling is off so the "begin" hook below decides the transaction type.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={int(timeout)}")
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed activation survives a power cut (NORMAL may lose the last commits in WAL mode).
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def _migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self._writer_engine.connect() as conn:
            # A migration that changes a table copies it, drops it and renames the copy (SQLite's procedure), which
            # needs foreign keys off; PRAGMA foreign_keys does nothing inside a transaction, so it is set before
            # Alembic begins one, the keys are checked before the commit, and they are on again after it.
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
            done = False
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(f"migrating {self.path} broke foreign keys: {broken[:5]}")
                conn.commit()
                done = True
            finally:
                if done:
                    raw.execute("PRAGMA foreign_keys=ON")
                else:
                    conn.invalidate()  # never back to the pool with foreign keys off

    def _submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue a write on the worker thread: it runs after every write queued before it, under the write lock."""

        def run() -> T:
            try:
                with self._write_lock:
                    return fn()
            finally:
                with self._queued_lock:
                    self._queued -= 1

        with self._queued_lock:
            if self._closed:
                raise StoreError(f"the store {self.path} is closed")
            self._queued += 1
        try:
            return self._writer.submit(run)
        except BaseException:
            with self._queued_lock:
                self._queued -= 1
            raise

    def _run(self, fn: Callable[[], T]) -> T:
        return self._submit(fn).result()

    def _write(self, fn: Callable[[Session], T]) -> T:
        def job() -> T:
            with Session(self._writer_engine, expire_on_commit=False) as session, session.begin():
                return fn(session)

        return self._run(job)

    def _read(self, fn: Callable[[Session], T]) -> T:
        with Session(self._reader_engine, expire_on_commit=False) as session, session.begin():
            return fn(session)

    def pragma(self, name: str) -> Any:
        """The value of a PRAGMA on a reader connection (for checks and diagnostics)."""
        with self._reader_engine.connect() as conn:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._allocator.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        with self._write_lock:  # a line commit running on its caller's thread finishes first
            self._line_cursor.close()
            self._line_fairy.close()  # back to the pool, which dispose() closes
        self._writer_engine.dispose()
        self._reader_engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- products and batches -------------------------------------------------------------------------------

    def sync_products(self, products: Iterable[Product]) -> None:
        """Make the product table match the configured catalogue (products are never deleted: stamps refer to them)."""
        items = list(products)

        def job(s: Session) -> None:
            now = utcnow()
            for p in items:
                row = s.get(ProductRow, p.gtin)
                if row is None:
                    row = ProductRow(gtin=p.gtin)
                    s.add(row)
                row.name, row.producer, row.region = p.name, p.producer, p.region
                row.shelf_life_days, row.updated_at = p.shelf_life_days, now

        self._write(job)

    def products(self) -> list[Product]:
        return self._read(lambda s: [_product(r) for r in s.scalars(select(ProductRow).order_by(ProductRow.gtin))])

    def product(self, gtin: str) -> Product:
        row = self._read(lambda s: s.get(ProductRow, gtin))
        if row is None:
            raise StoreError(f"unknown product GTIN {gtin}: it is not in the configured product list")
        return _product(row)

    def create_batch(self, batch: Batch) -> Batch:
        def job(s: Session) -> Batch:
            if s.get(ProductRow, batch.gtin) is None:
                raise StoreError(f"unknown product GTIN {batch.gtin}: add it to the product list first")
            exists = s.scalar(select(BatchRow.id).where(BatchRow.gtin == batch.gtin, BatchRow.lot == batch.lot))
            if exists is not None:
                raise StoreError(f"lot {batch.lot!r} already exists for GTIN {batch.gtin} (batch {exists})")
            row = BatchRow(
                gtin=batch.gtin,
                lot=batch.lot,
                production_date=batch.production_date,
                expiry_date=batch.expiry_date,
                origin=batch.origin,
                stages=[
                    {"name": st.name, "date": st.date.isoformat() if st.date else None, "place": st.place,
                     "note": st.note}
                    for st in batch.stages
                ],
                planned_quantity=batch.planned_quantity,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return _batch(row)

        return self._write(job)

    def batch(self, batch_id: int) -> Batch:
        row = self._read(lambda s: s.get(BatchRow, batch_id))
        if row is None:
            raise StoreError(f"unknown batch {batch_id}")
        return _batch(row)

    def find_batch(self, gtin: str, lot: str) -> Batch | None:
        row = self._read(lambda s: s.scalar(select(BatchRow).where(BatchRow.gtin == gtin, BatchRow.lot == lot)))
        return _batch(row) if row else None

    def batches(self, *, gtin: str | None = None, open_only: bool = False) -> list[Batch]:
        q = select(BatchRow).order_by(BatchRow.id.desc())
        if gtin:
            q = q.where(BatchRow.gtin == gtin)
        if open_only:
            q = q.where(BatchRow.closed_at.is_(None))
        return self._read(lambda s: [_batch(r) for r in s.scalars(q)])

    def close_batch(self, batch_id: int) -> Batch:
        def job(s: Session) -> Batch:
            row = s.get(BatchRow, batch_id)
            if row is None:
                raise StoreError(f"unknown batch {batch_id}")
            if row.closed_at is None:
                row.closed_at = utcnow()
            return _batch(row)

        return self._write(job)

    # -- stamps ---------------------------------------------------------------------------------------------

    def allocate_stamp(self, batch_id: int, make_serial: Callable[[], str], make_uri: Callable[[str], str]) -> Stamp:
        """Reserve one fresh serial for the batch's GTIN (see allocate_stamps)."""
        return self.allocate_stamps(batch_id, 1, make_serial, make_uri)[0]

    def allocate_stamps(self, batch_id: int, count: int, make_serial: Callable[[], str],
                        make_uri: Callable[[str], str]) -> list[Stamp]:
        """Reserve ``count`` fresh serials for the batch's GTIN in one transaction.

        The unique index is what makes a serial unique for ever; a candidate that collides (astronomically rare
        with random serials) makes the whole block be drawn again.
        """

        def attempt(serials: list[str]) -> Callable[[Session], list[Stamp]]:
            def job(s: Session) -> list[Stamp]:
                batch = s.get(BatchRow, batch_id)
                if batch is None:
                    raise StoreError(f"unknown batch {batch_id}")
                if batch.closed_at is not None:
                    raise StoreError(f"batch {batch.lot} is closed: open a new batch to print more stamps")
                now = utcnow()
                rows = [StampRow(gtin=batch.gtin, serial=serial, batch_id=batch_id, state=StampState.ALLOCATED.value,
                                 uri=make_uri(serial), void_detail="", allocated_at=now) for serial in serials]
                s.add_all(rows)
                s.flush()
                return [_stamp(row) for row in rows]

            return job

        for _ in range(SERIAL_ATTEMPTS):
            serials = [make_serial() for _ in range(count)]
            if len(set(serials)) != len(serials):
                continue
            try:
                return self._write(attempt(serials))
            except IntegrityError as exc:
                if "uq_stamps_gtin_serial" not in str(exc) and "stamps.gtin, stamps.serial" not in str(exc):
                    raise
        raise DuplicateSerial(
            f"{SERIAL_ATTEMPTS} draws in a row hit existing serials for batch {batch_id}: the serial length is too short"
        )

    def allocate_stamps_async(self, batch_id: int, count: int, make_serial: Callable[[], str],
                              make_uri: Callable[[str], str]) -> Future[list[Stamp]]:
        """allocate_stamps on a helper thread, so the line can reserve the next block while it prints."""
        return self._allocator.submit(self.allocate_stamps, batch_id, count, make_serial, make_uri)

    def _transition(self, s: Session, stamp_id: int, target: StampState) -> StampRow:
        row = s.get(StampRow, stamp_id)
        if row is None:
            raise StoreError(f"unknown stamp {stamp_id}")
        check_transition(StampState(row.state), target)
        row.state = target.value
        return row

    def _line_job(self, printed: Sequence[int], activations: Sequence[Activation], voids: Sequence[Voiding],
                  scans: Sequence[ScanRecord],
                  read_back: Sequence[int] = ()) -> Callable[[sqlite3.Cursor], list[Stamp]]:
        """What the line decided since the last commit, in one transaction (one fsync for many stamps).

        ``printed`` stamps become sent-to-printer; activations are verified and activated with their outbox
        rows; voids are voided with theirs; stray scans are recorded. All or nothing: a stamp not in a state
        that allows its change (InvalidTransition), a locked batch (BatchLocked) or an eventID already in the
        outbox (DuplicateEvent) leaves every stamp as it was. The ``read_back`` stamps are read at the end of the
        transaction and returned, as committed.

        Plain SQL with executemany on the writer's own sqlite3 connection (see _line_write), for one stamp as for
        a hundred: building SQLAlchemy expressions cost three times the commit itself (3.7 ms of CPU a commit,
        measured), and a Session (pool checkout, engine events) around even plain SQL, with an ORM read of the
        stamp after it, cost 1 ms of CPU more (1.23 ms against 0.25 ms for one activation, measured); the line
        commits a hundred times a second on a Raspberry Pi. Each state change is guarded in its own WHERE
        (``_FROM_STATES``), so the happy path reads no stamp before it writes it (only the batch lock is read);
        only when a statement changes fewer rows than asked is the refusing stamp looked for. The strings above
        are the same tables and columns as ``models.py``.
        """

        def refuse(cur: sqlite3.Cursor, target: StampState, stamp_id: int) -> None:
            """Raise why the guarded statement left this stamp alone (read inside the transaction)."""
            found = cur.execute("SELECT state, serial FROM stamps WHERE id = ?", (stamp_id,)).fetchone()
            if found is None:
                raise StoreError(f"unknown stamp {stamp_id}")
            state, serial = found
            if state not in _FROM_STATES[target]:
                try:
                    check_transition(StampState(state), target)
                except InvalidTransition as exc:
                    raise InvalidTransition(f"stamp {stamp_id} (serial {serial}): {exc}") from None
            raise StoreError(f"stamp {stamp_id} (serial {serial}, {state}) changed state under the line's feet")

        def guarded(cur: sqlite3.Cursor, target: StampState, sql: str, rows: list[tuple[Any, ...]]) -> None:
            """The stamp id is the last parameter of every row."""
            if not rows:
                return
            if len(rows) == 1:  # nothing else changed by this statement: the stamp's state says why it refused
                if cur.execute(sql, rows[0]).rowcount != 1:
                    refuse(cur, target, rows[0][-1])
                return
            cur.execute("SAVEPOINT guarded")
            if cur.executemany(sql, rows).rowcount == len(rows):
                cur.execute("RELEASE guarded")
                return
            # Undo this statement, then row by row: the first stamp that refuses is named with its own state.
            cur.execute("ROLLBACK TO guarded")
            for row in rows:
                if cur.execute(sql, row).rowcount != 1:
                    refuse(cur, target, row[-1])
            raise StoreError(f"stamps {[row[-1] for row in rows]} changed state under the line's feet")

        def job(cur: sqlite3.Cursor) -> list[Stamp]:
            now = _sql_time(utcnow())
            if activations:
                # The last line of defence: nothing is activated into a locked batch, whatever the caller saw.
                ids = tuple(a.stamp_id for a in activations)
                locked = cur.execute(
                    "SELECT b.lot, b.lock_reason FROM stamps s JOIN batches b ON b.id = s.batch_id "
                    f"WHERE s.id IN ({_marks(len(ids))}) AND b.locked_at IS NOT NULL LIMIT 1", ids).fetchone()
                if locked is not None:
                    raise BatchLocked(f"batch {locked[0]} is locked ({locked[1]}): nothing is activated")
            guarded(cur, StampState.SENT_TO_PRINTER, _SQL_PRINTED, [(now, i) for i in printed])
            guarded(cur, StampState.ACTIVATED, _SQL_ACTIVATE, [
                (now, now, a.read_text, a.quality_grade, None if a.quality is None else json.dumps(a.quality),
                 a.stamp_id) for a in activations
            ])
            # A void without a read keeps whatever read_text the stamp had: one statement for each shape.
            guarded(cur, StampState.VOIDED, _SQL_VOID_READ, [
                (v.reason.value, v.detail, now, v.read_text, v.stamp_id) for v in voids if v.read_text is not None
            ])
            guarded(cur, StampState.VOIDED, _SQL_VOID, [
                (v.reason.value, v.detail, now, v.stamp_id) for v in voids if v.read_text is None
            ])
            outbox = [(a.event["eventID"], a.stamp_id, "activation", _event_text(a.event), now, now)
                      for a in activations]
            outbox += [(v.event["eventID"], v.stamp_id, "void", _event_text(v.event), now, now) for v in voids]
            if outbox:
                try:
                    cur.executemany(_SQL_OUTBOX, outbox)
                except sqlite3.IntegrityError as exc:
                    if "outbox.event_id" not in str(exc):
                        raise
                    raise _duplicate_events(cur, [row[0] for row in outbox]) from exc
            scan_rows = [_scan_row(a.scan, a.stamp_id) for a in activations if a.scan is not None]
            scan_rows += [_scan_row(v.scan, v.stamp_id) for v in voids if v.scan is not None]
            scan_rows += [_scan_row(scan, None) for scan in scans]
            if scan_rows:
                cur.executemany(_SQL_SCAN, scan_rows)
            return [_stamp_of(cur.execute(_SQL_STAMP, (i,)).fetchone()) for i in read_back]

        return job

    def _open_line_connection(self) -> None:
        """The writer's own DBAPI connection for the line's plain SQL, checked out of the writer engine's pool once
        (so it is set up like every other connection: WAL, synchronous=FULL, busy_timeout, foreign keys)."""
        self._line_fairy = self._writer_engine.raw_connection()
        self._line_conn: sqlite3.Connection = self._line_fairy.driver_connection
        self._line_cursor = self._line_conn.cursor()

    def _line_write(self, job: Callable[[sqlite3.Cursor], T]) -> T:
        """Under the write lock: ``job`` in one BEGIN IMMEDIATE … COMMIT on the writer's plain connection, rolled
        back whole on any error (COMMIT's own included)."""
        cur = self._line_cursor
        cur.execute("BEGIN IMMEDIATE")
        try:
            result = job(cur)
            cur.execute("COMMIT")
        except BaseException:
            if self._line_conn.in_transaction:
                cur.execute("ROLLBACK")
            raise
        return result

    def commit_line(self, printed: Sequence[int] = (), activations: Sequence[Activation] = (),
                    voids: Sequence[Voiding] = (), scans: Sequence[ScanRecord] = ()) -> None:
        """What the line decided since the last commit, in one transaction (see _line_job)."""
        self._commit_line(self._line_job(printed, activations, voids, scans))

    def _commit_line(self, job: Callable[[sqlite3.Cursor], T]) -> T:
        """A line commit the caller waits for. With nothing queued or running it runs right here, under the write
        lock: handing it to the worker and waiting for it costs two thread wake-ups, 0.08-0.13 ms on the commit
        benchmark's machine, as much as the statements of one activation (0.1 ms; its COMMIT with the fsync
        0.25 ms). With writes queued it is queued behind them, so it never overtakes a commit its caller queued
        before (commit_line_async)."""
        with self._queued_lock:
            idle = self._queued == 0
        if not idle:
            return self._run(lambda: self._line_write(job))
        with self._write_lock:
            if self._closed:
                raise StoreError(f"the store {self.path} is closed")
            return self._line_write(job)

    def commit_line_async(self, printed: Sequence[int] = (), activations: Sequence[Activation] = (),
                          voids: Sequence[Voiding] = (), scans: Sequence[ScanRecord] = ()) -> Future[None]:
        """The same commit, queued on the writer thread; the line goes on printing while it is written.

        Commits run in the order they were queued (one writer), so a later commit never overtakes an earlier one.
        """
        job = self._line_job(printed, activations, voids, scans)

        def run() -> None:
            self._line_write(job)

        return self._submit(run)

    def mark_sent_to_printer(self, stamp_id: int) -> Stamp:
        return self._commit_line(self._line_job([stamp_id], (), (), (), read_back=[stamp_id]))[0]

    def activate(self, stamp_id: int, read_text: str, event: dict[str, Any], scan: ScanRecord | None = None) -> Stamp:
        """Verified and activated, with its outbox row (and the scan that verified it), in one transaction: the
        line's commit (_line_job) with one activation, returning the stamp as committed."""
        activation = Activation(stamp_id, read_text, event, scan)
        return self._commit_line(self._line_job((), [activation], (), (), read_back=[stamp_id]))[0]

    def void(
        self,
        stamp_id: int,
        reason: VoidReason,
        detail: str,
        event: dict[str, Any],
        scan: ScanRecord | None = None,
        read_text: str | None = None,
    ) -> Stamp:
        """Void a stamp for good (its serial is never reused) and queue the void event, in one transaction."""
        voiding = Voiding(stamp_id, reason, detail, event, scan, read_text)
        return self._commit_line(self._line_job((), (), [voiding], (), read_back=[stamp_id]))[0]

    def release_unused(self, stamp_ids: Sequence[int], detail: str = "reserved, never printed") -> int:
        """Serials reserved and never printed become ``unused``: no event (a serial never commissioned has nothing
        to decommission), never reused. Only allocated stamps change; returns how many did."""
        ids = list(stamp_ids)
        if not ids:
            return 0

        def job(s: Session) -> int:
            changed = 0
            for start in range(0, len(ids), 500):
                changed += s.execute(
                    update(StampRow).where(StampRow.id.in_(ids[start:start + 500]),
                                           StampRow.state == StampState.ALLOCATED.value)
                    .values(state=StampState.UNUSED.value, void_detail=detail[:300])
                ).rowcount
            return changed

        return self._write(job)

    def record_scan(self, scan: ScanRecord, stamp_id: int | None = None) -> None:
        self._write(lambda s: self._add_scan(s, scan, stamp_id))

    @staticmethod
    def _add_scan(s: Session, scan: ScanRecord, stamp_id: int | None) -> None:
        s.add(ScanRow(
            at=scan.at, source=scan.source, text=scan.text, raw_hex=scan.raw.hex(), outcome=scan.outcome,
            detail=scan.detail, stamp_id=stamp_id,
        ))

    @staticmethod
    def _add_outbox(s: Session, stamp_id: int | None, kind: str, event: dict[str, Any], now: dt.datetime) -> None:
        s.add(OutboxRow(
            event_id=event["eventID"], stamp_id=stamp_id, kind=kind,
            event_json=json.dumps(event, ensure_ascii=False, separators=(",", ":")),
            state=DeliveryState.PENDING.value, attempts=0, created_at=now, next_attempt_at=now, last_error="",
        ))

    def stamp(self, stamp_id: int) -> Stamp:
        row = self._read(lambda s: s.get(StampRow, stamp_id))
        if row is None:
            raise StoreError(f"unknown stamp {stamp_id}")
        return _stamp(row)

    def find_stamp(self, gtin: str, serial: str) -> Stamp | None:
        row = self._read(lambda s: s.scalar(select(StampRow).where(StampRow.gtin == gtin, StampRow.serial == serial)))
        return _stamp(row) if row else None

    def stamps(self, *, batch_id: int | None = None, state: StampState | None = None, limit: int = 100,
               newest_first: bool = True, printed_only: bool = False) -> list[Stamp]:
        """Stamps, newest first; `printed_only` leaves out serials never printed (`unused`: reserved ahead and given
        back when the line stopped)."""
        q = select(StampRow)
        if batch_id is not None:
            q = q.where(StampRow.batch_id == batch_id)
        if state is not None:
            q = q.where(StampRow.state == state.value)
        if printed_only:
            q = q.where(StampRow.state != StampState.UNUSED.value)
        q = q.order_by(StampRow.id.desc() if newest_first else StampRow.id).limit(limit)
        return self._read(lambda s: [_stamp(r) for r in s.scalars(q)])

    def in_flight_stamps(self) -> list[Stamp]:
        """Stamps allocated or sent to the printer but not decided: after a crash these can only be voided."""
        q = select(StampRow).where(
            StampRow.state.in_([StampState.ALLOCATED.value, StampState.SENT_TO_PRINTER.value,
                                StampState.VERIFIED.value])
        ).order_by(StampRow.id)
        return self._read(lambda s: [_stamp(r) for r in s.scalars(q)])

    def interrupted_stamps(self, unrecorded_prints: int) -> tuple[list[Stamp], list[Stamp]]:
        """The stamps a run left undecided (a crash or a kill), split into those that may have been printed and
        those that certainly were not.

        A label goes to the printer before its print is written (in the line's next group commit), and the line
        never has more than ``unrecorded_prints`` printed stamps unwritten. It prints a batch's reserved serials in
        the order they were reserved (by id), so after its last stamp written as printed, the next
        ``unrecorded_prints`` allocated ones may be on labels; the allocated stamps before it and after those were
        never sent. Stamps sent to the printer (or verified) may be printed, of course.
        """

        def job(s: Session) -> tuple[list[Stamp], list[Stamp]]:
            maybe: list[Stamp] = []
            never: list[Stamp] = []
            rows = s.scalars(select(StampRow).where(StampRow.state.in_([
                StampState.ALLOCATED.value, StampState.SENT_TO_PRINTER.value, StampState.VERIFIED.value,
            ])).order_by(StampRow.id)).all()
            after: dict[int, int] = {}   # batch -> allocated stamps seen after its last one written as printed
            last_printed: dict[int, int] = {}
            for row in rows:
                if row.state != StampState.ALLOCATED.value:
                    maybe.append(_stamp(row))
                    continue
                if row.batch_id not in last_printed:
                    last_printed[row.batch_id] = s.scalar(
                        select(func.max(StampRow.id)).where(StampRow.batch_id == row.batch_id,
                                                            StampRow.printed_at.is_not(None))) or 0
                if row.id < last_printed[row.batch_id]:
                    never.append(_stamp(row))
                    continue
                seen = after.get(row.batch_id, 0)
                after[row.batch_id] = seen + 1
                (maybe if seen < unrecorded_prints else never).append(_stamp(row))
            return maybe, never

        return self._read(job)

    def counts(self, batch_id: int | None = None, since: dt.datetime | None = None) -> Counts:
        def job(s: Session) -> Counts:
            counts = Counts()
            q = select(StampRow.state, StampRow.void_reason, func.count()).group_by(StampRow.state,
                                                                                   StampRow.void_reason)
            oq = select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
            if batch_id is not None:
                q = q.where(StampRow.batch_id == batch_id)
                oq = oq.join(StampRow, OutboxRow.stamp_id == StampRow.id).where(StampRow.batch_id == batch_id)
            if since is not None:
                q = q.where(StampRow.allocated_at >= since)
                oq = oq.where(OutboxRow.created_at >= since)
            for state, reason, n in s.execute(q):
                st = StampState(state)
                counts.by_state[st] = counts.by_state.get(st, 0) + n
                if st is StampState.VOIDED and reason:
                    counts.voided_by_reason[reason] = counts.voided_by_reason.get(reason, 0) + n
            for state, n in s.execute(oq):
                counts.delivery[DeliveryState(state)] = n
            return counts

        return self._read(job)

    def scans(self, limit: int = 100) -> list[ScanRecord]:
        q = select(ScanRow).order_by(ScanRow.id.desc()).limit(limit)
        return self._read(lambda s: [
            ScanRecord(source=r.source, text=r.text, raw=bytes.fromhex(r.raw_hex), outcome=r.outcome,
                       detail=r.detail, at=r.at)
            for r in s.scalars(q)
        ])

    # -- outbox ---------------------------------------------------------------------------------------------

    # The relay's hot path in plain SQL (the same table and columns as models.OutboxRow): SQLAlchemy's
    # expressions and rows cost more CPU than SQLite itself, on the relay's thread or the writer's.
    # One state at a time, so SQLite reads the index (state, next_attempt_at, rowid) in order and stops after
    # LIMIT rows; ``state IN ('pending', 'sent') ORDER BY next_attempt_at, id`` sorted every due row of the
    # outbox, event JSON included, in a temporary B-tree to return the first few (4 ms a call with 30,000 due).
    _SQL_DUE = ("SELECT id, event_id, kind, event_json, attempts, state, next_attempt_at FROM outbox "
                "WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?")
    # Updates name their rows in IN lists of at most _IN_CHUNK (half the CPU of executemany, row for row, and
    # under SQLite's oldest limit of 999 variables); "{marks}" is the list of placeholders.
    _IN_CHUNK = 500
    _SQL_SENT = ("UPDATE outbox SET state = 'sent', sent_at = ?, next_attempt_at = ?, attempts = attempts + 1, "
                 "last_error = '' WHERE id IN ({marks}) AND state != 'confirmed'")
    _SQL_FAILED = ("UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1, last_error = ? "
                   "WHERE id IN ({marks}) AND state != 'confirmed'")
    _SQL_CONFIRMED = ("UPDATE outbox SET state = 'confirmed', confirmed_at = ?, last_error = '' "
                      "WHERE event_id IN ({marks}) AND state != 'confirmed'")
    _DELIVERY_STATES = {state.value: state for state in DeliveryState}

    def due_outbox(self, now: dt.datetime, limit: int, exclude_ids: Iterable[int] = ()) -> list[OutboxItem]:
        """Unconfirmed rows whose next attempt is due, oldest first, skipping those already in flight."""
        if limit <= 0:
            return []
        excluded = set(exclude_ids)
        params = [(state, _sql_time(now), limit + len(excluded)) for state in UNCONFIRMED]
        states = self._DELIVERY_STATES

        def job(s: Session) -> list[OutboxItem]:
            cursor = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                rows = [r for p in params for r in cursor.execute(self._SQL_DUE, p).fetchall() if r[0] not in excluded]
            finally:
                cursor.close()
            rows.sort(key=lambda r: (r[6], r[0]))
            return [OutboxItem(r[0], r[1], r[2], r[3], r[4], states[r[5]]) for r in rows[:limit]]

        return self._read(job)

    def reschedule_unconfirmed(self, at: dt.datetime) -> int:
        """Make every unconfirmed row due at ``at``: after a restart nothing waits out a schedule from before."""
        return self._write(lambda s: s.execute(
            update(OutboxRow).where(OutboxRow.state.in_(UNCONFIRMED), OutboxRow.next_attempt_at > at)
            .values(next_attempt_at=at)
        ).rowcount)

    def _delivery_job(self, sent: Sequence[int] = (), sent_at: dt.datetime | None = None,
                      retry_at: dt.datetime | None = None,
                      failed: Sequence[tuple[Sequence[int], str, dt.datetime]] = (),
                      confirmed: Sequence[str] = (), confirmed_at: dt.datetime | None = None,
                      sent_groups: Sequence[tuple[Sequence[int], dt.datetime]] = (),
                      ) -> Callable[[Session], int]:
        """Rows sent (PUBACK ok; `sent` due again at `retry_at`, each of `sent_groups` at its own time), failed
        (with their error and next attempt) and events confirmed, in one transaction, in that order: an event sent
        and confirmed in the same group ends confirmed, and nothing confirmed is ever set back. Returns how many
        rows the confirmations changed."""
        groups = [(list(ids), at) for ids, at in sent_groups if ids]
        if sent:
            if retry_at is None:
                raise ValueError("rows sent need retry_at")
            groups.append((list(sent), retry_at))
        if groups and sent_at is None:
            raise ValueError("rows sent need sent_at")
        sent_time = _sql_time(sent_at) if sent_at is not None else ""
        confirmed_time = ""
        if confirmed:
            if confirmed_at is None:
                raise ValueError("confirmed events need confirmed_at")
            confirmed_time = _sql_time(confirmed_at)
        confirmed = list(confirmed)
        failed = [(list(ids), error, at) for ids, error, at in failed]

        def job(s: Session) -> int:
            conn = s.connection()

            def update(sql: str, values: tuple[Any, ...], keys: Sequence[Any]) -> int:
                changed = 0
                for start in range(0, len(keys), self._IN_CHUNK):
                    chunk = tuple(keys[start:start + self._IN_CHUNK])
                    marks = ",".join("?" * len(chunk))
                    changed += conn.exec_driver_sql(sql.format(marks=marks), values + chunk).rowcount
                return changed

            for ids, at in groups:
                update(self._SQL_SENT, (sent_time, _sql_time(at)), ids)
            for ids, error, at in failed:
                update(self._SQL_FAILED, (_sql_time(at), error[:500]), ids)
            # A repeated eventID changes its row once: the count is of rows confirmed now.
            return update(self._SQL_CONFIRMED, (confirmed_time,), confirmed) if confirmed else 0

        return job

    def mark_published(self, ids: Sequence[int], at: dt.datetime, retry_at: dt.datetime) -> None:
        """The broker acknowledged these rows: sent; resent at ``retry_at`` unless the server confirms first."""
        if ids:
            self._write(self._delivery_job(sent=ids, sent_at=at, retry_at=retry_at))

    def mark_publish_failed(self, ids: Sequence[int], error: str, retry_at: dt.datetime) -> None:
        if ids:
            self._write(self._delivery_job(failed=[(ids, error, retry_at)]))

    def mark_confirmed(self, event_ids: Sequence[str], at: dt.datetime) -> int:
        """The central server stored these events. Returns how many rows changed (a repeated ack changes none)."""
        if not event_ids:
            return 0
        return self._write(self._delivery_job(confirmed=event_ids, confirmed_at=at))

    def record_delivery_async(self, sent: Sequence[int] = (), sent_at: dt.datetime | None = None,
                              retry_at: dt.datetime | None = None,
                              failed: Sequence[tuple[Sequence[int], str, dt.datetime]] = (),
                              confirmed: Sequence[str] = (), confirmed_at: dt.datetime | None = None,
                              sent_groups: Sequence[tuple[Sequence[int], dt.datetime]] = (),
                              ) -> Future[int]:
        """mark_published, mark_publish_failed and mark_confirmed together, in one transaction (one fsync), queued
        on the writer thread: the relay goes on publishing while it is written and collects the result (how
        many rows the confirmations changed) later. Writes run in the order they were queued."""
        job = self._delivery_job(sent, sent_at, retry_at, failed, confirmed, confirmed_at, sent_groups)

        def run() -> int:
            with Session(self._writer_engine, expire_on_commit=False) as session, session.begin():
                return job(session)

        return self._submit(run)

    def outbox_counts(self) -> dict[DeliveryState, int]:
        """Rows by delivery state. Pending and sent are counted on their range of the index and confirmed as the
        rest (the CHECK constraint allows no fourth state): ``GROUP BY state`` compared the state of every row,
        45 ms for 100,000 rows, and the relay asks twice a second for its retained status."""
        pending, sent, total = self._read(lambda s: s.connection().exec_driver_sql(
            "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'), "
            "(SELECT count(*) FROM outbox WHERE state = 'sent'), (SELECT count(*) FROM outbox)").one())
        return {DeliveryState.PENDING: pending, DeliveryState.SENT: sent,
                DeliveryState.CONFIRMED: total - pending - sent}

    def delivery_states(self, stamp_ids: Sequence[int]) -> dict[int, DeliveryState]:
        """The delivery state of each stamp's latest outbox event (for the recent-stamps list)."""
        if not stamp_ids:
            return {}
        q = select(OutboxRow.stamp_id, OutboxRow.state).where(OutboxRow.stamp_id.in_(list(stamp_ids))) \
            .order_by(OutboxRow.id)
        rows = self._read(lambda s: s.execute(q).all())
        return {stamp_id: DeliveryState(state) for stamp_id, state in rows}

    def all_confirmed(self) -> bool:
        """True when no outbox row waits for delivery (an index lookup, however long the outbox)."""
        return self._read(lambda s: s.scalar(
            select(OutboxRow.id).where(OutboxRow.state.in_(UNCONFIRMED)).limit(1)
        )) is None

    def oldest_unconfirmed(self) -> dt.datetime | None:
        return self._read(lambda s: s.scalar(
            select(func.min(OutboxRow.created_at)).where(OutboxRow.state != DeliveryState.CONFIRMED.value)
        ))

    # -- audit ----------------------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, detail: str = "") -> None:
        """Record a login, a refused PIN, a configuration change: kept for ever, never edited."""
        self._write(lambda s: s.add(AuditRow(at=utcnow(), actor=actor[:40], action=action[:40], detail=detail)))

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        return self._read(lambda s: [AuditEntry(r.at, r.actor, r.action, r.detail) for r in s.scalars(q)])

    # -- delivery problems (the broker refuses the login, its ACL denies a publish) ----------------------------

    def record_delivery_problem(self, code: str, detail: str, at: dt.datetime) -> None:
        """The problem `code` is seen at `at`: a new row when it is not open already, else its detail and time."""

        def job(s: Session) -> None:
            row = s.scalars(select(DeliveryProblemRow).where(
                DeliveryProblemRow.code == code, DeliveryProblemRow.cleared_at.is_(None)).limit(1)).first()
            if row is None:
                s.add(DeliveryProblemRow(code=code, detail=detail, started_at=at, last_seen_at=at))
            else:
                row.detail, row.last_seen_at = detail, at

        self._write(job)

    def clear_delivery_problems(self, codes: Iterable[str], at: dt.datetime) -> int:
        """The broker accepts again: the open problems among `codes` end at `at`. Returns how many were open."""
        wanted = list(codes)
        if not wanted:
            return 0
        row = DeliveryProblemRow
        return self._write(lambda s: s.execute(
            update(row).where(row.code.in_(wanted), row.cleared_at.is_(None)).values(cleared_at=at)).rowcount)

    def delivery_problems(self, *, open_only: bool = True, limit: int = 20) -> list[DeliveryProblemRecord]:
        """The open delivery problems (or the latest ones, cleared too), newest first."""
        q = select(DeliveryProblemRow).order_by(DeliveryProblemRow.id.desc()).limit(limit)
        if open_only:
            q = q.where(DeliveryProblemRow.cleared_at.is_(None))
        return self._read(lambda s: [DeliveryProblemRecord(r.code, r.detail, r.started_at, r.last_seen_at,
                                                           r.cleared_at) for r in s.scalars(q)])

    # -- pre-printed rolls, refusals and batch locks (issue 5) -----------------------------------------------

    def register_roll(self, roll: NewRoll) -> RollInfo:
        """Register a roll and all its codes in one transaction, or nothing.

        Refused (RollConflict / StoreError, naming the manifest's file and line) when the roll id is taken, the
        product is unknown, or any code is already in another roll, already used by a stamp here (the same
        GTIN and serial), or given twice. The unique index on ``roll_codes.code`` is the final word.
        """

        def job(s: Session) -> RollInfo:
            taken = s.scalar(select(RollRow).where(RollRow.roll_id == roll.roll_id))
            if taken is not None:
                raise StoreError(f"{roll.manifest}: roll {roll.roll_id!r} is already registered "
                                 f"(from {taken.manifest}, {taken.registered_at:%Y-%m-%d %H:%M} UTC)")
            if s.get(ProductRow, roll.gtin) is None:
                raise StoreError(f"{roll.manifest}: product GTIN {roll.gtin} is not in the product list")
            conflicts: list[str] = []
            by_code = {c.code: c for c in roll.codes}
            texts = list(by_code)
            for i in range(0, len(texts), 500):
                for code, other in s.execute(
                    select(RollCodeRow.code, RollRow.roll_id).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
                    .where(RollCodeRow.code.in_(texts[i:i + 500]))
                ):
                    mine = by_code[code]
                    n = f" (n={mine.seq})" if roll.kind == "sequence" else ""
                    conflicts.append(f"{roll.manifest}: line {mine.line}: code {code!r}{n} is already in "
                                     f"roll {other!r}")
            keyed = {(c.gtin, c.serial): c for c in roll.codes if c.gtin and c.serial}
            if keyed and len(conflicts) < 20:
                for gtin in {g for g, _ in keyed}:
                    serials = [sr for g, sr in keyed if g == gtin]
                    for i in range(0, len(serials), 500):
                        chunk = serials[i:i + 500]
                        for code, serial, other in s.execute(
                            select(RollCodeRow.code, RollCodeRow.serial, RollRow.roll_id)
                            .join(RollRow, RollRow.id == RollCodeRow.roll_pk)
                            .where(RollCodeRow.gtin == gtin, RollCodeRow.serial.in_(chunk))
                        ):
                            mine = keyed[(gtin, serial)]
                            if mine.code != code:
                                conflicts.append(f"{roll.manifest}: line {mine.line}: GTIN {gtin} serial {serial!r} "
                                                 f"is already in roll {other!r} (as {code!r})")
                        for (serial,) in s.execute(select(StampRow.serial).where(
                                StampRow.gtin == gtin, StampRow.serial.in_(chunk))):
                            mine = keyed[(gtin, serial)]
                            conflicts.append(f"{roll.manifest}: line {mine.line}: GTIN {gtin} serial {serial!r} "
                                             "is already used by a stamp of this station")
            if conflicts:
                more = f"\n… and {len(conflicts) - 20} more" if len(conflicts) > 20 else ""
                raise RollConflict("\n".join(conflicts[:20]) + more, conflicts)
            now = utcnow()
            row = RollRow(roll_id=roll.roll_id, gtin=roll.gtin, kind=roll.kind, pattern=roll.pattern,
                          first=roll.first, last=roll.last, code_count=len(roll.codes), issuer=roll.issuer,
                          manifest=roll.manifest, manifest_sha256=roll.manifest_sha256, registered_at=now,
                          state=RollState.ACTIVE.value, state_reason="")
            s.add(row)
            s.flush()
            s.execute(insert(RollCodeRow), [
                {"roll_pk": row.id, "seq": c.seq, "code": c.code, "gtin": c.gtin, "serial": c.serial,
                 "state": CodeState.UNUSED.value, "void_detail": ""}
                for c in roll.codes
            ])
            s.add(AuditRow(at=now, actor="operator", action="roll_registered",
                           detail=f"{roll.roll_id}: {len(roll.codes)} codes for {roll.gtin} from {roll.manifest}"))
            return _roll(row)

        try:
            return self._write(job)
        except IntegrityError as exc:  # a race with another writer: the index said no
            raise RollConflict(f"{roll.manifest}: a code is already registered in another roll ({exc.orig})",
                               []) from None

    def roll(self, roll_id: str) -> RollInfo:
        row = self._read(lambda s: s.scalar(select(RollRow).where(RollRow.roll_id == roll_id)))
        if row is None:
            raise StoreError(f"unknown roll {roll_id!r}: register it first (station rolls register MANIFEST)")
        return _roll(row)

    def rolls(self, *, gtin: str | None = None) -> list[RollInfo]:
        q = select(RollRow).order_by(RollRow.id)
        if gtin:
            q = q.where(RollRow.gtin == gtin)
        return self._read(lambda s: [_roll(r) for r in s.scalars(q)])

    def roll_counts(self, roll_pk: int) -> dict[CodeState, int]:
        rows = self._read(lambda s: s.execute(
            select(RollCodeRow.state, func.count()).where(RollCodeRow.roll_pk == roll_pk)
            .group_by(RollCodeRow.state)).all())
        counts = {state: 0 for state in CodeState}
        for state, n in rows:
            counts[CodeState(state)] = n
        return counts

    def find_code(self, code: str) -> RollCode | None:
        """The roll code carrying exactly this text, with its roll."""
        q = (select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
             .where(RollCodeRow.code == code))
        row = self._read(lambda s: s.execute(q).first())
        return _roll_code(*row) if row else None

    def find_code_by_serial(self, gtin: str, serial: str) -> RollCode | None:
        """The Digital Link roll code with this GTIN and serial (whatever its domain or extra qualifiers)."""
        q = (select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
             .where(RollCodeRow.gtin == gtin, RollCodeRow.serial == serial))
        row = self._read(lambda s: s.execute(q).first())
        return _roll_code(*row) if row else None

    def roll_codes(self, roll_pk: int) -> list[RollCode]:
        """Every code of a roll in roll order (its sequence number)."""
        q = (select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
             .where(RollCodeRow.roll_pk == roll_pk).order_by(RollCodeRow.seq))
        return self._read(lambda s: [_roll_code(c, r) for c, r in s.execute(q)])

    def is_code_activated(self, code: str) -> bool:
        return self._read(lambda s: s.get(CodeActivationRow, code)) is not None

    def set_roll_state(self, roll_id: str, state: RollState, reason: str, *, actor: str = "operator",
                       void_event: Callable[[RollCode], dict[str, Any]] | None = None) -> RollInfo:
        """Lock, unlock or void a roll, with the reason in the roll and the audit log.

        Voiding is for good: every unused code of the roll is voided with it (``roll_voided``), each with the
        void event ``void_event`` builds for it, in the same transaction.
        """
        if not reason.strip():
            raise StoreError("give a reason: it is recorded and shown in the roll's report")

        def job(s: Session) -> RollInfo:
            row = s.scalar(select(RollRow).where(RollRow.roll_id == roll_id))
            if row is None:
                raise StoreError(f"unknown roll {roll_id!r}")
            if row.state == RollState.VOIDED.value:
                raise StoreError(f"roll {roll_id!r} is voided ({row.state_reason}): a voided roll stays voided")
            now = utcnow()
            previous = row.state
            row.state, row.state_reason, row.state_changed_at = state.value, reason, now
            voided = 0
            if state is RollState.VOIDED:
                for code_row in s.scalars(select(RollCodeRow).where(
                        RollCodeRow.roll_pk == row.id, RollCodeRow.state == CodeState.UNUSED.value)):
                    code_row.state, code_row.voided_at = CodeState.VOIDED.value, now
                    code_row.void_reason, code_row.void_detail = RefusalReason.ROLL_VOIDED.value, reason
                    if void_event is not None:
                        self._add_outbox(s, None, "code_void", void_event(_roll_code(code_row, row)), now)
                    voided += 1
            s.add(AuditRow(at=now, actor=actor[:40], action=f"roll_{state.value}"[:40],
                           detail=f"{roll_id}: {previous} -> {state.value}: {reason}"
                                  + (f" ({voided} unused codes voided)" if voided else "")))
            return _roll(row)

        return self._write(job)

    def void_code(self, code: str, reason: str, *, actor: str = "operator",
                  event: dict[str, Any] | None = None) -> RollCode:
        """Void one unused code of a roll for good (a damaged or lost stamp), with its void event."""
        if not reason.strip():
            raise StoreError("give a reason: it is recorded and shown in the roll's report")

        def job(s: Session) -> RollCode:
            pair = s.execute(select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
                             .where(RollCodeRow.code == code)).first()
            if pair is None:
                raise StoreError(f"code {code!r} is in no registered roll")
            code_row, roll_row = pair
            if code_row.state != CodeState.UNUSED.value:
                raise StoreError(f"code {code!r} of roll {roll_row.roll_id!r} is {code_row.state}: only an unused "
                                 "code can be voided here")
            now = utcnow()
            code_row.state, code_row.voided_at = CodeState.VOIDED.value, now
            code_row.void_reason, code_row.void_detail = "operator", reason
            if event is not None:
                self._add_outbox(s, None, "code_void", event, now)
            s.add(AuditRow(at=now, actor=actor[:40], action="code_voided",
                           detail=f"{code} (roll {roll_row.roll_id}, #{code_row.seq}): {reason}"))
            return _roll_code(code_row, roll_row)

        return self._write(job)

    def commit_preprinted(self, activations: Sequence[CodeActivation] = (),
                          refusals: Sequence[Refusal] = ()) -> list[CommitOutcome]:
        """Activate pre-printed codes (stamp row, code state, once-only record, outbox row) and record refusals,
        in one transaction.

        Each activation is checked again inside the transaction — batch not closed or locked, roll active, code
        unused, never activated — so a lock set by another process, or a code read twice, is refused here even if
        the line had not seen it yet. Such an activation becomes a refusal (recorded) instead of failing the
        group. Returns one outcome per activation, in order.
        """

        def job(s: Session) -> list[CommitOutcome]:
            now = utcnow()
            outcomes: list[CommitOutcome] = []
            for act in activations:
                refusal = self._recheck(s, act)
                if refusal is None:
                    savepoint = s.begin_nested()
                    try:
                        stamp = StampRow(gtin=act.gtin, serial=act.serial, batch_id=act.batch_id,
                                         state=StampState.ACTIVATED.value, uri=act.code, read_text=act.read_text,
                                         void_detail="", allocated_at=now, verified_at=now, activated_at=now)
                        s.add(stamp)
                        s.flush()
                        s.add(CodeActivationRow(code=act.code, stamp_id=stamp.id, batch_id=act.batch_id, at=now))
                        s.flush()
                        changed = s.execute(
                            update(RollCodeRow)
                            .where(RollCodeRow.id == act.code_id, RollCodeRow.state == CodeState.UNUSED.value)
                            .values(state=CodeState.ACTIVATED.value, stamp_id=stamp.id, batch_id=act.batch_id,
                                    activated_at=now)
                        ).rowcount
                        if changed != 1:
                            raise IntegrityError("roll code not unused", None, Exception("state"))
                        self._add_outbox(s, stamp.id, "activation", act.event, now)
                        if act.scan is not None:
                            self._add_scan(s, act.scan, stamp.id)
                        savepoint.commit()
                        outcomes.append(CommitOutcome(act, _stamp(stamp), None))
                        continue
                    except IntegrityError as exc:
                        savepoint.rollback()
                        refusal = act.refusal(RefusalReason.ALREADY_ACTIVATED,
                                              f"the database refused a second activation ({exc.orig})")
                self._add_refusal(s, refusal)
                if act.scan is not None:
                    self._add_scan(s, act.scan, None)
                outcomes.append(CommitOutcome(act, None, refusal))
            for refusal in refusals:
                self._add_refusal(s, refusal)
            return outcomes

        return self._write(job)

    @staticmethod
    def _recheck(s: Session, act: CodeActivation) -> Refusal | None:
        batch = s.get(BatchRow, act.batch_id)
        if batch is None:
            raise StoreError(f"unknown batch {act.batch_id}")
        if batch.locked_at is not None:
            return act.refusal(RefusalReason.BATCH_LOCKED, f"batch {batch.lot} is locked: {batch.lock_reason}")
        if batch.closed_at is not None:
            return act.refusal(RefusalReason.BATCH_CLOSED, f"batch {batch.lot} is closed")
        code_row = s.get(RollCodeRow, act.code_id)
        if code_row is None:
            raise StoreError(f"unknown roll code {act.code_id}")
        roll = s.get(RollRow, code_row.roll_pk)
        assert roll is not None
        if roll.state == RollState.VOIDED.value:
            return act.refusal(RefusalReason.ROLL_VOIDED, f"roll {roll.roll_id} is voided: {roll.state_reason}")
        if roll.state == RollState.LOCKED.value:
            return act.refusal(RefusalReason.ROLL_LOCKED, f"roll {roll.roll_id} is locked: {roll.state_reason}")
        if roll.gtin != batch.gtin:
            return act.refusal(RefusalReason.WRONG_PRODUCT,
                               f"roll {roll.roll_id} is meant for {roll.gtin}, the batch is {batch.gtin}")
        if code_row.state == CodeState.ACTIVATED.value or s.get(CodeActivationRow, act.code) is not None:
            return act.refusal(RefusalReason.ALREADY_ACTIVATED, f"activated at {code_row.activated_at} "
                                                                 f"into batch {code_row.batch_id}")
        if code_row.state == CodeState.VOIDED.value:
            return act.refusal(RefusalReason.CODE_VOIDED, f"voided ({code_row.void_reason}): {code_row.void_detail}")
        return None

    @staticmethod
    def _add_refusal(s: Session, refusal: Refusal) -> None:
        s.add(RefusalRow(at=refusal.at, reason=refusal.reason.value, code=refusal.code, raw_hex=refusal.raw.hex(),
                         detail=refusal.detail[:1000], source=refusal.source[:40], batch_id=refusal.batch_id,
                         roll_pk=refusal.roll_pk))

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        """Record refused reads (a product barcode mismatch on the printed line, for instance)."""
        if refusals:
            self.commit_preprinted(refusals=refusals)

    def refusals(self, *, roll_pk: int | None = None, batch_id: int | None = None,
                 limit: int | None = None) -> list[Refusal]:
        q = select(RefusalRow, RollRow.roll_id).outerjoin(RollRow, RollRow.id == RefusalRow.roll_pk)
        if roll_pk is not None:
            q = q.where(RefusalRow.roll_pk == roll_pk)
        if batch_id is not None:
            q = q.where(RefusalRow.batch_id == batch_id)
        q = q.order_by(RefusalRow.id)
        if limit is not None:
            q = q.limit(limit)
        return self._read(lambda s: [
            Refusal(reason=RefusalReason(r.reason), code=r.code, raw=bytes.fromhex(r.raw_hex), detail=r.detail,
                    source=r.source, batch_id=r.batch_id, roll_pk=r.roll_pk, at=r.at, roll_id=roll_id)
            for r, roll_id in s.execute(q)
        ])

    def refusal_count(self, *, roll_pk: int) -> int:
        """How many reads of a roll's codes were refused (what the operator screen shows, without the rows)."""
        q = select(func.count()).select_from(RefusalRow).where(RefusalRow.roll_pk == roll_pk)
        return int(self._read(lambda s: s.scalar(q)) or 0)

    def lock_batch(self, batch_id: int, reason: str, *, actor: str = "operator",
                   event: dict[str, Any] | None = None) -> Batch:
        """Lock a batch (a recall, a quality hold): nothing more is activated into it. The reason goes to the batch
        and the audit log; ``event`` (an EPCIS hold event) to the outbox, in the same transaction."""
        return self._set_lock(batch_id, reason, actor, event, lock=True)

    def unlock_batch(self, batch_id: int, reason: str, *, actor: str = "operator",
                     event: dict[str, Any] | None = None) -> Batch:
        return self._set_lock(batch_id, reason, actor, event, lock=False)

    def _set_lock(self, batch_id: int, reason: str, actor: str, event: dict[str, Any] | None, *,
                  lock: bool) -> Batch:
        if not reason.strip():
            raise StoreError("give a reason: it is recorded in the audit log and published")

        def job(s: Session) -> Batch:
            row = s.get(BatchRow, batch_id)
            if row is None:
                raise StoreError(f"unknown batch {batch_id}")
            if lock and row.locked_at is not None:
                raise StoreError(f"batch {row.lot} is already locked: {row.lock_reason}")
            if not lock and row.locked_at is None:
                raise StoreError(f"batch {row.lot} is not locked")
            now = utcnow()
            row.locked_at, row.lock_reason = (now, reason) if lock else (None, None)
            if event is not None:
                self._add_outbox(s, None, "batch_lock" if lock else "batch_unlock", event, now)
            s.add(AuditRow(at=now, actor=actor[:40], action="batch_locked" if lock else "batch_unlocked",
                           detail=f"batch {row.id} ({row.gtin} lot {row.lot}): {reason}"))
            return _batch(row)

        return self._write(job)

    def batch_lock_reason(self, batch_id: int) -> str | None:
        """Why the batch is locked, or None when it is not (cheap: one primary-key read)."""
        row = self._read(lambda s: s.get(BatchRow, batch_id))
        if row is None:
            raise StoreError(f"unknown batch {batch_id}")
        return row.lock_reason if row.locked_at is not None else None


# -- records of the pre-printed rolls (issue 5) -------------------------------------------------------------------

class RollConflict(StoreError):
    """A roll manifest whose codes are already registered or used; ``conflicts`` has one message per code."""

    def __init__(self, message: str, conflicts: list[str]) -> None:
        super().__init__(message)
        self.conflicts = conflicts


@dataclass(frozen=True)
class NewRollCode:
    seq: int
    code: str
    gtin: str | None = None       # a Digital Link code's GTIN-14 and serial
    serial: str | None = None
    line: int = 0                 # line of the manifest it came from (for messages)


@dataclass(frozen=True)
class NewRoll:
    roll_id: str
    gtin: str
    kind: str                     # list | sequence
    codes: Sequence[NewRollCode]
    pattern: str | None = None
    first: int | None = None
    last: int | None = None
    issuer: str = ""
    manifest: str = ""
    manifest_sha256: str = ""


@dataclass(frozen=True)
class RollInfo:
    pk: int
    roll_id: str
    gtin: str
    kind: str
    pattern: str | None
    first: int | None
    last: int | None
    code_count: int
    issuer: str
    manifest: str
    manifest_sha256: str
    registered_at: dt.datetime
    state: RollState
    state_reason: str


@dataclass(frozen=True)
class RollCode:
    id: int
    roll_pk: int
    roll_id: str
    roll_gtin: str
    roll_state: RollState
    roll_state_reason: str
    seq: int
    code: str
    gtin: str | None
    serial: str | None
    state: CodeState
    batch_id: int | None
    stamp_id: int | None
    activated_at: dt.datetime | None
    void_reason: str | None
    void_detail: str
    voided_at: dt.datetime | None


@dataclass(frozen=True)
class Refusal:
    """A read refused before activation, as recorded in the ``refusals`` table."""

    reason: RefusalReason
    code: str | None
    raw: bytes = b""
    detail: str = ""
    source: str = ""
    batch_id: int | None = None
    roll_pk: int | None = None
    at: dt.datetime = field(default_factory=utcnow)
    roll_id: str | None = None    # filled when read back


@dataclass(frozen=True)
class CodeActivation:
    """A pre-printed code to activate into a batch, with its EPCIS event and the read that saw it."""

    code_id: int                  # roll_codes.id
    code: str
    batch_id: int
    gtin: str                     # the stamp's GTIN (the batch's)
    serial: str                   # a Digital Link's serial, or the opaque code itself
    event: dict[str, Any]
    read_text: str = ""
    scan: ScanRecord | None = None
    raw: bytes = b""
    source: str = ""
    roll_pk: int | None = None

    def refusal(self, reason: RefusalReason, detail: str) -> Refusal:
        return Refusal(reason=reason, code=self.code, raw=self.raw, detail=detail, source=self.source,
                       batch_id=self.batch_id, roll_pk=self.roll_pk)


@dataclass(frozen=True)
class CommitOutcome:
    activation: CodeActivation
    stamp: Stamp | None           # the activated stamp, or None when refused at commit
    refusal: Refusal | None


def _roll(row: RollRow) -> RollInfo:
    return RollInfo(pk=row.id, roll_id=row.roll_id, gtin=row.gtin, kind=row.kind, pattern=row.pattern,
                    first=row.first, last=row.last, code_count=row.code_count, issuer=row.issuer or "",
                    manifest=row.manifest or "", manifest_sha256=row.manifest_sha256 or "",
                    registered_at=row.registered_at, state=RollState(row.state), state_reason=row.state_reason or "")


def _roll_code(row: RollCodeRow, roll: RollRow) -> RollCode:
    return RollCode(id=row.id, roll_pk=row.roll_pk, roll_id=roll.roll_id, roll_gtin=roll.gtin,
                    roll_state=RollState(roll.state), roll_state_reason=roll.state_reason or "", seq=row.seq,
                    code=row.code, gtin=row.gtin, serial=row.serial, state=CodeState(row.state),
                    batch_id=row.batch_id, stamp_id=row.stamp_id, activated_at=row.activated_at,
                    void_reason=row.void_reason, void_detail=row.void_detail or "", voided_at=row.voided_at)


__all__ += ["RollConflict", "NewRoll", "NewRollCode", "RollInfo", "RollCode", "Refusal", "CodeActivation",
            "CommitOutcome"]
