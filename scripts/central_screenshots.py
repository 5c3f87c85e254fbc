"""Screenshots of the trace page for the README: each verdict, Vietnamese and English, at a phone's 390 px.

    .venv/bin/python scripts/central_screenshots.py [--out docs/screenshots] [--full-page]

Fills a throwaway database on the machine's PostgreSQL (127.0.0.1:5432, or CENTRAL_TEST_POSTGRES) with the demo
products' master data and a few stamps, stored through the same code as ingest, serves it with uvicorn on a free
port, and photographs each page in Debian's headless Chromium (Playwright, no browser download). Run it again
whenever the page changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from central import db, masterdata  # noqa: E402
from central.store import prepare, store  # noqa: E402
from central.web import WebSettings, create_app  # noqa: E402
from tests.central.conftest import activation, payload, void  # noqa: E402
from tests.central.test_web import MASTER  # noqa: E402

ADMIN = os.environ.get("CENTRAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PAGES = [
    ("genuine", "/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528"),
    ("voided", "/01/08938603001013/10/MX2611A/21/V0ID01"),
    ("unknown", "/01/08938603001013/21/NOPE42"),
    ("recalled", "/01/08938603001013/10/RC2611/21/RECAL1"),
    ("copied", "/01/08938603001013/10/MX2611A/21/C0PY01"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not the phone's first screen")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"central_shots_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0] + f"/{name}"
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        # No image: the demo has none to show, and the page marks it missing for the producer.
        masterdata.load(engine, {**MASTER, "products": [{**MASTER["products"][0], "image_url": None}]})
        masterdata.load(engine, {"batches": [{"gtin": "08938603001013", "lot": "RC2611", "status": "recalled",
                                              "status_reason": "Phát hiện nấm mốc ở lô này", "production_date":
                                              "2026-11-02", "expiry": "2027-05-01"}]})
        now = dt.datetime.now(dt.timezone.utc)
        for body in (payload(activation("A7K2Q9"), activation("V0ID01"), activation("C0PY01"),
                             activation("RECAL1", lot="RC2611", expiry="2027-05-01")),
                     payload(void("V0ID01", "verify_mismatch"))):
            store(engine, [prepare("truyxuat/hue-01/line-1/events", body, "truyxuat", now)])
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(engine, WebSettings(copy_threshold=20)), host="127.0.0.1",
                                               port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            for _ in range(40):
                page.request.get(base + PAGES[-1][1])  # the copied stamp, checked all over town
            for verdict, path in PAGES:
                for lang in ("vi", "en"):
                    target = base + path + ("&" if "?" in path else "?") + "lang=en" if lang == "en" else base + path
                    page.goto(target)
                    shot = args.out / f"trace-{verdict}-{lang}.png"
                    page.screenshot(path=str(shot), full_page=args.full_page)
                    print(shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot)
            browser.close()
        server.should_exit = True
        thread.join(10)
    finally:
        engine.dispose()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
