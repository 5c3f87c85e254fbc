"""Pure parsers for Zebra status replies: ~HS (host status, three frames) and ~HQES (error and warning flags)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drivers.errors import DeviceError

STX = 0x02
ETX = 0x03

# A ~HS frame is ~40 bytes; anything far longer is noise, not a frame, and must not grow memory.
_MAX_FRAME = 128
_MAX_HQES = 1024

_FRAME_FIELDS = {1: 12, 2: 11, 3: 2}
_FRAME_BY_COUNT = {count: number for number, count in _FRAME_FIELDS.items()}

# ~HQES error bits of group 1 (the last eight hex digits), from the ZPL programming guide.
MEDIA_OUT = 0x1
RIBBON_OUT = 0x2
HEAD_OPEN = 0x4
CUTTER_FAULT = 0x8
PRINTHEAD_OVER_TEMPERATURE = 0x10
MOTOR_OVER_TEMPERATURE = 0x20

_ERROR_NAMES = (
    (MEDIA_OUT, "media out"),
    (RIBBON_OUT, "ribbon out"),
    (HEAD_OPEN, "head open"),
    (CUTTER_FAULT, "cutter fault"),
    (PRINTHEAD_OVER_TEMPERATURE, "printhead over temperature"),
    (MOTOR_OVER_TEMPERATURE, "motor over temperature"),
)

#: The ~HS print mode codes (frame 2, field r).
PRINT_MODES = {
    "0": "rewind",
    "1": "peel-off",
    "2": "tear-off",
    "3": "cutter",
    "4": "applicator",
    "5": "delayed cut",
    "6": "linerless peel",
    "7": "linerless rewind",
    "8": "partial cutter",
    "9": "RFID",
    "K": "kiosk",
    "S": "stream",
}


class StatusParseError(DeviceError):
    """A printer status reply does not have the documented shape."""


@dataclass(frozen=True)
class HostStatus:
    """Every field of a ~HS reply (frame numbers and letters as in the ZPL guide)."""

    # Frame 1: aaa,b,c,dddd,eee,f,g,h,iii,j,k,l
    communication_settings: int
    paper_out: bool
    paused: bool
    label_length_dots: int
    formats_in_buffer: int
    buffer_full: bool
    diagnostic_mode: bool
    partial_format: bool
    corrupt_ram: bool
    under_temperature: bool
    over_temperature: bool
    # Frame 2: mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www
    function_settings: int
    head_open: bool
    ribbon_out: bool
    thermal_transfer: bool
    print_mode: str
    print_width_mode: int
    label_waiting: bool
    labels_remaining: int
    format_while_printing: bool
    graphics_stored: int
    # Frame 3: xxxx,y. The password stays out of repr so it never lands in a log line.
    password: str = field(repr=False)
    static_ram: bool

    @property
    def print_mode_name(self) -> str:
        """Plain-English print mode, or the raw code if the guide does not name it."""
        return PRINT_MODES.get(self.print_mode, f"mode {self.print_mode}")


class _Fields:
    """Reads typed values from one frame, naming the frame and field when a value is wrong."""

    def __init__(self, number: int, values: list[str]) -> None:
        self._number = number
        self._values = values

    def _where(self, index: int, name: str) -> str:
        return f"~HS frame {self._number} field {index + 1} ({name})"

    def flag(self, index: int, name: str) -> bool:
        value = self._values[index]
        if value not in ("0", "1"):
            raise StatusParseError(f"{self._where(index, name)} should be 0 or 1, got {value!r}")
        return value == "1"

    def number(self, index: int, name: str) -> int:
        value = self._values[index]
        if not value.isdigit() or not value.isascii():
            raise StatusParseError(f"{self._where(index, name)} should be digits, got {value!r}")
        return int(value)

    def code(self, index: int, name: str) -> str:
        value = self._values[index]
        if len(value) != 1 or not value.isalnum() or not value.isascii():
            raise StatusParseError(f"{self._where(index, name)} should be one letter or digit, got {value!r}")
        return value


def _build(frames: list[list[str]]) -> HostStatus:
    one, two, three = (_Fields(n, values) for n, values in enumerate(frames, start=1))
    return HostStatus(
        communication_settings=one.number(0, "communication settings"),
        paper_out=one.flag(1, "paper out"),
        paused=one.flag(2, "paused"),
        label_length_dots=one.number(3, "label length"),
        formats_in_buffer=one.number(4, "formats in receive buffer"),
        buffer_full=one.flag(5, "buffer full"),
        diagnostic_mode=one.flag(6, "communications diagnostic mode"),
        partial_format=one.flag(7, "partial format"),
        corrupt_ram=one.flag(9, "corrupt RAM"),
        under_temperature=one.flag(10, "under temperature"),
        over_temperature=one.flag(11, "over temperature"),
        function_settings=two.number(0, "function settings"),
        head_open=two.flag(2, "head open"),
        ribbon_out=two.flag(3, "ribbon out"),
        thermal_transfer=two.flag(4, "thermal transfer mode"),
        print_mode=two.code(5, "print mode"),
        print_width_mode=two.number(6, "print width mode"),
        label_waiting=two.flag(7, "label waiting"),
        labels_remaining=two.number(8, "labels remaining"),
        format_while_printing=two.flag(9, "format while printing"),
        graphics_stored=two.number(10, "graphic images stored"),
        password=_password(three, frames[2]),
        static_ram=three.flag(1, "static RAM installed"),
    )


def _password(fields: _Fields, values: list[str]) -> str:
    fields.number(0, "password")
    return values[0]


class HostStatusAssembler:
    """Collects a ~HS reply from chunks split anywhere, and returns it once all three frames arrived.

    Bytes outside <STX>…<ETX> (junk, the CR LF after each frame) are ignored. A frame cut short by a new STX
    is dropped. Frames are told apart by their field count (12, 11, 2), so the tail of an earlier reply
    (frames 2 and 3 without 1) is skipped instead of being mixed into the next one.
    """

    def __init__(self) -> None:
        self._frame = bytearray()
        self._in_frame = False
        self._frames: list[list[str]] = []

    def reset(self) -> None:
        """Forget any partial reply."""
        self._frame.clear()
        self._in_frame = False
        self._frames = []

    def feed(self, data: bytes) -> HostStatus | None:
        """Take the next chunk; return the newest status completed by it, or None while incomplete.

        Raises StatusParseError for a frame with a shape no ~HS frame has (after reading the whole chunk,
        and only if the chunk completed no status); the assembler is then ready for the next reply.
        """
        result: HostStatus | None = None
        error: StatusParseError | None = None
        for byte in data:
            if byte == STX:
                # A new STX inside a frame means the earlier frame was cut: drop it, start again.
                self._frame.clear()
                self._in_frame = True
            elif not self._in_frame:
                continue
            elif byte == ETX:
                self._in_frame = False
                try:
                    status = self._frame_done(bytes(self._frame))
                except StatusParseError as exc:
                    self._frames = []
                    error = error or exc
                else:
                    result = status or result
            else:
                self._frame.append(byte)
                if len(self._frame) > _MAX_FRAME:
                    self._frame.clear()
                    self._in_frame = False
                    self._frames = []
                    error = error or StatusParseError(
                        f"~HS frame longer than {_MAX_FRAME} bytes without <ETX>; dropped"
                    )
        if result is None and error is not None:
            raise error
        return result

    def _frame_done(self, raw: bytes) -> HostStatus | None:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise StatusParseError(f"~HS frame is not ASCII: {raw!r}") from None
        values = [value.strip() for value in text.split(",")]
        number = _FRAME_BY_COUNT.get(len(values))
        if number is None:
            raise StatusParseError(
                f"~HS frame has {len(values)} fields, expected 12, 11 or 2: {text!r}"
            )
        if number == 1:
            self._frames = [values]
        elif len(self._frames) == number - 1:
            self._frames.append(values)
        else:
            # Frame 2 or 3 without its predecessors: the tail of an older reply.
            self._frames = []
            return None
        if len(self._frames) < 3:
            return None
        frames, self._frames = self._frames, []
        return _build(frames)


def parse_host_status(data: bytes) -> HostStatus:
    """Parse one complete ~HS reply (three <STX>…<ETX> frames)."""
    assembler = HostStatusAssembler()
    status = assembler.feed(data)
    if status is None:
        raise StatusParseError(f"incomplete ~HS reply: expected three <STX>…<ETX> frames, got {data!r}")
    return status


@dataclass(frozen=True)
class ErrorStatus:
    """A ~HQES reply: the error and warning flags with their 64-bit masks (group 2 then group 1)."""

    has_errors: bool
    error_bits: int
    has_warnings: bool
    warning_bits: int

    @property
    def media_out(self) -> bool:
        return bool(self.error_bits & MEDIA_OUT)

    @property
    def ribbon_out(self) -> bool:
        return bool(self.error_bits & RIBBON_OUT)

    @property
    def head_open(self) -> bool:
        return bool(self.error_bits & HEAD_OPEN)

    @property
    def cutter_fault(self) -> bool:
        return bool(self.error_bits & CUTTER_FAULT)

    @property
    def over_temperature(self) -> bool:
        return bool(self.error_bits & (PRINTHEAD_OVER_TEMPERATURE | MOTOR_OVER_TEMPERATURE))

    @property
    def error_names(self) -> tuple[str, ...]:
        """Plain-English names of the known error bits that are set."""
        return tuple(name for bit, name in _ERROR_NAMES if self.error_bits & bit)

    @property
    def unknown_error_bits(self) -> int:
        """Error bits this driver has no name for (still errors: the printer will not print)."""
        known = 0
        for bit, _ in _ERROR_NAMES:
            known |= bit
        return self.error_bits & ~known


_HQES_LINE = r"{label}:\s*([01])\s+([0-9A-Fa-f]{{8}})\s+([0-9A-Fa-f]{{8}})\b"
_ERRORS = re.compile(_HQES_LINE.format(label="ERRORS"))
_WARNINGS = re.compile(_HQES_LINE.format(label="WARNINGS"))


def parse_hqes(text: str) -> ErrorStatus:
    """Parse a ~HQES reply (`PRINTER STATUS` / `ERRORS: f gggggggg hhhhhhhh` / `WARNINGS: …`)."""
    errors = _ERRORS.search(text)
    if errors is None:
        raise StatusParseError(f"~HQES reply has no 'ERRORS: f gggggggg hhhhhhhh' line: {text!r}")
    warnings = _WARNINGS.search(text)
    if warnings is None:
        raise StatusParseError(f"~HQES reply has no 'WARNINGS: f gggggggg hhhhhhhh' line: {text!r}")
    return ErrorStatus(
        has_errors=errors.group(1) == "1",
        error_bits=int(errors.group(2) + errors.group(3), 16),
        has_warnings=warnings.group(1) == "1",
        warning_bits=int(warnings.group(2) + warnings.group(3), 16),
    )


class HqesAssembler:
    """Collects a ~HQES reply from chunks; complete at <ETX>, or at the end of the WARNINGS line."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def reset(self) -> None:
        """Forget any partial reply."""
        self._buffer.clear()

    def feed(self, data: bytes) -> ErrorStatus | None:
        """Take the next chunk; return the status once the reply is complete, None before."""
        self._buffer += data
        if len(self._buffer) > _MAX_HQES:
            text = bytes(self._buffer[:80])
            self._buffer.clear()
            raise StatusParseError(f"~HQES reply longer than {_MAX_HQES} bytes: {text!r}…")
        text = self._buffer.decode("latin-1")
        warnings = text.find("WARNINGS:")
        done = (STX in self._buffer and ETX in self._buffer[self._buffer.index(STX):]) or (
            warnings >= 0 and "\n" in text[warnings:]
        )
        if not done:
            return None
        self._buffer.clear()
        return parse_hqes(text)


# --- ^HW: the directory listing -------------------------------------------------------------------------------

_MAX_LISTING = 64 * 1024
# One object line: "* NAME    .EXT  000123  …" as the ZPL guide lays it out, or with its drive, "* E:NAME.EXT  123".
_LISTING_LINE = re.compile(r"^\*\s*(?:([A-Z]):)?\s*([A-Z0-9_$\-]+)\s*\.\s*([A-Z0-9]{1,3})\s+(\d+)", re.IGNORECASE)
_LISTING_DRIVE = re.compile(r"DIR\s+([A-Z]):", re.IGNORECASE)


def parse_directory(text: str) -> dict[str, int]:
    """The files a ^HW reply lists, as {"E:NAME.EXT": bytes} (names upper case, with their drive)."""
    drive_match = _LISTING_DRIVE.search(text)
    default_drive = drive_match.group(1).upper() if drive_match else "R"
    files: dict[str, int] = {}
    for line in text.replace("\r", "\n").split("\n"):
        match = _LISTING_LINE.match(line.strip())
        if match:
            drive = (match.group(1) or default_drive).upper()
            files[f"{drive}:{match.group(2).upper()}.{match.group(3).upper()}"] = int(match.group(4))
    return files


class DirectoryAssembler:
    """Collects a ^HW reply (<STX> … <ETX>) from chunks."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> dict[str, int] | None:
        """Take the next chunk; return the listing once <ETX> has come, None before."""
        self._buffer += data
        start = self._buffer.find(bytes([STX]))
        if start < 0:
            self._buffer.clear()   # bytes before the listing (a late status reply) are not part of it
            return None
        end = self._buffer.find(bytes([ETX]), start)
        if end < 0:
            if len(self._buffer) > _MAX_LISTING:
                self._buffer.clear()
                raise StatusParseError(f"^HW reply longer than {_MAX_LISTING} bytes")
            return None
        text = self._buffer[start + 1:end].decode("latin-1")
        if "DIR" not in text.upper():
            del self._buffer[:end + 1]   # some other framed reply: wait for the listing
            return None
        self._buffer.clear()
        return parse_directory(text)
