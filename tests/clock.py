"""A clock that moves only when the test says: for the device threads of drivers and simulators (drivers.clock).

    clock = ManualClock()
    io = open_lineio("gpio://?trigger=GPIO17&debounce_ms=30", on_trigger, pin_factory=pins, clock=clock)
    eye.drive_high()
    clock.advance(0.029)          # returns once the line I/O's thread has done all that was due by then
    assert triggers == []
    clock.advance(0.002)
    assert [t.at for t in triggers] == [clock.start]

Times are kept in whole nanoseconds, but the code under test adds floats: a test that asserts right at a boundary
steps a nanosecond past it.

`advance(seconds)` and `settle()` return only when every thread that waits on this clock is back in one of its
waits (has done everything due at the new time), so a test can assert that something did *not* happen yet. A
thread counts once it has waited on the clock the first time; `threads` says how many to expect, so a settle
right after a start waits for them to get there. A thread that waits on something else (a socket) is not seen.
"""

from __future__ import annotations

import threading
import time


class ManualClock:
    """See the module docstring. A `wait(condition, timeout)` parks until the code's own notify or the next
    advance/settle, and returns at once if the clock moved since the caller last read it (the caller worked out
    its timeout from an old time: it looks again); `wait_event` keeps to its deadline on this clock."""

    def __init__(self, start: float = 1000.0, *, threads: int = 1, settle_timeout: float = 10.0) -> None:
        self.start = start
        self.threads = threads
        self.settle_timeout = settle_timeout
        self._ns = round(start * 1e9)   # whole nanoseconds: steps of 0.05 s add up to 0.1 s exactly
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a thread parked or left; event waiters look again
        self._parked: dict[threading.Thread, tuple[int, threading.Condition | None]] = {}
        self._known: set[threading.Thread] = set()
        self._seen: dict[threading.Thread, int] = {}   # the time as each thread last read it
        self._epoch = 0

    # -- what the code under test calls -------------------------------------------------------------------

    @property
    def _now(self) -> float:
        return self._ns / 1e9

    def monotonic(self) -> float:
        with self._lock:
            self._seen[threading.current_thread()] = self._ns
            return self._now

    def wait(self, cond: threading.Condition, timeout: float | None = None) -> bool:
        me = threading.current_thread()
        with self._lock:
            if timeout is not None and self._seen.get(me, self._ns) != self._ns:
                return True   # time moved since the caller worked out its timeout: it looks again
            if timeout is not None and timeout <= 0:
                return False
            self._known.add(me)
            self._parked[me] = (self._epoch, cond)
            self._changed.notify_all()
        try:
            cond.wait()   # the caller's own notify, or advance() / settle(), wakes it
        finally:
            with self._lock:
                self._parked.pop(me, None)
        return True

    def wait_event(self, event: threading.Event, timeout: float | None = None) -> bool:
        me = threading.current_thread()
        with self._lock:
            deadline = None if timeout is None else self._ns + round(timeout * 1e9)
            self._known.add(me)
            try:
                while True:
                    if event.is_set():
                        return True
                    if deadline is not None and self._ns >= deadline:
                        return False
                    self._parked[me] = (self._epoch, None)
                    self._changed.notify_all()
                    self._changed.wait(0.01)   # Event.set() tells nobody: look at it again soon
            finally:
                self._parked.pop(me, None)

    # -- what the test calls ------------------------------------------------------------------------------

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float, *, settle: bool = True) -> float:
        """Let `seconds` pass; returns the new time once every thread on the clock has caught up with it.
        `settle=False` returns at once, for a thread that will go on to wait on something else (a socket)."""
        if seconds < 0:
            raise ValueError(f"time does not go back ({seconds})")
        self.settle()
        with self._lock:
            self._ns += round(seconds * 1e9)
            now = self._now
        if settle:
            self.settle()
        else:
            self._wake()
        return now

    def advance_to(self, when: float) -> float:
        return self.advance(max(0.0, when - self.now()))

    def settle(self) -> None:
        """Return once every thread on the clock (at least `threads` of them) is waiting again, having looked at
        the current time and whatever it was told since."""
        me = threading.current_thread()
        epoch = self._wake()
        deadline = time.monotonic() + self.settle_timeout
        with self._lock:
            while True:
                live = [t for t in self._known if t.is_alive() and t is not me]
                behind = [t.name for t in live if t not in self._parked or self._parked[t][0] < epoch]
                if len(self._known) >= self.threads and not behind:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"threads on the manual clock did not settle within "
                                         f"{self.settle_timeout:g} s: {behind or 'none waited on it yet'} "
                                         "(still busy, or waiting on something other than the clock)")
                # A parked thread notifies; a thread that ends does not: look again now and then.
                self._changed.wait(min(remaining, 0.02))

    def _wake(self) -> int:
        """Wake every thread waiting on the clock, so it looks at the time again; returns the new epoch."""
        with self._lock:
            self._epoch += 1
            epoch = self._epoch
            conds = {id(c): c for _, c in self._parked.values() if c is not None}
            self._changed.notify_all()
        for cond in conds.values():
            with cond:
                cond.notify_all()
        return epoch
