"""What the trace page of one stamp says: its data joined from the tables, the verdict, and the scan count.

Every field comes from what the stations (or the province's master data) sent; a field the data lacks is None
and the page marks it missing, never fills it in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, select, text

from central.db import batches, diary_stages, events, producers, products, scans, stamps
from contracts.digital_link import StampLink

Verdict = Literal["genuine", "voided", "unknown", "mismatch", "recalled", "on_hold"]
HTTP_STATUS: dict[str, int] = {"genuine": 200, "recalled": 200, "on_hold": 200, "voided": 410, "unknown": 404,
                               "mismatch": 404}


@dataclass(frozen=True)
class Stage:
    stage: str
    biz_step: str | None
    place: str | None
    at: dt.datetime | None
    detail: str | None


@dataclass(frozen=True)
class Scans:
    count: int
    first_at: dt.datetime | None
    places: int  # distinct client networks

    def suspicious(self, threshold: int, places_threshold: int) -> bool:
        return self.count >= threshold or self.places >= places_threshold


@dataclass
class Trace:
    link: StampLink
    verdict: Verdict
    stamp: dict[str, Any] | None = None
    product: dict[str, Any] | None = None
    producer: dict[str, Any] | None = None
    batch: dict[str, Any] | None = None
    stages: list[Stage] = field(default_factory=list)
    scans: Scans | None = None
    mismatch: str | None = None  # which printed field disagrees with the stamp ("lot", "expiry")

    @property
    def status_code(self) -> int:
        return HTTP_STATUS[self.verdict]

    @property
    def lot(self) -> str | None:
        return (self.stamp or {}).get("lot")

    @property
    def expiry(self) -> dt.date | None:
        return (self.stamp or {}).get("expiry") or (self.batch or {}).get("expiry")

    @property
    def standards(self) -> str | None:
        return (self.batch or {}).get("standards") or (self.product or {}).get("standards")


def client_key(address: str | None, secret: bytes) -> str | None:
    """A keyed hash of the client's network (/24 for IPv4, /48 for IPv6): counts places, keeps no address."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    network = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False)
    return hashlib.blake2s(str(network).encode(), key=secret[:32], digest_size=8).hexdigest()


def _row(conn: Connection, statement: Any) -> dict[str, Any] | None:
    row = conn.execute(statement).mappings().first()
    return dict(row) if row is not None else None


_PARTS = (("stamp", stamps), ("product", products), ("producer", producers), ("batch", batches))
_JOINED = (
    stamps.outerjoin(products, products.c.gtin == stamps.c.gtin)
    .outerjoin(producers, producers.c.producer_id == products.c.producer_id)
    .outerjoin(batches, (batches.c.gtin == stamps.c.gtin) & (batches.c.lot == stamps.c.lot))
)
# One round trip for the stamp and everything beside it: each column labelled by its table.
_LOOKUP = select(*[c.label(f"{name}__{c.name}") for name, table in _PARTS for c in table.columns]).select_from(_JOINED)
_KEYS = {"product": "gtin", "producer": "producer_id", "batch": "lot"}


def lookup(conn: Connection, link: StampLink) -> Trace:
    """The stamp, its product, producer, batch and diary, and the verdict (no scan recorded)."""
    row = conn.execute(_LOOKUP.where(stamps.c.epc == link.epc)).mappings().first()
    if row is None or (row["stamp__activated_at"] is None and row["stamp__voided_at"] is None):
        return Trace(link, "unknown")
    parts: dict[str, dict[str, Any]] = {name: {} for name, _ in _PARTS}
    for key, value in row.items():
        name, _, column = key.partition("__")
        parts[name][column] = value
    stamp = parts["stamp"]
    trace = Trace(link, "genuine", stamp=stamp)
    # A LEFT JOIN that found nothing gives a row of NULLs: no such product, producer or batch.
    trace.product, trace.producer, trace.batch = (
        parts[name] if parts[name][_KEYS[name]] is not None else None for name in ("product", "producer", "batch"))
    if stamp["lot"] is not None:
        rows = conn.execute(
            select(diary_stages).where(diary_stages.c.gtin == stamp["gtin"], diary_stages.c.lot == stamp["lot"])
            .order_by(diary_stages.c.position)
        ).mappings()
        trace.stages = [Stage(r["stage"], r["biz_step"], r["place"], _local(r["occurred_at"], r["occurred_offset"]),
                              r["detail"]) for r in rows]
    if link.lot is not None and stamp["lot"] is not None and link.lot != stamp["lot"]:
        trace.verdict, trace.mismatch = "mismatch", "lot"
    elif link.expiry is not None and stamp["expiry"] is not None and link.expiry != stamp["expiry"]:
        trace.verdict, trace.mismatch = "mismatch", "expiry"
    elif stamp["voided_at"] is not None:
        trace.verdict = "voided"
    elif trace.batch is not None and trace.batch["status"] in ("recalled", "on_hold"):
        trace.verdict = trace.batch["status"]
    return trace


def _local(moment: dt.datetime | None, offset: str | None) -> dt.datetime | None:
    """A stored instant shown at the offset it was recorded with (the station's, +07:00 in Vietnam)."""
    if moment is None:
        return None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        return moment.astimezone(dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes)))
    return moment


def activated_local(trace: Trace) -> dt.datetime | None:
    stamp = trace.stamp or {}
    return _local(stamp.get("activated_at"), stamp.get("activated_offset"))


def voided_local(trace: Trace) -> dt.datetime | None:
    stamp = trace.stamp or {}
    return _local(stamp.get("voided_at"), stamp.get("voided_offset"))


def check(engine: Engine, link: StampLink, *, client: str | None, now: dt.datetime, record: bool = True) -> Trace:
    """lookup() and, for a consumer's check, the scan recorded and counted in the same transaction."""
    with engine.begin() as conn:
        if record and conn.dialect.name == "postgresql":
            # A consumer's check is a count, not a record anyone relies on: its commit need not wait for the
            # disk (a crash loses at most the last few checks, never corrupts; PostgreSQL's own guarantee).
            conn.execute(text("SET LOCAL synchronous_commit = off"))
        trace = lookup(conn, link)
        if record:
            conn.execute(scans.insert().values(epc=link.epc, scanned_at=now, client=client, verdict=trace.verdict))
        if trace.verdict != "unknown":
            count, first, places = conn.execute(
                select(func.count(), func.min(scans.c.scanned_at), func.count(scans.c.client.distinct()))
                .where(scans.c.epc == link.epc)
            ).one()
            trace.scans = Scans(int(count), first, int(places))
    return trace


def events_of(engine: Engine, epc: str) -> list[dict[str, Any]]:
    """The stamp's events as the stations sent them, in the order they happened."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.payload).where(events.c.epc == epc).order_by(events.c.event_time, events.c.event_id)
        ).scalars()
        return list(rows)
