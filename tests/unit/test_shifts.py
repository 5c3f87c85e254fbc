"""Shift counters count from the latest configured shift start, in the station's time zone."""

from __future__ import annotations

import datetime as dt

from station.shifts import shift_start

ICT = dt.timezone(dt.timedelta(hours=7))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, 30, tzinfo=ICT)


def test_the_default_three_shifts() -> None:
    assert shift_start(at(29, 6, 0)) == at(29, 6).replace(second=0)
    assert shift_start(at(29, 13, 59)) == at(29, 6).replace(second=0)
    assert shift_start(at(29, 23, 10)) == at(29, 22).replace(second=0)
    assert shift_start(at(29, 5, 59)) == at(28, 22).replace(second=0)     # the night shift began yesterday


def test_configured_starts_with_minutes() -> None:
    two = ((7, 30), (19, 30))
    assert shift_start(at(29, 7, 29), two) == at(28, 19, 30).replace(second=0)
    assert shift_start(at(29, 7, 31), two) == at(29, 7, 30).replace(second=0)
    assert shift_start(at(29, 20, 0), two) == at(29, 19, 30).replace(second=0)
    assert shift_start(at(29, 12, 0), ((8, 0),)) == at(29, 8).replace(second=0)   # one shift a day
