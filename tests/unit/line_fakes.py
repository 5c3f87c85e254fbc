"""Fake ports for driving a real LineEngine on the test's own thread: a printer that records each label's fields
and answers the health it is told, a reject gate that records the items it was asked to reject, a clock moved by
hand, and a real SQLite store with one product and one batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from station.domain import Batch, Product
from station.engine import LineEngine, LineSettings
from station.line.events import AlarmRaised, LineEvent, StampDecided, StationIdentity
from station.ports import ItemTrigger, PrinterCondition, PrinterHealth, PrinterPortError, VerificationRead
from station.store import Store

GTIN = "08938603001013"
IDENTITY = StationIdentity(site="hue", station="line-1", resolver="id.example.vn",
                           read_point="urn:epc:id:sgln:8938603.00001.0")


class FakeClock:
    """The engine's monotonic clock: it moves only when the test says."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        assert seconds >= 0
        self.now += seconds
        return self.now


@dataclass
class FakePrinter:
    """A LabelPrinter: keeps every label's fields; its health is whatever the test sets (READY by default).

    ``fail_sends`` makes the next sends raise PrinterPortError. When the engine asks for a fresh status
    (request_status) the printer answers at once with its condition as set, unless ``answers_status`` is False:
    then the test answers later with set_health(), as a poll thread would.
    """

    clock: FakeClock
    labels: list[Mapping[str, str | None]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    cancels: int = 0
    status_requests: list[float] = field(default_factory=list)
    fail_sends: int = 0
    answers_status: bool = True
    _health: PrinterHealth = field(default_factory=lambda: PrinterHealth(PrinterCondition.READY, (), "ready"))

    def print_label(self, fields: Mapping[str, str | None]) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            raise PrinterPortError("connection reset by peer")
        self.labels.append(dict(fields))
        self.sent_at.append(self.clock())

    def health(self) -> PrinterHealth:
        return self._health

    def set_health(self, condition: PrinterCondition, faults: tuple[str, ...] = (), detail: str = "", *,
                   unprinted: int | None = None, at: float | None = None) -> PrinterHealth:
        """A status reply as of now on the fake clock (``at``: when the printer last gave a format count)."""
        now = self.clock()
        self._health = PrinterHealth(condition, faults, detail or condition.value, unprinted,
                                     now if at is None else at, checked_at=now)
        return self._health

    def request_status(self) -> None:
        self.status_requests.append(self.clock())
        if self.answers_status:
            self._health = replace(self._health, checked_at=self.clock())

    def cancel_queued(self) -> None:
        self.cancels += 1

    @property
    def uris(self) -> list[str]:
        return [str(label["qr"]) for label in self.labels]


@dataclass
class FakeGate:
    rejected: list[int | None] = field(default_factory=list)

    def reject(self, seq: int | None = None) -> None:
        self.rejected.append(seq)


def make_store(tmp_path: Path) -> tuple[Store, Batch]:
    store = Store(tmp_path / "station.db")
    store.sync_products([Product(GTIN, "Mè xừng Thông Hương 250g", "Cơ sở Thông Hương", shelf_life_days=180)])
    batch = store.create_batch(Batch(None, GTIN, "MX2611A", dt.date(2026, 11, 29), dt.date(2027, 5, 28)))
    return store, batch


@dataclass
class Line:
    """A real engine on a real store, the fakes around it, and what it announced."""

    engine: LineEngine
    store: Store
    batch: Batch
    printer: FakePrinter
    gate: FakeGate
    clock: FakeClock
    events: list[LineEvent] = field(default_factory=list)

    def read(self, text: str | None, *, at: float | None = None, one_per_item: bool = True,
             refused: str | None = None, source: str = "verifier", item: int | None = None) -> None:
        raw = (text or "").encode()
        self.engine.submit_read(VerificationRead(text, raw, self.clock() if at is None else at, refused=refused,
                                                 source=source, one_per_item=one_per_item, item=item))

    def trigger(self, seq: int) -> None:
        self.engine.submit_trigger(ItemTrigger(seq, self.clock()))

    def step(self, times: int = 1) -> None:
        for _ in range(times):
            assert self.engine.step(), "the run has ended"

    def advance(self, seconds: float) -> None:
        """Move the clock, then let the engine take one turn at the new time."""
        self.clock.advance(seconds)
        self.step()

    def decided(self) -> dict[str, str]:
        """serial -> "activated" or the void reason, for every stamp announced (after its commit)."""
        out: dict[str, str] = {}
        for event in self.events:
            if isinstance(event, StampDecided):
                stamp = event.stamp
                out[stamp.serial] = stamp.void_reason.value if stamp.void_reason else stamp.state.value
        return out

    def alarms(self) -> list[str]:
        return [e.alarm.code for e in self.events if isinstance(e, AlarmRaised)]

    def alarm(self, code: str) -> AlarmRaised:
        return next(e for e in self.events if isinstance(e, AlarmRaised) and e.alarm.code == code)

    def serial(self, index: int) -> str:
        return str(self.printer.labels[index]["serial"])

    def scans(self, limit: int = 1_000_000) -> list[tuple[str | None, str]]:
        """(text, outcome) of the scan records written (committed), oldest first."""
        return [(scan.text, scan.outcome) for scan in reversed(self.store.scans(limit))]


def make_line(tmp_path: Path, settings: LineSettings = LineSettings(), *, count: int | None = None,
              begin: bool = True, **overrides: object) -> Line:
    store, batch = make_store(tmp_path)
    clock = FakeClock()
    printer = FakePrinter(clock)
    gate = FakeGate()
    engine = LineEngine(store, printer, IDENTITY, replace(settings, **overrides) if overrides else settings,
                        reject_gate=gate, clock=clock)
    line = Line(engine, store, batch, printer, gate, clock)
    engine.add_listener(line.events.append)
    if begin:
        engine.begin(batch.id, count)  # type: ignore[arg-type]
    return line


def lines(tmp_path: Path, **kw: object) -> Iterator[Line]:
    line = make_line(tmp_path, **kw)  # type: ignore[arg-type]
    try:
        yield line
    finally:
        stepper = line.engine._stepper
        if stepper is not None:   # a run left mid-way: end it (its finally announces RunFinished) before closing
            stepper.close()
        line.store.close()
