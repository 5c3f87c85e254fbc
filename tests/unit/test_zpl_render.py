"""The ZPL renderer draws the stamp template so that a barcode reader gets back exactly what was sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageOps

from drivers.zebra.render import (
    ean13_check_digit,
    expand_format,
    render_labels,
    split_formats,
    tokenize,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "labels" / "stamp-60x40.zpl"
QR_URI = "https://truyxuat.example.vn/01/08938603001013/10/MX2611A/21/7K3Q9XH2WP?17=270528"
PRODUCT = "Mè xừng Thông Hương 250g"


def escape(value: str) -> str:
    """^FH_ escaping as the label builder does it: ^ ~ _, control and non-ASCII bytes as _XX."""
    out = []
    for byte in value.encode("utf-8"):
        out.append(f"_{byte:02X}" if byte in b"^~_" or byte < 0x20 or byte > 0x7E else chr(byte))
    return "".join(out)


def stamp_zpl(**overrides: str) -> bytes:
    values = {
        "qr": QR_URI,
        "product_name": PRODUCT,
        "producer": "Cơ sở Thông Hương, Huế",
        "lot": "MX2611A",
        "production_date": "26/11/2025",
        "expiry_date": "28/05/2027",
        "serial": "7K3Q9XH2WP",
        "gtin12": "893860300101",
    }
    values.update(overrides)
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("${" + name + "}", escape(value))
    assert "${" not in text.replace("${...}", "")
    return text.encode("utf-8")


def decode(image: Image.Image, fmt: zxingcpp.BarcodeFormat) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image.convert("L"), formats=fmt)]


def ink_bbox(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The box around every black dot."""
    return ImageOps.invert(image.convert("L")).getbbox()


def test_stamp_template_decodes_to_the_exact_uri_and_gtin() -> None:
    labels = render_labels(stamp_zpl())
    assert len(labels) == 1
    label = labels[0]
    assert (label.width, label.height) == (480, 320)
    assert label.image.mode == "1"
    assert decode(label.image, zxingcpp.BarcodeFormat.QRCode) == [QR_URI]
    assert decode(label.image, zxingcpp.BarcodeFormat.EAN13) == ["8938603001013"]
    # ^FH_ escapes came back as UTF-8 text (^CI28).
    assert PRODUCT in label.texts
    assert "Số/No: 7K3Q9XH2WP" in label.texts
    assert label.encoding == "utf-8"


def test_qr_is_drawn_at_the_requested_ec_level_and_exact_module_size() -> None:
    label = render_labels(stamp_zpl())[0]
    qr = next(f for f in label.fields if f.kind == "qr")
    assert "ec=M" in qr.detail and "mag=4" in qr.detail
    version = int(qr.detail.split("version=")[1])
    modules = 17 + 4 * version
    assert qr.width == qr.height == modules * 4
    assert (qr.x, qr.y) == (16, 16)  # 4 modules of quiet zone from the label's edge
    # The top-left finder pattern's outer ring is exactly 7 modules (28 dots) of dark.
    px = label.image.load()
    assert all(px[16 + i, 16] == 0 for i in range(28))
    assert px[16 + 28, 16 + 1] != 0  # the light module right of the finder
    result = zxingcpp.read_barcodes(label.image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)[0]
    assert result.ec_level == "M"


@pytest.mark.parametrize("ec", ["L", "M", "Q", "H"])
def test_qr_switch_selects_error_correction(ec: str) -> None:
    zpl = f"^XA^PW300^LL300^FO20,20^BQN,2,3^FD{ec}A,HELLO 123^FS^XZ".encode()
    label = render_labels(zpl)[0]
    results = zxingcpp.read_barcodes(label.image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [(r.text, r.ec_level) for r in results] == [("HELLO 123", ec)]


def test_qr_without_switches_loses_its_first_three_characters_like_the_printer() -> None:
    label = render_labels(b"^XA^PW300^LL300^FO20,20^BQN,2,3^FDhttps://x.example/1^FS^XZ")[0]
    assert decode(label.image, zxingcpp.BarcodeFormat.QRCode) == ["ps://x.example/1"]
    assert any("first 3 bytes eaten" in w for w in label.warnings)


def test_qr_manual_byte_mode_carries_utf8() -> None:
    data = "Mè".encode("utf-8")
    zpl = b"^XA^PW300^LL300^CI28^FO20,20^BQN,2,4^FDHM,B%04d" % len(data) + data + b"^FS^XZ"
    label = render_labels(zpl)[0]
    assert decode(label.image, zxingcpp.BarcodeFormat.QRCode) == ["Mè"]


def test_ean13_prints_its_own_check_digit() -> None:
    assert ean13_check_digit("893851234567") == "3"
    label = render_labels(b"^XA^PW400^LL200^FO40,20^BY2^BEN,80,Y,N^FD893851234567^FS^XZ")[0]
    assert label.ean13 == ["8938512345673"]
    assert decode(label.image, zxingcpp.BarcodeFormat.EAN13) == ["8938512345673"]
    ean = label.fields[0]
    assert (ean.x, ean.width) == (40, 95 * 2)  # 95 modules at the ^BY module width


def test_fh_decodes_hex_escapes_then_utf8() -> None:
    zpl = ("^XA^CI28^FO10,10^A0N,20,20^FH_^FD" + escape("Giá: 5_000 ^~ đ") + "^FS^XZ").encode()
    assert render_labels(zpl)[0].texts == ["Giá: 5_000 ^~ đ"]
    # Another indicator character, as for GS1 DataMatrix fields where _ is taken.
    assert render_labels(b"^XA^FO10,10^FH\\^FDa\\5Fb_41^FS^XZ")[0].texts == ["a_b_41"]


def test_fb_wraps_at_spaces_within_the_block_width() -> None:
    text = "one two three four five six seven"
    zpl = f"^XA^PW400^LL200^FO10,10^A0N,20,20^FB120,5,4,L^FD{text}^FS^XZ".encode()
    label = render_labels(zpl)[0]
    lines = eval(label.fields[0].detail.removeprefix("lines="))  # noqa: S307 - our own repr
    assert len(lines) > 1
    assert " ".join(lines) == text  # broken only at spaces
    bbox = ink_bbox(label.image)
    assert bbox is not None
    assert bbox[0] >= 10 and bbox[2] <= 10 + 120  # no ink outside the block
    # Line pitch is font height plus the ^FB spacing.
    assert label.fields[0].height == len(lines) * 24 - 4


def test_fb_centre_and_right_justification() -> None:
    def ink(just: str) -> tuple[int, int, int, int]:
        zpl = f"^XA^PW400^LL100^FO0,10^A0N,20,20^FB400,1,0,{just}^FDabc^FS^XZ".encode()
        bbox = ink_bbox(render_labels(zpl)[0].image)
        assert bbox is not None
        return bbox

    left, centre, right = ink("L"), ink("C"), ink("R")
    assert left[0] < 5
    assert abs((centre[0] + centre[2]) / 2 - 200) < 6
    assert 394 <= right[2] <= 400


def test_fb_overflow_overprints_the_last_line_and_warns() -> None:
    zpl = b"^XA^PW400^LL200^FO10,10^A0N,20,20^FB60,2,0,L^FDaaa bbb ccc ddd^FS^XZ"
    label = render_labels(zpl)[0]
    assert any("overprinted" in w for w in label.warnings)
    assert label.fields[0].height == 2 * 20


def test_unknown_commands_are_recorded_not_fatal() -> None:
    label = render_labels(b"^XA^MMT^PW200^LL100^FO10,10^A0N,20,20^FDok^FS^JUS^XZ")[0]
    assert label.unknown_commands == ["^MMT", "^JUS"]
    assert label.texts == ["ok"]


def test_speed_quantity_and_box() -> None:
    label = render_labels(b"^XA^PR4^PQ3^PW100^LL100^FO10,10^GB50,40,3^FS^XZ")[0]
    assert (label.speed_ips, label.quantity) == (4.0, 3)
    px = label.image.load()
    assert px[10, 10] == 0 and px[12, 30] == 0 and px[59, 49] == 0  # the frame
    assert px[30, 30] != 0  # hollow
    assert render_labels(b"^XA^PRD^XZ")[0].speed_ips == 6.0


def test_label_home_offsets_fields() -> None:
    label = render_labels(b"^XA^PW200^LL200^LH30,40^FO10,10^GB20,20,20^FS^XZ")[0]
    assert ink_bbox(label.image) == (40, 50, 60, 70)


def test_several_formats_in_one_stream_and_noise_between() -> None:
    zpl = b"junk^XA^FO1,1^FDa^FS^XZ\r\n^XA^FO1,1^FDb^FS^XZ trailing"
    assert split_formats(zpl) == [b"^XA^FO1,1^FDa^FS^XZ", b"^XA^FO1,1^FDb^FS^XZ"]
    assert [lbl.texts for lbl in render_labels(zpl)] == [["a"], ["b"]]


def test_tokenize_reads_font_name_and_lowercase_commands() -> None:
    names = [(c.name, c.params) for c in tokenize(b"^xa^A0N,26,26^fo1,2^XZ")]
    assert names == [("XA", b""), ("A", b"0N,26,26"), ("FO", b"1,2"), ("XZ", b"")]


def test_stored_format_recalled_with_field_numbers() -> None:
    formats: dict[str, bytes] = {}
    stored = b"^XA^DFR:STAMP.ZPL^FS^CI28^PW300^LL200^FO10,10^A0N,20,20^FN1^FDdefault^FS^FO10,40^BQN,2,3^FN2^FS^XZ"
    assert render_labels(stored, formats=formats) == []
    assert "R:STAMP.ZPL" in formats
    recall = b"^XA^XFR:STAMP.ZPL^FS^FN1^FH_^FDM_C3_A8^FS^FN2^FDMA,ABC123^FS^XZ"
    expanded, warnings = expand_format(recall, formats)
    assert warnings == [] and expanded is not None and b"default" not in expanded
    label = render_labels(recall, formats=formats)[0]
    assert label.texts == ["Mè"]
    assert decode(label.image, zxingcpp.BarcodeFormat.QRCode) == ["ABC123"]


def test_a_recalled_stored_format_prints_the_same_label_as_the_full_format() -> None:
    from pathlib import Path

    from drivers.zebra.zpl import LabelTemplate
    from drivers.zebra.render import expand_format

    template = LabelTemplate.load(Path(__file__).resolve().parents[2] / "config" / "labels" / "stamp-60x40.zpl")
    fields = {"qr": "https://truyxuat.example.vn/01/08938603001013/10/MX_1/21/7K3Q9XH2WP?17=270528",
              "product_name": "Mè xừng Thông Hương 250g", "producer": "Cơ sở Thông Hương", "lot": "MX_1",
              "serial": "7K3Q9XH2WP", "gtin": "08938603001013", "gtin12": "893860300101",
              "production_date": "29/11/2026", "expiry_date": None}
    formats: dict[str, bytes] = {}
    assert expand_format(template.stored_format(), formats) == (None, [])
    merged, warnings = expand_format(template.recall(fields), formats)
    assert warnings == [] and merged is not None
    direct, recalled = render_labels(template.render(fields))[0], render_labels(merged)[0]
    assert recalled.texts == direct.texts and recalled.qr_data == direct.qr_data == [fields["qr"]]
    assert recalled.image.tobytes() == direct.image.tobytes()


@pytest.mark.parametrize("name", ["Mè xừng \\& Co", "Nước mắm \\\\& 500ml", "Trà \\(-)rau \\ má", "ends with \\"])
def test_a_name_with_backslashes_prints_exactly_as_configured(name: str) -> None:
    # The builder escapes the ^FB field's own escapes; the printer (and this renderer) read them after ^FH.
    from drivers.zebra.zpl import LabelTemplate

    template = LabelTemplate.load(TEMPLATE)
    fields = {"qr": QR_URI, "product_name": name, "producer": name, "lot": "MX2611A", "serial": "7K3Q9XH2WP",
              "gtin": "08938603001013", "gtin12": "893860300101", "production_date": "26/11/2025",
              "expiry_date": None}
    for zpl, formats in ((template.render(fields), {}), (template.recall(fields), {})):
        if b"^XF" in zpl:
            render_labels(template.stored_format(), formats=formats)
        label = render_labels(zpl, formats=formats)[0]
        assert label.texts[:2] == [name, name]
        for block in label.fields[1:3]:   # the product name and the producer: ^FB blocks, wrapped at spaces only
            assert " ".join(eval(block.detail.removeprefix("lines="))) == name  # noqa: S307 - our own repr


def test_fb_reads_its_escapes_after_the_hex_escapes() -> None:
    zpl = b"^XA^CI28^FO10,10^A0N,20,20^FB300,3,0,L^FH_^FDa_5C&b\\\\c\\(-)d^FS^XZ"
    label = render_labels(zpl)[0]
    assert label.texts == ["a\nb\\cd"]
    assert eval(label.fields[0].detail.removeprefix("lines=")) == ["a", "b\\cd"]  # noqa: S307 - our own repr


# --- fonts: what a real printer has, and the boxes it prints for the rest ------------------------------------------

FONT_FILE = Path(__file__).resolve().parents[2] / "config" / "fonts" / "VNSANS.TTF"


def text_label(font: str, text: str) -> bytes:
    return f"^XA^CI28^PW400^LL60^FO10,10{font}^FH_^FD{escape(text)}^FS^XZ".encode()


def test_the_resident_font_prints_a_box_for_each_vietnamese_letter_it_lacks() -> None:
    label = render_labels(text_label("^A0N,26,26", "Mè xừng Thông Hương"))[0]
    # è and ô are Latin-1, which the resident fonts have; ừ ư ơ are not.
    assert label.missing_glyphs == [("Mè xừng Thông Hương", "0", "ừươ")]
    assert any("no glyph for ừ ư ơ" in w for w in label.warnings)
    plain = render_labels(text_label("^A0N,26,26", "Me xung Thong Huong"))[0]
    assert plain.missing_glyphs == []
    # The box is drawn where the letter would be: the two labels differ in ink, and not only by a dot.
    diff = sum(a != b for a, b in zip(label.image.tobytes(), plain.image.tobytes()))
    assert diff > 10


def test_a_downloaded_truetype_font_prints_vietnamese() -> None:
    fonts = {"E:VNSANS.TTF": FONT_FILE.read_bytes()}
    label = render_labels(text_label("^A@N,26,26,E:VNSANS.TTF", "Mè xừng Thông Hương ₫"), fonts=fonts)[0]
    assert label.missing_glyphs == [] and label.fields[0].font == "E:VNSANS.TTF"
    assert label.texts == ["Mè xừng Thông Hương ₫"]


def test_a_font_the_printer_does_not_hold_prints_in_the_default_font() -> None:
    label = render_labels(text_label("^A@N,26,26,E:VNSANS.TTF", "Số/No"))[0]
    assert any("E:VNSANS.TTF is not on the printer: printed with font A" in w for w in label.warnings)
    assert label.missing_glyphs == [("Số/No", "A", "ố")]
    # ^CF sets that default font, as on a Zebra.
    zpl = text_label("^A@N,26,26,E:NOFONT.TTF", "Số").replace(b"^FO", b"^CF0,20^FO", 1)
    assert render_labels(zpl)[0].missing_glyphs == [("Số", "0", "ố")]


def test_cw_gives_a_letter_to_a_downloaded_font() -> None:
    fonts = {"E:VNSANS.TTF": FONT_FILE.read_bytes()}
    zpl = text_label("^AVN,26,26", "Hạt sen").replace(b"^FO", b"^CWV,E:VNSANS.TTF^FO", 1)
    assert render_labels(zpl, fonts=fonts)[0].missing_glyphs == []
    assert render_labels(zpl)[0].missing_glyphs == [("Hạt sen", "V", "ạ")]   # the font is not there: a box


def test_the_shipped_font_covers_every_vietnamese_letter() -> None:
    from drivers.zebra.render import downloaded_face

    face = downloaded_face("E:VNSANS.TTF", FONT_FILE.read_bytes())
    vowels = "aăâeêioôơuưyAĂÂEÊIOÔƠUƯY"
    tones = ["\u0300", "\u0301", "\u0303", "\u0309", "\u0323", ""]
    import unicodedata
    letters = {unicodedata.normalize("NFC", v + t) for v in vowels for t in tones} | set("đĐ₫")
    assert face.missing("".join(sorted(letters))) == ""


def test_every_text_field_of_the_template_prints_each_configured_product_without_a_box() -> None:
    # The station's own fields for each of the five products, on the real template, with the fonts the
    # configuration downloads: a field that would print a box on the printer fails here.
    import datetime as dt

    from drivers.zebra.zpl import LabelTemplate
    from station.config import DEFAULT_CONFIG, load_config, load_products
    from station.domain import Batch, Stamp, StampState
    from station.engine import label_fields
    from station.gs1 import digital_link

    config = load_config(DEFAULT_CONFIG)
    fonts = {name: config.resolve(path).read_bytes() for name, path in config.devices.printer.fonts.items()}
    template = LabelTemplate.load(config.resolve(config.devices.printer.template))
    assert template.fonts <= fonts.keys()
    products = load_products(config.resolve(config.products_file))
    assert len(products) == 5
    for product in products:
        batch = Batch(id=1, gtin=product.gtin, lot="MX2611A", production_date=dt.date(2026, 11, 26),
                      expiry_date=dt.date(2027, 5, 28))
        uri = digital_link(config.station.resolver, product.gtin, batch.lot, "7K3Q9XH2WP", batch.expiry_date)
        stamp = Stamp(id=None, gtin=product.gtin, serial="7K3Q9XH2WP", batch_id=1, state=StampState.ALLOCATED, uri=uri)
        fields = label_fields(product, batch, stamp)
        formats: dict[str, bytes] = {}
        render_labels(template.stored_format(), formats=formats, fonts=fonts)
        for zpl in (template.render(fields), template.recall(fields)):
            label = render_labels(zpl, formats=formats, fonts=fonts)[0]
            assert label.missing_glyphs == [], product.name
            assert product.name in label.texts and product.producer in label.texts
            assert {f.font for f in label.fields if f.kind == "text"} == {"E:VNSANS.TTF"}
