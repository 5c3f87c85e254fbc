"""What a line tells the world: its state, its events and its run's summary, and the listeners that hear them;
shared by the printed line and the pre-printed line."""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.epcis import timezone_of
from station.alarms import Alarm, Severity
from station.domain import Stamp
from station.quality import DISCLAIMER

log = logging.getLogger("station.line")

MAX_ALARMS = 50


class LineState(str, enum.Enum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"          # by the operator
    FAULT = "fault"            # by a device fault or a serious alarm; resumes on the operator's word (or by itself)
    STOPPING = "stopping"      # no new stamps; waiting for those in flight


@dataclass(frozen=True)
class StationIdentity:
    site: str
    station: str
    resolver: str
    read_point: str
    tz_offset: str = "+07:00"

    @property
    def tzinfo(self) -> dt.timezone:
        return timezone_of(self.tz_offset)


# Events a line tells its listeners about (the UI bridge turns them into Qt signals; the CLI prints them).

@dataclass(frozen=True)
class StateChanged:
    state: LineState
    reason: str = ""
    # A FAULT the line leaves by itself (a printer fault with auto_resume, once the printer is ready): every other
    # one waits for a person to resume, which a headless run cannot do (it stops instead).
    clears_by_itself: bool = False


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
    unused: int = 0                # serials reserved and never printed, given back at the end (never published)
    rejected: int = 0              # items that had to leave the line (a voided stamp's, or one that got no stamp)
    reject_gate: bool = False      # the line has a reject gate; without one those items are taken off by hand
    reject_failed: int = 0         # of them, those the gate could not push off
    sent: int = 0
    confirmed: int = 0
    pending: int = 0
    quality: Counter[str] = field(default_factory=Counter)
    stopped_by: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    delivery_problem: str = ""     # set by the runtime: why the broker refuses delivery (station.relay)
    stop_alarm: str = ""           # set by the runtime: the alarm the run ended on, in full (stopped_by is its code)

    @property
    def voided_total(self) -> int:
        return sum(self.voided.values())

    @property
    def rate_per_min(self) -> float:
        elapsed = (self.finished_at or time.time()) - self.started_at
        return 60.0 * self.activated / elapsed if elapsed > 0 else 0.0

    def heading(self, kind: str = "") -> str:
        requested = self.requested if self.requested is not None else "until stopped"
        return f"run of batch {self.batch_lot}{kind} (figures of this run only): requested {requested}"

    def rejects(self) -> str:
        """What became of the items that had to leave the line, or "" when there were none."""
        if not self.rejected:
            return ""
        if not self.reject_gate:
            return f"{_items(self.rejected)} to take off the line by hand (no reject gate)"
        fired = f"reject gate fired {self.rejected - self.reject_failed}"
        if self.reject_failed:
            fired += f", could not fire for {_items(self.reject_failed)}: take them off by hand"
        return fired

    def delivery(self) -> str:
        return (f"events of this run: sent {self.sent}, confirmed by the server {self.confirmed}, "
                f"waiting {self.pending}")

    def lines(self) -> list[str]:
        voids = ", ".join(f"{k} {v}" for k, v in sorted(self.voided.items())) or "none"
        rejects = self.rejects()
        lines = [
            self.heading(),
            f"printed {self.printed}, verified {self.verified}, activated {self.activated}"
            + (f"; {self.unused} serials reserved and not printed, kept as unused (not published)"
               if self.unused else ""),
            f"voided {self.voided_total} ({voids})" + (f"; {rejects}" if rejects else ""),
            self.delivery(),
            f"rate {self.rate_per_min:.0f} items/min" + (f"; stopped by {self.stopped_by}" if self.stopped_by else ""),
        ]
        if self.quality:
            grades = " ".join(f"{g} {n}" for g, n in sorted(self.quality.items()))
            lines.append(f"print quality ({DISCLAIMER}): {grades}")
        return lines + self.notes()

    def notes(self) -> list[str]:
        """The lines every summary ends with: the alarm the run ended on, a broker refusing delivery."""
        notes = []
        if self.stop_alarm:
            notes.append(f"the run ended on the alarm {self.stop_alarm}")
        if self.delivery_problem:
            notes.append(f"delivery refused by the broker, events kept in the outbox: {self.delivery_problem}")
        return notes


def _items(n: int) -> str:
    return f"{n} item" + ("" if n == 1 else "s")


class LineEvents:
    """The one way a line tells the world what happens: its state, its alarms and its events to listeners.

    Listeners are called on the line's own thread: keep them short, or hand the event to your own thread.
    """

    _line_name = "line"

    def __init__(self, initial_state: LineState = LineState.STOPPED) -> None:
        self._listeners: list[Callable[[Any], None]] = []
        self._alarms: list[Alarm] = []
        self._state = initial_state
        self._state_lock = threading.Lock()
        self._state_reason = ""

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self._listeners.append(listener)

    @property
    def state(self) -> LineState:
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

    def _set_state(self, state: LineState, reason: str = "", *, clears_by_itself: bool = False) -> None:
        with self._state_lock:
            # A fault for another reason is announced again: a printer fault (which clears by itself) that becomes
            # a batch lock (which does not) must reach whoever waits for the fault to clear.
            if self._state is state and not (state is LineState.FAULT and reason != self._state_reason):
                return
            self._state, self._state_reason = state, reason
        log.info("%s %s%s", self._line_name, state.value, f" ({reason})" if reason else "")
        self._emit(StateChanged(state, reason, clears_by_itself))

    def _raise(self, alarm: Alarm) -> None:
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
