"""MQTT v5 client (paho-mqtt 2.x) whose network callbacks only put event records on a queue the owner drains.

One module of about 450 lines: paho's callbacks, the records they become, the TLS and broker-URL checks and the
second look at a failed connection are one client's state; split, each part would reach into the others.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from drivers.errors import DeviceError

__all__ = [
    "BrokerAddress",
    "ConnectFailed",
    "Connected",
    "Disconnected",
    "MessageReceived",
    "MqttClient",
    "MqttError",
    "MqttEvent",
    "NO_MATCHING_SUBSCRIBERS",
    "PublishAcked",
    "Subscribed",
    "Will",
    "parse_broker_url",
]

log = logging.getLogger(__name__)

# MQTT v5 PUBACK 0x10: the broker accepted the message but nobody was subscribed, so nobody got it.
NO_MATCHING_SUBSCRIBERS = 0x10

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class MqttError(DeviceError):
    """The MQTT client refused an operation (bad URL, not connected, paho's queue full, invalid topic)."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, parsed from `mqtt://[user:pass@]host[:port]` or `mqtts://…`."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The URL without credentials, safe for logs and screens."""
        scheme = "mqtts" if self.tls else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse a broker URL; raise MqttError naming what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MqttError(f"broker URL {url!r} is not valid: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise MqttError(f"broker URL {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise MqttError(f"broker URL {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MqttError(f"broker URL {url!r} must be only scheme://host:port")
    return BrokerAddress(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


@dataclass(frozen=True)
class Will:
    """The message the broker publishes for us when we vanish without a clean disconnect."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class Connected:
    """CONNACK success; session_present False means the broker forgot our session (subscriptions are re-sent)."""

    session_present: bool


@dataclass(frozen=True)
class ConnectFailed:
    """A connection attempt failed (broker unreachable, or CONNACK refused); paho retries after its back-off.

    refused: the broker answered and said no (CONNACK reason code >= 0x80: 0x86 bad user name or password, 0x87 not
    authorised, 0x85 client id not valid, 0x8A banned, …). paho reports an MQTT 3.1.1 broker's return codes as the
    MQTT 5 ones (4 as 0x86, 5 as 0x87, 2 as 0x85), so one set of codes covers both.
    """

    reason: str
    reason_code: int | None = None
    refused: bool = False


@dataclass(frozen=True)
class Disconnected:
    """An established connection ended (ours, the broker's, or the network's)."""

    reason: str
    reason_code: int


@dataclass(frozen=True)
class PublishAcked:
    """The broker's PUBACK for one of our QoS 1 publishes; ok is False for >= 0x80 and for 0x10."""

    mid: int
    reason_code: int
    reason: str
    ok: bool


@dataclass(frozen=True)
class Subscribed:
    """The broker's SUBACK for one topic filter; ok is False when it refused it (reason code >= 0x80)."""

    topic: str
    reason_code: int
    reason: str
    ok: bool


@dataclass(frozen=True)
class MessageReceived:
    """A message from a subscription; pass it back to `MqttClient.ack` when the client uses manual acks."""

    topic: str
    payload: bytes
    properties: dict[str, Any]
    qos: int = 0
    retain: bool = False
    mid: int = 0
    # Which connection delivered it: a PUBACK for a message id of an earlier connection would acknowledge
    # some other message, so acks for stale connections are dropped (the broker redelivers those).
    connection: int = field(default=0, repr=False)


MqttEvent: TypeAlias = Connected | ConnectFailed | Disconnected | PublishAcked | Subscribed | MessageReceived


def puback_ok(reason_code: int) -> bool:
    """Whether a PUBACK reason code means somebody will get the message."""
    return reason_code < 0x80 and reason_code != NO_MATCHING_SUBSCRIBERS


class MqttClient:
    """One MQTT v5 connection with a fixed client id, a persistent session, a will and automatic reconnects.

    paho's network thread only appends records to `events` (a `queue.Queue`); the owner's thread drains it.
    Not reusable: after `stop()` make a new client (the session lives on at the broker).
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        keepalive: int = 30,
        session_expiry: int = 86_400,
        will: Will | None = None,
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 60.0,
        max_inflight: int = 100,
        max_queued: int = 1_000,
        manual_ack: bool = False,
        events: queue.Queue[MqttEvent] | None = None,
    ) -> None:
        if not client_id:
            # An empty id gets a random one from the broker, and with it a new session every time.
            raise MqttError("a fixed, non-empty client id is needed for a persistent session")
        self.address = parse_broker_url(url)
        self.client_id = client_id
        self.events: queue.Queue[MqttEvent] = events if events is not None else queue.Queue()
        self._keepalive = keepalive
        self._session_expiry = session_expiry
        self._manual_ack = manual_ack
        self._subscriptions: dict[str, int] = {}
        self._pending_subacks: dict[int, list[str]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        # Touched only on paho's thread (callbacks), apart from plain reads of _connection.
        self._connection = 0
        self._was_connected = False
        self._refused = False
        self._started = False
        self._stopped = False

        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
        )
        user = username if username is not None else self.address.username
        secret = password if password is not None else self.address.password
        if user is not None:
            client.username_pw_set(user, secret)
        self._tls_files = (ca_file, cert_file, key_file)
        if self.address.tls:
            try:
                client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
            except (OSError, ValueError) as exc:
                raise MqttError(f"TLS setup for {self.address.url} failed: {exc}") from exc
        elif ca_file or cert_file or key_file:
            raise MqttError(f"TLS files given but {url!r} is not mqtts://")
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.reconnect_delay_set(reconnect_min_delay, reconnect_max_delay)  # type: ignore[arg-type]
        client.max_inflight_messages_set(max_inflight)
        # Bounds paho's RAM queue: an owner that forgets its window gets MqttError, not a silent stall.
        client.max_queued_messages_set(max_queued)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    @property
    def url(self) -> str:
        return self.address.url

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def start(self) -> None:
        """Start paho's network thread; it connects (and reconnects) in the background."""
        if self._started:
            raise MqttError("MqttClient.start() called twice; make a new client after stop()")
        self._started = True
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._session_expiry
        self._client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=self._keepalive,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def stop(self, *, send_will: bool = False) -> None:
        """Disconnect cleanly and join paho's thread; the broker keeps the session for session_expiry.

        A clean disconnect suppresses the will; `send_will=True` asks the broker to publish it anyway.
        Unacknowledged publishes held by paho are dropped: the owner's outbox still has them.
        """
        if not self._started or self._stopped:
            return
        self._stopped = True
        reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message") if send_will else None
        self._client.disconnect(reasoncode=reason)
        self._client.loop_stop()
        self._connected.clear()

    def __enter__(self) -> MqttClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or timeout (False); for start-up and tests, not for the hot path."""
        return self._connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Hand a message to paho and return its mid; `PublishAcked(mid, …)` follows for QoS 1 and 2.

        Fails fast while disconnected instead of letting paho pile messages up in RAM: the station's
        durability is its own outbox, which sends again after reconnecting.
        """
        if not self._started or self._stopped:
            raise MqttError(f"publish to {topic!r} refused: client is not running")
        if not self.connected:
            raise MqttError(f"publish to {topic!r} refused: not connected to {self.url}")
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:
            raise MqttError(f"publish to {topic!r} refused: {exc}") from exc
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise MqttError(f"publish to {topic!r} refused: paho already holds its maximum of unacknowledged messages")
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0:
            # The connection dropped between the check and the call. paho keeps QoS>0 messages and sends
            # them after reconnecting, so the PUBACK still arrives under this mid.
            return info.mid
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"publish to {topic!r} refused: {paho.error_string(info.rc)}")
        return info.mid

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe now if connected, and again after every reconnect; a `Subscribed` record follows."""
        try:
            SubscribeOptions(qos=qos)
        except Exception as exc:  # paho raises a bare Exception for a bad QoS
            raise MqttError(f"subscribe to {topic!r} refused: {exc}") from exc
        with self._lock:
            self._subscriptions[topic] = qos
        if self.connected:
            self._send_subscribe([(topic, qos)])

    def ack(self, message: MessageReceived) -> bool:
        """Send the PUBACK for a message once it is safely handled (only with manual_ack=True).

        Returns False when the message came on an earlier connection: the broker redelivers it instead.
        """
        if not self._manual_ack or message.qos == 0:
            return True
        if message.connection != self._connection:
            return False
        return self._client.ack(message.mid, message.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS

    # paho callbacks: on paho's thread; they only record and queue, never block.

    def _send_subscribe(self, topics: list[tuple[str, int]]) -> None:
        # RETAIN_SEND_IF_NEW_SUB: a resubscribe on a kept session does not replay retained messages.
        request = [
            (topic, SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB))
            for topic, qos in topics
        ]
        with self._lock:
            rc, mid = self._client.subscribe(request)
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                self._pending_subacks[mid] = [topic for topic, _ in topics]

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Properties | None
    ) -> None:
        if reason.is_failure:
            self._refused = True
            self.events.put(ConnectFailed(str(reason), reason.value, refused=True))
            return
        self._connection += 1
        self._was_connected = True
        self._connected.set()
        with self._lock:
            topics = list(self._subscriptions.items())
        if topics:
            # Even with session_present the broker may have lost subscriptions (expiry, restart without
            # persistence); subscribing again is idempotent.
            self._send_subscribe(topics)
        self.events.put(Connected(bool(flags.session_present)))

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho says only that it failed: find out why, so a screen can tell a cable from a certificate.
        self.events.put(ConnectFailed(f"broker {self.url} unreachable: {self._connect_problem()}"))

    def _connect_problem(self, timeout: float = 2.0) -> str:
        """Why a connection fails, found by connecting once more by hand (TCP, then the TLS handshake)."""
        host, port = self.address.host, self.address.port
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
        try:
            if not self.address.tls:
                return "the connection was refused or dropped before MQTT started"
            try:
                context = ssl.create_default_context(cafile=self._tls_files[0])
                if self._tls_files[1]:
                    context.load_cert_chain(self._tls_files[1], self._tls_files[2])
                with context.wrap_socket(sock, server_hostname=host):
                    return "the TLS handshake succeeded on a second try (a broker restarting?)"
            except ssl.SSLCertVerificationError as exc:
                return f"TLS: the broker's certificate is not trusted ({exc.verify_message or exc}); check mqtt.tls.ca"
            except ssl.SSLError as exc:
                return f"TLS handshake failed: {exc.reason or exc}"
            except OSError as exc:
                return f"TLS handshake failed: {exc.strerror or exc}"
        finally:
            sock.close()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Properties | None
    ) -> None:
        self._connected.clear()
        if self._was_connected:
            self._was_connected = False
            self.events.put(Disconnected(str(reason), reason.value))
        elif not self._refused:
            self.events.put(ConnectFailed(f"connection to {self.url} closed before CONNACK: {reason}", reason.value))
        self._refused = False

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Properties | None
    ) -> None:
        self.events.put(PublishAcked(mid, reason.value, str(reason), puback_ok(reason.value)))

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._lock:
            topics = self._pending_subacks.pop(mid, [])
        for topic, reason in zip(topics, reasons):
            self.events.put(Subscribed(topic, reason.value, str(reason), not reason.is_failure))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        properties = message.properties.json() if message.properties is not None else {}
        self.events.put(
            MessageReceived(
                topic=message.topic,
                payload=bytes(message.payload),
                properties=properties,
                qos=message.qos,
                retain=bool(message.retain),
                mid=message.mid,
                connection=self._connection,
            )
        )
