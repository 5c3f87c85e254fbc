"""Waiting for something to happen in a test: the one helper every test uses, instead of a sleep.

    assert wait_until(lambda: sim.printed_count == 3)

`wait_until` looks at the predicate until it holds and returns True, or returns its last value once `timeout`
seconds of the machine's clock have passed. The timeout only bounds a failure (a hang ends the test instead of
the run): make it generous, and never assert anything about how long the wait took. What a test asserts about
time belongs on the code's injectable clock (drivers.clock, tests.clock.ManualClock).
"""

from __future__ import annotations

import array
import fcntl
import termios
import time
from collections.abc import Callable

__all__ = ["unread", "wait_until"]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.005) -> bool:
    """True as soon as `predicate()` is true; False if it still is not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)   # a poll between looks, not a wait for the event
    return True


def unread(fd: int) -> int:
    """Bytes written to a pty, FIFO or socket and not yet read from it at `fd`'s end (FIONREAD): a test waits for
    0 to know its reader took a piece before it writes the next."""
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]
