"""drivers.reconnect.Link, the one reconnect mechanism of the device readers, and the scanner on its clock."""

from __future__ import annotations

import logging
import threading

import pytest

from drivers.reconnect import DeviceThread, Link
from drivers.scanner import SerialScanner
from drivers.transport import Transport, TransportError
from tests.clock import ManualClock

log = logging.getLogger("tests.reconnect")


def test_a_loss_is_logged_once_and_the_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tests.reconnect")
    link = Link("tcp://cam:80", "camera", stop=threading.Event(), logger=log)
    assert not link.is_up and link.last_error is None
    link.lost("tcp://cam:80: cannot connect: refused")   # the first attempt failed
    link.lost("tcp://cam:80: cannot connect: refused")   # and the next ones: said once
    link.recovered()
    assert link.is_up and link.last_error is None and link.losses == 0
    assert link.lost("tcp://cam:80: stream closed")       # a working link fails: said, and counted
    link.lost("tcp://cam:80: cannot connect: refused")
    link.recovered("AXIS-1")
    assert link.losses == 1
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "tcp://cam:80: camera lost: cannot connect: refused; reconnecting"),
        ("INFO", "tcp://cam:80: camera connected again"),
        ("WARNING", "tcp://cam:80: camera lost: stream closed; reconnecting"),
        ("INFO", "tcp://cam:80: camera AXIS-1 connected again"),
    ]


def test_closing_on_purpose_is_no_fault(caplog: pytest.LogCaptureFixture) -> None:
    link = Link("x://", "scanner", stop=threading.Event(), logger=log)
    link.recovered()
    link.closed()
    assert not link.is_up and link.last_error is None and link.losses == 0 and caplog.records == []


def test_the_back_off_doubles_to_its_bound_on_the_clock_and_starts_again_after_a_recovery() -> None:
    clock = ManualClock(threads=1)
    stop = threading.Event()
    link = Link("x://", "scanner", stop=stop, logger=log, clock=clock, max_backoff=0.5)
    waited: list[float] = []

    def attempts() -> None:
        for _ in range(6):
            before = clock.monotonic()
            link.pause()
            waited.append(round(clock.monotonic() - before, 6))
        link.recovered()
        before = clock.monotonic()
        link.pause()
        waited.append(round(clock.monotonic() - before, 6))

    thread = threading.Thread(target=attempts, name="attempts")
    thread.start()
    while thread.is_alive():
        clock.advance(0.05)
    thread.join()
    assert waited == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.1]


def test_pause_ends_at_once_when_the_owner_stops() -> None:
    stop = threading.Event()
    stop.set()
    link = Link("x://", "scanner", stop=stop, logger=log, clock=ManualClock())
    assert link.pause() is True


class _Unplugged(Transport):
    """A port that is never there: every open fails and is timed on the test's clock."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__("serial:///dev/ttyGONE")
        self.clock = clock
        self.attempts: list[float] = []

    can_read = True
    is_open = False

    def open(self) -> None:
        self.attempts.append(self.clock.now())
        raise TransportError(f"{self.url}: cannot open: no such device")

    def close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        raise AssertionError("not written")

    def read(self, timeout: float) -> bytes:
        raise AssertionError("never open")


def test_the_scanner_backs_off_on_its_clock() -> None:
    clock = ManualClock(threads=1)
    port = _Unplugged(clock)
    scanner = SerialScanner(port, max_backoff=0.4, clock=clock)
    with scanner:
        clock.settle()
        for _ in range(24):          # 1.2 s in 50 ms steps: attempts at 0, 0.1, 0.3, 0.7 and 1.1 s
            clock.advance(0.05)
        assert not scanner.connected
        assert scanner.last_error == "serial:///dev/ttyGONE: cannot open: no such device"
    waits = [round(b - a, 6) for a, b in zip(port.attempts, port.attempts[1:])]
    assert waits == [0.1, 0.2, 0.4, 0.4]


def test_a_device_thread_stops_through_its_wake_and_can_start_again() -> None:
    woken = threading.Event()
    runs: list[str] = []

    def loop() -> None:
        runs.append("run")
        woken.wait(10)   # blocked where the stop event is not seen: only the wake ends it

    thread = DeviceThread(loop, "test-device", logger=log, wake=woken.set)
    assert not thread.started and not thread.running
    thread.start()
    with pytest.raises(RuntimeError, match="test-device already started"):
        thread.start()
    thread.stop(timeout=5)
    assert thread.stopping.is_set() and not thread.running and not thread.started
    woken.clear()
    thread.start()
    assert not thread.stopping.is_set()
    thread.stop(timeout=5)
    assert runs == ["run", "run"]


def test_a_thread_that_does_not_stop_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    thread = DeviceThread(lambda: release.wait(10), "stuck-device", logger=log)
    thread.start()
    thread.stop(timeout=0.01)
    release.set()
    assert [r.getMessage() for r in caplog.records] == ["stuck-device did not stop within 0.01s"]
