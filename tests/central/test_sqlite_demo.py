"""The demo's SQLite database: the same migrations, ingest's statements, the page and the report."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from central import db, masterdata, report
from central.store import prepare, store
from central.web import WebSettings, create_app
from tests.central.conftest import activation, payload, void
from tests.central.test_web import MASTER, NOW, verdict_of, visible


@pytest.fixture(autouse=True)
def _restore_zone() -> Iterator[None]:
    yield
    time.tzset()  # after monkeypatch has put TZ back


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Engine]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'central.db'}")
    db.upgrade(engine)
    yield engine
    engine.dispose()


def test_ingest_page_and_report_work_on_sqlite(demo: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine far from Vietnam: a naive time read back would be taken for New York's wall clock.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    masterdata.load(demo, MASTER)
    first = payload(activation("A7K2Q9"), activation("V0ID01"))
    for body in (first, first, payload(void("V0ID01", "verify_mismatch"))):  # the first twice: a resend
        prepared = prepare("truyxuat/hue-01/line-1/events", body, "truyxuat", NOW)
        assert not prepared.rejected
        store(demo, [prepared])
    with TestClient(create_app(demo, WebSettings(), clock=lambda: NOW)) as client:
        genuine = client.get("/01/08938603001013/10/MX2611A/21/A7K2Q9")
        voided = client.get("/01/08938603001013/21/V0ID01")
    assert (genuine.status_code, verdict_of(genuine.text)) == (200, "genuine")
    # times read back from SQLite are instants: shown at the station's +07:00, not the machine's zone
    assert "08:30 29/11/2026" in visible(genuine.text) and "07:00 20/11/2026" in visible(genuine.text)
    assert "Kiểm tra lần đầu lúc 09:00 03/12/2026" in visible(genuine.text)
    assert voided.status_code == 410
    built = report.build(demo, dt.date(2026, 11, 29), dt.date(2026, 11, 29))
    assert (built.activated, dict(built.voided)) == (2, {"verify_mismatch": 1})
    assert report.build(demo, dt.date(2026, 11, 30), dt.date(2026, 11, 30)).activated == 0


def test_an_in_memory_sqlite_database_is_refused() -> None:
    from central.errors import CentralError

    with pytest.raises(CentralError, match="name a file"):
        db.make_engine("sqlite://")
