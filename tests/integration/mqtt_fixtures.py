"""MQTT test helpers: a private Mosquitto on a free port, the machine's broker as a fixture, and waiting helpers."""

from __future__ import annotations

import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.waiting import wait_until  # noqa: F401  (the tests that wait import it from here too)

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MACHINE_BROKER = ("127.0.0.1", 1883)

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unique(name: str) -> str:
    """A name no other test (or earlier run) on the shared broker uses: for client ids and topic prefixes."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def next_event(events: queue.Queue[Any], kind: type[T], timeout: float = 5.0) -> T:
    """The next record of the given type from an MqttClient's queue, skipping others; fails on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no {kind.__name__} event within {timeout} s")
        try:
            event = events.get(timeout=remaining)
        except queue.Empty:
            continue
        if isinstance(event, kind):
            return event


class Broker:
    """A Mosquitto of our own on a free port, persistence in `directory`, so tests may stop, kill and restart it.

    The persistence file is written on a clean stop() only (autosave is an hour away), so kill() loses the
    sessions the broker held, as a power cut would before an autosave. The tests' and the benchmarks' one
    launcher: a benchmark turns `persistence` off, logs only `log_types` and adds its queue limits in
    `extra_config` (Mosquitto's own lines), and prints `config_lines` with its figures.
    """

    def __init__(self, directory: Path, port: int | None = None, extra_config: str = "", *,
                 anonymous: bool = True, persistence: bool = True,
                 log_types: tuple[str, ...] = ("error", "warning", "notice", "information")) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config = self.directory / "mosquitto.conf"
        self.log = self.directory / "mosquitto.log"
        self._extra_config = extra_config
        self._anonymous = anonymous
        self._persistence = persistence
        self._log_types = log_types
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def config_lines(self) -> list[str]:
        """The configuration the broker runs with, a line a directive."""
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self._anonymous else 'false'}",
        ]
        if self._persistence:
            lines += ["persistence true", f"persistence_location {self.directory}/", "autosave_interval 3600"]
        else:
            lines.append("persistence false")
        lines.append(f"log_dest file {self.log}")
        lines += [f"log_type {kind}" for kind in self._log_types]
        if os.geteuid() == 0:
            # Mosquitto run as root drops to user "mosquitto", who cannot write to the test's tmp dir.
            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        # Last: a second listener's own options (TLS) follow its `listener` line there.
        return lines + [line for line in self._extra_config.splitlines() if line.strip()]

    def _write_config(self) -> None:
        self.config.write_text("\n".join(self.config_lines) + "\n")

    def start(self, timeout: float = 5.0) -> Broker:
        if self.running:
            return self
        self._write_config()
        self._process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while not listening("127.0.0.1", self.port):
            if self._process.poll() is not None:
                _, err = self._process.communicate()
                self._process = None
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                raise RuntimeError(f"mosquitto on port {self.port} exited: {err.decode(errors='replace')}{log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"mosquitto did not accept connections on port {self.port} within {timeout} s")
            time.sleep(0.02)
        return self

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def stop(self) -> None:
        """SIGTERM: Mosquitto closes its clients and saves its persistence file."""
        self.resume()
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: everything since the last save is lost."""
        self._end(signal.SIGKILL)

    def restart(self) -> Broker:
        self.stop()
        return self.start()

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password and ACL files again (connected clients stay connected)."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGHUP)

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its sockets open but answers nothing (a hung broker)."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGCONT)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A started private Mosquitto, stopped after the test."""
    if not os.path.exists(MOSQUITTO):
        pytest.skip(f"mosquitto not installed at {MOSQUITTO}")
    with Broker(tmp_path / "broker") as started:
        yield started


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The machine's shared Mosquitto at 127.0.0.1:1883; use unique() topics and client ids on it."""
    if not listening(*MACHINE_BROKER, timeout=1.0):
        pytest.skip("no MQTT broker listens on 127.0.0.1:1883 (start mosquitto, or run the tests with a private Broker)")
    return f"mqtt://{MACHINE_BROKER[0]}:{MACHINE_BROKER[1]}"


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fail the test if it leaves paho network threads or ingest workers running."""
    yield
    def leaked() -> list[str]:
        return [
            t.name for t in threading.enumerate()
            if t.name.startswith(("paho-mqtt-client-", "ingest-")) and t.is_alive()
        ]
    wait_until(lambda: not leaked(), timeout=2.0)
    assert not leaked(), f"threads left running: {leaked()}"
