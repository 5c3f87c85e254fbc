"""Stamps: serials reserved for a batch, the line's commits (``line_commit``), what a run left undecided, the
counters, and the reads recorded beside them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from station.domain import DeliveryState, Stamp, StampState, VoidReason
from station.errors import DuplicateSerial
from station.store.database import Database
from station.store.line_commit import line_job, write_scans
from station.store.models import BatchRow, OutboxRow, ScanRow, StampRow
from station.store.records import Activation, Counts, ScanRecord, StoreError, Voiding, utcnow
from station.store.sql import session_executemany

SERIAL_ATTEMPTS = 8
_UNDECIDED = (StampState.ALLOCATED.value, StampState.SENT_TO_PRINTER.value, StampState.VERIFIED.value)


def stamp_of(row: StampRow) -> Stamp:
    return Stamp(
        id=row.id,
        gtin=row.gtin,
        serial=row.serial,
        batch_id=row.batch_id,
        state=StampState(row.state),
        uri=row.uri,
        void_reason=VoidReason(row.void_reason) if row.void_reason else None,
        void_detail=row.void_detail or "",
    )


class StampRepository:
    """Stamps of the printed line, from the serial reserved to the stamp activated, voided or given back unused."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Waits on the writer for block reservations, so the line does not have to.
        self._allocator = db.helper_thread("serial-allocator")

    # -- serials ----------------------------------------------------------------------------------------------

    def allocate_stamp(self, batch_id: int, make_serial: Callable[[], str], make_uri: Callable[[str], str]) -> Stamp:
        """Reserve one fresh serial for the batch's GTIN (see allocate_stamps)."""
        return self.allocate_stamps(batch_id, 1, make_serial, make_uri)[0]

    def allocate_stamps(self, batch_id: int, count: int, make_serial: Callable[[], str],
                        make_uri: Callable[[str], str]) -> list[Stamp]:
        """Reserve ``count`` fresh serials for the batch's GTIN in one transaction.

        The unique index is what makes a serial unique for ever; a candidate that collides (astronomically rare
        with random serials) makes the whole block be drawn again.
        """

        def attempt(serials: list[str]) -> Callable[[Session], list[Stamp]]:
            def job(s: Session) -> list[Stamp]:
                batch = s.get(BatchRow, batch_id)
                if batch is None:
                    raise StoreError(f"unknown batch {batch_id}")
                if batch.closed_at is not None:
                    raise StoreError(f"batch {batch.lot} is closed: open a new batch to print more stamps")
                now = utcnow()
                rows = [StampRow(gtin=batch.gtin, serial=serial, batch_id=batch_id, state=StampState.ALLOCATED.value,
                                 uri=make_uri(serial), void_detail="", allocated_at=now) for serial in serials]
                s.add_all(rows)
                s.flush()
                return [stamp_of(row) for row in rows]

            return job

        for _ in range(SERIAL_ATTEMPTS):
            serials = [make_serial() for _ in range(count)]
            if len(set(serials)) != len(serials):
                continue
            try:
                return self._db.write(attempt(serials))
            except IntegrityError as exc:
                if "uq_stamps_gtin_serial" not in str(exc) and "stamps.gtin, stamps.serial" not in str(exc):
                    raise
        raise DuplicateSerial(
            f"{SERIAL_ATTEMPTS} draws in a row hit existing serials for batch {batch_id}: the serial length is too short"
        )

    def allocate_stamps_async(self, batch_id: int, count: int, make_serial: Callable[[], str],
                              make_uri: Callable[[str], str]) -> Future[list[Stamp]]:
        """allocate_stamps on a helper thread, so the line can reserve the next block while it prints."""
        return self._allocator.submit(self.allocate_stamps, batch_id, count, make_serial, make_uri)

    def release_unused(self, stamp_ids: Sequence[int], detail: str = "reserved, never printed") -> int:
        """Serials reserved and never printed become ``unused``: no event (a serial never commissioned has nothing
        to decommission), never reused. Only allocated stamps change; returns how many did."""
        ids = list(stamp_ids)
        if not ids:
            return 0

        def job(s: Session) -> int:
            changed = 0
            for start in range(0, len(ids), 500):
                changed += s.execute(
                    update(StampRow).where(StampRow.id.in_(ids[start:start + 500]),
                                           StampRow.state == StampState.ALLOCATED.value)
                    .values(state=StampState.UNUSED.value, void_detail=detail[:300])
                ).rowcount
            return changed

        return self._db.write(job)

    # -- the line's commits (line_commit.line_job) ------------------------------------------------------------

    def commit_line(self, printed: Sequence[int] = (), activations: Sequence[Activation] = (),
                    voids: Sequence[Voiding] = (), scans: Sequence[ScanRecord] = ()) -> None:
        """What the line decided since the last commit, in one transaction (see line_commit.line_job)."""
        self._db.commit_plain(line_job(printed, activations, voids, scans))

    def commit_line_async(self, printed: Sequence[int] = (), activations: Sequence[Activation] = (),
                          voids: Sequence[Voiding] = (), scans: Sequence[ScanRecord] = ()) -> Future[None]:
        """The same commit, queued on the writer thread; the line goes on printing while it is written.

        Commits run in the order they were queued (one writer), so a later commit never overtakes an earlier one.
        """
        job = line_job(printed, activations, voids, scans)

        def run(cur: Any) -> None:
            job(cur)

        return self._db.commit_plain_async(run)

    def mark_sent_to_printer(self, stamp_id: int) -> Stamp:
        return self._db.commit_plain(line_job([stamp_id], (), (), (), read_back=[stamp_id]))[0]

    def activate(self, stamp_id: int, read_text: str, event: dict[str, Any], scan: ScanRecord | None = None) -> Stamp:
        """Verified and activated, with its outbox row (and the scan that verified it), in one transaction: the
        line's commit with one activation, returning the stamp as committed."""
        activation = Activation(stamp_id, read_text, event, scan)
        return self._db.commit_plain(line_job((), [activation], (), (), read_back=[stamp_id]))[0]

    def void(
        self,
        stamp_id: int,
        reason: VoidReason,
        detail: str,
        event: dict[str, Any],
        scan: ScanRecord | None = None,
        read_text: str | None = None,
    ) -> Stamp:
        """Void a stamp for good (its serial is never reused) and queue the void event, in one transaction."""
        voiding = Voiding(stamp_id, reason, detail, event, scan, read_text)
        return self._db.commit_plain(line_job((), (), [voiding], (), read_back=[stamp_id]))[0]

    # -- reads ------------------------------------------------------------------------------------------------

    def record_scan(self, scan: ScanRecord, stamp_id: int | None = None) -> None:
        self._db.write(lambda s: write_scans(session_executemany(s), [(scan, stamp_id)]))

    def stamp(self, stamp_id: int) -> Stamp:
        row = self._db.read(lambda s: s.get(StampRow, stamp_id))
        if row is None:
            raise StoreError(f"unknown stamp {stamp_id}")
        return stamp_of(row)

    def find_stamp(self, gtin: str, serial: str) -> Stamp | None:
        row = self._db.read(lambda s: s.scalar(select(StampRow).where(StampRow.gtin == gtin,
                                                                      StampRow.serial == serial)))
        return stamp_of(row) if row else None

    def stamps(self, *, batch_id: int | None = None, state: StampState | None = None, limit: int = 100,
               newest_first: bool = True, printed_only: bool = False) -> list[Stamp]:
        """Stamps, newest first; `printed_only` leaves out serials never printed (`unused`: reserved ahead and given
        back when the line stopped)."""
        q = select(StampRow)
        if batch_id is not None:
            q = q.where(StampRow.batch_id == batch_id)
        if state is not None:
            q = q.where(StampRow.state == state.value)
        if printed_only:
            q = q.where(StampRow.state != StampState.UNUSED.value)
        q = q.order_by(StampRow.id.desc() if newest_first else StampRow.id).limit(limit)
        return self._db.read(lambda s: [stamp_of(r) for r in s.scalars(q)])

    def in_flight_stamps(self) -> list[Stamp]:
        """Stamps allocated or sent to the printer but not decided: after a crash these can only be voided."""
        q = select(StampRow).where(StampRow.state.in_(_UNDECIDED)).order_by(StampRow.id)
        return self._db.read(lambda s: [stamp_of(r) for r in s.scalars(q)])

    def interrupted_stamps(self, unrecorded_prints: int) -> tuple[list[Stamp], list[Stamp]]:
        """The stamps a run left undecided (a crash or a kill), split into those that may have been printed and
        those that certainly were not.

        A label goes to the printer before its print is written (in the line's next group commit), and the line
        never has more than ``unrecorded_prints`` printed stamps unwritten. It prints a batch's reserved serials in
        the order they were reserved (by id), so after its last stamp written as printed, the next
        ``unrecorded_prints`` allocated ones may be on labels; the allocated stamps before it and after those were
        never sent. Stamps sent to the printer (or verified) may be printed, of course.
        """

        def job(s: Session) -> tuple[list[Stamp], list[Stamp]]:
            maybe: list[Stamp] = []
            never: list[Stamp] = []
            rows = s.scalars(select(StampRow).where(StampRow.state.in_(_UNDECIDED)).order_by(StampRow.id)).all()
            after: dict[int, int] = {}   # batch -> allocated stamps seen after its last one written as printed
            last_printed: dict[int, int] = {}
            for row in rows:
                if row.state != StampState.ALLOCATED.value:
                    maybe.append(stamp_of(row))
                    continue
                if row.batch_id not in last_printed:
                    last_printed[row.batch_id] = s.scalar(
                        select(func.max(StampRow.id)).where(StampRow.batch_id == row.batch_id,
                                                            StampRow.printed_at.is_not(None))) or 0
                if row.id < last_printed[row.batch_id]:
                    never.append(stamp_of(row))
                    continue
                seen = after.get(row.batch_id, 0)
                after[row.batch_id] = seen + 1
                (maybe if seen < unrecorded_prints else never).append(stamp_of(row))
            return maybe, never

        return self._db.read(job)

    def counts(self, batch_id: int | None = None, since: dt.datetime | None = None) -> Counts:
        def job(s: Session) -> Counts:
            counts = Counts()
            q = select(StampRow.state, StampRow.void_reason, func.count()).group_by(StampRow.state,
                                                                                   StampRow.void_reason)
            oq = select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
            if batch_id is not None:
                q = q.where(StampRow.batch_id == batch_id)
                oq = oq.join(StampRow, OutboxRow.stamp_id == StampRow.id).where(StampRow.batch_id == batch_id)
            if since is not None:
                q = q.where(StampRow.allocated_at >= since)
                oq = oq.where(OutboxRow.created_at >= since)
            for state, reason, n in s.execute(q):
                st = StampState(state)
                counts.by_state[st] = counts.by_state.get(st, 0) + n
                if st is StampState.VOIDED and reason:
                    counts.voided_by_reason[reason] = counts.voided_by_reason.get(reason, 0) + n
            for state, n in s.execute(oq):
                counts.delivery[DeliveryState(state)] = n
            return counts

        return self._db.read(job)

    def scans(self, limit: int = 100) -> list[ScanRecord]:
        q = select(ScanRow).order_by(ScanRow.id.desc()).limit(limit)
        return self._db.read(lambda s: [
            ScanRecord(source=r.source, text=r.text, raw=bytes.fromhex(r.raw_hex), outcome=r.outcome,
                       detail=r.detail, at=r.at)
            for r in s.scalars(q)
        ])
