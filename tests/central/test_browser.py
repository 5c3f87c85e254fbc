"""The trace page in a real browser: Debian's headless Chromium (driven by Playwright) at a phone's width.

Each verdict in both languages, through a real uvicorn server on a free port: the verdict heading is what a
shopper reads first, nothing is wider than the phone, and the language switch works by tapping it.
Screenshots land in the test's tmp_path (scripts/central_screenshots.py writes the README's).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from central import masterdata
from central.web import WebSettings, create_app
from tests.central.conftest import activation, void
from tests.central.test_web import MASTER, ingest
from tests.integration.mqtt_fixtures import free_port, wait_until

playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[central]' for the browser tests")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.integration


@pytest.fixture
def server(engine: Engine) -> Iterator[str]:
    masterdata.load(engine, MASTER)
    masterdata.load(engine, {"batches": [{"gtin": MASTER["products"][0]["gtin"], "lot": "RC2611", "status": "recalled",
                                          "status_reason": "Phát hiện nấm mốc"}]})
    ingest(engine, activation("A7K2Q9"), activation("V0ID01"), activation("RECAL1", lot="RC2611"))
    ingest(engine, void("V0ID01", "verify_mismatch"))
    port = free_port()
    config = uvicorn.Config(create_app(engine, WebSettings(public_url=f"http://127.0.0.1:{port}")),
                            host="127.0.0.1", port=port, log_level="warning", access_log=False)
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, name="uvicorn-test", daemon=True)
    thread.start()
    assert wait_until(lambda: web.started, timeout=10)
    yield f"http://127.0.0.1:{port}"
    web.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh test installs it)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


CASES = [
    ("/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528", 200, "genuine",
     "Tem chính hãng, đang hiệu lực", "Genuine stamp, active"),
    ("/01/08938603001013/10/MX2611A/21/V0ID01", 410, "voided",
     "Tem đã bị hủy — đừng mua sản phẩm này", "This stamp was cancelled — do not buy"),
    ("/01/08938603001013/21/NOPE42", 404, "unknown",
     "Không tìm thấy tem — có thể là hàng giả", "Stamp not found — possibly counterfeit"),
    ("/01/08938603001013/10/RC2611/21/RECAL1", 200, "recalled",
     "Lô hàng đã bị thu hồi — đừng sử dụng", "This batch has been recalled — do not use"),
]


@pytest.mark.parametrize(("path", "status", "verdict", "vi", "en"), CASES, ids=[c[2] for c in CASES])
def test_each_verdict_reads_right_in_both_languages_at_phone_width(
    server: str, browser: object, tmp_path: Path, path: str, status: int, verdict: str, vi: str, en: str
) -> None:
    page = browser.new_page(viewport=PHONE, device_scale_factor=2)  # type: ignore[attr-defined]
    try:
        response = page.goto(server + path)
        assert response is not None and response.status == status
        heading = page.locator("#verdict h2")
        assert heading.inner_text() == vi
        assert page.locator("#verdict").get_attribute("data-verdict") == verdict
        assert page.evaluate("document.documentElement.lang") == "vi"
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
        box = heading.bounding_box()
        assert box is not None and box["y"] < 200  # the verdict is the first thing on the screen
        page.screenshot(path=str(tmp_path / f"{verdict}-vi.png"), full_page=True)

        page.get_by_text("English", exact=True).click()
        page.wait_for_load_state()
        assert page.locator("#verdict h2").inner_text() == en
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(tmp_path / f"{verdict}-en.png"), full_page=True)
        page.get_by_text("Tiếng Việt", exact=True).click()
        page.wait_for_load_state()
        assert page.locator("#verdict h2").inner_text() == vi
    finally:
        page.close()


def test_a_copied_stamp_warning_and_the_scan_count_show_in_the_browser(server: str, browser: object) -> None:
    page = browser.new_page(viewport=PHONE)  # type: ignore[attr-defined]
    try:
        for _ in range(50):
            page.request.get(server + "/01/08938603001013/21/A7K2Q9")
        page.goto(server + "/01/08938603001013/21/A7K2Q9?lang=en")
        assert "checked 51 times" in page.locator("#scans").inner_text()
        assert "very likely a copied stamp" in page.locator("#copy-warning").inner_text()
        assert page.locator("#copy-warning").is_visible()
    finally:
        page.close()
