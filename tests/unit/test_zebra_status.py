"""~HS and ~HQES parsing, byte for byte, including replies split across reads."""

from __future__ import annotations

import pytest

from drivers.errors import DeviceError
from drivers.zebra.printer import PrinterFault, PrinterState, status_from_error_status, status_from_host_status
from drivers.zebra.status import (
    HostStatus,
    HostStatusAssembler,
    HqesAssembler,
    StatusParseError,
    parse_host_status,
    parse_hqes,
)

# The idle printer's ~HS reply of the ZPL II Programming Guide's ~HS example.
IDLE = (
    b"\x02030,0,0,0251,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02000,0,0,0,0,2,3,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)


def reply(frame1: str, frame2: str, frame3: str = "1234,0") -> bytes:
    return b"".join(b"\x02" + frame.encode() + b"\x03\r\n" for frame in (frame1, frame2, frame3))


PAPER_OUT = reply("030,1,0,0251,000,0,0,0,000,0,0,0", "000,0,0,0,0,2,3,0,00000000,1,000")
PAUSED = reply("030,0,1,0251,003,0,0,0,000,0,0,0", "000,0,0,0,0,2,3,0,00000012,1,000")
HEAD_OPEN = reply("030,0,0,0251,000,0,0,0,000,0,0,0", "000,0,1,0,0,2,3,0,00000000,1,000")


def test_idle_example_every_field() -> None:
    status = parse_host_status(IDLE)
    assert status == HostStatus(
        communication_settings=30,
        paper_out=False,
        paused=False,
        label_length_dots=251,
        formats_in_buffer=0,
        buffer_full=False,
        diagnostic_mode=False,
        partial_format=False,
        corrupt_ram=False,
        under_temperature=False,
        over_temperature=False,
        function_settings=0,
        head_open=False,
        ribbon_out=False,
        thermal_transfer=False,
        print_mode="2",
        print_width_mode=3,
        label_waiting=False,
        labels_remaining=0,
        format_while_printing=True,
        graphics_stored=0,
        password="1234",
        static_ram=False,
    )
    assert status.print_mode_name == "tear-off"
    assert "1234" not in repr(status)  # the printer's password never reaches a log line


def test_idle_is_ready() -> None:
    printer_status = status_from_host_status(parse_host_status(IDLE))
    assert printer_status.state is PrinterState.READY
    assert printer_status.faults == ()
    assert printer_status.known


def test_paper_out() -> None:
    status = parse_host_status(PAPER_OUT)
    assert status.paper_out and not status.paused and not status.head_open
    printer_status = status_from_host_status(status)
    assert printer_status.state is PrinterState.FAULTED
    assert printer_status.faults == (PrinterFault.PAPER_OUT,)
    assert printer_status.detail == "paper out"


def test_paused_with_formats_waiting() -> None:
    status = parse_host_status(PAUSED)
    assert status.paused and not status.paper_out
    assert status.formats_in_buffer == 3
    assert status.labels_remaining == 12
    assert status_from_host_status(status).faults == (PrinterFault.PAUSED,)


def test_head_open() -> None:
    status = parse_host_status(HEAD_OPEN)
    assert status.head_open and not status.ribbon_out
    assert status_from_host_status(status).faults == (PrinterFault.HEAD_OPEN,)


def test_every_fault_flag_maps() -> None:
    status = parse_host_status(
        reply("030,1,1,0251,000,1,0,1,000,0,1,1", "000,0,1,1,1,2,3,1,00000000,1,000")
    )
    assert status.partial_format and status.label_waiting and status.thermal_transfer
    assert status_from_host_status(status).faults == (
        PrinterFault.PAPER_OUT,
        PrinterFault.RIBBON_OUT,
        PrinterFault.HEAD_OPEN,
        PrinterFault.PAUSED,
        PrinterFault.OVER_TEMPERATURE,
        PrinterFault.UNDER_TEMPERATURE,
        PrinterFault.BUFFER_FULL,
    )


@pytest.mark.parametrize("offset", range(1, len(IDLE)))
def test_split_at_every_offset(offset: int) -> None:
    assembler = HostStatusAssembler()
    first = assembler.feed(IDLE[:offset])
    second = assembler.feed(IDLE[offset:])
    # The reply is complete at the last ETX; the CR LF after it belongs to no frame.
    if offset > IDLE.rindex(b"\x03"):
        assert (first, second) == (parse_host_status(IDLE), None)
    else:
        assert (first, second) == (None, parse_host_status(IDLE))


def test_one_byte_at_a_time() -> None:
    assembler = HostStatusAssembler()
    results = [assembler.feed(bytes([byte])) for byte in PAUSED]
    assert results[:-3] == [None] * (len(PAUSED) - 3)
    # Completed at the final ETX; the trailing CR LF adds nothing.
    assert results[-3] == parse_host_status(PAUSED)
    assert results[-2:] == [None, None]


def test_junk_before_stx_and_between_frames() -> None:
    noisy = b"garbage\r\n\xff\xfe" + IDLE.replace(b"\r\n", b"\r\n??\n", 1)
    assert parse_host_status(noisy) == parse_host_status(IDLE)


def test_partial_frame_cut_by_new_stx_is_dropped() -> None:
    assembler = HostStatusAssembler()
    assert assembler.feed(b"\x02030,1,0,02") is None
    assert assembler.feed(IDLE) == parse_host_status(IDLE)


def test_stale_tail_of_earlier_reply_is_skipped() -> None:
    # Frames 2 and 3 of a reply whose first frame we never saw, then a whole new reply.
    tail = PAPER_OUT[PAPER_OUT.index(b"\x02", 1):]
    assert parse_host_status(tail + HEAD_OPEN).head_open


def test_two_replies_in_one_chunk_give_the_newest() -> None:
    assert HostStatusAssembler().feed(IDLE + PAPER_OUT).paper_out  # type: ignore[union-attr]


def test_assembler_is_reusable() -> None:
    assembler = HostStatusAssembler()
    assert assembler.feed(PAPER_OUT).paper_out  # type: ignore[union-attr]
    assert assembler.feed(IDLE) == parse_host_status(IDLE)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x02030,0,0,0251\x03\r\n", "frame has 4 fields, expected 12, 11 or 2"),
        (reply("030,x,0,0251,000,0,0,0,000,0,0,0", "000,0,0,0,0,2,3,0,00000000,1,000"),
         r"frame 1 field 2 \(paper out\) should be 0 or 1, got 'x'"),
        (reply("030,0,0,02a1,000,0,0,0,000,0,0,0", "000,0,0,0,0,2,3,0,00000000,1,000"),
         r"frame 1 field 4 \(label length\) should be digits, got '02a1'"),
        (reply("030,0,0,0251,000,0,0,0,000,0,0,0", "000,0,2,0,0,2,3,0,00000000,1,000"),
         r"frame 2 field 3 \(head open\) should be 0 or 1"),
        (reply("030,0,0,0251,000,0,0,0,000,0,0,0", "000,0,0,0,0,22,3,0,00000000,1,000"),
         r"frame 2 field 6 \(print mode\) should be one letter or digit"),
        (reply("030,0,0,0251,000,0,0,0,000,0,0,0", "000,0,0,0,0,2,3,0,00000000,1,000", "12a4,0"),
         r"frame 3 field 1 \(password\) should be digits"),
        (b"\x02\xc3\xa9\x03", "not ASCII"),
        (b"\x02" + b"0" * 200 + b"\x03", "longer than 128 bytes"),
        (IDLE[:-12], "incomplete ~HS reply"),
        (b"", "incomplete ~HS reply"),
        (b"no frames at all", "incomplete ~HS reply"),
    ],
)
def test_malformed_host_status(data: bytes, message: str) -> None:
    with pytest.raises(StatusParseError, match=message):
        parse_host_status(data)


def test_assembler_recovers_after_malformed_frame() -> None:
    assembler = HostStatusAssembler()
    with pytest.raises(StatusParseError):
        assembler.feed(b"\x02nonsense\x03\r\n")
    assert assembler.feed(IDLE) == parse_host_status(IDLE)


def test_malformed_frame_in_same_chunk_as_good_reply_is_not_fatal() -> None:
    assert HostStatusAssembler().feed(b"\x02nonsense\x03" + IDLE) == parse_host_status(IDLE)


def test_status_parse_error_is_a_device_error() -> None:
    assert issubclass(StatusParseError, DeviceError)


HQES_MEDIA_AND_HEAD = (
    b"\x02\r\n  PRINTER STATUS\r\n"
    b"   ERRORS:         1 00000000 00000005\r\n"
    b"   WARNINGS:       0 00000000 00000000\r\n"
    b"\x03\r\n"
)


def test_hqes_media_out_and_head_open() -> None:
    errors = parse_hqes(HQES_MEDIA_AND_HEAD.decode())
    assert errors.has_errors
    assert errors.error_bits == 5
    assert errors.media_out and errors.head_open
    assert not errors.ribbon_out and not errors.cutter_fault
    assert errors.error_names == ("media out", "head open")
    status = status_from_error_status(errors)
    assert status.state is PrinterState.FAULTED
    assert status.faults == (PrinterFault.PAPER_OUT, PrinterFault.HEAD_OPEN)
    assert status.detail == "~HQES: media out, head open"


def test_hqes_ribbon_cutter_and_temperature() -> None:
    errors = parse_hqes("ERRORS: 1 00000000 0000001A\nWARNINGS: 1 00000000 00000002\n")
    assert errors.ribbon_out and errors.cutter_fault and errors.over_temperature
    assert errors.has_warnings and errors.warning_bits == 2
    assert status_from_error_status(errors).faults == (
        PrinterFault.RIBBON_OUT,
        PrinterFault.CUTTER,
        PrinterFault.OVER_TEMPERATURE,
    )


def test_hqes_unknown_error_bit_is_still_a_fault() -> None:
    status = status_from_error_status(parse_hqes("ERRORS: 1 00000000 00010000\nWARNINGS: 0 00000000 00000000"))
    assert status.state is PrinterState.FAULTED
    assert status.faults == ()
    assert status.detail == "~HQES: error code 0000000000010000"


def test_hqes_no_errors() -> None:
    errors = parse_hqes("PRINTER STATUS\nERRORS: 0 00000000 00000000\nWARNINGS: 0 00000000 00000000\n")
    assert not errors.has_errors and errors.error_bits == 0
    assert status_from_error_status(errors).state is PrinterState.READY


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PRINTER STATUS\nWARNINGS: 0 00000000 00000000\n", "no 'ERRORS: f gggggggg hhhhhhhh' line"),
        ("ERRORS: 1 00000000 00000005\n", "no 'WARNINGS: f gggggggg hhhhhhhh' line"),
        ("ERRORS: 1 0000 0005\nWARNINGS: 0 00000000 00000000\n", "no 'ERRORS"),
        ("ERRORS: 2 00000000 00000005\nWARNINGS: 0 00000000 00000000\n", "no 'ERRORS"),
        ("", "no 'ERRORS"),
    ],
)
def test_malformed_hqes(text: str, message: str) -> None:
    with pytest.raises(StatusParseError, match=message):
        parse_hqes(text)


@pytest.mark.parametrize("offset", range(1, len(HQES_MEDIA_AND_HEAD)))
def test_hqes_split_at_every_offset(offset: int) -> None:
    assembler = HqesAssembler()
    first = assembler.feed(HQES_MEDIA_AND_HEAD[:offset])
    second = assembler.feed(HQES_MEDIA_AND_HEAD[offset:])
    # Complete once the WARNINGS line has ended (or at ETX), never before.
    warnings_end = HQES_MEDIA_AND_HEAD.index(b"\n", HQES_MEDIA_AND_HEAD.index(b"WARNINGS"))
    if offset > warnings_end:
        assert first is not None and first.error_bits == 5
    else:
        assert first is None
        assert second is not None and second.error_bits == 5


def test_hqes_without_stx_framing() -> None:
    assembler = HqesAssembler()
    assert assembler.feed(b"PRINTER STATUS\r\nERRORS: 1 00000000 00000001\r\nWARNINGS: 0 00000000") is None
    result = assembler.feed(b" 00000000\r\n")
    assert result is not None and result.media_out
