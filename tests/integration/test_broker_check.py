"""The technician's broker check (app.broker_check): which step failed and why, against real sockets and the
machine's Mosquitto."""

from __future__ import annotations

from app.broker_check import check_broker
from tests.integration.mqtt_fixtures import broker_url, free_port  # noqa: F401  (fixture)


def test_the_broker_check_says_which_step_failed() -> None:
    steps = check_broker(f"mqtt://127.0.0.1:{free_port()}", timeout=2)
    assert [s.step for s in steps] == ["url", "dns", "tcp"] and not steps[-1].ok
    steps = check_broker("http://broker", timeout=2)
    assert steps[0].step == "url" and not steps[0].ok
    steps = check_broker("mqtts://127.0.0.1:8883", ca="/nonexistent/ca.pem", timeout=2)
    assert steps[-1].step == "tls_files" and "not found" in steps[-1].detail


def test_the_broker_check_connects_to_the_machine_broker(broker_url: str) -> None:  # noqa: F811
    steps = check_broker(broker_url, timeout=5)
    assert steps[-1].step == "mqtt" and steps[-1].ok, steps
