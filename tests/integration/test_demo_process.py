"""`station demo` as a process, ended the ways a demo is ended: Ctrl-C, SIGTERM (systemd, `timeout`, a logout), SIGHUP
(a closed terminal), a crash; and started beside ports already taken. Every process it started ends with it (the
simulators, `central ingest` and `central serve`), the ports are free again, the summary is printed and the database
is whole. The trace page it prints for a stamp it activated answers, with the product's name.

The demos here run on ports the OS gives out and a scanner link in the test's folder (the demo's port options), so
they run beside anything else on the machine; the default-port demo is in test_line.py.
"""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.busy import Endpoint, busy
from tests.integration.mqtt_fixtures import broker_url, unique  # noqa: F401  (fixture)
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PORT_OPTIONS = ("--printer-port", "--printer-control-port", "--scanner-control-port", "--camera-port",
                "--camera-control-port", "--conveyor-port", "--conveyor-control-port", "--central-port")


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]          # a zombie has ended; field 22: start time


def descendants(root: int) -> set[tuple[int, str]]:
    """Every live process under root, as (pid, start time): a pid reused later is another process."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            started = _start_time(child)
            if started is not None:
                found.add((child, started))
                todo.append(child)
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    return {(pid, started) for pid, started in processes if _start_time(pid) == started}


@dataclass
class Demo:
    folder: Path
    ports: dict[str, int]
    link: Path
    prefix: str
    process: subprocess.Popen[str] | None = None
    out: list[str] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.folder / "station.db"

    def args(self) -> list[str]:
        args = [a for option in PORT_OPTIONS for a in (option, str(self.ports[option]))]
        return args + ["--scanner-link", str(self.link)]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(STATION_DATABASE__PATH=str(self.db), STATION_MQTT__PREFIX=self.prefix,
                   STATION_MQTT__CLIENT_ID=f"{self.prefix}-station", PYTHONUNBUFFERED="1", **extra)
        return env

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        # A session of its own, as a terminal's foreground job: a signal to its group is what Ctrl-C and a
        # hang-up send.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", *self.args(), *args], cwd=self.folder, env=self.env(**env),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self.process

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.out.append(line)

    @property
    def output(self) -> str:
        return "".join(self.out)

    def activated(self) -> int:
        if not self.db.exists():
            return 0
        try:
            with sqlite3.connect(self.db, timeout=10) as conn:
                return conn.execute("SELECT count(*) FROM stamps WHERE state = 'activated'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(option, option, port=port) for option, port in self.ports.items()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def demo(tmp_path: Path, broker_url: str) -> Iterator[Demo]:  # noqa: F811  (the machine's broker is up)
    ports = dict(zip(PORT_OPTIONS, free_ports(len(PORT_OPTIONS))))
    made = Demo(tmp_path, ports, tmp_path / "scanner", unique("demo"))
    yield made
    made.stop()


def assert_database_whole(db: Path) -> None:
    with sqlite3.connect(db, timeout=10) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        states = dict(conn.execute("SELECT state, count(*) FROM stamps GROUP BY state").fetchall())
        # stopped cleanly: every stamp that went to the printer was decided
        assert states.get("sent_to_printer", 0) == states.get("verified", 0) == 0, states
        assert states.get("activated", 0) > 0, states
        # every activation has its event in the outbox, written with it
        missing = conn.execute("SELECT count(*) FROM stamps s WHERE s.state = 'activated' AND NOT EXISTS "
                               "(SELECT 1 FROM outbox o WHERE o.stamp_id = s.id AND o.kind = 'activation')"
                               ).fetchone()[0]
        assert missing == 0


def stop_and_check(demo: Demo, signum: signal.Signals, *, to_group: bool) -> None:
    process = demo.process
    assert process is not None
    assert wait_until(lambda: demo.activated() >= 5 or process.poll() is not None, 90), demo.output
    assert process.poll() is None, demo.output
    started = descendants(process.pid)
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid, _ in started]
    # `sim line`, and the central service's ingest and serve at least
    assert len(started) >= 3, started
    assert any(b"central\0ingest" in c for c in commands) and any(b"central\0serve" in c for c in commands), commands
    if to_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    assert process.wait(90) == 0, demo.output   # a demo stopped is a demo ended: exit 0 (make says nothing)
    assert wait_until(lambda: not alive(started), 30), (alive(started), demo.output)
    assert busy(demo.endpoints()) == []
    assert not demo.link.exists()
    assert "summary:" in demo.output and "activated" in demo.output.split("summary:")[1], demo.output
    assert "Traceback" not in demo.output, demo.output
    assert_database_whole(demo.db)


@pytest.mark.parametrize(("signum", "to_group"), [(signal.SIGINT, True), (signal.SIGTERM, False),
                                                  (signal.SIGHUP, True)], ids=["ctrl-c", "sigterm", "hangup"])
def test_the_headless_demo_stopped_by_a_signal_stops_cleanly_and_leaves_nothing_behind(
        demo: Demo, signum: signal.Signals, to_group: bool) -> None:
    demo.start("--headless")
    stop_and_check(demo, signum, to_group=to_group)


def test_the_trace_page_the_demo_prints_for_a_stamp_it_activated_answers_with_the_product(demo: Demo) -> None:
    from station.config import DEFAULT_CONFIG, load_products

    process = demo.start("--headless")
    first = re.compile(r"trace page of the first stamp the central service confirmed \(open it\): (\S+)")
    assert wait_until(lambda: first.search(demo.output) or process.poll() is not None, 90), demo.output
    found = first.search(demo.output)
    assert found, demo.output
    url = found.group(1)
    central_port = demo.ports["--central-port"]
    assert url.startswith(f"http://127.0.0.1:{central_port}/01/"), url     # the resolver's host mapped to the server
    gtin = url.split("/")[4]
    name = {p.gtin: p.name for p in load_products(DEFAULT_CONFIG.parent / "products.yaml")}[gtin]
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    assert name in page.text                  # the master data loaded at start, the activation the station sent
    assert page.headers["content-type"].startswith("text/html")
    stop_and_check(demo, signal.SIGTERM, to_group=False)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)             # serve ended with the demo


def test_the_screen_demo_stopped_by_sigterm_stops_the_line_cleanly_and_leaves_nothing_behind(demo: Demo) -> None:
    # The operator screen (offscreen Qt), started by itself: SIGTERM reaches Python although Qt's loop is waiting.
    demo.start("--start", QT_QPA_PLATFORM="offscreen")
    stop_and_check(demo, signal.SIGTERM, to_group=False)
    assert "opening the operator screen" in demo.output


def test_a_killed_demo_takes_its_simulators_with_it(demo: Demo) -> None:
    process = demo.start("--headless")
    assert wait_until(lambda: demo.activated() >= 3 or process.poll() is not None, 90), demo.output
    started = descendants(process.pid)
    assert len(started) >= 3, started
    process.kill()                                # no handler runs: a crash
    process.wait(10)
    assert wait_until(lambda: not alive(started), 30), alive(started)
    assert wait_until(lambda: busy(demo.endpoints()) == [], 30)


def test_a_second_demo_on_the_same_ports_says_which_and_how_to_choose_others(demo: Demo) -> None:
    first = demo.start("--headless")
    assert wait_until(lambda: demo.activated() >= 1 or first.poll() is not None, 90), demo.output
    sims = [pid for pid, _ in descendants(first.pid) if b"sim\0line" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(sims) == 1
    second = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--headless", *demo.args()],
                            cwd=demo.folder, env=demo.env(), capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    printer = demo.ports["--printer-port"]
    assert re.search(rf"port {printer} \(the printer simulator's ZPL port\) is in use by pid {sims[0]} \(.*sim line",
                     second.stderr), second.stderr
    assert "choose another with --printer-port PORT" in second.stderr
    assert "choose another with --scanner-control-port PORT" in second.stderr
    assert "--scanner-link PATH" in second.stderr and "live pty" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout
    assert "simulated devices ready" not in second.stdout            # nothing was started
    # The fault examples the first one printed are commands that work as printed.
    hint = re.search(r"pull the paper: +(.+?) +\(and paper_out off\)", demo.output)
    assert hint, demo.output
    command = hint.group(1).replace("paper_out on", "status")
    done = subprocess.run(command, shell=True, cwd=demo.folder, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and '"paper_out": false' in done.stdout, done.stdout + done.stderr
    first.send_signal(signal.SIGTERM)
    assert first.wait(90) == 0, demo.output


def test_a_demo_beside_a_busy_port_names_it_its_holder_and_the_option(demo: Demo) -> None:
    held = demo.ports["--printer-control-port"]
    with socket.create_server(("127.0.0.1", held)):
        done = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--headless", *demo.args()],
                              cwd=demo.folder, env=demo.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (f"port {held} (the printer simulator's control port) is in use by pid {os.getpid()}" in done.stderr), \
        done.stderr
    assert "choose another with --printer-control-port PORT" in done.stderr
    assert "Traceback" not in done.stderr and "simulated devices ready" not in done.stdout
    assert not (demo.folder / "var").exists()                   # no broker, no central service was started


def test_a_live_pty_at_the_scanner_link_is_not_taken_over(demo: Demo) -> None:
    master, slave = pty.openpty()
    try:
        demo.link.symlink_to(os.ttyname(slave))
        done = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--headless", *demo.args()],
                              cwd=demo.folder, env=demo.env(), capture_output=True, text=True, timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{demo.link} (the scanner simulator's serial port link) is in use: it points to the live pty" in done.stderr
    assert "choose another with --scanner-link PATH" in done.stderr
    assert os.readlink(demo.link) != ""                           # left as it was


def test_sim_line_alone_refuses_a_busy_port_the_same_way(demo: Demo) -> None:
    held = demo.ports["--printer-port"]
    with socket.create_server(("127.0.0.1", held)):
        done = subprocess.run([sys.executable, "-m", "app.cli", "sim", "line", "--no-central", "--no-broker",
                               "--printer-port", str(held), "--scanner-link", str(demo.link)],
                              cwd=demo.folder, env=demo.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"station sim line: port {held} (the printer simulator's ZPL port) is in use" in done.stderr
    assert "Traceback" not in done.stderr
