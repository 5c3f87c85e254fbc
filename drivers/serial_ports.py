"""The serial ports on this machine, for the technician to choose the scanner's or the printer's from."""

from __future__ import annotations

import os
from pathlib import Path

from serial.tools import list_ports

BY_ID = Path("/dev/serial/by-id")


def discover_ports(by_id: Path = BY_ID) -> list[tuple[str, str]]:
    """(device, description) of the serial ports on this machine, the stable names in `by_id` (each → the device it
    points to) included: a USB adapter's /dev/ttyUSBn changes with the order they are plugged in, its by-id name not."""
    found = [(p.device, " · ".join(x for x in (p.description, p.manufacturer, p.serial_number) if x and x != "n/a"))
             for p in list_ports.comports()]
    if by_id.is_dir():
        found += [(str(link), f"→ {os.path.realpath(link)}") for link in sorted(by_id.iterdir())]
    return found


__all__ = ["discover_ports"]
