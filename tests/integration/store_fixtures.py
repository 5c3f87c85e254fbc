"""Fixtures and helpers of the store's integration tests: a real SQLite file with one product and one batch."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from station.domain import Batch, Product, Stamp
from station.store import Activation, ScanRecord, Store

GTIN = "08938603001013"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "station.db")
    s.sync_products([Product(GTIN, "Mè xừng Thông Hương 250g", "Cơ sở Thông Hương", shelf_life_days=180)])
    yield s
    s.close()


@pytest.fixture
def batch(store: Store) -> Batch:
    return store.create_batch(Batch(None, GTIN, "MX2611A", dt.date(2026, 11, 29), dt.date(2027, 5, 28)))


def serials(*values: str) -> Callable[[], str]:
    it = iter(values)
    return lambda: next(it)


def uri(serial: str) -> str:
    return f"https://truyxuat.example.vn/01/{GTIN}/10/MX2611A/21/{serial}"


def event(n: int) -> dict:
    return {"eventID": f"urn:uuid:00000000-0000-4000-8000-{n:012d}", "type": "ObjectEvent"}


def printed_stamps(store: Store, batch: Batch, count: int, prefix: str = "P") -> list[Stamp]:
    assert batch.id is not None
    stamps = store.allocate_stamps(batch.id, count, (f"{prefix}{n:09d}" for n in itertools.count()).__next__, uri)
    store.commit_line(printed=[s.id for s in stamps if s.id is not None])
    return stamps


def activation(stamp: Stamp, n: int, scan: bool = False) -> Activation:
    assert stamp.id is not None
    record = ScanRecord("verifier", stamp.uri, stamp.uri.encode(), "verified") if scan else None
    return Activation(stamp.id, stamp.uri, event(n), record)


def plain_rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()
