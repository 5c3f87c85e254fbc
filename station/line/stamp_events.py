"""What the lines write about a stamp: the printed label's fields, and the EPCIS events both lines put in the outbox
(a stamp activated or voided, a pre-printed code activated or voided, a batch locked or unlocked), each validated
against the EPCIS schema before it is written (jsonschema-rs: microseconds)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from station import epcis
from station.domain import Batch, Product, Stamp, VoidReason
from station.gs1 import epc_uri, normalize_gtin, validate_lot
from station.line.events import StationIdentity

if TYPE_CHECKING:
    from station.store.records import RollCode


def label_fields(product: Product, batch: Batch, stamp: Stamp) -> dict[str, str | None]:
    """What the label template shows for one stamp (None leaves the template's line out)."""

    def day(d: dt.date | None) -> str | None:
        return d.strftime("%d/%m/%Y") if d else None

    return {
        "qr": stamp.uri,
        "product_name": product.name,
        "producer": product.producer,
        "lot": batch.lot,
        "serial": stamp.serial,
        "gtin": product.gtin,
        "gtin12": product.gtin13[:12] if product.gtin13 else None,
        "production_date": day(batch.production_date),
        "expiry_date": day(batch.expiry_date),
    }


def _now(identity: StationIdentity) -> dt.datetime:
    return dt.datetime.now(identity.tzinfo)


def _checked(event: dict[str, Any], identity: StationIdentity) -> dict[str, Any]:
    epcis.validate(epcis.document([event], created_at=_now(identity)))
    return event


def _station(identity: StationIdentity) -> dict[str, Any]:
    return {f"{epcis.EXT_PREFIX}:site": identity.site, f"{epcis.EXT_PREFIX}:station": identity.station}


# -- printed stamps ------------------------------------------------------------------------------------------------

def stamp_activation_event(stamp: Stamp, batch: Batch, identity: StationIdentity, *, source: str,
                           grade: str | None = None) -> dict[str, Any]:
    """ObjectEvent ADD / commissioning / active for a printed stamp matched by a read (``grade``: the indicative
    print-quality grade of a camera read)."""
    verification: dict[str, Any] = {"result": "matched", "source": source}
    if grade:
        verification["indicativeGrade"] = grade
    return _checked(epcis.activation_event(
        gtin=stamp.gtin, serial=stamp.serial, lot=batch.lot, expiry=batch.expiry_date,
        event_time=_now(identity), tz_offset=identity.tz_offset, read_point=identity.read_point,
        extensions={**_station(identity), f"{epcis.EXT_PREFIX}:batchId": stamp.batch_id,
                    f"{epcis.EXT_PREFIX}:verification": verification},
    ), identity)


def stamp_void_event(stamp: Stamp, reason: VoidReason, detail: str, identity: StationIdentity) -> dict[str, Any]:
    """ObjectEvent DELETE / decommissioning / inactive for a printed stamp voided with its reason."""
    return _checked(epcis.void_event(
        gtin=stamp.gtin, serial=stamp.serial, reason=reason.value, event_time=_now(identity),
        tz_offset=identity.tz_offset, read_point=identity.read_point,
        extensions={**_station(identity), f"{epcis.EXT_PREFIX}:batchId": stamp.batch_id,
                    f"{epcis.EXT_PREFIX}:voidDetail": detail[:300]},
    ), identity)


# -- pre-printed codes ---------------------------------------------------------------------------------------------

def code_epc(code: RollCode, identity: StationIdentity, opaque_epc: str) -> str:
    """The EPC of a roll code: the constrained Digital Link for a Digital Link code, else ``opaque_epc`` with the
    code percent-encoded (default ``https://{resolver}/tem/{code}``)."""
    if code.gtin and code.serial:
        return epc_uri(code.gtin, code.serial)
    return opaque_epc.format(resolver=identity.resolver, code=quote(code.code, safe=""))


def _with_epc(event: dict[str, Any], code: RollCode, identity: StationIdentity, opaque_epc: str,
              batch_gtin: str) -> dict[str, Any]:
    if not (code.gtin and code.serial):
        # An opaque code carries no GTIN: the EPC is the code under the programme's namespace, and the product
        # goes with it as an extension.
        event["epcList"] = [code_epc(code, identity, opaque_epc)]
        event[f"{epcis.EXT_PREFIX}:gtin"] = batch_gtin
    return event


def _code_extensions(identity: StationIdentity, code: RollCode, batch_id: int | None) -> dict[str, Any]:
    ext: dict[str, Any] = {
        **_station(identity),
        f"{epcis.EXT_PREFIX}:roll": code.roll_id,
        f"{epcis.EXT_PREFIX}:stampCode": code.code,
    }
    if batch_id is not None:
        ext[f"{epcis.EXT_PREFIX}:batchId"] = batch_id
    return ext


def code_activation_event(code: RollCode, batch: Batch, identity: StationIdentity, opaque_epc: str, *,
                          source: str = "verifier") -> dict[str, Any]:
    """ObjectEvent ADD / commissioning / active, like a printed stamp's, validated."""
    event = epcis.activation_event(
        gtin=code.gtin or batch.gtin, serial=code.serial or "0", lot=batch.lot, expiry=batch.expiry_date,
        event_time=_now(identity), tz_offset=identity.tz_offset, read_point=identity.read_point,
        extensions={**_code_extensions(identity, code, batch.id),
                    f"{epcis.EXT_PREFIX}:verification": {"result": "preprinted", "source": source}},
    )
    return _checked(_with_epc(event, code, identity, opaque_epc, batch.gtin), identity)


def code_void_event(code: RollCode, reason: str, detail: str, identity: StationIdentity,
                    opaque_epc: str) -> dict[str, Any]:
    """ObjectEvent DELETE / decommissioning / inactive for a code voided unused (damaged stamp, voided roll)."""
    event = epcis.void_event(
        gtin=code.gtin or code.roll_gtin, serial=code.serial or "0", reason=reason, event_time=_now(identity),
        tz_offset=identity.tz_offset, read_point=identity.read_point,
        extensions={**_code_extensions(identity, code, None), f"{epcis.EXT_PREFIX}:voidDetail": detail[:300]},
    )
    return _checked(_with_epc(event, code, identity, opaque_epc, code.roll_gtin), identity)


# -- batch locks ---------------------------------------------------------------------------------------------------

class HoldKind(str, enum.Enum):
    HOLD = "hold"        # a quality hold: disposition non_sellable_other
    RECALL = "recall"    # a recall: disposition recalled


def batch_hold_event(batch: Batch, reason: str, identity: StationIdentity, *, locked: bool,
                     kind: HoldKind = HoldKind.HOLD) -> dict[str, Any]:
    """The batch lock (or unlock) as an EPCIS ObjectEvent OBSERVE on the batch's class (LGTIN in quantityList).

    Lock: bizStep ``holding``, disposition ``non_sellable_other`` (a quality hold) or ``recalled`` (a recall).
    Unlock: bizStep ``inspecting``, disposition ``active``. Reason and lock state in ``stn:batchLock``.
    """
    gtin = normalize_gtin(batch.gtin)
    lot = validate_lot(batch.lot)
    event = {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": epcis.format_time(_now(identity), identity.tz_offset),
        "eventTimeZoneOffset": identity.tz_offset,
        "epcList": [],
        "quantityList": [{"epcClass": f"https://id.gs1.org/01/{gtin}/10/{quote(lot, safe='')}"}],
        "action": "OBSERVE",
        "bizStep": "holding" if locked else "inspecting",
        "disposition": ("recalled" if kind is HoldKind.RECALL else "non_sellable_other") if locked else "active",
        "readPoint": {"id": identity.read_point},
        **_station(identity),
        f"{epcis.EXT_PREFIX}:batchId": batch.id,
        f"{epcis.EXT_PREFIX}:batchLock": {"locked": locked, "kind": kind.value, "reason": reason[:500]},
    }
    return _checked(event, identity)
