"""What the lines and the relay need from devices and from the store, as protocols: the composition root plugs
drivers and the store (``station.store.Store``, or one repository) in."""

from __future__ import annotations

import datetime as dt
import enum
import queue
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the store's records, for annotations only: a protocol needs no database
    from station.domain import Batch, DeliveryState, Product, Stamp
    from station.store.records import (
        Activation,
        CodeActivation,
        CommitOutcome,
        Counts,
        DeliveryProblemRecord,
        OutboxItem,
        Refusal,
        RollCode,
        ScanRecord,
        Voiding,
    )


class PrinterCondition(str, enum.Enum):
    READY = "ready"
    FAULTED = "faulted"            # answered, and reports a fault (paper out, head open, paused…)
    UNREACHABLE = "unreachable"    # no answer at all, or the connection failed
    UNKNOWN = "unknown"            # the transport cannot read status back (cups://), or no poll yet


@dataclass(frozen=True)
class PrinterHealth:
    condition: PrinterCondition
    faults: tuple[str, ...] = ()   # PrinterFault values: paper_out, head_open, ribbon_out, paused, …
    detail: str = ""
    unprinted: int | None = None   # formats the printer held unprinted at its last ~HS reply; None: never said
    at: float = 0.0                # time.monotonic() of that reply
    checked_at: float = 0.0        # time.monotonic() when this condition was learnt (the poll's answer, or its
                                   # failure); 0: never asked. Newer than a stamp's deadline: it says that moment

    @property
    def can_print(self) -> bool:
        return self.condition in (PrinterCondition.READY, PrinterCondition.UNKNOWN)


class PrinterPortError(Exception):
    """Sending a label failed: the engine treats it as a printer fault."""


class LabelPrinter(Protocol):
    def print_label(self, fields: Mapping[str, str | None]) -> None:
        """Render the configured template with these fields and send it; raise PrinterPortError on failure."""

    def health(self) -> PrinterHealth:
        """The latest known condition (from a background poll: cheap to call every loop)."""

    def cancel_queued(self) -> None:
        """Drop every label still in the printer's buffer (~JA), so voided stamps never come out later."""

    def request_status(self) -> None:
        """Ask for a fresh status now (must not block): health() has it, with a newer checked_at, once it is in."""


@dataclass(frozen=True)
class VerificationRead:
    """One read from the verification device (scanner line or camera decode): text, or a refusal and its reason."""

    text: str | None
    raw: bytes
    at: float                      # time.monotonic() when the read was complete
    refused: str | None = None     # too_long, not_text, empty…
    source: str = "verifier"
    figures: Mapping[str, float] | None = None   # print-quality figures of a camera read (contrast, module px…)
    one_per_item: bool = True      # a scanner reads each item once, in line order; a camera reads whatever is in
                                   # view, so a read that matches nothing is not taken for the next item's
    item: int | None = None        # the item (photo-eye seq) the read was taken for, when the verifier knows it


@dataclass(frozen=True)
class ItemTrigger:
    """The photo-eye saw an item arrive at the printer: it gets the next stamp."""

    seq: int
    at: float                      # time.monotonic()


class RejectGate(Protocol):
    def reject(self, seq: int | None = None) -> bool | None:
        """Pulse the reject gate for item ``seq`` (must not block the caller for the pulse); False when the gate
        could not fire (the item has to be taken off by hand)."""


# The central server's word on a pre-printed code, asked by the pre-printed line before it activates one.

class ServerVerdict(str, enum.Enum):
    UNKNOWN = "unknown"                      # no answer (offline, timeout): the local checks decide
    FREE = "free"                            # the server knows the code and it is not active anywhere
    ACTIVATED_ELSEWHERE = "activated_elsewhere"


@dataclass(frozen=True)
class ServerAnswer:
    verdict: ServerVerdict
    detail: str = ""                         # e.g. "active at hue-02/line-1 since 2026-11-30"


class ServerCheck(Protocol):
    """Asks the central server whether a code is already active elsewhere (another station, another site).

    Called on the line's thread for each code that passed every local check, just before activation, so it must
    answer fast (a local cache fed by the server, or a request with a short timeout). An exception or UNKNOWN lets
    the local checks decide: the database still refuses a second activation here, and the server drops a
    duplicate commissioning it already holds. Returning ACTIVATED_ELSEWHERE refuses the stamp with that reason.
    """

    def check(self, code: str, gtin: str | None, serial: str | None) -> ServerAnswer: ...


# Records the relay consumes from its publisher. The composition root translates the MQTT driver's own records.

@dataclass(frozen=True)
class Connected:
    session_present: bool = False


@dataclass(frozen=True)
class Disconnected:
    reason: str = ""


@dataclass(frozen=True)
class ConnectFailed:
    """A connection attempt failed; refused: the broker answered and said no, with this MQTT 5 reason code."""

    reason: str = ""
    code: int | None = None
    refused: bool = False


@dataclass(frozen=True)
class PublishAcked:
    mid: int
    ok: bool
    reason: str = ""
    code: int | None = None       # the PUBACK's MQTT 5 reason code (0x87: not authorised, the broker's ACL)


@dataclass(frozen=True)
class MessageReceived:
    topic: str
    payload: bytes
    properties: Mapping[str, object] = field(default_factory=dict)


PublisherRecord = Connected | ConnectFailed | Disconnected | PublishAcked | MessageReceived


class PublisherError(Exception):
    """The publisher refused a message (not connected, queue full): the relay retries later."""


class Publisher(Protocol):
    @property
    def connected(self) -> bool: ...

    @property
    def records(self) -> queue.Queue[PublisherRecord]:
        """Connection changes, PUBACKs and incoming messages, in order; drained by the relay's thread."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Hand a message to the client; returns its message id; PublisherError when refused."""

    def subscribe(self, topic: str, qos: int = 1) -> None: ...


# -- what the lines and the relay need from the store (station.store.Store has them all) --------------------------

class BatchReads(Protocol):
    """What both lines read of the catalogue and the stamps."""

    def batch(self, batch_id: int) -> Batch: ...

    def product(self, gtin: str) -> Product: ...

    def find_stamp(self, gtin: str, serial: str) -> Stamp | None: ...

    def counts(self, batch_id: int | None = None, since: dt.datetime | None = None) -> Counts: ...


class LineStore(BatchReads, Protocol):
    """What the printed line (``station.engine.LineEngine``) needs: serials reserved ahead, its group commits, the
    batch lock, the recovery of an interrupted run, and refusals."""

    def allocate_stamps_async(self, batch_id: int, count: int, make_serial: Callable[[], str],
                              make_uri: Callable[[str], str]) -> Future[list[Stamp]]: ...

    def release_unused(self, stamp_ids: Sequence[int], detail: str = ...) -> int: ...

    def commit_line_async(self, printed: Sequence[int] = (), activations: Sequence[Activation] = (),
                          voids: Sequence[Voiding] = (), scans: Sequence[ScanRecord] = ()) -> Future[None]: ...

    def interrupted_stamps(self, unrecorded_prints: int) -> tuple[list[Stamp], list[Stamp]]: ...

    def batch_lock_reason(self, batch_id: int) -> str | None: ...

    def record_refusals(self, refusals: Sequence[Refusal]) -> None: ...


class PreprintedStore(BatchReads, Protocol):
    """What the pre-printed line (``station.preprinted.PreprintedLine``) needs: roll codes and their commit."""

    def find_code(self, code: str) -> RollCode | None: ...

    def find_code_by_serial(self, gtin: str, serial: str) -> RollCode | None: ...

    def commit_preprinted(self, activations: Sequence[CodeActivation] = (),
                          refusals: Sequence[Refusal] = ()) -> list[CommitOutcome]: ...


class OutboxStore(Protocol):
    """What the relay (``station.relay.Relay``) needs: due rows, their delivery written in the background, the
    counts for its status, and the delivery problems it records."""

    def due_outbox(self, now: dt.datetime, limit: int, exclude_ids: Iterable[int] = ()) -> list[OutboxItem]: ...

    def reschedule_unconfirmed(self, at: dt.datetime) -> int: ...

    def record_delivery_async(self, sent: Sequence[int] = (), sent_at: dt.datetime | None = None,
                              retry_at: dt.datetime | None = None,
                              failed: Sequence[tuple[Sequence[int], str, dt.datetime]] = (),
                              confirmed: Sequence[str] = (), confirmed_at: dt.datetime | None = None,
                              sent_groups: Sequence[tuple[Sequence[int], dt.datetime]] = (),
                              ) -> Future[int]: ...

    def mark_publish_failed(self, ids: Sequence[int], error: str, retry_at: dt.datetime) -> None: ...

    def outbox_counts(self) -> dict[DeliveryState, int]: ...

    def all_confirmed(self) -> bool: ...

    def record_delivery_problem(self, code: str, detail: str, at: dt.datetime) -> None: ...

    def clear_delivery_problems(self, codes: Iterable[str], at: dt.datetime) -> int: ...

    def delivery_problems(self, *, open_only: bool = True, limit: int = 20) -> list[DeliveryProblemRecord]: ...
