"""The station and the real central service end to end (issue 10): a simulated line (printer and scanner
simulators, the shipped product list) runs a batch; its relay delivers the batch's master data, its diary and the
activations to `central ingest` (IngestWorker on a throwaway PostgreSQL database); the trace page then shows, for a
stamp that left the simulated printer, the product, the producer's address, the diary in order and the activation.
An event the central service refuses comes back `rejected`: the station keeps it as rejected with the reason, never
resends it, raises `event_rejected` and `station status` lists it. `station batch publish` sends a corrected
product entry's master data again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.cli import main as station_cli
from app.runtime import RunOptions, Station
from central.ingest import IngestWorker
from central.web import WebSettings, create_app
from simulators.printer import PrinterSimulator
from simulators.scanner import ScannerSimulator
from station.config import load_config
from station.domain import DeliveryState
from station.masterdata import batch_opened_events
from station.store import utcnow
from station.store.outbox import write_events
from station.store.sql import session_executemany
from tests.central.conftest import query
from tests.central.test_ingest import settings
from tests.central.test_web import verdict_of, visible
from tests.integration.line_harness import write_config
from tests.integration.mqtt_fixtures import unique, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def printer() -> Iterator[PrinterSimulator]:
    made = PrinterSimulator(port=0).start()
    yield made
    made.stop()


@pytest.fixture
def station(tmp_path: Path, broker_url: str, pg_url: str, printer: PrinterSimulator) -> Iterator[Station]:
    """A station on simulated devices whose central service is the real ingest worker."""
    prefix = unique("txe")
    scanner = ScannerSimulator(link=str(tmp_path / "scanner"), read_delay=0.01, seed=7).start()
    printer.add_listener(scanner.on_label)
    config = write_config(tmp_path, printer.url, f"serial://{tmp_path / 'scanner'}", broker_url, prefix)
    worker = IngestWorker(settings(broker_url, prefix, pg_url))
    worker.start()
    made = Station(load_config(config), RunOptions(auto_resume=True))
    made.start()
    try:
        yield made
    finally:
        made.stop()
        worker.stop()
        scanner.stop()


def test_a_batch_run_on_the_line_shows_on_the_trace_page(station: Station, printer: PrinterSimulator, engine: Engine,
                                                          pg_url: str) -> None:
    batch = station.open_batch(station.product("08938603001013"), "MX2611E")
    station.engine.start(batch.id, 5)
    assert station.engine.wait(60) and station.engine.summary.activated == 5
    assert station.relay.wait_drained(30), station.store.outbox_counts()
    # 5 activations, the batch and its 3 diary stages: each stored once, each confirmed by the server's ack.
    assert station.store.outbox_counts()[DeliveryState.CONFIRMED] == 9
    assert query(pg_url, "SELECT count(*) FROM events") == [(9,)]
    uri = urlsplit(printer.labels[0].qr_data[0])     # what the simulated printer printed in the QR
    with TestClient(create_app(engine, WebSettings())) as client:
        response = client.get(f"{uri.path}?{uri.query}" if uri.query else uri.path)
    assert response.status_code == 200 and verdict_of(response.text) == "genuine"
    page = visible(response.text)
    for shown in ("Mè xừng Thông Hương 250g", "Cơ sở sản xuất Mè xừng Thông Hương",
                  "15 Chi Lăng, phường Phú Cát, TP Huế, Thừa Thiên Huế", "TCVN 4067:1985; TCCS 01:2020/TH",
                  "HTX nông nghiệp Phú Mậu, huyện Phú Vang", "Nấu mạch nha, trộn mè rang, cán và cắt thanh",
                  f"cơ sở test-site, dây chuyền {station.config.station.id}"):
        assert shown in page, shown
    # The diary in order, raw material first, each stage at its time before the production date.
    assert page.index("Nguyên liệu") < page.index("Chế biến") < page.index("Đóng gói")
    produced = batch.production_date
    assert produced is not None
    nine_days_before = produced.fromordinal(produced.toordinal() - 9)
    assert f"07:00 {nine_days_before:%d/%m/%Y}" in page


def test_an_event_the_central_service_rejects_is_kept_rejected_with_the_reason_and_shown(
        station: Station, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    batch = station.open_batch(station.product("08938603001013"), "MX2611R")
    assert station.relay.wait_drained(30)
    # An event off the contract (a shelf life as text), written to the outbox as the station writes its own.
    bad = batch_opened_events(station.product("08938603001013"), batch, station.identity)[0]
    bad["ilmd"]["stn:product"]["shelfLifeDays"] = "180"
    station.store.database.write(
        lambda s: write_events(session_executemany(s), [("batch_open", None, bad)], utcnow()))
    station.relay.notify()
    assert wait_until(lambda: station.store.outbox_counts()[DeliveryState.REJECTED] == 1, 20)
    assert station.relay.wait_drained(10)          # nothing waits: a rejected event is not resent
    (rejected,) = station.store.rejected_events()
    assert rejected.event_id == bad["eventID"] and "shelfLifeDays must be a whole number" in rejected.reason
    assert query(pg_url, "SELECT event_ids FROM quarantine") == [([bad["eventID"]],)]
    # The operator is told, in Vietnamese and English, with the reason.
    assert wait_until(lambda: any(a.code == "event_rejected" for a in station.engine.alarms), 10)
    alarm = next(a for a in station.engine.alarms if a.code == "event_rejected")
    assert "Máy chủ trung tâm từ chối" in str(alarm) and "rejected an event" in str(alarm)
    assert "shelfLifeDays must be a whole number" in alarm.detail
    attempts = station.store.database.read(lambda s: s.connection().exec_driver_sql(
        "SELECT attempts FROM outbox WHERE event_id = ?", (bad["eventID"],)).scalar())
    assert attempts <= 1                            # sent once (its PUBACK may be written after the refusal)
    assert station.store.due_outbox(utcnow() + dt.timedelta(days=1), 10) == []    # and never due again
    # `station status` (another process would read the same file) lists it with the reason.
    assert station_cli(["status", "--config", str(station.config.source)]) == 0
    out = capsys.readouterr().out
    assert "outbox rejected: 1" in out
    assert "rejected by the central server" in out and bad["eventID"] in out and "shelfLifeDays" in out


def test_a_corrected_product_list_reaches_the_page_with_station_batch_publish(
        station: Station, printer: PrinterSimulator, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    batch = station.open_batch(station.product("08938603002027"), "NM2611P")
    station.engine.start(batch.id, 1)
    assert station.engine.wait(60) and station.relay.wait_drained(30)
    products = Path(station.config.source).parent / "products.yaml"
    old = "Tổ 5, phường Thủy Phương, thị xã Hương Thủy, Thừa Thiên Huế"
    products.write_text(products.read_text(encoding="utf-8").replace(old, "Tổ 7, phường Thủy Phương, Hương Thủy"),
                        encoding="utf-8")
    assert station_cli(["batch", "publish", "--config", str(station.config.source), "--product", "08938603002027",
                        "--lot", "NM2611P"]) == 0
    assert "4 events queued for the central service" in capsys.readouterr().out
    station.relay.notify()
    assert wait_until(lambda: station.store.outbox_counts()[DeliveryState.CONFIRMED] == 1 + 4 + 4, 20)
    uri = urlsplit(printer.labels[0].qr_data[0])
    with TestClient(create_app(engine, WebSettings(context_ttl_s=0))) as client:
        page = visible(client.get(f"{uri.path}?{uri.query}" if uri.query else uri.path).text)
    assert "Tổ 7, phường Thủy Phương, Hương Thủy" in page and old not in page
    assert "batch_published" in [a.action for a in station.store.audit_log()]
