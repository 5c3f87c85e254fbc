"""The scanner simulator, read through its pty with pyserial as the station reads a real scanner."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from PIL import Image

from simulators.errors import SimulatorError
from simulators.printer import PrinterSimulator
from simulators.scanner import ScannerSimulator
from drivers.zebra.render import RenderedLabel, render_labels
from tests.clock import ManualClock
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

URI = "https://truyxuat.example.vn/01/08938603001013/10/MX2611A/21/7K3Q9XH2WP?17=270528"
TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "labels" / "stamp-60x40.zpl"


def stamp(uri: str = URI) -> bytes:
    """The real template with every placeholder filled (values escaped the way the builder does)."""

    def escape(value: str) -> str:
        return "".join(
            f"_{b:02X}" if b in b"^~_" or b < 0x20 or b > 0x7E else chr(b) for b in value.encode("utf-8")
        )

    values = {"qr": uri, "product_name": "Mè xừng Thông Hương 250g", "producer": "Thông Hương", "lot": "MX2611A",
              "production_date": "26/11/2025", "expiry_date": "28/05/2027", "serial": "7K3Q9XH2WP",
              "gtin12": "893860300101"}
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("${" + name + "}", escape(value))
    return text.encode("utf-8")


def qr_label(data: str) -> RenderedLabel:
    return render_labels(f"^XA^PW240^LL240^FO20,20^BQN,2,4^FDMA,{data}^FS^XZ".encode())[0]


@pytest.fixture
def baseline_threads() -> Iterator[None]:
    before, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    yield
    assert threading.active_count() <= before, "a simulator left threads running"
    assert len(os.listdir("/proc/self/fd")) <= fds, "a simulator left file descriptors open"


@pytest.fixture
def scanner(tmp_path: Path, baseline_threads: None) -> Iterator[ScannerSimulator]:
    with ScannerSimulator(link=str(tmp_path / "scanner"), seed=7) as sim:
        yield sim


@pytest.fixture
def port(scanner: ScannerSimulator) -> Iterator[serial.Serial]:
    assert scanner.link is not None
    ser = serial.Serial(scanner.link, 9600, timeout=2)
    yield ser
    ser.close()


def test_printed_stamp_is_decoded_from_its_image_and_sent_over_the_pty(tmp_path: Path, baseline_threads: None) -> None:
    link = tmp_path / "ttyScanner"
    clock = ManualClock(threads=1)   # the conveyor's travel time (read_delay) passes only as the test says
    with PrinterSimulator(port=0) as printer, \
            ScannerSimulator(link=str(link), read_delay=0.05, clock=clock) as scanner:
        printer.add_listener(scanner.on_label)
        assert link.is_symlink() and os.readlink(link) == scanner.port
        assert scanner.describe() == {"port": scanner.port, "link": str(link), "url": f"serial://{link}"}
        with serial.Serial(str(link), 115200, timeout=3) as ser:
            with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as sock:
                sock.sendall(stamp())
                assert printer.wait_printed(1)
                clock.advance(0.049)          # the label is still on its way to the scanner
                assert ser.in_waiting == 0 and scanner.counts["sent"] == 0
                clock.advance(0.001, settle=False)
                line = ser.read_until(b"\r\n")
            assert line == URI.encode() + b"\r\n"
        assert scanner.counts["sent"] == 1
        assert scanner.history[0].truth == URI and scanner.history[0].label_index == 0
    assert not link.exists()


def test_decodes_the_image_not_the_zpl(scanner: ScannerSimulator, port: serial.Serial) -> None:
    label = qr_label("ABC123")
    scanner.on_label(Image.new("1", (200, 200), 1))  # a blank label: nothing to read
    scanner.on_label(label)
    assert port.read_until(b"\r\n") == b"ABC123\r\n"
    assert scanner.wait_idle()
    assert scanner.counts["decode_failures"] == 1 and scanner.counts["sent"] == 1


def test_no_read_rate_one_sends_nothing(scanner: ScannerSimulator, port: serial.Serial) -> None:
    scanner.set_rates(no_read_rate=1.0)
    for _ in range(3):
        scanner.on_label(qr_label("X1"))
    assert scanner.wait_idle()
    port.timeout = 0.2
    assert port.read(100) == b""
    assert scanner.counts["no_reads"] == 3 and scanner.counts["sent"] == 0


def test_no_read_message_when_configured(tmp_path: Path, baseline_threads: None) -> None:
    with ScannerSimulator(no_read_rate=1.0, no_read_message=b"NOREAD") as scanner:
        with serial.Serial(scanner.port, timeout=2) as ser:
            scanner.on_label(qr_label("X1"))
            assert ser.read_until(b"\r\n") == b"NOREAD\r\n"


def test_garbage_is_not_utf8_and_ends_with_the_terminator(scanner: ScannerSimulator, port: serial.Serial) -> None:
    scanner.set_rates(garbage_rate=1.0)
    scanner.on_label(qr_label("X1"))
    line = port.read_until(b"\r\n")
    assert line.endswith(b"\r\n") and b"\r\n" not in line[:-2]
    with pytest.raises(UnicodeDecodeError):
        line[:-2].decode("utf-8")
    assert scanner.counts["garbage"] == 1


def test_misread_changes_exactly_one_character(scanner: ScannerSimulator, port: serial.Serial) -> None:
    scanner.set_rates(misread_rate=1.0)
    for _ in range(5):
        scanner.on_label(qr_label(URI))
    for _ in range(5):
        line = port.read_until(b"\r\n")[:-2].decode()
        assert len(line) == len(URI) and line != URI
        assert sum(a != b for a, b in zip(line, URI)) == 1
    assert scanner.counts["misreads"] == 5


def test_rates_change_while_running_and_are_validated(scanner: ScannerSimulator, port: serial.Serial) -> None:
    scanner.set_rates(no_read_rate=1.0)
    scanner.on_label(qr_label("A"))
    assert scanner.wait_idle()
    scanner.set_rates(no_read_rate=0.0)
    scanner.on_label(qr_label("B"))
    assert port.read_until(b"\r\n") == b"B\r\n"
    with pytest.raises(SimulatorError):
        scanner.set_rates(no_read_rate=0.6, garbage_rate=0.6)
    assert scanner.rates == {"no_read_rate": 0.0, "misread_rate": 0.0, "garbage_rate": 0.0}


def test_mixed_rates_follow_the_seed(tmp_path: Path, baseline_threads: None) -> None:
    def run() -> list[str]:
        with ScannerSimulator(no_read_rate=0.3, misread_rate=0.3, garbage_rate=0.2, seed=42) as sim:
            label = qr_label("SEEDED")
            for _ in range(20):
                sim.on_label(label)
            assert sim.wait_idle()
            return [h.kind for h in sim.history]

    first = run()
    assert first == run()
    assert {"no_read", "misread", "garbage", "sent"} <= set(first)


def test_inject_types_a_line_by_hand(scanner: ScannerSimulator, port: serial.Serial) -> None:
    scanner.inject("8938603001013")
    scanner.inject(b"\xffraw")
    assert port.read_until(b"\r\n") == b"8938603001013\r\n"
    assert port.read_until(b"\r\n") == b"\xffraw\r\n"
    assert scanner.counts["injected"] == 2


def test_what_the_station_writes_is_drained(scanner: ScannerSimulator, port: serial.Serial) -> None:
    port.write(b"TRIGGER\r\n" * 2000)  # more than a pty buffer holds: must not block
    port.flush()
    wait_until(lambda: len(scanner.from_host) >= 18000)
    assert bytes(scanner.from_host[:9]) == b"TRIGGER\r\n" and len(scanner.from_host) == 18000


def test_stale_link_is_replaced_and_a_real_file_is_not(tmp_path: Path, baseline_threads: None) -> None:
    link = tmp_path / "scanner"
    link.symlink_to("/dev/pts/does-not-exist")
    with ScannerSimulator(link=str(link)) as sim:
        assert os.readlink(link) == sim.port
    assert not link.is_symlink()
    plain = tmp_path / "plain"
    plain.write_text("keep me")
    with pytest.raises(SimulatorError):
        ScannerSimulator(link=str(plain)).start()
    assert plain.read_text() == "keep me"
