"""`station sim send`: the simulators' control ports reached with our own command (a fresh machine has no `nc`),
over real sockets to real simulators."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.conveyor import ConveyorSimulator
from simulators.printer import PrinterSimulator

ROOT = Path(__file__).resolve().parents[2]


def station(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture
def printer() -> Iterator[PrinterSimulator]:
    with PrinterSimulator(port=0, control_port=0) as sim:
        yield sim


def test_a_command_reaches_the_printer_and_its_reply_is_printed(printer: PrinterSimulator) -> None:
    done = station("sim", "send", "printer", "--port", str(printer.control_port), "paper_out", "on")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert printer.paper_out
    status = station("sim", "send", "printer", "status", "--port", str(printer.control_port))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["paper_out"] is True
    done = station("sim", "send", "printer", "--port", str(printer.control_port), "paper_out", "off")
    assert done.returncode == 0 and not printer.paper_out


def test_a_refused_command_prints_the_simulators_reason_and_fails(printer: PrinterSimulator) -> None:
    done = station("sim", "send", "printer", "--port", str(printer.control_port), "paper_out", "sideways")
    assert done.returncode == 1
    assert done.stdout.startswith("error")


def test_the_conveyor_takes_its_commands_the_same_way() -> None:
    conveyor = ConveyorSimulator(port=0, control_port=0, rate=5, paused=True).start()
    try:
        port = conveyor.control_url.rpartition(":")[2]
        done = station("sim", "send", "conveyor", "--port", port, "rate", "12")
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
        assert conveyor.rate == 12
    finally:
        conveyor.stop()


def test_nothing_listening_is_said_with_the_port_and_the_option() -> None:
    with socket.socket() as probe:         # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = station("sim", "send", "scanner", "--port", str(port), "no_read", "0.2")
    assert done.returncode == 1
    assert f"nothing listens on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr
