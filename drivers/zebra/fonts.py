"""How wide a text prints in the TrueType fonts the station downloads to the printer (``^A@…,E:VNSANS.TTF``).

A Zebra scales a TrueType font to the field's height and width in dots; the advance of each glyph is the font's
own. The station measures with the same file it downloads, so a product name, a lot or a serial that would run
past the label's edge (or past the lines of its ``^FB`` block) is refused before a label is printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from drivers.zebra.zpl import font_name


class TrueTypeMeasure:
    """``measure(text, font, height, width)`` in dots for the fonts given by their name on the printer; None for
    any other font (a resident one, whose metrics the station does not have)."""

    def __init__(self, fonts: Mapping[str, str | Path]) -> None:
        self._paths = {font_name(name): str(path) for name, path in fonts.items()}

    def missing(self, text: str, font: str | None) -> str | None:
        """The characters of `text` the font has no glyph for, each once in order ("" when it has them all); None
        for a font the station has no file of."""
        path = self._paths.get(font_name(font)) if font else None
        if path is None:
            return None
        have = _coverage(path)
        return "".join(dict.fromkeys(c for c in text if ord(c) not in have and not c.isspace()))

    def __call__(self, text: str, font: str | None, height: int, width: int) -> float | None:
        path = self._paths.get(font_name(font)) if font else None
        if path is None or height <= 0:
            return None
        natural = _face(path, height).getlength(text)
        return natural * (width / height)


@lru_cache(maxsize=32)
def _face(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=8)
def _coverage(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap())
