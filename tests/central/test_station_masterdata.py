"""What the station sends about a batch (station/masterdata.py, station/line/stamp_events.py) is what the central
service reads as master data (contracts.masterdata): the product, producer and diary of the shipped product list,
and the station's batch locks and unlocks as batch statuses."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from central.ingest import IngestWorker
from central.web import WebSettings, create_app
from contracts import epcis, masterdata as md
from station.config import DEFAULT_CONFIG, load_products
from station.domain import Batch, Stage
from station.line.events import StationIdentity
from station.line.stamp_events import HoldKind, batch_hold_event
from station.masterdata import batch_opened_events, producer_id
from tests.central.conftest import GTIN, ICT, FakeStation, activation, document, query
from tests.central.test_ingest import settings
from tests.central.test_web import verdict_of, visible

IDENTITY = StationIdentity(site="hue-01", station="line-1", resolver="truyxuat.hue.example.vn",
                           read_point="https://truyxuat.hue.example.vn/station/hue-01/line-1")
BATCH = Batch(7, GTIN, "MX2611A", dt.date(2026, 11, 29), dt.date(2027, 5, 28))
OPENED = dt.datetime(2026, 11, 29, 7, 55, tzinfo=ICT)


def shipped_product():
    return next(p for p in load_products(DEFAULT_CONFIG.parent / "products.yaml") if p.gtin == GTIN)


def read(*events: dict) -> md.MasterData:
    doc = epcis.document(list(events), OPENED)
    return md.read(doc, epcis.validate_document(doc))


def test_a_new_batch_of_a_shipped_product_carries_its_product_producer_and_diary() -> None:
    product = shipped_product()
    data = read(*batch_opened_events(product, BATCH, IDENTITY, at=OPENED))
    assert data.producers == [md.Producer("thong-huong", "Cơ sở sản xuất Mè xừng Thông Hương",
                                          "15 Chi Lăng, phường Phú Cát, TP Huế, Thừa Thiên Huế", "0234 3523 456")]
    assert data.products == [md.ProductInfo(GTIN, "Mè xừng Thông Hương 250g", "thong-huong", None, 180,
                                            "TCVN 4067:1985; TCCS 01:2020/TH")]
    assert data.batches == [md.BatchInfo(GTIN, "MX2611A", "7", dt.date(2026, 11, 29), dt.date(2027, 5, 28),
                                         "TCVN 4067:1985; TCCS 01:2020/TH")]
    # The template's stages, days before the production date at their time, in the station's offset.
    assert [(s.position, s.stage, s.biz_step, s.at, s.offset) for s in data.stages] == [
        (0, "raw_material", "receiving", dt.datetime(2026, 11, 20, 7, 0, tzinfo=ICT), "+07:00"),
        (1, "processing", None, dt.datetime(2026, 11, 27, 6, 30, tzinfo=ICT), "+07:00"),
        (2, "packing", "packing", dt.datetime(2026, 11, 29, 8, 0, tzinfo=ICT), "+07:00"),
    ]
    assert data.stages[1].place == "Xưởng Thông Hương, 15 Chi Lăng, TP Huế"


def test_a_batch_dialogs_own_stages_go_instead_of_the_template_and_nothing_missing_is_invented() -> None:
    product = shipped_product()
    batch = Batch(8, GTIN, "MX2611B", dt.date(2026, 11, 29), None,
                  stages=(Stage("Thu mua mè", dt.date(2026, 11, 2), "Chợ Đông Ba", ""), Stage("packing"),
                          Stage("Ghi chú dài", None, "x" * 600, "y" * 1200)))
    data = read(*batch_opened_events(product, batch, IDENTITY, at=OPENED))
    assert [(s.stage, s.place, s.detail, s.at.date()) for s in data.stages] == [
        ("Thu mua mè", "Chợ Đông Ba", None, dt.date(2026, 11, 2)), ("packing", None, None, dt.date(2026, 11, 29)),
        ("Ghi chú dài", "x" * 500, "y" * 1000, dt.date(2026, 11, 29))]   # cut to the contract's limits
    assert data.batches[0].expiry is None


def test_a_producer_without_an_id_gets_one_from_its_name() -> None:
    from dataclasses import replace

    assert producer_id(replace(shipped_product(), producer_id="", producer="Cơ sở Đặng Văn Ả")) == "co-so-dang-van-a"


@pytest.mark.parametrize(("kind", "status"), [(HoldKind.HOLD, "on_hold"), (HoldKind.RECALL, "recalled")])
def test_the_stations_batch_lock_and_unlock_are_batch_statuses(kind: HoldKind, status: str) -> None:
    lock = batch_hold_event(BATCH, "nghi nhiễm nấm mốc", IDENTITY, locked=True, kind=kind)
    unlock = batch_hold_event(BATCH, "kiểm nghiệm đạt", IDENTITY, locked=False, kind=kind)
    assert [(s.gtin, s.lot, s.status, s.reason) for s in read(lock, unlock).statuses] == [
        (GTIN, "MX2611A", status, "nghi nhiễm nấm mốc"), (GTIN, "MX2611A", "released", "kiểm nghiệm đạt")]



@pytest.mark.integration
def test_the_stations_batch_and_lock_reach_the_trace_page(broker_url: str, prefix: str, pg_url: str,
                                                          engine: Engine, station: FakeStation) -> None:
    def send(*events: dict) -> list[dict]:
        station.publish(json.dumps(document(*events), ensure_ascii=False).encode())
        return station.take_acks(len(events))

    opened = batch_opened_events(shipped_product(), BATCH, IDENTITY, at=OPENED)
    with IngestWorker(settings(broker_url, prefix, pg_url)), TestClient(create_app(engine, WebSettings(
            context_ttl_s=0))) as client:
        assert {a["status"] for a in send(*opened, activation("A7K2Q9"))} == {"stored"}
        send(batch_hold_event(BATCH, "Phát hiện nấm mốc", IDENTITY, locked=True, kind=HoldKind.RECALL))
        assert query(pg_url, "SELECT status, status_reason FROM batches") == [("recalled", "Phát hiện nấm mốc")]
        response = client.get("/01/08938603001013/21/A7K2Q9")
        assert verdict_of(response.text) == "recalled" and "Phát hiện nấm mốc" in visible(response.text)
        send(batch_hold_event(BATCH, "Kiểm nghiệm lại đạt", IDENTITY, locked=False, kind=HoldKind.RECALL))
        assert query(pg_url, "SELECT status FROM batches") == [("released",)]
        response = client.get("/01/08938603001013/21/A7K2Q9")
    assert verdict_of(response.text) == "genuine"
    page = visible(response.text)
    assert page.index("Nguyên liệu") < page.index("Chế biến") < page.index("Đóng gói")
    assert "15 Chi Lăng, phường Phú Cát" in page
