"""The printed line's window of stamps in flight, and the rules that match a verification read to one of them.

Pure: no I/O, no clock of its own (every time is given), no alarms; the engine acts on what it answers. So each
rule is tested on its own (tests/unit/test_line_window.py):

- stamps in flight, oldest first, found by the link key of their URI (a link's host in any letter case is the same
  link) or by GTIN and serial (our serial with other content: a misprint);
- deadlines: the oldest stamp whose verify window has passed;
- the item window: a stamp printed ``match_window_items`` items before the one just read has passed the verifier
  unread (a camera decodes the labels of one frame in no particular order, so older stamps are not voided at once);
- the printer's buffer: how many of the newest stamps may not be printed yet;
- the stamps decided lately, each with its item and when it was last read, and the evidence that a read of one is
  its own label seen again rather than a copy on another item.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from station.domain import Stamp
from station.gs1 import link_key

RECENT_DECIDED = 4096   # stamps decided that are remembered (their reads again are told from copies), at most


@dataclass
class InFlight:
    """A stamp printed and not yet decided."""

    stamp: Stamp
    deadline: float
    item: int | None           # the item it was printed for (photo-eye seq, or print order in free run)
    sent_at: float = 0.0       # when its label went to the printer (the engine's clock)
    status_asked: float | None = None   # timed out while it may still be in the printer: when its status was asked


class InFlightWindow:
    """Stamps in flight, oldest first, and the stamps decided lately."""

    def __init__(self, match_window_items: int | None = 10, repeat_read_s: float = 1.0,
                 recent: int = RECENT_DECIDED) -> None:
        self.match_window_items = match_window_items
        self.repeat_read_s = repeat_read_s
        self._recent_limit = recent
        self._entries: deque[InFlight] = deque()
        self._by_key: dict[str, InFlight] = {}
        self._by_serial: dict[tuple[str, str], InFlight] = {}
        self._decided: dict[str, Stamp] = {}   # link key -> the stamp as decided (before and after its commit)
        self._decided_order: deque[str] = deque()
        self._seen: dict[str, tuple[int | None, float]] = {}   # link key -> (its item, when last read or decided)
        self.last_item = 0                     # the item of the newest stamp sent to the printer
        self._last_verified: str | None = None

    # -- stamps in flight ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __iter__(self) -> Iterator[InFlight]:
        return iter(self._entries)

    @property
    def oldest(self) -> InFlight | None:
        return self._entries[0] if self._entries else None

    def add(self, stamp: Stamp, deadline: float, item: int | None, sent_at: float) -> InFlight:
        entry = InFlight(stamp, deadline, item, sent_at)
        self._entries.append(entry)
        self._by_key[link_key(stamp.uri)] = entry
        self._by_serial[(stamp.gtin, stamp.serial)] = entry
        return entry

    def by_link(self, text: str) -> InFlight | None:
        """The stamp in flight whose URI the read holds."""
        return self._by_key.get(link_key(text))

    def by_serial(self, gtin: str, serial: str) -> InFlight | None:
        return self._by_serial.get((gtin, serial))

    def pop_oldest(self) -> InFlight:
        return self._forget(self._entries.popleft())

    def pop_newest(self) -> InFlight:
        return self._forget(self._entries.pop())

    def remove(self, entry: InFlight) -> None:
        self._entries.remove(entry)
        self._forget(entry)

    def clear(self) -> None:
        self._entries.clear()
        self._by_key.clear()
        self._by_serial.clear()

    def _forget(self, entry: InFlight) -> InFlight:
        self._by_key.pop(link_key(entry.stamp.uri), None)
        self._by_serial.pop((entry.stamp.gtin, entry.stamp.serial), None)
        return entry

    def expired(self, now: float) -> InFlight | None:
        """The oldest stamp, if its verify window has passed (stamps time out oldest first)."""
        oldest = self.oldest
        return oldest if oldest is not None and oldest.deadline <= now else None

    def sent_since(self, entry: InFlight) -> int:
        """This stamp and those sent to the printer after it."""
        return len(self._entries) - self._entries.index(entry)

    def unprinted(self, held: int | None, reported_at: float) -> int:
        """How many of the newest stamps may not be printed (an upper bound), from the printer's last report that it
        held ``held`` formats at ``reported_at``: those sent after it, the formats it held, and the label under the
        head. All of them when the printer never said."""
        if held is None or not reported_at:
            return len(self._entries)
        after = sum(1 for entry in self._entries if entry.sent_at > reported_at)
        return min(len(self._entries), after + held + 1)

    def passed_unread(self, matched: InFlight) -> list[InFlight]:
        """Take out the stamps printed ``match_window_items`` or more items before the one just matched: they have
        passed the verifier unread."""
        window = self.match_window_items
        if window is None or matched.item is None:
            return []
        passed = []
        while self._entries and self._entries[0].item is not None \
                and self._entries[0].item <= matched.item - window:
            passed.append(self.pop_oldest())
        return passed

    # -- stamps decided --------------------------------------------------------------------------------------

    def decided(self, stamp: Stamp) -> None:
        """A stamp this run decided (with its new state): a read of it again is never decided twice."""
        key = link_key(stamp.uri)
        self._decided[key] = stamp
        self._decided_order.append(key)
        if len(self._decided_order) > self._recent_limit:
            old = self._decided_order.popleft()
            self._decided.pop(old, None)
            self._seen.pop(old, None)

    def written(self, stamp: Stamp) -> None:
        """The stamp as its commit wrote it (void reason and detail)."""
        self._decided[link_key(stamp.uri)] = stamp

    def known(self, text: str) -> Stamp | None:
        """The stamp decided lately whose URI the read holds."""
        return self._decided.get(link_key(text))

    def seen(self, uri: str, item: int | None, at: float) -> None:
        """A stamp was read (or voided) at ``at``: a read of it again soon after may be the same label."""
        self._seen[link_key(uri)] = (item, at)

    def verified(self, entry: InFlight, at: float) -> None:
        """The stamp was matched by a read at ``at``: the last one verified."""
        key = link_key(entry.stamp.uri)
        self._seen[key] = (entry.item, at)
        self._last_verified = key

    def read_again(self, text: str, read_item: int | None, read_at: float, now: float) -> tuple[int | None, str | None]:
        """A read of a stamp decided lately: (its item, None) when the evidence says it is its own label seen again
        (and it counts as read again now), else (its item, why not)."""
        key = link_key(text)
        item, seen_at = self._seen.get(key, (None, now))
        not_same = self.not_the_same_label(key, read_item, read_at, item, seen_at)
        if not_same is None:
            self._seen[key] = (item, max(seen_at, read_at))
        return item, not_same

    def not_the_same_label(self, key: str, read_item: int | None, read_at: float, item: int | None,
                           seen_at: float) -> str | None:
        """None when the evidence says a read of a decided stamp is its own label seen again: the read carries the
        stamp's item (the trigger), or it is the stamp just verified or one of the item window, read within the
        verifier's dedupe time of its last read. Otherwise why not (said in the record and the alarm)."""
        if read_item is not None and item is not None:
            return None if read_item == item else f"for item {read_item}"
        window = self.match_window_items or 1
        if key != self._last_verified and (item is None or self.last_item - item >= window):
            later = "" if item is None else f"{self.last_item - item} items later, "
            return f"{later}outside the window of {window} items"
        age = read_at - seen_at
        if age > self.repeat_read_s:
            return f"{age:.2f} s after its last read (the same label is seen again within " \
                   f"{self.repeat_read_s:g} s)"
        return None
