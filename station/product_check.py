"""Product identity, on both lines: the product's own barcode must carry the batch's GTIN."""

from __future__ import annotations

from dataclasses import dataclass

from station.alarms import Alarm, Severity
from station.domain import Batch, RefusalReason
from station.errors import InvalidIdentifier
from station.gs1 import normalize_gtin, parse_digital_link
from station.ports import VerificationRead
from station.rolls import looks_like_link
from station.store import Refusal


def parse_product_barcode(text: str) -> str:
    """The GTIN-14 a product barcode carries: EAN-13/UPC-A/EAN-8/GTIN-14 digits, with or without an AIM symbology
    identifier (``]E0``), a GS1 element string starting with AI 01, or a Digital Link. InvalidIdentifier if none."""
    value = text.strip()
    if value.startswith("]") and len(value) > 3:
        value = value[3:]
    if looks_like_link(value):
        return parse_digital_link(value).gtin
    if value.startswith("01") and len(value) >= 16 and value[2:16].isdigit() and len(value) > 14:
        return normalize_gtin(value[2:16])
    return normalize_gtin(value)


@dataclass(frozen=True)
class ProductVerdict:
    ok: bool
    gtin: str | None                  # what the barcode said (None when unreadable)
    alarm: Alarm | None = None        # product_mismatch (stop) or product_barcode_unreadable (warning)
    refusal: Refusal | None = None    # to record (Store.record_refusals) on a mismatch

    @property
    def stops_line(self) -> bool:
        return self.alarm is not None and self.alarm.severity is Severity.STOP


class ProductGuard:
    """Compares the product's own barcode with the batch's GTIN: a mismatch is the classic mix-up of two products
    on one line, and stops it. Pure: no thread, no I/O; the line calls ``check`` for each product barcode read."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def check(self, read: VerificationRead) -> ProductVerdict:
        if read.refused is not None or not read.text:
            return ProductVerdict(False, None, Alarm.raise_("product_barcode_unreadable",
                                                            read.refused or "empty read"))
        try:
            gtin = parse_product_barcode(read.text)
        except InvalidIdentifier as exc:
            return ProductVerdict(False, None, Alarm.raise_("product_barcode_unreadable", str(exc)[:200]))
        if gtin == self.batch.gtin:
            return ProductVerdict(True, gtin)
        detail = f"product barcode {read.text.strip()[:40]!r} is GTIN {gtin}, the batch {self.batch.lot} is {self.batch.gtin}"
        refusal = Refusal(reason=RefusalReason.PRODUCT_MISMATCH, code=read.text.strip()[:300], raw=read.raw,
                          detail=detail, source=read.source, batch_id=self.batch.id)
        return ProductVerdict(False, gtin, Alarm.raise_("product_mismatch", detail), refusal)


