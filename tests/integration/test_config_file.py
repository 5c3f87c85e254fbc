"""Saving the configuration from the technician's screen (app.config_file), on real files: only the changed keys
are written, a bad value is refused naming the real file and leaves it as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config_file import change_detail, config_value, save_config
from station.config import load_config
from station.errors import ConfigError
from tests.integration.line_harness import write_config


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = write_config(tmp_path, "tcp://127.0.0.1:9100", "serial:///dev/ttyUSB0?baud=115200",
                        "mqtt://127.0.0.1:1883", "test/prefix")
    path.write_text("# the technician's own note\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_a_bad_value_is_refused_and_the_file_kept(config_path: Path) -> None:
    before = config_path.read_bytes()
    with pytest.raises(ConfigError, match="devices.printer.url") as refused:
        save_config(config_path, load_config(config_path), {"devices.printer.url": "tcp://printer"})
    assert str(config_path) in str(refused.value) and "missing port" in str(refused.value)
    assert config_path.read_bytes() == before
    assert not list(config_path.parent.glob(f".{config_path.name}.*"))     # no temporary file left behind


def test_only_the_changed_keys_are_written(config_path: Path) -> None:
    current = load_config(config_path)
    before = config_path.read_text(encoding="utf-8")
    values = {"devices.printer.url": "tcp://127.0.0.1:9999", "line.verify_timeout_s": 2.0,
              "mqtt.url": config_value(current, "mqtt.url")}
    new, changed = save_config(config_path, current, values)
    assert changed == ["devices.printer.url"]
    assert new.devices.printer.url == "tcp://127.0.0.1:9999" and load_config(config_path).line.verify_timeout_s == 2.0
    assert config_path.read_text(encoding="utf-8").startswith("# the technician's own note\n")
    assert config_path.with_name(config_path.name + ".bak").read_text(encoding="utf-8") == before
    assert save_config(config_path, new, values) == (new, [])                # nothing changed: nothing written


def test_the_audit_detail_names_secrets_only_as_changed() -> None:
    values = {"mqtt.url": "mqtt://user:secret@broker:1883", "mqtt.password": "hunter2", "technician.pin_hash": "x"}
    detail = change_detail(values, ["mqtt.url", "mqtt.password", "technician.pin_hash"])
    assert "secret" not in detail and "hunter2" not in detail
    assert detail.endswith(", mqtt.password changed, technician.pin_hash changed")
