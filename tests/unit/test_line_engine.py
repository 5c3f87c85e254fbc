"""The line engine's rules, without sockets: a real LineEngine on a real SQLite store, a fake printer and reject
gate, and a clock moved by hand. The engine is stepped on the test's thread (begin / step / finish), so nothing
races the test: each step is one turn of the loop the engine's thread runs, and what it commits is announced
before step() returns."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.domain import StampState
from station.engine import LineSettings, TriggerMode
from station.line.events import LineState, RunFinished
from station.line.flood import FloodMeter
from station.ports import PrinterCondition
from tests.unit.line_fakes import GTIN, Line, lines

COMMIT = LineSettings().commit_interval_s
TICK = 1e-9   # the clock is a float: a step that must reach a boundary computed from another time goes a tick past


@pytest.fixture
def line(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Line]:
    marker = request.node.get_closest_marker("line")
    yield from lines(tmp_path, **(marker.kwargs if marker else {}))


def commit(line: Line) -> None:
    """Let the group-commit interval pass: everything decided so far is written and announced."""
    line.advance(COMMIT + TICK)


def foreign_link(serial: str = "FOREIGN001") -> str:
    return f"https://id.example.vn/01/{GTIN}/10/MX2611A/21/{serial}"


# -- matching ------------------------------------------------------------------------------------------------

def test_a_read_of_the_stamp_in_flight_activates_it(line: Line) -> None:
    line.step()
    assert len(line.printer.labels) == 1 and line.engine.in_flight == 1
    label = line.printer.labels[0]
    assert label["lot"] == "MX2611A" and label["gtin"] == GTIN and label["qr"].startswith("https://id.example.vn/")
    line.read(line.printer.uris[0])
    line.step()
    # Matched at once, and the next stamp printed in the same turn (print_ahead 1); written at the commit pace.
    assert len(line.printer.labels) == 2
    assert line.decided() == {}
    commit(line)
    assert line.decided() == {line.serial(0): "activated"}
    assert line.store.find_stamp(GTIN, line.serial(0)).state is StampState.ACTIVATED  # type: ignore[union-attr]
    assert line.gate.rejected == [] and line.alarms() == []
    assert line.scans()[-1] == (line.printer.uris[0], "verified")


@pytest.mark.line(count=2)
def test_a_run_of_count_items_ends_when_they_are_activated(line: Line) -> None:
    line.step()
    line.read(line.printer.uris[0])
    line.step()
    line.read(line.printer.uris[1])
    assert not line.engine.step()               # the run ends on its own, in the turn of the last activation
    assert len(line.printer.labels) == 2        # no third label for a run of two
    summary = next(e.summary for e in line.events if isinstance(e, RunFinished))
    assert (summary.printed, summary.activated, summary.voided_total) == (2, 2, 0)
    assert line.engine.state is LineState.STOPPED
    assert line.decided() == {line.serial(0): "activated", line.serial(1): "activated"}


# -- the windows: time and items -----------------------------------------------------------------------------

@pytest.mark.line(verify_timeout_s=3.0)
def test_an_unread_stamp_is_voided_no_read_exactly_at_its_deadline(line: Line) -> None:
    printed_at = line.clock()
    line.step()
    line.advance(2.5)
    line.advance(0.499)
    assert line.engine.in_flight == 1 and line.decided() == {}
    line.clock.advance(printed_at + 3.0 - line.clock())   # the deadline itself
    line.step()
    assert len(line.printer.labels) == 2                   # the next stamp goes out in the same turn
    commit(line)
    assert line.decided() == {line.serial(0): "no_read"}
    assert line.gate.rejected == [1]                       # the item that carries it is taken off
    assert "verification_failed" in line.alarms()


@pytest.mark.line(verify_timeout_s=3.0)
def test_a_read_just_before_the_deadline_still_activates(line: Line) -> None:
    line.step()
    line.clock.advance(2.999)
    line.read(line.printer.uris[0])
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "activated"}


@pytest.mark.line(print_ahead=12, match_window_items=10, verify_timeout_s=30.0)
def test_a_stamp_ten_items_before_one_read_has_passed_unread(line: Line) -> None:
    line.step()
    assert len(line.printer.labels) == 12   # items 1..12 in flight
    # Reads within the window may come in any order (a camera decodes one frame's labels in no order).
    line.read(line.printer.uris[9], one_per_item=False)    # item 10: item 1 is 9 items before, still in its window
    line.step()
    commit(line)
    assert line.decided() == {line.serial(9): "activated"}
    line.read(line.printer.uris[10], one_per_item=False)   # item 11: item 1 is 10 items before, passed unread
    line.step()
    commit(line)
    assert line.decided() == {line.serial(9): "activated", line.serial(10): "activated", line.serial(0): "no_read"}
    assert line.gate.rejected == [1]
    line.read(line.printer.uris[1], one_per_item=False)    # item 2: 9 before item 11, still its window
    line.step()
    commit(line)
    assert line.decided()[line.serial(1)] == "activated"


@pytest.mark.line(print_ahead=12, match_window_items=None, verify_timeout_s=30.0)
def test_no_item_window_leaves_only_the_time_window(line: Line) -> None:
    line.step()
    line.read(line.printer.uris[11], one_per_item=False)
    line.step()
    commit(line)
    assert line.decided() == {line.serial(11): "activated"}


# -- reads that do not match -----------------------------------------------------------------------------------

def test_our_serial_with_other_content_is_wrong_content(line: Line) -> None:
    line.step()
    line.read(line.printer.uris[0].replace("/10/MX2611A/", "/10/MX2611B/"))
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "wrong_content"}
    assert line.gate.rejected == [1]
    assert line.engine.state is LineState.RUNNING


def test_a_scanner_read_of_garbage_is_the_next_items_wrong_content(line: Line) -> None:
    line.step()
    line.read("GARBAGE-42")
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "wrong_content"}


def test_a_camera_read_of_garbage_is_a_stray_and_blames_no_stamp(line: Line) -> None:
    line.step()
    line.read("GARBAGE-42", one_per_item=False)
    line.step()
    commit(line)
    assert line.decided() == {} and line.engine.in_flight == 1
    assert "stray_read" in line.alarms()
    assert line.scans()[-1] == ("GARBAGE-42", "stray")


def test_a_foreign_stamp_stops_the_line(line: Line) -> None:
    line.step()
    line.read(foreign_link(), one_per_item=False)
    line.step()
    assert line.engine.state is LineState.FAULT
    assert "foreign_stamp" in line.alarms()
    labels = len(line.printer.labels)
    line.read(line.printer.uris[0], one_per_item=False)  # the stamp in flight is still verified
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "activated"}
    assert len(line.printer.labels) == labels           # nothing more printed while stopped
    # The printer being ready does not resume it: a person must look.
    line.advance(1.0)
    assert line.engine.state is LineState.FAULT
    line.engine.resume()
    line.step()
    assert line.engine.state is LineState.RUNNING and len(line.printer.labels) == labels + 1


@pytest.mark.line(stop_on_foreign_stamp=False)
def test_a_foreign_stamp_is_only_alarmed_when_the_policy_says_go_on(line: Line) -> None:
    line.step()
    line.read(foreign_link(), one_per_item=False)
    line.step()
    assert line.engine.state is LineState.RUNNING
    assert line.alarm("foreign_stamp").alarm.severity.value == "warning"


# -- printer faults ----------------------------------------------------------------------------------------

@pytest.mark.line(print_ahead=3, verify_timeout_s=30.0)
def test_a_printer_fault_voids_the_stamps_still_in_its_buffer(line: Line) -> None:
    line.step()
    assert len(line.printer.labels) == 3
    line.clock.advance(0.2)
    # Paper out; the printer's last count (after all three were sent) said one format was still unprinted:
    # that one and the one under the head are voided, the oldest (printed, on its item) goes on to verification.
    line.printer.set_health(PrinterCondition.FAULTED, ("paper_out",), "paper out", unprinted=1)
    line.step()
    assert line.engine.state is LineState.FAULT
    assert line.printer.cancels == 1
    assert "printer_paper_out" in line.alarms()
    commit(line)
    assert line.decided() == {line.serial(1): "printer_fault", line.serial(2): "printer_fault"}
    assert sorted(line.gate.rejected) == [2, 3]
    line.read(line.printer.uris[0])
    line.step()
    commit(line)
    assert line.decided()[line.serial(0)] == "activated"
    # Paper loaded: the operator resumes, and printing goes on with new serials.
    line.printer.set_health(PrinterCondition.READY)
    line.engine.resume()
    line.step()
    assert line.engine.state is LineState.RUNNING and len(line.printer.labels) == 6
    assert len(set(line.printer.uris)) == 6


@pytest.mark.line(print_ahead=3, verify_timeout_s=30.0)
def test_a_printer_that_never_gave_a_count_has_every_stamp_in_flight_voided(line: Line) -> None:
    line.step()
    line.printer.set_health(PrinterCondition.UNREACHABLE, (), "no answer", unprinted=None)
    line.step()
    commit(line)
    assert set(line.decided().values()) == {"printer_fault"} and len(line.decided()) == 3
    assert "printer_unreachable" in line.alarms()


def test_a_label_that_cannot_be_sent_is_voided_and_stops_the_line(line: Line) -> None:
    line.printer.fail_sends = 1
    line.step()
    assert line.engine.state is LineState.FAULT and line.printer.labels == []
    assert "printer_unreachable" in line.alarms()
    commit(line)
    assert list(line.decided().values()) == ["printer_fault"]


@pytest.mark.line(auto_resume=True)
def test_auto_resume_goes_on_once_the_printer_is_ready(line: Line) -> None:
    line.step()
    line.printer.set_health(PrinterCondition.FAULTED, ("head_open",), "head open", unprinted=0)
    line.step()
    assert line.engine.state is LineState.FAULT
    line.printer.set_health(PrinterCondition.READY)
    line.step()
    assert line.engine.state is LineState.RUNNING


# -- too many failures -------------------------------------------------------------------------------------

@pytest.mark.line(max_consecutive_failures=3, verify_timeout_s=1.0)
def test_too_many_failures_in_a_row_stop_the_run(line: Line) -> None:
    line.step()
    line.read(line.printer.uris[0])      # a success first: the streak counts from the next failure
    line.step()
    line.advance(1.0)
    line.advance(1.0)
    assert "too_many_failures" not in line.alarms() and line.engine.state is LineState.RUNNING
    line.clock.advance(1.0)
    assert not line.engine.step()                          # the third failure ends the run in its own turn
    assert "too_many_failures" in line.alarms()
    assert len(line.printer.labels) == 4                   # nothing printed after the third failure
    summary = next(e.summary for e in line.events if isinstance(e, RunFinished))
    assert summary.stopped_by == "too_many_failures" and summary.voided["no_read"] == 3
    assert line.engine.state is LineState.STOPPED


@pytest.mark.line(max_consecutive_failures=3, verify_timeout_s=1.0)
def test_a_success_breaks_the_streak(line: Line) -> None:
    line.step()
    line.advance(1.0)
    line.advance(1.0)
    line.read(line.printer.uris[2])
    line.step()
    line.advance(1.0)
    line.advance(1.0)
    assert "too_many_failures" not in line.alarms()


# -- the photo-eye -----------------------------------------------------------------------------------------

@pytest.mark.line(trigger=TriggerMode.PHOTO_EYE, print_ahead=2, verify_timeout_s=2.0)
def test_photo_eye_prints_one_stamp_per_item_and_rejects_one_it_cannot_label(line: Line) -> None:
    line.step()
    assert line.printer.labels == []                       # no item, no stamp
    line.trigger(101)
    line.clock.advance(0.5)
    line.trigger(102)
    line.trigger(103)                                      # the window of two is full: no stamp for this item
    line.step()
    assert len(line.printer.labels) == 2
    assert line.gate.rejected == [103] and "item_without_stamp" in line.alarms()
    # Each stamp's window starts when its item passed the photo-eye.
    line.clock.advance(1.5)                                # item 101's deadline
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "no_read"}
    assert line.gate.rejected == [103, 101]


def test_finish_stops_a_stepped_run(line: Line) -> None:
    line.step()
    line.read(line.printer.uris[0])
    line.step()
    line.read(line.printer.uris[1])
    line.engine.finish()
    assert line.engine.state is LineState.STOPPED
    assert line.decided() == {line.serial(0): "activated", line.serial(1): "activated"}


# -- a stamp read again: the same label, or a copy (issue 9 #1) --------------------------------------------

def verify_first(line: Line) -> float:
    """Print and verify the first stamp; returns the time of its read."""
    line.step()
    at = line.clock()
    line.read(line.printer.uris[0])
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "activated"}
    return at


@pytest.mark.line(repeat_read_s=1.0)
def test_the_label_just_verified_read_again_within_the_dedupe_time_is_a_harmless_repeat(line: Line) -> None:
    read_at = verify_first(line)
    line.read(line.printer.uris[0], at=read_at + 1.0)        # at the end of the verifier's dedupe time
    line.step()
    commit(line)
    assert line.scans()[-1] == (line.printer.uris[0], "repeat_read")
    assert "duplicate_stamp" not in line.alarms() and line.engine.state is LineState.RUNNING


@pytest.mark.line(repeat_read_s=1.0)
def test_the_label_just_verified_read_again_after_the_dedupe_time_is_a_duplicate(line: Line) -> None:
    read_at = verify_first(line)
    line.read(line.printer.uris[0], at=read_at + 1.001)
    line.step()
    commit(line)
    assert line.scans()[-1] == (line.printer.uris[0], "duplicate_stamp")
    assert line.engine.state is LineState.FAULT
    assert "1.00 s after its last read" in line.alarm("duplicate_stamp").alarm.detail


@pytest.mark.line(repeat_read_s=1.0)
def test_repeats_within_the_dedupe_time_of_each_other_stay_one_label(line: Line) -> None:
    # A label in view that the verifier reports again each 0.9 s is the same label for as long as it stays.
    read_at = verify_first(line)
    for n in (1, 2, 3):
        line.read(line.printer.uris[0], at=read_at + 0.9 * n)
        line.step()
    commit(line)
    assert [outcome for _, outcome in line.scans()[-3:]] == ["repeat_read"] * 3
    assert "duplicate_stamp" not in line.alarms()


@pytest.mark.line(match_window_items=10, repeat_read_s=1.0)
def test_a_stamp_read_again_fifteen_items_later_is_a_duplicate_even_within_the_dedupe_time(line: Line) -> None:
    line.step()
    for i in range(15):                          # 15 items verified in no time at all
        line.read(line.printer.uris[i])
        line.step()
    assert line.engine.in_flight == 1 and len(line.printer.labels) == 16
    line.read(line.printer.uris[0])              # the first item's stamp again: a copy on a later item
    line.step()
    commit(line)
    assert line.scans()[-1] == (line.printer.uris[0], "duplicate_stamp")
    assert line.engine.state is LineState.FAULT
    assert "15 items later" in line.alarm("duplicate_stamp").alarm.detail
    assert line.store.find_stamp(GTIN, line.serial(0)).state is StampState.ACTIVATED  # type: ignore[union-attr]


@pytest.mark.line(match_window_items=10, repeat_read_s=1.0)
def test_a_stamp_of_the_item_window_read_again_is_a_repeat(line: Line) -> None:
    line.step()
    for i in range(10):
        line.read(line.printer.uris[i])
        line.step()
    line.read(line.printer.uris[1])              # 9 items before the newest printed (item 11)
    line.step()
    commit(line)
    assert line.scans()[-1] == (line.printer.uris[1], "repeat_read")
    assert "duplicate_stamp" not in line.alarms()


@pytest.mark.line(trigger=TriggerMode.PHOTO_EYE, repeat_read_s=1.0)
def test_a_read_for_another_photo_eye_item_is_a_duplicate_and_one_for_the_same_item_is_not(line: Line) -> None:
    line.trigger(7)
    line.step()
    line.read(line.printer.uris[0], item=7)
    line.step()
    line.clock.advance(5.0)
    line.read(line.printer.uris[0], item=7)      # the same trigger: the same label, however late
    line.step()
    commit(line)
    assert line.scans()[-1] == (line.printer.uris[0], "repeat_read")
    line.read(line.printer.uris[0], item=8)      # the next item carries it too: a copy, even at once
    line.step()
    commit(line)
    assert line.scans()[-1] == (line.printer.uris[0], "duplicate_stamp")
    assert line.engine.state is LineState.FAULT
    assert "for item 8" in line.alarm("duplicate_stamp").alarm.detail


@pytest.mark.line(stop_on_foreign_stamp=False, repeat_read_s=1.0)
def test_a_duplicate_follows_the_foreign_stamp_policy(line: Line) -> None:
    read_at = verify_first(line)
    line.read(line.printer.uris[0], at=read_at + 2.0)
    line.step()
    assert line.engine.state is LineState.RUNNING
    assert line.alarm("duplicate_stamp").alarm.severity.value == "warning"


@pytest.mark.line(verify_timeout_s=1.0, repeat_read_s=1.0)
def test_a_late_read_of_a_stamp_just_voided_is_a_repeat_and_a_later_one_a_duplicate(line: Line) -> None:
    line.step()
    line.advance(1.0)                            # voided no_read at its deadline
    line.read(line.printer.uris[0])              # read just after: late, the same label
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "no_read"}
    assert line.scans()[-1] == (line.printer.uris[0], "repeat_read")
    line.clock.advance(1.5)
    line.read(line.printer.uris[0])
    line.step()
    commit(line)
    assert line.scans()[-1] == (line.printer.uris[0], "duplicate_stamp")


# -- a timeout the printer's fault explains (issue 9 #6) ---------------------------------------------------

@pytest.mark.line(verify_timeout_s=1.0, printer_status_wait_s=1.0)
def test_a_stamp_timing_out_in_the_printer_waits_for_its_status_and_is_a_printer_fault(line: Line) -> None:
    line.printer.answers_status = False
    line.step()
    deadline = line.clock() + 1.0
    line.advance(1.0)                                    # the deadline: the label may still be in the printer
    assert line.printer.status_requests == [deadline]
    assert line.engine.in_flight == 1 and line.gate.rejected == []
    commit(line)
    assert line.decided() == {}
    # ~HQES confirms paper out a few ms after the deadline: ~JA cancelled the label, it was never printed.
    line.clock.advance(0.003)
    line.printer.set_health(PrinterCondition.FAULTED, ("paper_out",), "paper out")
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "printer_fault"}
    assert line.engine.state is LineState.FAULT and line.printer.cancels == 1
    assert "verification_failed" not in line.alarms() and "printer_paper_out" in line.alarms()
    assert line.engine.summary.voided == {"printer_fault": 1}


@pytest.mark.line(verify_timeout_s=1.0, printer_status_wait_s=1.0)
def test_a_stamp_timing_out_in_the_printer_is_no_read_once_the_printer_says_it_is_ready(line: Line) -> None:
    line.printer.answers_status = False
    line.step()
    line.advance(1.0)
    line.clock.advance(0.003)
    line.step()
    assert line.engine.in_flight == 1                    # no news yet
    line.printer.set_health(PrinterCondition.READY)
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "no_read"}
    assert line.engine.state is LineState.RUNNING and line.gate.rejected == [1]


@pytest.mark.line(verify_timeout_s=1.0, printer_status_wait_s=0.5)
def test_a_printer_that_gives_no_status_delays_a_no_read_by_the_status_wait_at_most(line: Line) -> None:
    line.printer.answers_status = False
    line.step()
    line.advance(1.0)
    line.advance(0.499)
    assert line.engine.in_flight == 1
    line.advance(0.001 + TICK)
    commit(line)
    assert line.decided() == {line.serial(0): "no_read"}
    (detail,) = [d for (d,) in [(s.void_detail,) for s in line.store.stamps(state=StampState.VOIDED)]]
    assert "gave no status within 0.5s" in detail


@pytest.mark.line(verify_timeout_s=1.0, print_ahead=3)
def test_a_stamp_the_printer_has_printed_for_sure_is_no_read_at_its_deadline_without_asking(line: Line) -> None:
    line.printer.answers_status = False
    line.step()
    assert len(line.printer.labels) == 3
    # After all three were sent, the printer said it held no format: only the newest may be under the head.
    line.clock.advance(0.1)
    line.printer.set_health(PrinterCondition.READY, unprinted=0)
    line.clock.advance(0.9)
    line.step()
    commit(line)
    assert line.decided() == {line.serial(0): "no_read", line.serial(1): "no_read"}
    # The third waits for the printer's word; two new stamps fill the window.
    assert line.engine.in_flight == 3 and len(line.printer.labels) == 5
    assert line.printer.status_requests == [line.clock() - COMMIT - TICK]


# -- a babbling scanner (issue 9 #10) ----------------------------------------------------------------------

def committed(line: Line, outcome: str) -> int:
    with sqlite3.connect(line.store.path) as conn:   # what is on disk, not what the engine holds
        return conn.execute("SELECT count(*) FROM scans WHERE outcome = ?", (outcome,)).fetchone()[0]


@pytest.mark.line(print_ahead=4, verify_timeout_s=0.5, match_window_items=None)
def test_a_scanner_sending_100000_lines_in_8_s_does_not_stall_the_line(line: Line) -> None:
    # 12.5 lines a millisecond of garbage and refusals, between the real reads of the labels (each read 40 ms after
    # it was printed; every twentieth label never read). The engine takes one turn every 2 ms of the fake clock.
    step_s, noise_per_step, travel_s = 0.002, 25, 0.040
    to_read: list[tuple[float, str]] = []
    printed = 0
    sent = 0
    unread: set[str] = set()
    history: list[tuple[int, int, int, int]] = []   # (noise sent, stray rows on disk, labels, decided), per 100 ms
    for turn in range(4000):
        for _ in range(noise_per_step):
            if sent % 7 == 0:
                line.read(None, refused="not_text")
            else:
                line.read(f"NOISE-{sent}")
            sent += 1
        now = line.clock()
        while to_read and to_read[0][0] <= now:
            line.read(to_read.pop(0)[1])
        line.advance(step_s)
        assert line.engine.reads_queued <= line.engine.max_queued_reads
        for label in line.printer.labels[printed:]:
            printed += 1
            if printed % 20 == 0:
                unread.add(str(label["serial"]))
            else:
                to_read.append((line.clock() + travel_s, str(label["qr"])))
        if turn % 50 == 49:
            history.append((sent, committed(line, "stray"), len(line.printer.labels), len(line.decided())))
    assert sent == 100_000
    # Four in flight, each decided 40 ms after it was printed, or 0.5 s for one in twenty: about 63 a second.
    assert len(line.printer.labels) >= 400
    # The flood is said once, with its rate.
    assert line.alarms().count("scanner_flood") == 1
    rate = line.alarm("scanner_flood").alarm.detail
    assert re.fullmatch(r"\d+ reads/s against \d+ items/s", rate) and 12_000 <= int(rate.split()[0]) <= 13_500, rate
    # Printing, verification, timeouts and commits kept their pace in every 100 ms of the flood, and every stray
    # line was on disk within a commit interval or two of its arrival.
    for (s0, rows0, labels0, decided0), (s1, rows1, labels1, decided1) in zip(history, history[1:]):
        assert labels1 - labels0 >= 2, history
        assert decided1 - decided0 >= 2, history
        assert rows1 >= s1 - 2 * noise_per_step * (COMMIT / step_s + 1), (s1, rows1)
    decided = line.decided()
    voided = {serial: reason for serial, reason in decided.items() if reason != "activated"}
    assert set(voided.values()) == {"no_read"}                     # noise never blamed a stamp
    assert set(voided) <= unread and len(voided) >= len(unread) - 4   # the last ones may still be in flight
    assert "too_many_failures" not in line.alarms() and line.engine.state is LineState.RUNNING
    assert line.alarms().count("stray_read") == 0                  # the flood has one alarm, not 100,000


@pytest.mark.line(verify_timeout_s=0.5)
def test_a_burst_beyond_the_inbox_bound_is_counted_and_recorded_not_queued(line: Line) -> None:
    line.step()
    for i in range(100_000):
        line.read(f"NOISE-{i}")
    assert line.engine.reads_queued == line.engine.max_queued_reads == 1000
    line.read(line.printer.uris[0])            # the stamp's own read is behind the noise, and dropped with it
    line.step()
    assert line.engine.reads_queued == 900     # one turn handles max_inbox_per_turn (100), then prints and commits
    assert len(line.printer.labels) == 1 and line.engine.in_flight == 1   # the noise blamed no stamp
    line.advance(0.1)                          # the flood's first window closes: the alarm names its rate
    assert "scanner_flood" in line.alarms()
    commit(line)
    dropped = [s for s in line.store.scans(2000) if s.outcome == "dropped"]
    assert len(dropped) == 1 and dropped[0].detail.startswith("99001 reads not queued")
    # The queued noise is handled max_inbox_per_turn at a time; the stamp, whose read was lost, times out.
    line.clock.advance(0.4)
    for _ in range(20):
        line.step()
    commit(line)
    assert line.engine.reads_queued == 0
    assert committed(line, "stray") == 1000
    assert line.decided() == {line.serial(0): "no_read"}
    assert len(line.printer.labels) == 2


def test_the_flood_meter_at_both_sides_of_its_thresholds() -> None:
    meter = FloodMeter(window_s=0.1, min_reads=20, reads_per_item=10)
    meter.reads(0.0, 19)
    assert not meter.flooding                    # 19 reads in a window: a busy camera, not a flood
    meter.reads(0.05)
    assert meter.flooding and meter.take_started(0.05) is None   # described once its window closes
    assert meter.take_started(0.1) == "200 reads/s against 0 items/s"
    meter.reads(0.15, 50)                        # still flooding: not said again
    assert meter.take_started(0.25) is None and meter.flooding
    meter.item(0.35)                             # a quiet window ends it
    assert not meter.flooding
    meter.item(0.45, 10)                         # (windows start at 0.3, 0.4, …: times clear of their edges)
    meter.reads(0.45, 99)                        # 99 reads for 10 items: under ten an item
    assert not meter.flooding
    meter.reads(0.45)
    assert meter.flooding                        # a new flood, said again
    assert meter.take_started(0.55) == "1000 reads/s against 100 items/s"


def test_a_batch_locked_mid_run_stops_the_line_and_voids_the_stamps_in_flight(line: Line) -> None:
    line.step()
    line.store.lock_batch(line.batch.id, "recall: label misprint", actor="qa")  # type: ignore[arg-type]
    line.advance(0.5)                            # the engine looks at the lock twice a second
    assert line.engine.state is LineState.FAULT and "batch_locked" in line.alarms()
    commit(line)
    assert line.decided() == {line.serial(0): "batch_locked"}
    assert line.printer.cancels == 1 and line.gate.rejected == [1]
    line.engine.resume()                         # refused while locked
    line.step()
    assert line.engine.state is LineState.FAULT and line.alarms().count("batch_locked") == 2
    line.store.unlock_batch(line.batch.id, "reprinted", actor="qa")  # type: ignore[arg-type]
    line.engine.resume()
    line.step()
    assert line.engine.state is LineState.RUNNING and len(line.printer.labels) == 2
