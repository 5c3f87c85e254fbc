"""The printed line's decisions on their way to the database: gathered (prints, activations, voids, scan records),
written as one transaction by the store's single writer while the line goes on printing and matching, and handed
back once written so that the engine announces them on its own thread.

One commit is in the writer's hands at a time: ``send()`` gives the writer what was gathered (the engine collects
the commit before first), ``collect()`` hands back a commit once it is written, or once the batch lock refused it
(then nothing was written, and the engine decides again). When a group is due is a ``GroupCommit``'s word.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from station.domain import Stamp
from station.line.loop import GroupCommit
from station.ports import LineStore
from station.store.records import Activation, BatchLocked, ScanRecord, Voiding


@dataclass
class Decisions:
    """What one commit writes, each decision with the stamp it was taken on."""

    printed: list[int] = field(default_factory=list)                       # stamp ids sent to the printer
    activations: list[tuple[Activation, Stamp]] = field(default_factory=list)
    voids: list[tuple[Voiding, Stamp, bool]] = field(default_factory=list)  # bool: announced (not a recovered one)
    stray: list[ScanRecord] = field(default_factory=list)                  # reads that decided no stamp

    def clear(self) -> None:
        self.printed.clear()
        self.activations.clear()
        self.voids.clear()
        self.stray.clear()


@dataclass(frozen=True)
class Written:
    decisions: Decisions
    locked: str | None = None   # the batch was locked since: nothing was written (why, from BatchLocked)


class LineCommits:
    """The decisions gathered since the last commit, and the commit in the writer's hands."""

    def __init__(self, store: LineStore, group: GroupCommit) -> None:
        self._store = store
        self.group = group
        self.gathered = Decisions()
        self._writing = Decisions()
        self._commit: Future[None] | None = None

    @property
    def pending(self) -> bool:
        return self.group.pending

    @property
    def in_writer(self) -> bool:
        return self._commit is not None

    @property
    def unrecorded_prints(self) -> int:
        """Stamps sent to the printer whose print is not written yet."""
        return len(self.gathered.printed) + len(self._writing.printed)

    def due(self, now: float) -> bool:
        gathered = self.gathered
        return self.group.due(now, len(gathered.activations) + len(gathered.voids), len(gathered.stray))

    def printed(self, stamp_id: int) -> None:
        self.gathered.printed.append(stamp_id)
        self.group.mark()

    def activated(self, activation: Activation, stamp: Stamp) -> None:
        self.gathered.activations.append((activation, stamp))
        self.group.mark()

    def voided(self, voiding: Voiding, stamp: Stamp, announce: bool) -> None:
        self.gathered.voids.append((voiding, stamp, announce))
        self.group.mark()

    def stray(self, scan: ScanRecord) -> None:
        self.gathered.stray.append(scan)
        self.group.mark()

    def send(self) -> None:
        """Give the writer everything gathered, as one transaction (the commit before must be collected)."""
        assert self._commit is None, "collect the commit in the writer first"
        sending, self.gathered = self.gathered, Decisions()
        self.group.taken()
        self._commit = self._store.commit_line_async(
            printed=sending.printed, activations=[a for a, _ in sending.activations],
            voids=[v for v, _, _ in sending.voids], scans=sending.stray)
        self._writing = sending

    def collect(self, *, block: bool) -> Written | None:
        """The commit in the writer's hands once it is done (waiting for it with ``block``), else None. A failed
        commit raises here, on the engine's thread, but for the batch lock: that one is handed back."""
        commit = self._commit
        if commit is None or (not block and not commit.done()):
            return None
        self._commit = None
        written, self._writing = self._writing, Decisions()
        try:
            commit.result()
        except BatchLocked as exc:
            return Written(written, locked=str(exc))
        return Written(written)

    def put_back(self, decisions: Decisions) -> None:
        """Gather again, ahead of what came since, what a refused commit held (but its activations)."""
        self.gathered.printed[:0] = decisions.printed
        self.gathered.voids[:0] = decisions.voids
        self.gathered.stray[:0] = decisions.stray
        self.group.mark()
