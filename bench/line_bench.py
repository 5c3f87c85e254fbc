"""Line throughput: items printed, verified, committed and published per second, sustained, on the simulated line.

The simulators (conveyor with photo-eye and reject gate, printer, camera or scanner) and the central service
(`central ingest` and `central serve` on a SQLite file) run in child processes, as separate devices would; the station runs in this one, built from a configuration like any
other. Prints the sustained rate, the station's own CPU per item (what decides whether the station or the
simulators are the bottleneck on this machine) and the conditions. Never fails on a missed target.

    python bench/line_bench.py [--items 5000] [--rate 110] [--verifier camera|scanner]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from conditions import cpu_model  # noqa: E402 (bench/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.children import die_with_parent  # noqa: E402
from app.sim import stop_process  # noqa: E402
from tests.integration.mqtt_fixtures import free_port  # noqa: E402

TARGET_RATE = 100.0  # items/s sustained over 5,000 items: the target of README.md, Benchmarks


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (the simulators run the conveyor and the central service apart)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(parents.get(current, []))
    return out


def tree_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each of `pids` so far."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            out[pid] = float("nan")
    return out


def process_name(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"sim" in args:
            return " ".join(a.decode() for a in args[3:5])
        return " ".join(a.decode() for a in args[2:4]) if b"central" in args else args[0].decode()
    except OSError:
        return str(pid)


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
    parser.add_argument("--rate", type=float, default=110.0,
                        help="conveyor items/s, the photo-eye's rate (default 110: a little above the target, so a "
                             "station that keeps up activates >= 100/s even with a few stamps voided)")
    parser.add_argument("--verifier", choices=["camera", "scanner"], default="camera")
    parser.add_argument("--events-per-message", type=int, default=10)
    parser.add_argument("--camera-fps", type=float, default=120.0)
    parser.add_argument("--camera-height", type=int, default=400, help="camera AOI height (width 1280)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="line-bench-"))
    ports = {name: free_port() for name in ("printer", "printer_ctl", "scanner_ctl", "camera", "camera_ctl",
                                            "conveyor", "conveyor_ctl", "central")}
    prefix = f"bench{os.getpid()}"
    ready = folder / "ready.json"
    # Labels at 0.7 px a dot keep 2.8 px a module and are ~370 px long once turned; the belt spaces them 400 px
    # apart. A machine-vision camera's AOI of 1280x400 over the belt at 120 fps shows each whole in 2-3 frames.
    speed = max(3000.0, 400.0 * args.rate)
    sims = [sys.executable, "-m", "app.cli", "sim", "line", "--conveyor", "--conveyor-paused", "--rate", str(args.rate),
            "--printer-port", str(ports["printer"]), "--printer-control-port", str(ports["printer_ctl"]),
            "--scanner-control-port", str(ports["scanner_ctl"]), "--scanner-link", str(folder / "scanner"),
            "--camera-port", str(ports["camera"]), "--camera-control-port", str(ports["camera_ctl"]),
            "--camera-fps", str(args.camera_fps), "--camera-width", "1280", "--camera-height", str(args.camera_height),
            "--camera-speed", str(speed), "--camera-scale", "0.7", "--camera-delay", "0.05", "--camera-mono",
            "--conveyor-port", str(ports["conveyor"]), "--conveyor-control-port", str(ports["conveyor_ctl"]),
            "--prefix", prefix, "--central-db", f"sqlite:///{folder / 'central.db'}", "--read-delay", "0.02",
            "--central-port", str(ports["central"]),
            "--ready-file", str(ready), "--no-broker"]
    if args.verifier == "camera":
        sims.append("--camera")
    child = subprocess.Popen(sims, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, preexec_fn=die_with_parent())
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
        decided: list[float] = []     # activations: printed, verified, committed (and then published)
        every: list[float] = []       # every decision: activations and voids
        def on_event(e: object) -> None:
            if isinstance(e, StampDecided):
                every.append(time.monotonic())
                if e.stamp.state.value == "activated":
                    decided.append(every[-1])
        station.engine.add_listener(on_event)
        station.start()
        station.line_io.wait_healthy(10)
        batch = station.open_batch(station.product(None), f"B{os.getpid()}")
        load_before = os.getloadavg()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        sim_pids = _descendants(child.pid)
        child_before = tree_cpu_seconds(sim_pids)
        threads_before = thread_cpu()
        started = time.monotonic()
        station.engine.start(batch.id, args.items)
        control(ports["conveyor_ctl"], "resume")
        finished = station.engine.wait(args.items / max(1.0, args.rate) * 6 + 120)
        run_s = time.monotonic() - started
        control(ports["conveyor_ctl"], "pause")
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        threads_after = thread_cpu()
        child_after = tree_cpu_seconds(sim_pids)
        drain_started = time.monotonic()
        drained = station.relay.wait_drained(120)
        drain_s = time.monotonic() - drain_started
        summary = station.engine.refresh_delivery()
        status = json.loads(control(ports["conveyor_ctl"], "status"))
        camera_line = ""
        reader = getattr(station.verifier, "reader", None)
        if reader is not None:
            stats = reader.stats()
            sim_counts = json.loads(control(ports["camera_ctl"], "status")).get("counts", {})
            paths = getattr(reader.decoder, "counts", None)
            camera_line = (f"camera: simulator rendered {sim_counts.get('frames')} frames (dropped "
                           f"{sim_counts.get('dropped')} behind its clock), {sim_counts.get('passes')} "
                           f"label passes; station decoded {stats.frames} frames ({stats.skipped} skipped while busy), "
                           f"{stats.hits} with a code, {stats.reads} reads; camera {stats.camera_fps:.1f} fps, decode "
                           f"median {stats.decode_ms_median:.2f} ms, p95 {stats.decode_ms_p95:.2f} ms"
                           + (f"; paths roi {paths.roi_hits}/{paths.roi_decodes}, entry strip "
                              f"{paths.entry_hits}/{paths.entry_decodes}, full {paths.full_hits}/{paths.full_decodes}"
                              if paths is not None else ""))
        station.stop()

        # Sustained: the rate over the middle 80 % of activations (start-up and the tail left out), and the
        # slowest one-second window inside it.
        items_rate = float("nan")
        if len(every) >= 10:
            lo, hi = every[len(every) // 10], every[len(every) * 9 // 10]
            items_rate = (len(every) * 8 // 10) / (hi - lo) if hi > lo else float("nan")
        rate = windows_min = float("nan")
        if len(decided) >= 10:
            lo, hi = decided[len(decided) // 10], decided[len(decided) * 9 // 10]
            rate = (len(decided) * 8 // 10) / (hi - lo) if hi > lo else float("nan")
            per_second = [sum(1 for t in decided if w <= t < w + 1) for w in
                          [lo + k for k in range(int(hi - lo))]]
            windows_min = min(per_second) if per_second else float("nan")
        station_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        sims_cpu_each = {process_name(pid): child_after[pid] - child_before[pid] for pid in sim_pids}
        sims_cpu = sum(sims_cpu_each.values())
        per_item_ms = 1000 * station_cpu / max(1, summary.printed)
        print("== line throughput (target: >= 100 items/s sustained over 5,000 items) ==")
        print(f"conditions: {cpu_model()}, {os.cpu_count()} cores, load {load_before[0]:.2f} before / "
              f"{os.getloadavg()[0]:.2f} after; Python {platform.python_version()}; verifier {args.verifier}; "
              f"conveyor {args.rate:g} items/s; print_ahead 60; events/message {args.events_per_message}; "
              f"database {folder / 'station.db'} ({'tmpfs' if str(folder).startswith('/dev/shm') else 'disk'}); "
              f"camera 1280x{args.camera_height} monochrome at {args.camera_fps:g} fps, belt {speed:g} px/s; "
              "simulators on the same 2 cores: printer + camera in one process, conveyor in one, "
              "central ingest and central serve in one each")
        print(f"finished: {finished}; activated {summary.activated}/{args.items}; printed {summary.printed}; "
              f"voided {dict(summary.voided)}; reject gate {summary.rejected}; conveyor items {status.get('items')}")
        print(f"sustained rate: {rate:.1f} items/s activated (slowest 1 s window {windows_min} items), "
              f"{items_rate:.1f} items/s decided (activated or voided); whole run "
              f"{summary.activated / run_s:.1f} items/s activated over {run_s:.1f} s")
        if camera_line:
            print(camera_line)
        print(f"delivery: confirmed {summary.confirmed}, waiting {summary.pending}; drained {drained} "
              f"{drain_s:.1f} s after the last item")
        print(f"CPU: station {station_cpu:.1f} s = {per_item_ms:.2f} ms a stamp -> one core would carry "
              f"{1000 / per_item_ms:.0f} stamps/s; simulators {sims_cpu:.1f} s ("
              + ", ".join(f"{name} {sec:.1f} s" for name, sec in sims_cpu_each.items()) + ")")
        per_thread = sorted(((threads_after.get(k, 0.0) - threads_before.get(k, 0.0), k) for k in threads_after),
                            reverse=True)
        print("station CPU by thread: " + ", ".join(f"{name} {1000 * sec / max(1, summary.printed):.2f} ms"
                                                    for sec, name in per_thread if sec > 0.05) + " (a stamp)")
        verdict = "met" if rate >= TARGET_RATE and summary.activated >= args.items else "NOT met"
        print(f"summary: line throughput ({args.verifier}) {rate:.1f} items/s activated, sustained over "
              f"{summary.activated} items (slowest second {windows_min}); station CPU {per_item_ms:.2f} ms a stamp "
              f"(target >= {TARGET_RATE:g} items/s): {verdict}")
        print(f"target >= {TARGET_RATE:g} items/s sustained: {verdict}"
              + ("" if verdict == "met" else f" (station capacity {1000 / per_item_ms:.0f}/s per core; "
                 "see the CPU line for which side is the bottleneck)"))
        return 0
    finally:
        stop_process(child)


if __name__ == "__main__":
    sys.exit(main())
