"""The loop both lines run, one turn after another on the line's own thread (or stepped by hand):

- one inbox for reads, product barcodes, photo-eye triggers and the operator's commands, handled in the order they
  happened by one thread; reads are bounded (a babbling scanner must not fill memory) and counted against a
  ``FloodMeter`` (station/line/flood.py); each turn handles at most ``max_inbox_per_turn`` items, so printing,
  timeouts and commits keep their pace whatever a device sends;
- the operator's commands (pause, resume, stop), the same on both lines but for what may refuse a resume;
- ``GroupCommit``: when the decisions gathered since the last commit are due to be written in one transaction;
- the run: ``start()`` on a thread, or ``begin()`` / ``step()`` / ``finish()`` on the caller's (tests, tools).

What a turn does besides (print, time out, check the batch, commit) is the line's own: ``LineEngine`` (printed
stamps) and ``PreprintedLine`` (pre-printed stamps) fill in the hooks at the bottom of ``LineLoop``.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from station.alarms import Alarm
from station.domain import DeliveryState, Stamp
from station.line.events import LineEvents, LineState, RunFinished, RunSummary
from station.line.flood import FloodMeter
from station.ports import BatchReads, ItemTrigger, RejectGate, VerificationRead

log = logging.getLogger("station.line")

MAX_QUEUED_READS = 1000      # reads waiting in a line's inbox, at most; more are counted and recorded, not queued
MAX_INBOX_PER_TURN = 100     # inbox items a line handles per turn before it prints, times out and commits
COMMIT_MAX_STAMPS = 256      # stamps decided (activated, voided) that make a commit due before its interval is up
COMMIT_MAX_RECORDS = 1024    # scan records (or refusals) that do the same: a flood of strays is written in pieces
IDLE_WAIT_S = 0.05           # the longest a turn waits for the inbox when nothing else is due


class LineCommand(enum.Enum):
    """What an operator asks of a line; queued on the line's inbox so it is handled in order with the reads."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


@dataclass(frozen=True)
class ProductRead:
    """A read of the product's own barcode (EAN-13/GTIN), queued on the inbox beside the stamp reads."""

    read: VerificationRead


class GroupCommit:
    """When the decisions gathered since the last commit are due: once the oldest has waited ``interval_s``, or
    ``max_stamps`` stamps (``max_records`` scan records or refusals) are waiting, whichever comes first. One fsync
    for all of them; the line calls ``mark()`` for each decision and ``taken()`` when they go to the writer."""

    def __init__(self, clock: Callable[[], float], interval_s: float, max_stamps: int = COMMIT_MAX_STAMPS,
                 max_records: int = COMMIT_MAX_RECORDS) -> None:
        self._clock = clock
        self.interval_s = interval_s
        self.max_stamps = max_stamps
        self.max_records = max_records
        self.pending_since: float | None = None   # when the oldest decision not yet given to the writer was made

    @property
    def pending(self) -> bool:
        return self.pending_since is not None

    def mark(self) -> None:
        """A decision was gathered: the commit's interval runs from the first."""
        if self.pending_since is None:
            self.pending_since = self._clock()

    def taken(self) -> None:
        """Everything gathered went to the writer."""
        self.pending_since = None

    def due(self, now: float, stamps: int, records: int) -> bool:
        return self.pending_since is not None and (
            now - self.pending_since >= self.interval_s or stamps >= self.max_stamps or records >= self.max_records)

    def time_left(self, now: float) -> float | None:
        """How long until the interval is up (None: nothing gathered)."""
        if self.pending_since is None:
            return None
        return self.pending_since + self.interval_s - now


class LoopSettings(Protocol):
    @property
    def max_inbox_per_turn(self) -> int: ...


class LineLoop(LineEvents):
    """A line's inbox, commands and run, its summary and its reject gate. Subclasses set ``store``, ``settings``,
    ``reject_gate`` and ``_summary``, and fill in the hooks."""

    _thread_name = "line"
    store: BatchReads
    settings: LoopSettings
    reject_gate: RejectGate | None
    _summary: RunSummary

    def __init__(self, *, clock: Callable[[], float], flood: FloodMeter) -> None:
        super().__init__(LineState.STOPPED)
        self._clock = clock
        self._flood = flood
        self._in_flood = False                  # the read being handled is one of a flood
        self._flood_alarmed: set[str] = set()   # serious alarms already raised during this flood
        self._inbox: queue.Queue[Any] = queue.Queue()
        # Reads are bounded (a babbling scanner must not fill memory); triggers and commands never are.
        self.max_queued_reads = MAX_QUEUED_READS
        self._reads_lock = threading.Lock()
        self._reads_queued = 0
        self._reads_dropped = 0
        self._reads_in = self._reads_out = 0   # reads queued and taken, ever (the inbox is first in, first out)
        self._flood_in = 0                     # the last read queued while the meter said flood
        self._done = threading.Event()
        self._done.set()
        self._stop_reason: str | None = None   # what stop() was asked for, read by the line with its STOP
        self._thread: threading.Thread | None = None
        self._stepper: Iterator[None] | None = None   # a run begun with begin(), turned by step()
        self._last_stamp: Stamp | None = None
        self.turns = 0   # turns of the loop taken (a test waits on it to know the line has looked again)

    # -- public, any thread -----------------------------------------------------------------------------------

    def start(self, batch_id: int, count: int | None = None) -> None:
        """Run the line for ``count`` items (None: until stopped), on the line's own thread."""
        self._begin_run(batch_id, count)
        self._thread = threading.Thread(target=self._run, args=(count,), name=self._thread_name, daemon=True)
        self._set_state(LineState.RUNNING)
        self._started()
        self._thread.start()

    def begin(self, batch_id: int, count: int | None = None) -> None:
        """As start(), but no thread: each step() runs one turn of the loop on the caller's thread (tests, tools).

        The turn is the one the line's thread runs, except that it never waits for the inbox, and a step waits
        for the commit it started, so what was decided in it is written and announced when step() returns.
        """
        self._begin_run(batch_id, count)
        self._stepper = self._running(count, wait=False)
        self._set_state(LineState.RUNNING)
        self._started()

    def step(self) -> bool:
        """One turn of a run begun with begin(): True while the run goes on, False once it has finished."""
        if self._stepper is None:
            raise RuntimeError("no run begun: call begin() first")
        try:
            next(self._stepper)
        except StopIteration:
            self._stepper = None
            return False
        self._settle()
        return True

    def finish(self, max_steps: int = 1000) -> None:
        """End a run begun with begin(): stop, and step until it has finished. Stamps still in flight keep their
        windows (move the clock past them, or read them, first): RuntimeError if the run cannot end without it."""
        self.stop()
        for _ in range(max_steps):
            if not self.step():
                return
        raise RuntimeError(f"the run did not finish in {max_steps} steps{self._unfinished()}")

    def submit_read(self, read: VerificationRead) -> None:
        """A stamp read from the verification device (scanner or camera; called on its reader thread). At most
        max_queued_reads wait: beyond that a read is counted and recorded as dropped, never queued."""
        self._queue_read(read)

    def submit_product_read(self, read: VerificationRead) -> None:
        """A read of the product's own barcode (EAN-13/GTIN) from the product scanner, if the line has one."""
        self._queue_read(ProductRead(read))

    @property
    def reads_queued(self) -> int:
        return self._reads_queued

    @property
    def summary(self) -> RunSummary:
        return self._summary

    @property
    def last_stamp(self) -> Stamp | None:
        """The stamp last decided and written (activated or voided)."""
        return self._last_stamp

    def refresh_delivery(self, since: dt.datetime | None = None) -> RunSummary:
        """Fill the summary's delivery counters from the outbox (events created since the run started)."""
        started = since or dt.datetime.fromtimestamp(self._summary.started_at, dt.timezone.utc).replace(tzinfo=None)
        delivery = self.store.counts(since=started).delivery
        self._summary.confirmed = delivery.get(DeliveryState.CONFIRMED, 0)
        self._summary.sent = self._summary.confirmed + delivery.get(DeliveryState.SENT, 0)
        self._summary.pending = delivery.get(DeliveryState.PENDING, 0) + delivery.get(DeliveryState.SENT, 0)
        return self._summary

    def pause(self) -> None:
        self._inbox.put(LineCommand.PAUSE)

    def resume(self) -> None:
        """Back to running after a pause or a fault (refused while the printer is faulted or the batch locked)."""
        self._inbox.put(LineCommand.RESUME)

    def stop(self, reason: str | None = None) -> None:
        """No new stamps; those already on the line still get their window. ``reason`` is what the run's summary
        says stopped it (default: the operator), e.g. the alarm a headless line cannot be resumed from."""
        if reason is not None:
            self._stop_reason = reason   # set before the command is queued: the line reads it when it takes STOP
        self._inbox.put(LineCommand.STOP)

    def _stopped_by(self) -> str:
        """Who stopped the line, for the summary of a STOP taken from the inbox."""
        return self._stop_reason or "operator"

    def wait(self, timeout: float | None = None) -> bool:
        """Until the current run has finished (True), or the timeout passed (False)."""
        return self._done.wait(timeout)

    # -- the inbox, any thread --------------------------------------------------------------------------------

    def _queue_read(self, item: VerificationRead | ProductRead) -> bool:
        """Put a read on the inbox unless max_queued_reads are already waiting: then it is only counted (the line
        records how many). Counted against the flood meter either way. Called on the device's thread."""
        flood = self._flood
        flood.reads(self._clock())
        with self._reads_lock:
            if self._reads_queued >= self.max_queued_reads:
                self._reads_dropped += 1
                return False
            self._reads_queued += 1
            self._reads_in += 1
            if flood.flooding:
                self._flood_in = self._reads_in
            self._inbox.put(item)   # under the lock: the inbox's order is the count's
        return True

    def _read_taken(self) -> bool:
        """Count a read taken from the inbox; True when it was queued during a flood."""
        with self._reads_lock:
            self._reads_queued -= 1
            self._reads_out += 1
            return self._reads_out <= self._flood_in

    def _take_dropped(self) -> int:
        """Reads not queued since the last call."""
        with self._reads_lock:
            dropped, self._reads_dropped = self._reads_dropped, 0
            return dropped

    # -- the line's thread ------------------------------------------------------------------------------------

    def _run(self, count: int | None) -> None:
        for _ in self._running(count, wait=True):
            pass

    def _running(self, count: int | None, *, wait: bool) -> Iterator[None]:
        """The whole run, one turn of the loop per step: the line's thread runs it through, step() one turn."""
        try:
            while True:
                self._drain_inbox(self._wait_time(count) if wait else 0.0)
                if self._turn(count):
                    break
                self.turns += 1
                yield
            self._wind_up()
        except Exception as exc:  # a bug or a dead database must not leave the line looking "running"
            log.exception("%s failed", self._line_name)
            self._summary.stopped_by = f"internal error: {exc}"
            self._abandon()
        finally:
            self._finish()

    def _finish(self) -> None:
        self._summary.finished_at = time.time()
        self._final_counts()
        self._set_state(LineState.STOPPED, self._summary.stopped_by or "done")
        self._emit(RunFinished(self._summary))
        self._done.set()

    def _drain_inbox(self, timeout: float) -> None:
        """Handle what arrived, at most max_inbox_per_turn items: the rest waits for the next turn."""
        try:
            item = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            item = None
        handled = 0
        while item is not None:
            try:
                if isinstance(item, VerificationRead):
                    # A read queued during a flood is one of it, even if the flood is over when it is handled.
                    self._in_flood = self._read_taken() or self._flood.flooding
                    self._on_read(item)
                elif isinstance(item, ItemTrigger):
                    self._on_trigger(item)
                elif isinstance(item, ProductRead):
                    self._read_taken()
                    self._on_product_read(item.read)
                else:
                    self._on_command(item)
            finally:
                self._inbox.task_done()
            handled += 1
            if handled >= self.settings.max_inbox_per_turn:
                break
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
        self._in_flood = False
        dropped = self._take_dropped()
        if dropped:
            self._on_dropped(dropped)
        flood = self._flood.take_started(self._clock())
        if flood is not None:
            self._raise(Alarm.raise_("scanner_flood", flood))
        if not self._flood.flooding:
            self._flood_alarmed.clear()

    def _on_command(self, cmd: LineCommand) -> None:
        if cmd is LineCommand.PAUSE and self._state is LineState.RUNNING:
            self._set_state(LineState.PAUSED, "operator")
        elif cmd is LineCommand.RESUME and self._state in (LineState.PAUSED, LineState.FAULT):
            if self._may_resume():
                self._set_state(LineState.RUNNING, "operator")
        elif cmd is LineCommand.STOP and self._state not in (LineState.STOPPED, LineState.STOPPING):
            self._summary.stopped_by = self._summary.stopped_by or self._stopped_by()
            self._set_state(LineState.STOPPING, self._stopped_by())

    def _reject(self, item: int | None = None) -> None:
        """The item must leave the line now (a voided or refused stamp's, or one that got none), whatever the
        database is doing: the reject gate pushes it off, or it is counted to be taken off by hand."""
        self._summary.rejected += 1
        if self.reject_gate is not None:
            try:
                if self.reject_gate.reject(item) is False:
                    self._summary.reject_failed += 1
            except Exception:
                log.exception("reject gate failed for item %s", item)
                self._summary.reject_failed += 1

    def _begin_run(self, batch_id: int, count: int | None) -> None:
        if (self._thread is not None and self._thread.is_alive()) or self._stepper is not None:
            raise RuntimeError("the line is already running")
        self._prepare(batch_id, count)
        self._stop_reason = None
        self._done.clear()

    # -- what each line fills in ------------------------------------------------------------------------------

    def _prepare(self, batch_id: int, count: int | None) -> None:
        """Check the batch and set up a run (on the caller's thread; raise ValueError to refuse it)."""
        raise NotImplementedError

    def _started(self) -> None:
        """The run is RUNNING: anything that must stop it at once."""

    def _wait_time(self, count: int | None) -> float:
        """How long this turn may wait for the inbox."""
        raise NotImplementedError

    def _turn(self, count: int | None) -> bool:
        """The rest of a turn, after the inbox; True when the run is over."""
        raise NotImplementedError

    def _wind_up(self) -> None:
        """A run that ended well: write what is left."""

    def _abandon(self) -> None:
        """After an error: drop what cannot be written."""

    def _final_counts(self) -> None:
        """The last figures of the summary, before RunFinished."""

    def _settle(self) -> None:
        """After a step: wait for what the turn started (its commit)."""

    def _unfinished(self) -> str:
        """What keeps a run from finishing, for finish()'s error (": …")."""
        return ""

    def _may_resume(self) -> bool:
        """The operator asked to resume: True to run again; False after raising the alarm that says why not."""
        return True

    def _on_read(self, read: VerificationRead) -> None:
        raise NotImplementedError

    def _on_product_read(self, read: VerificationRead) -> None:
        """A product barcode read (ignored by a line without a product check)."""

    def _on_trigger(self, trigger: ItemTrigger) -> None:
        """The photo-eye saw an item (ignored by a line that prints nothing)."""

    def _on_dropped(self, dropped: int) -> None:
        """``dropped`` reads were not queued (the inbox was full): put it on record."""
