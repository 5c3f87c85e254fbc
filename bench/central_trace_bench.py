"""Trace page benchmark: the page of random stamps among 1,000,000, served by `central serve`.

A throwaway database on the machine's PostgreSQL (or CENTRAL_BENCH_POSTGRES) gets `--stamps` activated stamps
(generated inside PostgreSQL, untimed) with their product, producer, batch and diary; `central serve` (uvicorn,
`--web-workers` processes) answers on a free port. The load generator is its own process (asyncio + httpx, one
keep-alive connection pool), and its CPU is reported, since it shares the 2 cores with the server and PostgreSQL.

  open loop   requests start at `--rate` per second (500) on a fixed schedule for `--duration` seconds, whatever the
              answers do; each latency counts from its scheduled start, so a stall is not hidden by the generator
              waiting (no coordinated omission). Each request is a consumer check: a page rendered and a scan
              written. Target: p99 <= 50 ms.
  saturation  closed loop, `--concurrency` requests in flight, for `--duration` seconds: the trace page, then
              `/robots.txt` (a constant response from the same server: the stack's own limit). Reported: both
              rates and their ratio.

Figures are printed; the exit code says only whether the benchmark itself ran.

    .venv/bin/python bench/central_trace_bench.py [--stamps 1000000] [--rate 500] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from tests.central.throwaway import throwaway_database  # noqa: E402
from tests.integration.mqtt_fixtures import free_port  # noqa: E402

from conditions import cpu_model, loadavg, version  # noqa: E402

ADMIN = os.environ.get("CENTRAL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
GTIN = "08938603001013"
TARGET = "target: p99 <= 50 ms at 500 requests/s open loop"



def fill(url: str, stamps: int) -> float:
    from central import db, masterdata

    engine = db.make_engine(url)
    db.upgrade(engine)
    masterdata.load(engine, {
        "producers": [{"id": "thong-huong", "name": "Cơ sở sản xuất Mè xừng Thông Hương", "address": "TP Huế"}],
        "products": [{"gtin": GTIN, "name": "Mè xừng Thông Hương 250g", "producer": "thong-huong",
                      "shelf_life_days": 180, "standards": "TCVN 4067:1985"}],
        "batches": [{"gtin": GTIN, "lot": "MX2611A", "production_date": "2026-11-29", "expiry": "2027-05-28",
                     "diary": [{"stage": "raw_material", "place": "HTX Phú Mậu", "at": "2026-11-20T07:00:00+07:00"},
                               {"stage": "processing", "place": "Xưởng", "at": "2026-11-28T06:30:00+07:00"},
                               {"stage": "packing", "biz_step": "packing", "place": "Dây chuyền 1",
                                "at": "2026-11-29T08:00:00+07:00"}]}],
    })
    engine.dispose()
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO stamps (epc, gtin, serial, lot, expiry, batch_id, activated_at, activated_offset, "
            "activation_event_id, activated_site, activated_station, read_point, updated_at) "
            "SELECT 'https://id.gs1.org/01/" + GTIN + "/21/S' || lpad(i::text, 9, '0'), %s, "
            "'S' || lpad(i::text, 9, '0'), 'MX2611A', DATE '2027-05-28', '7', "
            "TIMESTAMPTZ '2026-11-29 01:30:00+00' + i * INTERVAL '10 ms', '+07:00', "
            "'urn:uuid:' || md5(i::text)::uuid, 'hue-01', 'line-1', 'https://truyxuat.hue.example.vn/s', now() "
            "FROM generate_series(1, %s) AS i", (GTIN, stamps))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE stamps")
    return time.monotonic() - started


def paths(stamps: int, count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"/01/{GTIN}/10/MX2611A/21/S{rng.randint(1, stamps):09d}?17=270528" for _ in range(count)]


async def _open_loop(base: str, targets: list[str], rate: float) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
        start = time.perf_counter() + 0.2

        async def one(i: int, path: str) -> None:
            nonlocal errors
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await client.get(path)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)

        await asyncio.gather(*(one(i, p) for i, p in enumerate(targets)))
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "statuses": statuses, "errors": errors, "elapsed": elapsed}


async def _closed_loop(base: str, targets: list[str], concurrency: int, duration: float) -> dict:
    import httpx

    done = 0
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10.0) as client:
        end = time.perf_counter() + duration

        async def worker(offset: int) -> None:
            nonlocal done, errors
            i = offset
            while time.perf_counter() < end:
                try:
                    await client.get(targets[i % len(targets)])
                    done += 1
                except httpx.HTTPError:
                    errors += 1
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"requests": done, "errors": errors, "elapsed": elapsed}


def generator(kind: str, base: str, targets: list[str], option: float, duration: float, out: mp.Queue) -> None:
    """The load generator's own process: runs one phase, sends back its figures and its CPU seconds."""
    if kind == "open":
        result = asyncio.run(_open_loop(base, targets, option))
    else:
        result = asyncio.run(_closed_loop(base, targets, int(option), duration))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu"] = usage.ru_utime + usage.ru_stime
    out.put(result)


def run_phase(kind: str, base: str, targets: list[str], option: float, duration: float) -> dict:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    process = ctx.Process(target=generator, args=(kind, base, targets, option, duration, out))
    process.start()
    result = out.get(timeout=duration * 5 + 120)
    process.join(30)
    return result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stamps", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--web-workers", type=int, default=1)
    args = parser.parse_args()
    print("central trace page benchmark")
    print(f"  machine: {cpu_model()}, {os.cpu_count()} cores, load {loadavg()}")
    print(f"  fastapi {version('fastapi')}, uvicorn {version('uvicorn')}, httpx {version('httpx')}, "
          f"psycopg {version('psycopg')}")
    with throwaway_database(ADMIN, "central_bench") as url:
        filled = fill(url, args.stamps)
        print(f"  {args.stamps:,} stamps generated in PostgreSQL in {filled:.1f} s (untimed)")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "central", "serve", "--db", url, "--port", str(port), "--workers",
             str(args.web_workers), "--no-migrate"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"central serve did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.1)
            run_phase("closed", base, paths(args.stamps, 500, seed=1), 8, 2.0)  # warm-up, untimed
            total = int(args.rate * args.duration)
            opened = run_phase("open", base, paths(args.stamps, total), args.rate, args.duration)
            lat = [x * 1000 for x in opened["latencies"]]
            achieved = len(lat) / opened["elapsed"]
            print(f"open loop: {total:,} requests scheduled at {args.rate:g}/s, {len(lat):,} answered "
                  f"({opened['statuses']}), {opened['errors']} errors, achieved {achieved:,.0f}/s; latency ms "
                  f"p50 {percentile(lat, 50):.1f}, p90 {percentile(lat, 90):.1f}, p99 {percentile(lat, 99):.1f}, "
                  f"max {max(lat) if lat else float('nan'):.1f}; load generator CPU {opened['cpu']:.1f} s")
            page = run_phase("closed", base, paths(args.stamps, 5000, seed=2), args.concurrency, args.duration)
            static = run_phase("closed", base, ["/robots.txt"], args.concurrency, args.duration)
            page_rate = page["requests"] / page["elapsed"]
            static_rate = static["requests"] / static["elapsed"]
            print(f"saturation ({args.concurrency} in flight): trace page {page_rate:,.0f}/s (generator CPU "
                  f"{page['cpu']:.1f} s), /robots.txt {static_rate:,.0f}/s (generator CPU {static['cpu']:.1f} s)")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    p99 = percentile(lat, 99)
    met = p99 <= 50 and opened["errors"] == 0 and len(lat) == total
    print(f"summary: trace page p99 {p99:.1f} ms at {args.rate:g} requests/s open loop on {args.stamps:,} stamps "
          f"({TARGET}: {'met' if met else 'not met'}); saturation {page_rate:,.0f}/s vs static {static_rate:,.0f}/s "
          f"= {page_rate / static_rate:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
