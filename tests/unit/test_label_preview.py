"""The technician's label preview and test label (app.label_preview), without a screen: the shipped template drawn
by the renderer the printer simulator prints with."""

from __future__ import annotations

from app.label_preview import fields_for_test_print, render_preview
from station.config import DEFAULT_CONFIG, load_config


def test_the_test_label_carries_no_qr() -> None:
    fields = fields_for_test_print()
    assert fields["qr"] is None and fields["gtin"] is None      # no scanner downstream takes it for a stamp


def test_the_shipped_template_previews_as_a_png_with_its_fonts() -> None:
    config = load_config(DEFAULT_CONFIG)
    fonts = {name: config.resolve(path) for name, path in config.devices.printer.fonts.items()}
    png, notes = render_preview(config.resolve(config.devices.printer.template), fields_for_test_print(), fonts)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert notes == []                  # every text in its downloaded font, no unknown command
    # Without the font on the printer, the resident font prints the Vietnamese letters as boxes, and says so.
    _, without = render_preview(config.resolve(config.devices.printer.template), fields_for_test_print())
    assert any("no glyph for Ử in 'NHÃN IN THỬ / TEST LABEL'" in note for note in without), without
