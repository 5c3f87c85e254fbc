"""Master data in EPCIS events: what the trace page needs, sent by the station when a batch starts.

Everything travels as events with eventIDs, so the station's outbox delivers, resends and confirms it like an
activation (its relay splices events into documents; it carries no document header):

- **batch opened**: an ObjectEvent `ADD`, `bizStep: creating_class_instance`, `quantityList: [{"epcClass":
  "https://id.gs1.org/01/{GTIN}/10/{lot}"}]`, and in `ilmd` the lot's master data — `cbvmda:lotNumber`,
  `cbvmda:itemExpirationDate` (YYYY-MM-DD), `stn:productionDate`, `stn:batchId`, `stn:standards` — and the
  product's and producer's: `stn:product` `{"name", "imageUrl", "shelfLifeDays", "standards"}` and
  `stn:producer` `{"id", "name", "address", "phone"}`.
- **a diary stage**: an ObjectEvent `OBSERVE` on the same `quantityList`, the CBV bizStep where CBV has one
  (receiving, commissioning, packing, …) or `https://ns.packing-station.example/epcis/bizstep/{stage}` where it
  has none (harvest), `stn:stage` (raw_material, harvest, processing, packing, …), `stn:position` (its place in
  the diary, from 0), `stn:place` (text), `stn:detail`, and `eventTime` when it happened.
- **batch status**: an ObjectEvent `OBSERVE` on the lot with `disposition: recalled` (recalled),
  `non_sellable_other` (on hold) or `sellable_accessible` (released again), `stn:reason`; the latest by event
  time wins. The station's batch lock event is one too: `stn:batchLock {"locked", "kind", "reason"}`, locked with
  `recalled` or `non_sellable_other`, unlocked (disposition `active`) a release.

The standard EPCIS header (`epcisHeader.epcisMasterData`, `EPCClass` for `https://id.gs1.org/01/{GTIN}` with
`urn:epcglobal:cbv:mda#descriptionShort`, and for the lot; `Location` with `…mda#name` and `#streetAddressOne`)
is read too, for senders other than our station.

`batch_events`, `stage_event` and `status_event` build them (for the station); `read` takes a document apart (for
the central service). Pure code.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from contracts import epcis
from contracts.digital_link import EPC_DOMAIN
from contracts.errors import InvalidDocument

VTYPE_CLASS = "urn:epcglobal:epcis:vtype:EPCClass"
VTYPE_LOCATION = "urn:epcglobal:epcis:vtype:Location"
MDA = "urn:epcglobal:cbv:mda#"
STN = epcis.EXTENSION_NAMESPACE
STAGE_BIZSTEP = f"{STN}bizstep/"
_PRODUCT_CLASS = re.compile(rf"https://{re.escape(EPC_DOMAIN)}/01/(\d{{14}})")
_LOT_CLASS = re.compile(rf"https://{re.escape(EPC_DOMAIN)}/01/(\d{{14}})/10/([^/?#]{{1,20}})")


@dataclass(frozen=True)
class Producer:
    id: str
    name: str
    address: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class ProductInfo:
    gtin: str
    name: str
    producer_id: str | None = None
    image_url: str | None = None
    shelf_life_days: int | None = None
    standards: str | None = None


@dataclass(frozen=True)
class BatchInfo:
    gtin: str
    lot: str
    batch_id: str | None = None
    production_date: dt.date | None = None
    expiry: dt.date | None = None
    standards: str | None = None


@dataclass(frozen=True)
class Stage:
    gtin: str
    lot: str
    position: int
    stage: str
    at: dt.datetime
    offset: str
    biz_step: str | None = None
    place: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BatchStatus:
    gtin: str
    lot: str
    status: str
    reason: str | None
    at: dt.datetime


@dataclass
class MasterData:
    """What one document says; `origin` maps each item to the eventID that carried it (header items: none)."""

    producers: list[Producer] = field(default_factory=list)
    products: list[ProductInfo] = field(default_factory=list)
    batches: list[BatchInfo] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    statuses: list[BatchStatus] = field(default_factory=list)
    origin: dict[int, str] = field(default_factory=dict)  # id(item) -> eventID

    def __bool__(self) -> bool:
        return bool(self.producers or self.products or self.batches or self.stages or self.statuses)

    def _add(self, items: list[Any], item: Any, event_id: str | None) -> None:
        items.append(item)
        if event_id is not None:
            self.origin[id(item)] = event_id

    def only(self, event_ids: set[str]) -> MasterData:
        """The items from the header and from the events among `event_ids` (the ones stored for the first time)."""
        def keep(items: list[Any]) -> list[Any]:
            return [i for i in items if self.origin.get(id(i)) is None or self.origin[id(i)] in event_ids]

        return MasterData(keep(self.producers), keep(self.products), keep(self.batches), keep(self.stages),
                          keep(self.statuses))


def product_class(gtin: str) -> str:
    return f"https://{EPC_DOMAIN}/01/{gtin}"


def lot_class(gtin: str, lot: str) -> str:
    return f"https://{EPC_DOMAIN}/01/{gtin}/10/{quote(lot, safe='')}"


def _event(kind: str, lgtin: str, at: dt.datetime, offset: str, read_point: str, event_id: str | None,
           **fields: Any) -> dict[str, Any]:
    action, biz_step = ("ADD", "creating_class_instance") if kind == "batch" else ("OBSERVE", None)
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": event_id or f"urn:uuid:{uuid.uuid4()}",
        "eventTime": at.isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": offset,
        "quantityList": [{"epcClass": lgtin}],
        "action": action,
    }
    if biz_step:
        event["bizStep"] = biz_step
    event.update({k: v for k, v in fields.items() if v is not None})
    event["readPoint"] = {"id": read_point}
    return event


def _clean(values: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


def batch_event(*, producer: Producer, product: ProductInfo, batch: BatchInfo, at: dt.datetime, read_point: str,
                tz_offset: str = "+07:00", event_id: str | None = None) -> dict[str, Any]:
    """The batch-opened event: the lot's, the product's and the producer's master data in its ilmd."""
    p = epcis.EXTENSION_PREFIX
    ilmd = _clean({
        "cbvmda:lotNumber": batch.lot,
        "cbvmda:itemExpirationDate": batch.expiry.isoformat() if batch.expiry else None,
        f"{p}:productionDate": batch.production_date.isoformat() if batch.production_date else None,
        f"{p}:batchId": batch.batch_id,
        f"{p}:standards": batch.standards,
        f"{p}:product": _clean({"name": product.name, "imageUrl": product.image_url,
                                "shelfLifeDays": product.shelf_life_days, "standards": product.standards}),
        f"{p}:producer": _clean({"id": producer.id, "name": producer.name, "address": producer.address,
                                 "phone": producer.phone}),
    })
    return _event("batch", lot_class(batch.gtin, batch.lot), at, tz_offset, read_point, event_id, ilmd=ilmd)


def stage_event(stage: Stage, *, read_point: str, event_id: str | None = None) -> dict[str, Any]:
    """One stage of the batch's production diary."""
    p = epcis.EXTENSION_PREFIX
    return _event("stage", lot_class(stage.gtin, stage.lot), stage.at, stage.offset, read_point, event_id,
                  bizStep=stage.biz_step or f"{STAGE_BIZSTEP}{stage.stage}", **{
                      f"{p}:stage": stage.stage, f"{p}:position": stage.position, f"{p}:place": stage.place,
                      f"{p}:detail": stage.detail})


STATUS_DISPOSITIONS = {"recalled": "recalled", "on_hold": "non_sellable_other", "released": "sellable_accessible"}


def status_event(gtin: str, lot: str, status: str, *, reason: str | None, at: dt.datetime, read_point: str,
                 tz_offset: str = "+07:00", event_id: str | None = None) -> dict[str, Any]:
    """A batch recalled, put on hold or released again."""
    if status not in STATUS_DISPOSITIONS:
        raise ValueError(f"batch status {status!r} is not one of {', '.join(STATUS_DISPOSITIONS)}")
    return _event("status", lot_class(gtin, lot), at, tz_offset, read_point, event_id,
                  bizStep="holding" if status == "on_hold" else None,
                  disposition=STATUS_DISPOSITIONS[status], **{f"{epcis.EXTENSION_PREFIX}:reason": reason})


def _text(values: Mapping[str, object], key: str, where: str, limit: int = 500) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidDocument(f"{where}: {key} must be text of 1 to {limit} characters")
    return value


def _date(values: Mapping[str, object], key: str, where: str) -> dt.date | None:
    value = _text(values, key, where, 10)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidDocument(f"{where}: {key} {value!r} is not a date (YYYY-MM-DD)") from None


def _elements(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, object]]]:
    header = document.get("epcisHeader")
    master = header.get("epcisMasterData") if isinstance(header, Mapping) else None
    vocabularies = master.get("vocabularyList") if isinstance(master, Mapping) else None
    found = []
    for vocabulary in vocabularies or []:
        for element in vocabulary.get("vocabularyElementList") or []:
            attributes = {a["id"]: a.get("attribute") for a in element.get("attributes") or []}
            found.append((vocabulary["type"], element["id"], attributes))
    return found


def _lot_of(event: Mapping[str, Any]) -> tuple[str, str] | None:
    quantities = event.get("quantityList") or []
    if event.get("epcList") or len(quantities) != 1:
        return None
    match = _LOT_CLASS.fullmatch(quantities[0].get("epcClass", ""))
    return (match.group(1), unquote(match.group(2))) if match else None


def _mapping(values: Mapping[str, object], key: str, where: str) -> Mapping[str, object] | None:
    value = values.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise InvalidDocument(f"{where}: {key} must be an object")
    return value


def _producer(values: Mapping[str, object], where: str) -> Producer:
    producer_id = _text(values, "id", where, 100)
    name = _text(values, "name", where, 300)
    if producer_id is None or name is None:
        raise InvalidDocument(f"{where}: a producer needs an id and a name")
    return Producer(producer_id, name, _text(values, "address", where), _text(values, "phone", where, 40))


def _days(value: object, where: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 36500):
        raise InvalidDocument(f"{where}: shelfLifeDays must be a whole number of days")
    return value  # type: ignore[return-value]


def _image(value: str | None, where: str) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise InvalidDocument(f"{where}: imageUrl must be an https:// URL")
    return value


def _read_header(data: MasterData, document: Mapping[str, Any]) -> None:
    for vtype, element_id, values in _elements(document):
        where = f"master data {element_id}"
        if vtype == VTYPE_LOCATION:
            name = _text(values, f"{MDA}name", where, 300)
            if name is None:
                raise InvalidDocument(f"{where}: a producer needs {MDA}name")
            if len(element_id) > 100:
                raise InvalidDocument(f"{where}: a producer's id is at most 100 characters")
            data.producers.append(Producer(element_id, name, _text(values, f"{MDA}streetAddressOne", where),
                                           _text(values, f"{STN}phone", where, 40)))
        elif vtype == VTYPE_CLASS and (lot := _LOT_CLASS.fullmatch(element_id)):
            data.batches.append(BatchInfo(
                gtin=lot.group(1), lot=unquote(lot.group(2)), batch_id=_text(values, f"{STN}batchId", where, 100),
                production_date=_date(values, f"{STN}productionDate", where),
                expiry=_date(values, f"{MDA}itemExpirationDate", where),
                standards=_text(values, f"{STN}standards", where)))
        elif vtype == VTYPE_CLASS and (product := _PRODUCT_CLASS.fullmatch(element_id)):
            name = _text(values, f"{MDA}descriptionShort", where, 300)
            if name is None:
                raise InvalidDocument(f"{where}: a product needs {MDA}descriptionShort")
            data.products.append(ProductInfo(
                product.group(1), name, _text(values, f"{STN}producer", where, 100),
                _image(_text(values, f"{STN}imageUrl", where, 1000), where),
                _days(values.get(f"{STN}shelfLifeDays"), where), _text(values, f"{STN}standards", where)))
        else:
            raise InvalidDocument(f"{where}: not a product, batch or producer of ours ({vtype})")


_STATUS_OF_DISPOSITION = {v: k for k, v in STATUS_DISPOSITIONS.items()}


def _status_of(event: Mapping[str, Any], where: str) -> tuple[str, str | None] | None:
    """A batch status event's status and reason: the contract's (`disposition` and `stn:reason`), or the station's
    batch lock (station/line/stamp_events.py: `stn:batchLock {locked, kind, reason}`, disposition `recalled` or
    `non_sellable_other` when locked, `active` when unlocked, which is a release)."""
    p = epcis.EXTENSION_PREFIX
    lock = _mapping(event, f"{p}:batchLock", where)
    if lock is not None:
        locked = lock.get("locked")
        if not isinstance(locked, bool):
            raise InvalidDocument(f"{where}: {p}:batchLock.locked must be true or false")
        status = _STATUS_OF_DISPOSITION.get(event.get("disposition", "")) if locked else "released"
        if status is None or (locked and status == "released"):
            raise InvalidDocument(f"{where}: a batch lock's disposition must be recalled or non_sellable_other")
        return status, _text(lock, "reason", f"{where} {p}:batchLock")
    status = _STATUS_OF_DISPOSITION.get(event.get("disposition", ""))
    return (status, _text(event, f"{p}:reason", where)) if status is not None else None


def read(document: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> MasterData:
    """The master data of a document already valid against the schema; InvalidDocument where it is not ours."""
    data = MasterData()
    _read_header(data, document)
    p = epcis.EXTENSION_PREFIX
    for event in events:
        lot = _lot_of(event)
        if lot is None or event.get("type") != "ObjectEvent":
            continue
        gtin, lot_number = lot
        event_id = event["eventID"]
        where = f"event {event_id}"
        if event.get("action") == "ADD" and event.get("bizStep") == "creating_class_instance":
            ilmd = event.get("ilmd") or {}
            if ilmd.get("cbvmda:lotNumber", lot_number) != lot_number:
                raise InvalidDocument(f"{where}: ilmd cbvmda:lotNumber is not the lot of its quantityList")
            data._add(data.batches, BatchInfo(
                gtin=gtin, lot=lot_number, batch_id=_text(ilmd, f"{p}:batchId", where, 100),
                production_date=_date(ilmd, f"{p}:productionDate", where),
                expiry=_date(ilmd, "cbvmda:itemExpirationDate", where),
                standards=_text(ilmd, f"{p}:standards", where)), event_id)
            producer = _mapping(ilmd, f"{p}:producer", where)
            if producer is not None:
                data._add(data.producers, _producer(producer, f"{where} {p}:producer"), event_id)
            product = _mapping(ilmd, f"{p}:product", where)
            if product is not None:
                name = _text(product, "name", where, 300)
                if name is None:
                    raise InvalidDocument(f"{where}: {p}:product needs a name")
                data._add(data.products, ProductInfo(
                    gtin, name, producer.get("id") if producer else None,  # type: ignore[arg-type]
                    _image(_text(product, "imageUrl", where, 1000), where), _days(product.get("shelfLifeDays"), where),
                    _text(product, "standards", where)), event_id)
        elif event.get(f"{p}:stage") is not None:
            stage_name = _text(event, f"{p}:stage", where, 40)
            position = event.get(f"{p}:position")
            if not isinstance(position, int) or isinstance(position, bool) or not 0 <= position < 1000:
                raise InvalidDocument(f"{where}: {p}:position must be a whole number from 0")
            bizstep = event.get("bizStep")
            data._add(data.stages, Stage(
                gtin=gtin, lot=lot_number, position=position, stage=stage_name or "",
                at=epcis.parse_time(event["eventTime"]), offset=event["eventTimeZoneOffset"],
                biz_step=bizstep if bizstep in epcis.CBV_BIZ_STEPS else None,
                place=_text(event, f"{p}:place", where), detail=_text(event, f"{p}:detail", where, 1000)), event_id)
        elif (status := _status_of(event, where)) is not None:
            status_name, reason = status
            data._add(data.statuses, BatchStatus(gtin, lot_number, status_name, reason,
                                                 epcis.parse_time(event["eventTime"])), event_id)
    return data
