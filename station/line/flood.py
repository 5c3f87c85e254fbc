"""A verifier that floods the line: far more reads than the line has items (a babbling scanner)."""

from __future__ import annotations

import threading


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

    @classmethod
    def per_second(cls, min_reads_per_s: int, reads_per_item: float = 10.0) -> FloodMeter:
        """A meter over windows of 0.1 s that floods at ``min_reads_per_s`` reads a second (and ``reads_per_item``
        times the items)."""
        meter = cls(reads_per_item=reads_per_item)
        meter.min_reads = max(1, round(min_reads_per_s * meter.window_s))
        return meter

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
