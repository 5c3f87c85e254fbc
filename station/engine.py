"""The line engine: for each item allocate → print → verify → activate (or void with the reason), on its own thread.

The engine owns the order of the line. Reads from the verification scanner and commands from the operator arrive
on one inbox queue, so they are handled in the order they happened, by one thread, with no locks around the
in-flight stamps. Devices are reached only through the protocols in ``station.ports``.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from station import epcis
from station.alarms import Alarm, Severity, printer_alarm
from station.domain import Batch, DeliveryState, Product, Stamp, StampState, VoidReason
from station.gs1 import digital_link
from station.ports import LabelPrinter, PrinterCondition, PrinterHealth, PrinterPortError, VerificationRead
from station.serials import SerialGenerator
from station.store import ScanRecord, Store, utcnow

log = logging.getLogger(__name__)

# Voids that say something about verification; printer faults and stops are counted but break no streak.
FAILURE_REASONS = frozenset({VoidReason.NO_READ, VoidReason.WRONG_CONTENT, VoidReason.UNREADABLE})
RECENT_DECIDED = 256


class LineState(str, enum.Enum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"          # by the operator
    FAULT = "fault"            # by a device fault; resumes once it clears (auto) or on the operator's word
    STOPPING = "stopping"      # no new stamps; waiting for those in flight


@dataclass(frozen=True)
class LineSettings:
    verify_timeout_s: float = 3.0
    print_ahead: int = 1
    max_consecutive_failures: int = 5
    auto_resume: bool = False
    serial_length: int = 10


@dataclass(frozen=True)
class StationIdentity:
    site: str
    station: str
    resolver: str
    read_point: str
    tz_offset: str = "+07:00"

    @property
    def tzinfo(self) -> dt.timezone:
        sign = -1 if self.tz_offset.startswith("-") else 1
        hours, minutes = (int(x) for x in self.tz_offset[1:].split(":"))
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


# Events the engine tells its listeners about (the UI bridge turns them into Qt signals; the CLI prints them).

@dataclass(frozen=True)
class StateChanged:
    state: LineState
    reason: str = ""


@dataclass(frozen=True)
class StampDecided:
    stamp: Stamp
    read_text: str | None = None


@dataclass(frozen=True)
class AlarmRaised:
    alarm: Alarm


@dataclass(frozen=True)
class RunFinished:
    summary: RunSummary


LineEvent = StateChanged | StampDecided | AlarmRaised | RunFinished


@dataclass
class RunSummary:
    batch_lot: str = ""
    requested: int | None = None
    printed: int = 0
    verified: int = 0
    activated: int = 0
    voided: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    confirmed: int = 0
    pending: int = 0
    stopped_by: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def voided_total(self) -> int:
        return sum(self.voided.values())

    @property
    def rate_per_min(self) -> float:
        elapsed = (self.finished_at or time.time()) - self.started_at
        return 60.0 * self.activated / elapsed if elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        voids = ", ".join(f"{k} {v}" for k, v in sorted(self.voided.items())) or "none"
        return [
            f"batch {self.batch_lot}: requested {self.requested if self.requested is not None else 'until stopped'}",
            f"printed {self.printed}, verified {self.verified}, activated {self.activated}",
            f"voided {self.voided_total} ({voids})",
            f"delivery: sent {self.sent}, confirmed by the server {self.confirmed}, waiting {self.pending}",
            f"rate {self.rate_per_min:.0f} items/min" + (f"; stopped by {self.stopped_by}" if self.stopped_by else ""),
        ]


@dataclass
class _InFlight:
    stamp: Stamp
    deadline: float


class _Command(enum.Enum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


def label_fields(product: Product, batch: Batch, stamp: Stamp) -> dict[str, str | None]:
    """What the label template shows for one stamp (None leaves the template's line out)."""

    def day(d: dt.date | None) -> str | None:
        return d.strftime("%d/%m/%Y") if d else None

    return {
        "qr": stamp.uri,
        "product_name": product.name,
        "producer": product.producer,
        "lot": batch.lot,
        "serial": stamp.serial,
        "gtin": product.gtin,
        "gtin12": product.gtin13[:12] if product.gtin13 else None,
        "production_date": day(batch.production_date),
        "expiry_date": day(batch.expiry_date),
    }


class LineEngine:
    """Runs one batch at a time on the configured printer and verifier."""

    def __init__(
        self,
        store: Store,
        printer: LabelPrinter,
        identity: StationIdentity,
        settings: LineSettings = LineSettings(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.printer = printer
        self.identity = identity
        self.settings = settings
        self._clock = clock
        self._serials = SerialGenerator(settings.serial_length)
        self._inbox: queue.Queue[VerificationRead | _Command] = queue.Queue()
        self._listeners: list[Callable[[LineEvent], None]] = []
        self._thread: threading.Thread | None = None
        self._state = LineState.STOPPED
        self._state_lock = threading.Lock()
        self._inflight: deque[_InFlight] = deque()
        self._recent: dict[str, Stamp] = {}
        self._recent_order: deque[str] = deque()
        self._summary = RunSummary()
        self._alarms: list[Alarm] = []
        self._consecutive_failures = 0
        self._last_stamp: Stamp | None = None
        self._batch_cache: dict[int, Batch] = {}
        self._done = threading.Event()
        self._done.set()

    # -- public, any thread -----------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[LineEvent], None]) -> None:
        """Called on the engine's thread for every event: keep it short, or hand the event to your own thread."""
        self._listeners.append(listener)

    @property
    def state(self) -> LineState:
        return self._state

    @property
    def alarms(self) -> list[Alarm]:
        return list(self._alarms)

    @property
    def last_stamp(self) -> Stamp | None:
        return self._last_stamp

    @property
    def summary(self) -> RunSummary:
        return self._summary

    def recover(self) -> int:
        """Void the stamps a previous run left undecided (a crash or a kill): they were never verified."""
        stale = self.store.in_flight_stamps()
        for stamp in stale:
            self._void(stamp, VoidReason.LINE_STOPPED, "station stopped before this stamp was verified")
        if stale:
            self._raise(Alarm.raise_("interrupted_stamps_voided", f"{len(stale)} stamps"))
        return len(stale)

    def start(self, batch_id: int, count: int | None = None) -> None:
        """Run the line for ``count`` items (None: until stopped)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the line is already running")
        batch = self.store.batch(batch_id)
        if batch.closed:
            raise ValueError(f"batch {batch.lot} is closed: open a new batch")
        product = self.store.product(batch.gtin)
        self.recover()
        self._summary = RunSummary(batch_lot=batch.lot, requested=count, started_at=time.time())
        self._consecutive_failures = 0
        self._done.clear()
        self._thread = threading.Thread(
            target=self._run, args=(product, batch, count), name="line-engine", daemon=True
        )
        self._set_state(LineState.RUNNING)
        self._thread.start()

    def submit_read(self, read: VerificationRead) -> None:
        """A line from the verification scanner (called on the scanner's reader thread)."""
        self._inbox.put(read)

    def pause(self) -> None:
        self._inbox.put(_Command.PAUSE)

    def resume(self) -> None:
        self._inbox.put(_Command.RESUME)

    def stop(self) -> None:
        """Stop printing; stamps already printed still get their verification window."""
        self._inbox.put(_Command.STOP)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def acknowledge_alarms(self) -> None:
        self._alarms.clear()

    # -- the engine's thread ----------------------------------------------------------------------------------

    def _run(self, product: Product, batch: Batch, count: int | None) -> None:
        try:
            self._loop(product, batch, count)
        except Exception as exc:  # a bug or a dead database must not leave the line looking "running"
            log.exception("line engine failed")
            self._summary.stopped_by = f"internal error: {exc}"
            for item in list(self._inflight):
                try:
                    self._void(item.stamp, VoidReason.LINE_STOPPED, "engine error")
                except Exception:
                    log.exception("could not void stamp %s", item.stamp.serial)
            self._inflight.clear()
        finally:
            self._finish()

    def _loop(self, product: Product, batch: Batch, count: int | None) -> None:
        while True:
            self._drain_inbox(timeout=self._wait_time(count))
            now = self._clock()
            while self._inflight and self._inflight[0].deadline <= now:
                item = self._inflight.popleft()
                self._fail(item.stamp, VoidReason.NO_READ,
                           f"no verification read within {self.settings.verify_timeout_s:g}s")
            self._check_printer()
            if self._state is LineState.STOPPING and not self._inflight:
                return
            if count is not None and self._summary.activated >= count and not self._inflight:
                return
            if self._wants_print(count):
                self._print_one(product, batch)

    def _wants_print(self, count: int | None) -> bool:
        """Print while running, below the print-ahead window, until enough stamps are activated or in flight.

        ``count`` is items packed, so a voided stamp's item (taken off by the reject gate and labelled again)
        still needs a good stamp: the run ends at ``count`` activations, not ``count`` prints.
        """
        if self._state is not LineState.RUNNING or len(self._inflight) >= self.settings.print_ahead:
            return False
        return count is None or self._summary.activated + len(self._inflight) < count

    def _wait_time(self, count: int | None) -> float:
        if self._wants_print(count):
            return 0.0
        if self._inflight:
            return max(0.0, min(0.05, self._inflight[0].deadline - self._clock()))
        return 0.05

    def _drain_inbox(self, timeout: float) -> None:
        try:
            item = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            if isinstance(item, VerificationRead):
                self._on_read(item)
            else:
                self._on_command(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _on_command(self, cmd: _Command) -> None:
        if cmd is _Command.PAUSE and self._state is LineState.RUNNING:
            self._set_state(LineState.PAUSED, "operator")
        elif cmd is _Command.RESUME and self._state in (LineState.PAUSED, LineState.FAULT):
            health = self.printer.health()
            if health.can_print:
                self._set_state(LineState.RUNNING, "operator")
            else:
                self._raise(printer_alarm(health.faults, health.condition is PrinterCondition.UNREACHABLE,
                                          health.detail))
        elif cmd is _Command.STOP and self._state not in (LineState.STOPPED, LineState.STOPPING):
            self._summary.stopped_by = self._summary.stopped_by or "operator"
            self._set_state(LineState.STOPPING, "operator")

    def _check_printer(self) -> None:
        health = self.printer.health()
        if self._state is LineState.RUNNING and not health.can_print:
            self._printer_fault(health)
        elif self._state is LineState.FAULT and health.can_print and self.settings.auto_resume:
            self._set_state(LineState.RUNNING, "printer ready again")

    def _printer_fault(self, health: PrinterHealth) -> None:
        alarm = printer_alarm(health.faults, health.condition is PrinterCondition.UNREACHABLE, health.detail)
        self._set_state(LineState.FAULT, alarm.code)
        self._raise(alarm)
        # Labels still in the printer's buffer would come out after the fault is cleared: cancel them, and void
        # every stamp in flight, because none of them can be trusted to be on its item.
        try:
            self.printer.cancel_queued()
        except PrinterPortError as exc:
            log.warning("could not cancel the printer's queued labels: %s", exc)
        while self._inflight:
            item = self._inflight.popleft()
            self._void(item.stamp, VoidReason.PRINTER_FAULT, health.detail or alarm.code)

    def _print_one(self, product: Product, batch: Batch) -> None:
        def make_uri(serial: str) -> str:
            return digital_link(self.identity.resolver, batch.gtin, batch.lot, serial, batch.expiry_date)

        stamp = self.store.allocate_stamp(batch.id, self._serials.next, make_uri)
        try:
            self.printer.print_label(label_fields(product, batch, stamp))
        except PrinterPortError as exc:
            self._void(stamp, VoidReason.PRINTER_FAULT, f"sending the label failed: {exc}")
            self._printer_fault(PrinterHealth(PrinterCondition.UNREACHABLE, (), str(exc)))
            return
        deadline = self._clock() + self.settings.verify_timeout_s
        stamp = self.store.mark_sent_to_printer(stamp.id)
        self._summary.printed += 1
        self._inflight.append(_InFlight(stamp, deadline))

    def _on_read(self, read: VerificationRead) -> None:
        scan_at = utcnow()
        if read.refused is not None or read.text is None:
            detail = f"scanner line refused: {read.refused or 'no text'}"
            if self._inflight:
                item = self._inflight.popleft()
                self._fail(item.stamp, VoidReason.UNREADABLE, detail,
                           scan=ScanRecord(read.source, None, read.raw, "unreadable", read.refused or "", scan_at))
            else:
                self.store.record_scan(ScanRecord(read.source, None, read.raw, "refused_no_stamp_waiting",
                                                  read.refused or "", scan_at))
            return
        text = read.text
        for index, item in enumerate(self._inflight):
            if item.stamp.uri == text:
                # The reads come in line order: stamps printed before this one passed the scanner unread.
                for _ in range(index):
                    skipped = self._inflight.popleft()
                    self._fail(skipped.stamp, VoidReason.NO_READ, "passed the scanner unread (a later stamp was read)")
                self._inflight.popleft()
                self._activate(item.stamp, text, ScanRecord(read.source, text, read.raw, "verified", "", scan_at))
                return
        known = self._recent.get(text)
        if known is not None:
            # A second read of a stamp already decided (read twice, or read late after a timeout): never twice.
            self.store.record_scan(ScanRecord(read.source, text, read.raw, "repeat_read",
                                              f"stamp {known.serial} already {known.state.value}", scan_at), known.id)
            return
        if self._inflight:
            item = self._inflight.popleft()
            self._fail(item.stamp, VoidReason.WRONG_CONTENT, f"read {text[:120]!r} instead of what was printed",
                       scan=ScanRecord(read.source, text, read.raw, "wrong_content", "", scan_at), read_text=text)
        else:
            self.store.record_scan(ScanRecord(read.source, text, read.raw, "stray", "no stamp was waiting", scan_at))
            self._raise(Alarm.raise_("stray_read", text[:120]))

    # -- decisions -------------------------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return dt.datetime.now(self.identity.tzinfo)

    def _extensions(self, stamp: Stamp) -> dict[str, Any]:
        return {
            f"{epcis.EXT_PREFIX}:site": self.identity.site,
            f"{epcis.EXT_PREFIX}:station": self.identity.station,
            f"{epcis.EXT_PREFIX}:batchId": stamp.batch_id,
        }

    def _activate(self, stamp: Stamp, read_text: str, scan: ScanRecord) -> None:
        batch = self._batch_of(stamp)
        event = epcis.activation_event(
            gtin=stamp.gtin, serial=stamp.serial, lot=batch.lot, expiry=batch.expiry_date,
            event_time=self._now(), tz_offset=self.identity.tz_offset, read_point=self.identity.read_point,
            extensions={**self._extensions(stamp), f"{epcis.EXT_PREFIX}:verification": "matched"},
        )
        stamp = self.store.activate(stamp.id, read_text, event, scan=scan)
        self._summary.verified += 1
        self._summary.activated += 1
        self._consecutive_failures = 0
        self._decided(stamp, read_text)

    def _void(self, stamp: Stamp, reason: VoidReason, detail: str, scan: ScanRecord | None = None,
              read_text: str | None = None) -> Stamp:
        event = epcis.void_event(
            gtin=stamp.gtin, serial=stamp.serial, reason=reason.value, event_time=self._now(),
            tz_offset=self.identity.tz_offset, read_point=self.identity.read_point,
            extensions={**self._extensions(stamp), f"{epcis.EXT_PREFIX}:voidDetail": detail[:300]},
        )
        stamp = self.store.void(stamp.id, reason, detail, event, scan=scan, read_text=read_text)
        self._summary.voided[reason.value] += 1
        self._decided(stamp, read_text)
        return stamp

    def _fail(self, stamp: Stamp, reason: VoidReason, detail: str, scan: ScanRecord | None = None,
              read_text: str | None = None) -> None:
        self._void(stamp, reason, detail, scan=scan, read_text=read_text)
        self._raise(Alarm.raise_("verification_failed", f"{stamp.serial}: {detail}"))
        if reason in FAILURE_REASONS:
            self._consecutive_failures += 1
            if (self._consecutive_failures >= self.settings.max_consecutive_failures
                    and self._state not in (LineState.STOPPING, LineState.STOPPED)):
                self._summary.stopped_by = "too_many_failures"
                self._raise(Alarm.raise_("too_many_failures", f"{self._consecutive_failures} in a row"))
                self._set_state(LineState.STOPPING, "too_many_failures")

    def _decided(self, stamp: Stamp, read_text: str | None) -> None:
        self._last_stamp = stamp
        self._recent[stamp.uri] = stamp
        self._recent_order.append(stamp.uri)
        if len(self._recent_order) > RECENT_DECIDED:
            self._recent.pop(self._recent_order.popleft(), None)
        self._emit(StampDecided(stamp, read_text))

    def _batch_of(self, stamp: Stamp) -> Batch:
        batch = self._batch_cache.get(stamp.batch_id)
        if batch is None:
            batch = self._batch_cache[stamp.batch_id] = self.store.batch(stamp.batch_id)
        return batch

    # -- state and events ------------------------------------------------------------------------------------

    def _set_state(self, state: LineState, reason: str = "") -> None:
        with self._state_lock:
            if self._state is state:
                return
            self._state = state
        log.info("line %s%s", state.value, f" ({reason})" if reason else "")
        self._emit(StateChanged(state, reason))

    def _raise(self, alarm: Alarm) -> None:
        if alarm.severity is not Severity.INFO:
            self._alarms.append(alarm)
            del self._alarms[:-50]
        (log.warning if alarm.severity is not Severity.INFO else log.info)("%s", alarm)
        self._emit(AlarmRaised(alarm))

    def _emit(self, event: LineEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a line listener failed on %s", type(event).__name__)

    def _finish(self) -> None:
        self._summary.finished_at = time.time()
        self.refresh_delivery()
        self._set_state(LineState.STOPPED, self._summary.stopped_by or "done")
        self._emit(RunFinished(self._summary))
        self._done.set()

    def refresh_delivery(self, since: dt.datetime | None = None) -> RunSummary:
        """Fill the summary's delivery counters from the outbox (events created since the run started)."""
        started = since or dt.datetime.fromtimestamp(self._summary.started_at, dt.timezone.utc).replace(tzinfo=None)
        delivery: Mapping[DeliveryState, int] = self.store.counts(since=started).delivery
        self._summary.confirmed = delivery.get(DeliveryState.CONFIRMED, 0)
        self._summary.sent = self._summary.confirmed + delivery.get(DeliveryState.SENT, 0)
        self._summary.pending = delivery.get(DeliveryState.PENDING, 0) + delivery.get(DeliveryState.SENT, 0)
        return self._summary


__all__ = [
    "LineEngine", "LineSettings", "LineState", "StationIdentity", "RunSummary", "LineEvent", "StateChanged",
    "StampDecided", "AlarmRaised", "RunFinished", "label_fields", "StampState",
]
