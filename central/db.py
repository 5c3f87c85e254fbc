"""The central database: tables (SQLAlchemy Core), engines, and Alembic migrations to the current schema.

PostgreSQL in production; SQLite for the demo only (the same statements, its own `INSERT … ON CONFLICT`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from central.errors import CentralError

metadata = MetaData()


class Instant(TypeDecorator[dt.datetime]):
    """A moment in time: `timestamptz` on PostgreSQL; on SQLite (the demo), UTC text read back as UTC, never as
    a wall clock of whatever zone the machine is in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no time zone")
        return value.astimezone(dt.timezone.utc) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value

Json = JSON().with_variant(JSONB(), "postgresql")
# BIGINT identities on PostgreSQL; SQLite makes only INTEGER PRIMARY KEY an alias of its rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")

# Every event stored once, by its eventID: the unique key makes a resend a no-op (INSERT … ON CONFLICT DO NOTHING).
events = Table(
    "events",
    metadata,
    Column("event_id", String(100), primary_key=True),
    Column("site", String(100), nullable=False),
    Column("station", String(100), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("action", String(10)),
    Column("biz_step", String(200)),
    Column("disposition", String(200)),
    Column("epc", Text),  # the first EPC (or the parentID): what /events?epc= finds the event by
    Column("event_time", Instant(), nullable=False),
    Column("event_time_zone_offset", String(6), nullable=False),
    Column("payload", Json, nullable=False),  # the event as the station sent it
    Column("received_at", Instant(), nullable=False),
)
Index("events_epc", events.c.epc)
Index("events_received_at", events.c.received_at)

# The current state of each stamp, folded from its events in any order (a void may arrive before its activation).
# A pre-printed roll's opaque code has no serial: its EPC is the code under the station's resolver
# (`https://{resolver}/tem/{code}`), `code` the code itself (what `/tem/{code}` finds, on any host: unique),
# its GTIN and roll from the event's `stn:gtin` and `stn:roll`.
stamps = Table(
    "stamps",
    metadata,
    Column("epc", Text, primary_key=True),
    Column("gtin", String(14), nullable=False),
    Column("serial", String(20)),
    Column("code", Text),
    Column("roll", String(100)),
    Column("lot", String(20)),
    Column("expiry", Date),
    Column("batch_id", String(100)),
    Column("activated_at", Instant()),
    Column("activated_offset", String(6)),
    Column("activation_event_id", String(100)),
    Column("activated_site", String(100)),
    Column("activated_station", String(100)),
    Column("read_point", Text),
    Column("voided_at", Instant()),
    Column("voided_offset", String(6)),
    Column("void_event_id", String(100)),
    Column("void_reason", Text),
    Column("voided_site", String(100)),
    Column("voided_station", String(100)),
    Column("updated_at", Instant(), nullable=False),
)
Index("stamps_gtin_lot", stamps.c.gtin, stamps.c.lot)
Index("stamps_activated_at", stamps.c.activated_at)
Index("stamps_code", stamps.c.code, unique=True)

# Documents refused by ingest, kept with the reason: never silently dropped.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("received_at", Instant(), nullable=False),
    Column("topic", Text, nullable=False),
    Column("site", String(100)),
    Column("station", String(100)),
    Column("reason", Text, nullable=False),
    Column("event_ids", Json, nullable=False),  # the eventIDs the document named (answered "rejected")
    Column("document", Text, nullable=False),  # the payload as received (invalid UTF-8 replaced)
)
Index("quarantine_received_at", quarantine.c.received_at)

# Master data: what the trace page shows beside the stamp.
producers = Table(
    "producers",
    metadata,
    Column("producer_id", String(100), primary_key=True),
    Column("name", Text, nullable=False),
    Column("address", Text),
    Column("phone", String(40)),
    Column("gln", String(13)),
    Column("updated_at", Instant(), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("gtin", String(14), primary_key=True),
    Column("name", Text, nullable=False),
    Column("producer_id", String(100), ForeignKey("producers.producer_id")),
    Column("image_url", Text),
    Column("shelf_life_days", Integer),
    Column("standards", Text),  # applied standards, e.g. "TCVN 5107:2018; OCOP 4 sao"
    Column("updated_at", Instant(), nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("gtin", String(14), primary_key=True),
    Column("lot", String(20), primary_key=True),
    Column("batch_id", String(100)),
    Column("production_date", Date),
    Column("expiry", Date),
    Column("standards", Text),
    Column("status", String(20), nullable=False, server_default="released"),  # released | on_hold | recalled
    Column("status_reason", Text),
    Column("status_changed_at", Instant()),
    Column("updated_at", Instant(), nullable=False),
)

diary_stages = Table(
    "diary_stages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("gtin", String(14), nullable=False),
    Column("lot", String(20), nullable=False),
    Column("position", Integer, nullable=False),
    Column("stage", String(40), nullable=False),  # raw_material | harvest | processing | packing | …
    Column("biz_step", String(200)),  # the CBV step where CBV has one
    Column("place", Text),
    Column("occurred_at", Instant()),
    Column("occurred_offset", String(6)),
    Column("detail", Text),
    UniqueConstraint("gtin", "lot", "position", name="diary_stages_batch_position"),
)

# Each consumer check of a stamp's page.
scans = Table(
    "scans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("epc", Text, nullable=False),
    Column("scanned_at", Instant(), nullable=False),
    Column("client", String(16)),  # a keyed hash of the client's network, never the address itself
    Column("verdict", String(20), nullable=False),
)
Index("scans_epc", scans.c.epc, scans.c.scanned_at)

# Each stamp's checks so far and the client networks they came from, kept by a trigger on `scans` (PostgreSQL;
# migration 0003): a check reads one row and a few keys, not every earlier check of a stamp checked thousands of
# times (a copied one). SQLite (the demo) counts `scans` itself.
scan_totals = Table(
    "scan_totals",
    metadata,
    Column("epc", Text, primary_key=True),
    Column("checks", BigInteger, nullable=False),
    Column("first_at", Instant(), nullable=False),
)
scan_networks = Table(
    "scan_networks",
    metadata,
    Column("epc", Text, primary_key=True),
    Column("client", String(16), primary_key=True),
)

_SCRIPT_LOCATION = "central:migrations"
# The key of the PostgreSQL advisory lock that serialises migrations of workers starting together.
_MIGRATION_LOCK = 0x63656E747261  # "centra"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for a `postgresql+psycopg://` URL (or `sqlite:///file` for a demo).

    `postgresql://` and `postgres://` (libpq's spelling) mean psycopg 3 too: psycopg2 is not a dependency.
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url[len(plain):]
    try:
        if url.startswith("sqlite"):
            if url in ("sqlite://", "sqlite:///:memory:"):
                raise CentralError("an in-memory SQLite database is not shared between connections: name a file")
            engine = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise CentralError(f"cannot open database {url!r}: {exc}") from exc


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPT_LOCATION)
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision`; safe when several workers start at once on one database."""
    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise CentralError(f"cannot migrate database {where}: {' '.join(str(exc).split())[:300]}") from exc


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
