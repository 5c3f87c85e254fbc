"""What the operator's screen draws, read from the station in one go every second on the bridge's worker (its db
lane): the batch's and the shift's counters, the recent stamps, device health and the product's pre-printed rolls.
No Qt here: the bridge hands the `Snapshot` to the screens."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from station.alarms import Alarm
from station.domain import CodeState, DeliveryState, RollState, Stamp, StampState
from station.engine import LineState, RunSummary
from station.shifts import shift_start
from station.store import Counts, Store

if TYPE_CHECKING:
    from app.runtime import Station


@dataclass(frozen=True)
class Counters:
    """The operator's counters for a batch or a shift."""

    printed: int = 0
    verified: int = 0
    activated: int = 0
    voided: dict[str, int] = field(default_factory=dict)
    waiting: int = 0          # events not yet confirmed by the central server (pending + sent)
    confirmed: int = 0
    unused: int = 0           # serials reserved and never printed (kept, not published)

    @property
    def voided_total(self) -> int:
        return sum(self.voided.values())

    @classmethod
    def from_counts(cls, counts: Counts) -> Counters:
        activated = counts.state(StampState.ACTIVATED)
        delivery = counts.delivery
        return cls(
            printed=counts.printed,
            verified=activated + counts.state(StampState.VERIFIED),
            activated=activated,
            voided=dict(counts.voided_by_reason),
            waiting=delivery.get(DeliveryState.PENDING, 0) + delivery.get(DeliveryState.SENT, 0),
            confirmed=delivery.get(DeliveryState.CONFIRMED, 0),
            unused=counts.unused,
        )


@dataclass(frozen=True)
class RecentStamp:
    serial: str
    uri: str
    state: StampState
    void_reason: str | None
    void_detail: str
    delivery: DeliveryState | None


@dataclass(frozen=True)
class DeviceHealth:
    printer_condition: str = "unknown"           # ready | faulted | unreachable | unknown (station.ports)
    printer_detail: str = ""
    printer_faults: tuple[str, ...] = ()
    scanner_connected: bool = False
    scanner_error: str = ""
    broker_connected: bool = False
    broker_error: str = ""
    broker_problem: str = ""                     # the alarm code of a broker refusing delivery (station.relay)
    broker_problem_detail: str = ""
    unconfirmed: int = 0
    oldest_unconfirmed_s: float | None = None    # age of the oldest event the central server has not confirmed
    ack_timeout_s: float = 30.0

    @property
    def acks_ok(self) -> bool:
        """The central server is confirming: nothing waits longer than the ack timeout."""
        return self.oldest_unconfirmed_s is None or self.oldest_unconfirmed_s <= self.ack_timeout_s


@dataclass(frozen=True)
class RollSummary:
    """One registered roll of pre-printed stamps and where its codes stand (as `station rolls list` shows it)."""

    roll_id: str
    state: RollState
    state_reason: str
    code_count: int
    activated: int
    unused: int
    voided: int
    refused: int         # reads of this roll's codes refused before activation


def read_rolls(store: Store, gtin: str) -> tuple[RollSummary, ...]:
    """The rolls registered for a product with their counts (on the worker's db lane)."""
    summaries = []
    for roll in store.rolls(gtin=gtin):
        counts = store.roll_counts(roll.pk)
        summaries.append(RollSummary(
            roll_id=roll.roll_id, state=roll.state, state_reason=roll.state_reason, code_count=roll.code_count,
            activated=counts[CodeState.ACTIVATED], unused=counts[CodeState.UNUSED], voided=counts[CodeState.VOIDED],
            refused=store.refusal_count(roll_pk=roll.pk)))
    return tuple(summaries)


@dataclass(frozen=True)
class Snapshot:
    at: float
    state: LineState
    batch_id: int | None
    batch: Counters | None
    shift: Counters
    shift_start: dt.datetime
    recent: list[RecentStamp]
    devices: DeviceHealth
    alarms: list[Alarm]
    run: RunSummary
    rolls: tuple[RollSummary, ...] = ()     # the selected product's pre-printed rolls (none: no rolls panel)


def read_snapshot(station: Station, batch_id: int | None, now: float | None = None,
                  gtin: str | None = None) -> Snapshot:
    """Everything the operator screen shows, read in one go (on the worker's db lane)."""
    store = station.store
    tz = station.identity.tzinfo
    local_now = dt.datetime.now(tz)
    start_local = shift_start(local_now, station.config.ui.shift_start_times)
    start_utc = start_local.astimezone(dt.timezone.utc).replace(tzinfo=None)
    batch = Counters.from_counts(store.counts(batch_id=batch_id)) if batch_id is not None else None
    shift = Counters.from_counts(store.counts(since=start_utc))
    # The decided stamps only: the newest rows of a running batch are serials reserved ahead (a block at a time),
    # which would fill a plain "newest 30" and leave the list empty while the line runs.
    stamps: list[Stamp] = sorted(
        (s for state in (StampState.ACTIVATED, StampState.VOIDED)
         for s in store.stamps(batch_id=batch_id, state=state, limit=30, printed_only=True)),
        key=lambda s: s.id or 0, reverse=True)[:30] if batch_id is not None else []
    delivery = store.delivery_states([s.id for s in stamps if s.id is not None])
    recent = [
        RecentStamp(s.serial, s.uri, s.state, s.void_reason.value if s.void_reason else None, s.void_detail,
                    delivery.get(s.id) if s.id is not None else None)
        for s in stamps if s.state in (StampState.ACTIVATED, StampState.VOIDED)
    ]
    outbox = store.outbox_counts()
    unconfirmed = outbox.get(DeliveryState.PENDING, 0) + outbox.get(DeliveryState.SENT, 0)
    oldest = store.oldest_unconfirmed()
    oldest_age = ((dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - oldest).total_seconds()
                  if oldest is not None else None)
    printer = station.printer.health()
    verifier = station.verifier
    stats = station.relay.stats
    # A refused login first: while it lasts nothing is published, so no ACL can be the cause.
    problems = sorted(station.relay.problems, key=lambda p: p.topic != "")
    problem = problems[0] if problems else None
    devices = DeviceHealth(
        printer_condition=printer.condition.value, printer_detail=printer.detail, printer_faults=printer.faults,
        scanner_connected=verifier.connected, scanner_error=verifier.last_error,
        broker_connected=station.mqtt.connected, broker_error=stats.last_error,
        broker_problem=problem.code if problem else "", broker_problem_detail=problem.detail if problem else "",
        unconfirmed=unconfirmed, oldest_unconfirmed_s=oldest_age, ack_timeout_s=station.config.mqtt.ack_timeout_s,
    )
    return Snapshot(
        at=now if now is not None else time.time(), state=station.line.state, batch_id=batch_id, batch=batch,
        shift=shift, shift_start=start_local, recent=recent, devices=devices, alarms=station.line.alarms,
        run=station.line.summary, rolls=read_rolls(store, gtin) if gtin else (),
    )


__all__ = ["Counters", "RecentStamp", "DeviceHealth", "RollSummary", "Snapshot", "read_rolls", "read_snapshot"]
