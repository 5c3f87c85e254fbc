"""A pre-printed roll of opaque provincial codes end to end: the station's own events (the builders of
station/line/stamp_events.py, committed to its SQLite outbox by Store) delivered by its relay to `central ingest`
as a process, and the codes then answered by `central serve`'s app at `/tem/{code}`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from central import masterdata
from central.web import WebSettings, create_app
from station.domain import Batch, Product
from station.line.events import StationIdentity
from station.line.stamp_events import code_activation_event, code_void_event
from station.relay import RelaySettings, Topics
from station.rolls import CodeRules, parse_manifest
from station.store import CodeActivation, Store
from tests.central.conftest import GTIN, READ_POINT, query
from tests.central.test_cli import Ingest, RelayStation, ingests  # noqa: F401  (ingests: a fixture)
from tests.central.test_web import HOST, MASTER, NOW, verdict_of, visible
from tests.integration.mqtt_fixtures import unique, wait_until

pytestmark = pytest.mark.integration

OPAQUE_EPC = "https://{resolver}/tem/{code}"  # station.config's preprinted.opaque_epc default
IDENTITY = StationIdentity(site="hue-01", station="line-1", resolver="truyxuat.hue.example.vn", read_point=READ_POINT)


def fill_roll_outbox(path: Path, folder: Path) -> tuple[list[str], list[str]]:
    """A roll HUE0000001…HUE0000010 registered, 1…8 activated into lot MX2611A, 9 and 10 voided unused (the
    station's own events, in its outbox)."""
    manifest = folder / "roll.yaml"
    manifest.write_text(f'roll: HUE-MX-2026-0001\nproduct: "{GTIN}"\nsequence:\n  pattern: "HUE{{n:07d}}"\n'
                        "  first: 1\n  last: 10\n", encoding="utf-8")
    with Store(path) as store:
        store.sync_products([Product(GTIN, "Mè xừng Thông Hương 250g", "Cơ sở Thông Hương", shelf_life_days=180)])
        store.register_roll(parse_manifest(manifest, CodeRules(shapes=(("hue", "HUE[0-9]{7}"),))))
        batch = store.create_batch(Batch(None, GTIN, "MX2611A", dt.date(2026, 11, 29), dt.date(2027, 5, 28)))
        activated, voided = [], []
        for n in range(1, 9):
            code = store.find_code(f"HUE{n:07d}")
            assert code is not None and batch.id is not None
            event = code_activation_event(code, batch, IDENTITY, OPAQUE_EPC)
            (outcome,) = store.commit_preprinted([CodeActivation(
                code_id=code.id, code=code.code, batch_id=batch.id, gtin=batch.gtin, serial=code.code, event=event,
                roll_pk=code.roll_pk)])
            assert outcome.stamp is not None
            activated.append(code.code)
        for n in (9, 10):
            code = store.find_code(f"HUE{n:07d}")
            assert code is not None
            store.void_code(code.code, "damaged", event=code_void_event(code, "damaged", "rách khi dán", IDENTITY,
                                                                        OPAQUE_EPC))
            voided.append(code.code)
    return activated, voided


def test_a_roll_of_opaque_codes_goes_from_the_station_outbox_through_ingest_to_its_trace_pages(
    broker_url: str, pg_url: str, engine: Engine, prefix: str, tmp_path: Path, ingests: list[Ingest]  # noqa: F811
) -> None:
    activated, voided = fill_roll_outbox(tmp_path / "station.db", tmp_path)
    ingest = Ingest("--db", pg_url, "--broker", broker_url, "--prefix", prefix, "--group", unique("ingest"),
                    "--client-id", unique("central"), "--session-expiry", "0")
    ingests.append(ingest)
    ingest.wait_for("subscribed to $share/")
    station = RelayStation(broker_url, tmp_path / "station.db", Topics.for_station(prefix, "hue-01", "line-1"),
                           RelaySettings(retry_initial_s=0.2, retry_max_s=1.0, status_interval_s=1.0))
    try:
        assert wait_until(lambda: station.confirmed() == 10, timeout=60), (
            station.store.outbox_counts(), "".join(ingest.output)[-3000:])
    finally:
        station.stop()
    assert query(pg_url, "SELECT count(*) FROM quarantine") == [(0,)]
    assert query(pg_url, "SELECT code, gtin, lot, roll, activated_at IS NOT NULL, void_reason FROM stamps "
                         "ORDER BY code") == (
        [(c, GTIN, "MX2611A", "HUE-MX-2026-0001", True, None) for c in activated]
        + [(c, GTIN, None, "HUE-MX-2026-0001", False, "damaged") for c in voided])

    masterdata.load(engine, MASTER)
    with TestClient(create_app(engine, WebSettings(public_url=HOST), clock=lambda: NOW)) as client:
        genuine = client.get("http://127.0.0.1:8080/tem/HUE0000003")
        assert genuine.status_code == 200 and verdict_of(genuine.text) == "genuine"
        page = visible(genuine.text)
        assert "Mè xừng Thông Hương 250g" in page and "MX2611A" in page and "28/05/2027" in page
        assert "https://truyxuat.hue.example.vn/tem/HUE0000003" in page and "đã kiểm tra 1 lần" in page
        gone = client.get("/tem/HUE0000010?lang=en")
        assert gone.status_code == 410 and "damaged" in visible(gone.text)
        assert client.get("/tem/HUE0000011").status_code == 404
        linkset = client.get("/tem/HUE0000003", headers={"Accept": "application/linkset+json"}).json()
        assert linkset["linkset"][0]["anchor"] == "https://truyxuat.hue.example.vn/tem/HUE0000003"
    assert ingest.stop() == 0
