"""The ZPL builder, byte for byte: escaping, the stamp template, omitted lines and template errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.errors import DeviceError
from drivers.zebra.zpl import CANCEL_ALL, HOST_STATUS, HQES, LabelTemplate, TemplateError, escape_field

STAMP = Path(__file__).resolve().parents[2] / "config" / "labels" / "stamp-60x40.zpl"

FIELDS: dict[str, str | None] = {
    "qr": "https://id.gs1.org/01/08938512345673/21/A1B2C3D4?17=250601",
    "product_name": "Mè xừng Thông Hương",
    "producer": "HTX Mè xừng Huế",
    "lot": "L240601",
    "serial": "A1B2C3D4",
    "gtin": "08938512345673",
    "gtin12": "893851234567",
    "production_date": "01/06/2024",
    "expiry_date": "01/06/2025",
}

EXPECTED_STAMP = (
    b"^XA\n"
    b"^CI28\n"
    b"^PW480\n"
    b"^LL320\n"
    b"^LH0,0\n"
    b"^FO16,16^BQN,2,4^FH_^FDMA,https://id.gs1.org/01/08938512345673/21/A1B2C3D4?17=250601^FS\n"
    b"^FO216,14^A@N,26,26,E:VNSANS.TTF^FB256,2,0,L^FH_^FDM_C3_A8 x_E1_BB_ABng Th_C3_B4ng H_C6_B0_C6_A1ng^FS\n"
    b"^FO216,72^A@N,18,18,E:VNSANS.TTF^FB256,2,0,L^FH_^FDHTX M_C3_A8 x_E1_BB_ABng Hu_E1_BA_BF^FS\n"
    b"^FO216,116^A@N,22,22,E:VNSANS.TTF^FB264,2,0,L^FH_^FDL\xc3\xb4/Lot:_C2_A0L240601^FS\n"
    b"^FO216,164^A@N,22,22,E:VNSANS.TTF^FH_^FDNSX: 01/06/2024^FS\n"
    b"^FO216,190^A@N,22,22,E:VNSANS.TTF^FH_^FDHSD: 01/06/2025^FS\n"
    b"^FO224,222^A@N,22,18,E:VNSANS.TTF^FH_^FDS\xe1\xbb\x91/No: A1B2C3D4^FS\n"
    b"^FO28,216^BY2^BEN,68,Y,N^FH_^FD893851234567^FS\n"
    b"^XZ\n"
)


@pytest.fixture(scope="module")
def stamp() -> LabelTemplate:
    return LabelTemplate.load(STAMP)


def test_stamp_renders_exact_bytes(stamp: LabelTemplate) -> None:
    assert stamp.render(FIELDS) == EXPECTED_STAMP


def test_stamp_placeholders(stamp: LabelTemplate) -> None:
    assert stamp.placeholders == {
        "qr", "product_name", "producer", "lot", "serial", "gtin12", "production_date", "expiry_date",
    }


def test_comment_lines_are_not_sent(stamp: LabelTemplate) -> None:
    # The template's ^FX comments mention ^FH_^FD … ^FS, which a printer would execute.
    assert b"^FX" not in stamp.render(FIELDS)


def test_missing_expiry_drops_only_that_line(stamp: LabelTemplate) -> None:
    label = stamp.render({**FIELDS, "expiry_date": None})
    assert label == EXPECTED_STAMP.replace(b"^FO216,190^A@N,22,22,E:VNSANS.TTF^FH_^FDHSD: 01/06/2025^FS\n", b"")
    assert b"HSD" not in label


def test_missing_key_is_an_error(stamp: LabelTemplate) -> None:
    fields = {k: v for k, v in FIELDS.items() if k not in ("lot", "serial")}
    with pytest.raises(TemplateError, match="no value for lot, serial"):
        stamp.render(fields)


def test_non_text_value_is_an_error(stamp: LabelTemplate) -> None:
    with pytest.raises(TemplateError, match="field lot must be text, got int"):
        stamp.render({**FIELDS, "lot": 42})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain ASCII 123", "plain ASCII 123"),
        ("a^b", "a_5Eb"),
        ("a~b", "a_7Eb"),
        ("a_b", "a_5Fb"),
        ("tab\there", "tab_09here"),
        ("cr\r\nlf", "cr_0D_0Alf"),
        ("del\x7f", "del_7F"),
        ("Mè xừng Thông Hương", "M_C3_A8 x_E1_BB_ABng Th_C3_B4ng H_C6_B0_C6_A1ng"),
        ("Đà Nẵng", "_C4_90_C3_A0 N_E1_BA_B5ng"),
        ("", ""),
    ],
)
def test_escape_field(value: str, escaped: str) -> None:
    assert escape_field(value) == escaped


def test_escape_field_other_indicator() -> None:
    # With another indicator, "_" is plain data and the indicator itself is escaped.
    assert escape_field("a_b#c^", indicator="#") == "a_b#23c#5E"


@pytest.mark.parametrize("indicator", ["^", "~", "", "ab", "\x01"])
def test_escape_field_rejects_bad_indicator(indicator: str) -> None:
    with pytest.raises(TemplateError, match="indicator"):
        escape_field("x", indicator=indicator)


def test_batch_name_cannot_inject_commands(stamp: LabelTemplate) -> None:
    label = stamp.render({**FIELDS, "product_name": "Lô 1^XZ~JA^XA^FDpwned"})
    assert b"^FDL_C3_B4 1_5EXZ_7EJA_5EXA_5EFDpwned^FS\n" in label
    # Exactly one format, and no control command other than what the template wrote.
    assert label.count(b"^XA") == 1
    assert label.count(b"^XZ") == 1
    assert b"~" not in label


def test_rendered_label_is_ascii_except_template_text(stamp: LabelTemplate) -> None:
    label = stamp.render(FIELDS)
    non_ascii = bytes(b for b in label if b >= 0x80)
    assert non_ascii == "ôố".encode()  # only the template's own "Lô/Lot" and "Số/No"


def test_constants() -> None:
    assert (CANCEL_ALL, HOST_STATUS, HQES) == (b"~JA", b"~HS", b"~HQES")
    assert issubclass(TemplateError, DeviceError)


def template(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_placeholder_without_fh_names_file_and_line() -> None:
    text = template("^XA", "^CI28", "^FO0,0^FDok^FS", "^FO0,0^A0N,20,20^FD${lot}^FS", "^XZ")
    with pytest.raises(TemplateError, match=r"^lot\.zpl:4: placeholder \$\{lot\} is in a field without \^FH"):
        LabelTemplate.from_text(text, "lot.zpl")


def test_fh_of_an_earlier_field_does_not_count() -> None:
    text = template("^XA", "^CI28", "^FH_^FDa^FS^FO0,0^FD${lot}^FS", "^XZ")
    with pytest.raises(TemplateError, match=r"t\.zpl:3: .*without \^FH"):
        LabelTemplate.from_text(text, "t.zpl")


def test_placeholder_outside_field_data() -> None:
    text = template("^XA", "^CI28", "^FO${x},0^FH_^FDa^FS", "^XZ")
    with pytest.raises(TemplateError, match=r"t\.zpl:3: placeholder \$\{x\} is not inside"):
        LabelTemplate.from_text(text, "t.zpl")


def test_field_must_close_on_the_same_line() -> None:
    text = template("^XA", "^CI28", "^FO0,0^FH_^FD${lot}", "^FS", "^XZ")
    with pytest.raises(TemplateError, match=r"t\.zpl:3: .*must end with \^FS on the same line"):
        LabelTemplate.from_text(text, "t.zpl")


def test_malformed_placeholder() -> None:
    text = template("^XA", "^CI28", "^FH_^FD${lot number}^FS", "^XZ")
    with pytest.raises(TemplateError, match=r"t\.zpl:3: malformed placeholder"):
        LabelTemplate.from_text(text, "t.zpl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (template("^CI28", "^FH_^FDx^FS", "^XZ"), "must start with ^XA"),
        (template("^XA", "^CI28", "^FH_^FDx^FS"), "must end with ^XZ"),
        (template("^XA", "^FH_^FDx^FS", "^XZ"), "^CI28"),
        ("", "must start with ^XA"),
    ],
)
def test_template_frame(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=r"^t\.zpl: .*" + re.escape(message)):
        LabelTemplate.from_text(text, "t.zpl")


def test_field_indicator_from_template_is_used() -> None:
    tpl = LabelTemplate.from_text(template("^XA", "^CI28", "^FO0,0^FH#^FD${x}^FS", "^XZ"), "t.zpl")
    assert tpl.render({"x": "a_b#ô"}) == b"^XA\n^CI28\n^FO0,0^FH#^FDa_b#23#C3#B4^FS\n^XZ\n"


def test_fh_without_indicator_defaults_to_underscore() -> None:
    tpl = LabelTemplate.from_text(template("^XA", "^CI28", "^FH^FD${x}^FS", "^XZ"), "t.zpl")
    assert tpl.render({"x": "_"}) == b"^XA\n^CI28\n^FH^FD_5F^FS\n^XZ\n"


def test_load_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.zpl"
    with pytest.raises(TemplateError, match="nope.zpl: cannot read label template"):
        LabelTemplate.load(missing)


def test_extra_fields_are_ignored() -> None:
    tpl = LabelTemplate.from_text(template("^XA", "^CI28", "^FH_^FD${x}^FS", "^XZ"), "t.zpl")
    assert tpl.render({"x": "1", "unused": "2"}) == b"^XA\n^CI28\n^FH_^FD1^FS\n^XZ\n"


def test_two_placeholders_on_one_line_drop_together() -> None:
    tpl = LabelTemplate.from_text(
        template("^XA", "^CI28", "^FH_^FD${lot} / ${serial}^FS", "^FH_^FDend^FS", "^XZ"), "t.zpl"
    )
    assert tpl.render({"lot": "L1", "serial": "S~1"}) == (
        b"^XA\n^CI28\n^FH_^FDL1 / S_7E1^FS\n^FH_^FDend^FS\n^XZ\n"
    )
    assert tpl.render({"lot": "L1", "serial": None}) == b"^XA\n^CI28\n^FH_^FDend^FS\n^XZ\n"


def test_value_longer_than_a_field_holds() -> None:
    tpl = LabelTemplate.from_text(template("^XA", "^CI28", "^FH_^FD${x}^FS", "^XZ"), "t.zpl")
    with pytest.raises(TemplateError, match="more than the 3072"):
        tpl.render({"x": "ô" * 600})


# --- stored formats (^DF once, ^XF with ^FN fields per label) ------------------------------------------------


def test_stored_format_replaces_each_variable_field_with_a_field_number() -> None:
    from pathlib import Path

    template = LabelTemplate.load(Path(__file__).resolve().parents[2] / "config" / "labels" / "stamp-60x40.zpl")
    stored = template.stored_format().decode()
    assert stored.startswith(f"^XA^DF{template.format_name}^FS\n")
    assert "${" not in stored and "^FD" not in stored
    assert [f"^FN{n}^FS" in stored for n in range(1, 9)] == [True] * 8
    assert "^FO16,16^BQN,2,4^FN1^FS" in stored


def test_recall_sends_only_the_escaped_variable_data() -> None:
    template = LabelTemplate.from_text(
        "^XA\n^CI28\n^FO10,10^A0N,20,20^FH_^FDLot: ${lot}^FS\n^FO10,40^A0N,20,20^FH_^FDHSD: ${expiry}^FS\n"
        "^FO10,70^BQN,2,4^FH_^FDMA,${qr}^FS\n^XZ", "t")
    recall = template.recall({"lot": "A_1^", "expiry": None, "qr": "https://x/01/1"})
    assert recall == (
        f"^XA^CI28^XF{template.format_name}^FS\n"
        "^FN1^FH_^FDLot: A_5F1_5E^FS\n"
        "^FN3^FH_^FDMA,https://x/01/1^FS\n"
        "^XZ\n"
    ).encode()


def test_an_edited_template_gets_a_new_format_name() -> None:
    a = LabelTemplate.from_text("^XA\n^CI28\n^FO1,1^FH_^FD${x}^FS\n^XZ", "a")
    b = LabelTemplate.from_text("^XA\n^CI28\n^FO2,1^FH_^FD${x}^FS\n^XZ", "b")
    assert a.format_name != b.format_name
    assert a.format_name.startswith("R:ST") and a.format_name.endswith(".ZPL") and len(a.format_name) == 14


# --- ^FB escapes: \& would break the line, \\ would print one backslash -----------------------------------------


def test_a_backslash_in_a_block_field_is_doubled_so_it_prints_as_written(stamp: LabelTemplate) -> None:
    label = stamp.render({**FIELDS, "product_name": "Mè \\& Co \\\\ 1", "lot": "L1"})
    # product_name is a ^FB field: each backslash goes as \\, which the block reads as one backslash.
    assert b"^FB256,2,0,L^FH_^FDM_C3_A8 \\\\& Co \\\\\\\\ 1^FS\n" in label
    # The same text in a field without ^FB is sent as it is (nothing there reads backslashes).
    plain = LabelTemplate.from_text("^XA\n^CI28\n^FO0,0^A0N,20,20^FH_^FD${x}^FS\n^XZ", "t")
    assert plain.render({"x": "a\\&b"}) == b"^XA\n^CI28\n^FO0,0^A0N,20,20^FH_^FDa\\&b^FS\n^XZ\n"


def test_the_block_is_known_when_its_commands_stand_on_the_line_before() -> None:
    tpl = LabelTemplate.from_text("^XA\n^CI28\n^FO0,0^A0N,20,20^FB200,2,0,L\n^FH_^FD${x}^FS\n"
                                  "^FO0,40^FH_^FD${y}^FS\n^XZ", "t")
    assert tpl.render({"x": "a\\&b", "y": "c\\&d"}).splitlines()[3:5] == [b"^FH_^FDa\\\\&b^FS", b"^FO0,40^FH_^FDc\\&d^FS"]


def test_a_recalled_block_field_is_escaped_the_same_way(stamp: LabelTemplate) -> None:
    recall = stamp.recall({**FIELDS, "producer": "HTX \\& Co"})
    assert b"^FN3^FH_^FDHTX \\\\& Co^FS\n" in recall


@pytest.mark.parametrize(("indicator", "escaped"), [("_", "a\\\\b"), ("\\", "a\\5C\\5Cb")])
def test_escape_field_block_doubles_backslashes(indicator: str, escaped: str) -> None:
    assert escape_field("a\\b", indicator, block=True) == escaped


# --- the QR's room: a Digital Link must fit the template's QR area at a readable module size -----------------------

ISSUE_LOT_LINK = ("https://truyxuat.hue.example.vn/01/08938603001013/10/A%25B%25C%25D%25E%25F%25GHIJKLMN"
                  "/21/7K3Q9XH2WP?17=270528")


def test_the_stamp_template_declares_its_qr_area_and_holds_version_7(stamp: LabelTemplate) -> None:
    from drivers.zebra.zpl import QrField

    field = stamp.qr_field
    assert field == QrField(x=16, y=16, magnification=4, error="M", area=(0, 0, 212, 212), line=16)
    # 212 dots less 16 + 16 of quiet zone: 180 dots, 45 modules of 4 dots = version 7 (17 + 4 x 7).
    assert (field.max_modules, field.max_version) == (45, 7)
    assert field.readable(8) and field.module_mm(8) == 0.5
    fit = field.fit(ISSUE_LOT_LINK)       # the 20-character lot with 6 percent-encoded characters of the issue
    assert (fit.length, fit.version, fit.max_length, fit.fits) == (109, 7, 122, True)
    too_long = field.fit(ISSUE_LOT_LINK.replace("A%25B%25C%25D%25E%25F%25GHIJKLMN", "%25" * 20))
    assert (too_long.version, too_long.fits) == (8, False)
    assert not field.fit("x" * 3000).fits and field.fit("x" * 3000).version is None


@pytest.mark.parametrize(("magnification", "dpmm", "readable"), [(4, 8, True), (3, 8, False), (4, 12, False),
                                                                 (5, 12, True), (2, 6, False)])
def test_a_readable_module_is_at_least_0_396_mm(magnification: int, dpmm: int, readable: bool) -> None:
    from drivers.zebra.zpl import QrField

    assert QrField(16, 16, magnification, "M", (0, 0, 200, 200), 1).readable(dpmm) is readable


def test_a_qr_without_its_quiet_zone_inside_the_area_has_no_room() -> None:
    text = "^XA\n^FX QR area 0,0,200,200\n^CI28\n^FO8,16^BQN,2,4^FH_^FDQA,${qr}^FS\n^XZ"
    field = LabelTemplate.from_text(text, "t").qr_field
    assert field is not None and field.error == "Q" and field.area == (0, 0, 200, 200)
    assert field.max_modules == 0 and not field.fit("https://x.example/01/1").fits
    assert LabelTemplate.from_text("^XA\n^CI28\n^FO1,1^FH_^FD${x}^FS\n^XZ", "t").qr_field is None
