"""Keyboard-wedge scanners (hid://): key events to text, and the whole scanner path on a real file descriptor.

No input device can be created on a build machine (no /dev/uinput), so a FIFO carries the very bytes the kernel
writes for each key (`struct input_event`); `grab=0` because a FIFO cannot be grabbed. The same reader thread,
framer and verifier service as for serial scanners run on it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.devices import VerifierService
from drivers.hid import HidTransport, KeyDecoder, input_event
from drivers.transport import TransportError, UnsupportedUrl, open_transport
from station.ports import VerificationRead
from tests.waiting import unread, wait_until


URI = "https://truyxuat.hue.example.vn/01/08938603001013/10/MX2611A/21/7K3Q9XH2WP?17=270528"
SHIFTED = {'~': '`', '!': '1', '@': '2', '#': '3', '$': '4', '%': '5', '^': '6', '&': '7', '*': '8', '(': '9',
           ')': '0', '_': '-', '+': '=', '{': '[', '}': ']', '|': '\\', ':': ';', '"': "'", '<': ',', '>': '.',
           '?': '/'}
CODES = {c: k for k, pair in {2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9", 11: "0",
                             12: "-", 13: "=", 26: "[", 27: "]", 39: ";", 40: "'", 41: "`", 43: "\\", 51: ",",
                             52: ".", 53: "/", 57: " "}.items() for c in pair}
CODES.update({c: k for k, c in zip(range(16, 26), "qwertyuiop")})
CODES.update({c: k for k, c in zip(range(30, 39), "asdfghjkl")})
CODES.update({c: k for k, c in zip(range(44, 51), "zxcvbnm")})


def typed(text: str, enter: bool = True) -> bytes:
    """The events a US-layout scanner sends for `text`: shift around capitals and symbols, a SYN after each."""
    out = []
    for ch in text:
        base = SHIFTED.get(ch, ch.lower())
        shift = ch in SHIFTED or ch.isupper()
        code = CODES[base]
        if shift:
            out.append(input_event(42, 1))
        out += [input_event(code, 1), input_event(0, 0, 0), input_event(code, 0)]
        if shift:
            out.append(input_event(42, 0))
        out.append(input_event(0, 0, 0))
    if enter:
        out += [input_event(28, 1), input_event(28, 0), input_event(0, 0, 0)]
    return b"".join(out)


def decode(data: bytes) -> str:
    import struct

    keys = KeyDecoder()
    return "".join(keys.feed(t, c, v) for _, _, t, c, v in struct.iter_unpack("@llHHi", data))


def test_key_events_give_the_text_a_us_layout_types() -> None:
    assert decode(typed(URI)) == URI + "\r"
    assert decode(typed("Lô-MX2611A".replace("ô", "o"), enter=False)) == "Lo-MX2611A"


def test_caps_lock_keypad_gs_and_auto_repeat() -> None:
    keys = KeyDecoder()
    feed = lambda code, value=1: keys.feed(1, code, value)  # noqa: E731
    assert feed(58) == "" and feed(30) == "A"          # caps lock on: letters upper, digits not
    assert feed(2) == "1"
    assert feed(42) == "" and feed(30) == "a" and feed(42, 0) == ""   # shift inverts caps for letters
    assert feed(58) == "" and feed(30) == "a"
    assert feed(79) == "1" and feed(82) == "0" and feed(96) == "\r"   # keypad digits and enter
    assert feed(29) == "" and feed(27) == "\x1d" and feed(29, 0) == ""  # ctrl+] = GS (FNC1)
    assert feed(30, 2) == ""                            # auto-repeat is not typing
    assert feed(59) == "" and keys.ignored == 1         # F1 has no character


def test_urls_are_checked_and_a_fifo_cannot_be_grabbed(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedUrl, match="expected hid:///dev/input"):
        open_transport("hid://scanner")
    with pytest.raises(UnsupportedUrl, match="unknown option speed"):
        open_transport("hid:///dev/input/event3?speed=9")
    with pytest.raises(TransportError, match="no such device"):
        open_transport(f"hid://{tmp_path}/missing").open()
    fifo = tmp_path / "kbd"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)      # keeps the FIFO open for the reader
    try:
        with pytest.raises(TransportError, match="not an input event device"):
            open_transport(f"hid://{fifo}").open()
        transport = open_transport(f"hid://{fifo}?grab=0")
        assert isinstance(transport, HidTransport) and transport.can_read
        with pytest.raises(TransportError, match="takes no commands"), transport:
            transport.write(b"x")
    finally:
        os.close(writer)


def test_a_keyboard_wedge_scanner_feeds_the_verifier_like_a_serial_one(tmp_path: Path) -> None:
    fifo = tmp_path / "kbd"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)
    reads: list[VerificationRead] = []
    service = VerifierService(f"hid://{fifo}?grab=0", reads.append, terminator=b"\r\n", max_line_length=512)
    service.start()
    try:
        assert wait_until(lambda: service.connected, 5)
        # Events arrive in odd chunks (a read may end inside an event): nothing is lost or doubled.
        data = typed(URI) + typed("GARBAGE", enter=False) + input_event(28, 1) + typed(URI.replace("WP", "WQ"))
        for start in range(0, len(data), 1000):
            os.write(writer, data[start:start + 1000])
            # The next chunk only once the reader has taken this one from the FIFO: each read ends where the
            # chunk does (1000 bytes is no whole number of input events), however the machine schedules us.
            assert wait_until(lambda: unread(writer) == 0, 5)
        assert wait_until(lambda: len(reads) == 3, 5), reads
        assert [r.text for r in reads] == [URI, "GARBAGE", URI.replace("WP", "WQ")]
        assert service.read_count == 3 and service.refused_count == 0
    finally:
        service.stop()
        os.close(writer)
