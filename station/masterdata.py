"""What a new batch tells the central service (issue 10): the batch-opened event (lot, product and producer in its
ilmd) and one event per stage of its production diary, built with contracts.masterdata (the shared contract) and
written to the outbox in the batch's own transaction, so the relay delivers them like activations.

The diary is the batch's own stages when the batch dialog gave some, else the product's template (products.yaml
`diary`): each stage `days_before` the batch's production date at its `time`, in the station's UTC offset. Empty
texts are left out (the page marks them missing); nothing is invented.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from contracts import masterdata as md
from station import epcis
from station.domain import Batch, Product
from station.line.events import StationIdentity

# The CBV business step of the stages that have one; the others get the contract's own URI per stage.
STAGE_BIZ_STEPS = {"raw_material": "receiving", "packing": "packing"}


def producer_id(product: Product) -> str:
    """The producer's identifier at the central service: `producer_id` as configured, else the producer's name in
    lower-case ASCII words joined by '-' ("Cơ sở Mè xừng Thông Hương" -> "co-so-me-xung-thong-huong")."""
    if product.producer_id:
        return product.producer_id
    ascii_name = unicodedata.normalize("NFKD", product.producer.replace("đ", "d").replace("Đ", "D"))
    ascii_name = "".join(c for c in ascii_name if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:100] or product.gtin


def _or_none(text: str, limit: int = 500) -> str | None:
    """The text, or None when empty (the contract refuses empty texts: the page marks the field missing instead);
    cut to the contract's limit (a place 500 characters, a detail 1000), which the product list enforces already
    and the batch dialog's free text may exceed."""
    return text.strip()[:limit].strip() or None


def _stages(product: Product, batch: Batch, identity: StationIdentity, produced: dt.date) -> list[md.Stage]:
    tz = identity.tzinfo
    if batch.stages:
        # Typed in the batch dialog: a name, a date, a place and a note each. The name is the stage (the page shows
        # it as it is unless it is one it knows); a stage without a date took place on the production date.
        return [md.Stage(gtin=batch.gtin, lot=batch.lot, position=i, stage=s.name.strip()[:40],
                         at=dt.datetime.combine(s.date or produced, dt.time(0, 0), tz), offset=identity.tz_offset,
                         biz_step=f"{md.STAGE_BIZSTEP}{quote(s.name.strip()[:40], safe='')}",
                         place=_or_none(s.place), detail=_or_none(s.note, 1000))
                for i, s in enumerate(batch.stages)]
    return [md.Stage(gtin=batch.gtin, lot=batch.lot, position=i, stage=step.stage,
                     at=dt.datetime.combine(produced - dt.timedelta(days=step.days_before), step.time, tz),
                     offset=identity.tz_offset, biz_step=step.biz_step or STAGE_BIZ_STEPS.get(step.stage),
                     place=_or_none(step.place), detail=_or_none(step.detail, 1000))
            for i, step in enumerate(product.diary)]


def batch_opened_events(product: Product, batch: Batch, identity: StationIdentity, *,
                        at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The batch-opened event and its diary's stage events, in that order, validated against the EPCIS schema.
    `batch` is the stored batch (its id is the stamps' `stn:batchId`); `at` the opening time (default now)."""
    opened = at or dt.datetime.now(identity.tzinfo)
    produced = batch.production_date or opened.date()
    events = [md.batch_event(
        producer=md.Producer(producer_id(product), product.producer, _or_none(product.producer_address),
                             _or_none(product.producer_phone)),
        product=md.ProductInfo(product.gtin, product.name, producer_id(product), _or_none(product.image_url, 1000),
                               product.shelf_life_days, _or_none(product.standards)),
        batch=md.BatchInfo(batch.gtin, batch.lot, str(batch.id) if batch.id is not None else None,
                           batch.production_date, batch.expiry_date, _or_none(product.standards)),
        at=opened, read_point=identity.read_point, tz_offset=identity.tz_offset)]
    events += [md.stage_event(stage, read_point=identity.read_point)
               for stage in _stages(product, batch, identity, produced)]
    epcis.validate(epcis.document(events, created_at=opened))
    return events
