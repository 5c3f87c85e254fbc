"""The printer simulator, driven over real TCP sockets the way the station's driver and a tester drive it."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from simulators.errors import SimulatorError
from simulators.printer import PrintedLabel, PrinterSimulator, ZplStreamParser
from tests.clock import ManualClock
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

IDLE_HS = (
    b"\x02030,0,0,0251,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02000,0,0,0,0,2,3,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)


def label(text: str, length: int = 80) -> bytes:
    return f"^XA^CI28^PW200^LL{length}^FO10,10^A0N,30,30^FD{text}^FS^XZ".encode()


@pytest.fixture
def clock() -> ManualClock:
    """The printer's clock: a label at `ips` takes its time only as the test moves it, and `settle()` returns once
    the print thread has done all it could, so "nothing printed" is a fact, not a guess after a sleep."""
    return ManualClock(threads=1)


@pytest.fixture
def printer(clock: ManualClock) -> Iterator[PrinterSimulator]:
    before, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    with PrinterSimulator(port=0, control_port=0, clock=clock) as sim:
        clock.settle()   # the print thread is up and waiting for formats
        yield sim
    assert threading.active_count() <= before, "printer simulator left threads running"
    assert len(os.listdir("/proc/self/fd")) <= fds, "printer simulator left sockets open"


@pytest.fixture
def client(printer: PrinterSimulator) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", printer.port), timeout=2)
    yield sock
    sock.close()


@pytest.fixture
def control(printer: PrinterSimulator) -> Iterator[socket.socket]:
    assert printer.control_port is not None
    sock = socket.create_connection(("127.0.0.1", printer.control_port), timeout=2)
    yield sock
    sock.close()


def ask(sock: socket.socket, line: str) -> str:
    """One control-port command, one reply line."""
    sock.sendall(line.encode() + b"\n")
    return read_line(sock)


def read_line(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("control port closed")
        data += chunk
    return data.decode().rstrip("\n")


def read_frames(sock: socket.socket, frames: int, timeout: float = 2.0) -> bytes:
    """Read until `frames` ETX CR LF endings have arrived (replies may be split across reads)."""
    sock.settimeout(timeout)
    data = b""
    while data.count(b"\x03\r\n") < frames:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


HQES_PAPER_OUT = b"ERRORS:         1 00000000 00000001"


def assert_next_reply_is_hqes(sock: socket.socket) -> bytes:
    """The printer answers on one connection in order: after a ~HS that must go unanswered, ~HQES is asked, and
    the first bytes back must be its reply (had ~HS answered, its frames would have come first)."""
    sock.sendall(b"~HQES")
    reply = read_frames(sock, 1)
    assert reply.startswith(b"\x02\r\n PRINTER STATUS"), reply
    return reply


def test_url_and_describe(printer: PrinterSimulator) -> None:
    assert printer.url == f"tcp://127.0.0.1:{printer.port}"
    assert printer.describe() == {"printer": printer.url, "control": f"tcp://127.0.0.1:{printer.control_port}"}


STREAM = label("one") + label("two") + label("Mè") + label("four")
_CUTS = [5, 17, 40, len(label("one")) + 3, 150, len(STREAM) - 2]
PIECES = [STREAM[a:b] for a, b in zip([0, *_CUTS], [*_CUTS, len(STREAM)])]   # cut inside commands and formats


def test_the_stream_parser_takes_formats_cut_anywhere() -> None:
    # What the printer does with each read, whatever TCP made of the sends: the cuts fall inside ^CI28, inside
    # a field, between formats and inside ^XZ.
    parser = ZplStreamParser()
    events = [event for piece in PIECES for event in parser.feed(piece)]
    assert events == [("format", label(t)) for t in ("one", "two", "Mè", "four")]
    assert not parser.partial


def test_labels_split_across_sends_and_several_per_send(printer: PrinterSimulator, client: socket.socket) -> None:
    for piece in PIECES:
        client.sendall(piece)
    assert printer.wait_printed(4)
    assert [lbl.texts for lbl in printer.labels] == [["one"], ["two"], ["Mè"], ["four"]]
    assert [lbl.index for lbl in printer.labels] == [0, 1, 2, 3]
    assert printer.received_count == 4 and printer.printed_count == 4
    assert printer.labels[0].image is not None and printer.labels[0].image.size == (200, 80)


def test_idle_host_status_is_the_three_frames(client: socket.socket) -> None:
    client.sendall(b"~HS")
    assert read_frames(client, 3) == IDLE_HS


def test_control_command_inside_a_format_runs_at_once(printer: PrinterSimulator, client: socket.socket) -> None:
    # A raw ~ in field data is a command to the printer: this is why every field is sent with ^FH escapes.
    client.sendall(b"^XA^PW200^LL80^FO10,10^A0N,30,30^FDab~HScd^FS")
    reply = read_frames(client, 3)
    assert reply.startswith(b"\x02030,0,0,0251,000,0,0,1,")  # h = 1: a format is half received
    client.sendall(b"^XZ")
    assert printer.wait_printed(1)
    assert printer.labels[0].texts == ["abcd"]


def test_paper_out_silences_hs_answers_hqes_and_prints_nothing(
    printer: PrinterSimulator, client: socket.socket, clock: ManualClock
) -> None:
    printer.paper_out = True
    client.sendall(label("held"))
    assert wait_until(lambda: printer.received_count == 1)
    client.sendall(b"~HS")
    reply = assert_next_reply_is_hqes(client).decode()
    assert "PRINTER STATUS" in reply
    assert "ERRORS:         1 00000000 00000001" in reply
    assert "WARNINGS:       0 00000000 00000000" in reply
    clock.advance(60)
    assert printer.printed_count == 0 and printer.queued == 1
    printer.head_open = True
    client.sendall(b"~HQES")
    assert "ERRORS:         1 00000000 00000005" in read_frames(client, 1).decode()
    printer.set_faults(paper_out=False, head_open=False)
    assert printer.wait_printed(1)
    assert printer.labels[0].texts == ["held"]
    client.sendall(b"~HS")
    assert read_frames(client, 3).startswith(b"\x02030,0,0,0080,000,")


def test_ribbon_and_head_show_in_hs_frame_two_when_answering(printer: PrinterSimulator) -> None:
    printer.head_open = True
    frames = printer.host_status().split(b"\r\n")
    assert frames[1] == b"\x02000,0,1,0,0,2,3,0,00000000,1,000\x03"


def test_paused_answers_hs_with_the_flag_and_holds_labels(printer: PrinterSimulator, client: socket.socket,
                                                          clock: ManualClock) -> None:
    client.sendall(b"~PP" + label("a") + label("b"))
    assert wait_until(lambda: printer.received_count == 2)
    client.sendall(b"~HS")
    frames = read_frames(client, 3)
    assert frames.startswith(b"\x02030,0,1,0080,002,0,0,0,")  # paused, 2 formats waiting
    assert b",00000002," in frames  # labels remaining
    clock.advance(60)
    assert printer.printed_count == 0
    client.sendall(b"~PS")
    assert printer.wait_printed(2)


def test_cancel_all_drops_every_queued_label(printer: PrinterSimulator, client: socket.socket,
                                             clock: ManualClock) -> None:
    printer.pause()
    client.sendall(label("x") + label("y") + label("z"))
    assert wait_until(lambda: printer.queued == 3)
    client.sendall(b"~JA")
    assert wait_until(lambda: printer.cancelled_count == 3)
    assert printer.queued == 0
    printer.resume()
    client.sendall(label("after"))
    assert printer.wait_printed(1)
    clock.settle()   # the print thread has nothing more to print
    assert [lbl.texts for lbl in printer.labels] == [["after"]]
    assert printer.received_count == 4


def test_cancel_stops_the_label_being_printed(printer: PrinterSimulator, client: socket.socket,
                                             clock: ManualClock) -> None:
    printer.ips = 0.5  # 80 dots = 0.39 in: 0.79 s per label
    client.sendall(label("slow"))
    assert wait_until(lambda: printer.queued == 1)
    clock.advance(0.5)                       # half way through the label
    assert printer.printed_count == 0
    client.sendall(b"~JA")
    assert wait_until(lambda: printer.cancelled_count == 1)
    clock.advance(1.0)                       # long past the time it would have taken
    assert printer.printed_count == 0 and printer.queued == 0
    client.sendall(label("next"))            # and the printer goes on with the next label, in its own time
    assert wait_until(lambda: printer.queued == 1)
    clock.advance(0.78)
    assert printer.printed_count == 0
    clock.advance(0.01)
    assert [lbl.texts for lbl in printer.labels] == [["next"]]


def test_disconnect_drops_the_client_which_can_reconnect(printer: PrinterSimulator, client: socket.socket) -> None:
    client.sendall(b"~HS")
    read_frames(client, 3)
    printer.disconnect()
    client.settimeout(2)
    assert client.recv(100) == b""  # closed by the printer
    with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as again:
        again.sendall(label("back"))
        assert printer.wait_printed(1)


def test_offline_refuses_connections(printer: PrinterSimulator) -> None:
    printer.offline = True
    with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as sock:
        assert sock.recv(100) == b""
    printer.offline = False
    with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as sock:
        sock.sendall(b"~HS")
        assert read_frames(sock, 3) == IDLE_HS


def test_silent_answers_nothing_but_still_prints(printer: PrinterSimulator, client: socket.socket) -> None:
    printer.silent = True
    client.sendall(b"~HS~HQES" + label("quiet"))
    assert printer.wait_printed(1)           # so it has read, and not answered, the two queries before the label
    printer.silent = False
    client.sendall(b"~HI")
    assert read_frames(client, 1) == b"\x02ZT410-SIM,V1.0,8,8192KB\x03\r\n"   # the first bytes back: ~HI's


def test_slow_printing_keeps_order_and_takes_its_time(client: socket.socket, printer: PrinterSimulator,
                                                      clock: ManualClock) -> None:
    printer.ips = 4.0  # 80 dots = 10 mm = 0.394 in -> 98.4 ms a label
    client.sendall(b"".join(label(f"n{i}") for i in range(4)))
    assert wait_until(lambda: printer.received_count == 4)
    clock.settle()
    client.sendall(b"~HS")
    assert read_frames(client, 3).startswith(b"\x02030,0,0,0080,004,")   # the one under the head counts
    started = clock.now()
    done: list[float] = []
    while len(done) < 4 and clock.now() - started < 1.0:
        before = printer.printed_count
        clock.advance(0.001)
        done += [round(clock.now() - started, 3)] * (printer.printed_count - before)
    # Each label ends in the first millisecond past its 98.4 ms, and the next starts from there.
    assert done == [0.099, 0.198, 0.297, 0.396]
    assert [lbl.texts[0] for lbl in printer.labels] == ["n0", "n1", "n2", "n3"]
    client.sendall(b"~HS")
    assert read_frames(client, 3).startswith(b"\x02030,0,0,0080,000,")


def test_quantity_prints_copies(printer: PrinterSimulator, client: socket.socket) -> None:
    client.sendall(b"^XA^PQ3^PW100^LL40^FO1,1^FDc^FS^XZ")
    assert printer.wait_printed(3)
    assert [lbl.copy for lbl in printer.labels] == [1, 2, 3]
    assert printer.received_count == 1


def test_stored_format_and_recall(printer: PrinterSimulator, client: socket.socket) -> None:
    client.sendall(b"^XA^DFR:STAMP.ZPL^FS^CI28^PW300^LL200^FO10,10^A0N,20,20^FN1^FS^FO10,40^BQN,2,3^FN2^FS^XZ")
    client.sendall(b"^XA^XFR:STAMP.ZPL^FS^FN1^FH_^FDM_C3_A8^FS^FN2^FDMA,ABC-1^FS^XZ")
    assert printer.wait_printed(1)
    printed = printer.labels[0]
    assert printed.texts == ["Mè"]
    assert printed.image is not None
    codes = zxingcpp.read_barcodes(printed.image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [c.text for c in codes] == ["ABC-1"]
    assert printer.stored_formats.keys() == {"R:STAMP.ZPL"}


def test_listener_gets_each_printed_label_on_the_print_thread(
    printer: PrinterSimulator, client: socket.socket
) -> None:
    seen: list[tuple[int, str]] = []
    printer.add_listener(lambda lbl: seen.append((lbl.index, threading.current_thread().name)))
    printer.add_listener(lambda lbl: 1 / 0)  # a broken listener must not stop the printer
    client.sendall(label("a") + label("b"))
    assert printer.wait_printed(2)
    assert wait_until(lambda: len(seen) == 2)
    assert seen == [(0, "printer-print"), (1, "printer-print")]


def test_control_port_commands(printer: PrinterSimulator, control: socket.socket, client: socket.socket) -> None:
    assert ask(control, "paper_out on") == "ok"
    status = json.loads(ask(control, "status"))
    assert status["paper_out"] is True and status["faulted"] is True
    client.sendall(b"~HS")
    assert HQES_PAPER_OUT in assert_next_reply_is_hqes(client)
    assert ask(control, "paper_out off") == "ok"
    assert ask(control, "pause") == "ok"
    assert printer.paused
    assert ask(control, "resume") == "ok"
    assert ask(control, "ips 4") == "ok" and printer.ips == 4.0
    assert ask(control, "ips off") == "ok" and printer.ips is None
    assert ask(control, "ips fast").startswith("error: ")
    assert ask(control, "head_open maybe") == "error: usage: head_open on|off"
    assert ask(control, "bogus").startswith("error: unknown command 'bogus'")
    client.sendall(label("counted"))
    assert printer.wait_printed(1)
    assert ask(control, "labels") == "1"
    assert ask(control, "received") == "1"
    one = json.loads(ask(control, "label 0"))
    assert one["texts"] == ["counted"]
    assert ask(control, "label 7").startswith("error: ")
    assert ask(control, "disconnect") == "ok"
    client.settimeout(2)
    assert client.recv(10) == b""
    assert ask(control, "help").startswith("commands: ")
    assert ask(control, "quit") == "ok"


def test_control_port_subscribe_streams_printed_labels(printer: PrinterSimulator, control: socket.socket) -> None:
    assert ask(control, "subscribe") == "ok"
    with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as sock:
        sock.sendall(b"^XA^PW200^LL200^FO20,20^BQN,2,4^FDQA,HELLO^FS^XZ")
        record = json.loads(read_line(control))
    assert record["index"] == 0
    assert record["zpl"].startswith("^XA")
    image = Image.open(io.BytesIO(base64.b64decode(record["png"])))
    assert image.size == (200, 200)
    assert [c.text for c in zxingcpp.read_barcodes(image.convert("L"))] == ["HELLO"]


def test_control_port_fault_names_and_counts(printer: PrinterSimulator, control: socket.socket) -> None:
    for name in ("ribbon_out", "head_open", "over_temperature", "under_temperature", "cutter", "silent"):
        assert ask(control, f"{name} on") == "ok"
        assert getattr(printer, name) is True
        assert ask(control, f"{name} off") == "ok"
    assert ask(control, "cancelled") == "0"


def test_bad_settings_raise_simulator_error(printer: PrinterSimulator) -> None:
    with pytest.raises(SimulatorError):
        printer.set_faults(jammed=True)
    with pytest.raises(SimulatorError):
        printer.ips = 0


def test_stream_parser_waits_for_split_commands() -> None:
    parser = ZplStreamParser()
    assert parser.feed(b"~H") == []
    assert parser.feed(b"QE") == []
    assert parser.feed(b"S^X") == [("control", "HQ", "ES")]
    assert parser.feed(b"A^FDa") == [] and parser.partial
    assert parser.feed(b"^X") == []
    assert parser.feed(b"Z") == [("format", b"^XA^FDa^XZ")]
    assert not parser.partial


def test_subscribed_labels_come_back_whole_for_a_simulator_in_another_process(
        printer: PrinterSimulator, control: socket.socket) -> None:
    # A camera or scanner simulator in its own process rebuilds each label from the subscription: its image and
    # the fields the renderer drew (where the code is, what it holds), with no second rendering.
    assert ask(control, "subscribe") == "ok"
    with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as sock:
        sock.sendall(b"^XA^PW200^LL200^FO20,20^BQN,2,4^FDQA,HELLO^FS^XZ")
        rebuilt = PrintedLabel.from_json(json.loads(read_line(control)))
    assert rebuilt.index == 0 and rebuilt.image is not None and rebuilt.image.size == (200, 200)
    assert rebuilt.qr_data == ["HELLO"] == printer.labels[0].qr_data
    (qr,) = [f for f in rebuilt.rendered.fields if f.kind == "qr"]
    assert (qr.x, qr.y) == (20, 20) and qr.width == qr.height > 0


def test_a_long_run_keeps_the_recent_labels_and_counts_them_all(client: socket.socket) -> None:
    with PrinterSimulator(port=0, control_port=0, keep=4) as small:
        with socket.create_connection(("127.0.0.1", small.port), timeout=2) as sock:
            for n in range(12):
                sock.sendall(label(f"n{n}"))
            assert small.wait_printed(12)
        assert small.printed_count == 12 and small.received_count == 12
        assert 4 <= len(small.labels) <= 5 and small.labels[-1].texts == ["n11"] and small.labels[-1].index == 11
        assert len(small.received) <= 5
        assert small.control_port is not None
        with socket.create_connection(("127.0.0.1", small.control_port), timeout=2) as ctl:
            assert json.loads(ask(ctl, "label 11"))["texts"] == ["n11"]
            assert json.loads(ask(ctl, "label -1"))["texts"] == ["n11"]
            assert "no longer kept" in ask(ctl, "label 0")


# --- downloaded fonts: ~DY, ^HW, what survives a power cycle -------------------------------------------------------

FONT = (Path(__file__).resolve().parents[2] / "config" / "fonts" / "VNSANS.TTF").read_bytes()


def listing(sock: socket.socket, pattern: str) -> bytes:
    sock.sendall(f"^XA^HW{pattern}^XZ".encode())
    sock.settimeout(2)
    data = b""
    while b"\x03" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def vietnamese_label() -> bytes:
    return ("^XA^CI28^PW400^LL60^FO10,10^A@N,26,26,E:VNSANS.TTF^FH_^FD"
            + "".join(f"_{b:02X}" for b in "Số/No: Mè xừng".encode()) + "^FS^XZ").encode()


def test_a_font_downloaded_in_binary_is_listed_and_prints_vietnamese(printer: PrinterSimulator,
                                                                     client: socket.socket) -> None:
    client.sendall(vietnamese_label())
    assert printer.wait_printed(1)
    # Not there yet: the printer falls back to a resident font and prints boxes.
    assert printer.labels[0].missing_glyphs == [("Số/No: Mè xừng", "A", "ốừ")]
    # Binary data holds ^ and ~ bytes: the printer counts them, it does not run them.
    assert b"^" in FONT or b"~" in FONT
    client.sendall(f"~DYE:VNSANS,B,T,{len(FONT)},0,".encode() + FONT)
    reply = listing(client, "E:*.TTF")
    assert reply.startswith(b"\x02\r\nDIR E:*.TTF\r\n") and reply.endswith(b"bytes free\r\n\x03")
    assert f"* E:VNSANS.TTF  {len(FONT):06d}".encode() in reply
    assert printer.files == {"E:VNSANS.TTF": FONT} and printer.downloads == ["E:VNSANS.TTF"]
    client.sendall(vietnamese_label())
    assert printer.wait_printed(2)
    assert printer.labels[1].missing_glyphs == [] and printer.labels[1].texts == ["Số/No: Mè xừng"]
    assert printer.printed_count == 2   # the ^HW format printed nothing
    assert printer.unknown_controls == []


def test_a_font_sent_as_hex_or_zb64_is_stored_too(printer: PrinterSimulator, client: socket.socket) -> None:
    small = FONT[:300]
    client.sendall(f"~DYR:HEXFONT,A,T,{len(small)},0,{small.hex().upper()}".encode())
    client.sendall(f"~DYR:B64FONT,A,T,{len(small)},0,:B64:{base64.b64encode(small).decode()}:1234".encode())
    client.sendall(b"~DYR:BADFONT,A,T,10,0,XYZ^XA^XZ")
    assert wait_until(lambda: len(printer.downloads) == 2 and printer.unknown_controls)
    assert printer.files == {"R:HEXFONT.TTF": small, "R:B64FONT.TTF": small}
    assert "BADFONT" in printer.unknown_controls[0]


def test_power_cycle_keeps_flash_and_loses_ram(printer: PrinterSimulator, client: socket.socket,
                                               control: socket.socket) -> None:
    client.sendall(f"~DYE:VNSANS,B,T,{len(FONT)},0,".encode() + FONT)
    client.sendall(f"~DYR:VNRAM,B,T,{len(FONT)},0,".encode() + FONT)
    client.sendall(b"^XA^DFR:STAMP.ZPL^FS^FO1,1^FN1^FS^XZ^XA^CWV,E:VNSANS.TTF^XZ")
    assert wait_until(lambda: len(printer.downloads) == 2 and "R:STAMP.ZPL" in printer.stored_formats)
    assert printer.wait_printed(1)   # the ^CW format
    printer.pause()
    client.sendall(label("held"))
    assert wait_until(lambda: printer.queued == 1)
    assert json.loads(ask(control, "files")) == {"E:VNSANS.TTF": len(FONT), "R:VNRAM.TTF": len(FONT)}
    assert ask(control, "power_cycle") == "ok"
    client.settimeout(2)
    assert client.recv(10) == b""                  # the connection went with the power
    assert printer.files.keys() == {"E:VNSANS.TTF"} and printer.stored_formats == {}
    assert printer.font_aliases == {} and printer.queued == 0 and printer.lost_at_power_off == 1
    assert not printer.paused
    assert json.loads(ask(control, "status"))["power_cycles"] == 1
    assert ask(control, "factory_reset") == "ok"
    assert json.loads(ask(control, "files")) == {}
    assert "power_cycle" in ask(control, "help")


def test_the_zebra_driver_lists_and_downloads_files(printer: PrinterSimulator) -> None:
    from drivers.transport import open_transport
    from drivers.zebra.printer import ZebraPrinter
    from drivers.zebra.zpl import download_font

    with ZebraPrinter(open_transport(printer.url), status_timeout=2) as zebra:
        assert zebra.list_files("E:VNSANS.TTF") == {}
        zebra.send_file(download_font("E:VNSANS.TTF", FONT), "font", chunk=4096)
        assert zebra.list_files("E:*.TTF") == {"E:VNSANS.TTF": len(FONT)}
        assert zebra.query_status().state.value == "ready"   # nothing of the font was left to read as a reply
    assert printer.downloads == ["E:VNSANS.TTF"]   # (the time it took, on the printer's clock: test_transports)
