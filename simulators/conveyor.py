"""A conveyor with a photo-eye and a reject gate, behind a line I/O module speaking lineio+tcp on TCP.

It speaks the protocol described in `drivers/lineio.py` (written again here, so the simulator checks that
the description is enough to build a module from): on each connection it sends
`HELLO 1 <name> <session> <last item>`, then `T <seq>` for every item that passes the photo-eye; it answers
`PING` with `PONG`, `R <seq> <pulse_ms>` with `K <seq>` (the gate fired), and a line it does not understand
with `E <why>`. The session is picked per simulator object, so `stop()` then `start()` is a network outage
(same session, items keep their numbers) and a new object on the same port is a rebooted module.

Items are numbered 1, 2, 3 … for the simulator's life. The conveyor runs whether or not a station is
connected, as a real one does: an item that passes while nobody is connected is recorded as not delivered,
and the station sees the jump in numbers. One station at a time: a new connection replaces the old one.

Every reject is recorded with its outcome: `rejected` (a known item, first time), `duplicate` (already
rejected), `unknown` (no item with that number passed) or `unbound` (seq 0, the gate fired for no item).

Control port (`control_port`; text lines, one reply line each, through simulators.control.CommandServer):

    rate <items/s>           change the rate while running
    pause | resume           stop / restart the conveyor
    burst <n>                n items back to back, now
    items                    how many items have passed
    rejected                 JSON: counts per outcome and the last rejected item numbers
    status                   JSON: rate, paused, items, delivered, rejects, connected, addresses
    disconnect               drop the station's connection now
    offline on|off           refuse connections (accept and close at once)
    silent on|off            a hung module: send nothing, answer nothing (the station's keepalive notices)

One module of about 450 lines: the belt's item clock, the module side of the protocol and its control commands
share the item numbering and the connection they are sent on.

About 450 lines in one module: the belt, the photo-eye, the reject gate and the I/O module's protocol share one
clock and one item list.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.url_options import yes_no
from simulators.control import CommandServer
from simulators.errors import SimulatorError
from simulators.tcp import TcpServer, join, shutdown, start_worker

__all__ = ["ConveyorSimulator", "Item", "RejectRecord"]

log = logging.getLogger(__name__)

_MAX_RATE = 10_000.0


@dataclass(frozen=True, slots=True)
class Item:
    """One item that passed the photo-eye; `at` is the simulator's clock (time.monotonic() unless given)."""

    seq: int
    at: float
    delivered: bool


@dataclass(frozen=True, slots=True)
class RejectRecord:
    """One `R` line received; `outcome` is rejected, duplicate, unknown or unbound."""

    seq: int
    pulse_ms: int
    at: float
    outcome: str


class ConveyorSimulator:
    """See the module docstring. `start()` returns self; `stop()` joins every thread it started."""

    def __init__(
        self,
        port: int = 0,
        rate: float = 10.0,
        seed: int | None = None,
        jitter: float = 0.0,
        *,
        host: str = "127.0.0.1",
        control_port: int | None = None,
        max_items: int | None = None,
        paused: bool = False,
        name: str = "conveyor-sim",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not 0 <= jitter < 1:
            raise SimulatorError(f"jitter must be from 0 to below 1 (a fraction of the item interval), "
                                 f"got {jitter}")
        if max_items is not None and max_items < 0:
            raise SimulatorError(f"max_items must not be negative, got {max_items}")
        if " " in name or not name:
            raise SimulatorError(f"name must be one word, got {name!r}")
        self.host = host
        self.jitter = jitter
        self.max_items = max_items
        self.name = name
        self.clock = clock   # paces the items (tests pass one they move by hand)
        self._rate = self._check_rate(rate)
        # One power-up of the module: a stop()/start() of the same simulator is a network outage, not a reboot.
        self.session = uuid.uuid4().hex[:8]
        self._random = random.Random(seed)
        self._requested_control_port = control_port
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._paused = paused
        self._bursts = 0
        self._switches = {"offline": False, "silent": False}
        self.items: list[Item] = []
        self.rejects: list[RejectRecord] = []
        self._rejected: set[int] = set()
        self._client: socket.socket | None = None
        self._server = TcpServer(self._serve, host, port, name="conveyor", refuse=self._refuses)
        self._control: CommandServer | None = None
        self._worker: threading.Thread | None = None
        self._running = False
        self._stopping = False

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> ConveyorSimulator:
        if self._running:
            raise SimulatorError("conveyor simulator already started")
        self._stopping = False
        self._server.start()
        if self._requested_control_port is not None:
            self._control = CommandServer(self._handlers(), host=self.host, port=self._requested_control_port,
                                          name="conveyor-control").start()
            self._requested_control_port = self._control.port
        self._running = True
        self._worker = start_worker(self._run_conveyor, "conveyor-items")
        log.info("conveyor simulator on %s at %g items/s", self.url, self._rate)
        return self

    def stop(self) -> None:
        if not self._running:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._server.stop()
        with self._send_lock:
            self._client = None
        if self._control is not None:
            self._control.stop()
            self._control = None
        join(self._worker)
        self._running = False

    def __enter__(self) -> ConveyorSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._server.running:
            raise SimulatorError("conveyor simulator not started")
        return self._server.port

    @property
    def url(self) -> str:
        return f"lineio+tcp://{self.host}:{self.port}"

    @property
    def control_url(self) -> str | None:
        return f"tcp://{self.host}:{self._control.port}" if self._control is not None else None

    def describe(self) -> dict[str, str | None]:
        return {"lineio": self.url, "control": self.control_url}

    # ------------------------------------------------------------------------------------------ the conveyor

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        with self._cond:
            self._rate = self._check_rate(value)
            self._cond.notify_all()

    @staticmethod
    def _check_rate(value: float) -> float:
        if not 0 < value <= _MAX_RATE:
            raise SimulatorError(f"rate must be items per second above 0 and up to {_MAX_RATE:g}, got {value}")
        return float(value)

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def burst(self, n: int) -> None:
        """`n` items pass back to back, now (bunched on the belt), whether paused or not."""
        if n < 1:
            raise SimulatorError(f"a burst needs at least one item, got {n}")
        with self._cond:
            self._bursts += n
            self._cond.notify_all()

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def finished(self) -> bool:
        """All `max_items` have passed."""
        return self.max_items is not None and len(self.items) >= self.max_items

    def wait_items(self, count: int, timeout: float) -> bool:
        """Wait until `count` items have passed (for tests)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.items) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    @property
    def delivered(self) -> int:
        return sum(1 for item in self.items if item.delivered)

    @property
    def rejected(self) -> list[int]:
        """Item numbers rejected once each, in the order the rejects came."""
        return [r.seq for r in self.rejects if r.outcome == "rejected"]

    def set_switches(self, *, offline: bool | None = None, silent: bool | None = None) -> None:
        if offline is not None:
            self._switches["offline"] = offline
        if silent is not None:
            self._switches["silent"] = silent

    def disconnect(self) -> None:
        """Drop the station's connection now."""
        with self._send_lock:
            client, self._client = self._client, None
        if client is not None:
            shutdown(client)

    def _run_conveyor(self) -> None:
        next_due = self.clock.monotonic()
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = self.clock.monotonic()
                    if self.finished:
                        self.clock.wait(self._cond)
                        continue
                    if self._bursts:
                        self._bursts -= 1
                        next_due = now + self._interval()  # the belt carries on after the bunch
                        break
                    if self._paused:
                        self.clock.wait(self._cond)
                        next_due = self.clock.monotonic()
                        continue
                    if now >= next_due:
                        # Keep to the rate on average; after a stall of a whole interval or more, go on from now
                        # (no catch-up flood, and no second item at once).
                        interval = self._interval()
                        next_due = next_due + interval if next_due + interval > now else now + interval
                        break
                    self.clock.wait(self._cond, next_due - now)
            self._pass_item()

    def _interval(self) -> float:
        base = 1.0 / self._rate
        if self.jitter:
            base *= 1 + self._random.uniform(-self.jitter, self.jitter)
        return base

    def _pass_item(self) -> None:
        # All under the item lock, so a new connection's HELLO count and its first T always agree.
        with self._cond:
            seq = len(self.items) + 1
            delivered = self._send(f"T {seq}\n".encode("ascii"))
            self.items.append(Item(seq, self.clock.monotonic(), delivered))
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------------ the module

    def _send(self, data: bytes, to: socket.socket | None = None) -> bool:
        if self._switches["silent"]:
            return False
        with self._send_lock:
            client = self._client if to is None else to
            if client is None:
                return False
            try:
                client.sendall(data)
                return True
            except OSError:
                return False

    def _refuses(self) -> bool:
        return self._stopping or self._switches["offline"]

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(0.5)  # bounds a send to a station that stopped reading; reads loop on it
        self.disconnect()     # one station at a time: the newest connection is the station
        with self._cond:
            # Under the item lock, so no T can come between the count given here and the next item.
            self._send(f"HELLO 1 {self.name} {self.session} {len(self.items)}\n".encode("ascii"), conn)
            with self._send_lock:
                self._client = conn
        buffer = b""
        try:
            while not self._stopping:
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    self._line(conn, raw.decode("ascii", "replace").strip())
                if len(buffer) > 256:
                    self._send(b"E line too long\n", conn)
                    buffer = b""
        finally:
            with self._send_lock:
                if self._client is conn:
                    self._client = None

    def _line(self, conn: socket.socket, line: str) -> None:
        if self._switches["silent"] or not line:
            return
        words = line.split(" ")
        if words == ["PING"]:
            self._send(b"PONG\n", conn)
        elif words == ["PONG"]:
            pass
        elif words[0] == "R" and len(words) == 3 and words[1].isdigit() and words[2].isdigit():
            seq, pulse_ms = int(words[1]), int(words[2])
            self._record_reject(seq, pulse_ms)
            self._send(f"K {seq}\n".encode("ascii"), conn)
        else:
            self._send(f"E not understood: {line[:60]}\n".encode("ascii", "replace"), conn)

    def _record_reject(self, seq: int, pulse_ms: int) -> None:
        with self._cond:
            if seq == 0:
                outcome = "unbound"
            elif seq > len(self.items):
                outcome = "unknown"
            elif seq in self._rejected:
                outcome = "duplicate"
            else:
                outcome = "rejected"
                self._rejected.add(seq)
            self.rejects.append(RejectRecord(seq, pulse_ms, self.clock.monotonic(), outcome))
            self._cond.notify_all()
        if outcome in ("unknown", "duplicate"):
            log.warning("conveyor: reject of item %d is %s", seq, outcome)

    # ------------------------------------------------------------------------------------------ control

    def status(self) -> dict[str, object]:
        with self._cond:
            return {
                "rate": self._rate,
                "paused": self._paused,
                "items": len(self.items),
                "delivered": self.delivered,
                "rejects": len(self.rejects),
                "connected": self.connected,
                **self._switches,
                **self.describe(),
            }

    def _handlers(self) -> dict[str, Callable[[list[str]], str]]:
        def rate(args: list[str]) -> str:
            if len(args) != 1:
                raise ValueError("usage: rate <items per second>")
            try:
                self.rate = float(args[0])
            except SimulatorError as exc:
                raise ValueError(str(exc)) from None
            return "ok"

        def burst(args: list[str]) -> str:
            if len(args) != 1 or not args[0].isdigit() or int(args[0]) < 1:
                raise ValueError("usage: burst <number of items>")
            self.burst(int(args[0]))
            return "ok"

        def switch(name: str) -> Callable[[list[str]], str]:
            def handler(args: list[str]) -> str:
                setting = yes_no(args[0]) if len(args) == 1 else None
                if setting is None:
                    raise ValueError(f"usage: {name} on|off")
                self.set_switches(**{name: setting})
                return "ok"
            return handler

        def rejected(_args: list[str]) -> str:
            with self._cond:
                counts = {outcome: 0 for outcome in ("rejected", "duplicate", "unknown", "unbound")}
                for record in self.rejects:
                    counts[record.outcome] += 1
                return json.dumps({**counts, "last": self.rejected[-50:]})

        def action(do: Callable[[], None]) -> Callable[[list[str]], str]:
            def handler(_args: list[str]) -> str:
                do()
                return "ok"
            return handler

        return {
            "rate": rate,
            "pause": action(self.pause),
            "resume": action(self.resume),
            "burst": burst,
            "items": lambda _args: str(len(self.items)),
            "rejected": rejected,
            "status": lambda _args: json.dumps(self.status()),
            "disconnect": action(self.disconnect),
            "offline": switch("offline"),
            "silent": switch("silent"),
        }
