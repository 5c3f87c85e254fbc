"""Line I/O: the photo-eye that triggers each item and the reject gate that pushes voided items off the line.

One interface, `LineIO`, chosen by URL with `open_lineio(url, on_trigger)`:

- `gpio://?trigger=GPIO17&reject=GPIO27[&pulse_ms=150&debounce_ms=5&min_gap_ms=0&trigger_active=high`
  `&reject_active=high&pull=on]` — pins on this computer through gpiozero (lgpio or RPi.GPIO on a Raspberry
  Pi; tests pass a `gpiozero.pins.mock.MockFactory` as `pin_factory`). Pin names are gpiozero's: `GPIO17`,
  `BCM17`, `17` (all BCM numbering), `BOARD11` or `J8:11` (header position). Either pin may be left out
  (a line with a photo-eye and no gate, or a gate and no photo-eye), not both: that is `none://`.
  `trigger_active=low` for a photo-eye that pulls its output low when it sees an item (NPN / sinking);
  `reject_active=low` for the many relay boards that switch on a low input. `pull=on` (the default) enables
  the Pi's internal resistor towards the inactive level (up for active-low, down for active-high);
  `pull=off` for a sensor with a push-pull output or an external resistor.
  `debounce_ms`: an input change counts only once the input has held the new level that long; a spike
  shorter than that is ignored. `min_gap_ms`: a trigger closer than that to the previous one is not counted
  (counted as `suppressed` instead), so an item whose shape breaks the beam twice counts once; set it to
  about half the item pitch at the fastest line speed. The debounce is done here, the same on every pin
  factory, not with gpiozero's `bounce_time` (whose meaning differs between lgpio and RPi.GPIO).
- `lineio+tcp://host:port[?pulse_ms=150&keepalive=1&timeout=3&connect_timeout=2]` — a line I/O module on
  the network (the conveyor simulator, a small Ethernet I/O box, an ESP32) speaking the protocol below. The
  station connects and reconnects with back-off (0.1 s doubling to 5 s); the module does its own debouncing
  and pulses its own gate.
- `none://` — no photo-eye and no gate (free-running printing): never triggers; `reject()` only counts.

The lineio+tcp protocol, version 1: ASCII lines ending in LF (CR LF accepted), fields split by one space.

    module -> station   HELLO 1 <name> <session> <last>
                                              first line on every connection: protocol version, module name,
                                              a token the module picks at power-up (so the station can tell a
                                              reboot from a network blip) and the number of the last item it
                                              has counted (0 if none)
                        T <seq>               the photo-eye saw item <seq> (1, 2, 3 …, increasing; a jump
                                              means items passed that no station was told about)
                        K <seq>               the gate was pulsed for <seq> (the answer to R)
                        E <text>              the module refused a line it did not understand
    station -> module   R <seq> <pulse_ms>    pulse the reject gate for item <seq> (0: no particular item)
    either way          PING                  keepalive; the other side answers PONG at once
                        PONG

Item numbers belong to the module's session: after a network blip (same session) a reject for an item seen
before it is still sent; after a reboot (new session) it is not, since the number now means another item.
The station counts as `missed` the items the module counted while it was disconnected (same session: `last`
minus the last number it saw) or before a rebooted module was reached (new session: `last`), and any jump
in `T` numbers on a connection.

The station sends PING every `keepalive` seconds and drops the connection (then reconnects) when nothing has
arrived for `timeout` seconds, so a module that hangs or a cable that is cut is noticed within `timeout`.

Threads: each LineIO has one I/O thread; `on_trigger` is called on it and must be quick (hand the trigger to a
queue); an exception from it is logged and the thread carries on. `reject()` never waits for the pulse: the
GPIO gate is switched on in the caller's thread and switched off by the I/O thread; on TCP it writes one line.

`Trigger.seq` is numbered by the LineIO itself, 1, 2, 3 … for its whole life, across reconnects and module
restarts, so it can key the item in the line engine; `Trigger.module_seq` is the module's own number.

One module of about 740 lines: the interface, its URL forms, the lineio+tcp protocol this docstring specifies and
its two implementations (GPIO with the pure EdgeFilter, TCP with the pure parse_module_line) are read together.

About 750 lines in one module: one interface and its three backings (none, GPIO pins, a TCP I/O module) share
the edge filter, the reject pulse and the status record; each backing alone is under 250 lines.
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.errors import DeviceError
from drivers.reconnect import DeviceThread, Link
from drivers.scanner import LineFramer, ScanRead
from drivers.transport import TcpTransport, TransportError
from drivers.url_options import UrlOptions, host_and_port

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "1"
_MAX_PULSE_MS = 10_000
_MAX_LINE = 256
_REMEMBERED_SEQS = 10_000  # station seq -> module seq, for rejects of items still on the line


class LineIOError(DeviceError):
    """The line I/O could not start, or a module spoke something that is not the protocol."""


class BadLineIOUrl(LineIOError):
    """A line I/O URL with an unknown scheme, a missing or wrong part, or an unknown option."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """The photo-eye saw an item. `at` is the line I/O's clock (time.monotonic() unless a test gave another) at
    the item's leading edge."""

    seq: int
    at: float
    module_seq: int | None = None


@dataclass(frozen=True, slots=True)
class LineIOStatus:
    """A snapshot for the station's status and the technician screen."""

    url: str
    healthy: bool
    last_error: str | None
    triggers: int
    rejects: int
    rejects_failed: int  # the gate should have fired and could not (pin error, module not connected)
    rejects_unconfirmed: int  # sent to a module that went away before answering K
    missed: int  # items the module numbered that never reached this station (seq jumps)
    suppressed: int  # edges closer than min_gap to the previous trigger


TriggerCallback = Callable[[Trigger], None]


class LineIO(ABC):
    """Photo-eye in, reject gate out. Created stopped; `start()` (or `with`) runs its I/O thread."""

    last_error: str | None = None   # why the line I/O is not healthy, or what failed last; None when all is well

    def __init__(self, url: str, on_trigger: TriggerCallback | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.url = url
        self.on_trigger = on_trigger
        self.clock = clock
        self.triggers = 0
        self.rejects = 0
        self.rejects_failed = 0
        self.rejects_unconfirmed = 0
        self.missed = 0
        self.suppressed = 0
        self._seq = 0
        self._healthy = threading.Event()

    @property
    def has_gate(self) -> bool:
        """A reject gate is configured (none:// has none, nor gpio:// without a reject pin)."""
        return True

    @property
    def healthy(self) -> bool:
        """Started, and the pins are claimed / the module is connected."""
        return self._healthy.is_set()

    def wait_healthy(self, timeout: float) -> bool:
        """Wait until healthy (for start-up checks and tests)."""
        return self._healthy.wait(timeout)

    @abstractmethod
    def start(self) -> None:
        """Claim the pins / start connecting. Raises LineIOError when the line I/O cannot be used at all."""

    @abstractmethod
    def stop(self, timeout: float = 2.0) -> None:
        """Switch the gate off, stop the I/O thread and release the pins or the connection."""

    @abstractmethod
    def reject(self, seq: int | None = None) -> bool:
        """Pulse the reject gate for item `seq` (None: now, for no particular item) without waiting.

        Returns True when the reject was carried out as configured (the pulse started or was sent; on a line
        with no gate, counted) and False when the gate should have fired and could not (logged, counted in
        `rejects_failed`): the item then has to be taken off by hand.
        """

    def status(self) -> LineIOStatus:
        return LineIOStatus(self.url, self.healthy, self.last_error, self.triggers, self.rejects,
                            self.rejects_failed, self.rejects_unconfirmed, self.missed, self.suppressed)

    def _emit(self, at: float, module_seq: int | None = None) -> Trigger:
        self._seq += 1
        self.triggers += 1
        trigger = Trigger(self._seq, at, module_seq)
        callback = self.on_trigger
        if callback is not None:
            try:
                callback(trigger)
            except Exception:
                # The I/O thread must outlive a faulty consumer; the traceback goes to the log.
                log.exception("%s: trigger callback failed for %r", self.url, trigger)
        return trigger

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} {'healthy' if self.healthy else 'not healthy'}>"


def open_lineio(url: str, on_trigger: TriggerCallback | None = None, *, pin_factory: Any = None,
                clock: Clock = SYSTEM_CLOCK) -> LineIO:
    """Return the line I/O for `url`, checked but not started. `pin_factory` is for gpio:// only (tests pass
    a gpiozero MockFactory; None lets gpiozero pick lgpio / RPi.GPIO on a Raspberry Pi). `clock` times the
    debounce, the reject pulse and the reconnect back-off, and stamps each Trigger (tests pass one they move)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise BadLineIOUrl(f"{url}: not a line I/O URL (expected gpio://, lineio+tcp:// or none://)")
    scheme = scheme.lower()
    if pin_factory is not None and scheme != "gpio":
        raise BadLineIOUrl(f"{url}: pin_factory is only for gpio:// URLs")
    if scheme == "gpio":
        return GpioLineIO(url, on_trigger, pin_factory=pin_factory, clock=clock)
    if scheme == "lineio+tcp":
        return TcpLineIO(url, on_trigger, clock=clock)
    if scheme == "none":
        return NoLineIO(url, on_trigger)
    raise BadLineIOUrl(f"{url}: unknown scheme {scheme!r} (expected gpio, lineio+tcp or none)")


# --- the debounce filter (pure) ------------------------------------------------------------------------


class EdgeFilter:
    """Turns raw input changes into item triggers (pure: no pins, no threads; times in seconds).

    A level counts once the input has held it for `debounce`; a trigger is a debounced change to active,
    timed at the first raw rising edge of the run that led to it (so bounce does not delay the item's
    time). A trigger within `min_gap` of the previous one is suppressed. Call `edge()` for every raw change
    and `settle(now)` whenever time passes (at each edge's time before the edge, and by `deadline()`).
    """

    def __init__(self, debounce: float, min_gap: float, level: bool = False, at: float = 0.0) -> None:
        self.debounce = debounce
        self.min_gap = min_gap
        self.reset(level, at)

    def reset(self, level: bool, at: float) -> None:
        """Start from a known level (an item already in front of the eye at start is not counted)."""
        self.stable = level
        self._raw = level
        self._raw_since = at
        self._rise_at: float | None = None
        self._last_trigger: float | None = None
        self.suppressed = 0

    def edge(self, level: bool, at: float) -> None:
        if level == self._raw:
            return
        self._raw, self._raw_since = level, at
        if level and self._rise_at is None:
            self._rise_at = at

    def settle(self, now: float) -> list[float]:
        """Return the trigger times that became certain by `now` (zero or one)."""
        if now < self._raw_since + self.debounce:   # the sum deadline() gives: settle(deadline()) settles
            return []
        if self._raw == self.stable:
            if not self._raw:
                self._rise_at = None  # a spike shorter than debounce: forget it
            return []
        self.stable = self._raw
        if not self.stable:
            self._rise_at = None
            return []
        at = self._rise_at if self._rise_at is not None else self._raw_since
        if self._last_trigger is not None and at - self._last_trigger < self.min_gap:
            self.suppressed += 1
            return []
        self._last_trigger = at
        return [at]

    def deadline(self) -> float | None:
        """When `settle()` must next be called, or None until the next edge."""
        if self._raw != self.stable or (not self._raw and self._rise_at is not None):
            return self._raw_since + self.debounce
        return None


# --- none:// -------------------------------------------------------------------------------------------


class NoLineIO(LineIO):
    """A line with no photo-eye and no gate: printing runs free, rejects are only counted."""

    def __init__(self, url: str, on_trigger: TriggerCallback | None = None) -> None:
        super().__init__(url, on_trigger)
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise BadLineIOUrl(f"{url}: none:// takes no host, path or options")

    @property
    def has_gate(self) -> bool:
        return False

    def start(self) -> None:
        self._healthy.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._healthy.clear()

    def reject(self, seq: int | None = None) -> bool:
        self.rejects += 1
        return True


# --- gpio:// -------------------------------------------------------------------------------------------

_PIN_NAME = re.compile(r"^(?:(?:GPIO|BCM|BOARD|WPI)?\d{1,3}|J\d{1,2}:\d{1,3})$", re.IGNORECASE)
_GPIO_OPTIONS = ("trigger", "reject", "pulse_ms", "debounce_ms", "min_gap_ms", "trigger_active",
                 "reject_active", "pull")


def _pin(url: str, options: UrlOptions, key: str) -> str | int | None:
    value = options.get(key)
    if value is None:
        return None
    if not _PIN_NAME.match(value):
        raise BadLineIOUrl(f"{url}: {key} pin {value!r} is not a pin name (expected e.g. GPIO17, BCM17, 17, "
                           "BOARD11 or J8:11)")
    return int(value) if value.isdigit() else value.upper()


class GpioLineIO(LineIO):
    """A photo-eye and a reject gate on this computer's GPIO pins, through gpiozero."""

    def __init__(self, url: str, on_trigger: TriggerCallback | None = None, *, pin_factory: Any = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(url, on_trigger, clock=clock)
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/") or parts.fragment:
            raise BadLineIOUrl(f"{url}: gpio:// takes no host or path, only options "
                               "(expected gpio://?trigger=GPIO17&reject=GPIO27)")
        options = UrlOptions(url, parts.query, known=_GPIO_OPTIONS, error=BadLineIOUrl)
        self.trigger_pin = _pin(url, options, "trigger")
        self.reject_pin = _pin(url, options, "reject")
        if self.trigger_pin is None and self.reject_pin is None:
            raise BadLineIOUrl(f"{url}: no trigger and no reject pin (give at least one, or use none://)")
        if self.trigger_pin is not None and str(self.trigger_pin) == str(self.reject_pin):
            raise BadLineIOUrl(f"{url}: trigger and reject are the same pin {self.trigger_pin}")
        self.pulse = options.number("pulse_ms", 150, 1, _MAX_PULSE_MS, "milliseconds") / 1000
        self.debounce = options.number("debounce_ms", 5, 0, 1000, "milliseconds") / 1000
        self.min_gap = options.number("min_gap_ms", 0, 0, 60_000, "milliseconds") / 1000
        self.trigger_active_high = options.choice("trigger_active", "high", ("high", "low")) == "high"
        self.reject_active_high = options.choice("reject_active", "high", ("high", "low")) == "high"
        self.pull = options.flag("pull", True)
        self.pin_factory = pin_factory
        self._filter = EdgeFilter(self.debounce, self.min_gap)
        self._cond = threading.Condition()
        self._edges: deque[tuple[bool, float]] = deque()
        self._release_at: float | None = None
        self._stopping = False
        self._eye: Any = None
        self._gate: Any = None
        self._thread = DeviceThread(self._run, f"lineio {url}", logger=log, wake=self._wake)

    def start(self) -> None:
        if self._thread.started:
            raise RuntimeError(f"lineio {self.url} already started")
        from gpiozero import DigitalInputDevice, DigitalOutputDevice, GPIOZeroError

        try:
            if self.reject_pin is not None:
                self._gate = DigitalOutputDevice(self.reject_pin, active_high=self.reject_active_high,
                                                 initial_value=False, pin_factory=self.pin_factory)
            if self.trigger_pin is not None:
                if self.pull:
                    eye = DigitalInputDevice(self.trigger_pin, pull_up=not self.trigger_active_high,
                                             pin_factory=self.pin_factory)
                else:
                    eye = DigitalInputDevice(self.trigger_pin, pull_up=None,
                                             active_state=self.trigger_active_high, pin_factory=self.pin_factory)
                self._eye = eye
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self._close_devices()
            self.last_error = f"{self.url}: cannot claim the pins: {exc}"
            raise LineIOError(self.last_error) from exc
        self._stopping = False
        if self._eye is not None:
            self._filter.reset(bool(self._eye.value), self.clock.monotonic())
            self._eye.when_activated = lambda: self._on_edge(True)
            self._eye.when_deactivated = lambda: self._on_edge(False)
        self._thread.start()
        self.last_error = None
        self._healthy.set()

    def _wake(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def stop(self, timeout: float = 2.0) -> None:
        if not self._thread.started:
            return
        self._thread.stop(timeout)
        with self._cond:
            self._release_at = None
            self._close_devices()  # the gate goes off as its pin is released
        self._healthy.clear()

    def _close_devices(self) -> None:
        for device in (self._eye, self._gate):
            if device is None:
                continue
            try:
                if device is self._gate:
                    device.off()
                device.close()
            except Exception:
                log.exception("%s: closing %r failed", self.url, device)
        self._eye = self._gate = None

    @property
    def has_gate(self) -> bool:
        return self.reject_pin is not None

    def reject(self, seq: int | None = None) -> bool:
        with self._cond:
            self.rejects += 1
            if self.reject_pin is None:
                return True
            gate = self._gate
            if gate is None:
                self.rejects_failed += 1
                log.error("%s: reject of item %s while the line I/O is stopped", self.url, seq)
                return False
            try:
                gate.on()
            except Exception as exc:
                self.rejects_failed += 1
                self.last_error = f"{self.url}: reject gate failed: {exc}"
                log.error("%s (item %s)", self.last_error, seq)
                return False
            # A reject during a pulse extends it: two voided items close together keep the gate open.
            self._release_at = self.clock.monotonic() + self.pulse
            self._cond.notify_all()
            return True

    def _on_edge(self, level: bool) -> None:
        # Called on gpiozero's callback thread (on a MockPin: the thread driving it); only queue the edge.
        with self._cond:
            self._edges.append((level, self.clock.monotonic()))
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._edges and not self._due(self.clock.monotonic()):
                    self.clock.wait(self._cond, self._wait_time(self.clock.monotonic()))
                if self._stopping:
                    return
                edges = list(self._edges)
                self._edges.clear()
                now = self.clock.monotonic()
                if self._release_at is not None and now >= self._release_at:
                    self._release_at = None
                    self._release()
            times: list[float] = []
            for level, at in edges:
                times += self._filter.settle(at)
                self._filter.edge(level, at)
            times += self._filter.settle(self.clock.monotonic())
            self.suppressed = self._filter.suppressed
            for at in times:
                self._emit(at)

    def _due(self, now: float) -> bool:
        deadline = self._filter.deadline()
        return (deadline is not None and now >= deadline) or (
            self._release_at is not None and now >= self._release_at)

    def _wait_time(self, now: float) -> float | None:
        deadlines = [d for d in (self._filter.deadline(), self._release_at) if d is not None]
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _release(self) -> None:
        try:
            if self._gate is not None:
                self._gate.off()
        except Exception as exc:
            self.last_error = f"{self.url}: reject gate failed to switch off: {exc}"
            log.error("%s", self.last_error)


# --- lineio+tcp:// -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModuleLine:
    """One line from a module, parsed: `kind` is HELLO, T, K, E, PING or PONG. For HELLO, `text` is the
    module's name and `seq` the last item it counted."""

    kind: str
    seq: int | None = None
    text: str = ""
    session: str = ""


def parse_module_line(line: str) -> ModuleLine:
    """Parse one line a module sent (pure). Raises LineIOError naming what is wrong."""
    words = line.strip().split(" ")
    kind = words[0]
    if kind in ("T", "K"):
        if len(words) != 2 or not words[1].isdigit() or int(words[1]) < 1:
            raise LineIOError(f"{kind} needs one item number from 1, got {line!r}")
        return ModuleLine(kind, int(words[1]))
    if kind in ("PING", "PONG") and len(words) == 1:
        return ModuleLine(kind)
    if kind == "HELLO":
        if len(words) >= 2 and words[1] != PROTOCOL_VERSION:
            raise LineIOError(f"module speaks protocol version {words[1]!r}; this station speaks "
                              f"{PROTOCOL_VERSION}")
        if len(words) != 5 or not all(words[2:4]) or not words[4].isdigit():
            raise LineIOError(f"HELLO needs version, name, session and last item number, got {line!r}")
        return ModuleLine(kind, int(words[4]), words[2], words[3])
    if kind == "E":
        return ModuleLine(kind, text=" ".join(words[1:]))
    raise LineIOError(f"not a line I/O message: {line[:60]!r}")


def reject_line(module_seq: int, pulse_ms: int) -> bytes:
    """The station's R line (pure)."""
    return f"R {module_seq} {pulse_ms}\n".encode("ascii")


_TCP_OPTIONS = ("pulse_ms", "keepalive", "timeout", "connect_timeout")


class TcpLineIO(LineIO):
    """A line I/O module on the network; see the module docstring for the protocol."""

    def __init__(self, url: str, on_trigger: TriggerCallback | None = None, *, max_backoff: float = 5.0,
                 read_timeout: float = 0.05, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(url, on_trigger, clock=clock)
        hostname, port, parts = host_and_port(url, expected="lineio+tcp://host:port", error=BadLineIOUrl)
        options = UrlOptions(url, parts.query, known=_TCP_OPTIONS, error=BadLineIOUrl)
        self.pulse_ms = int(options.number("pulse_ms", 150, 1, _MAX_PULSE_MS, "milliseconds"))
        self.keepalive = options.number("keepalive", 1.0, 0.05, 60, "seconds")
        self.timeout = options.number("timeout", 3.0, 0.1, 300, "seconds")
        if self.timeout <= self.keepalive:
            raise BadLineIOUrl(f"{url}: timeout ({self.timeout:g}s) must be longer than keepalive "
                               f"({self.keepalive:g}s)")
        connect_timeout = options.number("connect_timeout", 2.0, 0.1, 60, "seconds")
        host = f"[{hostname}]" if ":" in hostname else hostname
        # A reject line is a dozen bytes: a write that cannot go out in half a second means the module stopped
        # reading, and reject() must not hang on it (it fails and the I/O thread reconnects).
        self.transport = TcpTransport(f"tcp://{host}:{port}?connect_timeout={connect_timeout:g}&write_timeout=0.5")
        self.module_name: str | None = None
        self._framer = LineFramer(b"\n", _MAX_LINE)
        self._read_timeout = read_timeout
        self._lock = threading.Lock()  # writes on the transport, and the connection's state
        self._session: str | None = None  # the module's power-up token: its item numbers mean something only in it
        self._seqs: OrderedDict[int, tuple[str, int]] = OrderedDict()  # station seq -> (session, module seq)
        self._unconfirmed: dict[int, float] = {}  # module seq -> when R was sent
        self._last_module_seq: int | None = None
        self._last_rx = self._last_ping = 0.0
        self._thread = DeviceThread(self._run, f"lineio {url}", logger=log)
        self._stop = self._thread.stopping
        self._link = Link(url, "line I/O module", stop=self._stop, logger=log, clock=clock, max_backoff=max_backoff,
                          connected=self._healthy)

    @property
    def last_error(self) -> str | None:
        return self._link.last_error

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._thread.stop(timeout)

    def reject(self, seq: int | None = None) -> bool:
        with self._lock:
            self.rejects += 1
            if seq is None:
                module_seq = 0
            else:
                known = self._seqs.get(seq)
                if known is None or known[0] != self._session:
                    # The module's numbers restart when it does: sending an old number could reject the
                    # wrong item, so it is not sent at all.
                    return self._failed(seq, "it was seen before the module restarted"
                                        if known else "no such item was triggered (or it is too old)")
                module_seq = known[1]
            if not self._healthy.is_set():
                return self._failed(seq, "the module is not connected")
            try:
                self.transport.write(reject_line(module_seq, self.pulse_ms))
            except TransportError as exc:
                return self._failed(seq, str(exc))  # the I/O thread notices the broken connection
            if module_seq:
                self._unconfirmed[module_seq] = self.clock.monotonic()
            return True

    def _failed(self, seq: int | None, why: str) -> bool:
        self.rejects_failed += 1
        log.error("%s: reject of item %s not sent: %s", self.url, seq, why)
        return False

    # The I/O thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._connect()
                except (TransportError, LineIOError) as exc:
                    self._lost(str(exc))
                    self._link.pause()
                    continue
                try:
                    self._serve()
                except (TransportError, LineIOError) as exc:
                    self._lost(str(exc))
                    self._link.pause()
        finally:
            self._lost(None)

    def _connect(self) -> None:
        self.transport.open()
        self._framer.reset()
        deadline = self.clock.monotonic() + self.timeout
        pending: list[str] = []
        while not pending:
            if self._stop.is_set():
                return
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise LineIOError(f"{self.url}: connected, but no HELLO within {self.timeout:g}s "
                                  "(is this a line I/O module?)")
            pending = self._lines(self.transport.read(min(remaining, 0.1)))
        try:
            first = parse_module_line(pending[0])
        except LineIOError as exc:
            raise LineIOError(f"{self.url}: {exc}") from None
        if first.kind != "HELLO":
            raise LineIOError(f"{self.url}: expected HELLO first, got {pending[0][:60]!r}")
        self._hello(first)
        with self._lock:
            self._session = first.session
            self._unconfirmed.clear()
            self.module_name = first.text
            self._last_rx = self._last_ping = self.clock.monotonic()
            self._link.recovered(self.module_name)
        for line in pending[1:]:
            self._handle(line)

    def _serve(self) -> None:
        while not self._stop.is_set():
            data = self.transport.read(self._read_timeout)
            now = self.clock.monotonic()
            if data:
                self._last_rx = now
                for line in self._lines(data):
                    self._handle(line)
            elif now - self._last_rx > self.timeout:
                raise LineIOError(f"{self.url}: module silent for {self.timeout:g}s")
            if now - self._last_ping >= self.keepalive:
                self._last_ping = now
                self._send(b"PING\n")

    def _lines(self, data: bytes) -> list[str]:
        lines = []
        for event in self._framer.feed(data):
            if isinstance(event, ScanRead):
                lines.append(event.text.strip())
            elif event.reason != "empty":
                log.warning("%s: line I/O module sent an unusable line (%s): %r", self.url, event.reason,
                            event.raw[:60])
        return lines

    def _send(self, data: bytes) -> None:
        with self._lock:
            self.transport.write(data)

    def _handle(self, line: str) -> None:
        try:
            message = parse_module_line(line)
        except LineIOError as exc:
            log.warning("%s: %s", self.url, exc)
            return
        if message.kind == "T":
            assert message.seq is not None
            self._item(message.seq)
        elif message.kind == "K":
            with self._lock:
                self._unconfirmed.pop(message.seq or 0, None)
        elif message.kind == "PING":
            self._send(b"PONG\n")
        elif message.kind == "E":
            log.warning("%s: module refused a line: %s", self.url, message.text)
        elif message.kind == "HELLO":
            log.warning("%s: HELLO in the middle of a connection ignored: %s", self.url, line)

    def _hello(self, hello: ModuleLine) -> None:
        """Count the items the module numbered that this station never heard of."""
        last = hello.seq or 0
        if self._session is None:
            if last:
                log.info("%s: module %s had counted %d item(s) before the station first connected", self.url,
                         hello.text, last)
        elif hello.session == self._session:
            unseen = last - (self._last_module_seq or 0)
            if unseen > 0:
                self.missed += unseen
                log.warning("%s: %d item(s) passed the photo-eye while the module was disconnected", self.url,
                            unseen)
        else:
            self.missed += last
            log.warning("%s: module %s restarted (session %s, was %s)%s", self.url, hello.text, hello.session,
                        self._session, f"; {last} item(s) passed before it was reached" if last else "")
        self._last_module_seq = last

    def _item(self, module_seq: int) -> None:
        at = self.clock.monotonic()
        last = self._last_module_seq
        if last is not None and module_seq > last + 1:
            self.missed += module_seq - last - 1
            log.warning("%s: %d item(s) passed the photo-eye without reaching the station (module seq %d "
                        "after %d)", self.url, module_seq - last - 1, module_seq, last)
        elif last is not None and module_seq <= last:
            log.warning("%s: module numbered an item %d after %d (numbers must increase)", self.url, module_seq,
                        last)
        self._last_module_seq = module_seq
        with self._lock:
            self._seqs[self._seq + 1] = (self._session or "", module_seq)
            if len(self._seqs) > _REMEMBERED_SEQS:
                self._seqs.popitem(last=False)
        self._emit(at, module_seq)

    def _lost(self, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._link.closed()
            else:
                # One form for every failure: this line I/O's URL, then the reason (not the inner tcp:// URL).
                reason = error.removeprefix(f"{self.transport.url}: ").removeprefix(f"{self.url}: ")
                self._link.lost(f"{self.url}: {reason}")
            unconfirmed = sorted(self._unconfirmed)
            self._unconfirmed.clear()
            self.transport.close()
        if unconfirmed:
            self.rejects_unconfirmed += len(unconfirmed)
            log.error("%s: the module went away before confirming the reject of item(s) %s: check them by hand",
                      self.url, ", ".join(map(str, unconfirmed)))
