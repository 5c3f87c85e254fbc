"""The `station` command as a technician runs it, in a process of its own: exit codes, what `status` reads, and
what `config check --show` prints. Devices are addresses nobody answers on: these commands must not need them."""

from __future__ import annotations

import datetime as dt
import json
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


# -- item 9: secrets are masked in every output -------------------------------------------------------------------

SECRETS = ("mqtt-s3cret", "cam-s3cret", "env-s3cret", "deadbeef" * 8)


@pytest.fixture
def secret_config(tmp_path: Path) -> Path:
    """A configuration holding every kind of secret: the broker password, a camera's password in its URL, and
    the technician PIN's hash."""
    pin_hash = "scrypt$16384$8$1$" + "ab" * 16 + "$" + "deadbeef" * 8
    return write_config(tmp_path, f"tcp://127.0.0.1:{free_port()}",
                        f"http://admin:cam-s3cret@127.0.0.1:{free_port()}/stream.mjpg",
                        f"mqtt://127.0.0.1:{free_port()}", "cli",
                        {"mqtt.username": "station", "mqtt.password": "mqtt-s3cret",
                         "technician.pin_hash": pin_hash})


def test_config_check_show_masks_every_secret(secret_config: Path) -> None:
    import yaml

    done = station("config", "check", "--show", "--config", str(secret_config))
    assert done.returncode == 0, done.stderr
    assert not [s for s in SECRETS if s in done.stdout + done.stderr], done.stdout
    shown = yaml.safe_load(done.stdout[:done.stdout.rindex(f"{secret_config}: valid")])
    assert shown["mqtt"]["password"] == "**********" and shown["mqtt"]["username"] == "station"
    assert shown["technician"]["pin_hash"] == "**********"
    assert shown["devices"]["verifier"]["url"].startswith("http://admin:**********@127.0.0.1:")
    assert "verifier http://admin:**********@127.0.0.1:" in done.stdout   # the summary line too
    # An environment override is a secret as well; a configuration without a password shows none.
    env = station("config", "check", "--show", "--config", str(secret_config),
                  env={"STATION_MQTT__PASSWORD": "env-s3cret"})
    assert env.returncode == 0 and "env-s3cret" not in env.stdout and "password: '**********'" in env.stdout
    plain = station("config", "check", "--show", "--config", str(ROOT / "config" / "station.yaml"))
    assert "password: null" in plain.stdout and "pin_hash: null" in plain.stdout


def test_the_status_the_camera_errors_and_the_logs_mask_the_secrets(
        secret_config: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from app.runtime import Station
    from tests.waiting import wait_until

    caplog.set_level(logging.DEBUG)
    config = load_config(secret_config)
    assert config.mqtt.password is not None and config.mqtt.password.get_secret_value() == "mqtt-s3cret"
    assert "mqtt-s3cret" not in repr(config) and "mqtt-s3cret" not in str(config.mqtt)
    station = Station(config)
    try:
        station.start()
        # Nobody serves the camera: its errors name the URL, without the password.
        assert wait_until(lambda: bool(station.verifier.last_error), timeout=10)
        assert "admin:***@127.0.0.1" in station.verifier.last_error
        status = json.dumps(station.status(), ensure_ascii=False)
        assert "http://admin:**********@127.0.0.1" in status
    finally:
        station.stop()
    outputs = [status, station.verifier.last_error, caplog.text]
    assert not [s for s in SECRETS for text in outputs if s in text], outputs


# -- issue 9 #5: serials reserved and never printed, in the batch's figures ------------------------------------------

def test_status_of_a_batch_counts_its_unused_serials_apart_from_printed_and_voided(config: Path) -> None:
    from station.domain import VoidReason

    cfg = load_config(config)
    with Store(cfg.database.path) as store:
        store.sync_products(load_products(cfg.resolve(cfg.products_file)))
        batch = store.create_batch(Batch(None, "08938603001013", "MX2611U"))
        names = iter(f"U{n:09d}" for n in range(100))
        stamps = store.allocate_stamps(batch.id, 6, lambda: next(names), lambda s: f"https://x.vn/21/{s}")
        store.commit_line(printed=[s.id for s in stamps[:3]])
        store.activate(stamps[0].id, stamps[0].uri, {"eventID": "urn:uuid:1", "type": "ObjectEvent"})
        store.void(stamps[1].id, VoidReason.NO_READ, "no read", {"eventID": "urn:uuid:2", "type": "ObjectEvent"})
        store.release_unused([s.id for s in stamps[3:]])
    done = station("status", "--config", str(config), "--lot", "MX2611U")
    assert done.returncode == 0, done.stderr
    assert "  stamps unused: 3 (reserved, never printed: kept, not published, never reused)" in done.stdout
    assert "voided unused" not in done.stdout
    batch_lines = done.stdout[done.stdout.index(f"batch {batch.id} (08938603001013 lot MX2611U)"):].splitlines()
    assert batch_lines[1:4] == [
        "  printed 3: activated 1, voided 1 (no_read 1), in flight 1",
        "  unused 3 (reserved, never printed: kept, not published, never reused)",
        "  events pending 2, sent 0, confirmed 0",
    ]
    missing = station("status", "--config", str(config), "--lot", "NOPE")
    assert missing.returncode == 1 and "no batch with lot 'NOPE'" in missing.stderr


# -- the product a run names: any GTIN length of it (station.gs1.normalize_gtin) -----------------------------------

def test_a_product_is_found_by_its_gtin_13_and_a_wrong_one_is_refused_with_the_reason(config: Path) -> None:
    from app.runtime import Station
    from station.errors import StationError

    station = Station(load_config(config))          # not started: no device is opened
    try:
        assert station.product("8938603001013").gtin == "08938603001013"
        assert station.product("08938603001013").gtin == "08938603001013"
        with pytest.raises(StationError, match=r"product 8938603001014 is not in the product list .*check digit"):
            station.product("8938603001014")
        with pytest.raises(StationError, match=r"product 08938603009999 is not in the product list \("):
            station.product("08938603009999")
    finally:
        station.store.close()
