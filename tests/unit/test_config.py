"""Configuration: every shipped file loads, and every mistake is named with its file and key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from station.config import DEFAULT_CONFIG, StationConfig, load_config, load_products
from station.errors import ConfigError

CONFIG_DIR = DEFAULT_CONFIG.parent


def write(tmp_path: Path, text: str, name: str = "station.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    (tmp_path / "labels").mkdir(exist_ok=True)
    (tmp_path / "labels" / "stamp-60x40.zpl").write_text((CONFIG_DIR / "labels" / "stamp-60x40.zpl").read_text())
    (tmp_path / "fonts").mkdir(exist_ok=True)
    (tmp_path / "fonts" / "VNSANS.TTF").write_bytes((CONFIG_DIR / "fonts" / "VNSANS.TTF").read_bytes())
    (tmp_path / "products.yaml").write_text((CONFIG_DIR / "products.yaml").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    return path


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_yaml_file_loads(path: Path) -> None:
    if path.name.startswith("products"):
        products = load_products(path)
        assert len(products) == 5
    else:
        config = load_config(path)
        assert config.version == 1
        assert load_products(config.resolve(config.products_file))


def test_default_config_points_at_the_simulators() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert config.devices.printer.url == "tcp://127.0.0.1:9100"
    assert config.devices.verifier.url.startswith("serial://")
    assert config.topic("events") == "truyxuat/hue-01/line-1/events"
    assert config.mqtt_client_id == "hue-01-line-1"


def test_demo_products_carry_valid_gtins_and_vietnamese_names() -> None:
    products = load_products(CONFIG_DIR / "products.yaml")
    assert [p.gtin for p in products][0] == "08938603001013"
    assert products[0].name == "Mè xừng Thông Hương 250g"
    assert products[0].gtin13 == "8938603001013"


def test_demo_products_carry_what_the_trace_page_shows() -> None:
    # Circular 02/2024 fields (issue 10): every demo product has a producer address and a diary of stages, in the
    # order they happened.
    for product in load_products(CONFIG_DIR / "products.yaml"):
        assert product.producer_id and product.producer_address, product.gtin
        assert len(product.diary) >= 3 and product.diary[-1].stage == "packing", product.gtin
        assert [s.days_before for s in product.diary] == sorted((s.days_before for s in product.diary), reverse=True)
        assert all(s.place and s.detail for s in product.diary), product.gtin
    first = load_products(CONFIG_DIR / "products.yaml")[0]
    assert (first.diary[0].stage, first.diary[0].days_before, first.diary[0].time) == ("raw_material", 9,
                                                                                      dt.time(7, 0))


@pytest.mark.parametrize(("entry", "error"), [
    ("image_url: http://example.vn/a.jpg", r"products\.0\.image_url"),
    ("diary: [{stage: Thu hoạch}]", r"products\.0\.diary\.0\.stage"),
    ("diary: [{stage: harvest, time: '25:00'}]", r"products\.0\.diary\.0\.time"),
    ("diary: [{stage: harvest, days_before: -1}]", r"products\.0\.diary\.0\.days_before"),
    ("diary: [{stage: harvest, biz_step: harvesting}]", r"products\.0\.diary\.0\.biz_step: 'harvesting' is not a CBV"),
    ("producer_id: Thông Hương", r"products\.0\.producer_id"),
])
def test_the_trace_pages_product_fields_are_checked(tmp_path: Path, entry: str, error: str) -> None:
    path = tmp_path / "products.yaml"
    path.write_text(f'products:\n  - gtin: "08938603001013"\n    name: X\n    producer: Y\n    {entry}\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=error):
        load_products(path)


def test_unknown_key_is_named_with_file_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ndevices:\n  printer:\n    ulr: tcp://10.0.0.5:9100\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "devices.printer.ulr: unknown key" in str(err.value)


def test_bad_url_says_what_is_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "devices:\n  printer:\n    url: tcp://10.0.0.5\n")
    with pytest.raises(ConfigError, match=r"devices\.printer\.url: .*missing port"):
        load_config(path)


def test_unknown_scheme_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "devices:\n  verifier:\n    url: usb://scanner\n")
    with pytest.raises(ConfigError, match=r"devices\.verifier\.url: .*scheme must be one of"):
        load_config(path)


def test_a_keyboard_wedge_scanner_is_a_verifier_by_its_event_device(tmp_path: Path) -> None:
    path = write(tmp_path, "devices:\n  verifier:\n    url: hid:///dev/input/by-id/usb-Scanner-event-kbd\n")
    config = load_config(path)
    assert config.devices.verifier.url.startswith("hid:///dev/input/") and not config.devices.verifier.is_camera
    bad = write(tmp_path, "devices:\n  verifier:\n    url: hid://scanner\n")
    with pytest.raises(ConfigError, match=r"devices\.verifier\.url: .*expected hid:///dev/input/by-id/"):
        load_config(bad)


def test_number_out_of_bounds(tmp_path: Path) -> None:
    path = write(tmp_path, "line:\n  verify_timeout_s: -1\n")
    with pytest.raises(ConfigError, match=r"line\.verify_timeout_s: Input should be greater than 0"):
        load_config(path)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "station:\n  site: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_config(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")


def test_missing_template_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "devices:\n  printer:\n    template: labels/none.zpl\n")
    with pytest.raises(ConfigError, match=r"devices\.printer\.template: file .*none\.zpl not found"):
        load_config(path)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "devices:\n  printer:\n    url: tcp://127.0.0.1:9100\n")
    monkeypatch.setenv("STATION_DEVICES__PRINTER__URL", "tcp://192.168.5.20:9100")
    monkeypatch.setenv("STATION_MQTT__PREFIX", "hue")
    config = load_config(path)
    assert config.devices.printer.url == "tcp://192.168.5.20:9100"
    assert config.mqtt.prefix == "hue"


def test_bad_environment_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "version: 1\n")
    monkeypatch.setenv("STATION_LINE__PRINT_AHEAD", "many")
    with pytest.raises(ConfigError, match=r"environment variable STATION_LINE__PRINT_AHEAD: line\.print_ahead"):
        load_config(path)


def test_tls_needs_mqtts(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt:\n  url: mqtt://broker:1883\n  tls:\n    ca: ca.pem\n")
    with pytest.raises(ConfigError, match="mqtt.tls is set but mqtt.url is not mqtts://"):
        load_config(path)


def test_product_with_wrong_check_digit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "products.yaml"
    path.write_text('products:\n  - gtin: "08938603001014"\n    name: X\n    producer: Y\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"products\.0\.gtin: .*check digit"):
        load_products(path)


def test_product_texts_are_read_in_one_spelling_and_control_characters_are_refused(tmp_path: Path) -> None:
    import unicodedata

    path = tmp_path / "products.yaml"
    decomposed = unicodedata.normalize("NFD", "Mè xừng Thông Hương")     # as some editors save it
    assert len(decomposed) > len("Mè xừng Thông Hương")
    path.write_text(f'products:\n  - {{gtin: "08938603001013", name: "{decomposed} ", producer: "Cơ sở Huế"}}\n',
                    encoding="utf-8")
    assert load_products(path)[0].name == "Mè xừng Thông Hương"
    path.write_text('products:\n  - {gtin: "08938603001013", name: "Mè\\txừng", producer: P}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"products\.0\.name: .*control characters \(U\+0009\)"):
        load_products(path)


def test_duplicate_product_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "products.yaml"
    path.write_text('products:\n  - {gtin: "08938603001013", name: A, producer: P}\n'
                    '  - {gtin: "8938603001013", name: B, producer: P}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"products\.1\.gtin: 08938603001013 is already listed as products\.0"):
        load_products(path)


def test_defaults_need_no_file() -> None:
    assert StationConfig().line.print_ahead == 1


def test_editing_the_file_keeps_its_comments_and_layout() -> None:
    from station.config import DEFAULT_CONFIG, edit_config_text

    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    edited = edit_config_text(text, {"line.print_ahead": 4, "devices.printer.url": "tcp://10.0.0.5:9100",
                                     "ui.language": "en", "mqtt.tls.ca": Path("certs/ca.pem")})
    before, after = text.splitlines(), edited.splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    # Only the two changed lines differ (comments kept on them), and the new section comes at the end of mqtt.
    assert any("print_ahead: 4" in b for _, b in changed)
    assert any("url: tcp://10.0.0.5:9100" in b and "# Zebra raw port" in b for _, b in changed)
    assert sum(1 for line in after if line.lstrip().startswith("#")) == sum(
        1 for line in before if line.lstrip().startswith("#"))
    assert "ca: certs/ca.pem" in edited and "pin_hash: null" in edited
    reloaded = yaml.safe_load(edited)
    assert reloaded["line"]["print_ahead"] == 4 and reloaded["ui"]["language"] == "en"
    assert reloaded["preprinted"]["code_shapes"] == yaml.safe_load(text)["preprinted"]["code_shapes"]


def test_editing_refuses_broken_files_and_keys_through_values() -> None:
    from station.config import edit_config_text

    with pytest.raises(ConfigError, match="not valid YAML"):
        edit_config_text("line: [1,\n", {"line.print_ahead": 2})
    with pytest.raises(ConfigError, match="line.print_ahead is not a section"):
        edit_config_text("line:\n  print_ahead: 1\n", {"line.print_ahead.x": 2})
    assert edit_config_text("", {"line.print_ahead": 2}) == "line:\n  print_ahead: 2\n"


def test_shift_starts_are_times_of_day(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'ui:\n  shift_starts: ["18:30", "07:00"]\n'))
    assert config.ui.shift_starts == ("07:00", "18:30") and config.ui.shift_start_times == ((7, 0), (18, 30))
    for bad, message in (('["7:00"]', "not a time of day as HH:MM"), ('["25:00"]', "not a time of day"),
                         ('["06:00", "06:00"]', "given twice"), ("[]", "at least 1")):
        with pytest.raises(ConfigError, match=r"ui\.shift_starts: .*" + message):
            load_config(write(tmp_path, f"ui:\n  shift_starts: {bad}\n"))
