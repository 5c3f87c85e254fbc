"""EPCIS 2.0 documents as the station sends them: the GS1 JSON schema, the CBV values, and our own rules.

`validate_document` is what the central ingest runs on every message: the schema (jsonschema-rs decides; the
pure-Python jsonschema words the reason when it fails), then the CBV business steps and dispositions, which the
schema lets through as any string, then what the contract adds: every event has a `urn:uuid:` eventID, so a
resend can be dropped by it.

The station builds its events in station/epcis.py and checks them with the same lists and validators (it imports
them from here: `CBV_BIZ_STEPS`, `CBV_DISPOSITIONS`, `CBV_URI`, `VOCAB_URI`, `fast_validator`, `slow_validator`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry

from contracts.errors import InvalidDocument

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# The station's extension fields (site, station, batchId, verification, voidReason) live under this prefix.
EXTENSION_PREFIX = "stn"
EXTENSION_NAMESPACE = "https://ns.packing-station.example/epcis/"

# CBV 2.0 standard business steps (section 7.1) and dispositions (section 7.2).
CBV_BIZ_STEPS = frozenset({
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning",
    "creating_class_instance", "cycle_counting", "decommissioning", "departing", "destroying",
    "disassembling", "dispensing", "encoding", "entering_exiting", "holding", "inspecting", "installing",
    "killing", "loading", "other", "packing", "picking", "receiving", "removing", "repackaging",
    "repairing", "replacing", "reserving", "retail_selling", "sampling", "sensor_reporting", "shipping",
    "staging_outbound", "stock_taking", "stocking", "storing", "transporting", "unloading", "unpacking",
    "void_shipping",
})  # fmt: skip
CBV_DISPOSITIONS = frozenset({
    "active", "available", "completeness_inferred", "completeness_verified", "conformant",
    "container_closed", "container_open", "damaged", "destroyed", "dispensed", "disposed", "encoded",
    "expired", "in_progress", "in_transit", "inactive", "mismatch_class", "mismatch_instance",
    "mismatch_quantity", "needs_replacement", "no_pedigree_match", "non_conformant", "non_sellable_other",
    "partially_dispensed", "recalled", "reserved", "retail_sold", "returned", "sellable_accessible",
    "sellable_not_accessible", "stolen", "unavailable", "unknown",
})  # fmt: skip

# The CBV values the stamps' life uses: activation and void (DESIGN.md), case packing.
ACTIVATION = ("ADD", "commissioning", "active")
VOID = ("DELETE", "decommissioning", "inactive")

# EPCIS 2.0 JSON wants the bare CBV words above; the URN and GS1 Web URI spellings of CBV values are refused, and a
# value of a vocabulary of our own must be an absolute URI we can tell from a misspelt word.
CBV_URI = re.compile(r"^(urn:epcglobal:cbv:|https?://ns\.gs1\.org/cbv/)")
VOCAB_URI = re.compile(r"^(https?://[^\s/?#]+[^\s]*|urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+)$")
_CBV_URI, _VOCAB_URI = CBV_URI, VOCAB_URI
_EVENT_ID = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")
_MAX_REASON = 400


def _is_uri(instance: object) -> bool:
    return not isinstance(instance, str) or bool(_URI.match(instance))


def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _DATE_TIME.match(instance):
        return False
    try:  # the pattern checks the shape; this checks month 13, 30 February, hour 25
        dt.datetime.fromisoformat(instance.upper())
    except ValueError:
        return False
    return True


@functools.cache
def schema() -> dict[str, Any]:
    text = resources.files("contracts").joinpath("schemas/EPCIS-JSON-Schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def fast_validator() -> Any:
    """jsonschema-rs on the GS1 schema with our format rules: microseconds a document, so every event can be
    checked (the station does it on the line's hot path). It decides; the slow one only words the reason."""
    return jsonschema_rs.Draft7Validator(
        schema(), validate_formats=True, formats={"uri": _is_uri, "date-time": _is_date_time}, offline=True
    )


@functools.cache
def slow_validator() -> Draft7Validator:
    """The pure-Python validator on the same schema and formats, for the message when a document fails.

    jsonschema checks "uri" and "date-time" only with optional packages that are not installed (without them any
    string passes), so checkers of our own keep validation the same on every machine."""
    checker = FormatChecker(formats=())
    for name, func in Draft7Validator.FORMAT_CHECKER.checkers.items():
        checker.checkers[name] = func
    checker.checks("uri")(_is_uri)
    checker.checks("date-time")(_is_date_time)
    Draft7Validator.check_schema(schema())
    # An empty registry: every $ref of the schema is local, and any other must fail rather than reach the network.
    return Draft7Validator(schema(), registry=Registry(), format_checker=checker)


_fast, _slow = fast_validator, slow_validator


def events_of(document: Mapping[str, Any]) -> list[Any]:
    body = document.get("epcisBody")
    events = body.get("eventList") if isinstance(body, Mapping) else None
    return events if isinstance(events, list) else []


def event_ids_of(document: object) -> list[str]:
    """The eventIDs a document names, valid or not: a rejection is answered for each of them."""
    if not isinstance(document, Mapping):
        return []
    ids = [e.get("eventID") for e in events_of(document) if isinstance(e, Mapping)]
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def _check_cbv(value: object, standard: frozenset[str], where: str, what: str) -> None:
    if not isinstance(value, str) or value in standard:
        return
    if _CBV_URI.match(value):
        raise InvalidDocument(f"{where}: {value!r}: write the CBV {what} as its bare name in EPCIS 2.0 JSON")
    if not _VOCAB_URI.match(value):
        raise InvalidDocument(f"{where}: {value!r} is not a CBV 2.0 {what} nor the URI of a vocabulary of our own")


def _walk(events: Sequence[Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, event in enumerate(events):
        if isinstance(event, Mapping):
            yield f"$.epcisBody.eventList[{index}]", event


def _relevance(error: ValidationError) -> tuple[int, bool]:
    # Deepest first: "eventList[0].action: 'REMOVE' is not one of …" says more than the whole event dumped.
    return (len(error.path), error.validator not in ("anyOf", "oneOf"))


def _describe(document: Mapping[str, Any]) -> str:
    error = max(_slow().iter_errors(document), key=_relevance, default=None)
    if error is None:  # the two validators disagree: trust the stricter one, and say so
        return f"schema: {next(iter(_fast().iter_errors(document)))}"
    while error.context:
        error = max(error.context, key=_relevance)
    return f"schema: {error.json_path}: {error.message}"


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def validate_document(document: object) -> list[Mapping[str, Any]]:
    """The events of a valid EPCISDocument; InvalidDocument with a short reason for anything else."""
    if not isinstance(document, Mapping) or document.get("type") != "EPCISDocument":
        raise InvalidDocument("the payload is not an EPCISDocument")
    events = events_of(document)
    if not events:
        raise InvalidDocument("epcisBody.eventList is missing or empty")
    for where, event in _walk(events):
        # The CBV check first: its message for a misspelt bizStep is clearer than the schema's anyOf.
        _check_cbv(event.get("bizStep"), CBV_BIZ_STEPS, f"{where}.bizStep", "business step")
        _check_cbv(event.get("disposition"), CBV_DISPOSITIONS, f"{where}.disposition", "disposition")
    if not _fast().is_valid(document):
        raise InvalidDocument(_shorten(_describe(document)))
    seen: set[str] = set()
    for where, event in _walk(events):
        event_id = event.get("eventID")
        if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
            # Without a stable eventID a resend could not be told from a new event.
            raise InvalidDocument(f"{where}.eventID: {event_id!r} is not a urn:uuid: eventID")
        if event_id in seen:
            raise InvalidDocument(f"{where}.eventID: {event_id} appears twice in one document")
        seen.add(event_id)
    return list(events)


def document(events: Sequence[Mapping[str, Any]], created_at: dt.datetime) -> dict[str, Any]:
    """An EPCISDocument holding `events`, the station's extension prefix declared in @context."""
    if created_at.utcoffset() is None:
        raise ValueError("creation time without a time zone")
    return {
        "@context": [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created_at.isoformat(timespec="milliseconds"),
        "epcisBody": {"eventList": list(events)},
    }


_TZ_OFFSET = re.compile(r"^([+-])((0[0-9]|1[0-3]):([0-5][0-9])|14:00)$")  # the schema's eventTimeZoneOffset


def timezone_of(offset: str) -> dt.timezone:
    """``+07:00`` as a time zone; ValueError for anything the schema's eventTimeZoneOffset would refuse."""
    match = _TZ_OFFSET.match(offset)
    if match is None:
        raise ValueError(f"time zone offset {offset!r}: expected ±HH:MM between -13:59 and +14:00")
    sign = 1 if match.group(1) == "+" else -1
    hours, minutes = (int(part) for part in offset[1:].split(":"))
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse_time(text: str) -> dt.datetime:
    """An EPCIS time (already schema-checked) as an aware datetime."""
    return dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
