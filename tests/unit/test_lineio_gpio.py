"""gpio:// line I/O on gpiozero's mock pins: photo-eye edges, debounce, minimum gap, the reject pulse, URLs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.errors import DeviceError
from drivers.lineio import (BadLineIOUrl, EdgeFilter, GpioLineIO, LineIO, LineIOError, NoLineIO, Trigger,
                            open_lineio)

EYE, GATE = "GPIO17", "GPIO27"


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


class Line:
    """A started gpio:// line I/O with its mock pins and the triggers it reported."""

    def __init__(self, factory: MockFactory, query: str) -> None:
        self.triggers: list[Trigger] = []
        self.threads: list[str] = []
        self.io = open_lineio(f"gpio://?{query}", self._on_trigger, pin_factory=factory)
        self.eye = factory.pin(EYE)
        self.gate = factory.pin(GATE)

    def _on_trigger(self, trigger: Trigger) -> None:
        self.threads.append(threading.current_thread().name)
        self.triggers.append(trigger)

    def item(self, hold: float = 0.03, gap: float = 0.03) -> None:
        """One item passes an active-high photo-eye."""
        self.eye.drive_high()
        time.sleep(hold)
        self.eye.drive_low()
        time.sleep(gap)


DEFAULT = f"trigger={EYE}&reject={GATE}&pulse_ms=60&debounce_ms=5"


@pytest.fixture
def start_line(factory: MockFactory) -> Iterator[Callable[[str], Line]]:
    """Start a gpio:// line I/O with the given options; it is stopped, and its thread checked, afterwards."""
    before = threading.active_count()
    started: list[Line] = []

    def start(query: str = DEFAULT) -> Line:
        line = Line(factory, query)
        line.io.start()
        started.append(line)
        return line

    yield start
    for line in started:
        line.io.stop()
    assert threading.active_count() <= before, "line I/O left its thread running"


@pytest.fixture
def line(start_line: Callable[[str], Line]) -> Line:
    return start_line(DEFAULT)


def test_an_edge_gives_one_trigger_each_with_increasing_seq_on_the_io_thread(line: Line) -> None:
    assert line.io.healthy
    started = time.monotonic()
    for _ in range(3):
        line.item()
    assert wait_until(lambda: len(line.triggers) == 3)
    time.sleep(0.05)
    assert [t.seq for t in line.triggers] == [1, 2, 3]
    assert all(started <= t.at <= time.monotonic() for t in line.triggers)
    assert line.triggers[0].at < line.triggers[1].at < line.triggers[2].at
    assert line.threads == [f"lineio gpio://?{DEFAULT}"] * 3
    assert line.io.status().triggers == 3


def test_the_trigger_is_timed_at_the_leading_edge_not_after_the_debounce(factory: MockFactory) -> None:
    line = Line(factory, f"trigger={EYE}&debounce_ms=100")
    with line.io:
        edge = time.monotonic()
        line.eye.drive_high()
        assert wait_until(lambda: len(line.triggers) == 1)
        assert line.triggers[0].at - edge < 0.02  # the edge's time, although it was confirmed 100 ms later


def test_bounce_within_debounce_gives_one_trigger(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=30")
    for _ in range(5):  # contact bounce: five short flips, then the item holds the beam
        line.eye.drive_high()
        time.sleep(0.002)
        line.eye.drive_low()
        time.sleep(0.002)
    line.eye.drive_high()
    assert wait_until(lambda: len(line.triggers) == 1)
    for _ in range(3):  # bounce as the item leaves, then a gap
        line.eye.drive_low()
        time.sleep(0.002)
        line.eye.drive_high()
        time.sleep(0.002)
    line.eye.drive_low()
    time.sleep(0.1)
    assert len(line.triggers) == 1


def test_a_spike_shorter_than_debounce_is_no_item(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=30")
    line.eye.drive_high()
    time.sleep(0.003)
    line.eye.drive_low()
    time.sleep(0.1)
    assert line.triggers == []
    line.item(hold=0.06)
    assert wait_until(lambda: len(line.triggers) == 1)


def test_an_item_that_breaks_the_beam_twice_counts_once_within_min_gap(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=2&min_gap_ms=150")
    line.item(hold=0.02, gap=0.02)  # one item with a gap in it (two bottles in one shrink pack)
    line.item(hold=0.02, gap=0.2)
    line.item(hold=0.02, gap=0.02)  # the next item, after the gap
    assert wait_until(lambda: len(line.triggers) == 2)
    time.sleep(0.05)
    assert [t.seq for t in line.triggers] == [1, 2]
    assert line.io.status().suppressed == 1


def test_reject_pulses_the_gate_without_blocking(line: Line) -> None:
    assert line.gate.state is False
    begun = time.monotonic()
    assert line.io.reject(1) is True
    assert time.monotonic() - begun < 0.02  # the pulse is 60 ms: reject() did not wait for it
    assert line.gate.state is True
    assert wait_until(lambda: line.gate.state is False, timeout=1)
    width = time.monotonic() - begun
    assert 0.05 <= width < 0.5
    line.gate.assert_states([False, True, False])
    assert line.io.status().rejects == 1


def test_a_second_reject_during_the_pulse_keeps_the_gate_open(line: Line) -> None:
    begun = time.monotonic()
    line.io.reject(1)
    time.sleep(0.04)
    line.io.reject(2)
    assert wait_until(lambda: line.gate.state is False, timeout=1)
    assert time.monotonic() - begun >= 0.095  # 40 ms + a fresh 60 ms pulse
    line.gate.assert_states([False, True, False])
    assert len(line.gate.states) == 3
    assert line.io.rejects == 2


def test_the_trigger_callback_may_reject_at_once(factory: MockFactory) -> None:
    io = open_lineio(f"gpio://?trigger={EYE}&reject={GATE}&pulse_ms=20", lambda t: io.reject(t.seq),
                     pin_factory=factory)
    gate = factory.pin(GATE)
    with io:
        factory.pin(EYE).drive_high()
        assert wait_until(lambda: io.rejects == 1)
        assert wait_until(lambda: len(gate.states) == 3)


def test_active_low_inverts_the_photo_eye_and_the_gate(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&reject={GATE}&trigger_active=low&reject_active=low&pulse_ms=40")
    assert line.eye.pull == "up"  # an NPN photo-eye pulls the line low when it sees an item
    assert line.eye.state is True
    assert line.gate.state is True  # a low-active relay board: high is off
    line.eye.drive_low()
    assert wait_until(lambda: len(line.triggers) == 1)
    line.eye.drive_high()
    time.sleep(0.05)
    assert len(line.triggers) == 1
    line.io.reject()
    assert line.gate.state is False
    assert wait_until(lambda: line.gate.state is True)


def test_pull_off_leaves_the_input_floating(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&trigger_active=low&pull=off")
    assert line.eye.pull == "floating"
    line.eye.drive_high()
    time.sleep(0.02)
    line.eye.drive_low()
    assert wait_until(lambda: len(line.triggers) == 1)


def test_an_item_in_front_of_the_eye_at_start_is_not_counted(factory: MockFactory) -> None:
    triggers: list[Trigger] = []
    io = open_lineio(f"gpio://?trigger={EYE}&pull=off", triggers.append, pin_factory=factory)
    factory.pin(EYE).drive_high()
    with io:
        time.sleep(0.05)
        assert triggers == []
        factory.pin(EYE).drive_low()
        time.sleep(0.02)
        factory.pin(EYE).drive_high()
        assert wait_until(lambda: len(triggers) == 1)


def test_stop_switches_the_gate_off_and_releases_the_pins(factory: MockFactory) -> None:
    io = open_lineio(f"gpio://?trigger={EYE}&reject={GATE}&pulse_ms=5000", pin_factory=factory)
    io.start()
    io.reject(7)
    assert factory.pin(GATE).state is True
    io.stop()
    assert factory.pin(GATE).state is False
    assert not io.healthy
    assert io.reject(8) is False and io.rejects_failed == 1
    again = open_lineio(f"gpio://?trigger={EYE}&reject={GATE}", pin_factory=factory)
    with again:  # the pins were released, so they can be claimed again
        assert again.healthy


def test_a_callback_that_raises_does_not_stop_the_line(factory: MockFactory) -> None:
    seen: list[int] = []

    def flaky(trigger: Trigger) -> None:
        seen.append(trigger.seq)
        raise RuntimeError("consumer bug")

    io = open_lineio(f"gpio://?trigger={EYE}", flaky, pin_factory=factory)
    eye = factory.pin(EYE)
    with io:
        for _ in range(2):
            eye.drive_high()
            time.sleep(0.03)
            eye.drive_low()
            time.sleep(0.03)
        assert wait_until(lambda: seen == [1, 2])


def test_a_pin_in_use_is_a_lineio_error_naming_the_url(factory: MockFactory) -> None:
    first = open_lineio(f"gpio://?trigger={EYE}", pin_factory=factory)
    with first:
        clash = open_lineio(f"gpio://?trigger=BOARD13&reject=BOARD11", pin_factory=factory)  # BOARD11 = GPIO17
        with pytest.raises(LineIOError, match=r"gpio://\?trigger=BOARD13&reject=BOARD11: cannot claim the pins"):
            clash.start()
        assert not clash.healthy
    with open_lineio("gpio://?trigger=BOARD13", pin_factory=factory):  # GPIO27 was released after the failure
        pass


def test_an_unknown_pin_is_a_lineio_error(factory: MockFactory) -> None:
    with pytest.raises(LineIOError, match="GPIO99"):
        open_lineio("gpio://?trigger=GPIO99", pin_factory=factory).start()


def test_none_never_triggers_and_only_counts_rejects() -> None:
    io = open_lineio("none://")
    assert isinstance(io, NoLineIO)
    with io:
        assert io.healthy
        assert io.reject(3) is True and io.reject() is True
        assert io.status().rejects == 2 and io.status().triggers == 0


@pytest.mark.parametrize(("url", "message"), [
    ("gpio17", "not a line I/O URL"),
    ("modbus://plc:502", "unknown scheme 'modbus'"),
    ("gpio://", "no trigger and no reject pin"),
    ("gpio://?trigger=GPIO17&reject=GPIO17", "same pin"),
    ("gpio://?trigger=pin17", "trigger pin 'pin17' is not a pin name"),
    ("gpio://?trigger=GPIO17&pulse_ms=0", "pulse_ms must be milliseconds from 1 to 10000, got '0'"),
    ("gpio://?trigger=GPIO17&debounce_ms=fast", "debounce_ms must be milliseconds"),
    ("gpio://?trigger=GPIO17&trigger_active=1", "trigger_active must be high or low, got '1'"),
    ("gpio://?trigger=GPIO17&active_low=1", "unknown option active_low"),
    ("gpio://?trigger=GPIO17&trigger=GPIO18", "option trigger given twice"),
    ("gpio://pi4?trigger=GPIO17", "gpio:// takes no host"),
    ("lineio+tcp://:9200", "missing host"),
    ("lineio+tcp://conveyor", "missing port"),
    ("lineio+tcp://conveyor:port", "port must be a number"),
    ("lineio+tcp://conveyor:9200/x", "unexpected path"),
    ("lineio+tcp://conveyor:9200?timeout=1&keepalive=2", "timeout (1s) must be longer than keepalive (2s)"),
    ("lineio+tcp://conveyor:9200?retry=1", "unknown option retry"),
    ("none://anything", "none:// takes no host"),
])
def test_bad_urls_name_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(BadLineIOUrl) as caught:
        open_lineio(url)
    assert url in str(caught.value)
    assert message in str(caught.value)
    assert isinstance(caught.value, LineIOError) and isinstance(caught.value, DeviceError)


def test_pin_factory_is_for_gpio_only(factory: MockFactory) -> None:
    with pytest.raises(BadLineIOUrl, match="pin_factory"):
        open_lineio("none://", pin_factory=factory)


def test_good_urls_make_the_right_line_io(factory: MockFactory) -> None:
    io = open_lineio("GPIO://?trigger=17&reject=BOARD13&pulse_ms=200&min_gap_ms=40", pin_factory=factory)
    assert isinstance(io, GpioLineIO) and isinstance(io, LineIO)
    assert (io.trigger_pin, io.reject_pin, io.pulse, io.min_gap, io.debounce) == (17, "BOARD13", 0.2, 0.04, 0.005)


class TestEdgeFilter:
    """The debounce as pure logic, times in seconds."""

    def run(self, flt: EdgeFilter, edges: list[tuple[bool, float]], end: float) -> list[float]:
        out: list[float] = []
        for level, at in edges:
            out += flt.settle(at)
            flt.edge(level, at)
        out += flt.settle(end)
        return out

    def test_a_held_edge_triggers_at_its_start(self) -> None:
        assert self.run(EdgeFilter(0.01, 0), [(True, 1.0)], end=1.02) == [1.0]

    def test_not_before_debounce(self) -> None:
        flt = EdgeFilter(0.01, 0)
        assert self.run(flt, [(True, 1.0)], end=1.005) == []
        assert flt.deadline() == pytest.approx(1.01)
        assert flt.settle(1.01) == [1.0]
        assert flt.deadline() is None

    def test_bounce_counts_once_at_the_first_edge(self) -> None:
        edges = [(True, 1.0), (False, 1.001), (True, 1.002), (False, 1.003), (True, 1.004)]
        assert self.run(EdgeFilter(0.01, 0), edges, end=1.1) == [1.0]

    def test_zero_debounce_counts_every_edge(self) -> None:
        edges = [(True, 1.0), (False, 1.001), (True, 1.002)]
        assert self.run(EdgeFilter(0, 0), edges, end=1.002) == [1.0, 1.002]

    def test_min_gap(self) -> None:
        flt = EdgeFilter(0, 0.1)
        edges = [(True, 1.0), (False, 1.01), (True, 1.05), (False, 1.06), (True, 1.2)]
        assert self.run(flt, edges, end=1.3) == [1.0, 1.2]
        assert flt.suppressed == 1
