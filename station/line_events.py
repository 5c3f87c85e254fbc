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
        self._done = threading.Event()
        self._done.set()
        self._listeners: list[Callable[[Any], None]] = []
        self._alarms: list[Alarm] = []
        self._state = initial_state
        self._state_lock = threading.Lock()
        self._stop_reason: str | None = None   # what stop() was asked for, read by the line with its STOP
        self._state_reason = ""

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
