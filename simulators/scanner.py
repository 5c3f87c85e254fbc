"""A fixed-mount serial barcode scanner on a pty: it decodes printed label images and sends what it read."""

from __future__ import annotations

import logging
import os
import queue
import random
import select
import string
import termios
import threading
import time
import tty
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import zxingcpp
from PIL import Image

from drivers.clock import SYSTEM_CLOCK, Clock
from simulators.errors import SimulatorError

__all__ = ["ScanOutput", "ScannerSimulator"]

log = logging.getLogger(__name__)

_FORMATS = {
    "QRCode": zxingcpp.BarcodeFormat.QRCode,
    "EAN13": zxingcpp.BarcodeFormat.EAN13,
    "DataMatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "Code128": zxingcpp.BarcodeFormat.Code128,
}


@dataclass(frozen=True, slots=True)
class ScanOutput:
    """What the scanner did with one label (or one typed line). `kind` is sent, no_read, misread, garbage,
    decode_failure or injected; `data` is the bytes written (terminator included; b"" when nothing went out);
    `truth` is what the image decoded to, when it decoded."""

    kind: str
    data: bytes
    truth: str | None
    label_index: int | None
    at: datetime


class ScannerSimulator:
    """A scanner downstream of the printer, seen by the station as a serial port (`port`, or the `link`).

    `on_label(label)` (fits `PrinterSimulator.add_listener`) queues a printed label; the worker thread lets
    `read_delay` seconds pass (the conveyor), decodes the label image with zxing-cpp, and writes the text and
    the terminator. With the given probabilities it sends nothing (no-read), a misread (one character changed),
    or garbage bytes (not UTF-8) instead. An image that does not decode sends nothing, or `no_read_message` if
    set (as scanners configured to report "NOREAD" do).
    """

    def __init__(
        self,
        link: str | None = None,
        terminator: bytes = b"\r\n",
        no_read_rate: float = 0.0,
        misread_rate: float = 0.0,
        garbage_rate: float = 0.0,
        read_delay: float = 0.0,
        seed: int | None = None,
        symbologies: tuple[str, ...] = ("QRCode",),
        no_read_message: bytes | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        unknown = [s for s in symbologies if s not in _FORMATS]
        if unknown:
            raise SimulatorError(f"unknown symbologies {unknown}; known: {', '.join(_FORMATS)}")
        self.link = link
        self.terminator = terminator
        self.read_delay = read_delay
        self.clock = clock   # times the conveyor's read_delay (tests pass one they move)
        self.symbologies = symbologies
        self.no_read_message = no_read_message
        self._rng = random.Random(seed)
        self._rates = (0.0, 0.0, 0.0)
        self.set_rates(no_read_rate, misread_rate, garbage_rate)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._queue: queue.Queue[tuple[float, Any] | None] = queue.Queue()
        self._master: int | None = None
        self._slave: int | None = None
        self._port: str | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.history: list[ScanOutput] = []
        self.from_host = bytearray()  # whatever the station wrote to the scanner (trigger commands and such)
        self.counts = {
            "sent": 0,
            "no_reads": 0,
            "misreads": 0,
            "garbage": 0,
            "decode_failures": 0,
            "injected": 0,
            "dropped": 0,
        }

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> ScannerSimulator:
        if self._master is not None:
            raise SimulatorError("scanner simulator already started")
        if self.link and Path(self.link).exists() and not Path(self.link).is_symlink():
            raise SimulatorError(f"{self.link} exists and is not a symlink: not replacing it")
        master, slave = os.openpty()
        try:
            # Raw on the slave so the station's pyserial sees exactly the bytes written: no CR/LF translation,
            # no echo, no line discipline.
            tty.setraw(slave, termios.TCSANOW)
            os.set_blocking(master, False)
            port = os.ttyname(slave)
            if self.link:
                self._make_link(self.link, port)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave, self._port = master, slave, port
        self._wake_r, self._wake_w = os.pipe()
        self._stopping.clear()
        for target, name in ((self._work, "scanner-decode"), (self._drain, "scanner-drain")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
        log.info("scanner simulator on %s%s", self._port, f" (link {self.link})" if self.link else "")
        return self

    def stop(self) -> None:
        if self._master is None:
            return
        self._stopping.set()
        self._queue.put(None)
        if self._wake_w is not None:
            os.write(self._wake_w, b"x")
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self.link and self._port:
            link = Path(self.link)
            # Only remove the link if it is still ours: another simulator may have taken the name since.
            if link.is_symlink() and os.readlink(link) == self._port:
                link.unlink()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = None
        # Drop labels still on the conveyor so a restart begins empty.
        self._queue = queue.Queue()

    def __enter__(self) -> ScannerSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @staticmethod
    def _make_link(link: str, target: str) -> None:
        path = Path(link)
        if path.exists() and not path.is_symlink():
            raise SimulatorError(f"{link} exists and is not a symlink: not replacing it")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Swap in a new link atomically, so a stale one from a crashed run never blocks a start.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, path)

    @property
    def port(self) -> str:
        """The pty slave path, e.g. /dev/pts/5."""
        if self._port is None:
            raise SimulatorError("scanner simulator not started")
        return self._port

    @property
    def url(self) -> str:
        return f"serial://{self.link or self.port}"

    def describe(self) -> dict[str, str | None]:
        return {"port": self.port, "link": self.link, "url": self.url}

    # ------------------------------------------------------------------------------------------ behaviour

    def set_rates(
        self, no_read_rate: float | None = None, misread_rate: float | None = None, garbage_rate: float | None = None
    ) -> None:
        """Change any of the three rates while running; each in [0, 1], together at most 1."""
        current = self._rates
        rates = (
            current[0] if no_read_rate is None else float(no_read_rate),
            current[1] if misread_rate is None else float(misread_rate),
            current[2] if garbage_rate is None else float(garbage_rate),
        )
        if any(r < 0 or r > 1 for r in rates) or sum(rates) > 1 + 1e-9:
            raise SimulatorError(f"rates must each be in [0, 1] and sum to at most 1, got {rates}")
        self._rates = rates

    @property
    def rates(self) -> dict[str, float]:
        return dict(zip(("no_read_rate", "misread_rate", "garbage_rate"), self._rates))

    def on_label(self, label: Any) -> None:
        """Queue a label for reading: a PrintedLabel, a RenderedLabel (anything with `.image`) or a PIL image.
        Safe to call from any thread (the printer calls it from its print thread)."""
        self._queue.put((self.clock.monotonic() + self.read_delay, label))

    def inject(self, line: str | bytes, terminate: bool = True) -> None:
        """Send a line as if a person scanned it by hand (text is UTF-8 encoded; the terminator is added)."""
        data = line.encode("utf-8") if isinstance(line, str) else bytes(line)
        if terminate:
            data += self.terminator
        self._record("injected", data, None, None)
        self._write(data)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued label has been handled (for tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.005)
        return False

    # ------------------------------------------------------------------------------------------ internals

    def _record(self, kind: str, data: bytes, truth: str | None, index: int | None) -> None:
        # Called before the bytes go out, so a reader that has the line also sees it counted.
        key = {"sent": "sent", "no_read": "no_reads", "misread": "misreads", "garbage": "garbage",
               "decode_failure": "decode_failures", "injected": "injected"}[kind]
        with self._lock:
            self.counts[key] += 1
            self.history.append(ScanOutput(kind, data, truth, index, datetime.now(timezone.utc)))

    def decode(self, image: Image.Image) -> str | None:
        """What the scanner reads off an image: the first symbol found, in `symbologies` order."""
        gray = image if image.mode == "L" else image.convert("L")
        results = zxingcpp.read_barcodes(gray, formats=[_FORMATS[name] for name in self.symbologies])
        for name in self.symbologies:
            for result in results:
                if result.format == _FORMATS[name] and result.valid:
                    return str(result.text)
        return None

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None or self._stopping.is_set():
                    return
                due, label = item
                # The label travels down the conveyor before it passes the scanner.
                if self.clock.wait_event(self._stopping, max(0.0, due - self.clock.monotonic())):
                    return
                self._scan(label)
            except Exception:
                log.exception("scanner simulator failed on a label")
            finally:
                self._queue.task_done()

    def _scan(self, label: Any) -> None:
        image = label if isinstance(label, Image.Image) else getattr(label, "image", None)
        index = getattr(label, "index", None)
        truth = self.decode(image) if image is not None else None
        if truth is None:
            data = self.no_read_message + self.terminator if self.no_read_message is not None else b""
            self._record("decode_failure", data, None, index)
            if data:
                self._write(data)
            return
        no_read, misread, garbage = self._rates
        roll = self._rng.random()
        if roll < no_read:
            data = self.no_read_message + self.terminator if self.no_read_message is not None else b""
            self._record("no_read", data, truth, index)
            if data:
                self._write(data)
        elif roll < no_read + misread:
            data = self._misread(truth).encode("utf-8") + self.terminator
            self._record("misread", data, truth, index)
            self._write(data)
        elif roll < no_read + misread + garbage:
            data = self._garbage() + self.terminator
            self._record("garbage", data, truth, index)
            self._write(data)
        else:
            data = truth.encode("utf-8") + self.terminator
            self._record("sent", data, truth, index)
            self._write(data)

    def _misread(self, text: str) -> str:
        """One character changed for another of its kind: the error a smudged module gives, still plausible."""
        positions = [i for i, c in enumerate(text) if c.isascii() and c.isalnum()] or list(range(len(text)))
        if not positions:
            return "?"
        i = self._rng.choice(positions)
        c = text[i]
        pool = (
            string.digits if c.isdigit()
            else string.ascii_uppercase if c.isupper()
            else string.ascii_lowercase if c.islower()
            else string.ascii_uppercase
        )
        replacement = self._rng.choice([p for p in pool if p != c])
        return text[:i] + replacement + text[i + 1 :]

    def _garbage(self) -> bytes:
        """Line noise: random bytes, never the terminator's, always with at least one byte invalid in UTF-8."""
        forbidden = set(self.terminator)
        size = self._rng.randint(3, 24)
        data = bytearray(b for b in self._rng.randbytes(size * 2) if b not in forbidden)[:size]
        data.insert(self._rng.randint(0, len(data)), 0xFF)  # 0xFF never occurs in UTF-8
        return bytes(data)

    def _write(self, data: bytes) -> None:
        if self._master is None:
            raise SimulatorError("scanner simulator not started")
        with self._write_lock:
            view = memoryview(data)
            deadline = time.monotonic() + 1.0
            while view:
                try:
                    written = os.write(self._master, view)
                    view = view[written:]
                except BlockingIOError:
                    # Nobody reads the port and its buffer is full: a real scanner's bytes would be lost too.
                    if time.monotonic() > deadline:
                        with self._lock:
                            self.counts["dropped"] += 1
                        log.warning("scanner output dropped: nobody reads %s", self._port)
                        return
                    select.select([], [self._master], [], 0.05)

    def _drain(self) -> None:
        # Read what the station writes to the scanner, so its writes never block on a full pty buffer.
        assert self._master is not None and self._wake_r is not None
        master, wake = self._master, self._wake_r
        while not self._stopping.is_set():
            readable, _, _ = select.select([master, wake], [], [], 1.0)
            if wake in readable:
                return
            if master in readable:
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    # EIO: no process has the slave open right now. Ours stays open, so this is rare; back off.
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.from_host += data
