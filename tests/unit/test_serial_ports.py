"""The serial ports the technician chooses from (drivers.serial_ports): the stable /dev/serial/by-id names too."""

from __future__ import annotations

import os
from pathlib import Path

from drivers.serial_ports import discover_ports


def test_stable_names_point_to_their_device(tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (tmp_path / "ttyUSB7").touch()
    (by_id / "usb-Honeywell_1900-if00").symlink_to(tmp_path / "ttyUSB7")
    found = discover_ports(by_id)
    assert (str(by_id / "usb-Honeywell_1900-if00"), f"→ {os.path.realpath(tmp_path / 'ttyUSB7')}") in found


def test_no_by_id_folder_lists_the_ports_alone(tmp_path: Path) -> None:
    assert all(not device.startswith(str(tmp_path)) for device, _ in discover_ports(tmp_path / "absent"))
