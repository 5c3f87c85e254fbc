"""A Zebra printer on raw TCP (port 9100) that renders what it prints and breaks on command.

What it speaks, as a Zebra does:

- Formats `^XA…^XZ`, however the bytes are split across TCP reads, several per read. Each goes into a bounded
  receive buffer (`buffer_size` formats; when it is full the simulator stops reading the socket, like a printer
  pushing back) and a print thread prints them in order, each `^PQ` copy as its own label. With `ips` set a
  label takes `label length / ips` seconds (the length from `^LL`) on the simulator's `clock` (the machine's
  unless a test passes one it moves); a fault or a pause during a label restarts that label once cleared, as a
  printer reprints the label it was on. The label under the head counts among the formats `~HS` reports.
- `^DFR:NAME.ZPL^FS…^XZ` stores a format (nothing prints); `^XFR:NAME.ZPL` with `^FNn^FD…^FS` recalls it.
- `~DYd:f,b,x,t,w,data` stores a file (a TrueType font: x = T, b = B binary or A hex/ZB64) on drive E: (flash,
  kept across `power_cycle`) or R: (RAM, lost); `^A@o,h,w,E:NAME.TTF` and `^CWa,E:NAME.TTF` print with it, and a
  label naming a font the printer lacks prints in the ^CF font, as a Zebra does. Text drawn in a resident font
  (`^A0`, the bitmap fonts) shows only Latin-1: every other character is a box, recorded per label
  (`PrintedLabel.missing_glyphs`). `^XA^HWE:*.TTF^XZ` answers the directory listing and prints nothing.
- Control commands, which run the moment they arrive, even in the middle of a format (that is why field data
  is sent with `^FH` escapes): `~HS` (three status frames), `~HQES` (PRINTER STATUS / ERRORS / WARNINGS), `~JA`
  (cancel every format received but not yet printed, including the one printing), `~PP` pause, `~PS` resume,
  `~HI` identification. Others are recorded in `unknown_controls` and otherwise ignored.
- While media out, ribbon out, head open or over temperature it prints nothing and does not answer `~HS` at
  all (it answers `~HQES`); paused, it answers `~HS` with the pause flag and prints nothing. `silent` answers
  nothing at all; `offline` closes every new connection at once; `disconnect()` drops the open ones.

Control port (`control_port`; text lines over TCP, one reply line per command):

    help                                  the command list
    paper_out|ribbon_out|head_open on|off media and head faults (the printer goes quiet on ~HS)
    over_temperature|under_temperature|cutter on|off
    pause | resume                        the pause key (~HS shows paused; nothing prints)
    silent on|off                         answer neither ~HS nor ~HQES (still receives and prints)
    offline on|off                        refuse new connections (accept and close at once)
    disconnect                            drop every open connection now
    power_cycle                           switch off and on: buffer, R: files and formats, ^CW letters lost
    factory_reset                         a reset or replaced printer: E: files lost too
    files                                 the downloaded files as JSON {name: bytes}
    ips <inches per second> | ips off     print speed; off prints at once
    cancel                                same as ~JA
    status                                one JSON object: faults, counts, queue, addresses
    labels | received | cancelled        counts
    label <index>                         one printed label as JSON (index, zpl, png base64, texts)
    subscribe                             reply "ok", then one JSON line per printed label from now on
    quit                                  close this control connection

Actions answer `ok`, queries answer their value, anything wrong answers `error: <why>`.

One module of about 940 lines: the ZPL stream parser, the printer's state (buffer, faults, stored files, ~HS
and ~HQES replies), its print loop and its control commands are one printer; the drawing is drivers/zebra/render.py.

About 940 lines in one module: the stream parser, the stored formats and fonts, the print head's timing, the
status replies (~HS, ~HQES, ^HW) and the faults change one printer's state in an order a real Zebra keeps.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import io
import json
import logging
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from PIL import Image

from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.url_options import yes_no
from drivers.zebra.render import RenderedField, RenderedLabel, expand_format, render_label, tokenize
from simulators.errors import SimulatorError
from simulators.tcp import TcpServer, join, start_worker

__all__ = ["PrintedLabel", "PrinterSimulator", "ZplStreamParser", "FAULT_NAMES"]

log = logging.getLogger(__name__)

STX, ETX = b"\x02", b"\x03"
# Faults that stop printing; the first four also silence ~HS, as on current Zebra firmware.
FAULT_NAMES = ("paper_out", "ribbon_out", "head_open", "over_temperature", "under_temperature", "cutter")
_SILENCING_FAULTS = ("paper_out", "ribbon_out", "head_open", "over_temperature")
_STOPPING_FAULTS = ("paper_out", "ribbon_out", "head_open", "over_temperature", "cutter")
_SWITCHES = FAULT_NAMES + ("paused", "silent", "offline")
# Bytes of parameters each control command takes; ~HQ needs its two-letter query (ES, SN, ...).
_CONTROL_PARAM_BYTES = {"HQ": 2}
_DEFAULT_LABEL_DOTS = 251  # the label length an idle printer reports in ~HS before any ^LL (the ZPL guide's example)
# Commands that put something on the label; a format with none of them and a host query (^HW) prints nothing.
_PRINTING_COMMANDS = {"FD", "FN", "FS", "GB", "XF", "DF", "BQ", "BE", "BC", "GF", "XG"}


@dataclass(frozen=True, slots=True)
class PrintedLabel:
    """One label that came out of the printer. `zpl` is the format as printed (a recalled ^XF format expanded);
    `image` is None when the simulator runs with render=False."""

    index: int
    zpl: bytes
    image: Image.Image | None
    printed_at: datetime
    received_at: datetime
    copy: int = 1
    rendered: RenderedLabel | None = None

    @property
    def texts(self) -> list[str]:
        return self.rendered.texts if self.rendered else []

    @property
    def qr_data(self) -> list[str]:
        """What the ZPL asked the QR to hold (the truth a scanner test compares its decode against)."""
        return self.rendered.qr_data if self.rendered else []

    @property
    def missing_glyphs(self) -> list[tuple[str, str, str]]:
        """(text, font, characters printed as boxes) of each text field that printed a box."""
        return self.rendered.missing_glyphs if self.rendered else []

    def png(self) -> bytes:
        return self.rendered.png() if self.rendered else b""

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "copy": self.copy,
            "printed_at": self.printed_at.isoformat(),
            "zpl": self.zpl.decode("utf-8", "replace"),
            "texts": self.texts,
            "qr": self.qr_data,
            "fields": [dataclasses.asdict(f) for f in self.rendered.fields] if self.rendered else [],
            "png": base64.b64encode(self.png()).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrintedLabel:
        """A label as `to_json` sent it (for a simulator following this printer from another process)."""
        zpl = str(data.get("zpl", "")).encode("utf-8")
        image = Image.open(io.BytesIO(base64.b64decode(data["png"]))) if data.get("png") else None
        rendered = None
        if image is not None:
            image.load()
            rendered = RenderedLabel(zpl=zpl, image=image, dpmm=8,
                                     fields=[RenderedField(**f) for f in data.get("fields", [])])
        printed_at = datetime.fromisoformat(data["printed_at"])
        return cls(index=int(data["index"]), zpl=zpl, image=image, printed_at=printed_at, received_at=printed_at,
                   copy=int(data.get("copy", 1)), rendered=rendered)


@dataclass(slots=True)
class _Job:
    seq: int
    zpl: bytes
    received_at: datetime
    copies: int = 1
    printed_copies: int = 0
    rendered: RenderedLabel | None = None
    length_dots: int = _DEFAULT_LABEL_DOTS


class ZplStreamParser:
    """Splits a printer's input stream into control commands and complete formats (pure; one per connection).

    `feed(data)` returns events in stream order: ("control", name, params) or ("format", bytes). A control
    command inside a format is taken out of it, as the printer does. Bytes outside `^XA…^XZ` are dropped.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._format: bytearray | None = None

    @property
    def partial(self) -> bool:
        """A format has begun and not ended (the ~HS "partial format" flag)."""
        return self._format is not None

    def feed(self, data: bytes) -> list[tuple[str, ...] | tuple[str, bytes]]:
        self._buf += data
        events: list[Any] = []
        buf = self._buf
        pos = 0
        while True:
            caret = buf.find(b"^", pos)
            tilde = buf.find(b"~", pos)
            hits = [h for h in (caret, tilde) if h >= 0]
            if not hits:
                if self._format is not None:
                    self._format += buf[pos:]
                pos = len(buf)
                break
            at = min(hits)
            if self._format is not None:
                self._format += buf[pos:at]
            if buf[at] == 0x7E:  # ~
                name_bytes = bytes(buf[at + 1 : at + 3])
                if len(name_bytes) < 2:
                    pos = at
                    break
                name = name_bytes.decode("latin-1").upper()
                if name == "DY":
                    download = _read_download(buf, at + 3)
                    if download is None:
                        pos = at   # the rest of the download has not arrived yet
                        break
                    end, event = download
                    events.append(event)
                    pos = end
                    continue
                need = _CONTROL_PARAM_BYTES.get(name, 0)
                if len(buf) < at + 3 + need:
                    pos = at
                    break
                params = bytes(buf[at + 3 : at + 3 + need]).decode("latin-1").upper()
                events.append(("control", name, params))
                pos = at + 3 + need
                continue
            name_bytes = bytes(buf[at + 1 : at + 3])
            if len(name_bytes) < 2:
                pos = at
                break
            name = name_bytes.decode("latin-1").upper()
            if self._format is None:
                if name == "XA":
                    self._format = bytearray(b"^XA")
                    pos = at + 3
                else:
                    pos = at + 1  # a command outside any format: ignored
                continue
            if name == "XZ":
                self._format += b"^XZ"
                events.append(("format", bytes(self._format)))
                self._format = None
                pos = at + 3
                continue
            self._format += b"^"
            pos = at + 1
        del self._buf[:pos]
        return events


# ~DY's extension letter (x) to the extension the file is stored with; any other letter stores a .GRF.
_DY_EXTENSIONS = {"T": "TTF", "E": "TTE", "P": "PNG", "G": "GRF", "B": "BMP", "X": "PCX"}
_DY_HEADER_MAX = 128


def _read_download(buf: bytearray, start: int) -> tuple[int, tuple[str, str, bytes, str]] | None:
    """Parse ``~DYd:f,b,x,t,w,data`` from `start` (just after ``~DY``): (end, ("download", name, data, problem)),
    or None while the download is still arriving. b is A (ASCII hex, or ``:B64:``/``:Z64:`` text) or B (t raw
    bytes, which may hold ^ and ~: the printer counts them, it does not read them as commands)."""
    header_end = start
    commas = 0
    while commas < 5:
        comma = buf.find(b",", header_end, start + _DY_HEADER_MAX)
        if comma < 0:
            if len(buf) - start > _DY_HEADER_MAX:   # never a header: drop the command, keep reading
                return start, ("download", "", b"", "~DY header not understood")
            return None
        header_end = comma + 1
        commas += 1
    fields = bytes(buf[start:header_end - 1]).decode("latin-1").split(",")
    target, fmt, ext = fields[0].strip().upper(), fields[1].strip().upper(), fields[2].strip().upper()
    drive, _, base = target.rpartition(":")
    extension = _DY_EXTENSIONS.get(ext[:1], "GRF") if len(ext) <= 1 else ext.lstrip(".")
    name = f"{drive or 'R'}:{(base or 'UNKNOWN')[:8]}.{extension}"
    try:
        total = int(fields[3])
    except ValueError:
        return header_end, ("download", name, b"", f"~DY size {fields[3]!r} is not a number")
    if fmt == "B":
        if len(buf) < header_end + total:
            return None
        return header_end + total, ("download", name, bytes(buf[header_end:header_end + total]), "")
    # ASCII: hex digits (or a :B64:/:Z64: block) up to the next command prefix.
    stops = [i for i in (buf.find(b"^", header_end), buf.find(b"~", header_end)) if i >= 0]
    if not stops:
        return None
    end = min(stops)
    text = bytes(buf[header_end:end]).decode("latin-1").replace("\r", "").replace("\n", "").strip()
    try:
        if text.upper().startswith((":B64:", ":Z64:")):
            payload = base64.b64decode(text[5:].split(":")[0])
            data = zlib.decompress(payload) if text.upper().startswith(":Z64:") else payload
        else:
            data = bytes.fromhex(text)
    except (ValueError, zlib.error) as exc:
        return end, ("download", name, b"", f"~DY data not understood: {exc}")
    problem = "" if len(data) == total else f"~DY said {total} bytes, {len(data)} came"
    return end, ("download", name, data, problem)


def _flag(value: bool) -> str:
    return "1" if value else "0"


class PrinterSimulator:
    """A Zebra printer on TCP. See the module docstring for the protocol and the control port.

    Listeners added with `add_listener(cb)` are called with each PrintedLabel **on the print thread**, in print
    order; a slow listener slows the printer, an exception in one is logged and does not stop it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9100,
        control_port: int | None = None,
        dpmm: int = 8,
        ips: float | None = None,
        render: bool = True,
        buffer_size: int = 64,
        keep: int = 2000,
        flash_bytes: int = 6 * 1024 * 1024,
        ram_bytes: int = 1024 * 1024,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if ips is not None and ips <= 0:
            raise SimulatorError(f"ips must be positive, got {ips}")
        self.host = host
        self.clock = clock   # times a label at `ips`
        self.dpmm = dpmm
        self.render = render
        self.buffer_size = buffer_size
        self.drive_bytes = {"E": flash_bytes, "R": ram_bytes}   # room for downloaded files and stored formats
        self.keep = max(1, keep)   # the most recent labels and formats kept for inspection; the counts go on
        self._received_total = 0
        self._printed_total = 0
        self._ips = ips
        self._cond = threading.Condition()
        self._switches: dict[str, bool] = {name: False for name in _SWITCHES}
        self._queue: deque[_Job] = deque()
        self._seq = 0
        self._generation = 0  # bumped by ~JA so the print thread drops the label it is on
        self._label_length_dots = _DEFAULT_LABEL_DOTS
        self.labels: list[PrintedLabel] = []
        self.received: list[bytes] = []
        self.cancelled: list[bytes] = []
        self.stored_formats: dict[str, bytes] = {}
        # Files downloaded with ~DY (fonts): E: is flash and survives power_cycle(), R: is RAM and does not.
        self.files: dict[str, bytes] = {}
        self.font_aliases: dict[str, str] = {}   # ^CW letters, kept until the printer is switched off
        self.downloads: list[str] = []            # every ~DY received, by file name, in order
        self.power_cycles = 0
        self.lost_at_power_off = 0                # formats in the buffer when the power went
        self.unknown_controls: list[str] = []
        self.controls_seen: list[str] = []
        self._listeners: list[Callable[[PrintedLabel], None]] = []
        self._subscribers: set[socket.socket] = set()
        self._worker: threading.Thread | None = None
        self._server = TcpServer(self._serve_client, host, port, name="printer",
                                 refuse=lambda: self._switches["offline"])   # switched off: goes nowhere
        self._control_server = (TcpServer(self._serve_control, host, control_port, name="printer-control")
                                if control_port is not None else None)
        self._running = False
        self._stopping = False

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> PrinterSimulator:
        if self._running:
            raise SimulatorError("printer simulator already started")
        self._stopping = False
        self._server.start()
        if self._control_server is not None:
            self._control_server.start()
        self._running = True
        self._worker = start_worker(self._print_loop, "printer-print")
        log.info("printer simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        if not self._running:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for server in (self._server, self._control_server):
            if server is not None:
                server.stop()
        join(self._worker)
        self._running = False

    def __enter__(self) -> PrinterSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._server.running:
            raise SimulatorError("printer simulator not started")
        return self._server.port

    @property
    def control_port(self) -> int | None:
        return self._control_server.port if self._control_server is not None else None

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def control_url(self) -> str | None:
        port = self.control_port
        return f"tcp://{self.host}:{port}" if port is not None else None

    def describe(self) -> dict[str, str | None]:
        return {"printer": self.url, "control": self.control_url}

    # ------------------------------------------------------------------------------------------ state

    def set_faults(self, **switches: bool) -> None:
        """Set any of paper_out, ribbon_out, head_open, over_temperature, under_temperature, cutter, paused,
        silent, offline."""
        unknown = set(switches) - set(_SWITCHES)
        if unknown:
            raise SimulatorError(f"unknown printer state {sorted(unknown)}; known: {', '.join(_SWITCHES)}")
        with self._cond:
            self._switches.update({k: bool(v) for k, v in switches.items()})
            self._cond.notify_all()

    def _switch(name: str) -> property:  # type: ignore[misc]  # builds the fault properties below
        def getter(self: PrinterSimulator) -> bool:
            return self._switches[name]

        def setter(self: PrinterSimulator, value: bool) -> None:
            self.set_faults(**{name: value})

        return property(getter, setter, doc=f"{name} switch; setting it takes effect at once")

    paper_out = _switch("paper_out")
    ribbon_out = _switch("ribbon_out")
    head_open = _switch("head_open")
    over_temperature = _switch("over_temperature")
    under_temperature = _switch("under_temperature")
    cutter = _switch("cutter")
    paused = _switch("paused")
    silent = _switch("silent")
    offline = _switch("offline")
    del _switch

    def pause(self) -> None:
        self.set_faults(paused=True)

    def resume(self) -> None:
        self.set_faults(paused=False)

    @property
    def ips(self) -> float | None:
        return self._ips

    @ips.setter
    def ips(self, value: float | None) -> None:
        if value is not None and value <= 0:
            raise SimulatorError(f"ips must be positive, got {value}")
        with self._cond:
            self._ips = value
            self._cond.notify_all()

    @property
    def faulted(self) -> bool:
        return any(self._switches[name] for name in _STOPPING_FAULTS)

    def _can_print(self) -> bool:
        return not self.faulted and not self._switches["paused"]

    @property
    def received_count(self) -> int:
        return self._received_total

    @property
    def printed_count(self) -> int:
        return self._printed_total

    @property
    def cancelled_count(self) -> int:
        return len(self.cancelled)

    @property
    def queued(self) -> int:
        """Formats received and not yet printed (the one printing included)."""
        with self._cond:
            return len(self._queue)

    def add_listener(self, callback: Callable[[PrintedLabel], None]) -> None:
        """Call `callback(label)` for every printed label, on the print thread."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[PrintedLabel], None]) -> None:
        self._listeners.remove(callback)

    def cancel_all(self) -> int:
        """~JA: drop every format received and not yet printed. Returns how many."""
        with self._cond:
            dropped = [job.zpl for job in self._queue]
            self.cancelled.extend(dropped)
            self._queue.clear()
            self._generation += 1
            self._cond.notify_all()
        return len(dropped)

    def power_cycle(self) -> None:
        """Switch the printer off and on: connections drop, the formats in its buffer are lost, and so is all it
        kept in RAM (R: files and stored formats, ^CW font letters); flash (E:) keeps its files."""
        with self._cond:
            self.lost_at_power_off += len(self._queue)
            self._queue.clear()
            self._generation += 1
            for store in (self.files, self.stored_formats):
                for name in [n for n in store if not n.startswith("E:")]:
                    del store[name]
            self.font_aliases.clear()
            self._switches["paused"] = False
            self.power_cycles += 1
            self._cond.notify_all()
        self.disconnect()

    def factory_reset(self) -> None:
        """A printer reset to its factory settings, or a replacement unit: nothing downloaded survives, not even
        on E:."""
        with self._cond:
            self.files.clear()
            self.stored_formats.clear()
        self.power_cycle()

    def _store_file(self, name: str, data: bytes, problem: str) -> None:
        """~DY: keep the file on its drive (nothing prints, nothing is answered)."""
        if problem or not name:
            log.warning("~DY %s: %s; nothing stored", name or "?", problem)
            with self._cond:
                self.unknown_controls.append(f"~DY {name} ({problem})")
            return
        with self._cond:
            drive = name.partition(":")[0]
            used = sum(len(d) for n, d in {**self.files, **self.stored_formats}.items()
                       if n.startswith(f"{drive}:") and n != name)
            if used + len(data) > self.drive_bytes.get(drive, 0):
                # A full drive keeps nothing of the file and says nothing: only ^HW shows it is not there.
                self.unknown_controls.append(f"~DY {name} refused: drive {drive}: has "
                                             f"{self.drive_bytes.get(drive, 0) - used} bytes free")
                return
            self.files[name] = data
            self.downloads.append(name)

    def directory(self, pattern: str) -> bytes:
        """The ^HW reply for `pattern` (``E:*.TTF``, ``*:*.*``): one line per file, as the ZPL guide lays it out."""
        drive, _, name = pattern.split(",")[0].strip().upper().rpartition(":")
        drive = drive or "R"
        name = name or "*.*"
        if "." not in name:
            name += ".*"
        with self._cond:
            stored = {**{n: len(d) for n, d in self.files.items()},
                      **{n: len(d) for n, d in self.stored_formats.items()}}
        lines = [f"DIR {drive}:{name}"]
        for full, size in sorted(stored.items()):
            file_drive, _, file_name = full.partition(":")
            if (drive == "*" or drive == file_drive) and fnmatch.fnmatchcase(file_name, name):
                base, _, ext = file_name.partition(".")
                lines.append(f"* {file_drive}:{base}.{ext}  {size:06d}  ")
        free = self.drive_bytes.get(drive, sum(self.drive_bytes.values())) - sum(
            size for full, size in stored.items() if drive == "*" or full.startswith(f"{drive}:"))
        body = "\r\n".join(lines) + f"\r\n\r\n-{max(free, 0):07d} bytes free\r\n"
        return STX + b"\r\n" + body.encode("ascii") + ETX

    def disconnect(self) -> None:
        """Drop every open printer connection now (the listener stays up, so a client can reconnect)."""
        self._server.disconnect()

    def wait_printed(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` labels have printed (for tests)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._printed_total < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                **self._switches,
                "faulted": self.faulted,
                "ips": self._ips,
                "queued": len(self._queue),
                "received": self._received_total,
                "printed": self._printed_total,
                "cancelled": len(self.cancelled),
                "stored_formats": sorted(self.stored_formats),
                "files": {name: len(data) for name, data in sorted(self.files.items())},
                "downloads": len(self.downloads),
                "power_cycles": self.power_cycles,
                "clients": len(self._server.connections),
                "url": self.url,
                "control": self.control_url,
            }

    # ------------------------------------------------------------------------------------------ replies

    def host_status(self, partial: bool = False) -> bytes:
        """The ~HS reply for the current state (three STX…ETX CR LF frames)."""
        with self._cond:
            s = self._switches
            formats = len(self._queue)
            remaining = sum(job.copies - job.printed_copies for job in self._queue)
            length = self._label_length_dots
        line1 = ",".join(
            (
                "030",
                _flag(s["paper_out"]),
                _flag(s["paused"]),
                f"{min(length, 9999):04d}",
                f"{min(formats, 999):03d}",
                _flag(formats >= self.buffer_size),
                "0",
                _flag(partial),
                "000",
                "0",
                _flag(s["under_temperature"]),
                _flag(s["over_temperature"]),
            )
        )
        line2 = ",".join(
            (
                "000",
                "0",
                _flag(s["head_open"]),
                _flag(s["ribbon_out"]),
                "0",
                "2",
                "3",
                "0",
                f"{min(remaining, 99_999_999):08d}",
                "1",
                "000",
            )
        )
        line3 = "1234,0"
        return b"".join(STX + line.encode("ascii") + ETX + b"\r\n" for line in (line1, line2, line3))

    def hqes(self) -> bytes:
        """The ~HQES reply: error bits 1 media out, 2 ribbon out, 4 head open, 8 cutter; 0x10 head too hot."""
        with self._cond:
            s = dict(self._switches)
        errors = (
            (1 if s["paper_out"] else 0)
            | (2 if s["ribbon_out"] else 0)
            | (4 if s["head_open"] else 0)
            | (8 if s["cutter"] else 0)
            | (0x10 if s["over_temperature"] else 0)
        )
        warnings = 0
        lines = [
            "",
            " PRINTER STATUS",
            f"   ERRORS:         {1 if errors else 0} 00000000 {errors:08X}",
            f"   WARNINGS:       {1 if warnings else 0} 00000000 {warnings:08X}",
        ]
        return STX + "\r\n".join(lines).encode("ascii") + b"\r\n" + ETX + b"\r\n"

    # ------------------------------------------------------------------------------------------ threads

    def _serve_client(self, conn: socket.socket) -> None:
        parser = ZplStreamParser()
        while not self._stopping:
            if not self._wait_for_room():
                return
            data = conn.recv(65536)
            if not data:
                return
            for event in parser.feed(data):
                if event[0] == "control":
                    self._control(conn, str(event[1]), str(event[2]), parser)
                elif event[0] == "download":
                    self._store_file(str(event[1]), bytes(event[2]), str(event[3]))  # type: ignore[arg-type]
                else:
                    self._receive_format(bytes(event[1]), conn)  # type: ignore[arg-type]

    def _keep_received(self, zpl: bytes) -> None:
        """Under the lock: count a received format and keep the most recent ones."""
        self._received_total += 1
        self.received.append(zpl)
        if len(self.received) > self.keep + self.keep // 4:
            del self.received[:len(self.received) - self.keep]

    def _wait_for_room(self) -> bool:
        # A full buffer stops the printer reading its socket; TCP then pushes back on the sender.
        with self._cond:
            while len(self._queue) >= self.buffer_size and not self._stopping:
                self._cond.wait(0.5)
            return not self._stopping

    def _send(self, conn: socket.socket, data: bytes) -> None:
        if self._switches["silent"]:
            return
        try:
            conn.sendall(data)
        except OSError:
            pass

    def _control(self, conn: socket.socket, name: str, params: str, parser: ZplStreamParser) -> None:
        self.controls_seen.append(f"~{name}{params}")
        if name == "HS":
            with self._cond:
                quiet = any(self._switches[f] for f in _SILENCING_FAULTS)
            if not quiet:
                self._send(conn, self.host_status(parser.partial))
        elif name == "HQ":
            if params == "ES":
                self._send(conn, self.hqes())
            else:
                self.unknown_controls.append(f"~HQ{params}")
        elif name == "JA":
            self.cancel_all()
        elif name == "PP":
            self.pause()
        elif name == "PS":
            self.resume()
        elif name == "HI":
            self._send(conn, STX + b"ZT410-SIM,V1.0,8,8192KB" + ETX + b"\r\n")
        else:
            self.unknown_controls.append(f"~{name}")

    def _receive_format(self, zpl: bytes, conn: socket.socket | None = None) -> None:
        commands = tokenize(zpl)
        queries = [c for c in commands if c.prefix == "^" and c.name == "HW"]
        for query in queries:   # ^HW answers on the connection that asked, as the format is read
            if conn is not None:
                self._send(conn, self.directory(query.params.decode("latin-1")))
        if queries and not any(c.name in _PRINTING_COMMANDS for c in commands):
            with self._cond:
                self._keep_received(zpl)
            return  # a format that only asks (^XA^HWE:*.TTF^XZ) prints nothing
        expanded, warnings = expand_format(zpl, self.stored_formats)
        if expanded is None:
            with self._cond:
                self._keep_received(zpl)
            return  # ^DF: stored, nothing to print
        rendered = None
        length = _DEFAULT_LABEL_DOTS
        copies = 1
        for cmd in tokenize(expanded):
            if cmd.prefix == "^" and cmd.name == "LL":
                try:
                    length = int(cmd.params.strip().split(b",")[0])
                except ValueError:
                    pass
            elif cmd.prefix == "^" and cmd.name == "PQ":
                try:
                    copies = max(1, int(cmd.params.strip().split(b",")[0]))
                except ValueError:
                    pass
        with self._cond:
            self._seq += 1
            job = _Job(self._seq, expanded, datetime.now(timezone.utc), copies, 0, rendered, length)
            self._keep_received(zpl)
            self._queue.append(job)
            self._label_length_dots = length
            self._cond.notify_all()
        if warnings:
            log.warning("format %d: %s", job.seq, "; ".join(warnings))

    def _print_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or not self._can_print()):
                    self.clock.wait(self._cond)
                if self._stopping:
                    return
                job = self._queue[0]
                generation = self._generation
            if self.render and job.rendered is None:
                with self._cond:
                    fonts = dict(self.files)
                try:
                    job.rendered = render_label(job.zpl, self.dpmm, fonts=fonts, aliases=self.font_aliases)
                except Exception:  # a renderer bug must not stop the printer: print the label blank
                    log.exception("cannot render format %d", job.seq)
            printed = self._print_one(job, generation)
            if printed is None:
                continue
            for callback in list(self._listeners):
                try:
                    callback(printed)
                except Exception:
                    log.exception("printer listener %r failed", callback)
            self._publish(printed)

    def _print_one(self, job: _Job, generation: int) -> PrintedLabel | None:
        """Run the label through the head (taking its time at `ips`); None if cancelled or stopping."""
        with self._cond:
            while True:
                if self._stopping or generation != self._generation:
                    return None
                if not self._can_print():
                    self.clock.wait(self._cond)
                    continue
                duration = job.length_dots / self.dpmm / 25.4 / self._ips if self._ips else 0.0
                deadline = self.clock.monotonic() + duration
                interrupted = False
                while (remaining := deadline - self.clock.monotonic()) > 0:
                    self.clock.wait(self._cond, remaining)
                    if self._stopping or generation != self._generation:
                        return None
                    if not self._can_print():
                        interrupted = True  # the label is spoilt: it goes through again once cleared
                        break
                if interrupted:
                    continue
                job.printed_copies += 1
                if job.printed_copies >= job.copies:
                    self._queue.popleft()
                label = PrintedLabel(
                    index=self._printed_total,
                    zpl=job.zpl,
                    image=job.rendered.image if job.rendered else None,
                    printed_at=datetime.now(timezone.utc),
                    received_at=job.received_at,
                    copy=job.printed_copies,
                    rendered=job.rendered,
                )
                self.labels.append(label)
                self._printed_total += 1
                if len(self.labels) > self.keep + self.keep // 4:   # trimmed in chunks, not on every label
                    del self.labels[:len(self.labels) - self.keep]
                self._cond.notify_all()
                return label

    # ------------------------------------------------------------------------------------------ control port

    def _publish(self, label: PrintedLabel) -> None:
        with self._cond:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        line = (json.dumps(label.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
        for sock in subscribers:
            try:
                sock.sendall(line)
            except OSError:
                with self._cond:
                    self._subscribers.discard(sock)

    def _serve_control(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            for raw in reader:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                if line == "quit":
                    conn.sendall(b"ok\n")
                    return
                if line == "subscribe":
                    with self._cond:
                        self._subscribers.add(conn)
                    conn.sendall(b"ok\n")
                    continue
                try:
                    reply = self._control_command(line)
                except SimulatorError as exc:
                    reply = f"error: {exc}"
                except Exception as exc:  # a tester's typo must never take the simulator down
                    reply = f"error: {exc.__class__.__name__}: {exc}"
                conn.sendall(reply.encode("utf-8") + b"\n")
        finally:
            with self._cond:
                self._subscribers.discard(conn)
            reader.close()

    def _control_command(self, line: str) -> str:
        words = line.split()
        command, args = words[0].lower(), words[1:]
        if command == "help":
            return "commands: " + ", ".join(
                [f"{n} on|off" for n in FAULT_NAMES + ("silent", "offline")]
                + ["pause", "resume", "disconnect", "power_cycle", "factory_reset", "files", "ips <n>|off",
                   "cancel", "status", "labels", "received", "cancelled", "label <index>", "subscribe", "quit"]
            )
        if command == "power_cycle":
            self.power_cycle()
            return "ok"
        if command == "factory_reset":
            self.factory_reset()
            return "ok"
        if command == "files":
            with self._cond:
                return json.dumps({name: len(data) for name, data in sorted(self.files.items())})
        if command in FAULT_NAMES or command in ("silent", "offline"):
            setting = yes_no(args[0]) if len(args) == 1 else None
            if setting is None:
                raise SimulatorError(f"usage: {command} on|off")
            self.set_faults(**{command: setting})
            return "ok"
        if command in ("pause", "resume"):
            self.set_faults(paused=command == "pause")
            return "ok"
        if command == "disconnect":
            self.disconnect()
            return "ok"
        if command == "cancel":
            self.cancel_all()
            return "ok"
        if command == "ips":
            if len(args) != 1:
                raise SimulatorError("usage: ips <inches per second>|off")
            if args[0].lower() in ("off", "none", "0"):
                self.ips = None
            else:
                try:
                    self.ips = float(args[0])
                except ValueError:
                    raise SimulatorError(f"not a speed: {args[0]!r}") from None
            return "ok"
        if command == "status":
            return json.dumps(self.status())
        if command == "labels":
            return str(self.printed_count)
        if command == "received":
            return str(self.received_count)
        if command == "cancelled":
            return str(self.cancelled_count)
        if command == "label":
            try:
                index = int(args[0])
                first = self._printed_total - len(self.labels)
                if 0 <= index < first:
                    raise SimulatorError(f"label {index} is no longer kept (the last {len(self.labels)} are: "
                                         f"{first}-{self._printed_total - 1})")
                label = self.labels[index - first] if index >= 0 else self.labels[index]
            except (IndexError, ValueError):
                raise SimulatorError(f"no printed label {' '.join(args)!r} ({self.printed_count} printed)") from None
            return json.dumps(label.to_json(), ensure_ascii=False)
        raise SimulatorError(f"unknown command {command!r}; try help")
