"""The MQTT client against real Mosquitto brokers: PUBACK reason codes, the will, reconnects and sessions."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from drivers.errors import DeviceError
from drivers.mqtt import (
    ConnectFailed,
    Connected,
    Disconnected,
    MessageReceived,
    MqttClient,
    MqttError,
    PublishAcked,
    Subscribed,
    Will,
    parse_broker_url,
)
from tests.integration.mqtt_fixtures import (  # noqa: F401  (fixtures)
    Broker,
    broker,
    broker_url,
    free_port,
    next_event,
    no_leaked_threads,
    unique,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaked_threads")]

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
FAST = {"reconnect_min_delay": 0.1, "reconnect_max_delay": 0.5, "session_expiry": 60}


@pytest.fixture
def clients() -> Iterator[list[MqttClient]]:
    """Clients made by a test, stopped after it whatever happened."""
    made: list[MqttClient] = []
    yield made
    for client in made:
        client.stop()


def started(made: list[MqttClient], url: str, name: str, **options: object) -> MqttClient:
    client = MqttClient(url, unique(name), **{**FAST, **options})  # type: ignore[arg-type]
    made.append(client)
    client.start()
    assert client.wait_connected(5), f"{name} did not connect to {url}"
    return client


def subscribed(client: MqttClient, topic: str) -> None:
    client.subscribe(topic)
    event = next_event(client.events, Subscribed)
    assert (event.topic, event.ok) == (topic, True), event


def drain(events: queue.Queue[Any], kind: type[T], count: int, timeout: float = 5.0) -> list[T]:
    return [next_event(events, kind, timeout) for _ in range(count)]


def test_qos1_publishes_are_each_acked_ok(broker_url: str, clients: list[MqttClient]) -> None:
    prefix = unique("test-ack")
    listener = started(clients, broker_url, "listener")
    subscribed(listener, f"{prefix}/#")
    publisher = started(clients, broker_url, "publisher")

    mids = [publisher.publish(f"{prefix}/s1/events", f"doc {n}".encode()) for n in range(50)]

    acks = drain(publisher.events, PublishAcked, len(mids))
    assert sorted(ack.mid for ack in acks) == sorted(mids)
    assert {(ack.reason_code, ack.reason, ack.ok) for ack in acks} == {(0, "Success", True)}
    received = drain(listener.events, MessageReceived, len(mids))
    assert [m.payload for m in received] == [f"doc {n}".encode() for n in range(50)]
    assert {(m.topic, m.qos, m.retain) for m in received} == {(f"{prefix}/s1/events", 1, False)}


def test_puback_no_matching_subscribers_is_a_failure(broker_url: str, clients: list[MqttClient]) -> None:
    # Mosquitto answers MQTT v5 publishers with 0x10 when nobody subscribes: accepted, but nobody got it.
    publisher = started(clients, broker_url, "lonely")
    mid = publisher.publish(f"{unique('test-nosub')}/events", b"{}")

    ack = next_event(publisher.events, PublishAcked)
    assert (ack.mid, ack.reason_code, ack.reason, ack.ok) == (mid, 0x10, "No matching subscribers", False)


def test_publish_fails_fast_when_not_connected(clients: list[MqttClient]) -> None:
    client = MqttClient(f"mqtt://127.0.0.1:{free_port()}", unique("nobroker"), **FAST)  # type: ignore[arg-type]
    clients.append(client)
    with pytest.raises(MqttError, match="not running"):
        client.publish("t/events", b"x")
    client.start()

    failed = next_event(client.events, ConnectFailed)
    assert "unreachable" in failed.reason and "Connection refused" in failed.reason, failed.reason
    assert not client.connected
    with pytest.raises(MqttError, match="not connected") as raised:
        client.publish("t/events", b"x")
    assert isinstance(raised.value, DeviceError)


def test_invalid_topic_is_refused_clearly(broker_url: str, clients: list[MqttClient]) -> None:
    client = started(clients, broker_url, "badtopic")
    with pytest.raises(MqttError, match="refused"):
        client.publish("site/+/events", b"x")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://127.0.0.1:1883", "mqtt:// or mqtts://"),
        ("mqtt://:1883", "no host"),
        ("mqtt://host:notaport", "not valid"),
        ("mqtt://host:1883/path", "only scheme://host:port"),
    ],
)
def test_bad_broker_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(MqttError, match=message):
        parse_broker_url(url)


def test_broker_url_defaults_and_credentials() -> None:
    address = parse_broker_url("mqtts://line%40hue:s%3Acret@broker.example.vn")
    assert (address.host, address.port, address.tls) == ("broker.example.vn", 8883, True)
    assert (address.username, address.password) == ("line@hue", "s:cret")
    assert address.url == "mqtts://broker.example.vn:8883"
    assert parse_broker_url("mqtt://10.0.0.5").port == 1883


def test_will_is_published_retained_when_the_client_dies(broker_url: str, clients: list[MqttClient]) -> None:
    status = f"{unique('test-will')}/hue/st1/status"
    # A real process killed with SIGKILL: the kernel closes its socket without an MQTT DISCONNECT.
    script = textwrap.dedent(
        f"""
        import sys, time
        from drivers.mqtt import MqttClient, PublishAcked, Will
        client = MqttClient({broker_url!r}, {unique('dying')!r}, session_expiry=0,
                            will=Will({status!r}, b'{{"state": "offline"}}', qos=1, retain=True))
        client.start()
        assert client.wait_connected(5)
        mid = client.publish({status!r}, b'{{"state": "running"}}', retain=True)
        while not ((event := client.events.get(timeout=5)) and isinstance(event, PublishAcked) and event.mid == mid):
            pass   # the broker holds the retained "running" once it acknowledged it
        print("ready", flush=True)
        time.sleep(60)   # alive until the test kills it
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"   # the retained "running" is at the broker
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()

    observer = started(clients, broker_url, "observer")
    try:
        observer.subscribe(status)
        message = next_event(observer.events, MessageReceived)
        assert (message.topic, message.payload, message.retain) == (status, b'{"state": "offline"}', True)
    finally:
        observer.publish(status, b"", retain=True)  # clear the retained message on the shared broker


def test_clean_stop_sends_no_will_unless_asked(broker_url: str, clients: list[MqttClient]) -> None:
    status = f"{unique('test-stop')}/hue/st1/status"
    observer = started(clients, broker_url, "observer")
    subscribed(observer, status)

    quiet = started(clients, broker_url, "quiet", will=Will(status, b"offline: quiet", qos=1, retain=False))
    quiet.stop()
    assert not quiet.connected
    # The broker would publish quiet's will as it handles quiet's disconnect, long before loud has connected and
    # gone: the first message the observer gets being loud's shows quiet's never came (no silence watched).
    loud = started(clients, broker_url, "loud", will=Will(status, b"offline: loud", qos=1, retain=False))
    loud.stop(send_will=True)
    assert next_event(observer.events, MessageReceived).payload == b"offline: loud"


def test_session_present_on_reconnect_with_clean_start_false(broker_url: str, clients: list[MqttClient]) -> None:
    client_id = unique("session")
    first = MqttClient(broker_url, client_id, **FAST)  # type: ignore[arg-type]
    clients.append(first)
    first.start()
    assert next_event(first.events, Connected) == Connected(session_present=False)
    first.stop()

    again = MqttClient(broker_url, client_id, **{**FAST, "session_expiry": 0})  # type: ignore[arg-type]
    clients.append(again)
    again.start()
    assert next_event(again.events, Connected) == Connected(session_present=True)


def test_reconnects_after_broker_restart_with_session_and_subscription(
    broker: Broker, clients: list[MqttClient]
) -> None:
    listener = started(clients, broker.url, "listener")
    assert next_event(listener.events, Connected) == Connected(session_present=False)
    subscribed(listener, "truyxuat/hue/st1/acks")

    broker.stop()  # SIGTERM: Mosquitto saves its sessions to disk
    assert isinstance(next_event(listener.events, Disconnected), Disconnected)
    assert not listener.connected
    with pytest.raises(MqttError, match="not connected"):
        listener.publish("truyxuat/hue/st1/events", b"x")
    broker.start()

    assert next_event(listener.events, Connected) == Connected(session_present=True)
    sender = started(clients, broker.url, "sender")
    sender.publish("truyxuat/hue/st1/acks", b"after restart")
    assert next_event(listener.events, MessageReceived).payload == b"after restart"
    ack = next_event(sender.events, PublishAcked)
    assert ack.ok


def test_subscriptions_are_restored_when_the_broker_lost_the_session(
    broker: Broker, clients: list[MqttClient]
) -> None:
    listener = started(clients, broker.url, "listener")
    subscribed(listener, "truyxuat/hue/st1/acks")

    broker.kill()  # SIGKILL before any autosave: the broker forgets the session and its subscription
    next_event(listener.events, Disconnected)
    broker.start()

    assert next_event(listener.events, Connected) == Connected(session_present=False)
    resubscribed = next_event(listener.events, Subscribed)
    assert (resubscribed.topic, resubscribed.ok) == ("truyxuat/hue/st1/acks", True)
    sender = started(clients, broker.url, "sender")
    sender.publish("truyxuat/hue/st1/acks", b"after crash")
    assert next_event(listener.events, MessageReceived).payload == b"after crash"


def test_stop_returns_while_the_broker_hangs_with_messages_unacknowledged(
    broker: Broker, clients: list[MqttClient]
) -> None:
    client = started(clients, broker.url, "hung")
    broker.pause()
    mids = [client.publish("truyxuat/hue/st1/events", b"x") for _ in range(5)]
    assert len(set(mids)) == 5

    # stop() returns although the broker, still hung, acknowledges nothing: it does not wait for the broker. (The
    # join's timeout only ends the test if it did.)
    stopping = threading.Thread(target=client.stop)
    stopping.start()
    stopping.join(10)
    assert not stopping.is_alive(), "stop() waited for a hung broker"
    assert not client.connected


def test_paho_queue_limit_is_an_mqtt_error(broker: Broker, clients: list[MqttClient]) -> None:
    client = started(clients, broker.url, "bounded", max_inflight=2, max_queued=3)
    broker.pause()  # nothing is acknowledged, so paho's queue fills
    for _ in range(3):
        client.publish("truyxuat/hue/st1/events", b"x")
    with pytest.raises(MqttError, match="maximum of unacknowledged"):
        client.publish("truyxuat/hue/st1/events", b"x")


def test_tls_files_without_mqtts_are_refused() -> None:
    with pytest.raises(MqttError, match="not mqtts"):
        MqttClient("mqtt://127.0.0.1:1883", "tls", ca_file=os.devnull)
