"""The simulated line's central service: the real `central ingest` and `central serve` on a local SQLite file, as
child processes (app/ never imports central/: the two deployables share only contracts/), and the trace pages of the
stamps the demo activates.

`start` runs ingest, waits for its subscription (it has migrated the database by then), loads the master data the
trace page shows (producers and products from the station's product list: `central load`), then starts serve and
waits until it answers. Each child dies with the process that started it (app/children.py); their logs go to files
beside the database.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from app.children import die_with_parent
from station.domain import Product

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
START_TIMEOUT_S = 30.0


class CentralStartError(Exception):
    """`central ingest` or `central serve` did not come up; the message says which and ends with its log."""


def producer_id(product: Product) -> str:
    """The producer's id at the central service: the product list's `producer_id` where it has one, else the
    producer's name in lower-case ASCII words joined by '-', as the station names it when it publishes a batch."""
    configured = getattr(product, "producer_id", "")
    if configured:
        return str(configured)
    plain = unicodedata.normalize("NFKD", product.producer.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:100] or product.gtin


def _text(product: Product, name: str) -> str | None:
    value = str(getattr(product, name, "") or "").strip()
    return value or None


def masterdata(products: Sequence[Product]) -> dict[str, Any]:
    """`central load`'s input for the station's products: each producer and product, with what the product list
    says of them and nothing more (a product's region is not its producer's address: what is not there the page
    marks missing). Batches and their diaries are not known before a batch opens: the station publishes them."""
    producers: dict[str, dict[str, Any]] = {}
    for product in products:
        key = producer_id(product)
        producers.setdefault(key, {"id": key, "name": product.producer,
                                   "address": _text(product, "producer_address"),
                                   "phone": _text(product, "producer_phone")})
    return {
        "producers": list(producers.values()),
        "products": [{"gtin": p.gtin, "name": p.name, "producer": producer_id(p), "shelf_life_days": p.shelf_life_days,
                      "standards": _text(p, "standards"), "image_url": _text(p, "image_url")} for p in products],
    }


def sqlite_path(db_url: str) -> Path | None:
    """The file of a `sqlite:///…` URL (relative to the working directory with three slashes), else None."""
    return Path(db_url[len("sqlite:///"):]) if db_url.startswith("sqlite:///") else None


@dataclass
class LocalCentral:
    """The running children and where they answer."""

    db_url: str
    web_url: str                                   # http://127.0.0.1:PORT
    logs: Path
    children: list[subprocess.Popen[Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"database": self.db_url, "trace_base": self.web_url,
                "pids": [c.pid for c in self.children], "logs": str(self.logs)}


def _central(*args: str) -> list[str]:
    return [sys.executable, "-m", "central", *args]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(*, db_url: str, broker_url: str, prefix: str, client_id: str, port: int, products: Sequence[Product],
          send_acks: bool = True, stop_when: Callable[[], bool] = lambda: False) -> LocalCentral:
    """Start ingest and serve (see the module's text); on failure every child started is stopped again.

    Call it from the main thread: a child dies with the thread that started it (PR_SET_PDEATHSIG)."""
    path = sqlite_path(db_url)
    folder = (path.parent if path is not None else Path("var")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / "central-logs"
    logs.mkdir(exist_ok=True)
    central = LocalCentral(db_url, f"http://127.0.0.1:{port}", logs)
    try:
        _start_ingest(central, broker_url, prefix, client_id, send_acks, stop_when)
        _load(central, products)
        _start_serve(central, port, stop_when)
    except BaseException:
        stop(central)
        raise
    return central


def _start_ingest(central: LocalCentral, broker_url: str, prefix: str, client_id: str, send_acks: bool,
                  stop_when: Callable[[], bool]) -> None:
    log_path = central.logs / "ingest.log"
    with log_path.open("w", encoding="utf-8") as err:
        child = subprocess.Popen(
            _central("ingest", "--db", central.db_url, "--broker", broker_url, "--prefix", prefix,
                     "--client-id", client_id, *(() if send_acks else ("--no-ack",))),
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, preexec_fn=die_with_parent())
    central.children.append(child)
    assert child.stdout is not None
    # It prints one line once subscribed (the database migrated by then); nothing else goes to its stdout.
    ready = threading.Event()

    def watch(out: TextIO) -> None:
        for line in out:
            if " subscribed to " in line:
                ready.set()
        out.close()

    threading.Thread(target=watch, args=(child.stdout,), name="central-ingest-stdout", daemon=True).start()
    _wait(lambda: ready.is_set(), child, "central ingest", log_path, stop_when)


def _load(central: LocalCentral, products: Sequence[Product]) -> None:
    data = central.logs.parent / "central-masterdata.json"
    data.write_text(json.dumps(masterdata(products), ensure_ascii=False, indent=1), encoding="utf-8")
    done = subprocess.run(_central("load", "--db", central.db_url, str(data)), capture_output=True, text=True,
                          timeout=START_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise CentralStartError(f"central load {data} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")


def _start_serve(central: LocalCentral, port: int, stop_when: Callable[[], bool]) -> None:
    log_path = central.logs / "serve.log"
    with log_path.open("w", encoding="utf-8") as err:
        child = subprocess.Popen(
            _central("serve", "--db", central.db_url, "--host", "127.0.0.1", "--port", str(port), "--no-migrate"),
            stdout=err, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent())
    central.children.append(child)

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line for each poll of /healthz

    def answers() -> bool:
        try:
            return httpx.get(f"{central.web_url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    _wait(answers, child, "central serve", log_path, stop_when)


def _wait(ready: Callable[[], bool], child: subprocess.Popen[Any], what: str, log_path: Path,
          stop_when: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if child.poll() is not None:
            tail = _tail(log_path)
            hint = ("\n(the central service's packages are missing: scripts/setup.sh ui,demo installs them, as "
                    "make run does)" if "ModuleNotFoundError" in tail else "")
            raise CentralStartError(f"{what} exited with code {child.returncode} before it was ready; its log "
                                    f"({log_path}) ends:\n{tail}{hint}")
        if stop_when():
            raise CentralStartError(f"stopped while {what} started")
        if time.monotonic() > deadline:
            raise CentralStartError(f"{what} was not ready within {START_TIMEOUT_S:g} s; its log ({log_path}) "
                                    f"ends:\n{_tail(log_path)}")
        time.sleep(0.1)


def stop(central: LocalCentral, timeout: float = 10.0) -> None:
    """SIGTERM to serve, then ingest (it finishes its batch); SIGKILL to what has not ended within `timeout`."""
    for child in reversed(central.children):
        if child.poll() is None:
            child.terminate()
    for child in reversed(central.children):
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
    central.children.clear()


def trace_url(stamp_uri: str, resolver: str, web_url: str) -> str:
    """The printed Digital Link with the resolver's host (and path) replaced by the local server."""
    for scheme in ("https://", "http://"):
        base = f"{scheme}{resolver.rstrip('/')}"
        if stamp_uri.startswith(base):
            return web_url + stamp_uri[len(base):]
    return stamp_uri


class TraceAnnouncer:
    """Prints the local trace page of the stamps the central service confirmed, read from the station's database
    (read-only): the first one at once, then every `every_s` how many more and the latest."""

    QUERY = ("SELECT s.id, s.uri FROM stamps s JOIN outbox o ON o.stamp_id = s.id AND o.kind = 'activation' "
             "WHERE s.state = 'activated' AND o.state = 'confirmed' AND s.id > ? ORDER BY s.id")

    def __init__(self, station_db: Path, resolver: str, web_url: str, *, every_s: float = 2.0,
                 out: Callable[[str], None] = lambda text: print(text, flush=True)) -> None:
        self.station_db, self.resolver, self.web_url = station_db, resolver, web_url
        self.every_s, self._out = every_s, out
        self._last_id = 0
        self.announced = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trace-announcer", daemon=True)

    def start(self) -> TraceAnnouncer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _confirmed(self) -> list[tuple[int, str]]:
        if not self.station_db.exists():
            return []
        try:
            with sqlite3.connect(f"file:{self.station_db}?mode=ro", uri=True, timeout=5) as conn:
                return conn.execute(self.QUERY, (self._last_id,)).fetchall()
        except sqlite3.Error:
            return []          # not made yet, or being migrated: next time

    def _run(self) -> None:
        while not self._stop.wait(0.5 if self.announced == 0 else self.every_s):
            rows = self._confirmed()
            if not rows:
                continue
            self._last_id = rows[-1][0]
            url = trace_url(rows[-1][1], self.resolver, self.web_url)
            if self.announced == 0:
                self._out(f"trace page of the first stamp the central service confirmed (open it): "
                          f"{trace_url(rows[0][1], self.resolver, self.web_url)}")
                if len(rows) > 1:
                    self._out(f"trace page: {len(rows) - 1} more stamps confirmed, the latest {url}")
            else:
                self._out(f"trace page: {len(rows)} more stamps confirmed, the latest {url}")
            self.announced += len(rows)


__all__ = ["CentralStartError", "LocalCentral", "TraceAnnouncer", "masterdata", "producer_id", "start", "stop",
           "trace_url", "DEFAULT_PORT"]
