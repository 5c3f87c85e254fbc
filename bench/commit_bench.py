"""Commit benchmark: activation commits (WAL, synchronous=FULL) against plain sqlite3 commits on the same disk.

Rows, each timed over the same number of commits, in one temp folder (so on one disk):

  baseline   plain sqlite3, WAL + synchronous=FULL, one small row per BEGIN IMMEDIATE … COMMIT (run before and
             after ours; the mean of the two is the baseline)
  (a)        Store.activate: one stamp per commit, with its real EPCIS event in the outbox row and its scan
             record, as a line that commits every decision on its own would do
  (b)        Store.commit_line with groups of activations, as the engine's grouped commit does: ~2 per commit at
             100 items/s with a 10 ms commit interval, ~10 per commit at 1,000 items/s
  (c)        engine-shaped: commit_line(printed=g, activations=g, scans) — what a flush of the running line holds
             (the next stamps marked sent to the printer beside the decisions of the earlier ones); shown, not
             part of the target

The stamps are allocated (allocate_stamps) and marked sent to the printer (commit_line(printed=…)) before the
timed part; the events are built with station.epcis.activation_event the way the engine builds them, before the
timed part too (their JSON encoding is inside Store.commit_line, so it is timed). Targets (README.md, Benchmarks):
our commit rate (a) >= 50 % of the baseline's commit rate, and our activation rate (b) >= 50 % of the baseline's
commit rate.
Figures are printed; the exit code says only whether the benchmark itself ran.

    .venv/bin/python bench/commit_bench.py [--commits 1500] [--groups 2,10] [--dir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from station import epcis  # noqa: E402
from station.domain import Batch, Product  # noqa: E402
from station.gs1 import digital_link  # noqa: E402
from station.serials import SerialGenerator  # noqa: E402
from station.store import Activation, ScanRecord, Store  # noqa: E402
from conditions import cpu_model, disk_of, loadavg, version  # noqa: E402 (bench/ is the script's folder)

TARGET = "target: commit rate (a) >= 50 % of plain sqlite3 commits; activation rate (b) >= 50 % of that rate"
GTIN = "08938603001013"
LOT = "MX2611A"
RESOLVER = "truyxuat.hue.example.vn"
SITE, STATION = "hue-01", "line-1"
READ_POINT = f"https://{RESOLVER}/station/{SITE}/{STATION}"
BASELINE_ROW = "x" * 64


# -- conditions ----------------------------------------------------------------------------------------------


# -- the runs ------------------------------------------------------------------------------------------------


def baseline(path: Path, commits: int) -> float:
    """Plain sqlite3: WAL, synchronous=FULL, one small row per transaction; returns commits/s."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, at REAL NOT NULL, v TEXT NOT NULL)")
        for _ in range(20):  # warm-up, untimed
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (at, v) VALUES (?, ?)", (time.time(), BASELINE_ROW))
            conn.execute("COMMIT")
        started = time.perf_counter()
        for _ in range(commits):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (at, v) VALUES (?, ?)", (time.time(), BASELINE_ROW))
            conn.execute("COMMIT")
        return commits / (time.perf_counter() - started)
    finally:
        conn.close()


class Line:
    """A Store with one product and batch, and stamps made ready the way the engine makes them."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.store.sync_products([Product(GTIN, "Mè xừng Thông Hương 250g", "Cơ sở sản xuất Mè xừng Thông Hương",
                                          "TP Huế, Thừa Thiên Huế", 180)])
        self.batch = self.store.create_batch(Batch(None, GTIN, LOT, dt.date(2026, 11, 29), dt.date(2027, 5, 28)))
        self.serials = SerialGenerator(10)
        self.tz = dt.timezone(dt.timedelta(hours=7))

    def allocate(self, count: int, *, printed: bool) -> list:
        batch = self.batch
        assert batch.id is not None
        stamps = []
        while len(stamps) < count:
            block = self.store.allocate_stamps(
                batch.id, min(500, count - len(stamps)), self.serials.next,
                lambda s: digital_link(RESOLVER, GTIN, LOT, s, batch.expiry_date))
            if printed:
                self.store.commit_line(printed=[s.id for s in block])
            stamps.extend(block)
        return stamps

    def activation(self, stamp) -> Activation:
        """What LineEngine._activate hands the store: the event (with the station's extensions) and the scan."""
        event = epcis.activation_event(
            gtin=stamp.gtin, serial=stamp.serial, lot=LOT, expiry=self.batch.expiry_date,
            event_time=dt.datetime.now(self.tz), tz_offset="+07:00", read_point=READ_POINT,
            extensions={f"{epcis.EXT_PREFIX}:site": SITE, f"{epcis.EXT_PREFIX}:station": STATION,
                        f"{epcis.EXT_PREFIX}:batchId": stamp.batch_id,
                        f"{epcis.EXT_PREFIX}:verification": {"result": "matched", "source": "verifier"}},
        )
        scan = ScanRecord("verifier", stamp.uri, stamp.uri.encode() + b"\r\n", "verified", "")
        return Activation(stamp.id, stamp.uri, event, scan)


def run_activate(line: Line, commits: int) -> tuple[float, float]:
    stamps = line.allocate(commits + 10, printed=True)
    work = [line.activation(s) for s in stamps]
    for act in work[:10]:  # warm-up, untimed
        line.store.activate(act.stamp_id, act.read_text, act.event, act.scan)
    started = time.perf_counter()
    for act in work[10:]:
        line.store.activate(act.stamp_id, act.read_text, act.event, act.scan)
    elapsed = time.perf_counter() - started
    return commits / elapsed, commits / elapsed


def run_groups(line: Line, commits: int, group: int, *, engine_shaped: bool = False) -> tuple[float, float]:
    """(commits/s, activations/s) of commit_line with `group` activations per commit."""
    stamps = line.allocate((commits + 2) * group, printed=True)
    work = [line.activation(s) for s in stamps]
    groups = [work[i:i + group] for i in range(0, len(work), group)]
    printed: list[list[int]] = [[] for _ in groups]
    if engine_shaped:
        fresh = line.allocate(len(groups) * group, printed=False)
        printed = [[s.id for s in fresh[i * group:(i + 1) * group]] for i in range(len(groups))]
    for acts, ids in zip(groups[:2], printed[:2]):  # warm-up, untimed
        line.store.commit_line(printed=ids, activations=acts)
    started = time.perf_counter()
    for acts, ids in zip(groups[2:], printed[2:]):
        line.store.commit_line(printed=ids, activations=acts)
    elapsed = time.perf_counter() - started
    return commits / elapsed, commits * group / elapsed


def verdict(ratio: float) -> str:
    return "met" if ratio >= 0.5 else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=1500, help="timed commits per row (default %(default)s)")
    parser.add_argument("--groups", default="2,10", help="activations per commit_line for (b), comma-separated")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files (default: a temp dir)")
    args = parser.parse_args(argv)
    groups = [int(g) for g in args.groups.split(",") if g.strip()]

    load_before = loadavg()
    with tempfile.TemporaryDirectory(prefix="station-commit-bench-", dir=args.dir) as tmp:
        folder = Path(tmp)
        line = Line(folder / "station.db")
        try:
            sample = line.activation(line.allocate(1, printed=True)[0])
            event_bytes = len(json.dumps(sample.event, ensure_ascii=False, separators=(",", ":")).encode())
            base_before = baseline(folder / "plain.db", args.commits)
            rows: list[tuple[str, float, float]] = []
            commit_a, act_a = run_activate(line, args.commits)
            rows.append(("(a) Store.activate, 1 per commit", commit_a, act_a))
            for g in groups:
                c, a = run_groups(line, args.commits, g)
                rows.append((f"(b) commit_line, {g} per commit", c, a))
            c, a = run_groups(line, max(1, args.commits // 2), max(groups or [10]), engine_shaped=True)
            rows.append((f"(c) engine flush: {max(groups or [10])} printed + {max(groups or [10])} activated",
                         c, a))
            base_after = baseline(folder / "plain.db", args.commits)
            journal = line.store.pragma("journal_mode")
            sync = line.store.pragma("synchronous")
        finally:
            line.store.close()
        disk = disk_of(folder)
    load_after = loadavg()
    base = statistics.fmean([base_before, base_after])

    print()
    print("Commit benchmark — activation commits vs plain sqlite3 commits on the same disk")
    print(f"  machine   {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
          f"load average before {load_before}, after {load_after}")
    print(f"  python    {platform.python_version()}; SQLite {sqlite3.sqlite_version}, SQLAlchemy {version('sqlalchemy')}"
          f", alembic {version('alembic')}")
    print(f"  database  {folder} on {disk}; journal_mode={journal}, synchronous={sync} (2 = FULL) for both")
    print(f"  rows      baseline: one {len(BASELINE_ROW) + 16}-byte row per commit; ours: per activation one stamp "
          f"update, one outbox row with a {event_bytes}-byte EPCIS event, one scan row")
    print(f"  commits   {args.commits} timed per row ((c): {max(1, args.commits // 2)}), after a short untimed warm-up")
    print(f"  {TARGET}")
    print()
    header = f"{'what':<44}{'commits/s':>11}{'activations/s':>15}{'vs baseline':>13}"
    print(header)
    print("-" * len(header))
    print(f"{'baseline: plain sqlite3 (before)':<44}{base_before:>11,.0f}{'':>15}{'':>13}")
    print(f"{'baseline: plain sqlite3 (after)':<44}{base_after:>11,.0f}{'':>15}{'':>13}")
    print(f"{'baseline: mean':<44}{base:>11,.0f}{'':>15}{'1.00':>13}")
    for label, c, a in rows:
        print(f"{label:<44}{c:>11,.0f}{a:>15,.0f}{a / base:>13.2f}")
    print()
    ratio_a = rows[0][1] / base
    b_rows = [r for r in rows if r[0].startswith("(b)")]
    print(f"summary: commit rate (a) {rows[0][1]:,.0f}/s vs baseline {base:,.0f}/s = {ratio_a:.0%} "
          f"(target >= 50 %): {verdict(ratio_a)}")
    for label, _c, a in b_rows:
        ratio = a / base
        print(f"summary: activation rate {label} {a:,.0f}/s vs baseline {base:,.0f} commits/s = {ratio:.0%} "
              f"(target >= 50 %): {verdict(ratio)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
