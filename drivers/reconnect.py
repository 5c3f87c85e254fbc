"""A device's reader thread, and the link it keeps up: the back-off between attempts, a loss and its recovery
each logged once.

`DeviceThread` is the one thread of a device (the serial scanner, a lineio+tcp module, a camera and its reader):
`start()` runs the loop, `stop()` sets the stop event the loop watches, wakes it, and waits for it to end.

The loop opens its link itself and, when the link fails, closes it and tries again. `Link` holds what that loop
needs to remember:

- `connected`: an Event, set while the link works (what `wait_connected` / `wait_healthy` wait on);
- `last_error`: why the link is down, `<url>: <reason>`, None while it works;
- `pause()`: waits the back-off on the device's clock (drivers.clock, so a test moves it by hand) or until the
  owner's stop event is set, then doubles it, 0.1 s up to `max_backoff`; `recovered()` starts it again at 0.1 s;
- the log: a working link that fails (or a first attempt that fails) is logged as a warning once, not at every
  attempt, and the recovery once, as an info (Home Assistant's coordinators do the same).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from drivers.clock import SYSTEM_CLOCK, Clock

__all__ = ["DeviceThread", "Link"]

_FIRST_BACKOFF = 0.1


class Link:
    """The state of one reconnecting device link; owned and called by the device's reader thread."""

    def __init__(self, url: str, what: str, *, stop: threading.Event, logger: logging.Logger,
                 clock: Clock = SYSTEM_CLOCK, max_backoff: float = 5.0,
                 connected: threading.Event | None = None) -> None:
        self.url = url
        self.what = what   # the device as the log names it: "scanner", "camera", "line I/O module"
        self.clock = clock
        self.connected = connected if connected is not None else threading.Event()
        self.last_error: str | None = None
        self.losses = 0    # how many times a working link failed
        self.max_backoff = max_backoff
        self._first_backoff = min(_FIRST_BACKOFF, max_backoff)
        self.backoff = self._first_backoff
        self._stop = stop
        self._log = logger

    @property
    def is_up(self) -> bool:
        return self.connected.is_set()

    def lost(self, message: str) -> bool:
        """The link failed or an attempt did; `message` is `<url>: <reason>`. Returns whether it was up."""
        was_up = self.connected.is_set()
        first = was_up or self.last_error is None
        self.last_error = message   # set before `connected` clears, so a watcher that sees it down sees why
        self.connected.clear()
        if was_up:
            self.losses += 1
        if first:
            reason = message.removeprefix(f"{self.url}: ")
            self._log.warning("%s: %s lost: %s; reconnecting", self.url, self.what, reason)
        return was_up

    def closed(self) -> None:
        """The owner closed the link on purpose (it stops): not a fault, nothing logged."""
        self.connected.clear()

    def recovered(self, name: str = "") -> None:
        """The link works again (`name`: what the device said it is, for the log)."""
        self.backoff = self._first_backoff
        self.connected.set()
        if self.last_error is not None:
            self._log.info("%s: %s%s connected again", self.url, self.what, f" {name}" if name else "")
        self.last_error = None

    def pause(self) -> bool:
        """Wait the back-off, or until the owner stops; the next pause is twice as long. True when stopping."""
        stopping = self.clock.wait_event(self._stop, self.backoff)
        self.backoff = min(self.backoff * 2, self.max_backoff)
        return stopping


class DeviceThread:
    """One device's thread: `target` runs on it until it returns; it should end soon after `stopping` is set."""

    def __init__(self, target: Callable[[], None], name: str, *, logger: logging.Logger,
                 wake: Callable[[], None] | None = None) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._target = target
        self._wake = wake   # unblocks the loop where the stop event cannot (a socket read, a condition wait)
        self._log = logger
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        """start() was called and stop() was not since."""
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self.stopping.clear()
        self._thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the loop and return once its thread has ended (or `timeout` passed: logged as an error)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self.stopping.set()
        if self._wake is not None:
            self._wake()
        thread.join(timeout)
        if thread.is_alive():
            # Only a callback that never returns, or a device call that ignores its timeout, holds it this long.
            self._log.error("%s did not stop within %gs", self.name, timeout)
