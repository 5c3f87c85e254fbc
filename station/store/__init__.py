"""The station's local database: SQLite in WAL mode, synchronous=FULL, one writer thread, Alembic migrations."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from station.domain import (
    Batch,
    DeliveryState,
    Product,
    Stage,
    Stamp,
    StampState,
    VoidReason,
    check_transition,
)
from station.errors import DuplicateSerial, StationError
from station.store.models import AuditRow, BatchRow, OutboxRow, ProductRow, ScanRow, StampRow

__all__ = ["Store", "StoreError", "OutboxItem", "ScanRecord", "Counts", "AuditEntry", "Activation", "Voiding",
           "utcnow"]

T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")
UNCONFIRMED = (DeliveryState.PENDING.value, DeliveryState.SENT.value)
SERIAL_ATTEMPTS = 8


class StoreError(StationError):
    """A database operation refused for a domain reason (unknown batch, closed batch, duplicate lot)."""


def utcnow() -> dt.datetime:
    """Naive UTC: SQLite keeps no time zone, so every stored time is UTC by convention."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    event_id: str
    kind: str
    event: dict[str, Any]
    attempts: int
    state: DeliveryState


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
        """Stamps that went to the printer: everything past allocation except those voided before printing."""
        return sum(self.by_state.values()) - self.state(StampState.ALLOCATED)


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


class Store:
    """All reads and writes of the station's SQLite file.

    Writes run on one worker thread (the single writer), each in a ``BEGIN IMMEDIATE`` transaction so a second
    process sharing the file (a separate relay service) waits on ``busy_timeout`` instead of failing on a lock
    upgrade. Callers on any thread get plain domain objects back, never live ORM rows.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer_engine = self._engine(immediate=True)
        self._reader_engine = self._engine(immediate=False)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._closed = False
        self._lock = threading.Lock()
        self._run(self._migrate)

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
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()

    def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")
        return self._writer.submit(fn).result()

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
        self._writer.shutdown(wait=True)
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

    def _transition(self, s: Session, stamp_id: int, target: StampState) -> StampRow:
        row = s.get(StampRow, stamp_id)
        if row is None:
            raise StoreError(f"unknown stamp {stamp_id}")
        check_transition(StampState(row.state), target)
        row.state = target.value
        return row

    def commit_line(self, printed: Sequence[int] = (), activations: Sequence[Activation] = (),
                    voids: Sequence[Voiding] = (), scans: Sequence[ScanRecord] = ()) -> list[Stamp]:
        """What the line decided since the last commit, in one transaction (one fsync for many stamps).

        ``printed`` stamps become sent-to-printer; activations are verified and activated with their outbox
        rows; voids are voided with theirs; stray scans are recorded. Returns the decided stamps, activations
        first. All or nothing: a failure leaves every stamp as it was.
        """

        def job(s: Session) -> list[Stamp]:
            now = utcnow()
            for stamp_id in printed:
                row = self._transition(s, stamp_id, StampState.SENT_TO_PRINTER)
                row.printed_at = now
            decided: list[Stamp] = []
            for act in activations:
                row = self._transition(s, act.stamp_id, StampState.VERIFIED)
                row.verified_at, row.read_text = now, act.read_text
                row.quality_grade, row.quality = act.quality_grade, act.quality
                self._transition(s, act.stamp_id, StampState.ACTIVATED)
                row.activated_at = now
                self._add_outbox(s, row.id, "activation", act.event, now)
                if act.scan is not None:
                    self._add_scan(s, act.scan, row.id)
                decided.append(_stamp(row))
            for void in voids:
                row = self._transition(s, void.stamp_id, StampState.VOIDED)
                row.void_reason, row.void_detail, row.voided_at = void.reason.value, void.detail, now
                if void.read_text is not None:
                    row.read_text = void.read_text
                self._add_outbox(s, row.id, "void", void.event, now)
                if void.scan is not None:
                    self._add_scan(s, void.scan, row.id)
                decided.append(_stamp(row))
            for scan in scans:
                self._add_scan(s, scan, None)
            return decided

        return self._write(job)

    def mark_sent_to_printer(self, stamp_id: int) -> Stamp:
        self.commit_line(printed=[stamp_id])
        return self.stamp(stamp_id)

    def activate(self, stamp_id: int, read_text: str, event: dict[str, Any], scan: ScanRecord | None = None) -> Stamp:
        """Verified and activated, with its outbox row (and the scan that verified it), in one transaction."""
        return self.commit_line(activations=[Activation(stamp_id, read_text, event, scan)])[0]

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
        return self.commit_line(voids=[Voiding(stamp_id, reason, detail, event, scan, read_text)])[0]

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
               newest_first: bool = True) -> list[Stamp]:
        q = select(StampRow)
        if batch_id is not None:
            q = q.where(StampRow.batch_id == batch_id)
        if state is not None:
            q = q.where(StampRow.state == state.value)
        q = q.order_by(StampRow.id.desc() if newest_first else StampRow.id).limit(limit)
        return self._read(lambda s: [_stamp(r) for r in s.scalars(q)])

    def in_flight_stamps(self) -> list[Stamp]:
        """Stamps allocated or sent to the printer but not decided: after a crash these can only be voided."""
        q = select(StampRow).where(
            StampRow.state.in_([StampState.ALLOCATED.value, StampState.SENT_TO_PRINTER.value,
                                StampState.VERIFIED.value])
        ).order_by(StampRow.id)
        return self._read(lambda s: [_stamp(r) for r in s.scalars(q)])

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

    def due_outbox(self, now: dt.datetime, limit: int, exclude_ids: Iterable[int] = ()) -> list[OutboxItem]:
        """Unconfirmed rows whose next attempt is due, oldest first, skipping those already in flight."""
        excluded = set(exclude_ids)
        q = (
            select(OutboxRow)
            .where(OutboxRow.state.in_(UNCONFIRMED), OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit + len(excluded))
        )

        def job(s: Session) -> list[OutboxItem]:
            items = []
            for r in s.scalars(q):
                if r.id in excluded:
                    continue
                items.append(OutboxItem(r.id, r.event_id, r.kind, json.loads(r.event_json), r.attempts,
                                        DeliveryState(r.state)))
                if len(items) >= limit:
                    break
            return items

        return self._read(job)

    def reschedule_unconfirmed(self, at: dt.datetime) -> int:
        """Make every unconfirmed row due at ``at``: after a restart nothing waits out a schedule from before."""
        return self._write(lambda s: s.execute(
            update(OutboxRow).where(OutboxRow.state.in_(UNCONFIRMED), OutboxRow.next_attempt_at > at)
            .values(next_attempt_at=at)
        ).rowcount)

    def mark_published(self, ids: Sequence[int], at: dt.datetime, retry_at: dt.datetime) -> None:
        """The broker acknowledged these rows: sent; resent at ``retry_at`` unless the server confirms first."""
        if not ids:
            return
        self._write(lambda s: s.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(list(ids)), OutboxRow.state != DeliveryState.CONFIRMED.value)
            .values(state=DeliveryState.SENT.value, sent_at=at, next_attempt_at=retry_at,
                    attempts=OutboxRow.attempts + 1, last_error="")
        ))

    def mark_publish_failed(self, ids: Sequence[int], error: str, retry_at: dt.datetime) -> None:
        if not ids:
            return
        self._write(lambda s: s.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(list(ids)), OutboxRow.state != DeliveryState.CONFIRMED.value)
            .values(next_attempt_at=retry_at, attempts=OutboxRow.attempts + 1, last_error=error[:500])
        ))

    def mark_confirmed(self, event_ids: Sequence[str], at: dt.datetime) -> int:
        """The central server stored these events. Returns how many rows changed (a repeated ack changes none)."""
        if not event_ids:
            return 0
        return self._write(lambda s: s.execute(
            update(OutboxRow)
            .where(OutboxRow.event_id.in_(list(event_ids)), OutboxRow.state != DeliveryState.CONFIRMED.value)
            .values(state=DeliveryState.CONFIRMED.value, confirmed_at=at, last_error="")
        ).rowcount)

    def outbox_counts(self) -> dict[DeliveryState, int]:
        rows = self._read(lambda s: s.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all())
        counts = {state: 0 for state in DeliveryState}
        for state, n in rows:
            counts[DeliveryState(state)] = n
        return counts

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
