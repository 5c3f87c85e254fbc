"""The simulators' control-port clients (simulators.client), against a real printer simulator over real sockets."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from simulators.client import follow_printer, send_command
from simulators.printer import PrintedLabel, PrinterSimulator
from tests.waiting import wait_until

LABEL = b"^XA^FO20,20^A0N,30,30^FDHELLO^FS^XZ"


@pytest.fixture
def printer() -> Iterator[PrinterSimulator]:
    with PrinterSimulator(port=0, control_port=0) as sim:
        yield sim


def test_one_command_and_its_reply(printer: PrinterSimulator) -> None:
    assert send_command("127.0.0.1", printer.control_port, "paper_out on") == "ok"
    assert printer.paper_out
    assert json.loads(send_command("127.0.0.1", printer.control_port, "status"))["paper_out"] is True


def test_a_follower_gets_each_printed_label(printer: PrinterSimulator) -> None:
    got: list[PrintedLabel] = []
    stop = threading.Event()
    thread = follow_printer(f"127.0.0.1:{printer.control_port}", got.append, stop)
    try:
        # Labels printed before the subscription are not sent: wait for it (the printer's own set of followers).
        assert wait_until(lambda: bool(printer._subscribers), timeout=10)
        host, port = printer.url.removeprefix("tcp://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as conn:
            conn.sendall(LABEL)
        assert wait_until(lambda: bool(got), timeout=10)
        assert "HELLO" in got[0].texts
    finally:
        stop.set()
        thread.join(5)
