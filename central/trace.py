"""What the trace page of one stamp says: its data joined from the tables, the verdict, and the scan count.

Every field comes from what the stations (or the province's master data) sent; a field the data lacks is None
and the page marks it missing, never fills it in.

About 490 lines in one module: a stamp's look-up, its verdict and the scan counting decide one page together.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, select, text

from central.db import batches, diary_stages, events, producers, products, scans, stamps
from contracts import epcis
from contracts.digital_link import OpaqueLink, StampLink

log = logging.getLogger(__name__)

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
    link: StampLink | OpaqueLink
    verdict: Verdict
    stamp: dict[str, Any] | None = None
    product: dict[str, Any] | None = None
    producer: dict[str, Any] | None = None
    batch: dict[str, Any] | None = None
    stages: list[Stage] = field(default_factory=list)
    scans: Scans | None = None
    mismatch: str | None = None  # which printed field disagrees with the stamp ("lot", "expiry")
    context: Context | None = None  # the batch context it was judged with

    @property
    def epc(self) -> str:
        """The stamp's EPC as the station sent it (for an opaque code, under the station's resolver)."""
        return self.stamp["epc"] if self.stamp is not None else self.link.epc

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


@functools.lru_cache(maxsize=8192)  # a phone checks a few stamps; the hash and the address parse are 20 µs
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


_CONTEXT_PARTS = (("product", products), ("producer", producers), ("batch", batches))
_CONTEXT_JOINED = products.outerjoin(producers, producers.c.producer_id == products.c.producer_id)
_KEYS = {"product": "gtin", "producer": "producer_id", "batch": "lot"}


@dataclass(frozen=True)
class Context:
    """What a stamp shares with every other stamp of its batch: product, producer, batch, diary."""

    product: dict[str, Any] | None
    producer: dict[str, Any] | None
    batch: dict[str, Any] | None
    stages: list[Stage]
    # What the web process rendered of it (the page's batch part, per language …), kept and dropped with it.
    pages: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


class ContextCache:
    """Batch contexts kept `ttl_s` seconds per process: a page then reads one row (the stamp) and writes one (the
    check) instead of four reads. A stamp's own state (a void) is never cached; a recall shows within `ttl_s`."""

    def __init__(self, ttl_s: float = 5.0, size: int = 10_000, clock: Any = time.monotonic) -> None:
        self.ttl_s, self.size, self._clock = ttl_s, size, clock
        self._items: dict[tuple[str, str | None], tuple[float, Context]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str | None]) -> Context | None:
        with self._lock:
            found = self._items.get(key)
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    def put(self, key: tuple[str, str | None], context: Context) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()  # a whole province's batches fit many times over; this is only a guard
            self._items[key] = (self._clock() + self.ttl_s, context)


def _context(conn: Connection, gtin: str, lot: str | None) -> Context:
    columns = [c.label(f"{name}__{c.name}") for name, table in _CONTEXT_PARTS[:2] for c in table.columns]
    row = conn.execute(select(*columns).select_from(_CONTEXT_JOINED).where(products.c.gtin == gtin)).mappings().first()
    parts: dict[str, dict[str, Any]] = {"product": {}, "producer": {}}
    for key, value in (row or {}).items():
        name, _, column = key.partition("__")
        parts[name][column] = value
    product = parts["product"] if parts["product"].get("gtin") is not None else None
    producer = parts["producer"] if parts["producer"].get("producer_id") is not None else None
    batch, stages = None, []
    if lot is not None:
        batch = _row(conn, select(batches).where(batches.c.gtin == gtin, batches.c.lot == lot))
        rows = conn.execute(
            select(diary_stages).where(diary_stages.c.gtin == gtin, diary_stages.c.lot == lot)
            .order_by(diary_stages.c.position)
        ).mappings()
        stages = [Stage(r["stage"], r["biz_step"], r["place"], _local(r["occurred_at"], r["occurred_offset"]),
                        r["detail"]) for r in rows]
    return Context(product, producer, batch, stages)


def lookup(conn: Connection, link: StampLink | OpaqueLink, cache: ContextCache | None = None) -> Trace:
    """The stamp, its product, producer, batch and diary, and the verdict (no scan recorded). A Digital Link finds
    the stamp by its EPC, an opaque code by the code (whatever resolver host the station put in its EPC)."""
    key = stamps.c.code == link.code if isinstance(link, OpaqueLink) else stamps.c.epc == link.epc
    stamp = _row(conn, select(stamps).where(key))
    if not _issued(stamp):
        return Trace(link, "unknown")
    assert stamp is not None
    batch_key = (stamp["gtin"], stamp["lot"])
    context = cache.get(batch_key) if cache is not None else None
    if context is None:
        context = _context(conn, *batch_key)
        if cache is not None:
            cache.put(batch_key, context)
    return judge(link, stamp, context)


def _issued(stamp: dict[str, Any] | None) -> bool:
    return stamp is not None and (stamp["activated_at"] is not None or stamp["voided_at"] is not None)


def judge(link: StampLink | OpaqueLink, stamp: dict[str, Any], context: Context) -> Trace:
    """The verdict on an issued stamp, given its batch's context."""
    trace = Trace(link, "genuine", stamp=stamp, product=context.product, producer=context.producer,
                  batch=context.batch, stages=list(context.stages), context=context)
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
        return moment.astimezone(epcis.timezone_of(offset))   # the event's offset, schema-checked when stored
    return moment


def activated_local(trace: Trace) -> dt.datetime | None:
    stamp = trace.stamp or {}
    return _local(stamp.get("activated_at"), stamp.get("activated_offset"))


def voided_local(trace: Trace) -> dt.datetime | None:
    stamp = trace.stamp or {}
    return _local(stamp.get("voided_at"), stamp.get("voided_offset"))


# One statement for the check and its count on PostgreSQL; the new row is not in the SELECT's snapshot, so it is
# added to it by the UNION.
_CHECK_AND_COUNT = text(
    "WITH new AS (INSERT INTO scans (epc, scanned_at, client, verdict) VALUES (:epc, :at, :client, :verdict) "
    "RETURNING scanned_at, client) "
    "SELECT count(*), min(scanned_at), count(DISTINCT client) FROM ("
    "SELECT scanned_at, client FROM scans WHERE epc = :epc UNION ALL SELECT scanned_at, client FROM new) AS s"
)


def check(engine: Engine, link: StampLink | OpaqueLink, *, client: str | None, now: dt.datetime, record: bool = True,
          cache: ContextCache | None = None) -> Trace:
    """lookup() and, for a consumer's check, the scan recorded and counted in the same transaction."""
    with engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if record and postgres:
            # A consumer's check is a count, not a record anyone relies on: its commit need not wait for the
            # disk (a crash loses at most the last few checks, never corrupts; PostgreSQL's own guarantee).
            conn.execute(text("SET LOCAL synchronous_commit = off"))
        trace = lookup(conn, link, cache)
        values = {"epc": trace.epc, "at": now, "client": client, "verdict": trace.verdict}
        if record and postgres and trace.verdict != "unknown":
            count, first, places = conn.execute(_CHECK_AND_COUNT, values).one()
            trace.scans = Scans(int(count), first, int(places))
            return trace
        if record:
            conn.execute(scans.insert().values(epc=trace.epc, scanned_at=now, client=client, verdict=trace.verdict))
        if trace.verdict != "unknown":
            count, first, places = conn.execute(
                select(func.count(), func.min(scans.c.scanned_at), func.count(scans.c.client.distinct()))
                .where(scans.c.epc == trace.epc)
            ).one()
            trace.scans = Scans(int(count), first, int(places))
    return trace




class PostgresChecks:
    """The trace page's database work on PostgreSQL, straight on psycopg's asyncio connections: no thread hop, no
    SQLAlchemy statement machinery, no transaction (autocommit), each statement prepared on the server at its
    first use, no pool ping (a broken connection is dropped and the request retried once on a new one).

    A check is one round trip: the stamp and its scan counts in one statement, read from `scan_totals` and
    `scan_networks` (kept by a trigger on `scans`), so its cost does not grow with the checks a stamp had. The
    scan itself is written with others in one statement every `flush_s` (or at `flush_rows` pending),
    `synchronous_commit = off`; until then this process counts it from memory, so a shopper's count includes
    every check this process answered. Another
    web process's checks show once written (within `flush_s`); a crash loses at most the last `flush_s` of checks
    (a count, not a record anyone relies on); a stop writes them. A flush and a count never overlap (a check
    waits for a flush in progress, a flush for the counts in progress), so no check is counted twice. The batch
    context still comes from `ContextCache`, read through SQLAlchemy on a miss (once per batch every few s)."""

    def __init__(self, engine: Engine, size: int = 10, *, flush_s: float = 0.1, flush_rows: int = 500,
                 max_pending: int = 100_000) -> None:
        _, kwargs = engine.dialect.create_connect_args(engine.url)
        kwargs.pop("context", None)  # SQLAlchemy's adapters: plain psycopg types are what this reads
        self._kwargs = kwargs
        self._engine = engine
        self._size = size
        self.flush_s, self.flush_rows, self.max_pending = flush_s, flush_rows, max_pending
        self._idle: list[Any] = []
        self._loop: Any = None
        self._slots: Any = None
        self._gate: Any = None
        self._counting = 0           # checks between their count and their scan put in `_pending`
        self._flushing = False       # a flush in progress or waiting for the counts in progress
        self._pending: list[tuple[str, str, dt.datetime, str | None, str]] = []  # (key, epc, at, client, verdict)
        self._pending_by_key: dict[str, list[tuple[dt.datetime, str | None]]] = {}
        self._flush_task: Any = None

    def _reset_for(self, loop: Any) -> None:
        import asyncio

        if self._loop is not loop:  # a new event loop (a test client's): connections of the old one are unusable
            for conn in self._idle:
                conn.pgconn.finish()
            self._idle, self._loop = [], loop
            self._slots, self._gate = asyncio.Semaphore(self._size), asyncio.Condition()
            self._flush_task, self._counting, self._flushing = None, 0, False

    async def _connect(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(**self._kwargs, autocommit=True, prepare_threshold=0)
        await conn.execute("SET synchronous_commit = off")
        return conn

    async def _run(self, work: Any) -> Any:
        import asyncio

        import psycopg

        self._reset_for(asyncio.get_running_loop())
        async with self._slots:
            for attempt in (1, 2):
                pooled = bool(self._idle)
                conn = self._idle.pop() if pooled else await self._connect()
                try:
                    result = await work(conn)
                except psycopg.OperationalError:
                    await conn.close()
                    if pooled and attempt == 1:
                        continue  # a connection the server dropped while it idled (a restart): once more, anew
                    raise
                except BaseException:
                    await conn.close()
                    raise
                if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and len(self._idle) < self._size:
                    self._idle.append(conn)
                else:
                    await conn.close()
                return result
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Write the checks still pending, and close the connections."""
        if self._loop is not None and self._pending:
            try:
                await self.flush()
            except Exception as exc:  # a database that is away at the stop: say what is lost
                log.error("%d consumer checks not written at the stop: %s", len(self._pending), exc)
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    def _load_context(self, key: tuple[str, str | None]) -> Context:
        with self._engine.connect() as conn:
            return _context(conn, *key)

    async def _judged(self, stamp: dict[str, Any] | None, link: StampLink | OpaqueLink,
                      cache: ContextCache | None) -> Trace:
        from starlette.concurrency import run_in_threadpool

        if not _issued(stamp):
            return Trace(link, "unknown")
        assert stamp is not None
        key = (stamp["gtin"], stamp["lot"])
        context = cache.get(key) if cache is not None else None
        if context is None:
            context = await run_in_threadpool(self._load_context, key)
            if cache is not None:
                cache.put(key, context)
        return judge(link, stamp, context)

    async def _stamp(self, conn: Any, link: StampLink | OpaqueLink,
                     clients: list[str]) -> tuple[dict[str, Any] | None, tuple[int, dt.datetime | None, int]]:
        """The stamp and its scans written so far: count, first, distinct networks among them and `clients`."""
        from psycopg.rows import dict_row

        opaque = isinstance(link, OpaqueLink)
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_STAMP_AND_SCANS_BY_CODE if opaque else _STAMP_AND_SCANS_BY_EPC,
                                 {"key": link.code if opaque else link.epc, "clients": clients})
            row = await cursor.fetchone()
        if row is None:
            return None, (0, None, 0)
        counts = (int(row.pop("scans_n")), row.pop("scans_first"), int(row.pop("scans_places")))
        return row, counts

    async def lookup(self, link: StampLink | OpaqueLink, cache: ContextCache | None = None) -> Trace:
        async def work(conn: Any) -> Trace:
            stamp, _ = await self._stamp(conn, link, [])
            return await self._judged(stamp, link, cache)

        return await self._run(work)

    async def check(self, link: StampLink | OpaqueLink, *, client: str | None, now: dt.datetime,
                    record: bool = True, cache: ContextCache | None = None) -> Trace:
        """lookup() and, for a consumer's check (`record`), the scan counted and queued to be written."""
        key = f"code:{link.code}" if isinstance(link, OpaqueLink) else link.epc

        async def work(conn: Any) -> Trace:
            mine = self._pending_by_key.get(key, [])
            clients = [c for _, c in mine if c is not None] + ([client] if record and client else [])
            stamp, (count, first, places) = await self._stamp(conn, link, clients)
            trace = await self._judged(stamp, link, cache)
            if trace.verdict != "unknown":
                at = [a for a, _ in mine] + ([now] if record else [])
                first = min([first, *at]) if first is not None else (min(at) if at else None)
                trace.scans = Scans(count + len(at), first, places)
            if record:
                self._queue(key, trace.epc, now, client, trace.verdict)
            return trace

        # Into the gate before taking a connection: a flush waiting for the counts in progress must find one free.
        import asyncio

        self._reset_for(asyncio.get_running_loop())
        async with self._gate:
            await self._gate.wait_for(lambda: not self._flushing)
            self._counting += 1
        try:
            return await self._run(work)
        finally:
            async with self._gate:
                self._counting -= 1
                self._gate.notify_all()

    def _queue(self, key: str, epc: str, at: dt.datetime, client: str | None, verdict: str) -> None:
        import asyncio

        if len(self._pending) >= self.max_pending:
            log.error("%d consumer checks not written (the database away?): the oldest dropped", len(self._pending))
            dropped = self._pending.pop(0)
            self._pending_by_key[dropped[0]].pop(0)
        self._pending.append((key, epc, at, client, verdict))
        self._pending_by_key.setdefault(key, []).append((at, client))
        if self._flush_task is None or self._flush_task.done():
            delay = 0.0 if len(self._pending) >= self.flush_rows else self.flush_s
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later(delay))

    async def _flush_later(self, delay: float) -> None:
        import asyncio

        await asyncio.sleep(delay)
        try:
            await self.flush()
        except Exception as exc:  # kept pending and counted; the next check schedules the next try
            log.warning("consumer checks not written yet (%d pending): %s", len(self._pending),
                        " ".join(str(exc).split())[:300])

    async def flush(self) -> None:
        """Write the pending checks in one statement, none counted twice meanwhile."""
        async with self._gate:
            await self._gate.wait_for(lambda: not self._flushing)
            self._flushing = True
            await self._gate.wait_for(lambda: self._counting == 0)
        try:
            rows = self._pending
            if rows:
                async def write(conn: Any) -> None:
                    await conn.execute(_WRITE_SCANS, ([r[1] for r in rows], [r[2] for r in rows],
                                                      [r[3] for r in rows], [r[4] for r in rows]))

                await self._run(write)
                self._pending, self._pending_by_key = [], {}
        finally:
            async with self._gate:
                self._flushing = False
                self._gate.notify_all()


_STAMP_AND_SCANS = (
    f"SELECT {', '.join('s.' + c.name for c in stamps.columns)}, coalesce(t.checks, 0) AS scans_n, "
    "t.first_at AS scans_first, (SELECT count(DISTINCT u.client) FROM ("
    "SELECT client FROM scan_networks WHERE scan_networks.epc = s.epc "
    "UNION ALL SELECT unnest(%s::text[])) AS u(client)) AS scans_places "
    "FROM stamps s LEFT JOIN scan_totals t ON t.epc = s.epc "
)
_STAMP_AND_SCANS_BY_EPC = _STAMP_AND_SCANS.replace("%s::text[]", "%(clients)s::text[]") + "WHERE s.epc = %(key)s"
_STAMP_AND_SCANS_BY_CODE = _STAMP_AND_SCANS.replace("%s::text[]", "%(clients)s::text[]") + "WHERE s.code = %(key)s"
_WRITE_SCANS = ("INSERT INTO scans (epc, scanned_at, client, verdict) "
                "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[])")


def epc_of_code(engine: Engine, code: str) -> str | None:
    """The EPC a station sent for an opaque pre-printed code, if any did."""
    with engine.connect() as conn:
        return conn.execute(select(stamps.c.epc).where(stamps.c.code == code)).scalar()


def events_of(engine: Engine, epc: str) -> list[dict[str, Any]]:
    """The stamp's events as the stations sent them, in the order they happened."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.payload).where(events.c.epc == epc).order_by(events.c.event_time, events.c.event_id)
        ).scalars()
        return list(rows)
