"""CPU per request of `central serve` answering the trace page (issue 10), the figure least sensitive to a shared
machine: the server process's own CPU seconds (/proc/PID/stat, user + system) and those of its PostgreSQL backends,
over a fixed number of requests, divided by that number. Wall-clock rates on 2 shared cores say more about the
neighbours than about the code; CPU per request says what the code costs.

A throwaway database gets `--stamps` activated stamps (as bench/central_trace_bench.py makes them); `central serve`
(one uvicorn process) answers on a free port; a client in this process (threads, keep-alive connections) sends
`--requests` consumer checks of random stamps (each a page rendered and a scan written), then as many `/robots.txt`
(the stack's own cost of a constant response, the baseline). `--profile FILE` runs the server under cProfile.

    .venv/bin/python bench/central_trace_cpu.py [--stamps 20000] [--requests 2000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from central_trace_bench import ADMIN, GTIN, fill, free_port, throwaway_database  # noqa: E402
from conditions import cpu_model, loadavg, version  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, from /proc (readable for PostgreSQL's backends too, as root)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def backends(url: str) -> list[int]:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (name,)).fetchall()
    return [r[0] for r in rows]


def drive(port: int, targets: list[str], concurrency: int) -> tuple[float, dict[int, int]]:
    """Send every target once over `concurrency` keep-alive connections; wall time and status counts."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker(share: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for path in share:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(targets[i::concurrency],)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, statuses


def measure(label: str, port: int, server: int, url: str, targets: list[str], concurrency: int) -> float:
    pg = backends(url)
    before = cpu_seconds(server), {p: cpu_seconds(p) for p in pg}
    load = loadavg()
    wall, statuses = drive(port, targets, concurrency)
    server_cpu = cpu_seconds(server) - before[0]
    pg_now = backends(url)
    pg_cpu = sum(cpu_seconds(p) - before[1].get(p, 0.0) for p in pg_now)
    n = len(targets)
    print(f"{label}: {n:,} requests {statuses} in {wall:.2f} s ({n / wall:,.0f}/s, {concurrency} in flight, load "
          f"{load}); server process CPU {server_cpu * 1e3 / n:.3f} ms/request, its PostgreSQL backends "
          f"({len(pg_now)}) {pg_cpu * 1e3 / n:.3f} ms/request")
    return server_cpu / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stamps", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--profile", help="run the server under cProfile, its stats written here (main thread only)")
    parser.add_argument("--py-spy", help="sample the server with py-spy (on PATH) during the page phase, every "
                                         "thread, its collapsed stacks written here")
    args = parser.parse_args()
    print("central trace page, CPU per request (issue 10)")
    print(f"  machine: {cpu_model()}, {os.cpu_count()} cores, load {loadavg()}")
    print(f"  fastapi {version('fastapi')}, uvicorn {version('uvicorn')}, psycopg {version('psycopg')}")
    with throwaway_database(ADMIN, "central_bench") as url:
        fill(url, args.stamps)
        port = free_port()
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        server = subprocess.Popen(
            [sys.executable, *profile, "-m", "central", "serve", "--db", url, "--port", str(port), "--workers", "1",
             "--no-migrate"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"central serve did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.1)
            rng = random.Random(7)
            page = [f"/01/{GTIN}/10/MX2611A/21/S{rng.randint(1, args.stamps):09d}?17=270528"
                    for _ in range(args.requests)]
            drive(port, page[:300], args.concurrency)  # warm-up: connections, prepared statements, the cache
            spy = None
            if args.py_spy:
                spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--format", "raw", "--gil", "--rate",
                                        "250", "--output", args.py_spy, "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)  # attached before the phase starts (a tool's start-up, not a wait on the server)
            per_page = measure("trace page", port, server.pid, url, page, args.concurrency)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            per_static = measure("/robots.txt", port, server.pid, url, ["/robots.txt"] * args.requests,
                                 args.concurrency)
        finally:
            os.killpg(server.pid, signal.SIGINT if args.profile else signal.SIGTERM)
            server.wait(60)
    print(f"summary: trace page {per_page * 1e3:.3f} ms of server CPU a request, /robots.txt "
          f"{per_static * 1e3:.3f} ms (the page costs {per_page / per_static:.1f}x the constant response)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
