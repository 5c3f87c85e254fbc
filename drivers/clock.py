"""The clock a device thread keeps time by: the machine's monotonic clock, or one a test moves by hand.

A thread that times something (a debounce, a reject pulse, a print, a video's frame rate, a reconnect back-off)
reads `clock.monotonic()` and sleeps only through `clock.wait(condition, timeout)` (called with the condition
held, as `Condition.wait`) or `clock.wait_event(event, timeout)` (as `Event.wait`). A test that passes its own
clock then decides when time passes and asserts on the times it set, not on how long a loaded machine took.

`wait` may return early, as `Condition.wait` may: callers loop on their own predicate and deadline.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock", "SYSTEM_CLOCK"]


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds, only ever increasing (time.monotonic() on the real clock)."""

    def wait(self, cond: threading.Condition, timeout: float | None = None) -> bool:
        """`cond.wait(timeout)`: the caller holds `cond`; a notify or the timeout ends it (or nothing: loop)."""

    def wait_event(self, event: threading.Event, timeout: float | None = None) -> bool:
        """`event.wait(timeout)`: True once the event is set, False when `timeout` seconds passed first."""


class SystemClock:
    """The machine's clock: time.monotonic() and the real waits."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, cond: threading.Condition, timeout: float | None = None) -> bool:
        return cond.wait(timeout)

    def wait_event(self, event: threading.Event, timeout: float | None = None) -> bool:
        return event.wait(timeout)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
