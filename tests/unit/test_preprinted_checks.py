"""The checks both lines share (product barcode against the batch's GTIN) and the EPCIS events of pre-printed codes
and batch locks, each validated against the EPCIS 2.0 schema and the CBV."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from station import epcis
from station.domain import Batch, CodeState, RefusalReason, RollState
from station.errors import InvalidIdentifier
from station.line.events import StationIdentity
from station.line.stamp_events import HoldKind, batch_hold_event, code_activation_event, code_void_event
from station.ports import VerificationRead
from station.product_check import ProductGuard, parse_product_barcode
from station.store import RollCode

MX, NM = "08938603001013", "08938603002027"
IDENT = StationIdentity("hue-01", "line-1", "truyxuat.hue.example.vn",
                        "https://truyxuat.hue.example.vn/station/hue-01/line-1")
BATCH = Batch(id=7, gtin=MX, lot="MX2612A", expiry_date=dt.date(2027, 6, 1))


def read(text: str | None, refused: str | None = None) -> VerificationRead:
    return VerificationRead(text=text, raw=(text or "").encode(), at=time.monotonic(), refused=refused,
                            source="product")


def roll_code(code: str, gtin: str | None = None, serial: str | None = None) -> RollCode:
    return RollCode(id=1, roll_pk=1, roll_id="R1", roll_gtin=MX, roll_state=RollState.ACTIVE, roll_state_reason="",
                    seq=1, code=code, gtin=gtin, serial=serial, state=CodeState.UNUSED, batch_id=None,
                    stamp_id=None, activated_at=None, void_reason=None, void_detail="", voided_at=None)


@pytest.mark.parametrize("text", [MX[1:], MX, "]E0" + MX[1:], "01" + MX + "10LOT", f"https://a.example/01/{MX}"
                                  "/21/X"])
def test_product_barcodes_in_every_usual_form_give_the_gtin(text: str) -> None:
    assert parse_product_barcode(text) == MX


def test_a_product_barcode_with_a_bad_check_digit_is_not_a_gtin() -> None:
    with pytest.raises(InvalidIdentifier, match="check digit"):
        parse_product_barcode("8938603001014")


def test_the_product_guard_passes_the_batch_product_and_stops_on_another() -> None:
    guard = ProductGuard(BATCH)
    assert guard.check(read(MX[1:])).ok
    verdict = guard.check(read(NM[1:]))
    assert not verdict.ok and verdict.stops_line and verdict.gtin == NM
    assert verdict.alarm is not None and verdict.alarm.code == "product_mismatch"
    assert verdict.alarm.text.vi.startswith("Mã vạch sản phẩm không đúng")
    assert verdict.refusal is not None and verdict.refusal.reason is RefusalReason.PRODUCT_MISMATCH
    assert verdict.refusal.batch_id == 7 and verdict.refusal.code == NM[1:]
    garbled = guard.check(read("89386030"))
    assert not garbled.ok and not garbled.stops_line and garbled.alarm.code == "product_barcode_unreadable"  # type: ignore[union-attr]
    assert guard.check(read(None, refused="not_text")).alarm.code == "product_barcode_unreadable"  # type: ignore[union-attr]


def test_events_of_pre_printed_codes_validate_and_carry_the_right_epc() -> None:
    opaque = code_activation_event(roll_code("HUE0000001"), BATCH, IDENT, "https://{resolver}/tem/{code}")
    assert opaque["epcList"] == ["https://truyxuat.hue.example.vn/tem/HUE0000001"]
    assert opaque["stn:gtin"] == MX and opaque["ilmd"]["cbvmda:lotNumber"] == "MX2612A"
    assert (opaque["action"], opaque["bizStep"], opaque["disposition"]) == ("ADD", "commissioning", "active")
    urn = code_activation_event(roll_code("HUE/1 2"), BATCH, IDENT, "urn:example:tem:{code}")
    assert urn["epcList"] == ["urn:example:tem:HUE%2F1%202"]
    link = code_activation_event(roll_code(f"https://x.example/01/{MX}/21/AB", MX, "AB"), BATCH, IDENT, "x{code}")
    assert link["epcList"] == [f"https://id.gs1.org/01/{MX}/21/AB"] and "stn:gtin" not in link
    void = code_void_event(roll_code("HUE0000002"), "roll_voided", "roll lost in transit", IDENT,
                           "https://{resolver}/tem/{code}")
    assert (void["action"], void["stn:voidReason"]) == ("DELETE", "roll_voided")
    epcis.validate(epcis.document([opaque, urn, link, void], dt.datetime.now(dt.timezone.utc)))


def test_batch_lock_and_unlock_events_use_cbv_vocabulary() -> None:
    hold = batch_hold_event(BATCH, "seal test failed", IDENT, locked=True)
    recall = batch_hold_event(BATCH, "recall 12/2026", IDENT, locked=True, kind=HoldKind.RECALL)
    release = batch_hold_event(BATCH, "re-tested", IDENT, locked=False)
    assert hold["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{MX}/10/MX2612A"}]
    assert [(e["bizStep"], e["disposition"]) for e in (hold, recall, release)] == [
        ("holding", "non_sellable_other"), ("holding", "recalled"), ("inspecting", "active")]
    assert hold["stn:batchLock"] == {"locked": True, "kind": "hold", "reason": "seal test failed"}
    epcis.validate(epcis.document([hold, recall, release], dt.datetime.now(dt.timezone.utc)))
