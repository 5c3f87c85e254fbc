"""gpio:// line I/O on gpiozero's mock pins: photo-eye edges, debounce, minimum gap, the reject pulse, URLs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.errors import DeviceError
from drivers.lineio import (BadLineIOUrl, EdgeFilter, GpioLineIO, LineIO, LineIOError, NoLineIO, Trigger,
                            open_lineio)
from tests.clock import ManualClock
from tests.waiting import wait_until

EYE, GATE = "GPIO17", "GPIO27"


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def clock() -> ManualClock:
    """The line I/O's clock: time passes only when a test advances it, and its I/O thread has caught up when
    `advance` returns, so the debounce and the pulse are asserted in exact milliseconds, whatever the load."""
    return ManualClock(threads=1)


class Line:
    """A started gpio:// line I/O on a manual clock, with its mock pins and the triggers it reported."""

    def __init__(self, factory: MockFactory, clock: ManualClock, query: str) -> None:
        self.clock = clock
        self.triggers: list[Trigger] = []
        self.threads: list[str] = []
        self.io = open_lineio(f"gpio://?{query}", self._on_trigger, pin_factory=factory, clock=clock)
        self.eye = factory.pin(EYE)
        self.gate = factory.pin(GATE)
        self.gate_changes: list[tuple[float, bool]] = []   # (clock time, state) of every gate switch

    def _on_trigger(self, trigger: Trigger) -> None:
        self.threads.append(threading.current_thread().name)
        self.triggers.append(trigger)

    def start(self) -> Line:
        self.io.start()
        self.clock.settle()   # the I/O thread is up and waiting
        original = self.gate._change_state

        def change(value: bool) -> bool:   # note when, on the line's clock, the gate switched
            changed = original(value)
            if changed:
                self.gate_changes.append((self.clock.now(), bool(value)))
            return changed

        self.gate._change_state = change  # type: ignore[method-assign]
        return self

    def item(self, hold: float = 0.03, gap: float = 0.03) -> float:
        """One item passes an active-high photo-eye; returns the time of its leading edge."""
        at = self.clock.now()
        self.eye.drive_high()
        self.clock.advance(hold)
        self.eye.drive_low()
        self.clock.advance(gap)
        return at

    def at(self) -> list[float]:
        return [t.at for t in self.triggers]


DEFAULT = f"trigger={EYE}&reject={GATE}&pulse_ms=60&debounce_ms=5"
EPS = 1e-9   # a boundary is asserted a nanosecond past it: 1000.099 + 0.001 need not equal 1000.0 + 0.1 in floats


@pytest.fixture
def start_line(factory: MockFactory, clock: ManualClock) -> Iterator[Callable[[str], Line]]:
    """Start a gpio:// line I/O with the given options; it is stopped, and its thread checked, afterwards."""
    before = threading.active_count()
    started: list[Line] = []

    def start(query: str = DEFAULT) -> Line:
        line = Line(factory, clock, query).start()
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
    edges = [line.item() for _ in range(3)]
    assert [t.seq for t in line.triggers] == [1, 2, 3]
    assert line.at() == edges == pytest.approx([1000.0, 1000.06, 1000.12])
    assert line.threads == [f"lineio gpio://?{DEFAULT}"] * 3
    assert line.io.status().triggers == 3


def test_the_trigger_is_timed_at_the_leading_edge_not_after_the_debounce(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=100")
    edge = line.clock.now()
    line.eye.drive_high()
    line.clock.advance(0.099)
    assert line.triggers == []                     # not confirmed before the debounce has passed
    line.clock.advance(0.001 + EPS)
    assert line.at() == [edge]                     # the edge's time, although it was confirmed 100 ms later


def test_bounce_within_debounce_gives_one_trigger(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=30")
    first = line.clock.now()
    for _ in range(5):  # contact bounce: five short flips, then the item holds the beam
        line.eye.drive_high()
        line.clock.advance(0.002)
        line.eye.drive_low()
        line.clock.advance(0.002)
    line.eye.drive_high()
    line.clock.advance(0.029)
    assert line.triggers == []                     # 29 ms of steady beam: not yet
    line.clock.advance(0.001 + EPS)
    assert line.at() == [first]                    # one item, timed at the first flip
    for _ in range(3):  # bounce as the item leaves, then a gap
        line.eye.drive_low()
        line.clock.advance(0.002)
        line.eye.drive_high()
        line.clock.advance(0.002)
    line.eye.drive_low()
    line.clock.advance(0.1)
    assert line.at() == [first]


def test_a_spike_shorter_than_debounce_is_no_item(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=30")
    line.eye.drive_high()
    line.clock.advance(0.029)
    line.eye.drive_low()
    line.clock.advance(0.1)
    assert line.triggers == []
    edge = line.item(hold=0.06)
    assert line.at() == [edge]


def test_an_item_that_breaks_the_beam_twice_counts_once_within_min_gap(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=2&min_gap_ms=150")
    first = line.item(hold=0.02, gap=0.02)  # one item with a gap in it (two bottles in one shrink pack)
    line.item(hold=0.02, gap=0.2)           # 40 ms after the first: within min_gap
    third = line.item(hold=0.02, gap=0.02)  # the next item, after the gap
    assert [t.seq for t in line.triggers] == [1, 2]
    assert line.at() == [first, third]
    assert line.io.status().suppressed == 1


def test_reject_pulses_the_gate_for_pulse_ms_without_blocking(line: Line) -> None:
    assert line.gate.state is False
    begun = line.clock.now()
    assert line.io.reject(1) is True            # returned with the clock standing still: it did not wait
    assert line.gate.state is True
    line.clock.advance(0.059)
    assert line.gate.state is True
    line.clock.advance(0.001 + EPS)
    assert line.gate.state is False
    assert line.gate_changes == [(begun, True), (pytest.approx(begun + 0.06), False)]
    line.gate.assert_states([False, True, False])
    assert line.io.status().rejects == 1


def test_a_second_reject_during_the_pulse_keeps_the_gate_open(line: Line) -> None:
    begun = line.clock.now()
    line.io.reject(1)
    line.clock.advance(0.04)
    line.io.reject(2)
    line.clock.advance(0.059)                   # 99 ms after the first: the second pulse still runs
    assert line.gate.state is True
    line.clock.advance(0.001 + EPS)
    assert line.gate.state is False
    assert line.gate_changes == [(begun, True), (pytest.approx(begun + 0.1), False)]   # 40 ms + a fresh 60 ms
    assert len(line.gate.states) == 3
    assert line.io.rejects == 2


def test_the_trigger_callback_may_reject_at_once_on_the_machine_clock(factory: MockFactory) -> None:
    # The default clock, as on the line: nothing here depends on how long anything takes.
    io = open_lineio(f"gpio://?trigger={EYE}&reject={GATE}&pulse_ms=20", lambda t: io.reject(t.seq),
                     pin_factory=factory)
    gate = factory.pin(GATE)
    with io:
        factory.pin(EYE).drive_high()
        assert wait_until(lambda: io.rejects == 1)
        assert wait_until(lambda: len(gate.states) == 3)
    gate.assert_states([False, True, False])


def test_the_trigger_callback_may_reject_at_once(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&reject={GATE}&pulse_ms=20&debounce_ms=5")
    line.io.on_trigger = lambda t: line.io.reject(t.seq)
    edge = line.clock.now()
    line.eye.drive_high()
    line.clock.advance(0.005 + EPS)            # the trigger is confirmed: the gate opens from its callback
    assert line.io.rejects == 1 and line.gate.state is True
    line.clock.advance(0.02)
    assert line.gate_changes == [(pytest.approx(edge + 0.005), True), (pytest.approx(edge + 0.025), False)]


def test_active_low_inverts_the_photo_eye_and_the_gate(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&reject={GATE}&trigger_active=low&reject_active=low&pulse_ms=40")
    assert line.eye.pull == "up"  # an NPN photo-eye pulls the line low when it sees an item
    assert line.eye.state is True
    assert line.gate.state is True  # a low-active relay board: high is off
    edge = line.clock.now()
    line.eye.drive_low()
    line.clock.advance(0.005 + EPS)
    assert line.at() == [edge]
    line.eye.drive_high()                      # the item leaves: no second trigger
    line.clock.advance(0.05)
    assert line.at() == [edge]
    line.io.reject()
    assert line.gate.state is False
    line.clock.advance(0.04 + EPS)
    assert line.gate.state is True


def test_pull_off_leaves_the_input_floating(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&trigger_active=low&pull=off")
    assert line.eye.pull == "floating"
    line.eye.drive_high()
    line.clock.advance(0.02)
    edge = line.clock.now()
    line.eye.drive_low()
    line.clock.advance(0.005 + EPS)
    assert line.at() == [edge]


def test_an_item_in_front_of_the_eye_at_start_is_not_counted(factory: MockFactory, clock: ManualClock) -> None:
    factory.pin(EYE).drive_high()
    line = Line(factory, clock, f"trigger={EYE}&pull=off").start()
    try:
        clock.advance(0.05)
        assert line.triggers == []
        factory.pin(EYE).drive_low()
        clock.advance(0.02)
        edge = clock.now()
        factory.pin(EYE).drive_high()
        clock.advance(0.005 + EPS)
        assert line.at() == [edge]
    finally:
        line.io.stop()


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


def test_a_callback_that_raises_does_not_stop_the_line(start_line: Callable[[str], Line]) -> None:
    line = start_line(f"trigger={EYE}&debounce_ms=5")
    seen: list[int] = []

    def flaky(trigger: Trigger) -> None:
        seen.append(trigger.seq)
        raise RuntimeError("consumer bug")

    line.io.on_trigger = flaky
    for _ in range(2):
        line.item()
    assert seen == [1, 2]


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

    def test_settling_at_the_deadline_settles(self) -> None:
        # deadline() and settle() agree to the last bit: 1000.029 + 0.03 - 1000.029 < 0.03 in floats, and a
        # filter that said "due" and then "not yet" kept the I/O thread spinning until time moved on.
        flt = EdgeFilter(0.03, 0)
        flt.edge(True, 1000.029)
        deadline = flt.deadline()
        assert deadline is not None
        assert flt.settle(deadline) == [1000.029]

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


def test_a_line_io_says_whether_it_has_a_reject_gate() -> None:
    # Without one the station hands the line no gate, and the run's summary counts the items to take off by hand.
    assert open_lineio("none://").has_gate is False
    assert GpioLineIO("gpio://?trigger=GPIO17", pin_factory=MockFactory()).has_gate is False
    assert GpioLineIO("gpio://?trigger=GPIO17&reject=GPIO27", pin_factory=MockFactory()).has_gate is True
    assert open_lineio("lineio+tcp://127.0.0.1:9104").has_gate is True
