"""SQLAlchemy tables of the station's local database (SQLite): products, batches, stamps, scans and the outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ProductRow(Base):
    __tablename__ = "products"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    producer: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(200), default="")
    shelf_life_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # What the trace page shows (migration 0006): from the product list, published when a batch opens.
    producer_id: Mapped[str] = mapped_column(String(100), default="")
    producer_address: Mapped[str] = mapped_column(Text, default="")
    producer_phone: Mapped[str] = mapped_column(String(40), default="")
    image_url: Mapped[str] = mapped_column(Text, default="")
    standards: Mapped[str] = mapped_column(Text, default="")
    diary: Mapped[list] = mapped_column(JSON, default=list)


class BatchRow(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("gtin", "lot", name="uq_batches_gtin_lot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin"))
    lot: Mapped[str] = mapped_column(String(20))
    production_date: Mapped[dt.date | None] = mapped_column(nullable=True)
    expiry_date: Mapped[dt.date | None] = mapped_column(nullable=True)
    origin: Mapped[str] = mapped_column(String(400), default="")
    stages: Mapped[list] = mapped_column(JSON, default=list)
    planned_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # A recall or a quality hold (migration 0003): nothing more is activated into a locked batch.
    locked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    lock_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class StampRow(Base):
    __tablename__ = "stamps"
    # Serials are unique per GTIN for ever: the database, not the generator, is what guarantees it.
    __table_args__ = (
        UniqueConstraint("gtin", "serial", name="uq_stamps_gtin_serial"),
        CheckConstraint(  # 'unused' since migration 0005
            "state IN ('allocated','sent_to_printer','verified','activated','voided','unused')", name="ck_stamps_state"
        ),
        Index("ix_stamps_batch_state", "batch_id", "state"),
        Index("ix_stamps_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14))
    serial: Mapped[str] = mapped_column(String(20))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    state: Mapped[str] = mapped_column(String(20))
    uri: Mapped[str] = mapped_column(String(300))
    read_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    void_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    void_detail: Mapped[str] = mapped_column(Text, default="")
    allocated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    printed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    voided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # Indicative print quality of the verifying read (not ISO/IEC 15415): grade A-F and the figures behind it.
    quality_grade: Mapped[str | None] = mapped_column(String(1), nullable=True)
    quality: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ScanRow(Base):
    """Every line a verification device sent, used or refused: the record of what the scanner saw."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    raw_hex: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    stamp_id: Mapped[int | None] = mapped_column(ForeignKey("stamps.id"), nullable=True)


class OutboxRow(Base):
    """One EPCIS event waiting for (or done with) delivery; written in the same transaction as its stamp."""

    __tablename__ = "outbox"
    __table_args__ = (
        # 'rejected' since migration 0006: the central server refused the event (kept, with its reason, never resent)
        CheckConstraint("state IN ('pending','sent','confirmed','rejected')", name="ck_outbox_state"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(60), unique=True)
    stamp_id: Mapped[int | None] = mapped_column(ForeignKey("stamps.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    event_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # or rejected: the answer's
    last_error: Mapped[str] = mapped_column(Text, default="")   # a rejected row: the server's reason


class AuditRow(Base):
    """Who did what on the station: technician logins (good and bad), configuration changes, batch changes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")


# -- pre-printed stamp rolls (migration 0003) ---------------------------------------------------------------------

class RollRow(Base):
    """A roll of pre-printed stamps, registered from its manifest before use."""

    __tablename__ = "rolls"
    __table_args__ = (CheckConstraint("state IN ('active','locked','voided')", name="ck_rolls_state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    roll_id: Mapped[str] = mapped_column(String(60), unique=True)      # the roll's identity, as on its core
    gtin: Mapped[str] = mapped_column(String(14), ForeignKey("products.gtin"))
    kind: Mapped[str] = mapped_column(String(12))                      # list | sequence
    pattern: Mapped[str | None] = mapped_column(Text, nullable=True)   # a sequence roll's pattern
    first: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    code_count: Mapped[int] = mapped_column(Integer)
    issuer: Mapped[str] = mapped_column(String(200), default="")
    manifest: Mapped[str] = mapped_column(Text, default="")           # file name it was registered from
    manifest_sha256: Mapped[str] = mapped_column(String(64), default="")
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(12), default="active")
    state_reason: Mapped[str] = mapped_column(Text, default="")
    state_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class RollCodeRow(Base):
    """One code of a roll. A code belongs to one roll only: the unique index is what refuses overlapping rolls."""

    __tablename__ = "roll_codes"
    __table_args__ = (
        UniqueConstraint("code", name="uq_roll_codes_code"),
        UniqueConstraint("roll_pk", "seq", name="uq_roll_codes_roll_seq"),
        CheckConstraint("state IN ('unused','activated','voided')", name="ck_roll_codes_state"),
        Index("ix_roll_codes_gtin_serial", "gtin", "serial"),
        Index("ix_roll_codes_roll_state", "roll_pk", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    roll_pk: Mapped[int] = mapped_column(ForeignKey("rolls.id"))
    seq: Mapped[int] = mapped_column(Integer)                          # position on the roll (n of a sequence)
    code: Mapped[str] = mapped_column(Text)                            # exactly what the stamp carries
    gtin: Mapped[str | None] = mapped_column(String(14), nullable=True)   # a Digital Link code's GTIN and serial
    serial: Mapped[str | None] = mapped_column(String(20), nullable=True)
    state: Mapped[str] = mapped_column(String(12), default="unused")
    stamp_id: Mapped[int | None] = mapped_column(ForeignKey("stamps.id"), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    void_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    void_detail: Mapped[str] = mapped_column(Text, default="")
    voided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class CodeActivationRow(Base):
    """Every code ever activated, once: the primary key makes a second activation fail whatever the path."""

    __tablename__ = "code_activations"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    stamp_id: Mapped[int] = mapped_column(ForeignKey("stamps.id"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime)


class RefusalRow(Base):
    """A stamp (or product barcode) refused before activation: the raw read, the reason, when, batch and roll."""

    __tablename__ = "refusals"
    __table_args__ = (Index("ix_refusals_at", "at"), Index("ix_refusals_roll", "roll_pk"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(40))
    code: Mapped[str | None] = mapped_column(Text, nullable=True)
    raw_hex: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(40), default="")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    roll_pk: Mapped[int | None] = mapped_column(ForeignKey("rolls.id"), nullable=True)


# -- delivery problems (migration 0004) ---------------------------------------------------------------------------

class DeliveryProblemRow(Base):
    """The broker refused delivery (a login refused, a publish denied by its ACL), as the relay saw it: kept so a
    `station status` in another process, or after the station stopped, can say why events are waiting. One row per
    problem from when it started; cleared_at is set once the broker accepts again."""

    __tablename__ = "delivery_problems"
    __table_args__ = (Index("ix_delivery_problems_open", "cleared_at", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40))          # the alarm code (station.alarms)
    detail: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
