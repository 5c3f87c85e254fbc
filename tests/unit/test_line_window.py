"""The printed line's window of stamps in flight and its matching rules, on their own: no store, no engine, no clock
but the times each test gives."""

from __future__ import annotations

from dataclasses import replace

from station.domain import Stamp, StampState, VoidReason
from station.line.window import InFlightWindow

GTIN = "08938603001013"


def stamp(serial: str, host: str = "id.example.vn") -> Stamp:
    return Stamp(int(serial, 36), GTIN, serial, 1, StampState.SENT_TO_PRINTER,
                 f"https://{host}/01/{GTIN}/21/{serial}")


def printed(window: InFlightWindow, *serials: str, deadline: float = 10.0, sent_at: float = 0.0,
            first_item: int = 1) -> list[Stamp]:
    stamps = [stamp(s) for s in serials]
    for item, s in enumerate(stamps, start=first_item):
        window.last_item = item
        window.add(s, deadline, item, sent_at)
    return stamps


def test_a_stamp_is_found_by_its_link_in_any_letter_case_of_the_host_and_by_its_serial() -> None:
    window = InFlightWindow()
    (a,) = printed(window, "A1")
    entry = window.by_link("https://ID.EXAMPLE.VN/01/08938603001013/21/A1")
    assert entry is not None and entry.stamp == a
    assert window.by_link("https://id.example.vn/01/08938603001013/21/a1") is None   # a serial keeps its case
    assert window.by_serial(GTIN, "A1") is entry


def test_a_stamp_taken_out_is_found_no_more() -> None:
    window = InFlightWindow()
    a, b, c = printed(window, "A1", "B2", "C3")
    assert window.pop_oldest().stamp == a
    assert window.pop_newest().stamp == c
    assert window.by_link(a.uri) is None and window.by_serial(GTIN, "C3") is None
    entry = window.by_link(b.uri)
    assert entry is not None
    window.remove(entry)
    assert not window and len(window) == 0 and window.oldest is None


def test_only_the_oldest_stamp_times_out_and_exactly_at_its_deadline() -> None:
    window = InFlightWindow()
    window.add(stamp("A1"), 5.0, 1, 0.0)
    window.add(stamp("B2"), 4.0, 2, 0.0)   # an earlier deadline behind an older stamp waits for it
    assert window.expired(4.99) is None
    expired = window.expired(5.0)
    assert expired is not None and expired.stamp.serial == "A1"
    window.pop_oldest()
    assert window.expired(5.0) is not None


def test_stamps_ten_items_before_the_one_read_have_passed_unread() -> None:
    window = InFlightWindow(match_window_items=10)
    printed(window, *(f"S{i}" for i in range(1, 13)))     # items 1..12
    matched = window.by_link(stamp("S11").uri)
    assert matched is not None
    window.remove(matched)
    passed = window.passed_unread(matched)                  # item 11: items 1 (10 before) and older have passed
    assert [e.item for e in passed] == [1]
    assert [e.item for e in window] == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]


def test_no_item_window_and_no_item_pass_nothing() -> None:
    window = InFlightWindow(match_window_items=None)
    printed(window, *(f"S{i}" for i in range(1, 20)))
    matched = window.pop_newest()
    assert window.passed_unread(matched) == []
    itemless = InFlightWindow()
    itemless.add(stamp("A1"), 1.0, None, 0.0)
    entry = itemless.add(stamp("B2"), 1.0, None, 0.0)
    assert itemless.passed_unread(entry) == [] and len(itemless) == 2


def test_the_printer_buffer_bound_counts_those_sent_after_its_report_the_formats_held_and_the_head() -> None:
    window = InFlightWindow()
    for i, sent_at in enumerate([1.0, 2.0, 3.0, 4.0, 5.0], start=1):
        window.add(stamp(f"S{i}"), 10.0, i, sent_at)
    assert window.unprinted(None, 0.0) == 5          # the printer never said: all of them
    assert window.unprinted(0, 3.5) == 3             # 2 sent after the report, 0 held, 1 under the head
    assert window.unprinted(1, 4.5) == 3             # 1 sent after, 1 held, the head
    assert window.unprinted(9, 4.5) == 5             # never more than in flight
    oldest = window.oldest
    assert oldest is not None and window.sent_since(oldest) == 5


def test_a_decided_stamp_is_known_and_forgotten_past_the_limit() -> None:
    window = InFlightWindow(recent=2)
    a, b, c = (replace(stamp(s), state=StampState.ACTIVATED) for s in ("A1", "B2", "C3"))
    for s in (a, b):
        window.decided(s)
        window.seen(s.uri, 1, 0.0)
    assert window.known(a.uri) == a
    window.written(replace(a, state=StampState.VOIDED, void_reason=VoidReason.NO_READ))
    known = window.known(a.uri)
    assert known is not None and known.void_reason is VoidReason.NO_READ
    window.decided(c)
    assert window.known(a.uri) is None and window.known(b.uri) == b
    # its read time went with it: a read of it now has no evidence of being the same label
    assert window.read_again(a.uri, None, 0.5, now=0.5) == (None, "outside the window of 10 items")


def test_the_stamp_just_verified_read_again_within_the_dedupe_time_is_its_own_label() -> None:
    window = InFlightWindow(repeat_read_s=1.0)
    (a,) = printed(window, "A1")
    entry = window.pop_oldest()
    window.verified(entry, at=2.0)
    assert window.read_again(a.uri, None, 2.9, now=3.0) == (1, None)
    # each repeat counts as its last read: repeats within the dedupe time of each other stay one label
    assert window.read_again(a.uri, None, 3.8, now=3.8) == (1, None)
    item, why = window.read_again(a.uri, None, 5.0, now=5.0)
    assert item == 1 and why == "1.20 s after its last read (the same label is seen again within 1 s)"


def test_a_decided_stamp_read_outside_the_item_window_is_not_its_own_label() -> None:
    window = InFlightWindow(match_window_items=10, repeat_read_s=1.0)
    printed(window, *(f"S{i}" for i in range(1, 17)))   # items 1..16
    first = window.pop_oldest()
    window.verified(first, at=1.0)
    later = window.pop_oldest()
    window.verified(later, at=1.0)                        # item 2 is now the last verified
    # item 1: 15 items before the newest printed, and not the one just verified
    assert window.read_again(first.stamp.uri, None, 1.1, now=1.1) == (
        1, "15 items later, outside the window of 10 items")
    # the last verified stays its own label within the dedupe time, however far the line has gone on
    assert window.read_again(later.stamp.uri, None, 1.1, now=1.1) == (2, None)
    # one of the item window: fewer than 10 items before the newest
    window.last_item = 10
    assert window.read_again(first.stamp.uri, None, 1.2, now=1.2) == (1, None)


def test_a_read_for_a_known_item_decides_by_the_item_alone() -> None:
    window = InFlightWindow(repeat_read_s=1.0)
    (a,) = printed(window, "A1", first_item=7)
    window.verified(window.pop_oldest(), at=0.0)
    assert window.read_again(a.uri, 7, 60.0, now=60.0) == (7, None)      # the same item, however late
    assert window.read_again(a.uri, 8, 0.1, now=0.1) == (7, "for item 8")


def test_a_stamp_voided_is_seen_at_its_voiding() -> None:
    window = InFlightWindow(repeat_read_s=1.0)
    (a,) = printed(window, "A1")
    window.pop_oldest()
    window.decided(replace(a, state=StampState.VOIDED))
    window.seen(a.uri, 1, 10.0)
    assert window.read_again(a.uri, None, 10.5, now=10.5) == (1, None)
    assert window.read_again(a.uri, None, 12.0, now=12.0)[1] is not None
