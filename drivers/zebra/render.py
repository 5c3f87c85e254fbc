"""Render the ZPL subset our label templates use into 1-bit images, as a Zebra printer would print them.

The printer simulator prints with it and the technician's preview shows the label with it. About 900 lines in one
module: the tokenizer, the stored formats (^DF/^XF), the field state each command changes (origin, font, ^FH, ^FB)
and the drawing of text, boxes and barcodes follow the ZPL manual command by command, sharing that state.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "RESIDENT_CHARS",
    "Face",
    "downloaded_face",
    "font_file_name",
    "RenderedField",
    "RenderedLabel",
    "ZplCommand",
    "ean13_check_digit",
    "expand_format",
    "render_label",
    "render_labels",
    "split_formats",
    "tokenize",
]

log = logging.getLogger(__name__)

FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT_MONO_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")

#: The characters a Zebra's resident fonts print (^A0 CG Triumvirate and the bitmap fonts): printable ASCII and
#: Latin-1. Anything else, most Vietnamese letters among them (ă đ ơ ư and U+1EA0–U+1EF9: ạ ả ấ … ỹ), comes out
#: of the printer as a box; the renderer draws the resident fonts with DejaVu's shapes but only these characters,
#: and draws the same box for the rest. A downloaded TrueType font prints what its own character map holds.
RESIDENT_CHARS = frozenset(map(chr, range(0x20, 0x7F))) | frozenset(map(chr, range(0xA0, 0x100)))

_PREFIXES = b"^~"
_PREFIX_RE = re.compile(rb"[\^~]")
_STORED_RE = re.compile(rb"\^(DF|XF)", re.IGNORECASE)
_QR_EC = "HQML"
# ^PR letters, from the ZPL II guide: A=2, B=3, C=4, D=6, E=8 inches per second.
_SPEED_LETTERS = {"A": 2.0, "B": 3.0, "C": 4.0, "D": 6.0, "E": 8.0}
# Default ^BQ magnification by resolution (1 on 150 dpi, 2 on 200 dpi, 3 on 300 dpi, 6 on 600 dpi).
_QR_DEFAULT_MAG = {6: 1, 8: 2, 12: 3, 24: 6}
_FAST_QR_MASK = 3

# EAN-13 encodings: L (odd) and G (even) for the left half, R for the right half; the first digit picks the
# L/G parity pattern of the left six.
_EAN_L = ("0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111", "0001011")
_EAN_G = tuple("".join("1" if b == "0" else "0" for b in code)[::-1] for code in _EAN_L)
_EAN_R = tuple("".join("1" if b == "0" else "0" for b in code) for code in _EAN_L)
_EAN_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")


@dataclass(frozen=True, slots=True)
class ZplCommand:
    """One command as it stood in the stream: `^FO` + `186,14`. `name` is upper case; `^A0N,26,26` is `A`."""

    prefix: str
    name: str
    params: bytes
    start: int
    end: int

    @property
    def text(self) -> str:
        """The command as written, for reports (`^XY1,2`)."""
        return f"{self.prefix}{self.name}{self.params.decode('utf-8', 'replace')}"


@dataclass(frozen=True, slots=True)
class RenderedField:
    """One field the renderer drew. `kind` is text, qr, ean13 or box; `data` is what was encoded or written."""

    kind: str
    x: int
    y: int
    width: int
    height: int
    data: str
    detail: str = ""
    font: str = ""       # text: the font that printed it ("0", "A", "E:VNSANS.TTF")
    missing: str = ""    # text: the characters that font has no glyph for, printed as boxes


@dataclass(slots=True)
class RenderedLabel:
    """One `^XA…^XZ` format as printed: the image plus what the renderer understood and what it did not."""

    zpl: bytes
    image: Image.Image
    dpmm: int
    fields: list[RenderedField] = field(default_factory=list)
    unknown_commands: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    speed_ips: float | None = None
    quantity: int = 1
    encoding: str = "cp1252"

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @property
    def length_inches(self) -> float:
        """Label length, which sets how long it takes to print at a given speed."""
        return self.image.height / self.dpmm / 25.4

    @property
    def texts(self) -> list[str]:
        return [f.data for f in self.fields if f.kind == "text"]

    @property
    def qr_data(self) -> list[str]:
        return [f.data for f in self.fields if f.kind == "qr"]

    @property
    def missing_glyphs(self) -> list[tuple[str, str, str]]:
        """(text, font, characters printed as boxes) of every text field that printed a box."""
        return [(f.data, f.font, f.missing) for f in self.fields if f.kind == "text" and f.missing]

    @property
    def ean13(self) -> list[str]:
        return [f.data for f in self.fields if f.kind == "ean13"]

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG", optimize=False)
        return out.getvalue()


# ---------------------------------------------------------------------------------------------------- parsing


def tokenize(zpl: bytes) -> list[ZplCommand]:
    """Split a ZPL byte stream into commands. Bytes outside any command (line breaks between commands) are
    dropped; a command's parameters run up to the next `^` or `~`, as on the printer."""
    commands: list[ZplCommand] = []
    n = len(zpl)
    first = _PREFIX_RE.search(zpl)
    i = first.start() if first else n
    while i < n:
        prefix = chr(zpl[i])
        name_bytes = zpl[i + 1 : i + 3]
        if len(name_bytes) < 2 or any(b in _PREFIXES for b in name_bytes):
            # A lone prefix (e.g. `^` followed by `~`): nothing to run, move on to the next prefix.
            name = name_bytes[:1].decode("latin-1") if name_bytes[:1] and name_bytes[0] not in _PREFIXES else ""
            start_params = i + 1 + len(name)
        else:
            name = name_bytes.decode("latin-1").upper()
            start_params = i + 3
            # ^A takes its font name as the next character (^A0, ^AD); ^A@ is its own command.
            if prefix == "^" and name[0] == "A" and name != "A@":
                name = "A"
                start_params = i + 2
        nxt = _PREFIX_RE.search(zpl, start_params)
        k = nxt.start() if nxt else n
        commands.append(ZplCommand(prefix, name, zpl[start_params:k], i, k))
        i = k
    return commands


def split_formats(zpl: bytes) -> list[bytes]:
    """The `^XA…^XZ` formats in a stream, each with its `^XA` and `^XZ`; anything outside them is ignored."""
    formats: list[bytes] = []
    start: int | None = None
    for cmd in tokenize(zpl):
        if cmd.prefix != "^":
            continue
        if cmd.name == "XA":
            start = cmd.start
        elif cmd.name == "XZ" and start is not None:
            formats.append(zpl[start : cmd.start + 3])
            start = None
    return formats


def _clean(params: bytes) -> str:
    # The printer ignores CR and LF inside the command stream.
    return params.replace(b"\r", b"").replace(b"\n", b"").decode("latin-1").strip()


def _args(params: bytes) -> list[str]:
    return [a.strip() for a in _clean(params).split(",")]


def _int(args: list[str], index: int, default: int) -> int:
    try:
        return int(float(args[index]))
    except (IndexError, ValueError):
        return default


def _format_name(params: bytes) -> str:
    """`R:STAMP.ZPL` the way the printer files it: drive R: and extension .ZPL when left out."""
    name = _clean(params).upper()
    if ":" not in name:
        name = "R:" + name
    if "." not in name.split(":", 1)[1]:
        name += ".ZPL"
    return name


def expand_format(zpl: bytes, formats: MutableMapping[str, bytes]) -> tuple[bytes | None, list[str]]:
    """Apply stored formats to one `^XA…^XZ` format.

    A format with `^DFR:NAME.ZPL^FS` is stored in `formats` (its body, up to `^XZ`) and prints nothing: returns
    (None, []). A format with `^XFR:NAME.ZPL` is merged with the stored body: every `^FNn` field there takes the
    field data sent with `^FNn` in the recall. Any other format is returned unchanged. The list holds warnings.
    """
    if not _STORED_RE.search(zpl):
        return zpl, []
    commands = tokenize(zpl)
    df = next((c for c in commands if c.prefix == "^" and c.name == "DF"), None)
    if df is not None:
        # The body starts after the ^FS that closes the ^DF command and ends before ^XZ.
        after = [c for c in commands if c.start > df.start]
        body_start = df.end
        if after and after[0].name == "FS":
            body_start = after[0].end
        xz = next((c for c in reversed(commands) if c.name == "XZ"), None)
        formats[_format_name(df.params)] = zpl[body_start : xz.start if xz else len(zpl)]
        return None, []
    xf = next((c for c in commands if c.prefix == "^" and c.name == "XF"), None)
    if xf is None:
        return zpl, []
    name = _format_name(xf.params)
    stored = formats.get(name)
    warnings: list[str] = []
    if stored is None:
        warnings.append(f"^XF recalls {name}, which is not stored: only the recall's own commands print")
        stored = b""
    # Field values sent with the recall: ^FNn then the tokens up to ^FS (^FH, ^FD...).
    values: dict[int, bytes] = {}
    extras = bytearray()
    current: int | None = None
    for cmd in commands:
        raw = zpl[cmd.start : cmd.end]
        if cmd.name in ("XA", "XZ", "XF"):
            continue
        if cmd.name == "FN":
            current = _int(_args(cmd.params), 0, 0)
            values[current] = b""
        elif current is not None:
            if cmd.name == "FS":
                current = None
            else:
                values[current] += raw
        elif cmd.name != "FS":
            extras += raw
    merged = bytearray(b"^XA")
    merged += extras
    body = tokenize(stored)
    skipping_default = False
    for cmd in body:
        raw = stored[cmd.start : cmd.end]
        if cmd.name == "FN":
            n = _int(_args(cmd.params), 0, 0)
            if n in values:
                merged += values[n]
                skipping_default = True  # a default ^FD in the stored field gives way to the recalled value
                continue
        if cmd.name == "FS":
            skipping_default = False
        elif skipping_default and cmd.name in ("FD", "FH"):
            continue
        merged += raw
    merged += b"^XZ"
    return bytes(merged), warnings


# ---------------------------------------------------------------------------------------------------- drawing


_DARK_TO_INK = bytes([255, 0]) + bytes(range(2, 256))   # a QR module's 1 (dark) to ink (0), 0 to paper (255)


@lru_cache(maxsize=64)
def _font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_MONO_PATH if mono else FONT_PATH
    try:
        return ImageFont.truetype(str(path), max(size, 1))
    except OSError:
        try:
            return ImageFont.truetype(str(FONT_PATH), max(size, 1))
        except OSError:
            return ImageFont.load_default(max(size, 1))


class Face:
    """A font the printer draws text with: its name on the label, its outlines, and the characters it has."""

    def __init__(self, name: str, source: str | bytes, coverage: frozenset[str]) -> None:
        self.name = name
        self._source = source
        self.coverage = coverage
        self._sizes: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
        self._masks: dict[tuple[str, int, int], tuple[Image.Image, int]] = {}

    def font(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        found = self._sizes.get(size)
        if found is None:
            source = io.BytesIO(self._source) if isinstance(self._source, bytes) else self._source
            try:
                found = ImageFont.truetype(source, max(size, 1))
            except OSError:
                found = _font(size)
            self._sizes[size] = found
        return found

    def missing(self, text: str) -> str:
        """The characters of `text` this font has no glyph for, each once, in order."""
        return "".join(dict.fromkeys(c for c in text if c not in self.coverage and c != "\n"))

    def _runs(self, text: str) -> list[tuple[bool, str]]:
        runs: list[tuple[bool, str]] = []
        for char in text:
            has = char in self.coverage
            if runs and runs[-1][0] == has:
                runs[-1] = (has, runs[-1][1] + char)
            else:
                runs.append((has, char))
        return runs

    @staticmethod
    def _box_advance(height: int) -> int:
        return max(2, round(height * 0.55))

    def width(self, text: str, height: int, width: int) -> float:
        """The width in dots of one line, a box for each missing character."""
        font = self.font(height)
        natural = sum(font.getlength(run) if has else len(run) * self._box_advance(height)
                      for has, run in self._runs(text))
        return natural * (width / height if height else 1.0)

    def mask(self, text: str, height: int, width: int) -> tuple[Image.Image, int]:
        """The glyphs of one line as a 1-bit mask, and how far above the cell top the mask starts.

        Kept per font because a batch prints the same product name, producer and dates on every label: only the
        serial and the QR change, and that keeps a label to a few milliseconds.
        """
        key = (text, height, width)
        found = self._masks.get(key)
        if found is not None:
            return found
        font = self.font(height)
        natural = max(1, round(self.width(text, height, height)))
        # Room above the cell for stacked Vietnamese diacritics and below it for descenders.
        pad = height // 2
        tmp = Image.new("L", (natural + 2, height + 2 * pad), 0)
        draw = ImageDraw.Draw(tmp)
        # The baseline sits where a scalable Zebra font puts it: about four fifths down the character cell.
        baseline = pad + round(height * 0.8)
        x = 0.0
        box = self._box_advance(height)
        for has, run in self._runs(text):
            if has:
                draw.text((x, baseline), run, font=font, fill=255, anchor="ls")
                x += font.getlength(run)
                continue
            for _ in run:   # the box a printer draws for a character its font lacks
                draw.rectangle((round(x) + 1, baseline - round(height * 0.7), round(x) + box - 2, baseline - 1),
                               outline=255, width=max(1, height // 14))
                x += box
        if width != height:
            # A scalable font with width != height stretches the glyphs horizontally.
            tmp = tmp.resize((max(1, round(tmp.width * width / height)), tmp.height), Image.Resampling.NEAREST)
        found = (tmp.point(lambda v: 255 if v >= 128 else 0, "1"), pad)
        if len(self._masks) > 1024:
            self._masks.clear()
        self._masks[key] = found
        return found


_RESIDENT = Face("0", str(FONT_PATH), RESIDENT_CHARS)


@lru_cache(maxsize=64)
def _resident(letter: str) -> Face:
    """A resident font by its letter (0 scalable, A–H and P–V bitmap): drawn with DejaVu, Latin-1 only."""
    return _RESIDENT if letter == "0" else Face(letter, str(FONT_PATH), RESIDENT_CHARS)


@lru_cache(maxsize=32)
def downloaded_face(name: str, data: bytes) -> Face:
    """A TrueType font downloaded to the printer (``~DY``), with the characters its cmap holds."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        cmap = TTFont(io.BytesIO(data), lazy=True).getBestCmap() or {}
    except (TTLibError, AssertionError, OSError, KeyError, ValueError):   # not a font: prints nothing legible
        cmap = {}
    return Face(name, data, frozenset(map(chr, cmap)))


def _draw_text(img: Image.Image, x: int, top: int, text: str, height: int, width: int,
               face: Face = _RESIDENT) -> int:
    """Draw one line with its cell's top at `top`; returns the line's width in dots."""
    if not text:
        return 0
    mask, pad = face.mask(text, height, width)
    img.paste(0, (x, top - pad), mask)
    return round(face.width(text, height, width))


def ean13_check_digit(digits12: str) -> str:
    """GS1 check digit: weights 3,1,3,1… from the rightmost data digit leftwards."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits12)))
    return str((10 - total % 10) % 10)


def _ean13_modules(digits13: str) -> str:
    parity = _EAN_PARITY[int(digits13[0])]
    left = "".join((_EAN_L if p == "L" else _EAN_G)[int(d)] for p, d in zip(parity, digits13[1:7]))
    right = "".join(_EAN_R[int(d)] for d in digits13[7:13])
    return "101" + left + "01010" + right + "101"


@dataclass(slots=True)
class _Field:
    x: int | None = None
    y: int | None = None
    typeset: bool = False  # ^FT: y is the baseline (text) or the bottom (symbols), not the top
    font: tuple[int, int] | None = None
    face: Face | None = None
    block: tuple[int, int, int, str] | None = None
    hex_indicator: int | None = None
    data: bytes | None = None
    symbol: tuple[str, list[str]] | None = None
    orientation: str = "N"


@dataclass(slots=True)
class _State:
    dpmm: int
    width: int
    length: int
    home: tuple[int, int] = (0, 0)
    module: int = 2
    ratio: float = 3.0
    bar_height: int = 10
    default_font: tuple[int, int] = (9, 5)
    default_font_name: str = "A"      # ^CF's font; a Zebra's default is the bitmap font A
    last_named_font: str | None = None   # ^A@ without a name uses the last one named
    ci: int = 0


def _decode_field(data: bytes, indicator: int | None, encoding: str) -> str:
    raw = data.replace(b"\r", b"").replace(b"\n", b"")
    if indicator is not None:
        out = bytearray()
        i = 0
        while i < len(raw):
            if raw[i] == indicator and i + 2 < len(raw) + 0 and re.fullmatch(rb"[0-9A-Fa-f]{2}", raw[i + 1 : i + 3]):
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
            else:
                out.append(raw[i])
                i += 1
        raw = bytes(out)
    return raw.decode(encoding, "replace")


_FB_ESCAPE = re.compile(r"\\(\\|&|\(.\))")


def block_paragraphs(text: str) -> list[str]:
    """The lines ^FB makes of its field data before wrapping: ``\\&`` breaks the line, ``\\\\`` is one backslash,
    ``\\(*)`` a soft hyphen (a hint where a word may break; drawn as nothing here). A Zebra reads these after the
    ^FH escapes are decoded, so ``_5C&`` breaks the line too."""
    paragraphs = [""]
    position = 0
    for match in _FB_ESCAPE.finditer(text):
        paragraphs[-1] += text[position:match.start()]
        escape = match.group(1)
        if escape == "&":
            paragraphs.append("")
        elif escape == "\\":
            paragraphs[-1] += "\\"
        position = match.end()
    paragraphs[-1] += text[position:]
    return paragraphs


def _wrap(text: str, max_width: int, height: int, width: int, face: Face = _RESIDENT) -> list[str]:
    """Greedy wrap at spaces, as ^FB does; a word wider than the block is broken where it overflows."""
    lines: list[str] = []
    for paragraph in block_paragraphs(text):
        current = ""
        for word in paragraph.split(" "):
            candidate = word if not current else current + " " + word
            if face.width(candidate, height, width) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while current and face.width(current, height, width) > max_width:
                cut = len(current)
                while cut > 1 and face.width(current[:cut], height, width) > max_width:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
    return lines


def font_file_name(text: str, default_extension: str = "TTF") -> str:
    """`E:VNSANS.TTF` the way the printer files a font: drive R: and the extension given when left out."""
    name = text.strip().upper()
    if ":" not in name:
        name = "R:" + name
    if "." not in name.split(":", 1)[1]:
        name += "." + default_extension
    return name


class _Renderer:
    def __init__(self, zpl: bytes, dpmm: int, qr_auto_mask: bool = False,
                 fonts: Mapping[str, bytes] | None = None, aliases: MutableMapping[str, str] | None = None) -> None:
        self.zpl = zpl
        self.qr_auto_mask = qr_auto_mask
        self.fonts = {font_file_name(k): v for k, v in (fonts or {}).items()}
        self.aliases = aliases if aliases is not None else {}
        default_w = round(101.6 * dpmm)  # a 4 x 6 inch label when ^PW / ^LL are not given
        self.state = _State(dpmm=dpmm, width=default_w, length=round(152.4 * dpmm))
        self.field = _Field()
        self.result_fields: list[RenderedField] = []
        self.unknown: list[str] = []
        self.warnings: list[str] = []
        self.speed: float | None = None
        self.quantity = 1
        self.ops: list[tuple[str, _Field, _State]] = []

    def run(self) -> RenderedLabel:
        commands = tokenize(self.zpl)
        # ^PW and ^LL size the image whatever their position, so read them first.
        for cmd in commands:
            if cmd.prefix == "^" and cmd.name == "PW":
                self.state.width = max(1, _int(_args(cmd.params), 0, self.state.width))
            elif cmd.prefix == "^" and cmd.name == "LL":
                self.state.length = max(1, _int(_args(cmd.params), 0, self.state.length))
        self.img = Image.new("1", (self.state.width, self.state.length), 1)
        for cmd in commands:
            self.apply(cmd)
        if self.field.data is not None or self.field.symbol is not None:
            self.warnings.append("field not closed with ^FS before ^XZ: drawn anyway")
            self.draw_field()
        encoding = "utf-8" if self.state.ci == 28 else "cp1252"
        return RenderedLabel(
            zpl=self.zpl,
            image=self.img,
            dpmm=self.state.dpmm,
            fields=self.result_fields,
            unknown_commands=self.unknown,
            warnings=self.warnings,
            speed_ips=self.speed,
            quantity=self.quantity,
            encoding=encoding,
        )

    def apply(self, cmd: ZplCommand) -> None:
        st, f = self.state, self.field
        name = cmd.name
        if cmd.prefix == "~":
            # Control commands act on the printer, not the format; the printer simulator takes them out first.
            self.unknown.append(cmd.text[:40])
            return
        args = _args(cmd.params)
        if name in ("XA", "XZ", "FX", "PW", "LL"):
            return
        if name == "CI":
            st.ci = _int(args, 0, 0)
        elif name == "LH":
            st.home = (_int(args, 0, 0), _int(args, 1, 0))
        elif name in ("FO", "FT"):
            f.x = _int(args, 0, 0) + st.home[0]
            f.y = _int(args, 1, 0) + st.home[1]
            f.typeset = name == "FT"
        elif name == "A":
            params = _clean(cmd.params)
            font_name = (params[:1] or "0").upper()
            rest = [a.strip() for a in params[1:].split(",")]
            orientation = (rest[0][:1] or "N").upper() if rest else "N"
            h = _int(rest, 1, st.default_font[0])
            w = _int(rest, 2, h)
            f.face = self.face_for_letter(font_name)
            f.font = (max(h, 1), max(w, 1))
            f.orientation = orientation
        elif name == "A@":
            # ^A@o,h,w,d:o.x: a font by its file name, as downloaded with ~DY.
            params = _clean(cmd.params)
            rest = [a.strip() for a in params.split(",")]
            orientation = (rest[0][:1] or "N").upper() if rest else "N"
            h = _int(rest, 1, st.default_font[0])
            w = _int(rest, 2, h)
            named = ",".join(rest[3:]).strip()
            if named:
                st.last_named_font = font_file_name(named)
            f.face = self.face_for_file(st.last_named_font) if st.last_named_font else None
            f.font = (max(h, 1), max(w, 1))
            f.orientation = orientation
        elif name == "CW":
            # ^CWa,d:o.x: the letter a now means that font, until the printer is switched off.
            letter, _, named = _clean(cmd.params).partition(",")
            if letter.strip() and named.strip():
                self.aliases[letter.strip()[:1].upper()] = font_file_name(named)
        elif name == "CF":
            params = _clean(cmd.params)
            if params[:1] and params[:1] != ",":
                st.default_font_name = params[:1].upper()
            rest = [a.strip() for a in params[1:].split(",")]
            h = _int(rest, 1, st.default_font[0])
            st.default_font = (max(h, 1), max(_int(rest, 2, h), 1))
        elif name == "FB":
            just = (args[3][:1].upper() if len(args) > 3 and args[3] else "L")
            f.block = (_int(args, 0, 0), max(_int(args, 1, 1), 1), _int(args, 2, 0), just)
        elif name == "FH":
            text = cmd.params.replace(b"\r", b"").replace(b"\n", b"")
            f.hex_indicator = text[0] if text else ord("_")
        elif name == "FD":
            f.data = (f.data or b"") + cmd.params
        elif name == "FS":
            self.draw_field()
            self.field = _Field()
        elif name == "BY":
            st.module = max(_int(args, 0, st.module), 1)
            try:
                st.ratio = float(args[1]) if len(args) > 1 and args[1] else st.ratio
            except ValueError:
                pass
            st.bar_height = _int(args, 2, st.bar_height)
        elif name in ("BQ", "BE", "GB"):
            f.symbol = (name, args)
        elif name == "PR":
            value = args[0].upper() if args and args[0] else ""
            if value in _SPEED_LETTERS:
                self.speed = _SPEED_LETTERS[value]
            else:
                try:
                    self.speed = float(value)
                except ValueError:
                    self.warnings.append(f"^PR speed {value!r} not understood")
        elif name == "PQ":
            self.quantity = max(_int(args, 0, 1), 1)
        elif name == "FN":
            # A variable field outside a recalled format has no value: it prints nothing.
            pass
        else:
            self.unknown.append(cmd.text[:40])

    # -- fonts

    def face_for_letter(self, letter: str) -> Face:
        """A one-character font name: a resident font, or a downloaded one that ^CW gave that letter."""
        aliased = self.aliases.get(letter)
        if aliased is not None and aliased in self.fonts:
            return downloaded_face(aliased, self.fonts[aliased])
        return _resident(letter)

    def face_for_file(self, name: str) -> Face:
        """A font by its file name; one the printer does not hold prints in the ^CF font, as a Zebra does."""
        if name in self.fonts:
            return downloaded_face(name, self.fonts[name])
        fallback = self.state.default_font_name
        self.warnings.append(f"font {name} is not on the printer: printed with font {fallback}")
        return self.face_for_letter(fallback)

    # -- fields

    def draw_field(self) -> None:
        f, st = self.field, self.state
        if f.symbol is None and f.data is None:
            return
        if f.x is None or f.y is None:
            f.x, f.y = st.home
            shown = _decode_field(f.data or b"", f.hex_indicator, "utf-8" if st.ci == 28 else "cp1252")
            self.warnings.append(f"field without ^FO/^FT printed at the label home: {shown[:40]!r}")
        if f.orientation != "N":
            self.warnings.append(f"orientation {f.orientation} drawn as N")
        encoding = "utf-8" if st.ci == 28 else "cp1252"
        if f.symbol is None:
            self.draw_text(_decode_field(f.data or b"", f.hex_indicator, encoding))
            return
        kind, args = f.symbol
        if kind == "GB":
            self.draw_box(args)
        elif kind == "BQ":
            self.draw_qr(args, f.data or b"")
        elif kind == "BE":
            self.draw_ean13(args, _decode_field(f.data or b"", f.hex_indicator, "latin-1"))

    def draw_text(self, text: str) -> None:
        f, st = self.field, self.state
        assert f.x is not None and f.y is not None
        h, w = f.font or st.default_font
        face = f.face or self.face_for_letter(st.default_font_name)
        top = f.y - round(h * 0.8) if f.typeset else f.y
        if f.block is None:
            drawn = _draw_text(self.img, f.x, top, text, h, w, face)
            self.result_fields.append(RenderedField("text", f.x, top, drawn, h, text, font=face.name,
                                                    missing=self.note_missing(text, face)))
            return
        block_w, max_lines, spacing, just = f.block
        lines = _wrap(text, block_w or st.width - f.x, h, w, face)
        if len(lines) > max_lines:
            # A Zebra prints the overflow on top of the last line of the block; so does this.
            self.warnings.append(f"^FB text needs {len(lines)} lines, block allows {max_lines}: overprinted")
        step = h + spacing
        for i, line in enumerate(lines):
            row = min(i, max_lines - 1)
            lw = round(face.width(line, h, w))
            if just == "C":
                lx = f.x + (block_w - lw) // 2
            elif just == "R":
                lx = f.x + block_w - lw
            else:
                lx = f.x
            _draw_text(self.img, lx, top + row * step, line, h, w, face)
        shown = min(len(lines), max_lines)
        printed = "\n".join(block_paragraphs(text))   # the text as the block prints it: its escapes read
        self.result_fields.append(
            RenderedField("text", f.x, top, block_w, shown * step - spacing, printed, detail=f"lines={lines!r}",
                          font=face.name, missing=self.note_missing(printed, face))
        )

    def note_missing(self, text: str, face: Face) -> str:
        missing = face.missing(text)
        if missing:
            self.warnings.append(f"font {face.name} has no glyph for {' '.join(missing)} in {text[:40]!r}: "
                                 "printed as boxes")
        return missing

    def draw_box(self, args: list[str]) -> None:
        f = self.field
        assert f.x is not None and f.y is not None
        t = max(_int(args, 2, 1), 1)
        w = max(_int(args, 0, t), t)
        h = max(_int(args, 1, t), t)
        colour = 1 if len(args) > 3 and args[3].upper().startswith("W") else 0
        top = f.y - h if f.typeset else f.y
        draw = ImageDraw.Draw(self.img)
        if 2 * t >= min(w, h):
            draw.rectangle((f.x, top, f.x + w - 1, top + h - 1), fill=colour)
        else:
            draw.rectangle((f.x, top, f.x + w - 1, top + h - 1), outline=colour, width=t)
        self.result_fields.append(RenderedField("box", f.x, top, w, h, "", detail=f"thickness={t}"))

    def draw_qr(self, args: list[str], data: bytes) -> None:
        f, st = self.field, self.state
        assert f.x is not None and f.y is not None
        mag = _int(args, 2, _QR_DEFAULT_MAG.get(st.dpmm, 2))
        mag = min(max(mag, 1), 10)
        default_ec = (args[3][:1].upper() if len(args) > 3 and args[3][:1].upper() in _QR_EC else "Q")
        raw = data.replace(b"\r", b"").replace(b"\n", b"")
        if f.hex_indicator is not None:
            raw = _decode_field(raw, f.hex_indicator, "latin-1").encode("latin-1")
        ec_char = chr(raw[0]).upper() if raw else ""
        mode_char = chr(raw[1]).upper() if len(raw) > 1 else ""
        if len(raw) >= 3 and ec_char in _QR_EC and mode_char in "AM" and raw[2:3] == b",":
            ec, mode, payload = ec_char, mode_char, raw[3:]
        else:
            # Without the `MA,` switches the printer takes the first three characters as switches: they vanish.
            self.warnings.append(f"^BQ field data {raw[:12]!r} lacks the EC/mode switches: first 3 bytes eaten")
            ec = ec_char if ec_char in _QR_EC else default_ec
            mode, payload = "A", raw[3:]
        content: str | bytes
        seg_mode: str | None = None
        if mode == "M":
            content, seg_mode = self.manual_qr_payload(payload)
        else:
            try:
                content = payload.decode("ascii")
            except UnicodeDecodeError:
                content = payload
                seg_mode = "byte"
        mask_arg = _int(args, 4, 7)
        if 0 <= mask_arg <= 6:
            mask: int | None = mask_arg
        else:
            # ^BQ mask 7 = automatic. Scoring all eight masks costs ~8 ms in pure Python and changes nothing a
            # scanner can tell, so a fixed mask is used unless the caller asks for the evaluated one.
            mask = None if self.qr_auto_mask else _FAST_QR_MASK
        try:
            qr = segno.make_qr(content, error=ec.lower(), boost_error=False, mode=seg_mode, mask=mask)
        except Exception as exc:  # segno refuses data too long for any version: the printer prints no symbol
            self.warnings.append(f"^BQ data cannot be encoded: {exc}")
            return
        matrix = qr.matrix
        n = len(matrix)
        symbol = Image.frombytes("L", (n, n), b"".join(bytes(row) for row in matrix).translate(_DARK_TO_INK))
        symbol = symbol.resize((n * mag, n * mag), Image.Resampling.NEAREST).convert("1")
        top = f.y - n * mag if f.typeset else f.y
        self.img.paste(symbol, (f.x, top))
        text = content if isinstance(content, str) else content.decode("utf-8", "replace")
        self.result_fields.append(
            RenderedField("qr", f.x, top, n * mag, n * mag, text, detail=f"ec={ec} mode={mode} mag={mag} version={qr.version}")
        )

    def manual_qr_payload(self, payload: bytes) -> tuple[str | bytes, str | None]:
        """Manual input: `N…` numeric, `A…` alphanumeric, `Bnnnn…` nnnn bytes; byte mode carries UTF-8 as is."""
        kind = chr(payload[0]).upper() if payload else ""
        if kind == "B":
            count = int(payload[1:5]) if payload[1:5].isdigit() else len(payload) - 5
            return payload[5 : 5 + count], "byte"
        if kind == "N":
            return payload[1:].decode("ascii", "replace"), "numeric"
        if kind == "A":
            return payload[1:].decode("ascii", "replace"), "alphanumeric"
        self.warnings.append(f"^BQ manual mode character {kind!r} not understood: data taken as bytes")
        return payload, "byte"

    def draw_ean13(self, args: list[str], data: str) -> None:
        f, st = self.field, self.state
        assert f.x is not None and f.y is not None
        digits = "".join(c for c in data if c.isdigit())
        if len(digits) != len(data.strip()) or len(digits) != 12:
            self.warnings.append(f"^BE takes 12 digits, got {data!r}: padded or cut like the printer")
        digits = digits[:12].rjust(12, "0")
        full = digits + ean13_check_digit(digits)
        height = _int(args, 1, st.bar_height)
        interpretation = not (len(args) > 2 and args[2].upper().startswith("N"))
        above = len(args) > 3 and args[3].upper().startswith("Y")
        m = st.module
        modules = _ean13_modules(full)
        digit_h = 9 * m if interpretation else 0
        guard_extra = (digit_h // 2) if interpretation and not above else 0
        top = f.y - height if f.typeset else f.y
        bars_top = top + digit_h if above else top
        draw = ImageDraw.Draw(self.img)
        guards = set(range(0, 3)) | set(range(45, 50)) | set(range(92, 95))
        run_start: int | None = None
        for i, bit in enumerate(modules + "0"):
            if bit == "1" and run_start is None:
                run_start = i
            elif bit != "1" and run_start is not None:
                extra = guard_extra if run_start in guards else 0
                draw.rectangle(
                    (f.x + run_start * m, bars_top, f.x + i * m - 1, bars_top + height + extra - 1), fill=0
                )
                run_start = None
        if interpretation:
            font = _font(digit_h, mono=True)
            ty = top if above else bars_top + height + 1
            # The leading digit stands in the left quiet zone, the two groups of six under their halves.
            draw.text((f.x - 1, ty), full[0], font=font, fill=0, anchor="ra")
            for group, start in ((full[1:7], 3), (full[7:13], 50)):
                gw = font.getlength(group)
                cx = f.x + (start + 21) * m
                draw.text((cx - gw / 2, ty), group, font=font, fill=0)
        self.result_fields.append(
            RenderedField("ean13", f.x, top, 95 * m, height + digit_h, full, detail=f"module={m}")
        )


def render_label(zpl: bytes, dpmm: int = 8, qr_auto_mask: bool = False, *,
                 fonts: Mapping[str, bytes] | None = None,
                 aliases: MutableMapping[str, str] | None = None) -> RenderedLabel:
    """Render one `^XA…^XZ` format (stored formats already expanded). `fonts` are the TrueType files the printer
    holds by name (`E:VNSANS.TTF`); `aliases` the letters ^CW gave them (updated by ^CW in this format)."""
    return _Renderer(zpl, dpmm, qr_auto_mask, fonts, aliases).run()


def render_labels(
    zpl: bytes,
    dpmm: int = 8,
    formats: MutableMapping[str, bytes] | None = None,
    qr_auto_mask: bool = False,
    fonts: Mapping[str, bytes] | None = None,
) -> list[RenderedLabel]:
    """Render every format in `zpl`. `formats` holds stored formats across calls (`^DF` stores into it, `^XF`
    recalls from it); a `^DF` format prints nothing and so adds no label to the result. `qr_auto_mask` scores
    the eight QR masks as ISO 18004 says (slow in pure Python) instead of using a fixed one. `fonts` are the
    downloaded fonts the printer holds (by file name): without them, text prints in the resident fonts only."""
    store: MutableMapping[str, bytes] = {} if formats is None else formats
    aliases: dict[str, str] = {}
    labels: list[RenderedLabel] = []
    for fmt in split_formats(zpl):
        expanded, warnings = expand_format(fmt, store)
        if expanded is None:
            continue
        label = render_label(expanded, dpmm, qr_auto_mask, fonts=fonts, aliases=aliases)
        label.warnings[:0] = warnings
        labels.append(label)
    return labels
