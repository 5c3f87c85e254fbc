"""Serial barcode scanner: a pure line framer and a reader thread that reconnects when the port goes away."""

from __future__ import annotations

import enum
import logging
import re
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.reconnect import DeviceThread, Link
from drivers.transport import Transport, TransportError

log = logging.getLogger(__name__)

_LINE_ENDS = (b"\r", b"\n", b"\r\n")
_CR_OR_LF = re.compile(rb"[\r\n]")


class RefusalReason(enum.StrEnum):
    """Why a line from the scanner was not passed on as a read."""

    TOO_LONG = "too_long"
    NOT_TEXT = "not_text"
    EMPTY = "empty"


@dataclass(frozen=True)
class ScanRead:
    """One decoded line from the scanner (terminator removed)."""

    text: str
    raw: bytes
    at: datetime


@dataclass(frozen=True)
class ScanRefused:
    """A line that is not a usable read; `raw` is at most max_length bytes."""

    raw: bytes
    reason: RefusalReason
    at: datetime


ScanEvent = ScanRead | ScanRefused


class LineFramer:
    """Turns the scanner's byte stream into reads and refusals (pure: no I/O, no threads).

    With a terminator of b"\\r", b"\\n" or b"\\r\\n", a line ends at CR, LF or CR LF alike, so a scanner set
    to another of the three still works, and the LF of a CR LF pair (even split across chunks) never makes
    an empty line. Any other terminator (e.g. b"\\x03") is matched literally.

    Refusals: a line longer than `max_length` bytes is refused as `too_long` as soon as it overflows, and the
    rest of it is discarded up to the next terminator (memory stays bounded); a line that is not UTF-8 or
    holds control characters is `not_text`; a line that is empty or only spaces is `empty` (a trigger with
    nothing decoded: reported, since it says the scanner is alive but read nothing).
    """

    def __init__(self, terminator: bytes = b"\r\n", max_length: int = 512) -> None:
        if not terminator:
            raise ValueError("terminator must not be empty")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        self.terminator = terminator
        self.max_length = max_length
        self._any_line_end = terminator in _LINE_ENDS
        self._line = bytearray()
        self._pending = bytearray()  # literal mode: a tail that may be the start of the terminator
        self._discarding = False
        self._after_cr = False
        self._events: list[ScanEvent] = []
        self._at = datetime.now(UTC)

    def reset(self) -> None:
        """Forget a partial line (after a reconnect, what came before is no longer part of it)."""
        self._line.clear()
        self._pending.clear()
        self._discarding = False
        self._after_cr = False

    def feed(self, data: bytes, at: datetime | None = None) -> list[ScanEvent]:
        """Take the next chunk; return the reads and refusals it completed, stamped `at` (default: now, UTC)."""
        self._at = at if at is not None else datetime.now(UTC)
        self._events = []
        if self._any_line_end:
            self._feed_any_line_end(data)
        else:
            self._feed_literal(data)
        events, self._events = self._events, []
        return events

    def _feed_any_line_end(self, data: bytes) -> None:
        start = 0
        if data and self._after_cr:
            # The LF of a CR LF pair whose CR ended the previous chunk.
            start = 1 if data[0] == 0x0A else 0
            self._after_cr = False
        while start < len(data):
            match = _CR_OR_LF.search(data, start)
            if match is None:
                self._take(data[start:])
                return
            end = match.start()
            self._take(data[start:end])
            self._end_line()
            if data[end] == 0x0D:
                if end + 1 == len(data):
                    self._after_cr = True
                elif data[end + 1] == 0x0A:
                    end += 1
            start = end + 1

    def _feed_literal(self, data: bytes) -> None:
        self._pending += data
        size = len(self.terminator)
        while True:
            found = self._pending.find(self.terminator)
            if found < 0:
                keep = min(size - 1, len(self._pending))
                cut = len(self._pending) - keep
                self._take(bytes(self._pending[:cut]))
                del self._pending[:cut]
                return
            self._take(bytes(self._pending[:found]))
            self._end_line()
            del self._pending[: found + size]

    def _take(self, part: bytes) -> None:
        if self._discarding or not part:
            return
        self._line += part
        if len(self._line) > self.max_length:
            self._events.append(ScanRefused(bytes(self._line[: self.max_length]), RefusalReason.TOO_LONG, self._at))
            self._line.clear()
            self._discarding = True

    def _end_line(self) -> None:
        if self._discarding:
            self._discarding = False
            return
        raw = bytes(self._line)
        self._line.clear()
        self._events.append(self._classify(raw))

    def _classify(self, raw: bytes) -> ScanEvent:
        if not raw.strip(b" "):
            return ScanRefused(raw, RefusalReason.EMPTY, self._at)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return ScanRefused(raw, RefusalReason.NOT_TEXT, self._at)
        if not text.isprintable() and any(unicodedata.category(char) == "Cc" for char in text):
            return ScanRefused(raw, RefusalReason.NOT_TEXT, self._at)
        return ScanRead(text, raw, self._at)


class SerialScanner:
    """Reads a scanner on one thread and calls `on_read` / `on_refused` from that thread.

    The scanner owns its transport: it opens it in the reader thread and, when the port fails (unplugged,
    pty closed), closes it and opens it again with back-off (drivers.reconnect: 0.1 s doubling to
    `max_backoff`, on `clock`), the failure logged once and the recovery once. Callbacks must be quick (hand
    the event to a queue); an exception from a callback is logged and the reader carries on.

    `refused` keeps the most recent refusals as the record of what the scanner sent that was not a read.
    """

    def __init__(
        self,
        transport: Transport,
        terminator: bytes = b"\r\n",
        max_length: int = 512,
        on_read: Callable[[ScanRead], None] | None = None,
        on_refused: Callable[[ScanRefused], None] | None = None,
        *,
        keep_refused: int = 100,
        read_timeout: float = 0.2,
        max_backoff: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.transport = transport
        self.on_read = on_read
        self.on_refused = on_refused
        self.refused: deque[ScanRefused] = deque(maxlen=keep_refused)
        self.read_count = 0
        self.refused_count = 0
        self._framer = LineFramer(terminator, max_length)
        self._read_timeout = read_timeout
        self._thread = DeviceThread(self._run, f"scanner {transport.url}", logger=log)
        self._stop = self._thread.stopping
        self._link = Link(transport.url, "scanner", stop=self._stop, logger=log, clock=clock,
                          max_backoff=max_backoff)

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def connected(self) -> bool:
        """Whether the port is open and the last read worked."""
        return self._link.is_up

    @property
    def last_error(self) -> str | None:
        """Why the port is not working (`<url>: <reason>`), None while it works."""
        return self._link.last_error

    @property
    def running(self) -> bool:
        return self._thread.running

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the port is open (for start-up checks and tests)."""
        return self._link.connected.wait(timeout)

    def start(self) -> None:
        """Start the reader thread (it opens the port)."""
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the reader thread and close the port; returns once the thread has ended."""
        self._thread.stop(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if not self.transport.is_open:
                        self.transport.open()
                        self._framer.reset()
                    data = self.transport.read(self._read_timeout)
                except TransportError as exc:
                    self.transport.close()
                    self._link.lost(str(exc))
                    self._link.pause()
                    continue
                if not self._link.is_up:
                    self._link.recovered()
                if data:
                    for event in self._framer.feed(data):
                        self._dispatch(event)
        finally:
            self._link.closed()
            self.transport.close()

    def _dispatch(self, event: ScanEvent) -> None:
        if isinstance(event, ScanRead):
            self.read_count += 1
            callback: Callable[..., None] | None = self.on_read
        else:
            self.refused_count += 1
            self.refused.append(event)
            callback = self.on_refused
        if callback is None:
            return
        try:
            callback(event)
        except Exception:
            # The reader must outlive a faulty consumer; the traceback goes to the log.
            log.exception("%s: scan callback failed for %r", self.url, event)
