"""The line engine: for each item allocate → print → verify → activate (or void with the reason), on its own thread.

The engine owns the order of the line. Reads from the verification device, photo-eye triggers and commands from
the operator arrive on one inbox queue, so they are handled in the order they happened, by one thread, with no
locks around the stamps in flight. Devices are reached only through the protocols in ``station.ports``.

Throughput comes from three habits: serials are reserved in blocks, the stamps in flight are pipelined (the
printer never waits for a verification), and decisions are committed in groups — one fsync for every stamp decided
within ``commit_interval_s`` — while the reject gate still fires the moment a stamp is voided.

Its parts, each in its own file under ``station/line/``: the loop it shares with the pre-printed line (``loop.py``:
inbox, commands, group-commit timing, stepping), the stamps in flight and the rules that match a read to one
(``window.py``, pure), the serial pool (``serial_pool.py``), the commit pipeline (``commits.py``), the EPCIS events
and the label's fields (``stamp_events.py``), and the events and summary it announces (``events.py``). What stays
here, over 400 lines, is one class on purpose: printing, matching a read, a printer fault, a batch lock and the
operator's resume all change the same state (the window, the summary, the line's state) on one thread, in an
order that matters — the paper-out path voids the printer's buffer in the same turn as the timeouts look at it.
Split across classes, each would reach into the others' state.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from station.alarms import Alarm, Severity, printer_alarm
from station.domain import Batch, Product, Stamp, StampState, TriggerMode, VoidReason
from station.errors import InvalidIdentifier
from station.gs1 import parse_digital_link
from station.line.commits import Decisions, LineCommits
from station.line.events import (
    AlarmRaised,
    LineEvent,
    LineState,
    RunFinished,
    RunSummary,
    StampDecided,
    StateChanged,
    StationIdentity,
)
from station.line.flood import FloodMeter
from station.line.loop import COMMIT_MAX_STAMPS, IDLE_WAIT_S, MAX_INBOX_PER_TURN, GroupCommit, LineLoop
from station.line.serial_pool import SerialPool
from station.line.stamp_events import label_fields, stamp_activation_event, stamp_void_event
from station.line.window import InFlight, InFlightWindow
from station.product_check import ProductGuard
from station.ports import (
    ItemTrigger,
    LabelPrinter,
    LineStore,
    PrinterCondition,
    PrinterHealth,
    PrinterPortError,
    RejectGate,
    VerificationRead,
)
from station.quality import DISCLAIMER, QualityTrend, grade
from station.store.records import Activation, ScanRecord, Voiding, utcnow

log = logging.getLogger(__name__)

# Voids that say something about verification; printer faults and stops are counted but break no streak.
FAILURE_REASONS = frozenset({VoidReason.NO_READ, VoidReason.WRONG_CONTENT, VoidReason.UNREADABLE})
# Printed stamps whose print is not written yet, at most: the line waits for its commit before printing more. After a
# crash this many allocated serials past the last print written may be on labels (Store.interrupted_stamps): they
# are voided, the rest given back as unused. Prints pile up for two commits (one being written, the next one
# gathering), so 64 is 290 ms of commit latency at 110 items/s: a loaded machine's or an SD card's slow fsync must
# not hold a trigger back (bench/trigger_bench.py measures the triggers' latency under load). The pool holds two
# blocks of line.serial_block (32) at most, so with the default block a kill voids every serial reserved past the
# last print written.
UNRECORDED_PRINTS = 64


@dataclass(frozen=True)
class LineSettings:
    verify_timeout_s: float = 3.0
    print_ahead: int = 1                 # stamps printed and not yet verified, at most (the window of items)
    max_consecutive_failures: int = 5
    auto_resume: bool = False
    serial_length: int = 10
    trigger: TriggerMode = TriggerMode.FREE_RUN
    stop_on_foreign_stamp: bool = True   # a stamp that is not ours, or one already used, stops the line
    commit_interval_s: float = 0.01      # decisions wait at most this long to share one commit
    serial_block: int = 32               # serials reserved per database write
    match_window_items: int | None = 10  # an unread stamp this many items before a read one has passed unread
    printer_status_wait_s: float = 1.0   # a stamp timing out that may still be in the printer waits at most this
                                         # for the printer's status before it is voided no_read
    max_inbox_per_turn: int = MAX_INBOX_PER_TURN   # reads, triggers, commands handled per turn, at most
    commit_max_stamps: int = COMMIT_MAX_STAMPS     # stamps decided that make a commit due before its interval
    flood_min_reads_per_s: int = 200     # a verifier sending more reads than this a second, and
    flood_reads_per_item: float = 10.0   # this many times the items printed, floods: scanner_flood, and its reads
                                         # blame no stamp (each stamp is decided by its own read or windows)
    repeat_read_s: float = 1.0           # a stamp already decided, read again within this of its last read and
                                         # within the item window, is the same label seen again (the verifier's
                                         # dedupe time); any other read of it is a duplicate_stamp


class LineEngine(LineLoop):
    """Runs one batch at a time on the configured printer and verifier."""

    _thread_name = "line-engine"

    def __init__(
        self,
        store: LineStore,
        printer: LabelPrinter,
        identity: StationIdentity,
        settings: LineSettings = LineSettings(),
        *,
        reject_gate: RejectGate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.printer = printer
        self.identity = identity
        self.settings = settings
        self.reject_gate = reject_gate
        super().__init__(clock=clock, flood=FloodMeter.per_second(settings.flood_min_reads_per_s,
                                                                 settings.flood_reads_per_item))
        self._inflight = InFlightWindow(settings.match_window_items, settings.repeat_read_s)
        self._pool = SerialPool(store, identity.resolver, settings.serial_block, settings.serial_length)
        self._triggers: deque[ItemTrigger] = deque()
        self._items = 0
        self._summary = RunSummary()
        self._consecutive_failures = 0
        self._batch_cache: dict[int, Batch] = {}
        self._trend = QualityTrend()
        self._fault_is_printer = True  # FAULT from the printer clears by itself; from a foreign stamp it does not
        self._lock_checked = 0.0
        self._locked_reason: str | None = None
        self._batch_id: int | None = None
        self._guard: ProductGuard | None = None
        self._run_args: tuple[Product, Batch, int | None] | None = None
        # Decided but not yet committed: flushed together, then announced.
        self._commits = LineCommits(store, GroupCommit(clock, settings.commit_interval_s, settings.commit_max_stamps))
        self.commits = 0

    # -- public, any thread -----------------------------------------------------------------------------------

    @property
    def quality_trend(self) -> QualityTrend:
        return self._trend

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def recover(self) -> int:
        """Settle the stamps a previous run left undecided (a crash or a kill). Those that may be on a label were
        never verified: voided (line_stopped). Serials reserved and never sent to the printer are given back as
        unused, publishing nothing. Returns how many were voided."""
        stale, unprinted = self.store.interrupted_stamps(UNRECORDED_PRINTS)
        for stamp in stale:
            self._void(stamp, VoidReason.LINE_STOPPED, "station stopped before this stamp was verified", reject=False)
        self._flush(wait=True)
        if unprinted:
            released = self.store.release_unused([s.id for s in unprinted if s.id is not None],
                                                 "reserved, never printed (the station stopped first)")
            log.info("%d serials reserved by the interrupted run and never printed are kept as unused", released)
        if stale:
            self._raise(Alarm.raise_("interrupted_stamps_voided", f"{len(stale)} stamps"))
        return len(stale)

    def _prepare(self, batch_id: int, count: int | None) -> None:
        batch = self.store.batch(batch_id)
        if batch.closed:
            raise ValueError(f"batch {batch.lot} is closed: open a new batch")
        if batch.locked:
            raise ValueError(f"batch {batch.lot} is locked ({batch.lock_reason}): unlock it or choose another batch")
        product = self.store.product(batch.gtin)
        self.recover()
        self._summary = RunSummary(batch_lot=batch.lot, requested=count, started_at=time.time(),
                                   reject_gate=self.reject_gate is not None)
        self._batch_id = batch.id
        self._locked_reason = None
        self._guard = ProductGuard(batch)
        self._consecutive_failures = 0
        self._trend = QualityTrend()
        self._triggers.clear()
        self._run_args = (product, batch, count)

    def submit_trigger(self, trigger: ItemTrigger) -> None:
        """The photo-eye saw an item (called on the line I/O thread)."""
        self._inbox.put(trigger)


    # -- the engine's thread ----------------------------------------------------------------------------------

    def _wind_up(self) -> None:
        self._release_pool()
        self._flush(wait=True)

    def _settle(self) -> None:
        self._collect_commit(block=True)

    def _unfinished(self) -> str:
        return f": {len(self._inflight)} stamps in flight"

    def _abandon(self) -> None:
        """After an error: whatever can still be written is voided; the rest is voided at the next start."""
        self._pool.abandon()
        self._commits.gathered.clear()
        for item in list(self._inflight):
            try:
                self._void(item.stamp, VoidReason.LINE_STOPPED, "engine error", reject=False)
                self._flush(wait=True)
            except Exception:
                log.exception("could not void stamp %s", item.stamp.serial)
                self._commits.gathered.voids.clear()
        self._inflight.clear()

    def _turn(self, count: int | None) -> bool:
        now = self._clock()
        self._timeouts(now)
        self._check_printer()
        self._check_lock(self._run_args[1], now)
        if self._state is LineState.STOPPING and not self._inflight:
            return True
        if count is not None and self._summary.activated >= count and not self._inflight:
            return True
        # Print first: a trigger never waits for a commit.
        self._print_ready()
        self._collect_commit(block=False)
        if self._commits.due(self._clock()):
            self._flush(wait=False)
        return False

    def _timeouts(self, now: float) -> None:
        """Void the stamps whose verify window has passed (no_read), oldest first: each once the printer has had its
        say. A stamp the printer may not have printed yet (still in its buffer, or under the head, as far as the
        engine knows) is not a verification failure if the printer has faulted meanwhile: its status is asked
        for, and the stamp waits (at most printer_status_wait_s) for one newer than its deadline. A fault in that
        status voids it printer_fault with the rest of the buffer (_check_printer, in the same turn)."""
        while (entry := self._inflight.expired(now)) is not None:
            health = self._printer_word(entry, now)
            if health is None:
                return   # still waiting for the printer
            if not health.can_print and self._state is LineState.RUNNING:
                return   # the printer's fault decides it, with the buffer
            self._inflight.pop_oldest()
            detail = f"no verification read within {self.settings.verify_timeout_s:g}s"
            if entry.status_asked is not None and health.checked_at < entry.deadline:
                detail += f" (the printer gave no status within {self.settings.printer_status_wait_s:g}s)"
            self._fail(entry, VoidReason.NO_READ, detail)

    def _printer_word(self, entry: InFlight, now: float) -> PrinterHealth | None:
        """The printer's health to decide a timed-out stamp by, or None while a fresh status is still to come."""
        health = self.printer.health()
        if (health.checked_at >= entry.deadline or health.condition is PrinterCondition.UNKNOWN
                or self._state is not LineState.RUNNING or not health.can_print
                or self._inflight.sent_since(entry) > self._unprinted(health)):
            return health   # a status since the deadline, none to be had, a fault known, or printed for sure
        if entry.status_asked is None:
            entry.status_asked = now
            try:
                self.printer.request_status()
            except Exception:
                log.exception("asking the printer for its status failed")
            health = self.printer.health()
            if health.checked_at >= entry.deadline:
                return health
        if now - entry.status_asked >= self.settings.printer_status_wait_s:
            return health
        return None

    def _print_ready(self) -> None:
        """Print every stamp the line is ready for now (free run: fill the window; photo-eye: one per trigger)."""
        product, batch, count = self._run_args
        while self._wants_print(count):
            trigger = self._triggers.popleft() if self.settings.trigger is TriggerMode.PHOTO_EYE else None
            if not self._print_one(product, batch, trigger, count):
                break

    def _wants_print(self, count: int | None) -> bool:
        """Print while running, below the window of items in flight, until enough stamps are activated or in flight.

        ``count`` is items packed, so a voided stamp's item (taken off by the reject gate and labelled again)
        still needs a good stamp: the run ends at ``count`` activations, not ``count`` prints.
        """
        if self._state is not LineState.RUNNING or len(self._inflight) >= self.settings.print_ahead:
            return False
        if self._commits.unrecorded_prints >= UNRECORDED_PRINTS:
            return False  # see UNRECORDED_PRINTS: what a crash can leave unsaid stays bounded
        if self.settings.trigger is TriggerMode.PHOTO_EYE and not self._triggers:
            return False
        return count is None or self._summary.activated + len(self._inflight) < count

    def _wait_time(self, count: int | None) -> float:
        if self._wants_print(count):
            return 0.0
        wait = IDLE_WAIT_S
        oldest = self._inflight.oldest
        if oldest is not None:
            if oldest.status_asked is None:
                wait = min(wait, oldest.deadline - self._clock())
            else:  # waiting for the printer's status: look again soon
                wait = min(wait, 0.005, oldest.status_asked + self.settings.printer_status_wait_s - self._clock())
        left = self._commits.group.time_left(self._clock())
        if left is not None:
            wait = min(wait, left)
        if self._commits.in_writer:
            wait = min(wait, 0.005)  # announce a finished commit soon
        return max(0.0, wait)

    def _on_dropped(self, dropped: int) -> None:
        self._record_stray(ScanRecord("verifier", None, b"", "dropped",
                                      f"{dropped} reads not queued: {self.max_queued_reads} were waiting "
                                      f"(a flooding verifier)", utcnow()))

    def _on_product_read(self, read: VerificationRead) -> None:
        """Two products mixed on one line (the classic mix-up): a product barcode of another GTIN stops it."""
        if self._guard is None:
            return
        verdict = self._guard.check(read)
        if verdict.alarm is not None:
            self._raise(verdict.alarm)
        if verdict.stops_line:
            if verdict.refusal is not None:
                self.store.record_refusals([verdict.refusal])
            if self._state in (LineState.RUNNING, LineState.PAUSED):
                self._fault_is_printer = False
                self._set_state(LineState.FAULT, "product_mismatch")

    def _on_trigger(self, trigger: ItemTrigger) -> None:
        if self.settings.trigger is not TriggerMode.PHOTO_EYE:
            return
        if self._state is not LineState.RUNNING or len(self._inflight) + len(self._triggers) >= \
                self.settings.print_ahead:
            # No stamp can be printed for this item now: it must not go on unlabelled.
            if self._state is LineState.RUNNING:
                self._raise(Alarm.raise_("item_without_stamp", f"item {trigger.seq}"))
            self._reject(trigger.seq)
            return
        self._triggers.append(trigger)
        # The item is at the printer now: its label goes out before the rest of the inbox is looked at.
        self._print_ready()

    def _may_resume(self) -> bool:
        """Refused while the batch is locked (asked afresh: the operator may have just unlocked it) or the printer
        cannot print."""
        health = self.printer.health()
        if self._batch_id is not None:
            self._locked_reason = self.store.batch_lock_reason(self._batch_id)
        if self._locked_reason is not None:
            self._raise(Alarm.raise_("batch_locked", self._locked_reason))
            return False
        if health.can_print:
            return True
        self._raise(printer_alarm(health.faults, health.condition is PrinterCondition.UNREACHABLE, health.detail))
        return False

    def _check_printer(self) -> None:
        health = self.printer.health()
        if self._state is LineState.RUNNING and not health.can_print:
            self._printer_fault(health)
        elif (self._state is LineState.FAULT and health.can_print and self.settings.auto_resume
              and self._fault_is_printer):
            self._set_state(LineState.RUNNING, "printer ready again")

    def _check_lock(self, batch: Batch, now: float) -> None:
        """A batch locked while the line runs (a recall, a quality hold) stops it; stamps in flight are voided."""
        if now - self._lock_checked < 0.5:
            return
        self._lock_checked = now
        reason = self.store.batch_lock_reason(batch.id)
        self._locked_reason = reason
        if reason is None or self._state in (LineState.STOPPING, LineState.STOPPED):
            return
        if self._state is LineState.FAULT and not self._fault_is_printer and not self._inflight:
            return
        self._fault_is_printer = False
        self._raise(Alarm.raise_("batch_locked", f"{batch.lot}: {reason}"))
        self._set_state(LineState.FAULT, "batch_locked")
        self._cancel_queued_labels()
        while self._inflight:
            item = self._inflight.pop_oldest()
            self._void(item.stamp, VoidReason.BATCH_LOCKED, f"batch locked: {reason}", item=item.item)
        self._reject_waiting_items()
        self._flush(wait=False)

    def _printer_fault(self, health: PrinterHealth) -> None:
        alarm = printer_alarm(health.faults, health.condition is PrinterCondition.UNREACHABLE, health.detail)
        self._fault_is_printer = True
        self._raise(alarm)  # the alarm first: a screen shows why before it shows the new state
        self._set_state(LineState.FAULT, alarm.code, clears_by_itself=self.settings.auto_resume)
        # Labels still in the printer's buffer would come out after the fault is cleared: cancel them and void
        # their stamps. The printer's last ~HS said how many formats it held; those, the labels sent since and the
        # one under the head are voided, and the older stamps in flight, printed and on their items, go on to
        # verification. A printer that never said: every stamp in flight is voided.
        self._cancel_queued_labels()
        unprinted = self._unprinted(health)
        detail = health.detail or alarm.code
        for _ in range(unprinted):
            entry = self._inflight.pop_newest()
            self._void(entry.stamp, VoidReason.PRINTER_FAULT, f"{detail} (still in the printer)", item=entry.item)
        if self._inflight:
            log.info("printer fault: %d stamp(s) in the printer voided, %d already printed left to verification",
                     unprinted, len(self._inflight))
        self._reject_waiting_items()
        self._flush(wait=False)

    def _cancel_queued_labels(self) -> None:
        """Labels still in the printer's buffer would come out after the fault or the lock is cleared."""
        try:
            self.printer.cancel_queued()
        except PrinterPortError as exc:
            log.warning("could not cancel the printer's queued labels: %s", exc)

    def _reject_waiting_items(self) -> None:
        """Items the photo-eye saw that will get no stamp now: off the line."""
        while self._triggers:
            self._reject(self._triggers.popleft().seq)

    def _unprinted(self, health: PrinterHealth) -> int:
        """How many of the newest stamps in flight may not be printed (from the printer's last ~HS reply)."""
        return self._inflight.unprinted(health.unprinted, health.at)

    def _serious(self, code: str, detail: str) -> None:
        """A foreign or duplicated stamp: the line stops for a person to look (unless configured to go on)."""
        if self._in_flood:   # once per flood: a babbling verifier must not raise thousands
            if code in self._flood_alarmed:
                return
            self._flood_alarmed.add(code)
        alarm = Alarm.raise_(code, detail)
        if not self.settings.stop_on_foreign_stamp:
            alarm = Alarm(code=alarm.code, severity=Severity.WARNING, text=alarm.text, detail=detail)
        self._raise(alarm)
        if self.settings.stop_on_foreign_stamp and self._state is LineState.RUNNING:
            self._fault_is_printer = False
            self._set_state(LineState.FAULT, code)

    def _release_pool(self) -> None:
        self._summary.unused += self._pool.release_unused()

    def _print_one(self, product: Product, batch: Batch, trigger: ItemTrigger | None, count: int | None) -> bool:
        needed = None if count is None else count - self._summary.activated - len(self._inflight)
        stamp = self._pool.take(batch, needed)
        self._items += 1
        item = trigger.seq if trigger is not None else self._items
        self._inflight.last_item = item
        try:
            self.printer.print_label(label_fields(product, batch, stamp))
        except PrinterPortError as exc:
            self._void(stamp, VoidReason.PRINTER_FAULT, f"sending the label failed: {exc}", item=item)
            self._printer_fault(PrinterHealth(PrinterCondition.UNREACHABLE, (), str(exc)))
            return False
        start = trigger.at if trigger is not None else self._clock()
        self._flood.item(self._clock())
        self._commits.printed(stamp.id)  # type: ignore[arg-type]
        self._summary.printed += 1
        self._inflight.add(stamp, start + self.settings.verify_timeout_s, item, self._clock())
        return True

    def _on_read(self, read: VerificationRead) -> None:
        scan_at = utcnow()
        if read.refused is not None or read.text is None:
            detail = f"read refused: {read.refused or 'no text'}"
            if self._in_flood:   # a babbling verifier's refusals are not the next item's
                self._record_stray(ScanRecord(read.source, None, read.raw, "stray", f"{detail}, during a flood",
                                              scan_at))
            elif self._inflight:
                item = self._inflight.pop_oldest()
                self._fail(item, VoidReason.UNREADABLE, detail,
                           scan=ScanRecord(read.source, None, read.raw, "unreadable", read.refused or "", scan_at))
            else:
                self._record_stray(ScanRecord(read.source, None, read.raw, "refused_no_stamp_waiting",
                                              read.refused or "", scan_at))
            return
        text = read.text
        entry = self._inflight.by_link(text)
        if entry is not None:
            # Older stamps still in flight are not voided at once: a camera decodes the labels of one frame in
            # no particular order. Each keeps its window of time, and its window of items: one printed
            # `match_window_items` items before the stamp just read has passed the verifier unread.
            self._inflight.remove(entry)
            self._activate(entry, text, ScanRecord(read.source, text, read.raw, "verified", "", scan_at),
                           read.figures)
            self._inflight.verified(entry, read.at)
            self._passed_unread(entry)
            return
        known = self._inflight.known(text)
        if known is not None:
            self._read_again(read, text, known, scan_at)
            return
        self._unmatched(read, text, scan_at)

    def _read_again(self, read: VerificationRead, text: str, known: Stamp, scan_at: dt.datetime) -> None:
        """A read of a stamp this run already decided: never decided twice. It is the same label seen again only
        on evidence; otherwise it is a copy of the label on another item, as it would be after a restart."""
        item, not_same = self._inflight.read_again(text, read.item, read.at, self._clock())
        if not_same is None:
            self._record_stray(ScanRecord(read.source, text, read.raw, "repeat_read",
                                          f"stamp {known.serial} already {known.state.value}", scan_at))
            return
        detail = f"stamp {known.serial} is already {known.state.value} on item {item}: read again {not_same}"
        self._record_stray(ScanRecord(read.source, text, read.raw, "duplicate_stamp", detail, scan_at))
        self._serious("duplicate_stamp", f"{known.serial} ({known.state.value}), read again {not_same}")

    def _passed_unread(self, matched: InFlight) -> None:
        """Void the stamps printed `match_window_items` or more items before the one just matched."""
        for item in self._inflight.passed_unread(matched):
            self._fail(item, VoidReason.NO_READ, f"passed the verifier unread (item {item.item}; the stamp of item "
                                                 f"{matched.item}, {matched.item - item.item} items later, was read)")

    def _unmatched(self, read: VerificationRead, text: str, scan_at: dt.datetime) -> None:
        """A content that matches no stamp in flight: a misread, a misprint, a foreign or a duplicated stamp."""
        try:
            parsed = parse_digital_link(text)
        except InvalidIdentifier:
            parsed = None
        if parsed is not None:
            entry = self._inflight.by_serial(parsed.gtin, parsed.serial)
            if entry is not None:
                # Our serial, other content: the printed stamp does not say what was sent.
                self._inflight.remove(entry)
                self._fail(entry, VoidReason.WRONG_CONTENT, f"read {text[:120]!r} instead of what was printed",
                           scan=ScanRecord(read.source, text, read.raw, "wrong_content", "", scan_at), read_text=text)
                return
            existing = self.store.find_stamp(parsed.gtin, parsed.serial)
            if existing is not None:
                self._record_stray(ScanRecord(read.source, text, read.raw, "duplicate_stamp",
                                              f"stamp {existing.serial} is already {existing.state.value}", scan_at))
                self._serious("duplicate_stamp", f"{existing.serial} ({existing.state.value})")
                return
        if self._inflight and read.one_per_item and not self._in_flood:
            # A scanner's read is the next item's: that stamp does not hold what was printed.
            item = self._inflight.pop_oldest()
            self._fail(item, VoidReason.WRONG_CONTENT, f"read {text[:120]!r} instead of what was printed",
                       scan=ScanRecord(read.source, text, read.raw, "wrong_content", "", scan_at), read_text=text)
        else:
            # Nothing waiting, or a camera's read (it sees whatever is in view): on record and alarmed, but no
            # stamp in flight is blamed for it; each is voided only by its own windows.
            detail = "no stamp was waiting" if not self._inflight else "matches no stamp in flight"
            if self._in_flood:
                detail += ", during a flood"
            self._record_stray(ScanRecord(read.source, text, read.raw, "stray", detail, scan_at))
            if parsed is None and not self._in_flood:   # a flood has its own alarm
                self._raise(Alarm.raise_("stray_read", text[:120]))
        if parsed is not None:
            self._serious("foreign_stamp", text[:120])

    # -- decisions -------------------------------------------------------------------------------------------

    def _activate(self, entry: InFlight, read_text: str, scan: ScanRecord,
                  figures: Mapping[str, float] | None) -> None:
        stamp = entry.stamp
        batch = self._batch_of(stamp)
        grade_letter = grade(figures) if figures else None
        event = stamp_activation_event(stamp, batch, self.identity, source=scan.source, grade=grade_letter)
        quality = dict(figures) if figures else None
        activation = Activation(stamp.id, read_text, event, scan, grade_letter, quality)  # type: ignore[arg-type]
        self._commits.activated(activation, stamp)
        self._summary.verified += 1
        self._summary.activated += 1
        self._consecutive_failures = 0
        self._remember(stamp, StampState.ACTIVATED)
        if grade_letter:
            self._summary.quality[grade_letter] += 1
            if self._trend.add(grade_letter):
                self._raise(Alarm.raise_("print_quality_drift", f"mean grade {self._trend.mean_grade} "
                                                                f"({DISCLAIMER})"))

    def _void(self, stamp: Stamp, reason: VoidReason, detail: str, scan: ScanRecord | None = None,
              read_text: str | None = None, *, item: int | None = None, reject: bool = True,
              announce: bool = True) -> None:
        event = stamp_void_event(stamp, reason, detail, self.identity)
        if reject:
            self._reject(item)
        self._commits.voided(Voiding(stamp.id, reason, detail, event, scan, read_text),  # type: ignore[arg-type]
                             stamp, announce)
        if announce:
            self._summary.voided[reason.value] += 1
        self._remember(stamp, StampState.VOIDED)
        self._inflight.seen(stamp.uri, item, self._clock())

    def _fail(self, entry: InFlight, reason: VoidReason, detail: str, scan: ScanRecord | None = None,
              read_text: str | None = None) -> None:
        self._void(entry.stamp, reason, detail, scan=scan, read_text=read_text, item=entry.item)
        self._raise(Alarm.raise_("verification_failed", f"{entry.stamp.serial}: {detail}"))
        if reason in FAILURE_REASONS:
            self._consecutive_failures += 1
            if (self._consecutive_failures >= self.settings.max_consecutive_failures
                    and self._state not in (LineState.STOPPING, LineState.STOPPED)):
                self._summary.stopped_by = "too_many_failures"
                self._raise(Alarm.raise_("too_many_failures", f"{self._consecutive_failures} in a row"))
                self._set_state(LineState.STOPPING, "too_many_failures")

    def _record_stray(self, scan: ScanRecord) -> None:
        self._commits.stray(scan)

    def _remember(self, stamp: Stamp, decided: StampState) -> None:
        self._inflight.decided(replace(stamp, state=decided))   # the commit replaces it with the stamp as written

    def _flush(self, *, wait: bool) -> None:
        """Queue everything decided since the last commit as one transaction; announce it once written.

        One commit is in the writer's hands at a time: the line keeps printing and matching while it is written,
        and its stamps are announced (StampDecided) only after the commit, on this thread.
        """
        if self._commits.pending:
            self._collect_commit(block=True)
            self._commits.send()
        if wait:
            self._collect_commit(block=True)

    def _collect_commit(self, *, block: bool) -> None:
        written = self._commits.collect(block=block)
        if written is None:
            return
        if written.locked is not None:
            self._relocked(written.decisions, written.locked)
            return
        self.commits += 1
        for activation, stamp in written.decisions.activations:
            done = replace(stamp, state=StampState.ACTIVATED)
            self._inflight.written(done)
            self._last_stamp = done
            self._emit(StampDecided(done, activation.read_text))
        for voiding, stamp, announce in written.decisions.voids:
            done = replace(stamp, state=StampState.VOIDED, void_reason=voiding.reason, void_detail=voiding.detail)
            self._inflight.written(done)
            if announce:
                self._last_stamp = done
                self._emit(StampDecided(done, voiding.read_text))

    def _relocked(self, refused: Decisions, why: str) -> None:
        """The batch was locked between a read and its commit: the commit wrote nothing. Its activations become
        voids and everything else is written again; the next loop sees the lock and stops the line."""
        self._commits.put_back(refused)
        for activation, stamp in refused.activations:
            self._summary.activated -= 1
            self._summary.verified -= 1
            self._void(stamp, VoidReason.BATCH_LOCKED, why, read_text=activation.read_text)
        self._lock_checked = 0.0

    def _batch_of(self, stamp: Stamp) -> Batch:
        batch = self._batch_cache.get(stamp.batch_id)
        if batch is None:
            batch = self._batch_cache[stamp.batch_id] = self.store.batch(stamp.batch_id)
        return batch

    # -- state and events ------------------------------------------------------------------------------------

    def _final_counts(self) -> None:
        self.refresh_delivery()


# The events, the station's identity and label_fields are said here too: app/, ui/ and tools import them with the
# engine from station.engine.
__all__ = [
    "LineEngine", "LineSettings", "LineState", "TriggerMode", "StationIdentity", "RunSummary", "LineEvent",
    "StateChanged", "StampDecided", "AlarmRaised", "RunFinished", "label_fields", "StampState",
]
