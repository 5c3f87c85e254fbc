"""`station run --headless` as a technician runs it on a Pi with no screen, in a process of its own, on the simulated
line: a stop alarm nobody can resume from ends the run with the summary and exit 1; a printer fault that clears by
itself does not end it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.line_harness import SimLine, sim_line
from tests.integration.mqtt_fixtures import broker_url, wait_until  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
MX = "08938603001013"


class Headless:
    """The station command running headless, its output (stdout and stderr together) collected line by line."""

    def __init__(self, config: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run", "--headless", "--config", str(config), "--drain-timeout", "10",
             "--progress-every", "0.2", *args],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self.lines.append(text.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def end(self, timeout: float = 60) -> tuple[int, str]:
        """Its exit code and whole output; a run still going after `timeout` fails the test (and is killed)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            self._reader.join(10)
            pytest.fail("the headless run did not end:\n" + "\n".join(self.lines[-15:]))
        self._reader.join(10)
        return code, "\n".join(self.lines)


@pytest.fixture
def line(tmp_path: Path, broker_url: str, request: pytest.FixtureRequest) -> Iterator[SimLine]:  # noqa: F811
    marker = request.node.get_closest_marker("line")
    yield from sim_line(tmp_path, broker_url, marker.kwargs.get("overrides", {}) if marker else {})


def activated(line: SimLine) -> int:
    return line.stamp_states().get("activated", 0)


def assert_ended_on(out: str, code: str) -> None:
    assert f"the line stopped on {code}: a headless line cannot be resumed, ending the run" in out, out
    assert f"ALARM [{code}]" in out, out
    summary = out[out.index("summary:"):]
    assert f"stopped by {code}" in summary and f"the run ended on the alarm [{code}] " in summary, summary


def test_a_foreign_stamp_ends_the_headless_run_with_the_summary_and_exit_1(line: SimLine) -> None:
    run = Headless(line.config_path, "--count", "500", "--lot", "MX2611F")
    assert wait_until(lambda: activated(line) >= 3, 60), "\n".join(run.lines)
    line.scanner.inject(f"https://truyxuat.example.vn/01/{MX}/10/MX2611F/21/NOTOURS0001")
    code, out = run.end()
    assert code == 1, out
    assert_ended_on(out, "foreign_stamp")
    # The stamps in flight got their window: nothing is left undecided.
    states = line.stamp_states()
    assert states.get("allocated", 0) == states.get("sent_to_printer", 0) == 0, states
    assert activated(line) < 500


@pytest.mark.line(overrides={"preprinted.code_shapes": [{"name": "hue-provincial", "regex": "HUE[0-9]{7}"}]})
def test_a_refusal_that_stops_a_headless_pre_printed_line_ends_the_run_with_exit_1(line: SimLine) -> None:
    register = subprocess.run(
        [sys.executable, "-m", "app.cli", "rolls", "register", "--config", str(line.config_path),
         str(ROOT / "config" / "rolls" / "example-sequence.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert register.returncode == 0, register.stdout + register.stderr
    run = Headless(line.config_path, "--count", "50", "--lot", "MX2611Q", "--mode", "preprinted")
    assert wait_until(lambda: run.said("[running] "), 60), "\n".join(run.lines)
    line.scanner.inject("HUE0000001")
    assert wait_until(lambda: activated(line) == 1, 30), "\n".join(run.lines)
    line.scanner.inject("HUE9999999")       # in no registered roll: preprinted.on_refusal stop (the default)
    code, out = run.end()
    assert code == 1, out
    assert_ended_on(out, "code_not_in_roll")
    assert line.query("SELECT reason FROM refusals") == [("not_in_roll",)]


@pytest.mark.line(overrides={"devices.printer.status_interval_s": 0.1})
def test_a_printer_fault_that_clears_by_itself_does_not_end_the_headless_run(line: SimLine) -> None:
    run = Headless(line.config_path, "--count", "20", "--lot", "MX2611E")     # headless: auto-resume
    assert wait_until(lambda: activated(line) >= 3, 60), "\n".join(run.lines)
    line.printer.paper_out = True
    assert wait_until(lambda: run.said("[fault] "), 30), "\n".join(run.lines)
    line.printer.paper_out = False
    code, out = run.end()
    assert code == 0, out
    assert "ALARM [printer_paper_out]" in out and "cannot be resumed" not in out, out
    assert "activated 20" in out[out.index("summary:"):], out


def summary_of(out: str) -> list[str]:
    return [line.strip() for line in out[out.index("summary:"):].splitlines()[1:] if line.startswith("  ")]


@pytest.mark.line(overrides={"line.verify_timeout_s": 0.5, "line.max_consecutive_failures": 50})
def test_a_second_run_sums_up_its_own_events_and_without_a_gate_says_what_to_take_off_by_hand(
        line: SimLine) -> None:
    code, first = Headless(line.config_path, "--count", "6", "--lot", "MX2611S").end()
    assert code == 0, first
    assert "events of this run: sent 6, confirmed by the server 6, waiting 0" in summary_of(first), first
    # The second run, on the same database and batch, with a scanner that misses some stamps.
    line.scanner.set_rates(no_read_rate=0.4)
    code, second = Headless(line.config_path, "--count", "4", "--lot", "MX2611S").end()
    assert code == 0, second
    lines = summary_of(second)
    assert lines[0] == "run of batch MX2611S (figures of this run only): requested 4"
    voided = line.scanner.counts["no_reads"]
    assert voided > 0 and lines[1] == f"printed {4 + voided}, verified 4, activated 4"
    # The run lasted past a verify timeout, so it printed progress: which figures are the run's and which the
    # station's (its outbox holds every run's events).
    assert "] this run: printed " in second and "; station outbox (all runs): pending " in second, second
    # The line has no reject gate (devices.line_io none://): each voided stamp's item is taken off by hand.
    item = "item" if voided == 1 else "items"
    assert lines[2] == f"voided {voided} (no_read {voided}); {voided} {item} to take off the line by hand " \
                       "(no reject gate)", lines
    # Confirmed counts this run's events only, as printed does: not the 6 of the first run.
    assert lines[3] == f"events of this run: sent {4 + voided}, confirmed by the server {4 + voided}, waiting 0"
    # and the batch's own events (opened, its diary's 3 stages: issue 10), sent once, when the first run created it.
    assert line.query("SELECT count(*) FROM outbox WHERE state = 'confirmed'") == [(6 + 4 + voided + 4,)]


@pytest.mark.line(overrides={"devices.printer.status_interval_s": 0.1})
def test_a_batch_locked_during_a_printer_fault_ends_the_headless_run(line: SimLine) -> None:
    # The printer fault would clear by itself; the lock (a recall, from another terminal) will not.
    run = Headless(line.config_path, "--count", "500", "--lot", "MX2611L")
    assert wait_until(lambda: activated(line) >= 3, 60), "\n".join(run.lines)
    line.printer.paper_out = True
    assert wait_until(lambda: run.said("[fault] "), 30), "\n".join(run.lines)
    lock = subprocess.run([sys.executable, "-m", "app.cli", "batch", "lock", "--config", str(line.config_path),
                           "--product", MX, "--lot", "MX2611L", "--reason", "recall: wrong sesame"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    code, out = run.end()
    assert code == 1, out
    assert_ended_on(out, "batch_locked")
