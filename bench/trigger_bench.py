"""Trigger benchmark: photo-eye trigger -> first byte of that item's ZPL label on the printer socket.

The station path is the real one: a Store on a temp file, a LineEngine in photo-eye mode
(LineSettings(trigger=PHOTO_EYE)), and PrinterService (stored format, ^XF recall per label) on a tcp:// URL.
The "printer" is a plain TCP server in its own process that answers ~HS / ~HQES as a ready Zebra and records
time.monotonic() (CLOCK_MONOTONIC, one clock for every process on Linux) when the chunk holding each label's ^XA
arrives. It hands each label's QR content (the ^FN1 field, `MA,<uri>`) back, and this process submits it to the
engine as the verification read, so the line verifies, activates, commits and keeps going while it is measured.

A feeder thread submits ItemTrigger(seq, at=time.monotonic()) at a fixed rate (50 and 100 items/s by default);
latency = arrival of the label's first byte - trigger time. Labels map to triggers in order; a trigger the
engine refused (item_without_stamp) has no label and is counted apart.

  baseline   the same socket write (drivers.transport, TCP_NODELAY) of a pre-built ^XF label straight after the
             trigger, no engine: what the socket and the receiving process cost on their own
  ours       trigger -> LineEngine -> PrinterService -> socket

Target (README.md, Benchmarks): p99 <= 2 ms. Figures are printed; the exit code says only whether the benchmark
itself ran.

    .venv/bin/python bench/trigger_bench.py [--items 2000] [--rates 50,100] [--print-ahead 8]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import multiprocessing as mp
import os
import platform
import re
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from conditions import cpu_model, disk_of, loadavg, version  # noqa: E402 (bench/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET = "target: p99 <= 2 ms from trigger to the label's first byte on the printer socket"
GTIN = "08938603001013"
LOT = "MX2611A"
RESOLVER = "truyxuat.hue.example.vn"
SITE, STATION = "hue-01", "line-1"
TEMPLATE = ROOT / "config" / "labels" / "stamp-60x40.zpl"
_FN1 = re.compile(rb"\^FN1\^FH(.)\^FD(.*?)\^FS", re.S)


# -- conditions ----------------------------------------------------------------------------------------------


# -- the printer: a plain TCP server in its own process ------------------------------------------------------


def qr_content(zpl: bytes) -> str | None:
    """The QR's data of a ^XF recall (`^FN1^FH_^FDMA,<uri>^FS`), with the ^FH escapes undone."""
    match = _FN1.search(zpl)
    if match is None:
        return None
    indicator, data = match.group(1), match.group(2)
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i:i + 1] == indicator and i + 3 <= len(data):
            out += bytes.fromhex(data[i + 1:i + 3].decode("ascii"))
            i += 3
        else:
            out += data[i:i + 1]
            i += 1
    text = out.decode("utf-8", "replace")
    return text[3:] if text.startswith("MA,") else text


def printer_main(port_out, labels_out) -> None:  # type: ignore[no-untyped-def]
    """Accept connections; answer ~HS/~HQES as a ready printer; send (first-byte time, QR content) per label."""
    from simulators.printer import PrinterSimulator, ZplStreamParser

    replies = PrinterSimulator(port=0)  # never started: used only for its ~HS / ~HQES replies of a ready printer
    server = socket.create_server(("127.0.0.1", 0))
    port_out.send(server.getsockname()[1])
    send_lock = threading.Lock()

    def serve(conn: socket.socket) -> None:
        parser = ZplStreamParser()
        started_at = 0.0
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                now = time.monotonic()
                if not data:
                    return
                was_partial = parser.partial
                formats = 0
                for event in parser.feed(data):
                    if event[0] == "control":
                        if event[1] == "HS":
                            conn.sendall(replies.host_status(parser.partial))
                        elif event[1] == "HQ":
                            conn.sendall(replies.hqes())
                        continue
                    zpl = bytes(event[1])  # type: ignore[arg-type]
                    first = started_at if (formats == 0 and was_partial) else now
                    formats += 1
                    if b"^DF" in zpl:
                        continue  # the stored format: nothing prints
                    with send_lock:
                        labels_out.send((first, qr_content(zpl)))
                if parser.partial and (formats or not was_partial):
                    started_at = now

    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


@contextlib.contextmanager
def printer_process():
    ctx = mp.get_context("spawn")
    port_recv, port_send = ctx.Pipe(duplex=False)
    labels_recv, labels_send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=printer_main, args=(port_send, labels_send), daemon=True, name="bench-printer")
    process.start()
    try:
        if not port_recv.poll(30):
            raise RuntimeError("the printer process did not start")
        yield port_recv.recv(), labels_recv
    finally:
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


class Arrivals:
    """Reads (time, content) from the printer process; optionally feeds each content back as the verification."""

    def __init__(self, labels_in) -> None:  # type: ignore[no-untyped-def]
        self._in = labels_in
        self._lock = threading.Condition()
        self.times: list[float] = []
        self.feed = None  # callable(content) or None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-arrivals", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._in.poll(0.1):
                    continue
                at, content = self._in.recv()
            except (EOFError, OSError):
                return
            feed = self.feed
            if feed is not None and content:
                feed(content)
            with self._lock:
                self.times.append(at)
                self._lock.notify_all()

    def reset(self) -> None:
        with self._lock:
            self.times = []

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.times) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


# -- feeding triggers --------------------------------------------------------------------------------------------


def feed_triggers(count: int, rate: float, submit) -> list[float]:  # type: ignore[no-untyped-def]
    """Call submit(seq, at) at `rate` per second; returns the trigger times (time.monotonic)."""
    times: list[float] = []
    start = time.monotonic() + 0.05
    for seq in range(count):
        due = start + seq / rate
        while True:
            left = due - time.monotonic()
            if left <= 0:
                break
            time.sleep(left if left > 0.002 else 0)  # sleep, then spin the last 2 ms: triggers on time
        at = time.monotonic()
        times.append(at)
        submit(seq, at)
    return times


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000, help="triggers per rate through the engine")
    parser.add_argument("--baseline-items", type=int, default=1000, help="triggers per rate for the baseline")
    parser.add_argument("--rates", default="50,100", help="items per second, comma-separated")
    parser.add_argument("--print-ahead", type=int, default=8, help="line.print_ahead (stamps in flight)")
    parser.add_argument("--commit-interval-ms", type=float, default=10.0, help="line.commit_interval_ms")
    args = parser.parse_args(argv)
    sys.setswitchinterval(0.001)  # as app.runtime.Station.start() sets it for the station process
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    # The engine logs every alarm (item_without_stamp when it falls behind): counted below, not printed each.
    logging.basicConfig(level=logging.ERROR)

    from app.devices import PrinterService
    from drivers.transport import open_transport
    from station.domain import Batch, Product, Stamp, StampState
    from station.engine import (
        AlarmRaised,
        LineEngine,
        LineSettings,
        LineState,
        StationIdentity,
        TriggerMode,
        label_fields,
    )
    from station.gs1 import digital_link
    from station.ports import ItemTrigger, VerificationRead
    from station.store import Store

    load_before = loadavg()
    rows: list[tuple[str, float, dict[str, float], int, int]] = []
    engine_extra: list[str] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="station-trigger-bench-")))
        port, labels_in = stack.enter_context(printer_process())
        url = f"tcp://127.0.0.1:{port}"
        arrivals = Arrivals(labels_in)
        stack.callback(arrivals.close)

        store = Store(folder / "station.db")
        stack.callback(store.close)
        product = Product(GTIN, "Mè xừng Thông Hương 250g", "Cơ sở sản xuất Mè xừng Thông Hương",
                          "TP Huế, Thừa Thiên Huế", 180)
        store.sync_products([product])
        batch = store.create_batch(Batch(None, GTIN, LOT, dt.date(2026, 11, 29), dt.date(2027, 5, 28)))
        assert batch.id is not None
        printer = PrinterService(url, TEMPLATE, status_interval_s=0.5, status_timeout_s=1.0, stored_format=True)
        printer.start()
        stack.callback(printer.stop)

        # -- baseline: a pre-built ^XF label written to the socket at each trigger, no engine
        sample = Stamp(None, GTIN, "BASELINE01", batch.id, StampState.ALLOCATED,
                       digital_link(RESOLVER, GTIN, LOT, "BASELINE01", batch.expiry_date))
        label = printer.template.recall(label_fields(product, batch, sample))
        transport = open_transport(url)
        transport.open()
        stack.callback(transport.close)
        transport.write(printer.template.stored_format())
        for rate in rates:
            arrivals.feed = None
            arrivals.reset()
            triggered = feed_triggers(args.baseline_items, rate, lambda seq, at: transport.write(label))
            arrivals.wait_for(len(triggered), 10)
            lat = [(a - t) * 1000 for a, t in zip(arrivals.times, triggered)]
            rows.append(("baseline: socket write, no engine", rate, percentiles(lat), len(triggered), 0))

        # -- ours: the engine in photo-eye mode, verification fed back from the printed labels
        identity = StationIdentity(site=SITE, station=STATION, resolver=RESOLVER,
                                   read_point=f"https://{RESOLVER}/station/{SITE}/{STATION}")
        settings = LineSettings(trigger=TriggerMode.PHOTO_EYE, print_ahead=args.print_ahead, verify_timeout_s=3.0,
                                max_consecutive_failures=1_000_000, commit_interval_s=args.commit_interval_ms / 1000)
        engine = LineEngine(store, printer, identity, settings)
        refused: set[int] = set()

        def on_event(event: object) -> None:
            if isinstance(event, AlarmRaised) and event.alarm.code == "item_without_stamp":
                with contextlib.suppress(ValueError, IndexError):
                    refused.add(int(event.alarm.detail.split()[-1]))

        engine.add_listener(on_event)

        def read_back(content: str) -> None:
            engine.submit_read(VerificationRead(text=content, raw=content.encode(), at=time.monotonic(),
                                                source="bench"))

        for rate in rates:
            refused.clear()
            arrivals.reset()
            arrivals.feed = read_back
            engine.start(batch.id)
            commits_before = engine.commits
            deadline = time.monotonic() + 10
            while engine.state is not LineState.RUNNING and time.monotonic() < deadline:
                time.sleep(0.01)
            triggered = feed_triggers(args.items, rate,
                                      lambda seq, at: engine.submit_trigger(ItemTrigger(seq, at)))
            got_all = arrivals.wait_for(len(triggered) - len(refused), 15)
            engine.stop()
            engine.wait(15)
            kept = [t for seq, t in enumerate(triggered) if seq not in refused]
            lat = [(a - t) * 1000 for a, t in zip(arrivals.times, kept)]
            rows.append(("ours: trigger -> engine -> PrinterService", rate, percentiles(lat), len(triggered),
                         len(refused)))
            s = engine.summary
            engine_extra.append(
                f"{rate:g}/s: printed {s.printed}, activated {s.activated}, voided {s.voided_total} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(s.voided.items())) or 'none'}), refused triggers "
                f"{len(refused)}, commits {engine.commits - commits_before}"
                f"{'' if got_all else ', NOT every label arrived'}")
            arrivals.feed = None
        disk = disk_of(folder)
    load_after = loadavg()

    print()
    print("Trigger benchmark — photo-eye trigger to the label's first byte on the printer socket")
    print(f"  machine   {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
          f"load average before {load_before}, after {load_after}")
    print(f"  python    {platform.python_version()}; SQLite {sqlite3.sqlite_version}, SQLAlchemy "
          f"{version('sqlalchemy')}, jsonschema-rs {version('jsonschema-rs')}; GIL switch interval "
          f"{sys.getswitchinterval() * 1000:g} ms")
    print(f"  printer   plain TCP server in its own process on 127.0.0.1 (answers ~HS as a ready Zebra, polled every "
          f"0.5 s); ^DF stored format once, then ^XF recalls of {len(label)} bytes per label")
    print(f"  line      photo-eye mode, print_ahead {args.print_ahead}, commit interval {args.commit_interval_ms:g} ms,"
          f" serial block {settings.serial_block}; each label's QR read back as its verification at once; "
          f"SQLite (WAL, synchronous=FULL) in {folder} on {disk}")
    print(f"  items     {args.items} triggers per rate through the engine, {args.baseline_items} for the baseline; "
          f"rates {', '.join(f'{r:g}' for r in rates)} items/s")
    print(f"  {TARGET}")
    print()
    header = f"{'what':<44}{'rate/s':>7}{'labels':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header)
    print("-" * len(header))
    for what, rate, p, _n, _refused in rows:
        print(f"{what:<44}{rate:>7g}{p['n']:>8}{p['p50']:>9.2f}{p['p95']:>9.2f}{p['p99']:>9.2f}{p['max']:>9.2f}")
    print()
    for line in engine_extra:
        print(f"  engine at {line}")
    print()
    for what, rate, p, _n, _refused in rows:
        if what.startswith("ours"):
            base = next((b for w, r, b, _, _ in rows if w.startswith("baseline") and r == rate), None)
            added = f"; the engine adds {p['p99'] - base['p99']:.2f} ms at p99 over the bare socket" if base else ""
            print(f"summary: trigger -> ZPL p99 at {rate:g} items/s: {p['p99']:.2f} ms (baseline socket write "
                  f"{base['p99'] if base else float('nan'):.2f} ms){added} (target <= 2 ms): "
                  f"{'met' if p['p99'] <= 2.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
