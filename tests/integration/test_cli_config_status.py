"""The `station` command as a technician runs it, in a process of its own: exit codes, what `status` reads, and
what `config check --show` prints. Devices are addresses nobody answers on: these commands must not need them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from station.config import load_config, load_products
from station.domain import Batch
from station.store import Store
from tests.integration.line_harness import write_config
from tests.integration.mqtt_fixtures import free_port

ROOT = Path(__file__).resolve().parents[2]


def station(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration whose devices nobody serves: a run that opened them would fail, or wait for them."""
    return write_config(tmp_path, f"tcp://127.0.0.1:{free_port()}", f"serial://{tmp_path / 'no-scanner'}",
                        f"mqtt://127.0.0.1:{free_port()}", "cli")


# -- item 18: a lot refused at start is a configuration error -------------------------------------------------------


@pytest.mark.parametrize("lot, reason", [("MX 2611", "a space is not allowed"), ("L" * 21, "at most 20")])
def test_a_lot_refused_at_start_exits_2_naming_the_lot_and_opens_no_device(
        config: Path, lot: str, reason: str) -> None:
    done = station("run", "--headless", "--config", str(config), "--lot", lot, "--count", "1")
    assert done.returncode == 2, done.stderr
    assert "configuration error" in done.stderr and f"lot {lot!r}" in done.stderr and reason in done.stderr
    assert "printer" not in done.stdout, "the run started the line before checking the lot"


def test_a_closed_batch_and_an_unknown_product_exit_2(config: Path) -> None:
    cfg = load_config(config)
    gtin = load_products(cfg.resolve(cfg.products_file))[0].gtin
    with Store(cfg.database.path) as store:
        store.sync_products(load_products(cfg.resolve(cfg.products_file)))
        batch = store.create_batch(Batch(None, gtin, "MX2611Z", dt.date(2026, 11, 29), dt.date(2027, 5, 28)))
        store.close_batch(batch.id)  # type: ignore[arg-type]
    closed = station("run", "--headless", "--config", str(config), "--lot", "MX2611Z", "--count", "1")
    assert closed.returncode == 2, closed.stderr
    assert "MX2611Z" in closed.stderr and "is closed" in closed.stderr
    unknown = station("run", "--headless", "--config", str(config), "--product", "08938603009996", "--count", "1")
    assert unknown.returncode == 2, unknown.stderr
    assert "08938603009996 is not in the product list" in unknown.stderr


# -- item 17: a read command never creates a database ---------------------------------------------------------------


@pytest.fixture
def relative_config(tmp_path: Path) -> Path:
    """The shipped layout: database.path relative to the working directory (var/station.db)."""
    return write_config(tmp_path / "station", f"tcp://127.0.0.1:{free_port()}", "serial:///nonexistent",
                        "mqtt://127.0.0.1:1883", "cli", {"database.path": "var/station.db"})


@pytest.mark.parametrize("command", [["status"], ["rolls", "list"], ["rolls", "refusals"],
                                     ["rolls", "report", "R1", "--out", "reports"]])
def test_a_read_command_in_another_folder_creates_no_database_and_names_the_file_it_looked_for(
        relative_config: Path, tmp_path: Path, command: list[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = station(*command, "--config", str(relative_config), cwd=elsewhere)
    assert done.returncode == 1, done.stdout + done.stderr
    looked_for = elsewhere / "var" / "station.db"
    assert f"no station database at {looked_for}" in done.stderr
    assert f"relative to the working directory {elsewhere}" in done.stderr and str(relative_config) in done.stderr
    assert list(elsewhere.iterdir()) == [], "a read command created files"
    assert "stamps" not in done.stdout


def test_status_in_the_station_folder_reads_its_database_and_names_it(relative_config: Path) -> None:
    folder = relative_config.parent
    Store(folder / "var" / "station.db").close()
    done = station("status", "--config", str(relative_config), cwd=folder)
    assert done.returncode == 0, done.stderr
    assert f"database {folder / 'var' / 'station.db'}" in done.stdout
    assert "outbox pending: 0" in done.stdout
