"""Shifts: when the shift a moment falls in began (the operator's shift counters count from it)."""

from __future__ import annotations

import datetime as dt

# Three eight-hour shifts, the usual pattern on Huế packing lines (`ui.shift_starts` in the configuration sets others).
DEFAULT_SHIFT_STARTS: tuple[tuple[int, int], ...] = ((6, 0), (14, 0), (22, 0))


def shift_start(now: dt.datetime, starts: tuple[tuple[int, int], ...] = DEFAULT_SHIFT_STARTS) -> dt.datetime:
    """The start of the shift ``now`` (local, aware) falls in; `starts` are (hour, minute) (`ui.shift_starts`)."""
    ordered = sorted(starts)
    today = now.replace(second=0, microsecond=0)
    candidates = [today.replace(hour=h, minute=m) for h, m in ordered]
    last_h, last_m = ordered[-1]
    candidates.append(today.replace(hour=last_h, minute=last_m) - dt.timedelta(days=1))
    return max(c for c in candidates if c <= now)


__all__ = ["DEFAULT_SHIFT_STARTS", "shift_start"]
