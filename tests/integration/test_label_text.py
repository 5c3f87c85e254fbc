"""Every text of the stamp prints whole: the station measures each text field in the font it downloads and refuses
a batch whose product name, producer, lot or widest serial would run off the label (issue 9, item 4's text side).

The printer simulator draws what a Zebra draws (a ^FB block's extra lines on top of its last line, text past ^PW
cut off), so these tests read what is on the printed label, not what the station meant to print."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from app.runtime import RunOptions, Station
from station.errors import ConfigError, LabelDoesNotFit, LabelTextTooLong, LabelTextUnprintable
from tests.integration.line_harness import SimLine, sim_line
from tests.integration.mqtt_fixtures import broker_url  # noqa: F401  (fixture)

LONG_NAME = "Tinh dầu tràm Lộc Thủy nguyên chất loại đặc biệt xuất khẩu 50ml"


@pytest.fixture
def line(tmp_path: Path, broker_url: str, request: pytest.FixtureRequest) -> Iterator[SimLine]:  # noqa: F811
    marker = request.node.get_closest_marker("line")
    yield from sim_line(tmp_path, broker_url, marker.kwargs.get("overrides", {}) if marker else {})


@pytest.fixture
def station(line: SimLine) -> Iterator[Station]:
    station = Station(line.config(), RunOptions(auto_resume=True))
    station.start()
    yield station
    station.stop()


def lot_lines(label) -> list[str]:  # noqa: ANN001 - the simulator's PrintedLabel
    """The lines the lot's ^FB block printed, as the renderer wrapped them."""
    field = next(f for f in label.rendered.fields if f.kind == "text" and f.data.startswith("Lô/Lot:"))
    return eval(field.detail.removeprefix("lines="))  # noqa: S307 - the renderer's own repr


@pytest.mark.parametrize("lot", ["WWWWWWWWWWWWWWWWWWWW", "A%B%C%D%E%F%GHIJKLMN", "L261203"])
def test_a_gs1_lot_of_up_to_20_characters_prints_whole_on_two_lines_at_most(line: SimLine, station: Station,
                                                                          lot: str) -> None:
    # W is the widest letter of the font: 20 of them are the widest lot GS1 allows.
    batch = station.open_batch(station.product(None), lot)
    station.engine.start(batch.id, 2)
    assert station.engine.wait(60), "the run did not finish in time"
    assert station.engine.summary.activated == 2
    for label in line.printer.labels:
        lines = lot_lines(label)
        assert len(lines) <= 2 and "".join(lines) == f"Lô/Lot:\u00a0{lot}", lines
        assert not [w for w in label.rendered.warnings if "overprinted" in w], label.rendered.warnings
        assert label.missing_glyphs == []


def test_a_product_name_that_needs_more_lines_than_its_block_is_refused_with_the_figures(line: SimLine, tmp_path: Path) -> None:
    products = tmp_path / "products.yaml"
    yaml = YAML()
    data = yaml.load(products.read_text(encoding="utf-8"))
    data["products"][0]["name"] = LONG_NAME
    yaml.dump(data, products)
    station = Station(line.config(), RunOptions(auto_resume=True))
    try:
        product = station.product(None)
        with pytest.raises(LabelTextTooLong, match=r"product_name '.*xuất khẩu 50ml' wraps to 4 lines, and its text "
                           r"block \(line 17 of .*stamp-60x40.zpl\) has 2: a Zebra prints the rest on top of the last "
                           r"line\. Shorten it in the product list") as refused:
            station.open_batch(product, "L261203")
        assert isinstance(refused.value, LabelDoesNotFit)
        assert (refused.value.field, refused.value.needs, refused.value.room, refused.value.unit) == \
            ("product_name", 4, 2, "lines")
        assert station.store.find_batch(product.gtin, "L261203") is None
        # The other products still make batches.
        other = station.products[1]
        assert station.open_batch(other, "L261203").lot == "L261203"
    finally:
        station.store.close()
    assert line.printer.printed_count == 0


def test_a_producer_with_letters_the_label_font_lacks_is_refused_naming_them(line: SimLine, tmp_path: Path) -> None:
    products = tmp_path / "products.yaml"
    yaml = YAML()
    data = yaml.load(products.read_text(encoding="utf-8"))
    data["products"][0]["producer"] = "Trà Huế 順化 ☕"
    yaml.dump(data, products)
    station = Station(line.config(), RunOptions(auto_resume=True))
    try:
        product = station.product(None)
        with pytest.raises(LabelTextUnprintable, match=r"producer 'Trà Huế 順化 ☕' holds 順 化 ☕, which the label's "
                           r"font E:VNSANS.TTF has no glyph for \(line 18 of .*\): they would print as boxes") as refused:
            station.open_batch(product, "L261203")
        assert refused.value.missing == "順化☕"
        assert station.store.find_batch(product.gtin, "L261203") is None
    finally:
        station.store.close()


@pytest.mark.line(overrides={"line.serial_length": 16})
def test_a_serial_length_whose_widest_serial_runs_off_the_label_is_refused_at_start(line: SimLine) -> None:
    with pytest.raises(ConfigError, match=r"line.serial_length \(16\): serial 'Số/No: W{16}' prints \d+ dots wide "
                       r"and only 256 are left to the label's edge \(\^PW\) from x=224"):
        Station(line.config())
