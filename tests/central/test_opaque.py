"""Pre-printed rolls' opaque provincial codes (`https://{resolver}/tem/{code}`) as first-class stamps: their
activation and void folded into a stamp keyed by the EPC, and `/tem/{code}` on any host answered like a Digital
Link (page, verdicts, counts, linkset, events). The events are built here by hand in the shape
station/line/stamp_events.py builds; tests/central/test_preprinted_e2e.py sends the station's own through ingest."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from central import masterdata
from central.db import batches
from central.store import prepare
from central.web import WebSettings, create_app
from contracts import epcis
from tests.central.conftest import GTIN, ICT, READ_POINT, payload, query
from tests.central.test_web import HOST, MASTER, NOW, ingest, verdict_of, visible

pytestmark = pytest.mark.integration

RESOLVER = "truyxuat.hue.example.vn"


def opaque_epc(code: str) -> str:
    from urllib.parse import quote

    return f"https://{RESOLVER}/tem/{quote(code, safe='')}"


def opaque_activation(code: str, lot: str = "MX2611A", *, roll: str = "HUE-MX-2026-0001",
                      gtin: str | None = GTIN, expiry: str = "2027-05-28") -> dict[str, Any]:
    """station.preprinted.code_activation_event's shape for an opaque code."""
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": dt.datetime(2026, 11, 29, 8, 40, tzinfo=ICT).isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+07:00",
        "epcList": [opaque_epc(code)],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": READ_POINT},
        "ilmd": {"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": expiry},
        "stn:site": "hue-01",
        "stn:station": "line-1",
        "stn:roll": roll,
        "stn:stampCode": code,
        "stn:batchId": 7,
        "stn:verification": {"result": "preprinted", "source": "verifier"},
    }
    if gtin is not None:
        event["stn:gtin"] = gtin
    return event


def opaque_void(code: str, reason: str = "damaged", *, roll: str = "HUE-MX-2026-0001") -> dict[str, Any]:
    """station.preprinted.code_void_event's shape: no lot, no batch."""
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": dt.datetime(2026, 11, 29, 8, 45, tzinfo=ICT).isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+07:00",
        "epcList": [opaque_epc(code)],
        "action": "DELETE",
        "bizStep": "decommissioning",
        "disposition": "inactive",
        "readPoint": {"id": READ_POINT},
        "stn:voidReason": reason,
        "stn:site": "hue-01",
        "stn:station": "line-1",
        "stn:roll": roll,
        "stn:stampCode": code,
        "stn:gtin": GTIN,
        "stn:voidDetail": "rách khi dán",
    }


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    masterdata.load(engine, MASTER)
    ingest(engine, opaque_activation("HUE0000001"), opaque_activation("HUE0000002"), opaque_activation("HUE/0003"))
    ingest(engine, opaque_void("HUE0000009"))            # a void that overtakes its activation …
    ingest(engine, opaque_activation("HUE0000009"))      # … still leaves the stamp voided
    return engine


@pytest.fixture
def client(seeded: Engine) -> Iterator[TestClient]:
    settings = WebSettings(public_url=HOST, copy_threshold=3, copy_places=3)
    with TestClient(create_app(seeded, settings, clock=lambda: NOW), raise_server_exceptions=False) as made:
        yield made


def test_ingest_folds_an_opaque_code_into_a_stamp_keyed_by_its_epc(seeded: Engine, pg_url: str) -> None:
    rows = query(pg_url, "SELECT epc, gtin, serial, code, roll, lot, expiry, batch_id, activated_site, "
                         "voided_at IS NOT NULL, void_reason FROM stamps ORDER BY code")
    assert rows == [
        (opaque_epc("HUE/0003"), GTIN, None, "HUE/0003", "HUE-MX-2026-0001", "MX2611A", dt.date(2027, 5, 28), "7",
         "hue-01", False, None),
        (opaque_epc("HUE0000001"), GTIN, None, "HUE0000001", "HUE-MX-2026-0001", "MX2611A", dt.date(2027, 5, 28),
         "7", "hue-01", False, None),
        (opaque_epc("HUE0000002"), GTIN, None, "HUE0000002", "HUE-MX-2026-0001", "MX2611A", dt.date(2027, 5, 28),
         "7", "hue-01", False, None),
        (opaque_epc("HUE0000009"), GTIN, None, "HUE0000009", "HUE-MX-2026-0001", "MX2611A", dt.date(2027, 5, 28),
         "7", "hue-01", True, "damaged"),
    ]
    assert opaque_epc("HUE/0003") == "https://truyxuat.hue.example.vn/tem/HUE%2F0003"


@pytest.mark.parametrize("base", ["http://127.0.0.1:8080", HOST, "https://id.gs1.org",
                                  "http://TRUYXUAT.HUE.EXAMPLE.VN"])
def test_an_opaque_code_on_any_host_shows_the_trace_page_genuine(client: TestClient, base: str) -> None:
    response = client.get(f"{base}/tem/HUE0000001")
    assert response.status_code == 200
    assert verdict_of(response.text) == "genuine"
    page = visible(response.text)
    for shown in ("Tem chính hãng, đang hiệu lực", "Mè xừng Thông Hương 250g", "Cơ sở sản xuất Mè xừng Thông Hương",
                  "MX2611A", "29/11/2026", "28/05/2027", "180 ngày", "TCVN 4067:1985; OCOP 4 sao",
                  "Mã in trên tem HUE0000001", "Cuộn tem HUE-MX-2026-0001",
                  "https://truyxuat.hue.example.vn/tem/HUE0000001", "08:40 29/11/2026",
                  "cơ sở hue-01, dây chuyền line-1", "Kiểm tra lần đầu lúc 09:00 03/12/2026, đã kiểm tra 1 lần"):
        assert shown in page, shown
    assert "Số sê-ri" not in page and "Chưa có dữ liệu" not in page
    assert response.headers["link"] == (f'<{HOST}/tem/HUE0000001?linkType=linkset>; rel="linkset"; '
                                        'type="application/linkset+json"')
    assert 'href="/tem/HUE0000001?lang=en"' in response.text


def test_a_percent_encoded_code_and_the_english_page(client: TestClient) -> None:
    response = client.get("/tem/HUE%2F0003?lang=en")
    assert response.status_code == 200 and verdict_of(response.text) == "genuine"
    page = visible(response.text)
    assert "Genuine stamp, active" in page and "Code printed on the stamp HUE/0003" in page
    assert 'href="/tem/HUE%2F0003"' in response.text


def test_a_voided_opaque_code_is_410_and_an_unknown_one_404(seeded: Engine, pg_url: str) -> None:
    with TestClient(create_app(seeded, WebSettings(public_url=HOST), clock=lambda: NOW)) as client:
        voided = client.get("/tem/HUE0000009?lang=en")
        assert voided.status_code == 410 and verdict_of(voided.text) == "voided"
        assert "This stamp was cancelled — do not buy" in visible(voided.text)
        assert "damaged" in visible(voided.text) and "29 Nov 2026, 08:45" in visible(voided.text)
        unknown = client.get("/tem/HUE9999999")
        assert unknown.status_code == 404 and verdict_of(unknown.text) == "unknown"
        assert "Mè xừng" not in unknown.text
    # written at the latest when the server stops (the checks are written in batches)
    assert query(pg_url, "SELECT epc, verdict FROM scans ORDER BY id") == [
        (opaque_epc("HUE0000009"), "voided"), (f"{HOST}/tem/HUE9999999", "unknown")]


def test_a_recalled_batch_shows_on_its_opaque_stamps(seeded: Engine, client: TestClient) -> None:
    with seeded.begin() as conn:
        conn.execute(update(batches).values(status="recalled", status_reason="Vượt ngưỡng độ ẩm"))
    response = client.get("/tem/HUE0000002?lang=en")
    assert response.status_code == 200 and verdict_of(response.text) == "recalled"
    assert "Reason: Vượt ngưỡng độ ẩm" in visible(response.text)


def test_checks_of_an_opaque_code_are_counted_under_its_epc(seeded: Engine, pg_url: str) -> None:
    settings = WebSettings(public_url=HOST, copy_threshold=3, copy_places=3)
    with TestClient(create_app(seeded, settings, clock=lambda: NOW)) as client:
        for _ in range(2):
            client.get("http://127.0.0.1/tem/HUE0000002")
        assert client.head("/tem/HUE0000002").status_code == 200  # counts nothing
        third = visible(client.get("https://other.example/tem/HUE0000002?lang=en").text)
        assert "checked 3 times" in third and "this is very likely a copied stamp" in third  # copy_threshold=3
    assert query(pg_url, "SELECT epc, count(*) FROM scans GROUP BY epc") == [(opaque_epc("HUE0000002"), 3)]


def test_machines_get_the_linkset_and_the_events_of_an_opaque_code(client: TestClient) -> None:
    response = client.get("/tem/HUE0000009", headers={"Accept": "application/linkset+json"})
    assert response.status_code == 410 and response.headers["content-type"] == "application/linkset+json"
    (context,) = response.json()["linkset"]
    assert context["anchor"] == opaque_epc("HUE0000009")
    assert [p["href"] for p in context["https://gs1.org/voc/pip"]] == [
        f"{HOST}/tem/HUE0000009", f"{HOST}/tem/HUE0000009?lang=en"]
    assert client.get("/tem/HUE0000001?linkType=linkset").status_code == 200
    unknown = client.get("/tem/NOPE", headers={"Accept": "application/linkset+json"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"

    events_href = context["https://gs1.org/voc/epcis"][0]["href"]
    events = client.get(events_href.removeprefix(HOST))
    assert events.status_code == 200 and events.headers["content-type"] == "application/ld+json"
    found = epcis.validate_document(events.json())
    assert [(e["action"], e["stn:stampCode"]) for e in found] == [("ADD", "HUE0000009"), ("DELETE", "HUE0000009")]
    redirect = client.get("/tem/HUE0000009?linkType=gs1:epcis", follow_redirects=False)
    assert redirect.status_code == 307
    # the redirect names the code under this server; any host finds the station's EPC by the code
    assert client.get(redirect.headers["location"]).json()["epcisBody"] == events.json()["epcisBody"]
    assert client.get("/events", params={"epc": "https://elsewhere.example/tem/NOPE"}).status_code == 404


@pytest.mark.parametrize(("path", "reason"), [
    ("/tem/", "/tem/ names no code"),
    ("/tem/HUE0000001/x", "one path segment"),
    ("/tem/HUE0000001?17=270528", "unknown query parameter(s): 17"),
    ("/tem/HUE0000001?lang=fr", "lang='fr'"),
    ("/tem/HUE0000001?linkType=gs1:foo", "linkType='gs1:foo'"),
    ("/tem/%FF%FE", "not percent-encoded UTF-8"),
    ("/tem/HUE%7F1", "control character"),
    ("/tem/" + "X" * 201, "longer than 200 characters"),
    ("/events?epc=https://h/tem/a%2Fb/c", "epc: /tem/{code} is one path segment"),
])
def test_malformed_opaque_paths_are_a_clear_400(client: TestClient, path: str, reason: str) -> None:
    import html

    response = client.get(path)
    assert response.status_code == 400
    assert reason in html.unescape(response.text), response.text


@pytest.mark.parametrize(("event", "reason"), [
    (opaque_activation("HUE0000001", gtin=None), "stn:gtin"),
    (opaque_activation("HUE0000001", gtin="08938603001014"), "check digit"),
    ({**opaque_activation("HUE0000001"), "stn:stampCode": "HUE0000002"}, "is not the code 'HUE0000002'"),
    ({**opaque_activation("HUE0000001"), "stn:roll": "R" * 101}, "longer than 100 characters"),
])
def test_an_opaque_stamp_without_its_product_or_code_is_refused(event: dict[str, Any], reason: str) -> None:
    prepared = prepare("truyxuat/hue-01/line-1/events", payload(event), "truyxuat", NOW)
    assert prepared.rejected and reason in prepared.rejection["reason"], prepared.rejection  # type: ignore[index]


def test_events_with_an_epc_of_no_stamp_of_ours_still_change_no_stamp(engine: Engine, pg_url: str) -> None:
    foreign = {**opaque_activation("X1"), "epcList": ["urn:epc:id:sgtin:893860.0300101.A7"]}
    del foreign["stn:stampCode"]
    ingest(engine, foreign)
    assert query(pg_url, "SELECT count(*) FROM events") == [(1,)]
    assert query(pg_url, "SELECT count(*) FROM stamps") == [(0,)]


def test_a_code_claimed_under_a_second_resolver_host_is_quarantined_the_first_kept(
    broker_url: str, prefix: str, pg_url: str, station: Any
) -> None:
    from central.ingest import IngestSettings, IngestWorker
    from tests.integration.mqtt_fixtures import unique

    first = opaque_activation("HUE0000001")
    second = {**opaque_activation("HUE0000001"), "epcList": ["https://other.example.vn/tem/HUE0000001"]}
    with IngestWorker(IngestSettings(db=pg_url, broker=broker_url, prefix=prefix, group=unique("ingest"),
                                     client_id=unique("central"), session_expiry_s=0)):
        station.publish(payload(first))
        assert station.take_acks(1)[0]["status"] == "stored"
        station.publish(payload(second))
        (ack,) = station.take_acks(1)
    assert ack["status"] == "rejected" and "stamps_code" in ack["reason"], ack
    assert query(pg_url, "SELECT epc FROM stamps") == [(opaque_epc("HUE0000001"),)]
    assert query(pg_url, "SELECT event_ids FROM quarantine") == [([second["eventID"]],)]
