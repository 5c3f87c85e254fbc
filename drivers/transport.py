"""Byte transports chosen by URL: tcp://, serial:// (any pyserial port or URL), file:// (USB printer), cups://.

A transport only moves bytes. It does not retry or reconnect: its owner (the printer driver, the scanner's
reader thread) decides when to close() and open() again. A transport is used by one owner at a time; it is
not safe to call it from several threads without the owner's lock.

URLs:

- `tcp://host:port[?connect_timeout=5&write_timeout=10]` — raw TCP (Zebra port 9100), TCP_NODELAY set.
- `serial:///dev/ttyUSB0?baud=9600[&bytesize=8&parity=N&stopbits=1&xonxoff=0&rtscts=0&dsrdtr=0]` — the
  text after `serial://` up to `?` is handed to `serial.serial_for_url`, so a device path
  (`serial:///dev/ttyUSB0`, `serial://COM3`) and any pyserial URL (`serial://loop://`,
  `serial://socket://host:4000`, `serial://rfc2217://host:2217?timeout=1`) both work. Our options
  (`baud`, `bytesize`, `parity`, `stopbits`, `xonxoff`, `rtscts`, `dsrdtr`, `write_timeout`) become keyword
  arguments; any other option stays on a pyserial URL (which checks it) and is an error on a device path.
- `file:///dev/usb/lp0` — a device file (or any existing file: bytes are appended). Read-back works on a
  character device opened read-write; a regular file is write-only. The file is never created, so a
  missing printer is an error instead of a new file in /dev.
- `cups://queue` — a raw CUPS queue: `lpstat -p` must list it, each write is one `lpr -o raw` job; no read-back
  (`can_read` is False).
- `hid:///dev/input/by-id/…-event-kbd[?grab=1]` — a keyboard-wedge scanner's input events as typed text, read-only
  (`drivers.hid`).

One module of about 500 lines: four small transports (tcp, serial, file, cups) behind one interface and one URL
parser, each a class that is read on its own; hid:// lives in drivers/hid.py.
"""

from __future__ import annotations

import errno
import os
import re
import select
import socket
import stat
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

import serial

from drivers.errors import DeviceError
from drivers.url_options import UrlOptions, host_and_port

_READ_SIZE = 4096


class TransportError(DeviceError):
    """A transport could not open, write or read."""


class TransportClosed(TransportError):
    """The peer closed the connection (or the device went away); close() and open() to try again."""


class UnsupportedUrl(TransportError):
    """A device URL that no transport can handle, or with a wrong or missing part."""


class Transport(ABC):
    """Moves bytes to and from one device. Created closed; `open()` (or `with`) connects."""

    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        """The URL this transport was made from, for messages and logs."""
        return self._url

    @property
    @abstractmethod
    def can_read(self) -> bool:
        """Whether `read()` can return device replies on this transport."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """Whether the transport is open."""

    @abstractmethod
    def open(self) -> None:
        """Connect; does nothing if already open. Raises TransportError."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect; safe to call when closed and after errors."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send all of `data`. Raises TransportError (TransportClosed if the peer has gone)."""

    @abstractmethod
    def read(self, timeout: float) -> bytes:
        """Return the bytes that arrive within `timeout` seconds, b"" if none; raises TransportClosed."""

    @property
    def bytes_per_second(self) -> float | None:
        """How fast the line itself moves bytes, where it sets the pace (a serial port); None otherwise."""
        return None

    def _require_open(self) -> None:
        if not self.is_open:
            raise TransportError(f"{self._url}: transport is not open")

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<{type(self).__name__} {self._url} {state}>"


def open_transport(url: str) -> Transport:
    """Return the transport for `url`, checked but not yet connected: its owner calls `open()`.

    Not connecting here lets the station start while a device is off; the owner reports it unreachable.
    """
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise UnsupportedUrl(f"{url}: not a device URL (expected tcp://, serial://, file://, cups:// or hid://)")
    factory = _SCHEMES.get(scheme.lower())
    if factory is None:
        raise UnsupportedUrl(f"{url}: unknown scheme {scheme!r} (expected tcp, serial, file, cups or hid)")
    return factory(url)


# --- tcp:// ----------------------------------------------------------------------------------------------


class TcpTransport(Transport):
    """Raw TCP socket (Zebra port 9100); replies come back on the same socket."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        host, port, parts = host_and_port(url, expected="tcp://host:9100", error=UnsupportedUrl)
        options = UrlOptions(url, parts.query, known=("connect_timeout", "write_timeout"), error=UnsupportedUrl)
        self.host: str = host
        self.port: int = port
        self.connect_timeout = options.number("connect_timeout", 5.0, 0, 3600, "seconds", above=True)
        self.write_timeout = options.number("write_timeout", 10.0, 0, 3600, "seconds", above=True)
        self._sock: socket.socket | None = None

    @property
    def can_read(self) -> bool:
        return True

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        if self._sock is not None:
            return
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise TransportError(f"{self._url}: cannot connect: {_reason(exc)}") from exc
        # Labels and status queries are small; waiting for Nagle to fill a segment only adds latency.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._sock = sock

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def write(self, data: bytes) -> None:
        self._require_open()
        assert self._sock is not None
        try:
            self._sock.settimeout(self.write_timeout)
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise TransportError(f"{self._url}: write timed out after {self.write_timeout:g}s") from exc
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            raise TransportClosed(f"{self._url}: connection closed by the printer: {_reason(exc)}") from exc
        except OSError as exc:
            raise TransportError(f"{self._url}: write failed: {_reason(exc)}") from exc

    def read(self, timeout: float) -> bytes:
        self._require_open()
        assert self._sock is not None
        try:
            self._sock.settimeout(max(timeout, 0.0))
            data = self._sock.recv(_READ_SIZE)
        except (TimeoutError, BlockingIOError):
            return b""
        except (ConnectionResetError, ConnectionAbortedError) as exc:
            raise TransportClosed(f"{self._url}: connection reset by peer") from exc
        except OSError as exc:
            raise TransportError(f"{self._url}: read failed: {_reason(exc)}") from exc
        if not data:
            raise TransportClosed(f"{self._url}: connection closed by peer")
        return data


# --- serial:// -------------------------------------------------------------------------------------------

_SERIAL_OPTIONS = ("baud", "bytesize", "parity", "stopbits", "xonxoff", "rtscts", "dsrdtr", "write_timeout")


class SerialTransport(Transport):
    """A serial port or pyserial URL, opened with `serial.serial_for_url`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        rest = url.partition("://")[2]
        target, _, query = rest.partition("?")
        is_pyserial_url = "://" in target
        if not target or target == "/":
            raise UnsupportedUrl(f"{url}: missing device (expected serial:///dev/ttyUSB0?baud=9600)")
        # pyserial URL handlers check their own options and reject unknown ones; a device path has only ours.
        options = UrlOptions(url, query, known=_SERIAL_OPTIONS, error=UnsupportedUrl, foreign=is_pyserial_url)
        if is_pyserial_url:
            self.port_name = target + (f"?{options.foreign_query}" if options.foreign_query else "")
        else:
            self.port_name = unquote(target)
        self._exclusive = not is_pyserial_url
        self.settings = self._settings(options)
        self._port: serial.SerialBase | None = None
        self._read_timeout: float | None = None

    @staticmethod
    def _settings(options: UrlOptions) -> dict[str, object]:
        baud = options.get("baud", "9600")
        if not baud.isdigit() or int(baud) == 0:
            raise UnsupportedUrl(f"{options.url}: baud must be a positive whole number, got {baud!r}")
        return {
            "baudrate": int(baud),
            "bytesize": int(options.choice("bytesize", "8", ("5", "6", "7", "8"))),
            "parity": options.choice("parity", "N", ("N", "E", "O", "M", "S"), fold_case=False),
            "stopbits": float(options.choice("stopbits", "1", ("1", "1.5", "2"))),
            "xonxoff": options.flag("xonxoff"),
            "rtscts": options.flag("rtscts"),
            "dsrdtr": options.flag("dsrdtr"),
            "write_timeout": options.number("write_timeout", 10.0, 0, 3600, "seconds", above=True),
        }

    @property
    def can_read(self) -> bool:
        return True

    @property
    def bytes_per_second(self) -> float | None:
        # One start bit, the data bits, a parity bit if any, the stop bits: 9600 baud 8N1 is 960 bytes/s.
        s = self.settings
        bits = 1 + int(s["bytesize"]) + (0 if s["parity"] == "N" else 1) + float(s["stopbits"])  # type: ignore[arg-type]
        return int(s["baudrate"]) / bits  # type: ignore[call-overload]

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        if self._port is not None:
            return
        extra: dict[str, object] = {"exclusive": True} if self._exclusive else {}
        try:
            port = serial.serial_for_url(self.port_name, timeout=0, **self.settings, **extra)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise TransportError(f"{self._url}: cannot open {self.port_name}: {exc}") from exc
        except KeyError as exc:
            # pyserial 3.5's URL handlers raise KeyError while formatting their "unknown option" message.
            raise TransportError(
                f"{self._url}: cannot open {self.port_name}: pyserial rejected an option of the URL"
            ) from exc
        self._port = port
        self._read_timeout = 0

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass  # the device is already gone; closing is best effort

    def write(self, data: bytes) -> None:
        self._require_open()
        assert self._port is not None
        try:
            self._port.write(data)
        except serial.SerialTimeoutException as exc:
            raise TransportError(f"{self._url}: write timed out") from exc
        except (serial.SerialException, OSError) as exc:
            raise TransportClosed(f"{self._url}: write failed, device gone? {exc}") from exc

    def read(self, timeout: float) -> bytes:
        self._require_open()
        assert self._port is not None
        timeout = max(timeout, 0.0)
        try:
            # Changing the timeout reconfigures the port (tcsetattr), so only do it when it changes.
            if timeout != self._read_timeout:
                self._port.timeout = timeout
                self._read_timeout = timeout
            first = self._port.read(1)
            if not first:
                return b""
            waiting = self._port.in_waiting
            return first + (self._port.read(waiting) if waiting else b"")
        except (serial.SerialException, OSError) as exc:
            # On a serial line a failing read means the device was unplugged or the pty's master closed.
            raise TransportClosed(f"{self._url}: device disconnected: {exc}") from exc


# --- file:// ---------------------------------------------------------------------------------------------


class FileTransport(Transport):
    """A device file such as /dev/usb/lp0 (read-back if it is a character device opened read-write)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedUrl(
                f"{url}: file URLs need three slashes and an absolute path (expected file:///dev/usb/lp0)"
            )
        if not parts.path or parts.path == "/":
            raise UnsupportedUrl(f"{url}: missing path (expected file:///dev/usb/lp0)")
        if parts.query or parts.fragment:
            raise UnsupportedUrl(f"{url}: file URLs take no options")
        self.path = unquote(parts.path)
        self._fd: int | None = None
        self._readable = False

    @property
    def can_read(self) -> bool:
        if self._fd is not None:
            return self._readable
        try:
            return stat.S_ISCHR(os.stat(self.path).st_mode)
        except OSError:
            return False

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self) -> None:
        if self._fd is not None:
            return
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise TransportError(f"{self._url}: no such file (printer unplugged or switched off?)") from None
        except OSError as exc:
            raise TransportError(f"{self._url}: cannot open: {_reason(exc)}") from exc
        try:
            if stat.S_ISCHR(mode):
                try:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
                    self._readable = True
                except PermissionError:
                    # Some devices are write-only for us; printing still works without read-back.
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_NOCTTY)
                    self._readable = False
            else:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                self._readable = False
        except OSError as exc:
            raise TransportError(f"{self._url}: cannot open: {_reason(exc)}") from exc

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass  # the device may already be gone

    def write(self, data: bytes) -> None:
        self._require_open()
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.EIO, errno.ENXIO):
                raise TransportClosed(f"{self._url}: device gone: {_reason(exc)}") from exc
            raise TransportError(f"{self._url}: write failed: {_reason(exc)}") from exc

    def read(self, timeout: float) -> bytes:
        self._require_open()
        assert self._fd is not None
        if not self._readable:
            raise TransportError(f"{self._url}: this file is write-only, it cannot be read")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                ready, _, _ = select.select([self._fd], [], [], remaining)
                data = os.read(self._fd, _READ_SIZE) if ready else b""
            except OSError as exc:
                if exc.errno in (errno.ENODEV, errno.EIO, errno.ENXIO):
                    raise TransportClosed(f"{self._url}: device gone: {_reason(exc)}") from exc
                raise TransportError(f"{self._url}: read failed: {_reason(exc)}") from exc
            if data or remaining <= 0:
                return data
            # usblp reports "readable" yet returns nothing while the printer has no reply; don't spin.
            time.sleep(min(remaining, 0.02))


# --- cups:// ---------------------------------------------------------------------------------------------

_QUEUE_NAME = re.compile(r"[^\s/#?\\]+")


_LPR_TIMEOUT = 30.0
_LPSTAT_TIMEOUT = 10.0


def cups_queues() -> list[str]:
    """The CUPS queues `lpstat -p` lists (none when it lists none). Raises OSError without CUPS's tools."""
    try:
        result = subprocess.run(["lpstat", "-p"], capture_output=True, timeout=_LPSTAT_TIMEOUT, check=False,
                                env={**os.environ, "LC_ALL": "C"})   # "printer <name> is idle…" in any locale
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"lpstat -p did not answer within {_LPSTAT_TIMEOUT:g}s") from exc
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    return [line.split()[1] for line in lines if line.startswith("printer ") and len(line.split()) > 1]


class CupsTransport(Transport):
    """A raw CUPS queue (`lpr -o raw`): write-only, each write is one print job."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        rest = url.partition("://")[2]
        if "?" in rest or "#" in rest:
            raise UnsupportedUrl(f"{url}: cups URLs take no options (expected cups://queue)")
        queue = unquote(rest.strip("/"))
        if not queue:
            raise UnsupportedUrl(f"{url}: missing queue name (expected cups://queue)")
        if not _QUEUE_NAME.fullmatch(queue):
            raise UnsupportedUrl(f"{url}: {queue!r} is not a CUPS queue name")
        self.queue = queue
        self._open = False

    @property
    def can_read(self) -> bool:
        return False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if self._open:
            return
        try:
            queues = cups_queues()
        except OSError as exc:
            raise TransportError(f"{self._url}: cannot list CUPS queues (is CUPS installed?): {exc}") from exc
        if self.queue not in queues:
            listed = ", ".join(queues) or "none"
            raise TransportError(f"{self._url}: no CUPS queue named {self.queue!r} (lpstat -p lists: {listed})")
        self._open = True

    def close(self) -> None:
        self._open = False

    def write(self, data: bytes) -> None:
        self._require_open()
        try:
            # The bytes go to lpr untouched (UTF-8 labels stay UTF-8); its exit status says whether CUPS took them.
            result = subprocess.run(["lpr", f"-P{self.queue}", "-o", "raw"], input=bytes(data), capture_output=True,
                                    timeout=_LPR_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise TransportError(f"{self._url}: print job failed: {exc}") from exc
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip() or f"exit status {result.returncode}"
            raise TransportError(f"{self._url}: lpr failed: {message}")

    def read(self, timeout: float) -> bytes:
        raise TransportError(f"{self._url}: a CUPS queue has no read-back")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _hid(url: str) -> Transport:
    from drivers.hid import HidTransport   # its own module: it builds on this one

    return HidTransport(url)


_SCHEMES: dict[str, Callable[[str], Transport]] = {
    "tcp": TcpTransport,
    "serial": SerialTransport,
    "file": FileTransport,
    "cups": CupsTransport,
    "hid": _hid,
}
