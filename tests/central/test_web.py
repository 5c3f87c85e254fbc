"""`central serve` through FastAPI's TestClient on a real PostgreSQL: every Digital Link form, every verdict."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from central import masterdata
from central.db import batches
from central.store import prepare, store
from central.web import WebSettings, create_app
from contracts import epcis
from tests.central.conftest import GTIN, activation, payload, void

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.timezone.utc)  # 09:00 in Huế
HOST = "https://truyxuat.hue.example.vn"
MASTER: dict[str, Any] = {
    "producers": [{"id": "thong-huong", "name": "Cơ sở sản xuất Mè xừng Thông Hương",
                   "address": "15 Chi Lăng, TP Huế, Thừa Thiên Huế"}],
    "products": [{"gtin": GTIN, "name": "Mè xừng Thông Hương 250g", "producer": "thong-huong",
                  "image_url": "https://truyxuat.hue.example.vn/img/me-xung.jpg", "shelf_life_days": 180,
                  "standards": "TCVN 4067:1985"}],
    "batches": [{"gtin": GTIN, "lot": "MX2611A", "batch_id": "7", "production_date": "2026-11-29",
                 "expiry": "2027-05-28", "standards": "TCVN 4067:1985; OCOP 4 sao",
                 "diary": [
                     {"stage": "raw_material", "biz_step": "receiving", "place": "HTX Phú Mậu (mè đen)",
                      "at": "2026-11-20T07:00:00+07:00"},
                     {"stage": "processing", "place": "Xưởng Thông Hương, Chi Lăng",
                      "at": "2026-11-28T06:30:00+07:00", "detail": "Nấu mạch nha, trộn mè"},
                     {"stage": "packing", "biz_step": "packing", "place": "Xưởng Thông Hương, dây chuyền 1",
                      "at": "2026-11-29T08:00:00+07:00"},
                 ]}],
}


def ingest(engine: Engine, *events: dict[str, Any], station: str = "line-1") -> None:
    prepared = prepare(f"truyxuat/hue-01/{station}/events", payload(*events), "truyxuat", NOW)
    assert not prepared.rejected, prepared.rejection
    store(engine, [prepared])


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    masterdata.load(engine, MASTER)
    ingest(engine, activation("A7K2Q9"), activation("B2C3D4"), activation("V0ID01"))
    ingest(engine, void("V0ID01", "verify_mismatch"))
    return engine


@pytest.fixture
def client(seeded: Engine) -> Iterator[TestClient]:
    settings = WebSettings(public_url=HOST, copy_threshold=4, copy_places=3)
    with TestClient(create_app(seeded, settings, clock=lambda: NOW), raise_server_exceptions=False) as made:
        yield made


def verdict_of(body: str) -> str:
    match = re.search(r'data-verdict="([a-z_-]+)"', body)
    assert match, body[:500]
    return match.group(1)


def visible(body: str) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded, spaces folded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", "", body, flags=re.S))).split())


@pytest.mark.parametrize("path", [
    "/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528",
    "/01/08938603001013/10/MX2611A/21/A7K2Q9",
    "/01/08938603001013/21/A7K2Q9",
    "/01/8938603001013/21/A7K2Q9",   # the GTIN-13 a phone app may shorten it to
])
def test_every_digital_link_form_of_an_active_stamp_shows_it_genuine(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == "vi"
    assert verdict_of(response.text) == "genuine"
    page = visible(response.text)
    assert "Tem chính hãng, đang hiệu lực" in page
    for shown in ("Mè xừng Thông Hương 250g", "Cơ sở sản xuất Mè xừng Thông Hương", "15 Chi Lăng, TP Huế",
                  "MX2611A", "29/11/2026", "28/05/2027", "180 ngày", "TCVN 4067:1985; OCOP 4 sao",
                  "https://id.gs1.org/01/08938603001013/21/A7K2Q9", "08:30 29/11/2026",
                  "cơ sở hue-01, dây chuyền line-1"):
        assert shown in page, shown
    assert '<img class="product" src="https://truyxuat.hue.example.vn/img/me-xung.jpg"' in response.text
    stages = re.findall(r'<span class="stage">([^<]+)</span>', response.text)
    assert stages == ["Nguyên liệu", "Chế biến", "Đóng gói"]
    assert page.index("HTX Phú Mậu") < page.index("Nấu mạch nha") < page.index("dây chuyền 1")
    assert "07:00 20/11/2026" in page
    assert "Chưa có dữ liệu" not in page


def test_the_english_switch_keeps_the_link_and_translates_the_page(client: TestClient) -> None:
    vi = client.get("/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528")
    assert 'href="/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528&amp;lang=en"' in vi.text
    en = client.get("/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528&lang=en")
    assert en.status_code == 200
    assert en.headers["content-language"] == "en"
    page = visible(en.text)
    assert "Genuine stamp, active" in page and "Production diary" in page and "180 days" in page
    assert "29 Nov 2026, 08:30" in page
    assert 'href="/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528"' in en.text
    assert '<html lang="en">' in en.text


def test_a_voided_stamp_is_410_and_says_do_not_buy(client: TestClient) -> None:
    response = client.get("/01/08938603001013/10/MX2611A/21/V0ID01?lang=en")
    assert response.status_code == 410
    assert verdict_of(response.text) == "voided"
    page = visible(response.text)
    assert "This stamp was cancelled — do not buy" in page
    assert "verify_mismatch" in page and "29 Nov 2026, 08:31" in page


def test_a_stamp_never_issued_is_404_possibly_counterfeit(client: TestClient) -> None:
    response = client.get("/01/08938603001013/10/MX2611A/21/NOPE42")
    assert response.status_code == 404
    assert verdict_of(response.text) == "unknown"
    assert "có thể là hàng giả" in visible(response.text)
    assert "Mè xừng" not in response.text  # nothing of a real product is shown for a code nobody issued


@pytest.mark.parametrize(("path", "detail"), [
    ("/01/08938603001013/10/MX9999Z/21/A7K2Q9", "The lot printed in the code differs"),
    ("/01/08938603001013/10/MX2611A/21/A7K2Q9?17=281231", "The expiry printed in the code differs"),
])
def test_printed_details_that_disagree_with_the_stamp_are_a_fake(client: TestClient, path: str, detail: str) -> None:
    response = client.get(path + ("&" if "?" in path else "?") + "lang=en")
    assert response.status_code == 404
    assert verdict_of(response.text) == "mismatch"
    assert detail in visible(response.text)


@pytest.mark.parametrize(("status", "words"), [("recalled", "This batch has been recalled — do not use"),
                                              ("on_hold", "This batch is on hold")])
def test_a_recalled_or_held_batch_says_so_with_its_reason(seeded: Engine, client: TestClient, status: str,
                                                          words: str) -> None:
    with seeded.begin() as conn:
        conn.execute(update(batches).values(status=status, status_reason="Vượt ngưỡng độ ẩm"))
    response = client.get("/01/08938603001013/21/A7K2Q9?lang=en")
    assert response.status_code == 200
    assert verdict_of(response.text) == status
    assert words in visible(response.text) and "Reason: Vượt ngưỡng độ ẩm" in visible(response.text)


def test_each_check_is_counted_and_a_stamp_checked_too_often_is_called_a_copy(client: TestClient) -> None:
    path = "/01/08938603001013/21/B2C3D4"
    first = visible(client.get(path).text)
    assert "Kiểm tra lần đầu lúc 09:00 03/12/2026, đã kiểm tra 1 lần" in first
    assert "sao chép" not in first
    for _ in range(2):
        client.get(path)
    third = visible(client.get(path + "?lang=en").text)
    assert "First checked on 03 Dec 2026, 09:00, checked 4 times" in third
    assert "Warning: this stamp has been checked 4 times. A real stamp is on one product only" in third
    assert "this is very likely a copied stamp" in third  # copy_threshold=4, all from one network
    other = visible(client.get("/01/08938603001013/21/A7K2Q9").text)
    assert "đã kiểm tra 1 lần" in other  # counted per stamp
    assert client.head(path).status_code == 200
    assert "checked 5 times" in visible(client.get(path + "?lang=en").text)  # the HEAD counted nothing


def test_every_circular_02_field_the_data_lacks_is_marked_missing(engine: Engine) -> None:
    ingest(engine, activation("N0DATA", lot="L1", expiry=None))
    with TestClient(create_app(engine, WebSettings(), clock=lambda: NOW)) as client:
        response = client.get("/01/08938603001013/21/N0DATA?lang=en")
    assert response.status_code == 200
    body = response.text
    rows = dict(re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", body))
    missing = '<span class="missing">Missing — the producer must supply it</span>'
    for field in ("Product name", "Image", "Producer", "Address", "Production date", "Expiry date", "Shelf life",
                  "Applied standards"):
        assert rows[field] == missing, field
    assert rows["Lot"] == "L1"
    assert "No production diary yet — the producer must supply it" in body


def test_names_with_markup_quotes_and_vietnamese_appear_literally(engine: Engine) -> None:
    evil = '<script>alert("x")</script> Mè xừng "Thông Hương" & <b>Co</b>'
    masterdata.load(engine, {"producers": [{"id": "p", "name": "Cơ sở <img src=x onerror=alert(1)>",
                                            "address": "Huế' OR 1=1"}],
                             "products": [{"gtin": GTIN, "name": evil, "producer": "p"}]})
    ingest(engine, activation("XSS001"))
    with TestClient(create_app(engine, WebSettings(), clock=lambda: NOW)) as client:
        body = client.get("/01/08938603001013/21/XSS001").text
    assert "<script>" not in body and "<img src=x" not in body and "<b>Co</b>" not in body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Mè xừng &#34;Thông Hương&#34; &amp; &lt;b&gt;Co&lt;/b&gt;" in body
    assert evil in visible(body)
    assert "Huế' OR 1=1" in visible(body)


def test_machines_get_an_rfc_9264_linkset(client: TestClient) -> None:
    response = client.get("/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528",
                          headers={"Accept": "application/linkset+json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/linkset+json"
    (context,) = response.json()["linkset"]
    assert context["anchor"] == "https://id.gs1.org/01/08938603001013/21/A7K2Q9"
    pip = context["https://gs1.org/voc/pip"]
    assert [(p["href"], p["hreflang"]) for p in pip] == [
        (f"{HOST}/01/08938603001013/21/A7K2Q9", ["vi"]), (f"{HOST}/01/08938603001013/21/A7K2Q9?lang=en", ["en"])]
    assert context["https://gs1.org/voc/epcis"][0]["href"] == (
        f"{HOST}/events?epc=https%3A%2F%2Fid.gs1.org%2F01%2F08938603001013%2F21%2FA7K2Q9")
    assert client.get("/01/08938603001013/21/A7K2Q9?linkType=linkset").json() == response.json()
    assert client.get("/01/08938603001013/21/V0ID01", headers={"Accept": "application/linkset+json"}).status_code == 410
    unknown = client.get("/01/08938603001013/21/NOPE42", headers={"Accept": "application/linkset+json"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    page = client.get("/01/08938603001013/21/A7K2Q9")
    assert 'rel="linkset"' in page.headers["link"]
    # a machine's look is not a consumer's check
    assert "đã kiểm tra 2 lần" in visible(client.get("/01/08938603001013/21/A7K2Q9").text)


def test_events_of_a_stamp_come_back_as_a_valid_epcis_document(client: TestClient) -> None:
    redirect = client.get("/01/08938603001013/21/V0ID01?linkType=gs1:epcis", follow_redirects=False)
    assert redirect.status_code == 307
    response = client.get(redirect.headers["location"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ld+json"
    document = response.json()
    events = epcis.validate_document(document)
    assert [(e["action"], e["bizStep"]) for e in events] == [("ADD", "commissioning"), ("DELETE", "decommissioning")]
    printed = client.get("/events", params={"epc": f"{HOST}/01/08938603001013/10/MX2611A/21/V0ID01"})
    assert printed.json()["epcisBody"] == document["epcisBody"]
    assert client.get("/events", params={"epc": "https://id.gs1.org/01/08938603001013/21/NOPE42"}).status_code == 404


@pytest.mark.parametrize(("path", "reason"), [
    ("/01/08938603001014/21/A7K2Q9", "Invalid GTIN check digit"),
    ("/01/08938603001013/21/A7K2Q9/10/MX2611A", "not a valid GS1 Digital Link"),
    ("/01/08938603001013/21", "not a valid GS1 Digital Link"),
    ("/01/08938603001013/10/MX2611A", "names no single stamp"),
    ("/01/08938603001013/21/A7K2Q9?utm_source=x", "unknown query parameter(s): utm_source"),
    ("/01/08938603001013/21/A7K2Q9?17=271399", "not a valid GS1 Digital Link"),
    ("/01/08938603001013/21/A7K2Q9?lang=fr", "lang='fr'"),
    ("/01/08938603001013/21/A7K2Q9?lang=en&lang=vi", "given twice: lang"),
    ("/01/08938603001013/21/A7K2Q9?linkType=gs1:foo", "linkType='gs1:foo'"),
    ("/events?epc=https://id.gs1.org/01/08938603001013/21/A7K2Q9&limit=5", "unknown query parameter(s): limit"),
    ("/events?epc=urn:epc:id:sgtin:893860.0300101.A7K2Q9", "epc: not a Digital Link"),
    ("/events", "epc is required"),
])
def test_malformed_links_and_unknown_parameters_are_a_clear_400(client: TestClient, path: str, reason: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert reason in html.unescape(response.text), response.text
    assert "Traceback" not in response.text


def test_the_pages_are_small_enough_for_3g(client: TestClient) -> None:
    response = client.get("/01/08938603001013/21/A7K2Q9")
    assert len(response.content) < 12_000  # one round trip's worth, no scripts, no web fonts, CSS inline
    assert "<script" not in response.text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in response.text


def test_crawlers_are_kept_off_the_counted_pages(client: TestClient) -> None:
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response.text == "User-agent: *\nDisallow: /\n"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_checks_from_many_places_make_a_copy_warning_before_the_count_does(seeded: Engine, client: TestClient) -> None:
    from central.db import scans

    epc = "https://id.gs1.org/01/08938603001013/21/A7K2Q9"
    with seeded.begin() as conn:
        conn.execute(scans.insert(), [{"epc": epc, "scanned_at": NOW, "client": f"net{i}", "verdict": "genuine"}
                                      for i in range(2)])
    page = visible(client.get("/01/08938603001013/21/A7K2Q9?lang=en").text)
    # three checks (two stored, this one from the test client, whose address is no IP: no network counted)
    assert "this stamp has been checked 3 times in 2 different places" not in page  # copy_places=3: not yet
    with seeded.begin() as conn:
        conn.execute(scans.insert().values(epc=epc, scanned_at=NOW, client="net2", verdict="genuine"))
    page = visible(client.get("/01/08938603001013/21/A7K2Q9?lang=en").text)
    assert "Warning: this stamp has been checked 5 times in 3 different places." in page


def test_a_client_network_is_hashed_never_kept() -> None:
    from central.trace import client_key

    key = client_key("203.0.113.7", b"secret")
    assert key == client_key("203.0.113.200", b"secret") != client_key("203.0.114.7", b"secret")  # one /24
    assert key is not None and "203" not in key and len(key) == 16
    assert client_key("2001:db8:1:2::5", b"secret") == client_key("2001:db8:1:ffff::1", b"secret")  # one /48
    assert client_key("testclient", b"secret") is None and client_key(None, b"secret") is None


def test_a_batch_context_is_kept_a_few_seconds_and_a_stamp_never(seeded: Engine) -> None:
    from central.db import stamps
    from central.trace import ContextCache, lookup
    from contracts.digital_link import parse

    now = [0.0]
    cache = ContextCache(ttl_s=5.0, clock=lambda: now[0])
    link = parse("https://x/01/08938603001013/21/A7K2Q9")
    with seeded.connect() as conn:
        assert lookup(conn, link, cache).verdict == "genuine"
    with seeded.begin() as conn:
        conn.execute(update(batches).values(status="recalled"))
        conn.execute(update(stamps).where(stamps.c.epc == link.epc).values(voided_at=NOW))
    with seeded.connect() as conn:
        assert lookup(conn, link, cache).verdict == "voided"  # the stamp's own state: at once
        conn.execute(update(stamps).values(voided_at=None))
        assert lookup(conn, link, cache).verdict == "genuine"  # the recall: cached still
        now[0] = 5.1
        assert lookup(conn, link, cache).verdict == "recalled"  # after ttl_s


def test_a_connection_the_database_dropped_is_replaced_not_answered_503(client: TestClient, pg_url: str) -> None:
    from tests.central.conftest import query

    path = "/01/08938603001013/21/A7K2Q9"
    assert client.get(path).status_code == 200
    query(pg_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")  # a restart, as the page sees it
    response = client.get(path)
    assert response.status_code == 200 and "đã kiểm tra 2 lần" in visible(response.text)


def test_the_batch_part_of_the_page_is_shared_by_its_stamps_and_follows_a_correction(seeded: Engine) -> None:
    from central.db import products

    with TestClient(create_app(seeded, WebSettings(), clock=lambda: NOW)) as client:
        one, two = (visible(client.get(f"/01/08938603001013/21/{s}").text) for s in ("A7K2Q9", "B2C3D4"))
        assert "Mè xừng Thông Hương 250g" in one and "Mè xừng Thông Hương 250g" in two
        assert "/21/A7K2Q9" in one and "/21/B2C3D4" in two and "/21/A7K2Q9" not in two  # the stamp's own part
        assert "180 days" in visible(client.get("/01/08938603001013/21/A7K2Q9?lang=en").text)  # per language
    with seeded.begin() as conn:
        conn.execute(update(products).values(name="Mè xừng Thông Hương 500g"))
    with TestClient(create_app(seeded, WebSettings(context_ttl_s=0.0), clock=lambda: NOW)) as client:
        assert "Mè xừng Thông Hương 500g" in visible(client.get("/01/08938603001013/21/A7K2Q9").text)
        with seeded.begin() as conn:
            conn.execute(update(products).values(name="Mè xừng Thông Hương 1kg"))
        assert "Mè xừng Thông Hương 1kg" in visible(client.get("/01/08938603001013/21/B2C3D4").text)


def test_a_database_that_does_not_answer_is_a_503_never_a_stack_trace() -> None:
    from central import db

    with socket_port() as port:
        engine = db.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere")
        with TestClient(create_app(engine, WebSettings()), raise_server_exceptions=False) as client:
            for path in ("/01/08938603001013/21/A7K2Q9", "/tem/HUE0000001", "/events?epc=https://x/tem/HUE1",
                         "/healthz"):
                response = client.get(path)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert "Traceback" not in response.text
            assert client.post("/01/08938603001013/21/A7K2Q9").status_code == 405
        engine.dispose()


def socket_port():  # type: ignore[no-untyped-def]
    """A port nothing listens on (bound, never listening, for the test's length)."""
    import contextlib
    import socket

    @contextlib.contextmanager
    def held():  # type: ignore[no-untyped-def]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            yield sock.getsockname()[1]

    return held()


def test_checks_written_in_batches_are_counted_at_once_and_once_only(seeded: Engine, pg_url: str) -> None:
    from tests.central.conftest import query

    path = "/01/08938603001013/21/B2C3D4"
    with TestClient(create_app(seeded, WebSettings(scan_flush_s=3600), clock=lambda: NOW)) as client:
        checks = client.app.state.checks  # type: ignore[attr-defined]
        assert "đã kiểm tra 1 lần" in visible(client.get(path).text)
        assert "đã kiểm tra 2 lần" in visible(client.get(path).text)
        assert query(pg_url, "SELECT count(*) FROM scans") == [(0,)]  # not written yet, counted all the same
        client.portal.call(checks.flush)  # type: ignore[union-attr]
        assert query(pg_url, "SELECT count(*) FROM scans") == [(2,)]
        assert "đã kiểm tra 3 lần" in visible(client.get(path).text)  # two written, one pending: not four
        client.get("/01/08938603001013/21/NOPE42")
    # the rest written when the server stops
    assert query(pg_url, "SELECT epc, verdict, count(*) FROM scans GROUP BY epc, verdict ORDER BY epc") == [
        ("https://id.gs1.org/01/08938603001013/21/B2C3D4", "genuine", 3),
        ("https://id.gs1.org/01/08938603001013/21/NOPE42", "unknown", 1)]


def test_concurrent_checks_with_flushes_between_them_lose_none_and_count_none_twice(seeded: Engine,
                                                                                    pg_url: str) -> None:
    import asyncio

    import httpx

    from tests.central.conftest import query

    app = create_app(seeded, WebSettings(scan_flush_s=0.001, scan_flush_rows=3), clock=lambda: NOW)
    path = "/01/08938603001013/21/B2C3D4?lang=en"

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            pages = await asyncio.gather(*(client.get(path) for _ in range(40)))
            last = await client.get(path)
        await app.state.checks.close()
        counts = [int(re.search(r"checked (\d+) times", visible(p.text)).group(1)) for p in pages]  # type: ignore[union-attr]
        return [*counts, int(re.search(r"checked (\d+) times", visible(last.text)).group(1))]  # type: ignore[union-attr]

    counts = asyncio.run(run())
    assert max(counts[:-1]) <= 40 and counts[-1] == 41  # every check counted, none twice
    assert query(pg_url, "SELECT count(*), count(DISTINCT client) FROM scans") == [(41, 1)]
