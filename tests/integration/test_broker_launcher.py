"""The one Mosquitto launcher of the tests and the benchmarks (tests/integration/mqtt_fixtures.Broker)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.mqtt_fixtures import MOSQUITTO, Broker, listening

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason=f"mosquitto not installed at {MOSQUITTO}")]


def test_a_benchmark_broker_runs_without_persistence_with_its_own_limits(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "b", persistence=False, log_types=("error",),
                    extra_config="max_queued_messages 5000\nmax_inflight_messages 1000\n")
    lines = broker.config_lines
    assert lines[:3] == [f"listener {broker.port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    assert lines[-2:] == ["max_queued_messages 5000", "max_inflight_messages 1000"]
    assert [line for line in lines if line.startswith("log_type")] == ["log_type error"]
    with broker.start(timeout=10):
        assert listening("127.0.0.1", broker.port)
        assert (tmp_path / "b" / "mosquitto.conf").read_text().splitlines() == lines
    assert not broker.running and not list((tmp_path / "b").glob("*.db"))   # nothing saved


def test_a_test_broker_saves_its_sessions(tmp_path: Path) -> None:
    with Broker(tmp_path / "b") as broker:
        assert "persistence true" in broker.config_lines
    assert (tmp_path / "b" / "mosquitto.db").exists()
