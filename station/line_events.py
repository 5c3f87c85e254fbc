"""State, alarms and listeners shared by the printed line and the pre-printed line."""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from station.alarms import Alarm, Severity

log = logging.getLogger("station.line")

MAX_ALARMS = 50
MAX_QUEUED_READS = 1000      # reads waiting in a line's inbox, at most; more are counted and recorded, not queued
MAX_INBOX_PER_TURN = 100     # inbox items a line handles per turn before it prints, times out and commits


class FloodMeter:
    """Reads against items over short windows of the line's clock: a verifier sending far more reads than the line
    has items (a babbling scanner) floods; the line says so once per flood, and its reads blame no stamp.

    A window floods once its reads reach ``min_reads`` and ``reads_per_item`` times its items; the flood ends with
    the first window that does not. Reads are counted as they are submitted (on the device's thread), so the line
    knows of a flood before it handles the reads that make it; the flood is described (for its alarm) when its
    first window closes, with that window's rates. Thread-safe.
    """

    def __init__(self, *, window_s: float = 0.1, min_reads: int = 20, reads_per_item: float = 10.0) -> None:
        self.window_s = window_s
        self.min_reads = min_reads
        self.reads_per_item = reads_per_item
        self.flooding = False
        self._lock = threading.Lock()
        self._start: float | None = None
        self._reads = 0
        self._items = 0
        self._window_flooded = False
        self._described = False
        self._started: str | None = None   # a flood began: its description, until the line takes it

    def _roll(self, now: float) -> None:
        if self._start is None:
            self._start = now
        elif now - self._start >= self.window_s:
            if not self._window_flooded:
                self.flooding = False
                self._described = False
            elif not self._described:
                self._described = True
                self._started = (f"{self._reads / self.window_s:.0f} reads/s against "
                                 f"{self._items / self.window_s:.0f} items/s")
            self._start = now if now - self._start >= 2 * self.window_s else self._start + self.window_s
            self._reads = self._items = 0
            self._window_flooded = False

    def item(self, now: float, n: int = 1) -> None:
        with self._lock:
            self._roll(now)
            self._items += n

    def reads(self, now: float, n: int = 1) -> None:
        with self._lock:
            self._roll(now)
            self._reads += n
            if self._window_flooded or self._reads < self.min_reads \
                    or self._reads < self.reads_per_item * self._items:
                return
            self._window_flooded = True
            self.flooding = True

    def take_started(self, now: float) -> str | None:
        """The description of a flood that began since the last call (the alarm's detail), else None."""
        with self._lock:
            self._roll(now)
            started, self._started = self._started, None
            return started


class LineCommand(enum.Enum):
    """What an operator asks of a line; queued on the line's inbox so it is handled in order with the reads."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


class LineEvents:
    """The one way a line tells the world what happens: its state, its alarms and its events to listeners.

    Listeners are called on the line's own thread: keep them short, or hand the event to your own thread.
    """

    _line_name = "line"

    def __init__(self, initial_state: Any) -> None:
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
        self._listeners: list[Callable[[Any], None]] = []
        self._alarms: list[Alarm] = []
        self._state = initial_state
        self._state_lock = threading.Lock()
        self._stop_reason: str | None = None   # what stop() was asked for, read by the line with its STOP
        self._state_reason = ""

    def _queue_read(self, item: Any, clock: Callable[[], float], flood: FloodMeter) -> bool:
        """Put a read on the inbox unless max_queued_reads are already waiting: then it is only counted (the line
        records how many). Counted against the flood meter either way. Called on the device's thread."""
        flood.reads(clock())
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

    @property
    def reads_queued(self) -> int:
        return self._reads_queued

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self._listeners.append(listener)

    @property
    def state(self) -> Any:
        return self._state

    @property
    def alarms(self) -> list[Alarm]:
        return list(self._alarms)

    def acknowledge_alarms(self) -> None:
        self._alarms.clear()

    def raise_alarm(self, alarm: Alarm) -> None:
        """An alarm from outside the line (the relay's delivery problems): kept, logged and announced to the
        listeners as the line's own are, on the caller's thread."""
        self._raise(alarm)

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

    def _set_state(self, state: Any, reason: str = "", *, clears_by_itself: bool = False) -> None:
        from station.engine import StateChanged  # the event type both lines announce

        with self._state_lock:
            # A fault for another reason is announced again: a printer fault (which clears by itself) that becomes
            # a batch lock (which does not) must reach whoever waits for the fault to clear.
            if self._state is state and not (state.value == "fault" and reason != self._state_reason):
                return
            self._state, self._state_reason = state, reason
        log.info("%s %s%s", self._line_name, state.value, f" ({reason})" if reason else "")
        self._emit(StateChanged(state, reason, clears_by_itself))

    def _raise(self, alarm: Alarm) -> None:
        from station.engine import AlarmRaised

        if alarm.severity is not Severity.INFO:
            self._alarms.append(alarm)
            del self._alarms[:-MAX_ALARMS]
        (log.warning if alarm.severity is not Severity.INFO else log.info)("%s", alarm)
        self._emit(AlarmRaised(alarm))

    def _emit(self, event: Any) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a line listener failed on %s", type(event).__name__)
