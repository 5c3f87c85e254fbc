"""Serials for the printed line, reserved in blocks ahead of the printer; those never printed given back as unused.

A block of ``block`` serials is reserved in one database write (on the store's helper thread), and the next block is
asked for while half of this one is still to print, so a trigger never waits for that write. A short run reserves no
more than it can still use. At the end of a run, serials reserved and never printed become unused: kept, counted,
never reused, and never published (a serial that was never commissioned has nothing to decommission).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future

from station.domain import Batch, Stamp
from station.gs1 import DigitalLinkTemplate
from station.ports import LineStore
from station.serials import SerialGenerator


class SerialPool:
    """The serials reserved for the batch being printed and not yet taken."""

    def __init__(self, store: LineStore, resolver: str, block: int, serial_length: int) -> None:
        self._store = store
        self._resolver = resolver
        self.block = block
        self._serials = SerialGenerator(serial_length)
        self._pool: deque[Stamp] = deque()
        self._refill: Future[list[Stamp]] | None = None
        self._templates: dict[int, DigitalLinkTemplate] = {}

    def __len__(self) -> int:
        return len(self._pool)

    def take(self, batch: Batch, needed: int | None) -> Stamp:
        """The next serial to print. ``needed``: the stamps the run still has to print, this one included (None:
        until stopped); no block is reserved past them."""
        if not self._pool and self._refill is None:
            self._request(batch, needed)
        if not self._pool:
            assert self._refill is not None
            self._pool.extend(self._refill.result())  # only at the start, or when the line outran the writer
            self._refill = None
        stamp = self._pool.popleft()
        # Reserve the next block while this one is printed: a trigger never waits for that write.
        if len(self._pool) <= self.block // 2 and self._refill is None:
            remaining = None if needed is None else needed - 1 - len(self._pool)
            if remaining is None or remaining > 0:
                self._request(batch, remaining)
        return stamp

    def _request(self, batch: Batch, remaining: int | None) -> None:
        template = self._templates.get(batch.id)  # type: ignore[arg-type]
        if template is None:
            template = self._templates[batch.id] = DigitalLinkTemplate(  # type: ignore[index]
                self._resolver, batch.gtin, batch.lot, batch.expiry_date)
        block = self.block if remaining is None else max(1, min(self.block, remaining))
        self._refill = self._store.allocate_stamps_async(batch.id, block, self._serials.next,  # type: ignore[arg-type]
                                                         template.uri)

    def release_unused(self) -> int:
        """Give back every serial reserved and not printed (waiting for a reservation under way); how many."""
        if self._refill is not None:
            self._pool.extend(self._refill.result())
            self._refill = None
        ids = [stamp.id for stamp in self._pool if stamp.id is not None]
        self._pool.clear()
        return self._store.release_unused(ids)

    def abandon(self) -> None:
        """After an error: forget the pool. Its serials are still allocated in the database, and the next start
        settles them (LineEngine.recover)."""
        self._pool.clear()
        self._refill = None
