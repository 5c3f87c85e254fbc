"""Run every benchmark in bench/ one after another, pass their output through, and end with a summary table.

    .venv/bin/python bench/run_all.py [--only commit,outbox] [--skip ui] [--timeout 900]

Each benchmark runs as its own subprocess (so one's threads, brokers and memory cannot colour the next one's
figures) with this interpreter. The summary lists, per benchmark, whether it ran, how long it took, and its
`summary:` lines (the figure, the baseline of the same run, the target and whether it is met). A missed target
is a figure, not a failure: this script exits non-zero only when a benchmark itself failed to run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (name, script, arguments); ui_bench and line_bench only when they can run here.
BENCHES = [
    ("decode", "decode_bench.py", []),
    ("commit", "commit_bench.py", []),
    ("outbox", "outbox_bench.py", []),
    ("trigger", "trigger_bench.py", []),
    ("line", "line_bench.py", []),
    ("ui", "ui_bench.py", []),
]

# Lines of benchmarks written before the `summary:` convention that carry their headline figure.
HEADLINES = {
    "decode": ("zxing-cpp + ROI pipeline", "target"),
    "ui": ("  line:", "  GUI-thread stall", "  time to a usable window"),
}


def qt_offscreen_works() -> tuple[bool, str]:
    probe = "from PyQt5.QtWidgets import QApplication; app = QApplication(['probe']); print('ok')"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    if done.returncode == 0 and "ok" in done.stdout:
        return True, ""
    return False, (done.stderr.strip().splitlines() or ["PyQt5 did not start"])[-1]


def run(script: Path, args: list[str], timeout: float) -> tuple[int | None, float, list[str]]:
    """Run one benchmark, echoing its output as it comes; (exit code or None on timeout, seconds, lines)."""
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    process = subprocess.Popen([sys.executable, str(script), *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    lines: list[str] = []
    assert process.stdout is not None
    timed_out = False
    try:
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line.rstrip("\n"))
            if time.monotonic() - started > timeout:
                timed_out = True
                break
        if timed_out:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
        raise
    finally:
        process.stdout.close()
    return (None if timed_out else process.returncode), time.monotonic() - started, lines


def headline(name: str, lines: list[str]) -> list[str]:
    found = [line.strip() for line in lines if line.lstrip().startswith("summary:")]
    if found:
        return [line[len("summary:"):].strip() for line in found]
    keys = HEADLINES.get(name)
    if keys:
        return [line.strip() for line in lines if any(line.startswith(k) or line.strip().startswith(k)
                                                      for k in keys)]
    return [line.strip() for line in lines if "target" in line.lower()][-3:]


def clip(line: str, width: int = 200) -> str:
    return line if len(line) <= width else line[:width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(n for n, _, _ in BENCHES))
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark before it is stopped")
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    skip = {n.strip() for n in args.skip.split(",") if n.strip()}

    results: list[tuple[str, str, float, list[str]]] = []
    started = time.monotonic()
    for name, script_name, bench_args in BENCHES:
        if (only and name not in only) or name in skip:
            continue
        script = HERE / script_name
        if not script.exists():
            results.append((name, "absent", 0.0, [f"{script_name} is not in bench/"]))
            continue
        if name == "ui":
            ok, why = qt_offscreen_works()
            if not ok:
                results.append((name, "skipped", 0.0, [f"PyQt5 with QT_QPA_PLATFORM=offscreen does not start: {why}"]))
                continue
        print(f"\n=== {name}: {script_name} {' '.join(bench_args)}".rstrip(), flush=True)
        code, seconds, lines = run(script, bench_args, args.timeout)
        status = "ok" if code == 0 else ("timed out" if code is None else f"failed (exit {code})")
        results.append((name, status, seconds, headline(name, lines) if code == 0 else lines[-3:]))

    print()
    print(f"=== Summary ({time.monotonic() - started:.0f} s in all; figures and conditions are in each benchmark's "
          "output above)")
    header = f"{'benchmark':<10}{'status':<18}{'time s':>7}  figures"
    print(header)
    print("-" * 110)
    for name, status, seconds, lines in results:
        first, *rest = lines or [""]
        print(f"{name:<10}{status:<18}{seconds:>7.0f}  {clip(first)}")
        for line in rest:
            print(f"{'':<35}  {clip(line)}")
    failed = [name for name, status, _, _ in results if status not in ("ok", "skipped", "absent")]
    if failed:
        print(f"\nbenchmarks that did not run to the end: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
