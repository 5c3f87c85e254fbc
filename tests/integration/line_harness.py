"""A whole simulated line for end-to-end tests: printer, verification scanner and the real central ingest (on a
SQLite file), plus a configuration file that points a station at them (as a technician would), in a temporary folder."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.printer import PrinterSimulator
from simulators.scanner import ScannerSimulator
from station.config import DEFAULT_CONFIG, StationConfig, dump_yaml, load_config
from tests.integration.central_fixtures import Central
from tests.integration.mqtt_fixtures import unique


@dataclass
class SimLine:
    """The simulated devices and the configuration file a station under test reads."""

    folder: Path
    broker_url: str
    printer: PrinterSimulator
    scanner: ScannerSimulator
    central: Central
    prefix: str
    config_path: Path
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> StationConfig:
        return load_config(self.config_path)

    @property
    def db_path(self) -> Path:
        return self.folder / "station.db"

    def stamp_states(self) -> dict[str, int]:
        """Counts by state straight from the SQLite file (what survives a crash), read without the Store."""
        if not self.db_path.exists():
            return {}
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            try:
                return dict(conn.execute("SELECT state, count(*) FROM stamps GROUP BY state").fetchall())
            except sqlite3.OperationalError:
                return {}

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            return conn.execute(sql, params).fetchall()

    def central_events(self) -> list[dict[str, Any]]:
        return self.central.events()


def write_config(folder: Path, printer_url: str, scanner_url: str, broker_url: str, prefix: str,
                 overrides: dict[str, Any] | None = None) -> Path:
    """A station.yaml beside copies of the shipped template and product list, pointing at the given devices."""
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    shipped = DEFAULT_CONFIG.parent
    (folder / "labels" / "stamp-60x40.zpl").write_bytes((shipped / "labels" / "stamp-60x40.zpl").read_bytes())
    (folder / "fonts").mkdir(exist_ok=True)
    (folder / "fonts" / "VNSANS.TTF").write_bytes((shipped / "fonts" / "VNSANS.TTF").read_bytes())
    (folder / "products.yaml").write_bytes((shipped / "products.yaml").read_bytes())
    data: dict[str, Any] = {
        "version": 1,
        "station": {"site": "test-site", "id": unique("line")[:30]},
        "database": {"path": str(folder / "station.db")},
        "devices": {
            "printer": {"url": printer_url, "status_interval_s": 0.1, "status_timeout_s": 0.3},
            "verifier": {"url": scanner_url},
        },
        "mqtt": {"url": broker_url, "prefix": prefix, "ack_timeout_s": 5, "retry_initial_s": 0.2,
                 "retry_max_s": 2, "status_interval_s": 1},
        "line": {"verify_timeout_s": 2.0, "print_ahead": 1, "max_consecutive_failures": 5},
    }
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = folder / "station.yaml"
    path.write_text(dump_yaml(data), encoding="utf-8")
    return path


def sim_line(folder: Path, broker_url: str, overrides: dict[str, Any] | None = None, *, read_delay: float = 0.01,
             seed: int = 7) -> Iterator[SimLine]:
    """Start the simulators and yield the line; everything is stopped afterwards."""
    prefix = unique("t")
    printer = PrinterSimulator(port=0).start()
    scanner = ScannerSimulator(link=str(folder / "scanner"), read_delay=read_delay, seed=seed).start()
    printer.add_listener(scanner.on_label)
    central = Central(broker_url, prefix, f"sqlite:///{folder / 'central.db'}").start()
    config_path = write_config(folder, printer.url, f"serial://{folder / 'scanner'}", broker_url, prefix, overrides)
    line = SimLine(folder, broker_url, printer, scanner, central, prefix, config_path, overrides or {})
    try:
        yield line
    finally:
        central.close()
        scanner.stop()
        printer.stop()
