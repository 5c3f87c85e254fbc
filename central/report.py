"""`central report`: the programme's periodic figures for the Department of Science & Technology.

For a period (local dates at the programme's offset, +07:00): stamps activated and voided (by reason), per
producer, product, batch and station, consumer checks and the stamps suspected copied, with the plan's figure
(100,000 stamps a year over 5 producers) prorated to the period so the reader can check it. Written as text, as
CSV (one row per producer × product × batch × station), and as an EPCIS document of the period's events.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, and_, func, select

from central.db import events, producers, products, scans, stamps
from central.errors import CentralError
from contracts import epcis

Key = tuple[str | None, str, str | None, str | None, str | None]  # producer, gtin, lot, site, station


@dataclass
class Row:
    producer: str | None
    producer_name: str | None
    gtin: str
    product_name: str | None
    lot: str | None
    site: str | None
    station: str | None
    activated: int = 0
    voided: Counter[str] = field(default_factory=Counter)

    @property
    def voided_total(self) -> int:
        return sum(self.voided.values())


@dataclass
class Report:
    start: dt.date
    end: dt.date  # inclusive
    offset: str
    rows: list[Row]
    checks: int
    stamps_checked: int
    unknown_checks: int
    suspected_copies: list[tuple[str, int, int]]  # epc, checks, places
    plan_per_year: int
    plan_producers: int

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def activated(self) -> int:
        return sum(r.activated for r in self.rows)

    @property
    def voided(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in self.rows:
            total.update(r.voided)
        return total

    @property
    def plan_for_period(self) -> int:
        return round(self.plan_per_year * self.days / 365)

    def by(self, index: int) -> dict[str | None, tuple[int, int]]:
        """(activated, voided) grouped by producer (0), product (1), batch (2) or station (3)."""
        totals: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
        for r in self.rows:
            key = (r.producer_name or r.producer, r.product_name or r.gtin, f"{r.gtin} / {r.lot}",
                   f"{r.site} / {r.station}")[index]
            totals[key][0] += r.activated
            totals[key][1] += r.voided_total
        return {k: (v[0], v[1]) for k, v in sorted(totals.items(), key=lambda kv: str(kv[0]))}


def _bounds(start: dt.date, end: dt.date, offset: str) -> tuple[dt.datetime, dt.datetime]:
    if end < start:
        raise CentralError(f"the period ends ({end}) before it starts ({start})")
    zone = epcis.timezone_of(offset)
    return (dt.datetime.combine(start, dt.time(), zone), dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone))


def build(engine: Engine, start: dt.date, end: dt.date, *, offset: str = "+07:00", copy_threshold: int = 50,
          copy_places: int = 10, plan_per_year: int = 100_000, plan_producers: int = 5) -> Report:
    low, high = _bounds(start, end, offset)
    rows: dict[Key, Row] = {}
    group = [products.c.producer_id, producers.c.name, stamps.c.gtin, products.c.name, stamps.c.lot]
    joined = stamps.outerjoin(products, products.c.gtin == stamps.c.gtin).outerjoin(
        producers, producers.c.producer_id == products.c.producer_id)

    def row(producer: str | None, producer_name: str | None, gtin: str, product_name: str | None, lot: str | None,
            site: str | None, station: str | None) -> Row:
        key = (producer, gtin, lot, site, station)
        if key not in rows:
            rows[key] = Row(producer, producer_name, gtin, product_name, lot, site, station)
        return rows[key]

    with engine.connect() as conn:
        activated = conn.execute(
            select(*group, stamps.c.activated_site, stamps.c.activated_station, func.count())
            .select_from(joined)
            .where(stamps.c.activated_at >= low, stamps.c.activated_at < high)
            .group_by(*group, stamps.c.activated_site, stamps.c.activated_station))
        for *key, count in activated:
            row(*key).activated += int(count)
        voided = conn.execute(
            select(*group, stamps.c.voided_site, stamps.c.voided_station, stamps.c.void_reason, func.count())
            .select_from(joined)
            .where(stamps.c.voided_at >= low, stamps.c.voided_at < high)
            .group_by(*group, stamps.c.voided_site, stamps.c.voided_station, stamps.c.void_reason))
        for *key, reason, count in voided:
            row(*key).voided[reason or "unknown"] += int(count)
        in_period = and_(scans.c.scanned_at >= low, scans.c.scanned_at < high)
        checks, checked = conn.execute(select(func.count(), func.count(scans.c.epc.distinct())).where(
            in_period, scans.c.verdict != "unknown")).one()
        unknown = conn.execute(select(func.count()).where(in_period, scans.c.verdict == "unknown")).scalar_one()
        scanned = select(scans.c.epc).where(in_period, scans.c.verdict != "unknown").distinct().subquery()
        copies = conn.execute(
            select(scans.c.epc, func.count(), func.count(scans.c.client.distinct()))
            .where(scans.c.epc.in_(select(scanned.c.epc)))
            .group_by(scans.c.epc)
            .having((func.count() >= copy_threshold) | (func.count(scans.c.client.distinct()) >= copy_places))
            .order_by(func.count().desc(), scans.c.epc)).all()
    ordered = sorted(rows.values(), key=lambda r: (str(r.producer_name or r.producer), r.gtin, str(r.lot),
                                                   str(r.site), str(r.station)))
    return Report(start, end, offset, ordered, int(checks), int(checked), int(unknown),
                  [(epc, int(n), int(places)) for epc, n, places in copies], plan_per_year, plan_producers)


def text(report: Report) -> str:
    out = io.StringIO()
    w = out.write
    w(f"Báo cáo truy xuất nguồn gốc / Traceability report: {report.start} – {report.end} "
      f"({report.days} days, UTC{report.offset})\n\n")
    share = f"{report.activated / report.plan_for_period:.0%}" if report.plan_for_period else "-"
    w(f"Tem đã kích hoạt / stamps activated: {report.activated:,}\n")
    w(f"  plan: {report.plan_per_year:,} a year over {report.plan_producers} producers = "
      f"{report.plan_for_period:,} for these {report.days} days; activated {share} of it\n")
    producers_active = len({r.producer or r.gtin for r in report.rows if r.activated})
    w(f"  producers with activations: {producers_active} of {report.plan_producers}\n")
    voided = report.voided
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in voided.most_common()) or "none"
    w(f"Tem đã hủy / stamps voided: {sum(voided.values()):,} ({reasons})\n\n")
    for title, index in (("Theo cơ sở sản xuất / per producer", 0), ("Theo sản phẩm / per product", 1),
                         ("Theo lô / per batch (GTIN / lot)", 2), ("Theo trạm / per station (site / line)", 3)):
        w(f"{title}\n")
        for key, (act, void) in report.by(index).items():
            w(f"  {str(key):<60} activated {act:>9,}  voided {void:>7,}\n")
        w("\n")
    w(f"Lượt kiểm tra / consumer checks: {report.checks:,} of {report.stamps_checked:,} stamps; "
      f"codes not issued by the programme checked {report.unknown_checks:,} times\n")
    w(f"Nghi tem sao chép / suspected copied stamps: {len(report.suspected_copies):,}\n")
    for epc, count, places in report.suspected_copies[:20]:
        w(f"  {epc}  checked {count:,} times in {places:,} places\n")
    return out.getvalue()


CSV_COLUMNS = ["producer_id", "producer", "gtin", "product", "lot", "site", "station", "activated", "voided",
               "voided_by_reason"]


def write_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(["period_start", "period_end", *CSV_COLUMNS])
    for r in report.rows:
        writer.writerow([report.start, report.end, r.producer or "", r.producer_name or "", r.gtin,
                         r.product_name or "", r.lot or "", r.site or "", r.station or "", r.activated,
                         r.voided_total, json.dumps(dict(sorted(r.voided.items())), ensure_ascii=False)])
    writer.writerow([report.start, report.end, "", "", "", "", "", "", "total", report.activated,
                     sum(report.voided.values()), json.dumps(dict(sorted(report.voided.items())), ensure_ascii=False)])


def period_events(engine: Engine, report: Report) -> Iterator[dict[str, Any]]:
    low, high = _bounds(report.start, report.end, report.offset)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            select(events.c.payload).where(events.c.event_time >= low, events.c.event_time < high)
            .order_by(events.c.event_time, events.c.event_id))
        yield from result.scalars()


def write_epcis(engine: Engine, report: Report, path: Path) -> int:
    """The period's events as one EPCISDocument, written event by event (a year is 100,000s of them)."""
    frame = epcis.document([], dt.datetime.now(dt.timezone.utc))
    head = json.dumps(frame, ensure_ascii=False)
    cut = head.rindex('"eventList": []') + len('"eventList": [')
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(head[:cut])
        for event in period_events(engine, report):
            out.write(("," if count else "") + json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            count += 1
        out.write(head[cut:])
    return count
