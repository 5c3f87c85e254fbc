"""Pre-printed rolls: registration from a manifest, lock and void, the activation of their codes on the
pre-printed line (``commit_preprinted``), and the refusals of both lines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from station.domain import CodeState, RefusalReason, RollState, StampState
from station.store.database import Database
from station.store.line_commit import write_scans
from station.store.models import BatchRow, CodeActivationRow, ProductRow, RefusalRow, RollCodeRow, RollRow, StampRow
from station.store.outbox import add_audit, write_events
from station.store.records import (
    CodeActivation,
    CommitOutcome,
    NewRoll,
    Refusal,
    RollCode,
    RollConflict,
    RollInfo,
    StoreError,
    utcnow,
)
from station.store.sql import session_executemany
from station.store.stamps import stamp_of


def roll_of(row: RollRow) -> RollInfo:
    return RollInfo(pk=row.id, roll_id=row.roll_id, gtin=row.gtin, kind=row.kind, pattern=row.pattern,
                    first=row.first, last=row.last, code_count=row.code_count, issuer=row.issuer or "",
                    manifest=row.manifest or "", manifest_sha256=row.manifest_sha256 or "",
                    registered_at=row.registered_at, state=RollState(row.state), state_reason=row.state_reason or "")


def roll_code_of(row: RollCodeRow, roll: RollRow) -> RollCode:
    return RollCode(id=row.id, roll_pk=row.roll_pk, roll_id=roll.roll_id, roll_gtin=roll.gtin,
                    roll_state=RollState(roll.state), roll_state_reason=roll.state_reason or "", seq=row.seq,
                    code=row.code, gtin=row.gtin, serial=row.serial, state=CodeState(row.state),
                    batch_id=row.batch_id, stamp_id=row.stamp_id, activated_at=row.activated_at,
                    void_reason=row.void_reason, void_detail=row.void_detail or "", voided_at=row.voided_at)


def _add_refusal(s: Session, refusal: Refusal) -> None:
    s.add(RefusalRow(at=refusal.at, reason=refusal.reason.value, code=refusal.code, raw_hex=refusal.raw.hex(),
                     detail=refusal.detail[:1000], source=refusal.source[:40], batch_id=refusal.batch_id,
                     roll_pk=refusal.roll_pk))


def _recheck(s: Session, act: CodeActivation) -> Refusal | None:
    """Why this activation must be refused now, inside the commit's transaction, or None."""
    batch = s.get(BatchRow, act.batch_id)
    if batch is None:
        raise StoreError(f"unknown batch {act.batch_id}")
    if batch.locked_at is not None:
        return act.refusal(RefusalReason.BATCH_LOCKED, f"batch {batch.lot} is locked: {batch.lock_reason}")
    if batch.closed_at is not None:
        return act.refusal(RefusalReason.BATCH_CLOSED, f"batch {batch.lot} is closed")
    code_row = s.get(RollCodeRow, act.code_id)
    if code_row is None:
        raise StoreError(f"unknown roll code {act.code_id}")
    roll = s.get(RollRow, code_row.roll_pk)
    assert roll is not None
    if roll.state == RollState.VOIDED.value:
        return act.refusal(RefusalReason.ROLL_VOIDED, f"roll {roll.roll_id} is voided: {roll.state_reason}")
    if roll.state == RollState.LOCKED.value:
        return act.refusal(RefusalReason.ROLL_LOCKED, f"roll {roll.roll_id} is locked: {roll.state_reason}")
    if roll.gtin != batch.gtin:
        return act.refusal(RefusalReason.WRONG_PRODUCT,
                           f"roll {roll.roll_id} is meant for {roll.gtin}, the batch is {batch.gtin}")
    if code_row.state == CodeState.ACTIVATED.value or s.get(CodeActivationRow, act.code) is not None:
        return act.refusal(RefusalReason.ALREADY_ACTIVATED, f"activated at {code_row.activated_at} "
                                                             f"into batch {code_row.batch_id}")
    if code_row.state == CodeState.VOIDED.value:
        return act.refusal(RefusalReason.CODE_VOIDED, f"voided ({code_row.void_reason}): {code_row.void_detail}")
    return None


def _conflicts(s: Session, roll: NewRoll) -> list[str]:
    """Why each code of a new roll cannot be registered: in another roll, used by a stamp here."""
    conflicts: list[str] = []
    by_code = {c.code: c for c in roll.codes}
    texts = list(by_code)
    for i in range(0, len(texts), 500):
        for code, other in s.execute(
            select(RollCodeRow.code, RollRow.roll_id).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
            .where(RollCodeRow.code.in_(texts[i:i + 500]))
        ):
            mine = by_code[code]
            n = f" (n={mine.seq})" if roll.kind == "sequence" else ""
            conflicts.append(f"{roll.manifest}: line {mine.line}: code {code!r}{n} is already in roll {other!r}")
    keyed = {(c.gtin, c.serial): c for c in roll.codes if c.gtin and c.serial}
    if keyed and len(conflicts) < 20:
        for gtin in {g for g, _ in keyed}:
            serials = [sr for g, sr in keyed if g == gtin]
            for i in range(0, len(serials), 500):
                chunk = serials[i:i + 500]
                for code, serial, other in s.execute(
                    select(RollCodeRow.code, RollCodeRow.serial, RollRow.roll_id)
                    .join(RollRow, RollRow.id == RollCodeRow.roll_pk)
                    .where(RollCodeRow.gtin == gtin, RollCodeRow.serial.in_(chunk))
                ):
                    mine = keyed[(gtin, serial)]
                    if mine.code != code:
                        conflicts.append(f"{roll.manifest}: line {mine.line}: GTIN {gtin} serial {serial!r} "
                                         f"is already in roll {other!r} (as {code!r})")
                for (serial,) in s.execute(select(StampRow.serial).where(
                        StampRow.gtin == gtin, StampRow.serial.in_(chunk))):
                    mine = keyed[(gtin, serial)]
                    conflicts.append(f"{roll.manifest}: line {mine.line}: GTIN {gtin} serial {serial!r} "
                                     "is already used by a stamp of this station")
    return conflicts


class RollRepository:
    """Registered rolls and their codes, the pre-printed line's commits, and every refused read."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- rolls ------------------------------------------------------------------------------------------------

    def register_roll(self, roll: NewRoll) -> RollInfo:
        """Register a roll and all its codes in one transaction, or nothing.

        Refused (RollConflict / StoreError, naming the manifest's file and line) when the roll id is taken, the
        product is unknown, or any code is already in another roll, already used by a stamp here (the same
        GTIN and serial), or given twice. The unique index on ``roll_codes.code`` is the final word.
        """

        def job(s: Session) -> RollInfo:
            taken = s.scalar(select(RollRow).where(RollRow.roll_id == roll.roll_id))
            if taken is not None:
                raise StoreError(f"{roll.manifest}: roll {roll.roll_id!r} is already registered "
                                 f"(from {taken.manifest}, {taken.registered_at:%Y-%m-%d %H:%M} UTC)")
            if s.get(ProductRow, roll.gtin) is None:
                raise StoreError(f"{roll.manifest}: product GTIN {roll.gtin} is not in the product list")
            conflicts = _conflicts(s, roll)
            if conflicts:
                more = f"\n… and {len(conflicts) - 20} more" if len(conflicts) > 20 else ""
                raise RollConflict("\n".join(conflicts[:20]) + more, conflicts)
            now = utcnow()
            row = RollRow(roll_id=roll.roll_id, gtin=roll.gtin, kind=roll.kind, pattern=roll.pattern,
                          first=roll.first, last=roll.last, code_count=len(roll.codes), issuer=roll.issuer,
                          manifest=roll.manifest, manifest_sha256=roll.manifest_sha256, registered_at=now,
                          state=RollState.ACTIVE.value, state_reason="")
            s.add(row)
            s.flush()
            s.execute(insert(RollCodeRow), [
                {"roll_pk": row.id, "seq": c.seq, "code": c.code, "gtin": c.gtin, "serial": c.serial,
                 "state": CodeState.UNUSED.value, "void_detail": ""}
                for c in roll.codes
            ])
            add_audit(s, "operator", "roll_registered",
                      f"{roll.roll_id}: {len(roll.codes)} codes for {roll.gtin} from {roll.manifest}", now)
            return roll_of(row)

        try:
            return self._db.write(job)
        except IntegrityError as exc:  # a race with another writer: the index said no
            raise RollConflict(f"{roll.manifest}: a code is already registered in another roll ({exc.orig})",
                               []) from None

    def roll(self, roll_id: str) -> RollInfo:
        row = self._db.read(lambda s: s.scalar(select(RollRow).where(RollRow.roll_id == roll_id)))
        if row is None:
            raise StoreError(f"unknown roll {roll_id!r}: register it first (station rolls register MANIFEST)")
        return roll_of(row)

    def rolls(self, *, gtin: str | None = None) -> list[RollInfo]:
        q = select(RollRow).order_by(RollRow.id)
        if gtin:
            q = q.where(RollRow.gtin == gtin)
        return self._db.read(lambda s: [roll_of(r) for r in s.scalars(q)])

    def roll_counts(self, roll_pk: int) -> dict[CodeState, int]:
        rows = self._db.read(lambda s: s.execute(
            select(RollCodeRow.state, func.count()).where(RollCodeRow.roll_pk == roll_pk)
            .group_by(RollCodeRow.state)).all())
        counts = {state: 0 for state in CodeState}
        for state, n in rows:
            counts[CodeState(state)] = n
        return counts

    def set_roll_state(self, roll_id: str, state: RollState, reason: str, *, actor: str = "operator",
                       void_event: Callable[[RollCode], dict[str, Any]] | None = None) -> RollInfo:
        """Lock, unlock or void a roll, with the reason in the roll and the audit log.

        Voiding is for good: every unused code of the roll is voided with it (``roll_voided``), each with the
        void event ``void_event`` builds for it, in the same transaction.
        """
        if not reason.strip():
            raise StoreError("give a reason: it is recorded and shown in the roll's report")

        def job(s: Session) -> RollInfo:
            row = s.scalar(select(RollRow).where(RollRow.roll_id == roll_id))
            if row is None:
                raise StoreError(f"unknown roll {roll_id!r}")
            if row.state == RollState.VOIDED.value:
                raise StoreError(f"roll {roll_id!r} is voided ({row.state_reason}): a voided roll stays voided")
            now = utcnow()
            previous = row.state
            row.state, row.state_reason, row.state_changed_at = state.value, reason, now
            voided = 0
            if state is RollState.VOIDED:
                events = []
                for code_row in s.scalars(select(RollCodeRow).where(
                        RollCodeRow.roll_pk == row.id, RollCodeRow.state == CodeState.UNUSED.value)):
                    code_row.state, code_row.voided_at = CodeState.VOIDED.value, now
                    code_row.void_reason, code_row.void_detail = RefusalReason.ROLL_VOIDED.value, reason
                    if void_event is not None:
                        events.append(("code_void", None, void_event(roll_code_of(code_row, row))))
                    voided += 1
                write_events(session_executemany(s), events, now)
            add_audit(s, actor, f"roll_{state.value}", f"{roll_id}: {previous} -> {state.value}: {reason}"
                      + (f" ({voided} unused codes voided)" if voided else ""), now)
            return roll_of(row)

        return self._db.write(job)

    # -- codes ------------------------------------------------------------------------------------------------

    def find_code(self, code: str) -> RollCode | None:
        """The roll code carrying exactly this text, with its roll."""
        q = (select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
             .where(RollCodeRow.code == code))
        row = self._db.read(lambda s: s.execute(q).first())
        return roll_code_of(*row) if row else None

    def find_code_by_serial(self, gtin: str, serial: str) -> RollCode | None:
        """The Digital Link roll code with this GTIN and serial (whatever its domain or extra qualifiers)."""
        q = (select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
             .where(RollCodeRow.gtin == gtin, RollCodeRow.serial == serial))
        row = self._db.read(lambda s: s.execute(q).first())
        return roll_code_of(*row) if row else None

    def roll_codes(self, roll_pk: int) -> list[RollCode]:
        """Every code of a roll in roll order (its sequence number)."""
        q = (select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
             .where(RollCodeRow.roll_pk == roll_pk).order_by(RollCodeRow.seq))
        return self._db.read(lambda s: [roll_code_of(c, r) for c, r in s.execute(q)])

    def is_code_activated(self, code: str) -> bool:
        return self._db.read(lambda s: s.get(CodeActivationRow, code)) is not None

    def void_code(self, code: str, reason: str, *, actor: str = "operator",
                  event: dict[str, Any] | None = None) -> RollCode:
        """Void one unused code of a roll for good (a damaged or lost stamp), with its void event."""
        if not reason.strip():
            raise StoreError("give a reason: it is recorded and shown in the roll's report")

        def job(s: Session) -> RollCode:
            pair = s.execute(select(RollCodeRow, RollRow).join(RollRow, RollRow.id == RollCodeRow.roll_pk)
                             .where(RollCodeRow.code == code)).first()
            if pair is None:
                raise StoreError(f"code {code!r} is in no registered roll")
            code_row, roll_row = pair
            if code_row.state != CodeState.UNUSED.value:
                raise StoreError(f"code {code!r} of roll {roll_row.roll_id!r} is {code_row.state}: only an unused "
                                 "code can be voided here")
            now = utcnow()
            code_row.state, code_row.voided_at = CodeState.VOIDED.value, now
            code_row.void_reason, code_row.void_detail = "operator", reason
            if event is not None:
                write_events(session_executemany(s), [("code_void", None, event)], now)
            add_audit(s, actor, "code_voided", f"{code} (roll {roll_row.roll_id}, #{code_row.seq}): {reason}", now)
            return roll_code_of(code_row, roll_row)

        return self._db.write(job)

    # -- the pre-printed line's commits, and refusals ---------------------------------------------------------

    def commit_preprinted(self, activations: Sequence[CodeActivation] = (),
                          refusals: Sequence[Refusal] = ()) -> list[CommitOutcome]:
        """Activate pre-printed codes (stamp row, code state, once-only record, outbox row) and record refusals,
        in one transaction.

        Each activation is checked again inside the transaction — batch not closed or locked, roll active, code
        unused, never activated — so a lock set by another process, or a code read twice, is refused here even if
        the line had not seen it yet. Such an activation becomes a refusal (recorded) instead of failing the
        group. Returns one outcome per activation, in order.
        """

        def job(s: Session) -> list[CommitOutcome]:
            now = utcnow()
            executemany = session_executemany(s)
            outcomes: list[CommitOutcome] = []
            for act in activations:
                refusal = _recheck(s, act)
                if refusal is None:
                    savepoint = s.begin_nested()
                    try:
                        stamp = StampRow(gtin=act.gtin, serial=act.serial, batch_id=act.batch_id,
                                         state=StampState.ACTIVATED.value, uri=act.code, read_text=act.read_text,
                                         void_detail="", allocated_at=now, verified_at=now, activated_at=now)
                        s.add(stamp)
                        s.flush()
                        s.add(CodeActivationRow(code=act.code, stamp_id=stamp.id, batch_id=act.batch_id, at=now))
                        s.flush()
                        changed = s.execute(
                            update(RollCodeRow)
                            .where(RollCodeRow.id == act.code_id, RollCodeRow.state == CodeState.UNUSED.value)
                            .values(state=CodeState.ACTIVATED.value, stamp_id=stamp.id, batch_id=act.batch_id,
                                    activated_at=now)
                        ).rowcount
                        if changed != 1:
                            raise IntegrityError("roll code not unused", None, Exception("state"))
                        write_events(executemany, [("activation", stamp.id, act.event)], now)
                        if act.scan is not None:
                            write_scans(executemany, [(act.scan, stamp.id)])
                        savepoint.commit()
                        outcomes.append(CommitOutcome(act, stamp_of(stamp), None))
                        continue
                    except IntegrityError as exc:
                        savepoint.rollback()
                        refusal = act.refusal(RefusalReason.ALREADY_ACTIVATED,
                                              f"the database refused a second activation ({exc.orig})")
                _add_refusal(s, refusal)
                if act.scan is not None:
                    write_scans(executemany, [(act.scan, None)])
                outcomes.append(CommitOutcome(act, None, refusal))
            for refusal in refusals:
                _add_refusal(s, refusal)
            return outcomes

        return self._db.write(job)

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        """Record refused reads (a product barcode mismatch on the printed line, for instance)."""
        if refusals:
            self.commit_preprinted(refusals=refusals)

    def refusals(self, *, roll_pk: int | None = None, batch_id: int | None = None,
                 limit: int | None = None) -> list[Refusal]:
        q = select(RefusalRow, RollRow.roll_id).outerjoin(RollRow, RollRow.id == RefusalRow.roll_pk)
        if roll_pk is not None:
            q = q.where(RefusalRow.roll_pk == roll_pk)
        if batch_id is not None:
            q = q.where(RefusalRow.batch_id == batch_id)
        q = q.order_by(RefusalRow.id)
        if limit is not None:
            q = q.limit(limit)
        return self._db.read(lambda s: [
            Refusal(reason=RefusalReason(r.reason), code=r.code, raw=bytes.fromhex(r.raw_hex), detail=r.detail,
                    source=r.source, batch_id=r.batch_id, roll_pk=r.roll_pk, at=r.at, roll_id=roll_id)
            for r, roll_id in s.execute(q)
        ])

    def refusal_count(self, *, roll_pk: int) -> int:
        """How many reads of a roll's codes were refused (what the operator screen shows, without the rows)."""
        q = select(func.count()).select_from(RefusalRow).where(RefusalRow.roll_pk == roll_pk)
        return int(self._db.read(lambda s: s.scalar(q)) or 0)
