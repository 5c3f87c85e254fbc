"""What the store takes and gives back: plain frozen records (never live ORM rows), and the store's errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from station.domain import CodeState, DeliveryState, RefusalReason, RollState, Stamp, StampState, VoidReason
from station.errors import StationError


class StoreError(StationError):
    """A database operation refused for a domain reason (unknown batch, closed batch, duplicate lot)."""


class BatchLocked(StoreError):
    """An activation into a batch that is locked (a recall or a quality hold)."""


class DuplicateEvent(StoreError):
    """An event whose eventID is already in the outbox (or twice in one commit): nothing of that commit is written."""


class RollConflict(StoreError):
    """A roll manifest whose codes are already registered or used; ``conflicts`` has one message per code."""

    def __init__(self, message: str, conflicts: list[str]) -> None:
        super().__init__(message)
        self.conflicts = conflicts


def utcnow() -> dt.datetime:
    """Naive UTC: SQLite keeps no time zone, so every stored time is UTC by convention."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# -- stamps and the line ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScanRecord:
    """One line from a verification device, written beside the stamp it decided (or alone when it matched none)."""

    source: str
    text: str | None
    raw: bytes
    outcome: str
    detail: str = ""
    at: dt.datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Activation:
    """A verified stamp to activate, with its EPCIS event, the read that verified it and its print quality."""

    stamp_id: int
    read_text: str
    event: dict[str, Any]
    scan: ScanRecord | None = None
    quality_grade: str | None = None
    quality: dict[str, Any] | None = None


@dataclass(frozen=True)
class Voiding:
    """A stamp to void for good, with its EPCIS event and, where a read decided it, that read."""

    stamp_id: int
    reason: VoidReason
    detail: str
    event: dict[str, Any]
    scan: ScanRecord | None = None
    read_text: str | None = None


@dataclass
class Counts:
    """Stamp and delivery counters, for a batch or the whole station."""

    by_state: dict[StampState, int] = field(default_factory=dict)
    voided_by_reason: dict[str, int] = field(default_factory=dict)
    delivery: dict[DeliveryState, int] = field(default_factory=dict)

    def state(self, state: StampState) -> int:
        return self.by_state.get(state, 0)

    @property
    def printed(self) -> int:
        """Stamps that went to the printer: everything but the serials reserved ahead (allocated) and those given
        back unprinted (unused)."""
        return sum(self.by_state.values()) - self.state(StampState.ALLOCATED) - self.state(StampState.UNUSED)

    @property
    def unused(self) -> int:
        """Serials reserved and never printed (the run ended first): kept, never published, never reused."""
        return self.state(StampState.UNUSED)


# -- outbox, audit, delivery problems -----------------------------------------------------------------------------

@dataclass(frozen=True)
class OutboxItem:
    id: int
    event_id: str
    kind: str
    event_json: str          # exactly as written with the activation: resent byte for byte
    attempts: int
    state: DeliveryState

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.event_json)


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    detail: str = ""


@dataclass(frozen=True)
class DeliveryProblemRecord:
    """A delivery problem as the relay recorded it (times naive UTC; cleared_at None while it lasts)."""

    code: str
    detail: str
    started_at: dt.datetime
    last_seen_at: dt.datetime
    cleared_at: dt.datetime | None = None


# -- pre-printed rolls and refusals -------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewRollCode:
    seq: int
    code: str
    gtin: str | None = None       # a Digital Link code's GTIN-14 and serial
    serial: str | None = None
    line: int = 0                 # line of the manifest it came from (for messages)


@dataclass(frozen=True)
class NewRoll:
    roll_id: str
    gtin: str
    kind: str                     # list | sequence
    codes: Sequence[NewRollCode]
    pattern: str | None = None
    first: int | None = None
    last: int | None = None
    issuer: str = ""
    manifest: str = ""
    manifest_sha256: str = ""


@dataclass(frozen=True)
class RollInfo:
    pk: int
    roll_id: str
    gtin: str
    kind: str
    pattern: str | None
    first: int | None
    last: int | None
    code_count: int
    issuer: str
    manifest: str
    manifest_sha256: str
    registered_at: dt.datetime
    state: RollState
    state_reason: str


@dataclass(frozen=True)
class RollCode:
    id: int
    roll_pk: int
    roll_id: str
    roll_gtin: str
    roll_state: RollState
    roll_state_reason: str
    seq: int
    code: str
    gtin: str | None
    serial: str | None
    state: CodeState
    batch_id: int | None
    stamp_id: int | None
    activated_at: dt.datetime | None
    void_reason: str | None
    void_detail: str
    voided_at: dt.datetime | None


@dataclass(frozen=True)
class Refusal:
    """A read refused before activation, as recorded in the ``refusals`` table."""

    reason: RefusalReason
    code: str | None
    raw: bytes = b""
    detail: str = ""
    source: str = ""
    batch_id: int | None = None
    roll_pk: int | None = None
    at: dt.datetime = field(default_factory=utcnow)
    roll_id: str | None = None    # filled when read back


@dataclass(frozen=True)
class CodeActivation:
    """A pre-printed code to activate into a batch, with its EPCIS event and the read that saw it."""

    code_id: int                  # roll_codes.id
    code: str
    batch_id: int
    gtin: str                     # the stamp's GTIN (the batch's)
    serial: str                   # a Digital Link's serial, or the opaque code itself
    event: dict[str, Any]
    read_text: str = ""
    scan: ScanRecord | None = None
    raw: bytes = b""
    source: str = ""
    roll_pk: int | None = None

    def refusal(self, reason: RefusalReason, detail: str) -> Refusal:
        return Refusal(reason=reason, code=self.code, raw=self.raw, detail=detail, source=self.source,
                       batch_id=self.batch_id, roll_pk=self.roll_pk)


@dataclass(frozen=True)
class CommitOutcome:
    activation: CodeActivation
    stamp: Stamp | None           # the activated stamp, or None when refused at commit
    refusal: Refusal | None
