"""Products, batches and stamps: the nouns of the line and the rules that bind them."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from station.errors import InvalidTransition


class StampState(str, enum.Enum):
    """Life of one traceability stamp. A voided or unused stamp is never reused."""

    ALLOCATED = "allocated"          # serial reserved in the database, nothing sent yet
    SENT_TO_PRINTER = "sent_to_printer"
    VERIFIED = "verified"            # read back downstream and matched what was sent
    ACTIVATED = "activated"          # linked stamp -> item -> batch, outbox row written
    VOIDED = "voided"
    # Reserved and never printed (the run ended first): kept here, never published (it was never commissioned, so
    # there is nothing to decommission) and never reused.
    UNUSED = "unused"


class TriggerMode(str, enum.Enum):
    """What makes the printed line print (line.trigger in the configuration, LineSettings.trigger in the engine)."""

    FREE_RUN = "free_run"      # no photo-eye: print whenever fewer than print_ahead stamps are in flight
    PHOTO_EYE = "photo_eye"    # one stamp for each item the photo-eye (devices.line_io) reports


class VoidReason(str, enum.Enum):
    """Why a stamp was voided. Values are stable: they are stored and published."""

    NO_READ = "no_read"                  # no verification read within the window
    WRONG_CONTENT = "wrong_content"      # a read that does not match what was printed
    UNREADABLE = "unreadable"            # the scanner sent a line it could not use (garbage, too long)
    PRINTER_FAULT = "printer_fault"      # printer faulted with the stamp in its buffer
    LINE_STOPPED = "line_stopped"        # the line stopped with the stamp still in flight
    BATCH_LOCKED = "batch_locked"        # the batch was locked (recall, quality hold) with the stamp in flight
    OPERATOR = "operator"                # voided by hand


ALLOWED_TRANSITIONS: dict[StampState, frozenset[StampState]] = {
    StampState.ALLOCATED: frozenset({StampState.SENT_TO_PRINTER, StampState.VOIDED, StampState.UNUSED}),
    # ACTIVATED straight from SENT_TO_PRINTER: the line verifies and activates a stamp in one commit (the read that
    # matched it is its verification, kept as verified_at), so the line never stores a stamp as VERIFIED.
    StampState.SENT_TO_PRINTER: frozenset({StampState.VERIFIED, StampState.ACTIVATED, StampState.VOIDED}),
    StampState.VERIFIED: frozenset({StampState.ACTIVATED, StampState.VOIDED}),
    StampState.ACTIVATED: frozenset(),
    StampState.VOIDED: frozenset(),
    StampState.UNUSED: frozenset(),
}

FINAL_STATES = frozenset({StampState.ACTIVATED, StampState.VOIDED, StampState.UNUSED})


def check_transition(current: StampState, target: StampState) -> None:
    """Raise InvalidTransition unless a stamp may move from ``current`` to ``target``."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a stamp in state {current.value!r} cannot become {target.value!r}")


class DeliveryState(str, enum.Enum):
    """Delivery of one outbox row (one EPCIS event) to the central server."""

    PENDING = "pending"        # written, not yet acknowledged by the broker
    SENT = "sent"              # broker's PUBACK with a success reason code
    CONFIRMED = "confirmed"    # the central server acked that it stored the event
    # The central server refused the event (an invalid document, quarantined there) with its reason in the row's
    # last_error: kept, shown (station status, the delivery alarm), never resent (it would be refused again).
    REJECTED = "rejected"


@dataclass(frozen=True)
class DiaryStep:
    """One stage of a product's production diary template (nhật ký sản xuất): what happens, where, and how many
    days before the batch's production date (at `time`, the station's local time). Each new batch publishes the
    template's stages as its diary (contracts.masterdata)."""

    stage: str                      # raw_material, harvest, processing, packing, … (the page names these four)
    place: str = ""
    detail: str = ""
    days_before: int = 0
    time: dt.time = dt.time(8, 0)
    biz_step: str | None = None     # the CBV business step; None: the stage's default (contracts.masterdata)


@dataclass(frozen=True)
class Product:
    gtin: str                       # GTIN-14, check digit verified
    name: str                       # Vietnamese name as printed on the label
    producer: str                   # the producer's name
    region: str = ""
    shelf_life_days: int | None = None
    # What the trace page shows (Circular 02/2024/TT-BKHCN), published when a batch opens; all optional.
    producer_id: str = ""           # empty: derived from the producer's name (station.masterdata)
    producer_address: str = ""
    producer_phone: str = ""
    image_url: str = ""
    standards: str = ""             # applied standards, e.g. "TCVN 4067:1985"
    diary: tuple[DiaryStep, ...] = ()

    @property
    def gtin13(self) -> str | None:
        """The EAN-13 form when the GTIN-14 starts with 0 (what an EAN-13 symbol can carry)."""
        return self.gtin[1:] if self.gtin.startswith("0") else None


@dataclass(frozen=True)
class Stage:
    """One entry of a batch's production diary (nhật ký sản xuất)."""

    name: str
    date: dt.date | None = None
    place: str = ""
    note: str = ""


@dataclass(frozen=True)
class Batch:
    id: int | None
    gtin: str
    lot: str                                 # GS1 AI 10: character set 82, at most 20
    production_date: dt.date | None = None
    expiry_date: dt.date | None = None
    origin: str = ""
    stages: tuple[Stage, ...] = field(default_factory=tuple)
    planned_quantity: int | None = None
    closed: bool = False
    locked: bool = False                     # a recall or a quality hold: nothing more is activated into it
    lock_reason: str = ""


@dataclass(frozen=True)
class Stamp:
    id: int | None
    gtin: str
    serial: str
    batch_id: int
    state: StampState
    uri: str                                 # the Digital Link printed in the QR
    void_reason: VoidReason | None = None
    void_detail: str = ""


# -- pre-printed stamp rolls (issue 5) ---------------------------------------------------------------------------

class RollState(str, enum.Enum):
    """A registered roll of pre-printed stamps. Values are stored."""

    ACTIVE = "active"          # its codes may be activated
    LOCKED = "locked"          # held for a while (a roll found open, a count to check): refused until unlocked
    VOIDED = "voided"          # never again (lost, stolen, damaged): its unused codes are voided with it


class CodeState(str, enum.Enum):
    """One code of a registered roll. Values are stored."""

    UNUSED = "unused"
    ACTIVATED = "activated"
    VOIDED = "voided"


class RefusalReason(str, enum.Enum):
    """Why a read stamp (or a product barcode) was refused before activation. Values are stored and published."""

    NOT_IN_ROLL = "not_in_roll"                  # not a code of any registered roll (foreign, counterfeit)
    ALREADY_ACTIVATED = "already_activated"      # activated before, here (a duplicate or a second read)
    ACTIVATED_ELSEWHERE = "activated_elsewhere"  # the central server says it is active elsewhere
    WRONG_PRODUCT = "wrong_product"              # a roll (or a Digital Link GTIN) meant for another product
    ROLL_VOIDED = "roll_voided"
    ROLL_LOCKED = "roll_locked"
    CODE_VOIDED = "code_voided"                  # that one code was voided (damaged stamp, roll voided)
    BATCH_CLOSED = "batch_closed"
    BATCH_LOCKED = "batch_locked"                # a recall or a quality hold
    UNREADABLE = "unreadable"                    # the scanner sent a line it could not use
    LINE_NOT_RUNNING = "line_not_running"        # read while the line was paused or stopped on an alarm
    PRODUCT_MISMATCH = "product_mismatch"        # the product's own barcode is not the batch's GTIN
