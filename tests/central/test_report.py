"""`central report`: the period's figures, per producer, product, batch and station, as text, CSV and EPCIS."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from central import masterdata, report
from central.db import scans
from contracts import epcis
from tests.central.conftest import ICT, activation, void
from tests.central.test_web import MASTER, ingest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def period(engine: Engine) -> Engine:
    masterdata.load(engine, MASTER)
    in_period = dt.datetime(2026, 11, 29, 8, 30, tzinfo=ICT)
    ingest(engine, *[activation(f"A{i:04d}", at=in_period) for i in range(30)])
    ingest(engine, *[activation(f"B{i:04d}", lot="MX2611B", at=in_period) for i in range(10)], station="line-2")
    ingest(engine, void("A0001", "verify_mismatch"), void("A0002", "verify_mismatch"))
    ingest(engine, void("B0001", "printer_fault"), station="line-2")
    # the first minutes of 1 December in Huế are still 30 November in UTC: outside a November period
    ingest(engine, activation("C0001", at=dt.datetime(2026, 12, 1, 0, 5, tzinfo=ICT)))
    with engine.begin() as conn:
        when = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
        epc = "https://id.gs1.org/01/08938603001013/21/A0003"
        conn.execute(scans.insert(), [{"epc": epc, "scanned_at": when, "client": f"c{i % 12}", "verdict": "genuine"}
                                      for i in range(60)])
        conn.execute(scans.insert(), [{"epc": "https://id.gs1.org/01/08938603001013/21/A0004", "scanned_at": when,
                                       "client": "c1", "verdict": "genuine"},
                                      {"epc": "https://id.gs1.org/01/08938603001013/21/FAKE01", "scanned_at": when,
                                       "client": "c1", "verdict": "unknown"}])
    return engine


def test_the_period_is_counted_per_producer_product_batch_and_station(period: Engine) -> None:
    built = report.build(period, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert built.activated == 40 and built.voided == {"verify_mismatch": 2, "printer_fault": 1}
    assert built.by(2) == {"08938603001013 / MX2611A": (30, 2), "08938603001013 / MX2611B": (10, 1)}
    assert built.by(3) == {"hue-01 / line-1": (30, 2), "hue-01 / line-2": (10, 1)}
    assert built.by(0) == {"Cơ sở sản xuất Mè xừng Thông Hương": (40, 3)}
    assert (built.checks, built.stamps_checked, built.unknown_checks) == (61, 2, 1)
    assert built.suspected_copies == [("https://id.gs1.org/01/08938603001013/21/A0003", 60, 12)]
    assert built.plan_for_period == round(100_000 * 30 / 365) == 8219
    words = report.text(built)
    assert "stamps activated: 40" in words and "8,219 for these 30 days; activated 0% of it" in words
    assert "producers with activations: 1 of 5" in words
    assert "stamps voided: 3 (verify_mismatch 2, printer_fault 1)" in words
    assert "suspected copied stamps: 1" in words
    december = report.build(period, dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert december.activated == 1


def test_the_command_writes_csv_and_an_epcis_document_that_add_up(period: Engine, pg_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "central", "report", "--db", pg_url, "--from", "2026-11-01", "--to", "2026-11-30",
         "--csv", str(tmp_path / "r.csv"), "--epcis", str(tmp_path / "r.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "EPCIS: " in result.stdout and "(43 events)" in result.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert [(r["lot"], r["station"], r["activated"], r["voided"]) for r in rows] == [
        ("MX2611A", "line-1", "30", "2"), ("MX2611B", "line-2", "10", "1"), ("", "total", "40", "3")]
    assert json.loads(rows[-1]["voided_by_reason"]) == {"printer_fault": 1, "verify_mismatch": 2}
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert len(epcis.validate_document(document)) == 43


def test_a_period_that_ends_before_it_starts_is_refused(pg_url: str) -> None:
    result = subprocess.run([sys.executable, "-m", "central", "report", "--db", pg_url, "--from", "2026-12-01",
                             "--to", "2026-11-01"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "ends (2026-11-01) before it starts" in result.stderr


def test_the_report_page_is_behind_its_password_and_shows_the_same_figures(period: Engine) -> None:
    from fastapi.testclient import TestClient

    from central.web import WebSettings, create_app

    now = lambda: dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.timezone.utc)  # noqa: E731
    with TestClient(create_app(period, WebSettings(), clock=now)) as closed:
        assert closed.get("/report").status_code == 404  # no --report-token: no page at all
    with TestClient(create_app(period, WebSettings(report_token="s3cret"), clock=now)) as client:
        refused = client.get("/report")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        assert client.get("/report", auth=("report", "wrong")).status_code == 401
        page = client.get("/report", params={"from": "2026-11-01", "to": "2026-11-30", "lang": "en"},
                          auth=("report", "s3cret"))
        assert page.status_code == 200
        assert '<td class="n" id="activated">40</td>' in page.text
        assert "8,219 — 100,000 stamps a year over 5 producers, for 30 days (0%)" in page.text
        assert '<td class="n" id="copies">1</td>' in page.text and "Per station (site / line)" in page.text
        assert "https://id.gs1.org/01/08938603001013/21/A0003" in page.text
        csv_text = client.get("/report.csv", params={"from": "2026-11-01", "to": "2026-11-30"},
                              auth=("report", "s3cret"))
        assert csv_text.headers["content-disposition"] == 'attachment; filename="truyxuat-2026-11-01-2026-11-30.csv"'
        assert csv_text.text.splitlines()[-1].startswith("2026-11-01,2026-11-30,,,,,,,total,40,3,")
        year = client.get("/report", auth=("report", "s3cret"))  # this year to date by default, in Vietnamese
        assert "Báo cáo truy xuất nguồn gốc" in year.text and "2026-01-01 – 2026-12-03" in year.text
        assert client.get("/report", params={"from": "1/11/2026"}, auth=("report", "s3cret")).status_code == 400
        assert client.get("/report", params={"period": "x"}, auth=("report", "s3cret")).status_code == 400
