"""Benchmark of the screens: time to a usable window, the longest GUI-thread stall while the simulated line runs
fast, and the memory in use. Prints figures (asserts nothing).

    .venv/bin/python bench/ui_bench.py [--seconds 20] [--target 50] [--print-ahead 8]

Offscreen Qt, the printer/scanner/central simulators in this process (they share its CPUs, as the worst case),
the MQTT broker on 127.0.0.1:1883 (or a private Mosquitto). A 10 ms QTimer heartbeat measures how late the GUI
thread gets to it: that lateness is what an operator feels as a frozen screen.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()   # before Qt and the station are imported: "time to a usable window" starts here

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mib() -> tuple[float, float]:
    """(resident now, peak resident) in MiB, from /proc (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


@contextlib.contextmanager
def sims_process(folder: Path, broker_url: str, overrides: dict):
    """`station sim line` in a child process on free ports; yields (config path, stamp-state reader)."""
    import json
    import sqlite3

    from app.children import die_with_parent
    import subprocess

    from tests.integration.line_harness import write_config
    from tests.integration.mqtt_fixtures import free_port, unique

    prefix, ready = unique("bench"), folder / "ready.json"
    cmd = [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())", "sim", "line",
           "--printer-port", str(free_port()), "--printer-control-port", str(free_port()),
           "--scanner-link", str(folder / "scanner"), "--scanner-control-port", str(free_port()),
           "--read-delay", "0.005", "--broker", broker_url, "--prefix", prefix, "--no-broker",
           "--central-db", f"sqlite:///{folder / 'central.db'}", "--ready-file", str(ready)]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             preexec_fn=die_with_parent())
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("ui_bench: the simulators did not start")
            time.sleep(0.05)
        addresses = json.loads(ready.read_text())
        path = write_config(folder, addresses["printer_url"], addresses["scanner_url"], broker_url, prefix, overrides)

        def stamp_states() -> dict[str, int]:
            with sqlite3.connect(folder / "station.db", timeout=10) as conn:
                return dict(conn.execute("SELECT state, count(*) FROM stamps GROUP BY state").fetchall())

        yield path, stamp_states
    finally:
        child.terminate()
        child.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description="UI benchmark on the simulated line")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the line runs")
    parser.add_argument("--target", type=float, default=50.0, help="items per second to aim at (reported, not forced)")
    parser.add_argument("--print-ahead", type=int, default=8, help="stamps in flight (line.print_ahead)")
    parser.add_argument("--sims", choices=("process", "inprocess"), default="process",
                        help="simulators in their own process (as devices are) or in this one (worst case)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval in seconds (Python's default 0.005), to see GIL contention")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)

    from tests.integration.line_harness import sim_line
    from tests.integration.mqtt_fixtures import MACHINE_BROKER, Broker, listening
    from ui.app import build_window
    from ui.qt import PYQT_VERSION_STR, QT_VERSION_STR, QApplication, QElapsedTimer, QTimer

    t_imported = time.perf_counter()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="station-bench-")))
        if listening(*MACHINE_BROKER):
            broker_url, broker_kind = f"mqtt://{MACHINE_BROKER[0]}:{MACHINE_BROKER[1]}", "machine Mosquitto"
        else:
            broker_url, broker_kind = stack.enter_context(Broker(folder / "broker")).url, "private Mosquitto"
        overrides = {"line.print_ahead": args.print_ahead, "line.verify_timeout_s": 3.0,
                     "line.max_consecutive_failures": 1000}
        if args.sims == "inprocess":
            line = stack.enter_context(contextlib.contextmanager(sim_line)(folder, broker_url, overrides,
                                                                             read_delay=0.005))
            config_path, stamp_states = line.config_path, line.stamp_states
        else:
            config_path, stamp_states = stack.enter_context(sims_process(folder, broker_url, overrides))
        t_sims = time.perf_counter()
        app = QApplication.instance() or QApplication(sys.argv[:1])
        from station.config import load_config

        window = build_window(load_config(config_path), snapshot_ms=1000)
        stack.callback(window.shutdown)
        window.resize(1280, 800)
        window.show()
        op = window.operator

        def pump_until(predicate, timeout: float) -> bool:
            deadline = time.perf_counter() + timeout
            while not predicate():
                if time.perf_counter() > deadline:
                    return False
                app.processEvents()
                time.sleep(0.001)
            return True

        pump_until(window.isVisible, 10)
        t_shown = time.perf_counter()
        pump_until(lambda: op._ready, 30)
        t_ready = time.perf_counter()
        rss_idle, _ = rss_mib()

        dialog = op.new_batch()
        dialog.lot_edit.setText("BENCH1")
        dialog.submit()
        pump_until(lambda: (b := op.current_batch()) is not None and b.lot == "BENCH1", 10)

        # The heartbeat: every 10 ms, how late is the GUI thread?
        lateness: list[float] = []
        clock = QElapsedTimer()
        interval_ms = 10
        state = {"expected": 0.0}

        def beat() -> None:
            now = clock.nsecsElapsed() / 1e6
            lateness.append(max(0.0, now - state["expected"]))
            state["expected"] = now + interval_ms

        heartbeat = QTimer()
        heartbeat.setInterval(interval_ms)
        heartbeat.timeout.connect(beat)

        op.count_spin.setValue(0)
        op.start_line()
        pump_until(lambda: op.state.value == "running", 10)
        clock.start()
        state["expected"] = interval_ms
        heartbeat.start()
        started = time.perf_counter()
        first = stamp_states().get("activated", 0)
        pump_until(lambda: False, args.seconds)
        heartbeat.stop()
        elapsed = time.perf_counter() - started
        activated = stamp_states().get("activated", 0) - first
        rss_run, rss_peak = rss_mib()
        op.stop_line()
        pump_until(lambda: op.state.value == "stopped", 20)

    rate = activated / elapsed if elapsed else 0.0
    ordered = sorted(lateness)
    p99 = ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0
    print("UI benchmark")
    print(f"  conditions: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"Qt {QT_VERSION_STR} / PyQt {PYQT_VERSION_STR}, QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}")
    print(f"              simulators {'in this process' if args.sims == 'inprocess' else 'in a child process'}, {broker_kind} at {broker_url}, SQLite in {folder.parent} "
          f"(WAL, synchronous=FULL), print_ahead={args.print_ahead}, snapshot every 1 s, window 1280x800, "
          f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms")
    sims = t_sims - t_imported          # not part of a real start: left out of the figures
    print(f"  time to a usable window: {1000 * (t_shown - T0 - sims):.0f} ms to the window shown, "
          f"{1000 * (t_ready - T0 - sims):.0f} ms to the station ready (devices open, database migrated), "
          f"from the interpreter's start; of which imports {1000 * (t_imported - T0):.0f} ms")
    print(f"  line: {activated} stamps activated in {elapsed:.1f} s = {rate:.1f} items/s "
          f"(target {args.target:g}/s{'' if rate >= args.target * 0.95 else ': NOT reached on this machine'})")
    print(f"  GUI-thread stall (10 ms heartbeat lateness): longest {max(lateness, default=0):.1f} ms, "
          f"p99 {p99:.1f} ms, median {statistics.median(lateness) if lateness else 0:.1f} ms, "
          f"{len(lateness)} beats")
    print(f"  memory: RSS {rss_idle:.0f} MiB idle after start, {rss_run:.0f} MiB after the run, "
          f"peak {rss_peak:.0f} MiB (includes the simulators and their label renderer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
