"""The catalogue: products (from the configuration), batches, and their locks (a recall, a quality hold)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from station.domain import Batch, DiaryStep, Product, Stage
from station.store.database import Database
from station.store.models import BatchRow, ProductRow
from station.store.outbox import add_audit, write_events
from station.store.records import StoreError, utcnow
from station.store.sql import session_executemany


def batch_of(row: BatchRow) -> Batch:
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


def _diary_json(diary: Iterable[DiaryStep]) -> list[dict[str, Any]]:
    return [{"stage": d.stage, "place": d.place, "detail": d.detail, "days_before": d.days_before,
             "time": d.time.strftime("%H:%M"), "biz_step": d.biz_step} for d in diary]


def _diary_of(items: list[dict[str, Any]] | None) -> tuple[DiaryStep, ...]:
    return tuple(DiaryStep(stage=d["stage"], place=d.get("place", ""), detail=d.get("detail", ""),
                           days_before=d.get("days_before", 0), time=dt.time.fromisoformat(d.get("time", "08:00")),
                           biz_step=d.get("biz_step")) for d in items or [])


def product_of(row: ProductRow) -> Product:
    return Product(
        gtin=row.gtin, name=row.name, producer=row.producer, region=row.region or "",
        shelf_life_days=row.shelf_life_days, producer_id=row.producer_id or "",
        producer_address=row.producer_address or "", producer_phone=row.producer_phone or "",
        image_url=row.image_url or "", standards=row.standards or "", diary=_diary_of(row.diary),
    )


class CatalogueRepository:
    """Products, batches and batch locks."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- products ---------------------------------------------------------------------------------------------

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
                row.producer_id, row.producer_address, row.producer_phone = (p.producer_id, p.producer_address,
                                                                             p.producer_phone)
                row.image_url, row.standards, row.diary = p.image_url, p.standards, _diary_json(p.diary)

        self._db.write(job)

    def products(self) -> list[Product]:
        return self._db.read(lambda s: [product_of(r) for r in s.scalars(select(ProductRow).order_by(ProductRow.gtin))])

    def product(self, gtin: str) -> Product:
        row = self._db.read(lambda s: s.get(ProductRow, gtin))
        if row is None:
            raise StoreError(f"unknown product GTIN {gtin}: it is not in the configured product list")
        return product_of(row)

    # -- batches ----------------------------------------------------------------------------------------------

    def create_batch(self, batch: Batch, *,
                     events: Callable[[Batch], list[dict[str, Any]]] | None = None,
                     audit: str | None = None) -> Batch:
        """Store a new batch. `events(batch)`, given the stored batch (its id), returns the EPCIS events that tell
        the central service about it (station.masterdata): written to the outbox in the same transaction, as is
        the audit entry when `audit` names the actor."""
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
            created = batch_of(row)
            now = utcnow()
            if events is not None:
                write_events(session_executemany(s), [("batch_open" if i == 0 else "diary_stage", None, e)
                                                      for i, e in enumerate(events(created))], now)
            if audit is not None:
                add_audit(s, audit, "batch_created", f"{created.gtin} lot {created.lot} (batch {created.id})", now)
            return created

        return self._db.write(job)

    def publish_batch(self, batch_id: int, events: Callable[[Batch], list[dict[str, Any]]], *,
                      actor: str = "operator") -> int:
        """Queue a stored batch's events for the central service again (`events(batch)`: station.masterdata), with
        an audit entry, in one transaction: for a batch created before the station sent them, or after its
        product's entry was corrected. New eventIDs: the central service stores them as new and updates its master
        data. Returns how many were queued."""
        def job(s: Session) -> int:
            row = s.get(BatchRow, batch_id)
            if row is None:
                raise StoreError(f"unknown batch {batch_id}")
            batch, now = batch_of(row), utcnow()
            queued = events(batch)
            write_events(session_executemany(s), [("batch_open" if i == 0 else "diary_stage", None, e)
                                                  for i, e in enumerate(queued)], now)
            add_audit(s, actor, "batch_published", f"batch {batch.id} ({batch.gtin} lot {batch.lot}): {len(queued)} "
                      "events for the central service", now)
            return len(queued)

        return self._db.write(job)

    def batch(self, batch_id: int) -> Batch:
        row = self._db.read(lambda s: s.get(BatchRow, batch_id))
        if row is None:
            raise StoreError(f"unknown batch {batch_id}")
        return batch_of(row)

    def find_batch(self, gtin: str, lot: str) -> Batch | None:
        row = self._db.read(lambda s: s.scalar(select(BatchRow).where(BatchRow.gtin == gtin, BatchRow.lot == lot)))
        return batch_of(row) if row else None

    def batches(self, *, gtin: str | None = None, open_only: bool = False) -> list[Batch]:
        q = select(BatchRow).order_by(BatchRow.id.desc())
        if gtin:
            q = q.where(BatchRow.gtin == gtin)
        if open_only:
            q = q.where(BatchRow.closed_at.is_(None))
        return self._db.read(lambda s: [batch_of(r) for r in s.scalars(q)])

    def close_batch(self, batch_id: int) -> Batch:
        def job(s: Session) -> Batch:
            row = s.get(BatchRow, batch_id)
            if row is None:
                raise StoreError(f"unknown batch {batch_id}")
            if row.closed_at is None:
                row.closed_at = utcnow()
            return batch_of(row)

        return self._db.write(job)

    # -- locks ------------------------------------------------------------------------------------------------

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
                write_events(session_executemany(s), [("batch_lock" if lock else "batch_unlock", None, event)], now)
            add_audit(s, actor, "batch_locked" if lock else "batch_unlocked",
                      f"batch {row.id} ({row.gtin} lot {row.lot}): {reason}", now)
            return batch_of(row)

        return self._db.write(job)

    def batch_lock_reason(self, batch_id: int) -> str | None:
        """Why the batch is locked, or None when it is not (cheap: one primary-key read)."""
        row = self._db.read(lambda s: s.get(BatchRow, batch_id))
        if row is None:
            raise StoreError(f"unknown batch {batch_id}")
        return row.lock_reason if row.locked_at is not None else None
