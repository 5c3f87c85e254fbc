"""Transports on real sockets, ptys and files; ZebraPrinter status over TCP; SerialScanner on a pty."""

from __future__ import annotations

import os
import queue
import select
import socket
import stat
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.scanner import RefusalReason, ScanRead, ScanRefused, SerialScanner
from drivers.transport import (
    CupsTransport,
    FileTransport,
    SerialTransport,
    TcpTransport,
    Transport,
    TransportClosed,
    TransportError,
    UnsupportedUrl,
    open_transport,
)
from drivers.zebra.printer import PrinterError, PrinterFault, PrinterState, ZebraPrinter
from drivers.zebra.status import parse_host_status
from tests.clock import ManualClock
from tests.waiting import unread, wait_until

pytestmark = pytest.mark.integration

IDLE = (
    b"\x02030,0,0,0251,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02000,0,0,0,0,2,3,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)
HQES_MEDIA_AND_HEAD = (
    b"\x02\r\n  PRINTER STATUS\r\n   ERRORS:         1 00000000 00000005\r\n"
    b"   WARNINGS:       0 00000000 00000000\r\n\x03\r\n"
)
STATUS_TIMEOUT = 0.2


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    wait_until(lambda: not set(threading.enumerate()) - before, 2)
    left = set(threading.enumerate()) - before
    assert not left, f"threads still running: {left}"


class FakePrinter:
    """A TCP server on port 0 that answers ~HS and ~HQES as told, and records every byte it receives.

    `between_pieces`, when set, splits the ~HS reply mid-frame as a real printer's can arrive: the first piece is
    sent, then `between_pieces()` is called (it returns once the client has read that piece), then the rest."""

    def __init__(self, answer_hs: bool = True, answer_hqes: bool = True) -> None:
        self.answer_hs = answer_hs
        self.answer_hqes = answer_hqes
        self.between_pieces: Callable[[], object] | None = None
        self.received = bytearray()
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._drop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="fake printer")
        self._thread.start()

    def drop_connection(self) -> None:
        """Close the current client connection, as a printer does when switched off."""
        self._drop.set()
        assert wait_until(lambda: not self._drop.is_set(), 2), "the fake printer did not drop its connection"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._server.close()

    def wait_received(self, size: int, timeout: float = 2.0) -> bytes:
        wait_until(lambda: len(self.received) >= size, timeout)
        with self._lock:
            return bytes(self.received)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        pending = b""
        while not self._stop.is_set():
            if self._drop.is_set():
                self._drop.clear()
                return
            ready, _, _ = select.select([conn], [], [], 0.02)
            if not ready:
                continue
            data = conn.recv(4096)
            if not data:
                return
            with self._lock:
                self.received += data
            pending += data
            while True:
                hs, hqes = pending.find(b"~HS"), pending.find(b"~HQES")
                if hqes >= 0 and (hs < 0 or hqes < hs):
                    pending = pending[hqes + 5:]
                    if self.answer_hqes:
                        conn.sendall(HQES_MEDIA_AND_HEAD)
                elif hs >= 0:
                    pending = pending[hs + 3:]
                    if self.answer_hs and self.between_pieces is not None:
                        conn.sendall(IDLE[:37])
                        self.between_pieces()
                        conn.sendall(IDLE[37:])
                    elif self.answer_hs:
                        conn.sendall(IDLE)
                else:
                    pending = pending[-4:]
                    break


@pytest.fixture
def make_printer() -> Iterator[Callable[..., FakePrinter]]:
    servers: list[FakePrinter] = []

    def make(**kwargs: bool) -> FakePrinter:
        server = FakePrinter(**kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# --- URLs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://printer", "tcp://printer: missing port (expected tcp://host:9100)"),
        ("tcp://:9100", "tcp://:9100: missing host"),
        ("tcp://printer:http", "port must be a number"),
        ("tcp://printer:9100/x", "unexpected path"),
        ("tcp://printer:9100?timeout=3", "unknown option timeout (known: connect_timeout, write_timeout)"),
        ("tcp://printer:9100?connect_timeout=-1", "connect_timeout must be seconds"),
        ("usb://printer", "usb://printer: unknown scheme 'usb'"),
        ("/dev/ttyUSB0", "/dev/ttyUSB0: not a device URL"),
        ("serial://", "missing device"),
        ("serial:///dev/ttyUSB0?baud=fast", "baud must be a positive whole number, got 'fast'"),
        ("serial:///dev/ttyUSB0?parity=X", "parity must be one of N, E, O, M, S"),
        ("serial:///dev/ttyUSB0?speed=9600", "unknown option speed"),
        ("serial:///dev/ttyUSB0?baud=1&baud=2", "option baud given twice"),
        ("file://dev/usb/lp0", "three slashes"),
        ("file:///", "missing path"),
        ("file:///dev/usb/lp0?x=1", "take no options"),
        ("cups://", "missing queue name"),
        ("cups://zebra?copies=2", "take no options"),
    ],
)
def test_unsupported_urls(url: str, message: str) -> None:
    with pytest.raises(UnsupportedUrl) as caught:
        open_transport(url)
    assert message in str(caught.value)
    assert str(caught.value).startswith(url)


def test_serial_url_mapping() -> None:
    device = open_transport("serial:///dev/ttyUSB0?baud=115200&parity=E&stopbits=2&rtscts=1")
    assert isinstance(device, SerialTransport)
    assert device.port_name == "/dev/ttyUSB0"
    assert device.settings["baudrate"] == 115200
    assert device.settings["parity"] == "E"
    assert device.settings["stopbits"] == 2.0
    assert device.settings["rtscts"] is True
    loop = open_transport("serial://loop://?baud=19200&logging=debug")
    assert isinstance(loop, SerialTransport)
    assert loop.port_name == "loop://?logging=debug"  # pyserial's own option stays on its URL
    assert loop.settings["baudrate"] == 19200
    windows = open_transport("serial://COM3")
    assert isinstance(windows, SerialTransport) and windows.port_name == "COM3"


def test_open_transport_does_not_connect() -> None:
    transport = open_transport("tcp://127.0.0.1:1")
    assert isinstance(transport, TcpTransport)
    assert not transport.is_open


# --- tcp:// ----------------------------------------------------------------------------------------------


def test_tcp_write_read_and_peer_close(make_printer: Callable[..., FakePrinter]) -> None:
    server = make_printer()
    with open_transport(server.url) as transport:
        assert transport.is_open and transport.can_read
        sock = transport._sock  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        transport.write(b"^XA^XZ~HS")
        reply = b""
        deadline = time.monotonic() + 2
        while len(reply) < len(IDLE) and time.monotonic() < deadline:
            reply += transport.read(0.5)
        assert reply == IDLE
        assert transport.read(0.05) == b""  # timeout, not an error
        server.drop_connection()
        with pytest.raises(TransportClosed, match=f"{server.url}: connection closed by peer"):
            transport.read(1.0)
    assert not transport.is_open
    assert server.wait_received(9).startswith(b"^XA^XZ~HS")


def test_tcp_connect_refused_names_url() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    transport = open_transport(f"tcp://127.0.0.1:{port}?connect_timeout=0.5")
    with pytest.raises(TransportError, match=f"tcp://127.0.0.1:{port}.*: cannot connect"):
        transport.open()


def test_tcp_use_before_open_is_an_error() -> None:
    transport = open_transport("tcp://127.0.0.1:9")
    with pytest.raises(TransportError, match="not open"):
        transport.write(b"x")


# --- ZebraPrinter over tcp:// -----------------------------------------------------------------------------


def test_query_status_idle_reply_in_two_pieces(make_printer: Callable[..., FakePrinter]) -> None:
    server = make_printer()
    transport = open_transport(server.url)
    # The printer sends the rest of its reply only once ZebraPrinter has read the first piece: two reads, always.
    pieces: list[bytes] = []
    first_read = threading.Event()
    read = transport.read

    def reading(timeout: float) -> bytes:
        chunk = read(timeout)
        if chunk:
            pieces.append(chunk)
            first_read.set()
        return chunk

    transport.read = reading  # type: ignore[method-assign]
    server.between_pieces = lambda: first_read.wait(5)
    with ZebraPrinter(transport, status_timeout=5.0) as printer:
        status = printer.query_status()
    assert pieces == [IDLE[:37], IDLE[37:]]
    assert status.state is PrinterState.READY
    assert status.faults == ()
    assert status.host_status == parse_host_status(IDLE)
    assert server.wait_received(3) == b"~HS"


def test_query_status_silent_hs_falls_back_to_hqes(make_printer: Callable[..., FakePrinter]) -> None:
    server = make_printer(answer_hs=False)
    with ZebraPrinter(open_transport(server.url), status_timeout=STATUS_TIMEOUT) as printer:
        status = printer.query_status()
    assert status.state is PrinterState.FAULTED
    assert status.faults == (PrinterFault.PAPER_OUT, PrinterFault.HEAD_OPEN)
    assert status.error_status is not None and status.host_status is None
    assert server.wait_received(8) == b"~HS~HQES"


def test_query_status_silent_printer_is_unreachable(make_printer: Callable[..., FakePrinter]) -> None:
    server = make_printer(answer_hs=False, answer_hqes=False)
    with ZebraPrinter(open_transport(server.url), status_timeout=STATUS_TIMEOUT) as printer:
        status = printer.query_status()
    assert status.state is PrinterState.UNREACHABLE
    assert status.detail == f"{server.url}: printer did not answer ~HS nor ~HQES within 0.2s"
    assert server.wait_received(8) == b"~HS~HQES"   # how long each question waited: on the clock, below


class DeviceOnTheClock(Transport):
    """A printer's line whose time is a ManualClock: what the printer writes is logged with the clock's time,
    and a read passes its whole timeout on that clock unless the device's answer is due sooner (`answers`: the
    reply to a command and how long after it the reply comes). ZebraPrinter's deadlines are asserted exactly."""

    def __init__(self, clock: ManualClock, answers: dict[bytes, tuple[float, bytes]], *,
                 bytes_per_second: float | None = None) -> None:
        super().__init__("tcp://printer-on-the-clock:9100")
        self.clock = clock
        self.answers = answers
        self.line_speed = bytes_per_second   # a write takes its bytes' time on the line (a serial port)
        self.written: list[tuple[float, bytes]] = []   # (seconds since the clock's start, bytes)
        self._due: list[tuple[float, bytes]] = []
        self._open = False

    @property
    def can_read(self) -> bool:
        return True

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def write(self, data: bytes) -> None:
        now = self.clock.now()
        self.written.append((round(now - self.clock.start, 9), data))
        if self.line_speed:
            self.clock.advance(len(data) / self.line_speed)
        if data in self.answers:
            after, reply = self.answers[data]
            self._due.append((now + after, reply))

    def read(self, timeout: float) -> bytes:
        now = self.clock.now()
        due = sorted(d for d in self._due if d[0] <= now + timeout)
        if due:
            self._due.remove(due[0])
            self.clock.advance(max(0.0, due[0][0] - now))
            return due[0][1]
        if timeout > 0:
            self.clock.advance(max(timeout, 1e-9))   # at least a nanosecond: a float remainder must not spin
        return b""


def test_each_status_question_waits_status_timeout_on_the_printers_clock() -> None:
    # Silent on both: ~HS at 0, ~HQES once ~HS waited its 0.2 s, UNREACHABLE once ~HQES waited its own.
    clock = ManualClock(threads=0)
    silent = DeviceOnTheClock(clock, {})
    with ZebraPrinter(silent, status_timeout=STATUS_TIMEOUT, clock=clock) as printer:
        assert printer.query_status().state is PrinterState.UNREACHABLE
    assert silent.written == [(0.0, b"~HS"), (pytest.approx(0.2, abs=1e-6), b"~HQES")]
    assert clock.now() - clock.start == pytest.approx(0.4, abs=1e-6)
    # An answer just inside the timeout is taken; no ~HQES is asked.
    clock = ManualClock(threads=0)
    late = DeviceOnTheClock(clock, {b"~HS": (0.199, IDLE)})
    with ZebraPrinter(late, status_timeout=STATUS_TIMEOUT, clock=clock) as printer:
        assert printer.query_status().state is PrinterState.READY
    assert late.written == [(0.0, b"~HS")] and clock.now() - clock.start == pytest.approx(0.199, abs=1e-6)
    # One just past it is not waited for: the printer asks ~HQES at 0.2 s.
    clock = ManualClock(threads=0)
    too_late = DeviceOnTheClock(clock, {b"~HS": (0.201, IDLE), b"~HQES": (0.0, HQES_MEDIA_AND_HEAD)})
    with ZebraPrinter(too_late, status_timeout=STATUS_TIMEOUT, clock=clock) as printer:
        assert printer.query_status().state is PrinterState.FAULTED
    assert too_late.written == [(0.0, b"~HS"), (pytest.approx(0.2, abs=1e-6), b"~HQES")]


def test_a_download_goes_in_chunks_and_its_time_is_measured_on_the_printers_clock() -> None:
    clock = ManualClock(threads=0)
    line = DeviceOnTheClock(clock, {}, bytes_per_second=960)   # 9600 baud, 8N1
    data = bytes(range(256)) * 10
    with ZebraPrinter(line, clock=clock) as printer:
        seconds = printer.send_file(data, "font", chunk=1024)
    assert [len(chunk) for _, chunk in line.written] == [1024, 1024, 512]
    assert b"".join(chunk for _, chunk in line.written) == data
    assert seconds == pytest.approx(2560 / 960, abs=1e-6)


def test_printer_switched_off_and_on(make_printer: Callable[..., FakePrinter]) -> None:
    server = make_printer()
    with ZebraPrinter(open_transport(server.url), status_timeout=STATUS_TIMEOUT) as printer:
        assert printer.query_status().state is PrinterState.READY
        server.drop_connection()
        lost = printer.query_status()
        assert lost.state is PrinterState.UNREACHABLE
        assert "connection closed by peer" in lost.detail
        # The printer reopens its transport by itself on the next call.
        assert printer.query_status().state is PrinterState.READY
    assert server.connections == 2


def test_query_status_with_nothing_listening() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    printer = ZebraPrinter(open_transport(f"tcp://127.0.0.1:{port}"), status_timeout=STATUS_TIMEOUT)
    status = printer.query_status()
    assert status.state is PrinterState.UNREACHABLE
    assert f"tcp://127.0.0.1:{port}: cannot connect" in status.detail
    with pytest.raises(PrinterError, match=f"tcp://127.0.0.1:{port}"):
        printer.send_label(b"^XA^XZ")


def test_labels_and_status_from_two_threads(make_printer: Callable[..., FakePrinter]) -> None:
    server = make_printer()
    labels = [f"^XA^FH_^FDlabel {n:03d}^FS^XZ\n".encode() for n in range(50)]
    statuses = []
    with ZebraPrinter(open_transport(server.url), status_timeout=1.0) as printer:

        def poll() -> None:
            for _ in range(10):
                statuses.append(printer.query_status().state)

        poller = threading.Thread(target=poll)
        poller.start()
        for label in labels:
            printer.send_label(label)
        poller.join(5)
        printer.cancel_all()
    assert statuses == [PrinterState.READY] * 10
    received = server.wait_received(sum(map(len, labels)) + 10 * 3 + 3)
    # Every label arrived whole: no ~HS was written into the middle of one.
    stripped = received.replace(b"~HS", b"")
    assert stripped == b"".join(labels) + b"~JA"


# --- serial:// -------------------------------------------------------------------------------------------


def test_serial_loop_url() -> None:
    with open_transport("serial://loop://?baud=115200") as transport:
        transport.write(b"hello\r\n")
        assert transport.read(0.5) == b"hello\r\n"
        assert transport.read(0.05) == b""


def test_serial_pyserial_rejects_unknown_option_at_open() -> None:
    with pytest.raises(TransportError, match="serial://loop://\\?bogus=1: cannot open"):
        open_transport("serial://loop://?bogus=1").open()


def make_pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no CR->LF translation before pyserial configures the port
    return master, slave, os.ttyname(slave)


def test_serial_scanner_on_a_pty() -> None:
    master, slave, name = make_pty()
    reads: queue.Queue[ScanRead] = queue.Queue()
    refusals: queue.Queue[ScanRefused] = queue.Queue()
    scanner = SerialScanner(
        open_transport(f"serial://{name}?baud=9600"),
        terminator=b"\r\n",
        max_length=64,
        on_read=reads.put,
        on_refused=refusals.put,
    )
    try:
        with scanner:
            assert scanner.wait_connected(2)
            url = b"https://id.gs1.org/01/08938512345673/21/A1B2C3D4"
            os.write(master, url[:20])
            assert wait_until(lambda: unread(slave) == 0)   # the scanner took the first piece: two reads, always
            os.write(master, url[20:] + b"\r\n")
            os.write(master, b"\x00\x1b\xff\xfe\r\n")  # line noise
            os.write(master, b"X" * 500 + b"\r\n")  # an over-long line
            os.write(master, "Mè xừng\r\n".encode())
            first = reads.get(timeout=2)
            second = reads.get(timeout=2)
            garbage = refusals.get(timeout=2)
            too_long = refusals.get(timeout=2)
    finally:
        os.close(master)
        os.close(slave)
    assert first.text == url.decode() and first.raw == url
    assert second.text == "Mè xừng"
    assert garbage.reason is RefusalReason.NOT_TEXT and garbage.raw == b"\x00\x1b\xff\xfe"
    assert too_long.reason is RefusalReason.TOO_LONG and too_long.raw == b"X" * 64
    assert (scanner.read_count, scanner.refused_count) == (2, 2)
    assert list(scanner.refused) == [garbage, too_long]
    assert not scanner.running and not scanner.transport.is_open


def test_serial_scanner_reconnects_when_the_port_comes_back(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    master, slave, name = make_pty()
    link.symlink_to(name)
    reads: queue.Queue[ScanRead] = queue.Queue()
    scanner = SerialScanner(open_transport(f"serial://{link}"), on_read=reads.put, max_backoff=0.2)
    second: tuple[int, int, str] | None = None
    try:
        with scanner:
            assert scanner.wait_connected(2)
            os.write(master, b"BEFORE\r\n")
            assert reads.get(timeout=2).text == "BEFORE"
            # Unplug: the pty goes away, then a new one appears behind the same stable name.
            os.close(master)
            os.close(slave)
            assert wait_until(lambda: not scanner.connected, 2)
            assert scanner.last_error is not None
            second = make_pty()
            link.unlink()
            link.symlink_to(second[2])
            assert scanner.wait_connected(3)
            os.write(second[0], b"AFTER\r\n")
            assert reads.get(timeout=2).text == "AFTER"
    finally:
        if second is not None:
            os.close(second[0])
            os.close(second[1])
    assert scanner.read_count == 2


def test_scanner_survives_a_failing_callback() -> None:
    master, slave, name = make_pty()
    seen: queue.Queue[str] = queue.Queue()

    def on_read(read: ScanRead) -> None:
        seen.put(read.text)
        if read.text == "BOOM":
            raise RuntimeError("consumer bug")

    try:
        with SerialScanner(open_transport(f"serial://{name}"), on_read=on_read) as scanner:
            assert scanner.wait_connected(2)
            os.write(master, b"BOOM\r\nNEXT\r\n")
            assert seen.get(timeout=2) == "BOOM"
            assert seen.get(timeout=2) == "NEXT"
    finally:
        os.close(master)
        os.close(slave)


# --- file:// ---------------------------------------------------------------------------------------------


def test_file_transport_appends_to_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "lp0"
    path.write_bytes(b"")
    transport = open_transport(f"file://{path}")
    assert isinstance(transport, FileTransport)
    with transport:
        assert not transport.can_read
        transport.write(b"^XA^FDone^FS^XZ\n")
        with pytest.raises(TransportError, match="write-only"):
            transport.read(0.1)
    with transport:
        transport.write("^XA^FH_^FDLô^FS^XZ\n".encode())
    assert path.read_bytes() == "^XA^FDone^FS^XZ\n^XA^FH_^FDLô^FS^XZ\n".encode()


def test_file_transport_missing_device_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "usb" / "lp0"
    with pytest.raises(TransportError, match="no such file"):
        open_transport(f"file://{path}").open()
    assert not path.exists()


def test_file_transport_reads_a_character_device() -> None:
    # A pty is a character device, like /dev/usb/lp0: read-back works.
    master, slave, name = make_pty()
    try:
        assert stat.S_ISCHR(os.stat(name).st_mode)
        with open_transport(f"file://{name}") as transport:
            assert transport.can_read
            transport.write(b"~HS")
            assert os.read(master, 16) == b"~HS"
            os.write(master, IDLE)
            reply = b""
            while len(reply) < len(IDLE):
                chunk = transport.read(1.0)
                assert chunk
                reply += chunk
            assert reply == IDLE
            assert transport.read(0.05) == b""
    finally:
        os.close(master)
        os.close(slave)


def test_zebra_printer_over_a_regular_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "labels.zpl"
    path.touch()
    printer = ZebraPrinter(open_transport(f"file://{path}"), status_timeout=STATUS_TIMEOUT)
    with printer:
        printer.send_label(b"^XA^XZ")
        status = printer.query_status()
    assert status.state is PrinterState.READY and not status.known
    assert status.detail == f"status not available: no read-back on file://{path}"
    assert path.read_bytes() == b"^XA^XZ"


def test_zebra_printer_on_a_silent_character_device() -> None:
    # /dev/null reads as a device that never answers: that is an unreachable printer, not "no read-back".
    with ZebraPrinter(open_transport("file:///dev/null"), status_timeout=STATUS_TIMEOUT) as printer:
        status = printer.query_status()
    assert status.state is PrinterState.UNREACHABLE


# --- cups:// ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_cups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `lpr` on PATH that keeps each job, and a fake `lpstat` that lists two queues."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    jobs = tmp_path / "jobs"
    lpr = bin_dir / "lpr"
    lpr.write_text(
        "#!/bin/sh\n"
        'case "$1" in -Pbroken) echo "lpr: Error - printer broken is stopped" >&2; exit 1;; esac\n'
        f'echo "$@" >> "{tmp_path}/args"\n'
        f'cat >> "{jobs}"\n'
    )
    lpr.chmod(0o755)
    lpstat = bin_dir / "lpstat"
    lpstat.write_text(
        "#!/bin/sh\n"
        'echo "printer zebra_raw is idle.  enabled since Thu 03 Dec 2026 08:00:00 AM +07"\n'
        'echo "printer broken disabled since Thu 03 Dec 2026 08:00:00 AM +07 -"\n'
        'echo "\tPaused"\n'
    )
    lpstat.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_cups_sends_utf8_bytes_untouched(fake_cups: Path) -> None:
    transport = open_transport("cups://zebra_raw")
    assert isinstance(transport, CupsTransport) and not transport.can_read
    label = "^XA^CI28^FDLô/Lot: Huế^FS^XZ\n".encode()
    with transport:
        transport.write(label)
        with pytest.raises(TransportError, match="no read-back"):
            transport.read(0.1)
    assert (fake_cups / "jobs").read_bytes() == label
    assert (fake_cups / "args").read_text() == "-Pzebra_raw -o raw\n"


def test_cups_failed_job_is_an_error(fake_cups: Path) -> None:
    with open_transport("cups://broken") as transport:
        with pytest.raises(TransportError, match="cups://broken: lpr failed: lpr: Error - printer broken is stopped"):
            transport.write(b"^XA^XZ")


def test_cups_without_cups_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))   # no lpstat
    with pytest.raises(TransportError, match=r"cups://zebra_raw: cannot list CUPS queues \(is CUPS installed\?\)"):
        open_transport("cups://zebra_raw").open()


def test_cups_unknown_queue(fake_cups: Path) -> None:
    expected = r"cups://nope: no CUPS queue named 'nope' \(lpstat -p lists: zebra_raw, broken\)"
    with pytest.raises(TransportError, match=expected):
        open_transport("cups://nope").open()


def test_zebra_printer_on_cups_has_no_status(fake_cups: Path) -> None:
    with ZebraPrinter(open_transport("cups://zebra_raw")) as printer:
        status = printer.query_status()
        printer.send_label(b"^XA^XZ")
    assert status.state is PrinterState.READY
    assert status.faults == () and not status.known
    assert status.detail == "status not available: no read-back on cups://zebra_raw"


# --- the printer service keeps the label's font on the printer -------------------------------------------------------

CONFIG = Path(__file__).resolve().parents[2] / "config"
FONT_PATH = CONFIG / "fonts" / "VNSANS.TTF"
STAMP_FIELDS = {"qr": "https://truyxuat.example.vn/01/08938603001013/10/MX1/21/7K3Q9XH2WP", "lot": "MX1",
                "product_name": "Mè xừng Thông Hương", "producer": "Cơ sở Thông Hương", "serial": "7K3Q9XH2WP",
                "gtin": "08938603001013", "gtin12": "893860300101", "production_date": "26/11/2026",
                "expiry_date": "28/05/2027"}


def test_the_serial_line_speed_sets_the_download_estimate() -> None:
    assert open_transport("serial:///dev/ttyUSB0?baud=9600").bytes_per_second == 960
    assert open_transport("serial:///dev/ttyUSB0?baud=9600&parity=E&stopbits=2").bytes_per_second == 800
    assert open_transport("tcp://127.0.0.1:9100").bytes_per_second is None


def test_the_font_is_downloaded_once_and_again_only_when_the_printer_lost_it(tmp_path: Path) -> None:
    from app.devices import PrinterService
    from simulators.printer import PrinterSimulator
    from station.ports import PrinterCondition

    def service(sim: PrinterSimulator, template: Path, fonts: dict[str, Path]) -> PrinterService:
        # No poll thread to speak of: the test polls itself, so nothing races the steps below.
        printer = PrinterService(sim.url, template, status_interval_s=60, status_timeout_s=1, fonts=fonts)
        printer.start()
        return printer

    def lose_power(sim: PrinterSimulator, printer: PrinterService, reset: bool = False) -> None:
        sim.factory_reset() if reset else sim.power_cycle()
        # The next status poll finds the connection gone; the one after it is a new connection.
        assert wait_until(lambda: printer.poll().condition is PrinterCondition.UNREACHABLE, timeout=5)

    font = FONT_PATH.read_bytes()
    with PrinterSimulator(port=0) as sim:
        first = service(sim, CONFIG / "labels" / "stamp-60x40.zpl", {"E:VNSANS.TTF": FONT_PATH})
        # Downloaded at start, before the line runs, and measured.
        assert sim.downloads == ["E:VNSANS.TTF"]
        assert first.font_downloads[0][:2] == ("E:VNSANS.TTF", len(font))
        first.print_label(STAMP_FIELDS)
        assert sim.wait_printed(1) and sim.labels[-1].missing_glyphs == []
        first.stop()
        # A new connection (the station restarted): the printer still lists the font, nothing is sent again.
        second = service(sim, CONFIG / "labels" / "stamp-60x40.zpl", {"E:VNSANS.TTF": FONT_PATH})
        assert second.font_downloads == []
        # Switched off and on: E: is flash, the font stays; the stored format (R:) is sent again.
        lose_power(sim, second)
        second.print_label(STAMP_FIELDS)
        assert sim.wait_printed(2) and sim.labels[-1].missing_glyphs == []
        assert sim.downloads == ["E:VNSANS.TTF"] and len(sim.stored_formats) == 1
        # A replaced or factory-reset printer has nothing: the font goes again, before the label.
        lose_power(sim, second, reset=True)
        second.print_label(STAMP_FIELDS)
        assert sim.wait_printed(3) and sim.labels[-1].missing_glyphs == []
        assert sim.downloads == ["E:VNSANS.TTF", "E:VNSANS.TTF"]
        second.stop()

        # A font kept in RAM (R:) goes with every power cycle, and comes back with the next label.
        ram_template = tmp_path / "ram.zpl"
        ram_template.write_text("^XA\n^CI28\n^FO10,10^A@N,26,26,R:VNRAM.TTF^FH_^FD${product_name}^FS\n^XZ\n",
                                encoding="utf-8")
        ram = service(sim, ram_template, {"R:VNRAM.TTF": FONT_PATH})
        assert sim.downloads[-1] == "R:VNRAM.TTF"
        lose_power(sim, ram)
        ram.print_label(STAMP_FIELDS)
        assert sim.wait_printed(4) and sim.labels[-1].missing_glyphs == []
        assert sim.downloads.count("R:VNRAM.TTF") == 2
        ram.stop()


def test_a_printer_that_does_not_keep_the_font_is_an_error_naming_it(tmp_path: Path) -> None:
    from app.devices import PrinterService
    from simulators.printer import PrinterSimulator
    from station.ports import PrinterPortError

    with PrinterSimulator(port=0, flash_bytes=50_000) as sim:   # too little room left on E: for the font
        printer = PrinterService(sim.url, CONFIG / "labels" / "stamp-60x40.zpl", status_interval_s=60,
                                 fonts={"E:VNSANS.TTF": FONT_PATH})
        try:
            printer.start()   # logged, not raised: the line has not started
            with pytest.raises(PrinterPortError, match=r"did not keep font E:VNSANS.TTF .*free space on drive E:"):
                printer.print_label(STAMP_FIELDS)
            assert sim.printed_count == 0 and sim.files == {}
            assert "drive E: has 50000 bytes free" in sim.unknown_controls[-1]
        finally:
            printer.stop()
