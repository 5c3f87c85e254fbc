"""Master data for the trace page: producers, products, batches and their production diaries.

Loaded from a JSON or YAML file (`central load`) or from the same shape in code; every load is an upsert, and a
batch's diary is replaced whole, so loading the same file twice changes nothing. Until the station publishes its
master data (issue 10), this is how the province's team enters what the page shows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from central.db import batches, diary_stages, producers, products
from central.errors import CentralError
from contracts import epcis

BatchStatus = Literal["released", "on_hold", "recalled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Producer(_Model):
    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=300)
    address: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=40)
    gln: str | None = Field(None, pattern=r"^\d{13}$")


class ProductEntry(_Model):
    gtin: str = Field(pattern=r"^\d{14}$", description="GTIN-14")
    name: str = Field(min_length=1, max_length=300)
    producer: str | None = Field(None, description="a producer id of this file or the database")
    image_url: str | None = Field(None, max_length=1000)
    shelf_life_days: int | None = Field(None, ge=1, le=36500)
    standards: str | None = Field(None, max_length=500)

    @field_validator("image_url")
    @classmethod
    def _image_https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "/")):
            raise ValueError("an image URL starts with https:// (or / on this server)")
        return value


class Stage(_Model):
    stage: str = Field(min_length=1, max_length=40, description="raw_material, harvest, processing, packing, …")
    biz_step: str | None = Field(None, description="the CBV business step, where CBV has one")
    place: str | None = Field(None, max_length=500)
    at: dt.datetime | None = Field(None, description="when, with its UTC offset")
    detail: str | None = Field(None, max_length=1000)

    @field_validator("biz_step")
    @classmethod
    def _cbv(cls, value: str | None) -> str | None:
        if value is not None and value not in epcis.CBV_BIZ_STEPS:
            raise ValueError(f"{value!r} is not a CBV 2.0 business step")
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("a stage's time needs its UTC offset, e.g. 2026-11-20T07:00:00+07:00")
        return value


class BatchEntry(_Model):
    gtin: str = Field(pattern=r"^\d{14}$")
    lot: str = Field(min_length=1, max_length=20)
    batch_id: str | None = Field(None, max_length=100)
    production_date: dt.date | None = None
    expiry: dt.date | None = None
    standards: str | None = Field(None, max_length=500)
    status: BatchStatus = "released"
    status_reason: str | None = Field(None, max_length=500)
    diary: list[Stage] | None = None


class MasterData(_Model):
    producers: list[Producer] = []
    products: list[ProductEntry] = []
    batches: list[BatchEntry] = []


def _insert(conn: Connection):  # type: ignore[no-untyped-def]
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    statement = _insert(conn)(table)
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={c: statement.excluded[c] for c in rows[0] if c not in keys}
    )
    conn.execute(statement, rows)


def load(engine: Engine, data: Mapping[str, Any] | MasterData, now: dt.datetime | None = None) -> dict[str, int]:
    """Upsert the producers, products and batches of `data` (diaries replaced per batch) in one transaction."""
    try:
        parsed = data if isinstance(data, MasterData) else MasterData.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CentralError(f"master data: {where}: {first['msg']}") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        _upsert(conn, producers, [
            {"producer_id": p.id, "name": p.name, "address": p.address, "phone": p.phone, "gln": p.gln,
             "updated_at": now} for p in parsed.producers], ["producer_id"])
        _upsert(conn, products, [
            {"gtin": p.gtin, "name": p.name, "producer_id": p.producer, "image_url": p.image_url,
             "shelf_life_days": p.shelf_life_days, "standards": p.standards, "updated_at": now}
            for p in parsed.products], ["gtin"])
        _upsert(conn, batches, [
            {"gtin": b.gtin, "lot": b.lot, "batch_id": b.batch_id, "production_date": b.production_date,
             "expiry": b.expiry, "standards": b.standards, "status": b.status, "status_reason": b.status_reason,
             "status_changed_at": now, "updated_at": now} for b in parsed.batches], ["gtin", "lot"])
        stages = 0
        for b in parsed.batches:
            if b.diary is None:
                continue
            conn.execute(delete(diary_stages).where(diary_stages.c.gtin == b.gtin, diary_stages.c.lot == b.lot))
            rows = [{"gtin": b.gtin, "lot": b.lot, "position": i, "stage": s.stage, "biz_step": s.biz_step,
                     "place": s.place, "occurred_at": s.at,
                     "occurred_offset": s.at.isoformat()[-6:] if s.at is not None else None, "detail": s.detail}
                    for i, s in enumerate(b.diary)]
            if rows:
                conn.execute(diary_stages.insert(), rows)
            stages += len(rows)
    return {"producers": len(parsed.producers), "products": len(parsed.products),
            "batches": len(parsed.batches), "diary stages": stages}


def load_file(engine: Engine, path: str | Path) -> dict[str, int]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise CentralError(f"cannot read master data {file}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise CentralError(f"{file}: expected a mapping with producers, products and batches")
    return load(engine, data)
