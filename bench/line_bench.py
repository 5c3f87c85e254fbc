"""Line throughput: items printed, verified, committed and published per second, sustained, on the simulated line.

The simulators (conveyor with photo-eye and reject gate, printer, camera or scanner, central server stand-in) run
in a child process, as separate devices would; the station runs in this one, built from a configuration like any
other. Prints the sustained rate, the station's own CPU per item (what decides whether the station or the
simulators are the bottleneck on this machine) and the conditions. Never fails on a missed target.

    python bench/line_bench.py [--items 5000] [--rate 100] [--verifier camera|scanner]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from conditions import cpu_model  # noqa: E402 (bench/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATE = 100.0  # items/s sustained over 5,000 items (issue 3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each of this process's threads, by Python thread name (from /proc/self/task)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), "other (C library threads)")
        name = name.rstrip("0123456789_").rstrip("-") or name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def control(port: int, command: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(command.encode() + b"\n")
        return conn.recv(4096).decode().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0, help="conveyor items/s (the photo-eye's rate)")
    parser.add_argument("--verifier", choices=["camera", "scanner"], default="camera")
    parser.add_argument("--events-per-message", type=int, default=10)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="line-bench-"))
    ports = {name: free_port() for name in ("printer", "printer_ctl", "scanner_ctl", "camera", "camera_ctl",
                                            "conveyor", "conveyor_ctl")}
    prefix = f"bench{os.getpid()}"
    ready = folder / "ready.json"
    # Labels at 0.7 dots a pixel keep 2.8 px a module; 60 fps and a belt fast enough to space them apart.
    speed = max(3000.0, 380.0 * args.rate)
    sims = [sys.executable, "-m", "app.cli", "sim", "line", "--conveyor", "--conveyor-paused", "--rate", str(args.rate),
            "--printer-port", str(ports["printer"]), "--printer-control-port", str(ports["printer_ctl"]),
            "--scanner-control-port", str(ports["scanner_ctl"]), "--scanner-link", str(folder / "scanner"),
            "--camera-port", str(ports["camera"]), "--camera-control-port", str(ports["camera_ctl"]),
            "--camera-fps", "60", "--camera-speed", str(speed), "--camera-scale", "0.7", "--camera-delay", "0.05",
            "--conveyor-port", str(ports["conveyor"]), "--conveyor-control-port", str(ports["conveyor_ctl"]),
            "--prefix", prefix, "--central-db", f"sqlite:///{folder / 'central.db'}", "--read-delay", "0.02",
            "--ready-file", str(ready), "--no-broker"]
    if args.verifier == "camera":
        sims.append("--camera")
    child = subprocess.Popen(sims, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                print("line_bench: the simulators did not start:", child.stderr.read() if child.stderr else "")
                return 1
            time.sleep(0.1)
        addresses = json.loads(ready.read_text())
        verifier_url = addresses["camera_url"] if args.verifier == "camera" else addresses["scanner_url"]
        os.environ.update({
            "STATION_DEVICES__PRINTER__URL": addresses["printer_url"],
            "STATION_DEVICES__VERIFIER__URL": verifier_url,
            "STATION_DEVICES__LINE_IO__URL": addresses["line_io_url"],
            "STATION_DATABASE__PATH": str(folder / "station.db"),
            "STATION_MQTT__PREFIX": prefix,
            "STATION_MQTT__EVENTS_PER_MESSAGE": str(args.events_per_message),
            "STATION_LINE__TRIGGER": "photo_eye",
            "STATION_LINE__PRINT_AHEAD": "60",
            "STATION_LINE__VERIFY_TIMEOUT_S": "3",
            "STATION_LINE__MAX_CONSECUTIVE_FAILURES": "1000",
            "STATION_LINE__FOREIGN_STAMP": "warn",
        })
        from app.runtime import RunOptions, Station
        from station.config import load_config
        from station.engine import StampDecided

        station = Station(load_config(ROOT / "config" / "station.yaml"), RunOptions(auto_resume=True))
        decided: list[float] = []
        station.engine.add_listener(lambda e: isinstance(e, StampDecided) and e.stamp.state.value == "activated"
                                    and decided.append(time.monotonic()))
        station.start()
        station.line_io.wait_healthy(10)
        batch = station.open_batch(station.product(None), f"B{os.getpid()}")
        load_before = os.getloadavg()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        child_before = child_cpu_seconds(child.pid)
        threads_before = thread_cpu()
        started = time.monotonic()
        station.engine.start(batch.id, args.items)
        control(ports["conveyor_ctl"], "resume")
        finished = station.engine.wait(args.items / max(1.0, args.rate) * 6 + 120)
        run_s = time.monotonic() - started
        control(ports["conveyor_ctl"], "pause")
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        threads_after = thread_cpu()
        child_after = child_cpu_seconds(child.pid)
        drain_started = time.monotonic()
        drained = station.relay.wait_drained(120)
        drain_s = time.monotonic() - drain_started
        summary = station.engine.refresh_delivery()
        status = json.loads(control(ports["conveyor_ctl"], "status"))
        station.stop()

        # Sustained: the rate over the middle 80 % of activations (start-up and the tail left out), and the
        # slowest one-second window inside it.
        rate = windows_min = float("nan")
        if len(decided) >= 10:
            lo, hi = decided[len(decided) // 10], decided[len(decided) * 9 // 10]
            rate = (len(decided) * 8 // 10) / (hi - lo) if hi > lo else float("nan")
            per_second = [sum(1 for t in decided if w <= t < w + 1) for w in
                          [lo + k for k in range(int(hi - lo))]]
            windows_min = min(per_second) if per_second else float("nan")
        station_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        sims_cpu = child_after - child_before
        per_item_ms = 1000 * station_cpu / max(1, summary.printed)
        print("== line throughput (issue 3: >= 100 items/s sustained over 5,000 items) ==")
        print(f"conditions: {cpu_model()}, {os.cpu_count()} cores, load {load_before[0]:.2f} before / "
              f"{os.getloadavg()[0]:.2f} after; Python {platform.python_version()}; verifier {args.verifier}; "
              f"conveyor {args.rate:g} items/s; print_ahead 60; events/message {args.events_per_message}; "
              f"database {folder / 'station.db'} ({'tmpfs' if str(folder).startswith('/dev/shm') else 'disk'}); "
              "simulators in one child process on the same 2 cores")
        print(f"finished: {finished}; activated {summary.activated}/{args.items}; printed {summary.printed}; "
              f"voided {dict(summary.voided)}; reject gate {summary.rejected}; conveyor items {status.get('items')}")
        print(f"sustained rate: {rate:.1f} items/s (slowest 1 s window {windows_min} items); whole run "
              f"{summary.activated / run_s:.1f} items/s over {run_s:.1f} s")
        print(f"delivery: confirmed {summary.confirmed}, waiting {summary.pending}; drained {drained} "
              f"{drain_s:.1f} s after the last item")
        print(f"CPU: station {station_cpu:.1f} s = {per_item_ms:.2f} ms a stamp -> one core would carry "
              f"{1000 / per_item_ms:.0f} stamps/s; simulators {sims_cpu:.1f} s")
        per_thread = sorted(((threads_after.get(k, 0.0) - threads_before.get(k, 0.0), k) for k in threads_after),
                            reverse=True)
        print("station CPU by thread: " + ", ".join(f"{name} {1000 * sec / max(1, summary.printed):.2f} ms"
                                                    for sec, name in per_thread if sec > 0.05) + " (a stamp)")
        verdict = "met" if rate >= TARGET_RATE and summary.activated >= args.items else "NOT met"
        print(f"target >= {TARGET_RATE:g} items/s sustained: {verdict}"
              + ("" if verdict == "met" else f" (station capacity {1000 / per_item_ms:.0f}/s per core; "
                 "see the CPU line for which side is the bottleneck)"))
        return 0
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
