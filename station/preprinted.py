"""The pre-printed line: each stamp already on its item is read as it passes, checked, and activated into the batch
(or refused with the reason), with the same outbox and EPCIS events as printed stamps; and the checks both lines
share — the product's own barcode against the batch's GTIN, batch locks, the server's word on a code.

Like the printed line's engine, one thread owns the order: reads, product barcodes and operator commands arrive on
one inbox queue. Decisions are committed in groups through ``Store.commit_preprinted``, which checks each
activation again inside the transaction (batch lock, roll state, code unused, the once-only ``code_activations``
key), so a code is never activated twice whatever the path: a restart, a resend, a read twice, two processes.

Checks, in order, for each read (the first that fails is the refusal's reason, ``RefusalReason``):
line not running → unreadable → batch closed / locked → not in any roll → roll voided / locked → roll (or the
Digital Link's GTIN) for another product → already activated → code voided → activated elsewhere (ServerCheck).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from station.alarms import REFUSAL_ALARMS, Alarm, Severity
from station.domain import Batch, CodeState, RefusalReason, RollState
from station.errors import InvalidIdentifier
from station.gs1 import link_key, parse_digital_link
from station.line.events import LineEvent, LineState, RunSummary, StampDecided, StationIdentity
from station.line.flood import FloodMeter
from station.line.loop import COMMIT_MAX_STAMPS, IDLE_WAIT_S, MAX_INBOX_PER_TURN, GroupCommit, LineLoop
# The events and the server check are re-exported: app/ takes them from here.
from station.line.stamp_events import (  # noqa: F401
    HoldKind,
    batch_hold_event,
    code_activation_event,
    code_epc,
    code_void_event,
)
from station.ports import (  # noqa: F401
    PreprintedStore,
    RejectGate,
    ServerAnswer,
    ServerCheck,
    ServerVerdict,
    VerificationRead,
)
from station.product_check import ProductGuard, ProductVerdict, parse_product_barcode  # noqa: F401
from station.rolls import CodeRules, looks_like_link
from station.store.records import CodeActivation, Refusal, RollCode, ScanRecord, utcnow

log = logging.getLogger(__name__)

__all__ = [
    "PreprintedLine", "PreprintedSettings", "PreprintedSummary", "CodeRefused", "ServerCheck", "ServerVerdict",
    "ServerAnswer", "ProductGuard", "ProductVerdict", "parse_product_barcode", "code_epc", "code_activation_event",
    "code_void_event", "batch_hold_event", "HoldKind", "STOPPING_REASONS",
]

# Refusals that stop the line whatever the policy: nothing can be activated until someone acts.
ALWAYS_STOP = frozenset({RefusalReason.BATCH_LOCKED, RefusalReason.BATCH_CLOSED, RefusalReason.PRODUCT_MISMATCH})
# Refusals that stop the line under the default policy (on_refusal: stop): a stamp that should not be there.
STOPPING_REASONS = frozenset({
    RefusalReason.NOT_IN_ROLL, RefusalReason.ALREADY_ACTIVATED, RefusalReason.ACTIVATED_ELSEWHERE,
    RefusalReason.WRONG_PRODUCT, RefusalReason.ROLL_VOIDED, RefusalReason.ROLL_LOCKED, RefusalReason.CODE_VOIDED,
}) | ALWAYS_STOP
BATCH_REFRESH_S = 0.2   # a lock set by another process (the CLI) is seen within this, and always at commit
# Refusals of reads that carry nothing to act on: during a scanner flood they are recorded and counted, but neither
# reject an item nor raise an alarm each (the flood has its own). A real code refused in a flood still does both.
NOISE_REASONS = frozenset({RefusalReason.UNREADABLE, RefusalReason.LINE_NOT_RUNNING, RefusalReason.NOT_IN_ROLL})


# -- the line -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreprintedSettings:
    stop_on_refusal: bool = True          # preprinted.on_refusal: stop
    commit_interval_s: float = 0.01
    max_inbox_per_turn: int = MAX_INBOX_PER_TURN   # reads and commands handled before the commit is looked at
    commit_max_stamps: int = COMMIT_MAX_STAMPS     # activations that make a commit due before its interval
    flood_min_reads_per_s: int = 200      # more reads a second than this, and 10 per stamp activated: a flood
    opaque_epc: str = "https://{resolver}/tem/{code}"


@dataclass(frozen=True)
class CodeRefused:
    """A stamp (or product barcode) refused before activation: the line's event, after it is recorded."""

    refusal: Refusal


PreprintedEvent = LineEvent | CodeRefused


@dataclass
class PreprintedSummary(RunSummary):
    refused: Counter[str] = field(default_factory=Counter)
    product_checked: int = 0

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def lines(self) -> list[str]:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "none"
        rejects = self.rejects()
        return [
            self.heading(", pre-printed stamps"),
            f"activated {self.activated}; refused {self.refused_total} ({refused})"
            + (f"; {rejects}" if rejects else ""),
            f"product barcodes checked {self.product_checked}",
            self.delivery(),
            f"rate {self.rate_per_min:.0f} items/min" + (f"; stopped by {self.stopped_by}" if self.stopped_by else ""),
        ] + self.notes()


class PreprintedLine(LineLoop):
    """Activates pre-printed stamps as their items pass the scanner, one batch at a time."""

    _line_name = "pre-printed line"
    _thread_name = "preprinted-line"

    def __init__(self, store: PreprintedStore, identity: StationIdentity, rules: CodeRules,
                 settings: PreprintedSettings = PreprintedSettings(), *, reject_gate: RejectGate | None = None,
                 server_check: ServerCheck | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.identity = identity
        self.rules = rules
        self.settings = settings
        self.reject_gate = reject_gate
        self.server_check = server_check
        super().__init__(clock=clock, flood=FloodMeter.per_second(settings.flood_min_reads_per_s))
        self._summary = PreprintedSummary()
        self._batch: Batch | None = None
        self._batch_read_at = 0.0
        self._guard: ProductGuard | None = None
        self._activations: list[CodeActivation] = []
        self._refusals: list[Refusal] = []
        self._pending_codes: set[str] = set()
        self._group = GroupCommit(clock, settings.commit_interval_s, settings.commit_max_stamps)
        self._server_failed = False
        self.commits = 0

    # -- public, any thread -----------------------------------------------------------------------------------

    @property
    def summary(self) -> PreprintedSummary:
        return self._summary

    def _prepare(self, batch_id: int, count: int | None) -> None:
        batch = self.store.batch(batch_id)
        if batch.closed:
            raise ValueError(f"batch {batch.lot} is closed: open a new batch")
        self.store.product(batch.gtin)
        self._batch, self._batch_read_at = batch, self._clock()
        self._guard = ProductGuard(batch)
        self._summary = PreprintedSummary(batch_lot=batch.lot, requested=count, started_at=time.time(),
                                          reject_gate=self.reject_gate is not None)

    def _started(self) -> None:
        assert self._batch is not None
        if self._batch.locked:
            self._stop_for(RefusalReason.BATCH_LOCKED, Alarm.raise_("batch_locked", self._batch.lock_reason))

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every read submitted so far is decided and committed (for tests and a clean stop)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._inbox.unfinished_tasks == 0 and not self._group.pending:
                return True
            time.sleep(0.005)
        return False

    # -- the line's thread -------------------------------------------------------------------------------------

    def _turn(self, count: int | None) -> bool:
        if self._group.due(self._clock(), len(self._activations), len(self._refusals)):
            self._flush()
        return self._state is LineState.STOPPING or (count is not None and self._summary.activated >= count)

    def _wind_up(self) -> None:
        self._flush()

    def _abandon(self) -> None:
        self._activations.clear()
        self._refusals.clear()
        self._pending_codes.clear()
        self._group.taken()

    def _wait_time(self, count: int | None) -> float:
        left = self._group.time_left(self._clock())
        return IDLE_WAIT_S if left is None else max(0.0, left)

    def _on_dropped(self, dropped: int) -> None:
        if self._batch is None:
            return
        self._in_flood = True
        self._refuse(Refusal(reason=RefusalReason.UNREADABLE, code=None,
                             detail=f"{dropped} reads not queued: {self.max_queued_reads} were waiting "
                                    "(a flooding scanner)", source="verifier", batch_id=self._batch.id))
        self._in_flood = False

    def _may_resume(self) -> bool:
        batch = self._current_batch(force=True)
        if batch.locked:
            self._raise(Alarm.raise_("batch_locked", batch.lock_reason))
            return False
        if batch.closed:
            self._raise(Alarm.raise_("batch_closed", batch.lot))
            return False
        return True

    def _current_batch(self, force: bool = False) -> Batch:
        assert self._batch is not None
        now = self._clock()
        if force or now - self._batch_read_at >= BATCH_REFRESH_S:
            self._batch, self._batch_read_at = self.store.batch(self._batch.id), now  # type: ignore[arg-type]
        return self._batch

    def _on_product_read(self, read: VerificationRead) -> None:
        assert self._guard is not None
        self._summary.product_checked += 1
        verdict = self._guard.check(read)
        if verdict.ok:
            return
        if verdict.refusal is not None:
            self._refuse(verdict.refusal, stop=True)
        elif verdict.alarm is not None:
            self._raise(verdict.alarm)

    def _on_read(self, read: VerificationRead) -> None:
        batch = self._current_batch()
        scan_at = utcnow()
        text = read.text.strip() if read.text else None

        def refuse(reason: RefusalReason, detail: str, code: RollCode | None = None) -> None:
            self._refuse(Refusal(reason=reason, code=text, raw=read.raw, detail=detail, source=read.source,
                                 batch_id=batch.id, roll_pk=code.roll_pk if code else None, at=scan_at))

        if self._state is not LineState.RUNNING:
            refuse(RefusalReason.LINE_NOT_RUNNING, f"read while the line was {self._state.value}")
            return
        if read.refused is not None or not text:
            refuse(RefusalReason.UNREADABLE, f"read refused: {read.refused or 'no text'}")
            return
        if batch.locked:
            refuse(RefusalReason.BATCH_LOCKED, f"batch {batch.lot} is locked: {batch.lock_reason}")
            return
        if batch.closed:
            refuse(RefusalReason.BATCH_CLOSED, f"batch {batch.lot} is closed")
            return
        code = self.store.find_code(text)
        if code is None and link_key(text) != text:   # a link's host in other letter case is the same code
            code = self.store.find_code(link_key(text))
        link_gtin: str | None = None
        if looks_like_link(text):
            try:
                parsed = parse_digital_link(text)
            except InvalidIdentifier as exc:
                if code is None:
                    refuse(RefusalReason.NOT_IN_ROLL, f"not in any registered roll, and {exc}"[:300])
                    return
            else:
                link_gtin = parsed.gtin
                if code is None:
                    code = self.store.find_code_by_serial(parsed.gtin, parsed.serial)
                if code is None:
                    stamp = self.store.find_stamp(parsed.gtin, parsed.serial)
                    if stamp is not None:
                        refuse(RefusalReason.ALREADY_ACTIVATED,
                               f"not in a roll: a stamp printed here, {stamp.serial}, already {stamp.state.value}")
                        return
        if code is None:
            refuse(RefusalReason.NOT_IN_ROLL, "not a code of any registered roll")
            return
        if code.roll_state is RollState.VOIDED:
            refuse(RefusalReason.ROLL_VOIDED, f"roll {code.roll_id} is voided: {code.roll_state_reason}", code)
            return
        if code.roll_state is RollState.LOCKED:
            refuse(RefusalReason.ROLL_LOCKED, f"roll {code.roll_id} is locked: {code.roll_state_reason}", code)
            return
        if code.roll_gtin != batch.gtin or (link_gtin is not None and link_gtin != batch.gtin):
            refuse(RefusalReason.WRONG_PRODUCT, f"roll {code.roll_id} is meant for {link_gtin or code.roll_gtin}, "
                                                f"the batch {batch.lot} is {batch.gtin}", code)
            return
        if code.code in self._pending_codes or code.state is CodeState.ACTIVATED:
            when = f"at {code.activated_at:%Y-%m-%d %H:%M:%S} UTC" if code.activated_at else "just now"
            refuse(RefusalReason.ALREADY_ACTIVATED, f"#{code.seq} of roll {code.roll_id} was activated {when}", code)
            return
        if code.state is CodeState.VOIDED:
            refuse(RefusalReason.CODE_VOIDED, f"#{code.seq} of roll {code.roll_id} was voided "
                                              f"({code.void_reason}): {code.void_detail}", code)
            return
        answer = self._ask_server(code)
        if answer.verdict is ServerVerdict.ACTIVATED_ELSEWHERE:
            refuse(RefusalReason.ACTIVATED_ELSEWHERE, answer.detail or "the server says it is active elsewhere", code)
            return
        event = code_activation_event(code, batch, self.identity, self.settings.opaque_epc, source=read.source)
        self._activations.append(CodeActivation(
            code_id=code.id, code=code.code, batch_id=batch.id, gtin=batch.gtin,  # type: ignore[arg-type]
            serial=code.serial or code.code, event=event, read_text=text,
            scan=ScanRecord(read.source, text, read.raw, "preprinted_activated", code.roll_id, scan_at),
            raw=read.raw, source=read.source, roll_pk=code.roll_pk,
        ))
        self._pending_codes.add(code.code)
        self._group.mark()

    def _ask_server(self, code: RollCode) -> ServerAnswer:
        if self.server_check is None:
            return ServerAnswer(ServerVerdict.UNKNOWN)
        try:
            answer = self.server_check.check(code.code, code.gtin, code.serial)
            if self._server_failed:
                log.info("server check answers again")
                self._server_failed = False
            return answer
        except Exception as exc:  # the local checks still hold; say so once, not for every stamp
            if not self._server_failed:
                log.warning("server check failed, local checks only: %s", exc)
                self._server_failed = True
            return ServerAnswer(ServerVerdict.UNKNOWN, str(exc))

    # -- decisions ---------------------------------------------------------------------------------------------

    def _refuse(self, refusal: Refusal, *, stop: bool | None = None, recorded: bool = False) -> None:
        """Count, reject the item, alarm, announce; record unless the commit already did."""
        if not recorded:
            self._refusals.append(refusal)
            self._group.mark()
        self._summary.refused[refusal.reason.value] += 1
        if self._in_flood and refusal.reason in NOISE_REASONS and not (refusal.code and looks_like_link(refusal.code)):
            return   # on record and counted; the flood's alarm says the rest
        if self._in_flood:   # a real code refused in a flood: its item is rejected, its alarm raised once
            self._reject()
            if refusal.reason.value in self._flood_alarmed:
                return
            self._flood_alarmed.add(refusal.reason.value)
        else:
            self._reject()
        detail = f"{refusal.code[:80]!r}: {refusal.detail}" if refusal.code else refusal.detail
        alarm = Alarm.raise_(REFUSAL_ALARMS[refusal.reason.value], detail[:300])
        must_stop = refusal.reason in ALWAYS_STOP or (
            self.settings.stop_on_refusal and refusal.reason in STOPPING_REASONS)
        if stop is not None:
            must_stop = stop
        if not must_stop and alarm.severity is Severity.STOP:
            alarm = Alarm(code=alarm.code, severity=Severity.WARNING, text=alarm.text, detail=alarm.detail)
        self._emit(CodeRefused(refusal))
        if must_stop:
            self._stop_for(refusal.reason, alarm)
        else:
            self._raise(alarm)

    def _stop_for(self, reason: RefusalReason, alarm: Alarm) -> None:
        self._raise(alarm)
        if self._state is LineState.RUNNING:
            self._set_state(LineState.FAULT, alarm.code)

    def _flush(self) -> None:
        if not self._group.pending:
            return
        activations, refusals = self._activations, self._refusals
        self._activations, self._refusals = [], []
        try:
            outcomes = self.store.commit_preprinted(activations, refusals)
        finally:
            # cleared only now, so drain() does not return while the commit is still running
            self._group.taken()
            self._pending_codes.difference_update(a.code for a in activations)
        self.commits += 1
        for outcome in outcomes:
            if outcome.stamp is not None:
                self._flood.item(self._clock())
                self._summary.verified += 1
                self._summary.activated += 1
                self._last_stamp = outcome.stamp
                self._emit(StampDecided(outcome.stamp, outcome.activation.read_text))
            elif outcome.refusal is not None:
                # Refused inside the transaction (a lock from another process, a race): already recorded.
                self._refuse(outcome.refusal, recorded=True)
