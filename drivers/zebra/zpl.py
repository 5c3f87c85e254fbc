"""Pure ZPL builder: escapes field data and fills `${name}` placeholders of a label template.

One module of about 620 lines: the escaping rules, the template placeholders and the checks of what a label may
hold are one builder, tested byte for byte (tests/unit/test_zpl.py).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import DeviceError

# Control commands (tilde commands run at once, even between labels).
CANCEL_ALL = b"~JA"
HOST_STATUS = b"~HS"
HQES = b"~HQES"

#: Zebra's limit for the data of one ^FD field, in bytes as sent.
MAX_FIELD_DATA = 3072

_FONT_FILE = re.compile(r"([REBA]):([A-Z0-9_]{1,8})\.TTF")
# ^A@o,h,w,d:o.x and ^CWa,d:o.x: the fonts a template names by file.
_TEMPLATE_FONT = re.compile(r"\^(?:A@[^,^~]*,[^,^~]*,[^,^~]*,|CW[^,^~]*,)\s*([^,^~\s]+)", re.IGNORECASE)


def check_font_name(name: str) -> str:
    """`E:VNSANS.TTF` as the printer files a downloaded TrueType font (drive R:, E:, B: or A:, 1 to 8 letters or
    digits, .TTF); returns it upper case, raises TemplateError naming the rule."""
    upper = name.strip().upper()
    if not _FONT_FILE.fullmatch(upper):
        raise TemplateError(f"font name {name!r}: expected d:NAME.TTF with d one of R E B A and NAME 1 to 8 "
                            "letters, digits or _ (e.g. E:VNSANS.TTF)")
    return upper


def download_font(name: str, data: bytes) -> bytes:
    """``~DY`` storing a TrueType font as `name` (``E:VNSANS.TTF``): binary data, its byte count in the header.

    Nothing is answered; ask ``directory(name)`` to see that it arrived. E: is flash and keeps the font through a
    power cycle, R: is RAM and does not.
    """
    drive, _, file_name = check_font_name(name).partition(":")
    if not data:
        raise TemplateError(f"font {name}: no data to download")
    return f"~DY{drive}:{file_name.removesuffix('.TTF')},B,T,{len(data)},0,".encode("ascii") + data


def directory_query(pattern: str) -> bytes:
    """A format that asks the printer for its directory listing (``^HW``); it prints nothing."""
    if any(c in pattern for c in "^~,") or not pattern.strip():
        raise TemplateError(f"not a file pattern: {pattern!r}")
    return f"^XA^HW{pattern.strip()}^XZ".encode("ascii")

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Anything that looks like the start of a placeholder, to catch `${lot` or `${lot number}`.
_PLACEHOLDER_START = re.compile(r"\$\{")
_DEFAULT_INDICATOR = "_"


class TemplateError(DeviceError):
    """A label template is malformed, or the fields given to it do not fit it."""


#: GS1 General Specifications: a QR code carrying a Digital Link needs modules of at least 0.396 mm, and a quiet
#: zone of 4 modules on every side, free of any other print.
GS1_MIN_MODULE_MM = 0.396
QUIET_ZONE_MODULES = 4
_QR_DEFAULT_MAGNIFICATION = {6: 1, 8: 2, 12: 3, 24: 6}   # ^BQ's default by dots per mm
# ^FX QR area x,y,width,height: where the template gives the QR room, quiet zone included.
_QR_AREA = re.compile(r"^\^FX\s+QR area\s+(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class QrFit:
    """Whether one QR content fits a template's QR area at its magnification."""

    length: int                 # bytes of the content
    version: int | None         # the QR version it needs (None: more than a QR holds)
    max_version: int            # the largest version the area holds with its quiet zone
    max_length: int             # the most bytes that largest version holds at the field's error correction

    @property
    def fits(self) -> bool:
        return self.version is not None and self.version <= self.max_version


@dataclass(frozen=True)
class QrField:
    """The template's QR field: where it stands, its magnification (dots a module) and error correction, and the
    area declared for it with a ``^FX QR area x,y,width,height`` line (None when the template declares none)."""

    x: int
    y: int
    magnification: int
    error: str
    area: tuple[int, int, int, int] | None
    line: int

    def module_mm(self, dpmm: int) -> float:
        return self.magnification / dpmm

    def readable(self, dpmm: int) -> bool:
        """Modules at least the 0.396 mm GS1 asks of a QR code with a Digital Link."""
        return self.module_mm(dpmm) >= GS1_MIN_MODULE_MM - 1e-9

    @property
    def max_modules(self) -> int:
        """The widest symbol (in modules) that stands inside the area with 4 quiet modules on each side."""
        if self.area is None:
            return 0
        ax, ay, aw, ah = self.area
        quiet = QUIET_ZONE_MODULES * self.magnification
        if self.x - ax < quiet or self.y - ay < quiet:
            return 0                       # no quiet zone left of or above the symbol
        room = min(ax + aw - quiet - self.x, ay + ah - quiet - self.y)
        return max(0, room // self.magnification)

    @property
    def max_version(self) -> int:
        return max(0, min(40, (self.max_modules - 17) // 4)) if self.max_modules >= 21 else 0

    def fit(self, data: str) -> QrFit:
        """The QR version `data` needs (byte mode for a URL, as the printer's automatic mode picks), against the
        largest the area holds."""
        import segno
        from segno import consts

        version: int | None
        try:
            version = segno.make_qr(data, error=self.error.lower(), boost_error=False, mask=0).version
        except segno.DataOverflowError:
            version = None
        most = self.max_version
        max_length = 0
        if most:
            bits = consts.SYMBOL_CAPACITY[most][consts.ERROR_MAPPING[self.error]]
            max_length = (bits - 4 - (8 if most < 10 else 16)) // 8
        return QrFit(len(data.encode("utf-8")), version if isinstance(version, int) else None, most, max_length)


@functools.lru_cache(maxsize=4096)  # product, producer, lot and dates repeat on every label of a batch
def escape_field(value: str, indicator: str = _DEFAULT_INDICATOR, block: bool = False) -> str:
    """Return `value` as ^FH field data: ASCII only, with every byte that could be a command escaped as _XX.

    `^` and `~` would start a command inside the printer, the indicator itself would start an escape,
    control characters are not printable, and non-ASCII text is sent byte by byte of its UTF-8 encoding
    (the label's ^CI28 turns the bytes back into characters).

    `block` is for the data of a ^FB field, which reads its own escapes after the ^FH ones: ``\\&`` is a line
    break, ``\\(*)`` a soft hyphen and ``\\\\`` one backslash. Every backslash is doubled, so a ``\\&`` in a
    product name prints as written. Hex-escaping it (``_5C``) would not help: ^FH decodes first, then ^FB reads.
    """
    _check_indicator(indicator)
    special = {"^", "~", indicator}
    out: list[str] = []
    for char in value:
        if char == "\\" and block and indicator != "\\":
            out.append("\\\\")
        elif " " <= char <= "~" and char not in special:
            out.append(char)
        else:
            encoded = [f"{indicator}{byte:02X}" for byte in char.encode("utf-8")]
            out.extend(encoded * 2 if char == "\\" and block else encoded)
    return "".join(out)


def _check_indicator(indicator: str) -> None:
    if len(indicator) != 1 or not (" " < indicator <= "~") or indicator in "^~":
        raise TemplateError(
            f"^FH indicator must be one printable ASCII character other than ^ and ~, got {indicator!r}"
        )


@dataclass(frozen=True)
class TextField:
    """A text field of the template holding placeholders: where it starts, the font it prints with and the room
    it has. ``parts`` is its data with the literal text decoded and each placeholder as ``("name",)``."""

    line: int
    x: int
    y: int
    height: int
    width: int
    font: str | None                          # E:VNSANS.TTF for ^A@…; None for a resident font (^A0 …)
    block: tuple[int, int] | None             # ^FB width (0: to the label's edge) and its most lines
    parts: tuple[str | tuple[str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.parts if isinstance(p, tuple))

    def text(self, fields: Mapping[str, str | None]) -> str | None:
        """The text the field prints for these values (None: its line is left out)."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, tuple):
                value = fields.get(part[0])
                if value is None:
                    return None
                out.append(value)
            else:
                out.append(part)
        return "".join(out)


@dataclass(frozen=True)
class TextOverflow:
    """A text field whose text does not fit its room: a line wider than the label (or its ^FB block), or a block
    needing more lines than it has (a Zebra prints the rest on top of its last line)."""

    field: TextField
    text: str
    needs: float          # dots wide for a line; lines for a block
    room: float           # dots to the label's edge or the block's width; the block's lines
    unit: str             # "dots" or "lines"

    @property
    def names(self) -> str:
        return ", ".join(self.field.names)

    def __str__(self) -> str:
        what = f"line {self.field.line} ({self.names})"
        if self.unit == "lines":
            return (f"{what}: {self.text!r} wraps to {self.needs:.0f} lines in its {self.field.block[0] if self.field.block else 0}"
                    f"-dot block, which has {self.room:.0f}")
        return f"{what}: {self.text!r} is {self.needs:.0f} dots wide, {self.room:.0f} dots are left to the edge"


#: Measures one line of text: (text, font file name or None, height, width) → dots; None when it cannot.
Measure = Callable[[str, "str | None", int, int], "float | None"]


def wrap_block(text: str, block_width: int, measure: Callable[[str], float]) -> list[str]:
    """Greedy wrap at spaces, as ^FB does; a word wider than the block is broken where it overflows."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = word if not current else current + " " + word
        if measure(candidate) <= block_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while current and measure(current) > block_width:
            cut = len(current)
            while cut > 1 and measure(current[:cut]) > block_width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    lines.append(current)
    return lines


@dataclass(frozen=True)
class _Slot:
    """One placeholder occurrence in a line, with the ^FH indicator of its field."""

    start: int
    end: int
    name: str
    indicator: str
    field_start: int      # where the field's ^FH begins
    data_start: int       # just after its ^FD
    data_end: int         # where its closing ^FS begins
    block: bool = False   # the field is a ^FB block, which reads backslash escapes in its data


@dataclass(frozen=True)
class _Line:
    text: str
    slots: tuple[_Slot, ...]


class LabelTemplate:
    """A ZPL label with `${name}` placeholders, each inside a `^FH…^FD…^FS` field on a single line.

    Lines are the unit of omission: a line holding a placeholder whose value is None is left out of the
    label. Comment lines (`^FX`) are dropped from the output: a comment only ends at the next `^` or `~`,
    so a comment that mentions commands would run them on the printer.
    """

    def __init__(self, name: str, lines: tuple[_Line, ...], qr_area: tuple[int, int, int, int] | None = None,
                 qr_field: QrField | None = None, text_fields: tuple[TextField, ...] = (),
                 label_width: int | None = None) -> None:
        self.name = name
        self._lines = lines
        self.qr_area = qr_area
        self.qr_field = qr_field
        self.text_fields = text_fields      # every text field holding a placeholder, in template order
        self.label_width = label_width      # ^PW, in dots (None: the template does not say)

    @classmethod
    def load(cls, path: str | Path) -> LabelTemplate:
        """Read and check a template file (UTF-8)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"{path}: cannot read label template: {exc}") from exc
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, name: str = "<template>") -> LabelTemplate:
        """Check template text; `name` is used in error messages (usually the file path)."""
        lines: list[_Line] = []
        open_field = ""   # commands of a field begun on an earlier line (its ^FO, ^A, ^FB), up to this line
        qr_area: tuple[int, int, int, int] | None = None
        qr_field: QrField | None = None
        text_fields: list[TextField] = []
        label_width: int | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.rstrip()
            area = _QR_AREA.match(line.lstrip())
            if area:
                qr_area = (int(area[1]), int(area[2]), int(area[3]), int(area[4]))
            if not line or line.lstrip().startswith("^FX"):
                continue
            if qr_field is None and "${qr}" in line:
                qr_field = _qr_field(open_field + line, number)
            if "^FX" in line:
                raise TemplateError(f"{name}:{number}: ^FX comments must stand on a line of their own")
            slots = _parse_slots(line, name, number, open_field)
            lines.append(_Line(line, slots))
            text_fields += _text_fields(line, slots, open_field, number)
            width = _PRINT_WIDTH.search(line)
            if width:
                label_width = int(width[1])
            closed = line.upper().rfind("^FS")
            open_field = line[closed + 3:] if closed >= 0 else open_field + line
        if not lines or not lines[0].text.lstrip().startswith("^XA"):
            raise TemplateError(f"{name}: a label template must start with ^XA")
        if not lines[-1].text.endswith("^XZ"):
            raise TemplateError(f"{name}: a label template must end with ^XZ")
        if not any("^CI28" in line.text for line in lines):
            raise TemplateError(f"{name}: a label template must select UTF-8 with ^CI28")
        if qr_field is not None:
            qr_field = QrField(qr_field.x, qr_field.y, qr_field.magnification, qr_field.error, qr_area,
                               qr_field.line)
        return cls(name, tuple(lines), qr_area, qr_field, tuple(text_fields), label_width)

    def text_overflows(self, fields: Mapping[str, str | None], measure: Measure) -> list[TextOverflow]:
        """The text fields that would not print whole with these values: a line running past the label's edge
        (``^PW``), or a ``^FB`` block needing more lines than it has. Fields the measure cannot size (a font it
        does not have) are not judged."""
        found: list[TextOverflow] = []
        for field in self.text_fields:
            text = field.text(fields)
            if not text:
                continue

            def width(line: str, field: TextField = field) -> float:
                dots = measure(line, field.font, field.height, field.width)
                return -1.0 if dots is None else dots

            if width(text) < 0:
                continue
            if field.block is not None:
                block_width = field.block[0] or (self.label_width or 0) - field.x
                if block_width > 0 and self.label_width is not None:
                    block_width = min(block_width, self.label_width - field.x)
                if block_width <= 0:
                    continue
                wrapped = wrap_block(text, block_width, width)
                if len(wrapped) > field.block[1]:
                    found.append(TextOverflow(field, text, len(wrapped), field.block[1], "lines"))
                continue
            if self.label_width is not None and width(text) > self.label_width - field.x:
                found.append(TextOverflow(field, text, width(text), self.label_width - field.x, "dots"))
        return found

    @property
    def fonts(self) -> frozenset[str]:
        """The downloaded fonts the template prints with (``^A@…,E:VNSANS.TTF``, ``^CWa,E:VNSANS.TTF``)."""
        return frozenset(font_name(m.group(1)) for line in self._lines for m in _TEMPLATE_FONT.finditer(line.text))

    @property
    def placeholders(self) -> frozenset[str]:
        """Names of every placeholder in the template."""
        return frozenset(slot.name for line in self._lines for slot in line.slots)

    def render(self, fields: Mapping[str, str | None]) -> bytes:
        """Return the label as UTF-8 bytes; values are escaped, lines with a None value are left out.

        Keys that the template does not use are ignored, so one set of fields can feed several templates.
        """
        missing = sorted(self.placeholders - fields.keys())
        if missing:
            raise TemplateError(f"{self.name}: no value for {', '.join(missing)}")
        out: list[str] = []
        for line in self._lines:
            if any(fields[slot.name] is None for slot in line.slots):
                continue
            out.append(self._fill(line, fields))
        return ("\n".join(out) + "\n").encode("utf-8")

    @property
    def format_name(self) -> str:
        """Where the stored format lives on the printer: named after the template's content, so an edited
        template is stored afresh instead of recalling a stale one (R: is the printer's RAM)."""
        digest = hashlib.sha1("\n".join(line.text for line in self._lines).encode()).hexdigest()[:6].upper()
        return f"R:ST{digest}.ZPL"

    def stored_format(self) -> bytes:
        """The template as a stored format (``^DF``): every field with placeholders becomes ``^FNn``.

        Sent once; each label then needs only ``recall(fields)``, the variable data, as Zebra advises for
        throughput.
        """
        out: list[str] = []
        number = 0
        for index, line in enumerate(self._lines):
            text = line.text
            fields = self._fields(line)
            if fields:
                parts: list[str] = []
                position = 0
                for field_start, data_end in fields:
                    number += 1
                    parts += [text[position:field_start], f"^FN{number}"]
                    position = data_end
                parts.append(text[position:])
                text = "".join(parts)
            if index == 0:
                text = text.replace("^XA", f"^XA^DF{self.format_name}^FS", 1)
            out.append(text)
        return ("\n".join(out) + "\n").encode("utf-8")

    def recall(self, fields: Mapping[str, str | None]) -> bytes:
        """One label as a recall of the stored format: ``^XF`` and the filled ``^FNn`` fields only.

        A field on a line that render() would leave out is not sent, so the stored field prints nothing.
        """
        missing = sorted(self.placeholders - fields.keys())
        if missing:
            raise TemplateError(f"{self.name}: no value for {', '.join(missing)}")
        out = [f"^XA^CI28^XF{self.format_name}^FS"]
        number = 0
        for line in self._lines:
            skip = any(fields[slot.name] is None for slot in line.slots)
            for field_start, _ in self._fields(line):
                number += 1
                if skip:
                    continue
                first = next(slot for slot in line.slots if slot.field_start == field_start)
                fh = line.text[field_start:first.data_start - 3]  # ^FH and its indicator, as the template says
                out.append(f"^FN{number}{fh}^FD{self._field_data(line, field_start, fields)}^FS")
        out.append("^XZ")
        return ("\n".join(out) + "\n").encode("utf-8")

    @staticmethod
    def _fields(line: _Line) -> list[tuple[int, int]]:
        """(start of ^FH, start of the closing ^FS) of each field on the line that holds placeholders."""
        seen: dict[int, int] = {}
        for slot in line.slots:
            seen.setdefault(slot.field_start, slot.data_end)
        return sorted(seen.items())

    def _field_data(self, line: _Line, field_start: int, fields: Mapping[str, str | None]) -> str:
        """The escaped data of one field of a line (for lines holding more than one variable field)."""
        slots = [s for s in line.slots if s.field_start == field_start]
        parts: list[str] = []
        position = slots[0].data_start
        for slot in slots:
            value = fields[slot.name]
            if not isinstance(value, str):
                raise TemplateError(f"{self.name}: field {slot.name} must be text, got {type(value).__name__}")
            parts.append(line.text[position:slot.start])
            parts.append(escape_field(value, slot.indicator, slot.block))
            position = slot.end
        parts.append(line.text[position:slots[-1].data_end])
        data = "".join(parts)
        if len(data) > MAX_FIELD_DATA:
            raise TemplateError(f"{self.name}: field data is {len(data)} bytes escaped, more than the "
                                f"{MAX_FIELD_DATA} a ZPL field holds")
        return data

    def _fill(self, line: _Line, fields: Mapping[str, str | None]) -> str:
        parts: list[str] = []
        position = 0
        for slot in line.slots:
            value = fields[slot.name]
            if not isinstance(value, str):
                raise TemplateError(f"{self.name}: field {slot.name} must be text, got {type(value).__name__}")
            escaped = escape_field(value, slot.indicator, slot.block)
            if len(escaped) > MAX_FIELD_DATA:
                raise TemplateError(
                    f"{self.name}: field {slot.name} is {len(escaped)} bytes escaped, "
                    f"more than the {MAX_FIELD_DATA} a ZPL field holds"
                )
            parts.append(line.text[position:slot.start])
            parts.append(escaped)
            position = slot.end
        parts.append(line.text[position:])
        return "".join(parts)


_ORIGIN = re.compile(r"\^F[OT](\d+)\s*,\s*(\d+)", re.IGNORECASE)
_BQ = re.compile(r"\^BQ([^,^~]*)(?:,([^,^~]*))?(?:,([^,^~]*))?", re.IGNORECASE)


def _qr_field(text: str, number: int) -> QrField | None:
    """The ^BQ field holding ${qr} on this line: its origin, magnification and the error correction its data
    switches name (``^FDMA,`` is M)."""
    at = text.find("${qr}")
    bq = None
    for bq in _BQ.finditer(text, 0, at):
        pass
    if bq is None:
        return None
    origins = [m for m in _ORIGIN.finditer(text, 0, bq.start())]
    x, y = (int(origins[-1][1]), int(origins[-1][2])) if origins else (0, 0)
    magnification = int(bq[3]) if bq[3] and bq[3].strip().isdigit() else _QR_DEFAULT_MAGNIFICATION[8]
    data = text.rfind("^FD", 0, at)
    switch = text[data + 3:data + 4].upper() if data >= 0 else ""
    return QrField(x, y, magnification, switch if switch in ("L", "M", "Q", "H") else "Q", None, number)


_PRINT_WIDTH = re.compile(r"\^PW(\d+)", re.IGNORECASE)
_FONT_COMMAND = re.compile(r"\^A([0-9A-Z@])([NRIB])?(?:,(\d*))?(?:,(\d*))?(?:,([^,^~]+))?", re.IGNORECASE)
_BLOCK = re.compile(r"\^FB(\d*)(?:,(\d*))?", re.IGNORECASE)
_BARCODE = re.compile(r"\^B[0-9A-Z]", re.IGNORECASE)


def _decode_literal(text: str, indicator: str) -> str:
    """Template text between placeholders as the printer reads it: ``^FH`` escapes (``_C3_B4``) decoded."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == indicator and i + 2 < len(text) and all(c in "0123456789abcdefABCDEF" for c in text[i + 1:i + 3]):
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            out += text[i].encode("utf-8")
            i += 1
    return out.decode("utf-8", "replace")


def _text_fields(line: str, slots: tuple[_Slot, ...], open_field: str, number: int) -> list[TextField]:
    """The text fields (a font, no barcode) among the fields of one line that hold placeholders."""
    fields: list[TextField] = []
    for field_start in dict.fromkeys(slot.field_start for slot in slots):
        own = [slot for slot in slots if slot.field_start == field_start]
        data_start, data_end = own[0].data_start, own[0].data_end
        previous = line.upper().rfind("^FS", 0, field_start)
        begin = 0 if previous < 0 else previous + 3
        head = (open_field if begin == 0 else "") + line[begin:data_start - 3]
        if _BARCODE.search(head.replace("^BY", "")):
            continue
        fonts = list(_FONT_COMMAND.finditer(head))
        origins = list(_ORIGIN.finditer(head))
        if not fonts or not origins:
            continue
        font = fonts[-1]
        height = int(font[3]) if font[3] else 0
        width = int(font[4]) if font[4] else height
        if not height:
            continue
        file_name = font_name(font[5]) if font[1] == "@" and font[5] else None
        block_match = list(_BLOCK.finditer(head))
        block = None
        if block_match:
            b = block_match[-1]
            block = (int(b[1]) if b[1] else 0, int(b[2]) if b[2] else 1)
        parts: list[str | tuple[str]] = []
        position = data_start
        for slot in own:
            if slot.start > position:
                parts.append(_decode_literal(line[position:slot.start], slot.indicator))
            parts.append((slot.name,))
            position = slot.end
        if data_end > position:
            parts.append(_decode_literal(line[position:data_end], own[-1].indicator))
        fields.append(TextField(number, int(origins[-1][1]), int(origins[-1][2]), height, width, file_name, block,
                                tuple(parts)))
    return fields


def font_name(text: str) -> str:
    """A font file name as the printer reads it from ^A@ or ^CW: drive R: when left out, upper case."""
    name = text.strip().upper()
    return name if ":" in name else f"R:{name}"


def _parse_slots(line: str, name: str, number: int, open_field: str = "") -> tuple[_Slot, ...]:
    """Find the placeholders of one line and check each sits in the data of a ^FH field. `open_field` is the
    start of a field that began on an earlier line (for its ^FB)."""
    where = f"{name}:{number}"
    found = list(_PLACEHOLDER.finditer(line))
    if len(_PLACEHOLDER_START.findall(line)) != len(found):
        raise TemplateError(f"{where}: malformed placeholder (expected ${{name}} with letters, digits, _)")
    slots: list[_Slot] = []
    for match in found:
        placeholder = match.group(0)
        data_start = line.rfind("^FD", 0, match.start())
        # A caret or tilde between ^FD and the placeholder means the placeholder is not field data.
        if data_start < 0 or any(c in line[data_start + 3:match.start()] for c in "^~"):
            raise TemplateError(f"{where}: placeholder {placeholder} is not inside ^FD…^FS")
        next_command = line.find("^", match.end())
        if next_command < 0 or not line.startswith("^FS", next_command) or "~" in line[match.end():next_command]:
            raise TemplateError(f"{where}: the field holding {placeholder} must end with ^FS on the same line")
        field_start = line.rfind("^FS", 0, data_start)
        field_start = 0 if field_start < 0 else field_start + 3
        fh = line.rfind("^FH", field_start, data_start)
        if fh < 0:
            raise TemplateError(
                f"{where}: placeholder {placeholder} is in a field without ^FH, so its value could not be escaped"
            )
        indicator = line[fh + 3] if line[fh + 3] != "^" else _DEFAULT_INDICATOR
        try:
            _check_indicator(indicator)
        except TemplateError as exc:
            raise TemplateError(f"{where}: {exc}") from None
        # ^FB anywhere in the field (from the end of the previous field to ^FD) makes its data a text block.
        head = (open_field if field_start == 0 else "") + line[field_start:data_start]
        block = "^FB" in head.upper()
        slots.append(_Slot(match.start(), match.end(), match.group(1), indicator, fh, data_start + 3,
                           next_command, block))
    return tuple(slots)
