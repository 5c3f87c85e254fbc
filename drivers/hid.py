"""Keyboard-wedge scanners through the Linux input layer: `hid:///dev/input/by-id/…-event-kbd[?grab=1]`.

Most cheap scanners are USB keyboards: they "type" each code and press Enter. Read as a keyboard they would need
window focus and would type into whatever has it. Read from the input event device instead, and grabbed
(EVIOCGRAB), their keystrokes reach only the station, with or without focus, and never the desktop.

`HidTransport` is a read-only byte transport: it turns key events into the characters a US keyboard layout gives
(the layout scanners use unless configured otherwise) and Enter into CR, so the serial scanner's line framer and
reader thread (`drivers.scanner.SerialScanner`) serve it unchanged, reconnects included. Ctrl+] gives GS (0x1D),
which many scanners send for a GS1 FNC1 in keyboard mode.

The device is read directly (`struct input_event`, and one ioctl to grab it), the same kernel interface
python-evdev wraps, which has no wheels and needs a compiler or `python3-evdev` from apt. Stable names come from
`/dev/input/by-id/`; the user needs read access (the `input` group, or a udev rule).

Options: `grab=1` (default; `grab=0` reads without taking the device, e.g. to watch what a scanner sends).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
from urllib.parse import unquote, urlsplit

from drivers.transport import Transport, TransportClosed, TransportError, UnsupportedUrl
from drivers.url_options import UrlOptions

__all__ = ["HidTransport", "KeyDecoder", "input_event"]

_EVENT = struct.Struct("@llHHi")       # struct input_event: timeval, type, code, value (24 bytes on 64-bit)
_EVIOCGRAB = 0x40044590                # _IOW('E', 0x90, int)
_EV_KEY = 1

_SHIFT = {42, 54}                      # KEY_LEFTSHIFT, KEY_RIGHTSHIFT
_CTRL = {29, 97}                       # KEY_LEFTCTRL, KEY_RIGHTCTRL
_CAPSLOCK = 58
_ENTER = {28, 96}                      # KEY_ENTER, KEY_KPENTER
_RIGHTBRACE = 27

# Key code -> (plain, shifted) on a US layout (linux/input-event-codes.h).
_US: dict[int, str] = {
    2: "1!", 3: "2@", 4: "3#", 5: "4$", 6: "5%", 7: "6^", 8: "7&", 9: "8*", 10: "9(", 11: "0)", 12: "-_",
    13: "=+", 15: "\t\t", 16: "qQ", 17: "wW", 18: "eE", 19: "rR", 20: "tT", 21: "yY", 22: "uU", 23: "iI",
    24: "oO", 25: "pP", 26: "[{", 27: "]}", 30: "aA", 31: "sS", 32: "dD", 33: "fF", 34: "gG", 35: "hH",
    36: "jJ", 37: "kK", 38: "lL", 39: ";:", 40: "'\"", 41: "`~", 43: "\\|", 44: "zZ", 45: "xX", 46: "cC",
    47: "vV", 48: "bB", 49: "nN", 50: "mM", 51: ",<", 52: ".>", 53: "/?", 57: "  ",
    # the keypad (some scanners send digits from it)
    55: "**", 71: "77", 72: "88", 73: "99", 74: "--", 75: "44", 76: "55", 77: "66", 78: "++", 79: "11",
    80: "22", 81: "33", 82: "00", 83: "..", 98: "//",
}


def input_event(code: int, value: int, type_: int = _EV_KEY) -> bytes:
    """One `struct input_event` as the kernel writes it (for tests and tools)."""
    return _EVENT.pack(0, 0, type_, code, value)


class KeyDecoder:
    """Key events to text, US layout (pure). `feed(type, code, value)` returns what that event typed."""

    def __init__(self) -> None:
        self.shift = self.ctrl = self.caps = False
        self.ignored = 0          # presses of keys with no character (F-keys, arrows…)

    def feed(self, type_: int, code: int, value: int) -> str:
        if type_ != _EV_KEY:
            return ""             # EV_SYN, EV_MSC scan codes, LEDs
        if code in _SHIFT:
            self.shift = value != 0
            return ""
        if code in _CTRL:
            self.ctrl = value != 0
            return ""
        if value != 1:
            return ""             # releases, and auto-repeat (a key held by a slow host, not typed twice)
        if code == _CAPSLOCK:
            self.caps = not self.caps
            return ""
        if code in _ENTER:
            return "\r"
        if self.ctrl:
            return "\x1d" if code == _RIGHTBRACE else ""
        pair = _US.get(code)
        if pair is None:
            self.ignored += 1
            return ""
        upper = self.shift != (self.caps and pair[0].isalpha())
        return pair[1] if upper else pair[0]


class HidTransport(Transport):
    """A keyboard-wedge scanner's event device as a read-only byte stream (see the module docstring)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path or parts.path == "/":
            raise UnsupportedUrl(f"{url}: expected hid:///dev/input/by-id/<scanner>-event-kbd")
        options = UrlOptions(url, parts.query, known=("grab",), error=UnsupportedUrl)
        self.path = unquote(parts.path)
        self.grab = options.flag("grab", True)
        self._fd: int | None = None
        self._pending = b""
        self._keys = KeyDecoder()

    @property
    def can_read(self) -> bool:
        return True

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self) -> None:
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise TransportError(f"{self._url}: no such device (scanner unplugged?)") from None
        except PermissionError:
            raise TransportError(f"{self._url}: permission denied (add the station's user to the 'input' "
                                 "group, or a udev rule giving it the device)") from None
        except OSError as exc:
            raise TransportError(f"{self._url}: cannot open: {exc.strerror or exc}") from exc
        if self.grab:
            try:
                fcntl.ioctl(fd, _EVIOCGRAB, 1)
            except OSError as exc:
                os.close(fd)
                if exc.errno == errno.EBUSY:
                    raise TransportError(f"{self._url}: another program has grabbed the scanner") from None
                raise TransportError(f"{self._url}: not an input event device, cannot grab it "
                                     f"({exc.strerror}); use /dev/input/by-id/…-event-kbd or grab=0") from None
        self._fd, self._pending, self._keys = fd, b"", KeyDecoder()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self.grab:
            try:
                fcntl.ioctl(fd, _EVIOCGRAB, 0)
            except OSError:
                pass      # the device is gone; the grab went with it
        try:
            os.close(fd)
        except OSError:
            pass

    def write(self, data: bytes) -> None:
        raise TransportError(f"{self._url}: a keyboard-wedge scanner takes no commands")

    def read(self, timeout: float) -> bytes:
        self._require_open()
        assert self._fd is not None
        try:
            ready, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
            if not ready:
                return b""
            chunk = os.read(self._fd, _EVENT.size * 64)
        except BlockingIOError:
            return b""
        except OSError as exc:
            # ENODEV: unplugged. The owner closes and opens again when it is back.
            raise TransportClosed(f"{self._url}: scanner disconnected: {exc.strerror or exc}") from exc
        if not chunk:
            raise TransportClosed(f"{self._url}: the device closed")
        data = self._pending + chunk
        whole = len(data) - len(data) % _EVENT.size
        self._pending = data[whole:]
        typed = "".join(self._keys.feed(type_, code, value)
                        for _, _, type_, code, value in _EVENT.iter_unpack(data[:whole]))
        return typed.encode("utf-8")
