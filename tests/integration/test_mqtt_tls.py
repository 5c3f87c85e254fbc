"""mqtts://: the station on a Mosquitto TLS listener (the real central ingest on its plain one), with a throwaway CA
(trustme), as a site broker with TLS would be set up; a broker whose certificate the station's CA did not sign is
refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from drivers.mqtt import ConnectFailed, MessageReceived, MqttClient, PublishAcked, Subscribed
from tests.integration.line_harness import SimLine, sim_line
from tests.integration.mqtt_fixtures import Broker, free_port, next_event, unique, wait_until
from tests.integration.test_line import assert_delivered_exactly_once, run_batch

pytestmark = pytest.mark.integration

FAST = {"reconnect_min_delay": 0.1, "reconnect_max_delay": 0.5, "session_expiry": 60}


class TlsBroker:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="Packing station test CA")
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        cert.private_key_pem.write_to_path(str(folder / "broker.key"))
        cert.cert_chain_pems[0].write_to_path(str(folder / "broker.pem"))
        self.tls_port = free_port()
        self.broker = Broker(folder / "broker", extra_config=(
            f"listener {self.tls_port} 127.0.0.1\n"
            f"cafile {self.ca_file}\ncertfile {folder / 'broker.pem'}\nkeyfile {folder / 'broker.key'}\n"
            "tls_version tlsv1.2\n"))

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    tls = TlsBroker(tmp_path / "tls")
    with tls.broker:
        assert wait_until(lambda: _listening(tls.tls_port), 5)
        yield tls


def _listening(port: int) -> bool:
    from tests.integration.mqtt_fixtures import listening

    return listening("127.0.0.1", port)


def test_publish_and_subscribe_over_tls(tls_broker: TlsBroker) -> None:
    client = MqttClient(tls_broker.url, unique("tls"), ca_file=str(tls_broker.ca_file), **FAST)  # type: ignore[arg-type]
    client.start()
    try:
        assert client.wait_connected(5), "no TLS connection"
        topic = unique("tls/t")
        client.subscribe(topic)
        assert next_event(client.events, Subscribed).ok
        client.publish(topic, b"xin chao", qos=1)
        seen: dict[type, object] = {}
        while len(seen) < 2:   # the PUBACK and our own message, in either order
            event = client.events.get(timeout=5)
            if isinstance(event, PublishAcked | MessageReceived):
                seen[type(event)] = event
        assert seen[PublishAcked].ok  # type: ignore[attr-defined]
        assert seen[MessageReceived].payload == b"xin chao"  # type: ignore[attr-defined]
    finally:
        client.stop()


def test_a_broker_signed_by_another_ca_is_refused(tls_broker: TlsBroker, tmp_path: Path) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    client = MqttClient(tls_broker.url, unique("tls-bad"), ca_file=str(stranger), **FAST)  # type: ignore[arg-type]
    client.start()
    try:
        failed = next_event(client.events, ConnectFailed, timeout=5)   # the handshake's refusal: no silence watched
        assert not client.connected
        assert "certificate is not trusted" in failed.reason and "mqtt.tls.ca" in failed.reason, failed
    finally:
        client.stop()


def test_the_line_delivers_over_tls_exactly_once(tls_broker: TlsBroker, tmp_path: Path) -> None:
    from app.runtime import RunOptions, Station

    lines: Iterator[SimLine] = sim_line(tmp_path / "line", tls_broker.broker.url, {
        "mqtt.url": tls_broker.url, "mqtt.tls": {"ca": str(tls_broker.ca_file)},
    })
    line = next(lines)
    station = Station(line.config(), RunOptions(auto_resume=True))
    station.start()
    try:
        run_batch(station, 25)
        events = assert_delivered_exactly_once(line, station)
        assert sum(1 for e in events if e["biz_step"] == "commissioning") == 25
        assert station.relay.stats.acked_by_broker >= 1
    finally:
        station.stop()
        lines.close()
