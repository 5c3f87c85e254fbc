"""The other end of the simulators' control ports (`control.CommandServer`): one command and its reply, as
`station sim send` gives it, and a follower of the printer simulator's labels, as a scanner or camera simulator in
another process reads them."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulators.printer import PrintedLabel

log = logging.getLogger(__name__)


def send_command(host: str, port: int, command: str, timeout: float = 5.0) -> str:
    """Send one command line and return the first reply line ("" when the peer closed without one). Raises
    ConnectionRefusedError when nothing listens, socket.timeout without a reply in time, OSError otherwise."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(command.encode("utf-8") + b"\n")
        reply = b""
        while b"\n" not in reply:
            data = conn.recv(65536)
            if not data:
                break
            reply += data
    return reply.decode("utf-8", "replace").split("\n", 1)[0].strip()


def follow_printer(address: str, on_label: Callable[[PrintedLabel], None], stop: threading.Event,
                   retry_s: float = 1.0) -> threading.Thread:
    """Subscribe to a printer simulator's control port (host:port) and hand each printed label on (image and
    fields) until `stop` is set; reconnects every `retry_s` while the printer is away."""
    from simulators.printer import PrintedLabel   # here: `station sim send` needs no printer simulator loaded

    host, _, port = address.rpartition(":")

    def loop() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5) as conn:
                    conn.settimeout(1.0)
                    conn.sendall(b"subscribe\n")
                    buffer = b""
                    log.info("following the printer simulator's labels at %s", address)
                    while not stop.is_set():
                        try:
                            data = conn.recv(262144)
                        except socket.timeout:
                            continue
                        if not data:
                            break
                        buffer += data
                        while b"\n" in buffer:
                            line, buffer = buffer.split(b"\n", 1)
                            if line.startswith(b"{"):
                                on_label(PrintedLabel.from_json(json.loads(line)))
            except OSError as exc:
                log.warning("printer simulator control %s: %s; retrying", address, exc)
                stop.wait(retry_s)

    thread = threading.Thread(target=loop, name="follow-printer", daemon=True)
    thread.start()
    return thread


__all__ = ["send_command", "follow_printer"]
