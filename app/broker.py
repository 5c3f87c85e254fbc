"""Find the configured MQTT broker, or start a local Mosquitto for the demo when nothing listens on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from app.children import die_with_parent

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class BrokerError(RuntimeError):
    """No broker could be found or started; the message says what to install or change."""


def listening(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if not found:
        raise BrokerError("mosquitto is not installed: run scripts/setup.sh (or apt-get install mosquitto)")
    return found


def start_mosquitto(port: int, data_dir: Path, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """A Mosquitto on host:port with its persistence and log in data_dir; returns once it accepts connections."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {host}\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {data_dir}/\n"
        "autosave_interval 5\n"
        f"log_dest file {data_dir / 'mosquitto.log'}\n"
        "max_queued_messages 100000\n",
        encoding="utf-8",
    )
    # It ends with this process, even one killed with SIGKILL (call from a long-lived thread: see die_with_parent).
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=die_with_parent())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise BrokerError(f"mosquitto exited at start (port {port}): {err.strip() or 'see ' + str(data_dir)}")
        if listening(host, port, 0.2):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise BrokerError(f"mosquitto did not listen on {host}:{port} within 10 s")


def ensure_broker(url: str, data_dir: Path) -> subprocess.Popen[bytes] | None:
    """None when a broker already answers at url; a started Mosquitto when url is loopback and nothing answered."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    if listening(host, port):
        return None
    if host not in LOOPBACK or parts.scheme != "mqtt":
        raise BrokerError(f"no MQTT broker answers at {url}; start it, or point mqtt.url at one that runs")
    return start_mosquitto(port, data_dir, "127.0.0.1" if host == "localhost" else host)
