"""Master data as events (contracts.masterdata): the batch, its product and producer, its diary and its status,
sent over MQTT like activations, stored by ingest, shown on the trace page."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from central.ingest import IngestWorker
from central.web import WebSettings, create_app
from contracts import epcis, masterdata as md
from tests.central.conftest import GTIN, ICT, READ_POINT, FakeStation, activation, document, query
from tests.central.test_ingest import settings
from tests.central.test_web import verdict_of, visible

pytestmark = pytest.mark.integration

PRODUCER = md.Producer("thong-huong", "Cơ sở sản xuất Mè xừng Thông Hương", "15 Chi Lăng, TP Huế", "0234 3522 123")
PRODUCT = md.ProductInfo(GTIN, "Mè xừng Thông Hương 250g", image_url="https://truyxuat.hue.example.vn/img/mx.jpg",
                         shelf_life_days=180, standards="TCVN 4067:1985")
BATCH = md.BatchInfo(GTIN, "MX2611A", "7", dt.date(2026, 11, 29), dt.date(2027, 5, 28), "OCOP 4 sao")
STAGES = [
    md.Stage(GTIN, "MX2611A", 0, "harvest", dt.datetime(2026, 11, 1, 6, 0, tzinfo=ICT), "+07:00",
             place="Ruộng mè Phú Mậu"),
    md.Stage(GTIN, "MX2611A", 1, "processing", dt.datetime(2026, 11, 28, 6, 30, tzinfo=ICT), "+07:00",
             place="Xưởng Thông Hương", detail="Nấu mạch nha, trộn mè"),
    md.Stage(GTIN, "MX2611A", 2, "packing", dt.datetime(2026, 11, 29, 8, 0, tzinfo=ICT), "+07:00", biz_step="packing",
             place="Dây chuyền 1"),
]
AT = dt.datetime(2026, 11, 29, 7, 55, tzinfo=ICT)


def batch_events() -> list[dict]:
    return [md.batch_event(producer=PRODUCER, product=PRODUCT, batch=BATCH, at=AT, read_point=READ_POINT),
            *[md.stage_event(s, read_point=READ_POINT) for s in STAGES]]


def send(station: FakeStation, *events: dict) -> list[dict]:
    station.publish(json.dumps(document(*events), ensure_ascii=False).encode())
    return station.take_acks(len(events))


def test_the_events_a_station_sends_for_a_batch_are_valid_and_read_back() -> None:
    events = batch_events()
    doc = epcis.document(events, AT)
    data = md.read(doc, epcis.validate_document(doc))
    assert data.producers == [PRODUCER]
    assert data.products == [md.ProductInfo(GTIN, PRODUCT.name, "thong-huong", PRODUCT.image_url, 180,
                                            "TCVN 4067:1985")]
    assert data.batches == [BATCH]
    assert data.stages == STAGES
    assert events[1]["bizStep"] == "https://ns.packing-station.example/epcis/bizstep/harvest"  # CBV has no harvest
    assert events[3]["bizStep"] == "packing"


def test_a_batch_sent_over_mqtt_fills_the_trace_page(broker_url: str, prefix: str, pg_url: str, engine: Engine,
                                                     station: FakeStation) -> None:
    with IngestWorker(settings(broker_url, prefix, pg_url)):
        assert {a["status"] for a in send(station, *batch_events())} == {"stored"}
        send(station, activation("A7K2Q9"))
    assert query(pg_url, "SELECT name, address, phone FROM producers") == [
        (PRODUCER.name, PRODUCER.address, PRODUCER.phone)]
    with TestClient(create_app(engine, WebSettings())) as client:
        response = client.get("/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528")
    assert response.status_code == 200 and verdict_of(response.text) == "genuine"
    page = visible(response.text)
    for shown in ("Mè xừng Thông Hương 250g", "15 Chi Lăng, TP Huế", "29/11/2026", "28/05/2027", "180 ngày",
                  "OCOP 4 sao", "Ruộng mè Phú Mậu", "Nấu mạch nha, trộn mè", "08:00 29/11/2026"):
        assert shown in page, shown
    assert "Chưa có dữ liệu" not in page
    assert page.index("Thu hoạch") < page.index("Chế biến") < page.index("Đóng gói")


def test_a_recall_shows_and_an_older_status_arriving_later_does_not_undo_it(
    broker_url: str, prefix: str, pg_url: str, engine: Engine, station: FakeStation
) -> None:
    recall = md.status_event(GTIN, "MX2611A", "recalled", reason="Phát hiện nấm mốc",
                             at=dt.datetime(2026, 12, 2, 9, 0, tzinfo=ICT), read_point=READ_POINT)
    older_hold = md.status_event(GTIN, "MX2611A", "on_hold", reason="Chờ kiểm nghiệm",
                                 at=dt.datetime(2026, 12, 1, 9, 0, tzinfo=ICT), read_point=READ_POINT)
    with IngestWorker(settings(broker_url, prefix, pg_url)):
        send(station, *batch_events(), activation("A7K2Q9"))
        send(station, recall)
        send(station, older_hold)  # delayed in some outbox: older than the recall
    assert query(pg_url, "SELECT status, status_reason FROM batches") == [("recalled", "Phát hiện nấm mốc")]
    with TestClient(create_app(engine, WebSettings())) as client:
        response = client.get("/01/08938603001013/21/A7K2Q9?lang=en")
    assert verdict_of(response.text) == "recalled"
    assert "Reason: Phát hiện nấm mốc" in visible(response.text)


@pytest.mark.parametrize(("change", "reason"), [
    (lambda e: e["ilmd"]["stn:product"].update(shelfLifeDays="180"), "shelfLifeDays must be a whole number"),
    (lambda e: e["ilmd"]["stn:product"].update(imageUrl="javascript:alert(1)"), "imageUrl must be an https:// URL"),
    (lambda e: e["ilmd"]["stn:producer"].pop("name"), "a producer needs an id and a name"),
    (lambda e: e["ilmd"].update({"cbvmda:itemExpirationDate": "28/05/2027"}), "is not a date"),
])
def test_master_data_off_the_contract_is_quarantined(broker_url: str, prefix: str, pg_url: str,
                                                     station: FakeStation, change, reason: str) -> None:
    event = batch_events()[0]
    change(event)
    with IngestWorker(settings(broker_url, prefix, pg_url)):
        (ack,) = send(station, event)
    assert ack["status"] == "rejected" and reason in ack["reason"], ack
    assert query(pg_url, "SELECT count(*) FROM products") == [(0,)]
