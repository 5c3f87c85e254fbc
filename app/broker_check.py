"""The technician's broker check: try the broker step by step (address, TLS files, DNS, TCP, TLS, MQTT login) and
say at which step it failed and why; the technician's screen shows the steps."""

from __future__ import annotations

import queue
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.mqtt import ConnectFailed, Connected, MqttClient, MqttError, parse_broker_url
from station.relay import CONNECT_REFUSALS


@dataclass(frozen=True)
class CheckStep:
    step: str          # url | tls_files | dns | tcp | tls | mqtt
    ok: bool
    detail: str
    refusal: str = ""  # the broker said no: the alarm code of its reason (station.relay.CONNECT_REFUSALS)


def check_broker(url: str, *, username: str | None = None, password: str | None = None, ca: str | None = None,
                 cert: str | None = None, key: str | None = None, client_id: str = "station",
                 timeout: float = 5.0) -> list[CheckStep]:
    """Try the broker step by step and say which step failed and why (stops at the first failure)."""
    steps: list[CheckStep] = []
    try:
        address = parse_broker_url(url)
    except MqttError as exc:
        return [CheckStep("url", False, str(exc))]
    steps.append(CheckStep("url", True, address.url))
    files = [f for f in (ca, cert, key) if f]
    if files:
        if not address.tls:
            return steps + [CheckStep("tls_files", False, "TLS files are set but the address is not mqtts://")]
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            return steps + [CheckStep("tls_files", False, "not found: " + ", ".join(missing))]
        steps.append(CheckStep("tls_files", True, ", ".join(files)))
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return steps + [CheckStep("dns", False, f"{address.host}: {exc}")]
    steps.append(CheckStep("dns", True, infos[0][4][0]))
    try:
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
    except OSError as exc:
        return steps + [CheckStep("tcp", False, f"{address.host}:{address.port}: {exc}")]
    steps.append(CheckStep("tcp", True, f"{address.host}:{address.port}"))
    try:
        if address.tls:
            try:
                context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
                if cert:
                    context.load_cert_chain(cert, key)
                with context.wrap_socket(sock, server_hostname=address.host) as tls:
                    steps.append(CheckStep("tls", True, f"{tls.version()}"))
            except (ssl.SSLError, OSError) as exc:
                return steps + [CheckStep("tls", False, str(exc))]
    finally:
        sock.close()
    events: queue.Queue[Any] = queue.Queue()
    try:
        client = MqttClient(url, f"{client_id}-check-{uuid.uuid4().hex[:6]}", username=username or None,
                            password=password or None, ca_file=ca or None, cert_file=cert or None,
                            key_file=key or None, session_expiry=0, reconnect_min_delay=timeout,
                            reconnect_max_delay=timeout, events=events)
    except MqttError as exc:
        return steps + [CheckStep("mqtt", False, str(exc))]
    client.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return steps + [CheckStep("mqtt", False, f"no answer (CONNACK) within {timeout:g} s")]
            try:
                event = events.get(timeout=remaining)
            except queue.Empty:
                continue
            if isinstance(event, Connected):
                return steps + [CheckStep("mqtt", True, "connected")]
            if isinstance(event, ConnectFailed):
                if event.refused and event.reason_code is not None:
                    return steps + [CheckStep("mqtt", False, f"{event.reason} (0x{event.reason_code:02X})",
                                              CONNECT_REFUSALS.get(event.reason_code, "mqtt_connection_refused"))]
                return steps + [CheckStep("mqtt", False, event.reason)]
    finally:
        client.stop()


__all__ = ["CheckStep", "check_broker"]
