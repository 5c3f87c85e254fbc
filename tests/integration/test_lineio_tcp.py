"""lineio+tcp:// against the real conveyor simulator over TCP: triggers, rejects, reconnects, faults, stop."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from drivers.lineio import LineIO, LineIOError, TcpLineIO, Trigger, open_lineio, parse_module_line
from simulators.conveyor import ConveyorSimulator
from simulators.errors import SimulatorError
from tests.clock import ManualClock
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


class Station:
    """The station's side: a line I/O from a URL and the triggers it reported, in order."""

    def __init__(self, url: str) -> None:
        self.triggers: list[Trigger] = []
        self.io: LineIO = open_lineio(url, self.triggers.append)

    def module_seqs(self) -> list[int | None]:
        return [t.module_seq for t in self.triggers]


@pytest.fixture
def no_leaks() -> Iterator[None]:
    before, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    yield
    assert wait_until(lambda: threading.active_count() <= before, 2), \
        [t.name for t in threading.enumerate()]
    assert len(os.listdir("/proc/self/fd")) <= fds, "sockets left open"


@pytest.fixture
def clock() -> ManualClock:
    """The conveyor's clock: items pass only as the test moves it (the station's side keeps the real clock)."""
    return ManualClock(threads=1)


@pytest.fixture
def conveyor(no_leaks: None, clock: ManualClock) -> Iterator[ConveyorSimulator]:
    with ConveyorSimulator(port=0, rate=50.0, seed=1, control_port=0, paused=True, clock=clock) as sim:
        clock.settle()   # its item thread is up and waiting
        yield sim


@pytest.fixture
def station(conveyor: ConveyorSimulator) -> Iterator[Station]:
    station = Station(conveyor.url + "?keepalive=0.2&timeout=1&pulse_ms=80")
    station.io.start()
    assert station.io.wait_healthy(5), station.io.last_error
    yield station
    station.io.stop()


def ask(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(line.encode() + b"\n")
        return sock.makefile("r").readline().strip()


def test_triggers_arrive_at_the_rate(conveyor: ConveyorSimulator, station: Station, clock: ManualClock) -> None:
    started = clock.now()
    conveyor.resume()
    clock.settle()
    for _ in range(250):             # a second in 4 ms steps: an item early or late by one step would show
        clock.advance(0.004)
    conveyor.pause()
    clock.advance(1.0)   # paused: nothing more
    passed = len(conveyor.items)
    assert passed == 51  # 50 items/s for a second, one at each end of it
    assert [item.at for item in conveyor.items] == pytest.approx([started + n * 0.02 for n in range(51)])
    assert wait_until(lambda: len(station.triggers) == passed)
    assert [t.seq for t in station.triggers] == list(range(1, passed + 1))
    assert station.module_seqs() == list(range(1, passed + 1))
    assert all(item.delivered for item in conveyor.items)
    assert station.io.status().missed == 0
    assert station.io.healthy and station.io.module_name == "conveyor-sim"  # type: ignore[attr-defined]


def test_rate_and_bursts_change_while_running(conveyor: ConveyorSimulator, station: Station,
                                              clock: ManualClock) -> None:
    conveyor.rate = 200
    conveyor.resume()
    clock.settle()
    for _ in range(39):
        clock.advance(0.005)
    assert len(conveyor.items) == 40
    conveyor.rate = 4
    clock.advance(0.005)             # the item already due at the old rate
    clock.advance(0.25)
    clock.advance(0.25)
    at = [item.at for item in conveyor.items[39:]]
    assert [b - a for a, b in zip(at, at[1:])] == pytest.approx([0.005, 0.25, 0.25])   # then 4 items/s
    clock.advance(0.249)
    assert len(conveyor.items) == 43
    conveyor.pause()
    before = len(conveyor.items)
    conveyor.burst(10)
    assert conveyor.wait_items(before + 10, 5)
    assert {item.at for item in conveyor.items[before:]} == {clock.now()}   # back to back, now
    assert wait_until(lambda: len(station.triggers) == before + 10)
    clock.advance(1.0)
    assert len(conveyor.items) == before + 10  # paused: only the burst passed


def test_a_stall_does_not_flood_the_line_with_the_items_it_missed(conveyor: ConveyorSimulator,
                                                                 clock: ManualClock) -> None:
    conveyor.resume()
    clock.settle()
    assert len(conveyor.items) == 1
    clock.advance(1.0)               # the simulator was held up for 50 item intervals
    assert len(conveyor.items) == 2  # one item now, not 50 (nor two back to back)
    clock.advance(0.019)
    assert len(conveyor.items) == 2
    clock.advance(0.001)
    assert len(conveyor.items) == 3  # and the rate goes on from there
    assert [item.at - clock.start for item in conveyor.items] == pytest.approx([0.0, 1.0, 1.02])


def test_rejects_are_recorded_by_seq(conveyor: ConveyorSimulator, station: Station) -> None:
    conveyor.burst(10)
    assert wait_until(lambda: len(station.triggers) == 10)
    for trigger in station.triggers[2], station.triggers[6]:
        assert station.io.reject(trigger.seq) is True
    assert station.io.reject(station.triggers[6].seq) is True  # rejected again: the module records a duplicate
    assert station.io.reject() is True  # the gate for no particular item
    assert wait_until(lambda: len(conveyor.rejects) == 4)
    assert conveyor.rejected == [3, 7]
    assert [(r.seq, r.outcome, r.pulse_ms) for r in conveyor.rejects] == [
        (3, "rejected", 80), (7, "rejected", 80), (7, "duplicate", 80), (0, "unbound", 80)]
    station.io.stop()  # a K still missing would be counted as unconfirmed when the connection closes
    assert station.io.status().rejects == 4 and station.io.status().rejects_failed == 0
    assert station.io.status().rejects_unconfirmed == 0


def test_a_reject_for_an_item_the_station_never_saw_is_not_sent(conveyor: ConveyorSimulator,
                                                                 station: Station) -> None:
    assert station.io.reject(99) is False
    assert station.io.status().rejects_failed == 1
    conveyor.burst(1)
    assert wait_until(lambda: len(station.triggers) == 1)
    assert station.io.reject(station.triggers[0].seq) is True
    # One connection, in order: had R 99 gone out, the module would have recorded it before this one.
    assert wait_until(lambda: len(conveyor.rejects) == 1)
    assert [(r.seq, r.outcome) for r in conveyor.rejects] == [(1, "rejected")]


def test_the_simulator_records_unknown_rejects(conveyor: ConveyorSimulator) -> None:
    with socket.create_connection(("127.0.0.1", conveyor.port), timeout=2) as sock:
        reader = sock.makefile("r")
        assert reader.readline() == f"HELLO 1 conveyor-sim {conveyor.session} 0\n"
        sock.sendall(b"R 42 100\nPING\nHELLO?\n")
        assert reader.readline() == "K 42\n"
        assert reader.readline() == "PONG\n"
        assert reader.readline().startswith("E not understood")
    assert [(r.seq, r.outcome) for r in conveyor.rejects] == [(42, "unknown")]


def test_reconnects_after_the_simulator_restarts_on_the_same_port(no_leaks: None) -> None:
    sim = ConveyorSimulator(port=0, paused=True).start()
    port = sim.port
    station = Station(sim.url + "?keepalive=0.2&timeout=1")
    with station.io:
        assert station.io.wait_healthy(5)
        sim.burst(5)
        assert wait_until(lambda: len(station.triggers) == 5)
        sim.stop()
        assert wait_until(lambda: not station.io.healthy, 3)
        assert str(station.io.last_error).startswith(f"lineio+tcp://127.0.0.1:{port}?keepalive=0.2&timeout=1: ")
        assert station.io.reject(station.triggers[-1].seq) is False  # no module to send it to
        with ConveyorSimulator(port=port, paused=True) as again:  # a rebooted module: a new session
            assert station.io.wait_healthy(5), station.io.last_error
            again.burst(3)
            assert wait_until(lambda: len(station.triggers) == 8)
            # The new module counts from 1 again; the station's own numbers keep going up.
            assert [t.seq for t in station.triggers] == list(range(1, 9))
            assert station.module_seqs() == [1, 2, 3, 4, 5, 1, 2, 3]
            assert station.io.status().missed == 0
            # An item from before the restart is not rejected under its old number on the new module.
            assert station.io.reject(station.triggers[1].seq) is False
            assert station.io.reject(station.triggers[-1].seq) is True
            assert wait_until(lambda: len(again.rejects) == 1)
            assert [(r.seq, r.outcome) for r in again.rejects] == [(3, "rejected")]
            assert station.io.status().rejects_failed == 2


def test_items_counted_by_a_rebooted_module_before_it_was_reached_are_missed(no_leaks: None) -> None:
    sim = ConveyorSimulator(port=0, paused=True).start()
    port = sim.port
    station = Station(sim.url + "?keepalive=0.2&timeout=1")
    with station.io:
        assert station.io.wait_healthy(5)
        sim.burst(2)
        assert wait_until(lambda: len(station.triggers) == 2)
        sim.stop()
        assert wait_until(lambda: not station.io.healthy, 3)
        with ConveyorSimulator(port=port, paused=True) as again:
            again.set_switches(offline=True)  # booting: items pass before the station can connect
            again.burst(6)
            assert again.wait_items(6, 2)
            again.set_switches(offline=False)
            assert station.io.wait_healthy(5)
            again.burst(1)
            assert wait_until(lambda: len(station.triggers) == 3)
            assert station.module_seqs() == [1, 2, 7]
            assert station.io.status().missed == 6


def test_a_network_blip_keeps_the_session_so_rejects_still_go(conveyor: ConveyorSimulator,
                                                            station: Station) -> None:
    conveyor.burst(2)
    assert wait_until(lambda: len(station.triggers) == 2)
    conveyor.disconnect()
    assert wait_until(lambda: not station.io.healthy, 3)
    assert station.io.wait_healthy(5)
    assert station.io.reject(station.triggers[0].seq) is True  # same module, same numbers
    assert wait_until(lambda: conveyor.rejected == [1])
    assert station.io.status().missed == 0


def test_items_passing_while_disconnected_are_counted_as_missed(conveyor: ConveyorSimulator,
                                                                station: Station) -> None:
    conveyor.burst(3)
    assert wait_until(lambda: len(station.triggers) == 3)
    conveyor.set_switches(offline=True)
    conveyor.disconnect()
    assert wait_until(lambda: not station.io.healthy, 3)
    conveyor.burst(4)  # pass with nobody connected
    assert conveyor.wait_items(7, 2)
    conveyor.set_switches(offline=False)
    assert station.io.wait_healthy(8)
    conveyor.burst(1)
    assert wait_until(lambda: len(station.triggers) == 4)
    assert station.module_seqs() == [1, 2, 3, 8]
    assert station.io.status().missed == 4
    assert [item.delivered for item in conveyor.items] == [True] * 3 + [False] * 4 + [True]


def test_a_silent_module_is_noticed_by_the_keepalive(conveyor: ConveyorSimulator, station: Station) -> None:
    conveyor.set_switches(silent=True)
    assert wait_until(lambda: not station.io.healthy, 4)
    assert "silent" in (station.io.last_error or "") or "HELLO" in (station.io.last_error or "")
    conveyor.set_switches(silent=False)
    assert station.io.wait_healthy(8)


def test_a_port_that_is_not_a_module_says_so(no_leaks: None) -> None:
    with socket.create_server(("127.0.0.1", 0)) as quiet:  # accepts, says nothing (like a printer's 9100)
        port = quiet.getsockname()[1]
        io = open_lineio(f"lineio+tcp://127.0.0.1:{port}?keepalive=0.1&timeout=0.3")
        with io:
            conn, _ = quiet.accept()
            assert wait_until(lambda: io.last_error is not None, 3)
            assert "no HELLO within 0.3s" in str(io.last_error)
            assert f"lineio+tcp://127.0.0.1:{port}" in str(io.last_error)
            assert not io.healthy
        conn.close()


def test_nothing_listening_is_reported_and_retried(no_leaks: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    io = TcpLineIO(f"lineio+tcp://127.0.0.1:{port}", max_backoff=0.2)
    with io:
        assert wait_until(lambda: io.last_error is not None, 3)
        assert "cannot connect" in str(io.last_error)
        with ConveyorSimulator(port=port) as sim:
            assert io.wait_healthy(3), io.last_error
            assert wait_until(lambda: sim.connected, 3)   # the simulator notes its client just after answering


def test_reconnect_backs_off_doubling_from_a_tenth_of_a_second_to_max_backoff(no_leaks: None) -> None:
    """A port that accepts and hangs up at once (a module rebooting, a wrong device): the station tries again
    after 0.1 s, then 0.2, 0.4 … up to `max_backoff`, on its clock, never in a tight loop."""
    clock = ManualClock(threads=1)
    attempts: list[float] = []
    server = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            attempts.append(clock.now())
            conn.close()

    thread = threading.Thread(target=hang_up, name="hangs-up", daemon=True)
    thread.start()
    io = TcpLineIO(f"lineio+tcp://127.0.0.1:{server.getsockname()[1]}", max_backoff=1.0, clock=clock)
    started = clock.now()
    try:
        with io:
            clock.settle()
            assert attempts == [started]
            for _ in range(80):        # 4 s in 50 ms steps
                clock.advance(0.05)
            assert "connection closed by peer" in str(io.last_error)
            assert not io.healthy
    finally:
        server.shutdown(socket.SHUT_RDWR)   # wakes the accept
        server.close()
        thread.join(2)
    waits = [round(b - a, 6) for a, b in zip(attempts, attempts[1:])]
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_control_port(conveyor: ConveyorSimulator, station: Station) -> None:
    port = int(conveyor.control_url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    assert ask(port, "rate 400") == "ok" and conveyor.rate == 400
    assert ask(port, "rate fast").startswith("error:")
    assert ask(port, "rate 0").startswith("error: rate must be")
    assert ask(port, "burst 5") == "ok"
    assert wait_until(lambda: len(station.triggers) == 5)
    assert ask(port, "items") == "5"
    station.io.reject(station.triggers[1].seq)
    assert wait_until(lambda: len(conveyor.rejects) == 1)
    assert json.loads(ask(port, "rejected")) == {"rejected": 1, "duplicate": 0, "unknown": 0, "unbound": 0,
                                                  "last": [2]}
    status = json.loads(ask(port, "status"))
    assert status["items"] == 5 and status["paused"] is True and status["connected"] is True
    assert status["lineio"] == conveyor.url
    assert ask(port, "resume") == "ok" and not conveyor.paused
    assert ask(port, "pause") == "ok" and conveyor.paused
    assert ask(port, "burst x").startswith("error:")
    assert ask(port, "silent maybe").startswith("error: usage: silent on|off")
    assert ask(port, "silent yes") == "ok" and ask(port, "silent 0") == "ok"   # the yes/no words of every URL


def test_max_items_stops_the_conveyor(no_leaks: None, clock: ManualClock) -> None:
    with ConveyorSimulator(rate=500, max_items=20, clock=clock) as sim:
        station = Station(sim.url)
        with station.io:
            assert station.io.wait_healthy(5)
            for _ in range(30):
                clock.advance(0.002)
            assert len(sim.items) == 20 and sim.finished
            assert wait_until(lambda: len(station.triggers) == sim.delivered)


def test_jitter_with_a_seed_is_repeatable() -> None:
    a = ConveyorSimulator(rate=10, seed=7, jitter=0.5)
    b = ConveyorSimulator(rate=10, seed=7, jitter=0.5)
    intervals = [a._interval() for _ in range(20)]
    assert intervals == [b._interval() for _ in range(20)]
    assert all(0.05 <= i <= 0.15 for i in intervals) and len(set(intervals)) > 1


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"jitter": 1.0}, {"max_items": -1}, {"rate": 1e6}])
def test_bad_simulator_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(SimulatorError):
        ConveyorSimulator(**kwargs)  # type: ignore[arg-type]


def test_stop_leaves_no_threads_or_sockets(no_leaks: None) -> None:
    sim = ConveyorSimulator(rate=200, control_port=0).start()
    io = open_lineio(sim.url)
    io.start()
    assert io.wait_healthy(5)
    assert sim.wait_items(10, 5)
    io.stop()
    sim.stop()
    assert not io.healthy


@pytest.mark.parametrize(("line", "kind", "seq"), [
    ("T 12", "T", 12), ("K 3", "K", 3), ("PING", "PING", None), ("PONG", "PONG", None),
    ("HELLO 1 esp32-line-2 5f3a 0", "HELLO", 0), ("HELLO 1 conveyor-sim 1 812", "HELLO", 812),
    ("E bad line", "E", None)])
def test_module_lines_parse(line: str, kind: str, seq: int | None) -> None:
    message = parse_module_line(line)
    assert (message.kind, message.seq) == (kind, seq)


@pytest.mark.parametrize("line", ["T", "T -1", "T 0", "T x", "K 1 2", "HELLO 2 future x 0", "HELLO",
                                  "HELLO 1 esp32", "HELLO 1 esp32 5f3a", "HELLO 1 esp32 5f3a -1", "X 1"])
def test_module_lines_that_are_not_the_protocol(line: str) -> None:
    with pytest.raises(LineIOError):
        parse_module_line(line)
