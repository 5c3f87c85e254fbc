"""LineFramer: scanner bytes into reads and refusals, whatever line ends the scanner uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drivers.scanner import LineFramer, RefusalReason, ScanEvent, ScanRead, ScanRefused

AT = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
URL = "https://id.gs1.org/01/08938512345673/21/A1B2C3D4"


def feed_all(framer: LineFramer, *chunks: bytes) -> list[ScanEvent]:
    events: list[ScanEvent] = []
    for chunk in chunks:
        events.extend(framer.feed(chunk, at=AT))
    return events


def summary(events: list[ScanEvent]) -> list[tuple[str, str | bytes]]:
    return [
        ("read", event.text) if isinstance(event, ScanRead) else (str(event.reason), event.raw)
        for event in events
    ]


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
@pytest.mark.parametrize("line_end", [b"\r", b"\n", b"\r\n"])
def test_any_line_end_gives_one_read_per_line(terminator: bytes, line_end: bytes) -> None:
    framer = LineFramer(terminator, 512)
    events = feed_all(framer, b"ABC" + line_end + b"DEF" + line_end)
    assert summary(events) == [("read", "ABC"), ("read", "DEF")]


def test_read_fields() -> None:
    [event] = LineFramer(b"\r\n", 512).feed(URL.encode() + b"\r\n", at=AT)
    assert event == ScanRead(URL, URL.encode(), AT)


def test_crlf_split_between_chunks_makes_no_empty_line() -> None:
    framer = LineFramer(b"\r\n", 512)
    assert summary(feed_all(framer, b"ABC\r", b"\nDEF\r", b"\n")) == [("read", "ABC"), ("read", "DEF")]


@pytest.mark.parametrize("offset", range(1, len(URL) + 4))
def test_split_anywhere(offset: int) -> None:
    data = f"{URL}\r\n{URL}\r\n".encode()
    events = feed_all(LineFramer(b"\r\n", 512), data[:offset], data[offset:])
    assert summary(events) == [("read", URL), ("read", URL)]


def test_byte_by_byte() -> None:
    data = b"A1\r\nB2\rC3\n"
    events = feed_all(LineFramer(b"\r\n", 512), *(bytes([b]) for b in data))
    assert summary(events) == [("read", "A1"), ("read", "B2"), ("read", "C3")]


def test_empty_line_is_refused() -> None:
    events = feed_all(LineFramer(b"\r\n", 512), b"\r\n", b"A\r\n\r\n", b"   \r\n")
    assert summary(events) == [("empty", b""), ("read", "A"), ("empty", b""), ("empty", b"   ")]


def test_lone_cr_then_lone_cr_is_an_empty_line() -> None:
    # Two CRs are two line ends (only the LF right after a CR is swallowed).
    assert summary(feed_all(LineFramer(b"\r", 512), b"A\r\rB\r")) == [("read", "A"), ("empty", b""), ("read", "B")]


def test_too_long_is_refused_at_once_and_framer_recovers() -> None:
    framer = LineFramer(b"\r\n", 10)
    first = framer.feed(b"0123456789ABC", at=AT)
    assert first == [ScanRefused(b"0123456789", RefusalReason.TOO_LONG, AT)]
    # The rest of the over-long line is dropped, without keeping it in memory.
    assert framer.feed(b"X" * 100_000, at=AT) == []
    assert len(framer._line) == 0
    assert summary(framer.feed(b"still long\r\nOK\r\n", at=AT)) == [("read", "OK")]


def test_line_of_exactly_max_length_is_accepted() -> None:
    assert summary(LineFramer(b"\r\n", 5).feed(b"12345\r\n123456\r\n", at=AT)) == [
        ("read", "12345"),
        ("too_long", b"12345"),
    ]


def test_over_long_line_ended_by_cr_swallows_its_lf() -> None:
    framer = LineFramer(b"\r\n", 4)
    assert summary(feed_all(framer, b"123456\r", b"\nAB\r\n")) == [("too_long", b"1234"), ("read", "AB")]


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfeABC",  # not UTF-8
        b"AB\xc3",  # truncated UTF-8
        b"A\x00B",  # NUL
        b"A\tB",  # tab
        b"\x1b[2J",  # escape sequence
        b"A\x7fB",  # DEL
        "A\u0085B".encode(),  # C1 control (NEL) in valid UTF-8
        b"]Q1\x1d01",  # GS separator from a GS1 element string
    ],
)
def test_not_text(raw: bytes) -> None:
    [event] = LineFramer(b"\r\n", 512).feed(raw + b"\r\n", at=AT)
    assert event == ScanRefused(raw, RefusalReason.NOT_TEXT, AT)


def test_vietnamese_text_is_a_read() -> None:
    [event] = LineFramer(b"\r\n", 512).feed("Lô 24/06 Huế\r\n".encode(), at=AT)
    assert isinstance(event, ScanRead) and event.text == "Lô 24/06 Huế"


def test_garbage_between_good_reads() -> None:
    events = feed_all(LineFramer(b"\r\n", 512), b"GOOD1\r\n\x00\x01\xff\r\nGOOD2\r\n")
    assert summary(events) == [("read", "GOOD1"), ("not_text", b"\x00\x01\xff"), ("read", "GOOD2")]


def test_literal_terminator_split_across_chunks() -> None:
    framer = LineFramer(b"<END>", 512)
    events = feed_all(framer, b"AB<E", b"N", b"D>CD<END", b">")
    assert summary(events) == [("read", "AB"), ("read", "CD")]


def test_literal_terminator_leaves_cr_lf_as_data() -> None:
    assert summary(LineFramer(b"\x03", 512).feed(b"A\r\nB\x03", at=AT)) == [("not_text", b"A\r\nB")]


def test_literal_terminator_too_long() -> None:
    framer = LineFramer(b"\x03", 3)
    assert summary(feed_all(framer, b"ABCDEFG", b"HIJ\x03OK\x03")) == [("too_long", b"ABC"), ("read", "OK")]


def test_reset_forgets_partial_line() -> None:
    framer = LineFramer(b"\r\n", 512)
    framer.feed(b"half a li", at=AT)
    framer.reset()
    assert summary(framer.feed(b"NEW\r\n", at=AT)) == [("read", "NEW")]


def test_default_timestamp_is_utc_now() -> None:
    before = datetime.now(UTC)
    [event] = LineFramer().feed(b"A\r\n")
    assert before <= event.at <= datetime.now(UTC)


@pytest.mark.parametrize(("terminator", "max_length"), [(b"", 10), (b"\r\n", 0)])
def test_bad_arguments(terminator: bytes, max_length: int) -> None:
    with pytest.raises(ValueError):
        LineFramer(terminator, max_length)
