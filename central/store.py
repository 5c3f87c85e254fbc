"""What ingest writes: a message turned into event rows, stamp changes and acks, and a batch stored in one transaction.

Every write is idempotent and commutative, so workers sharing a subscription never read before they write:
events go in with `INSERT … ON CONFLICT (event_id) DO NOTHING`, and only the events that were new change a stamp,
through `INSERT … ON CONFLICT (epc) DO UPDATE` that keeps the first value of each field (a void that overtook its
activation still ends voided). Rows are written in key order, so two transactions never wait on each other's locks
in opposite orders.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, func
from sqlalchemy.exc import DBAPIError
from sqlalchemy.dialects import postgresql, sqlite

from central.db import batches, diary_stages, events, producers, products, quarantine, stamps
from contracts import digital_link, epcis, masterdata
from contracts.errors import ContractError, InvalidDocument
from contracts.topics import StationTopic, parse_station_topic

EXT = epcis.EXTENSION_PREFIX
_LIMITS = {"biz_step": 200, "disposition": 200, "lot": 20, "batch_id": 100, "site": 100, "station": 100,
           "roll": 100}


@dataclass
class Prepared:
    """One message, ready to store: its events (or the reason it is refused) and the acks owed after the commit."""

    topic: str
    acks_topic: str | None
    payload: bytes = b""  # as received: kept in quarantine if the database refuses it later
    where: StationTopic | None = None
    event_rows: list[dict[str, Any]] = field(default_factory=list)
    stamp_changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # event_id -> stamp rows
    payload_json: dict[str, str] = field(default_factory=dict)  # event_id -> the event as JSON text
    rejection: dict[str, Any] | None = None  # the quarantine row
    master: masterdata.MasterData | None = None  # products, producers, batches, diary stages, batch statuses
    acks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return self.rejection is not None


def ack_payloads(prepared: Prepared) -> list[bytes]:
    """The acks to publish on `prepared.acks_topic` once the batch holding it is committed."""
    return [json.dumps(ack, ensure_ascii=False).encode() for ack in prepared.acks]


def reject(prepared: Prepared, reason: str, event_ids: Sequence[str], now: dt.datetime) -> Prepared:
    """Turn a message into a refusal: a quarantine row, and `rejected` answered for each eventID it named."""
    where, payload = prepared.where, prepared.payload
    prepared.event_rows, prepared.stamp_changes, prepared.master, prepared.payload_json = [], {}, None, {}
    prepared.rejection = {
        "received_at": now,
        "topic": _clean(prepared.topic),
        "site": where.site if where else None,
        "station": where.station if where else None,
        "reason": _clean(reason),
        "event_ids": [_clean(i) for i in event_ids],
        "document": _clean(payload.decode("utf-8", errors="replace")),
    }
    ids: Iterable[str | None] = event_ids or [None]
    prepared.acks = [{"eventID": i, "status": "rejected", "reason": reason} for i in ids]
    return prepared


def prepare(topic: str, payload: bytes, prefix: str, now: dt.datetime) -> Prepared:
    """Parse and validate one message from an events topic; never raises for bad input (it becomes a rejection)."""
    try:
        where: StationTopic | None = parse_station_topic(topic, prefix)
    except ContractError as exc:
        return reject(Prepared(topic, None, payload), str(exc), [], now)
    assert where is not None
    prepared = Prepared(topic, where.sibling("acks").topic, payload, where)
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        return reject(prepared, f"the payload is not JSON: {exc}", [], now)
    ids = epcis.event_ids_of(document)
    try:
        for name in ("site", "station"):
            _check_limit(name, getattr(where, name))
        valid = epcis.validate_document(document)
        for event in valid:
            row, changes, body = _event_row(event, where, now)
            prepared.event_rows.append(row)
            prepared.payload_json[row["event_id"]] = body
            if changes:
                prepared.stamp_changes[row["event_id"]] = changes
        prepared.master = masterdata.read(document, valid) or None
    except ContractError as exc:
        return reject(prepared, str(exc), ids, now)
    prepared.acks = [{"eventID": row["event_id"], "status": "stored"} for row in prepared.event_rows]
    return prepared


def _check_limit(name: str, value: object) -> None:
    if isinstance(value, str):
        limit = _LIMITS.get(name)
        if limit is not None and len(value) > limit:
            raise InvalidDocument(f"{name} {value[:40]!r}… is longer than {limit} characters")


def _clean(text: str) -> str:
    """Text PostgreSQL can store: it refuses NUL characters."""
    return text.replace("\x00", "\ufffd")


def _event_row(event: Mapping[str, Any], where: StationTopic,
               now: dt.datetime) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    event_id = event["eventID"]
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in body:
        raise InvalidDocument(f"event {event_id}: a NUL character (\\u0000), which the database cannot keep")
    epcs = event.get("epcList") or event.get("childEPCs") or []
    first_epc = event.get("parentID") or (epcs[0] if epcs else None)
    row = {
        "event_id": event_id,
        "site": where.site,
        "station": where.station,
        "event_type": event["type"],
        "action": event.get("action"),
        "biz_step": event.get("bizStep"),
        "disposition": event.get("disposition"),
        "epc": first_epc,
        "event_time": epcis.parse_time(event["eventTime"]),
        "event_time_zone_offset": event["eventTimeZoneOffset"],
        "payload": dict(event),
        "received_at": now,
    }
    for name in ("biz_step", "disposition"):
        _check_limit(name, row[name])
    return row, _stamp_changes(event, row, where, now), body


def _stamp_changes(event: Mapping[str, Any], row: Mapping[str, Any], where: StationTopic,
                   now: dt.datetime) -> list[dict[str, Any]]:
    """The stamp rows an activation or a void sets (one per EPC of ours); nothing for any other event."""
    if event["type"] != "ObjectEvent":
        return []
    step = (event.get("action"), event.get("bizStep"))
    if step not in (epcis.ACTIVATION[:2], epcis.VOID[:2]):
        return []
    changes = []
    epc_list = event.get("epcList") or []
    for epc in epc_list:
        try:
            link = digital_link.parse_epc(epc)
        except ContractError:
            base = _opaque_stamp(event, epc, row, len(epc_list), now)
            if base is None:
                continue  # an EPC of no stamp of ours: stored as an event, no stamp state
        else:
            base = {"epc": epc, "gtin": link.gtin, "serial": link.serial, "updated_at": now}
        if step == epcis.ACTIVATION[:2]:
            ilmd = event.get("ilmd") if isinstance(event.get("ilmd"), Mapping) else {}
            lot, expiry, batch_id = ilmd.get("cbvmda:lotNumber"), ilmd.get("cbvmda:itemExpirationDate"), event.get(f"{EXT}:batchId")
            _check_limit("lot", lot)
            _check_limit("batch_id", batch_id)
            try:
                expiry_date = dt.date.fromisoformat(expiry) if isinstance(expiry, str) else None
            except ValueError:
                raise InvalidDocument(f"event {row['event_id']}: ilmd.cbvmda:itemExpirationDate {expiry!r} is not a date") from None
            base.update(
                lot=lot if isinstance(lot, str) else None,
                expiry=expiry_date,
                batch_id=str(batch_id) if batch_id is not None else None,
                activated_at=row["event_time"],
                activated_offset=row["event_time_zone_offset"],
                activation_event_id=row["event_id"],
                activated_site=where.site,
                activated_station=where.station,
                read_point=(event.get("readPoint") or {}).get("id"),
            )
        else:
            reason = event.get(f"{EXT}:voidReason")
            base.update(
                voided_at=row["event_time"],
                voided_offset=row["event_time_zone_offset"],
                void_event_id=row["event_id"],
                void_reason=str(reason) if reason is not None else None,
                voided_site=where.site,
                voided_station=where.station,
            )
        changes.append(base)
    return changes


def _opaque_stamp(event: Mapping[str, Any], epc: str, row: Mapping[str, Any], epcs: int,
                 now: dt.datetime) -> dict[str, Any] | None:
    """A pre-printed roll's opaque code (station/line/stamp_events.py): the EPC is the code under the station's resolver
    (`preprinted.opaque_epc`, `https://{resolver}/tem/{code}` by default), the code itself in `stn:stampCode`,
    the product in `stn:gtin`, the roll in `stn:roll`. None for an event that is not one (no `stn:stampCode`)."""
    code = event.get(f"{EXT}:stampCode")
    if code is None or epcs != 1:
        return None
    where = f"event {row['event_id']}"
    try:
        digital_link.check_opaque_code(code)
        gtin = digital_link.gtin_14(event.get(f"{EXT}:gtin"))
    except ContractError as exc:
        raise InvalidDocument(f"{where}: a pre-printed stamp's {EXT}:stampCode / {EXT}:gtin: {exc}") from None
    if not isinstance(epc, str) or not epc.endswith(quote(code, safe="")):
        raise InvalidDocument(f"{where}: the EPC {str(epc)[:200]!r} is not the code {code[:200]!r} ({EXT}:stampCode)")
    roll = event.get(f"{EXT}:roll")
    roll = str(roll) if roll is not None else None
    _check_limit("roll", roll)
    return {"epc": epc, "gtin": gtin, "serial": None, "code": code, "roll": roll, "updated_at": now}


STAMP_FIELDS = [c.name for c in stamps.columns if c.name not in ("epc", "gtin", "serial", "updated_at")]


def _merge(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per EPC (one statement may not change a row twice), the first value of each field kept."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        into = merged.setdefault(row["epc"], {"epc": row["epc"], "gtin": row["gtin"], "serial": row["serial"],
                                              "updated_at": row["updated_at"], **{f: None for f in STAMP_FIELDS}})
        for name in STAMP_FIELDS:
            if into[name] is None and row.get(name) is not None:
                into[name] = row[name]
    return [merged[epc] for epc in sorted(merged)]


def _insert(conn: Connection):  # type: ignore[no-untyped-def]
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def store(engine: Engine, batch: Sequence[Prepared], *, hold_s: float = 0.0) -> set[str]:
    """Write the batch in one transaction: events once each, the stamps the new ones change, the quarantine rows;
    returns the eventIDs that were new (the others were duplicates). `hold_s` keeps the transaction open that long
    before its commit (a slow database, for tests)."""
    with engine.begin() as conn:
        new = store_in(conn, batch)
        if hold_s:
            time.sleep(hold_s)
    return new


# PostgreSQL: each batch is one statement per table, its rows as arrays (unnest): one fixed SQL text the server
# prepares once, a handful of parameters, instead of a multi-row VALUES of thousands of parameters that the driver
# parses anew for every batch size (storing 10,000 events in batches of 500 here: about 60 µs an event
# against 245 µs through SQLAlchemy's multi-row VALUES).
_EVENT_COLUMNS = [("event_id", "text"), ("site", "text"), ("station", "text"), ("event_type", "text"),
                  ("action", "text"), ("biz_step", "text"), ("disposition", "text"), ("epc", "text"),
                  ("event_time", "timestamptz"), ("event_time_zone_offset", "text"), ("payload", "text")]
_INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(c for c, _ in _EVENT_COLUMNS)}, received_at) "
    f"SELECT {', '.join(c if c != 'payload' else 'payload::jsonb' for c, _ in _EVENT_COLUMNS)}, %s::timestamptz "
    f"FROM unnest({', '.join(f'%s::{t}[]' for _, t in _EVENT_COLUMNS)}) "
    f"AS u({', '.join(c for c, _ in _EVENT_COLUMNS)}) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
_STAMP_TYPES = {"expiry": "date", "activated_at": "timestamptz", "voided_at": "timestamptz",
                "updated_at": "timestamptz"}
_STAMP_COLUMNS = ["epc", "gtin", "serial", *STAMP_FIELDS, "updated_at"]
_UPSERT_STAMPS = (
    f"INSERT INTO stamps ({', '.join(_STAMP_COLUMNS)}) "
    "SELECT * FROM unnest(" + ", ".join(f"%s::{_STAMP_TYPES.get(c, 'text')}[]" for c in _STAMP_COLUMNS) + ") "
    "ON CONFLICT (epc) DO UPDATE SET "
    + ", ".join(f"{c} = COALESCE(stamps.{c}, EXCLUDED.{c})" for c in STAMP_FIELDS)
    + ", updated_at = EXCLUDED.updated_at"
)


def _execute_binary(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """psycopg's binary protocol on the transaction's own connection: arrays of text go as they are, where the
    text protocol escapes every element with a regular expression (most of the batch's cost, measured)."""
    import psycopg

    try:
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(sql.replace("%s", "%b"), params, binary=True)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as exc:
        # As SQLAlchemy would have raised it (IntegrityError for a refused row, OperationalError for a database
        # gone away), so ingest tells a refusal (quarantined) from an outage (retried) on this path too.
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc


def _columns(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[list[Any]]:
    return [[row[name] for row in rows] for name in names]


def store_in(conn: Connection, batch: Sequence[Prepared]) -> set[str]:
    """store() on a connection inside a transaction; returns the eventIDs that were new."""
    insert = _insert(conn)
    postgres = conn.dialect.name == "postgresql"
    rows = {row["event_id"]: row for p in batch for row in p.event_rows}
    texts = {event_id: text for p in batch for event_id, text in p.payload_json.items()}
    new: set[str] = set()
    if rows:
        ordered = [rows[k] for k in sorted(rows)]
        # RETURNING, not rowcount, tells which were new (executemany's rowcount is not reliable across drivers).
        if postgres:
            arrays = _columns(ordered, [c for c, _ in _EVENT_COLUMNS[:-1]]) + [[texts[r["event_id"]] for r in ordered]]
            new = {r[0] for r in _execute_binary(conn, _INSERT_EVENTS, (ordered[0]["received_at"], *arrays))}
        else:
            statement = insert(events).on_conflict_do_nothing(index_elements=["event_id"]).returning(events.c.event_id)
            new = set(conn.execute(statement, ordered).scalars())
    changes = [c for p in batch for event_id, cs in p.stamp_changes.items() if event_id in new for c in cs]
    if changes and postgres:
        _execute_binary(conn, _UPSERT_STAMPS, tuple(_columns(_merge(changes), _STAMP_COLUMNS)))
    elif changes:
        statement = insert(stamps)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["epc"],
            set_={name: func.coalesce(stamps.c[name], excluded[name]) for name in STAMP_FIELDS}
            | {"updated_at": excluded.updated_at},
        )
        conn.execute(statement, _merge(changes))
    for item in batch:
        if item.master is not None:
            _store_master(conn, item.master.only(new), now=item.event_rows[0]["received_at"] if item.event_rows else None)
    rejections = [p.rejection for p in batch if p.rejection is not None]
    if rejections:
        conn.execute(quarantine.insert(), rejections)
    return new


def _upsert(conn: Connection, table: Any, rows: Iterable[dict[str, Any]], keys: list[str],
            where: Any = None) -> None:
    """INSERT … ON CONFLICT DO UPDATE, one row per key (the last one given), in key order."""
    unique = {tuple(row[k] for k in keys): row for row in rows}
    if not unique:
        return
    statement = _insert(conn)(table)
    first = next(iter(unique.values()))
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={c: statement.excluded[c] for c in first if c not in keys}, where=where)
    conn.execute(statement, [unique[k] for k in sorted(unique)])


def _store_master(conn: Connection, data: masterdata.MasterData, now: dt.datetime | None) -> None:
    """The master data of events stored for the first time (and of the header), newest status kept."""
    now = now or dt.datetime.now(dt.timezone.utc)
    _upsert(conn, producers, ({"producer_id": p.id, "name": p.name, "address": p.address, "phone": p.phone,
                               "updated_at": now} for p in data.producers), ["producer_id"])
    _upsert(conn, products, ({"gtin": p.gtin, "name": p.name, "producer_id": p.producer_id, "image_url": p.image_url,
                              "shelf_life_days": p.shelf_life_days, "standards": p.standards, "updated_at": now}
                             for p in data.products), ["gtin"])
    _upsert(conn, batches, ({"gtin": b.gtin, "lot": b.lot, "batch_id": b.batch_id, "production_date": b.production_date,
                             "expiry": b.expiry, "standards": b.standards, "updated_at": now}
                            for b in data.batches), ["gtin", "lot"])
    _upsert(conn, diary_stages, ({"gtin": s.gtin, "lot": s.lot, "position": s.position, "stage": s.stage,
                                  "biz_step": s.biz_step, "place": s.place, "occurred_at": s.at,
                                  "occurred_offset": s.offset, "detail": s.detail} for s in data.stages),
            ["gtin", "lot", "position"])
    if data.statuses:
        latest: dict[tuple[str, str], masterdata.BatchStatus] = {}
        for status in data.statuses:
            key = (status.gtin, status.lot)
            if key not in latest or latest[key].at < status.at:
                latest[key] = status
        statement = _insert(conn)(batches)
        excluded = statement.excluded
        # Commutative: whatever order the workers store them in, the status with the latest event time stays.
        statement = statement.on_conflict_do_update(
            index_elements=["gtin", "lot"],
            set_={"status": excluded.status, "status_reason": excluded.status_reason,
                  "status_changed_at": excluded.status_changed_at, "updated_at": excluded.updated_at},
            where=(batches.c.status_changed_at.is_(None)) | (batches.c.status_changed_at < excluded.status_changed_at),
        )
        conn.execute(statement, [{"gtin": s.gtin, "lot": s.lot, "status": s.status, "status_reason": s.reason,
                                  "status_changed_at": s.at, "updated_at": now}
                                 for _, s in sorted(latest.items())])
