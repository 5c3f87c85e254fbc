"""Locking a batch (a quality hold or a recall) and unlocking it: which batch is meant, and the lock written with
the EPCIS event that tells the server, in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from station.domain import Batch
from station.errors import StationError
from station.gs1 import normalize_gtin
from station.line.stamp_events import HoldKind, batch_hold_event

if TYPE_CHECKING:
    from station.line.events import StationIdentity
    from station.store import Store


def find_batch(store: Store, *, batch_id: int | None = None, product: str | None = None,
               lot: str | None = None) -> Batch:
    """The batch named by its id, or by its product's GTIN (any length: 8, 12, 13 or 14 digits) and lot."""
    if batch_id is not None:
        return store.batch(batch_id)
    if not (product and lot):
        raise StationError("name the batch: --batch ID, or --product GTIN --lot LOT")
    found = store.find_batch(normalize_gtin(product), lot)
    if found is None:
        raise StationError(f"no batch with lot {lot!r} for product {product}")
    return found


def set_batch_lock(store: Store, batch: Batch, reason: str, identity: StationIdentity, *, lock: bool,
                   recall: bool = False, actor: str = "operator") -> Batch:
    """Lock (nothing more is activated into it) or unlock the batch, with the reason; the hold event (a recall's when
    `recall`) goes to the outbox in the same transaction. The batch as it is now."""
    event = batch_hold_event(batch, reason, identity, locked=lock, kind=HoldKind.RECALL if recall else HoldKind.HOLD)
    assert batch.id is not None
    if lock:
        return store.lock_batch(batch.id, reason, actor=actor, event=event)
    return store.unlock_batch(batch.id, reason, actor=actor, event=event)


__all__ = ["find_batch", "set_batch_lock"]
