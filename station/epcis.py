"""EPCIS 2.0 events for stamp activation and void, the documents that carry them, and their validation."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError

from contracts.epcis import (
    CBV_BIZ_STEPS,
    CBV_DISPOSITIONS,
    CBV_URI,
    EPCIS_CONTEXT,
    EXTENSION_NAMESPACE,
    EXTENSION_PREFIX,
    VOCAB_URI,
    fast_validator,
    slow_validator,
    timezone_of,
)
from station.errors import EpcisInvalid
from station.gs1 import epc_uri, normalize_gtin, validate_lot

__all__ = [
    "CBV_BIZ_STEPS",
    "CBV_DISPOSITIONS",
    "EPCIS_CONTEXT",
    "EXTENSION_NAMESPACE",
    "EXTENSION_PREFIX",
    "EXT_PREFIX",
    "activation_event",
    "document",
    "format_time",
    "validate",
    "void_event",
]

# The contract with the central service: the context, our extension prefix (a name, never fetched: change it only
# together with the server), the CBV 2.0 lists (the JSON schema lets any string through where a CBV value is
# expected, so "comissioning" would validate: these lists are the real check) and the schema's validators.
EXT_PREFIX = EXTENSION_PREFIX  # the short name the lines use

_EXTENSION_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def format_time(moment: dt.datetime, tz_offset: str) -> str:
    """ISO 8601 with milliseconds at the given offset, e.g. ``2026-11-29T08:15:30.123+07:00``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # a naive time would be read in whatever zone the server runs in
        raise ValueError(f"time {moment.isoformat()} has no time zone")
    return moment.astimezone(timezone_of(tz_offset)).isoformat(timespec="milliseconds")


def _extension_key(name: str) -> str:
    if ":" in name:
        prefix, _, local = name.partition(":")
        if prefix != EXTENSION_PREFIX:
            raise ValueError(
                f"extension {name!r}: only the {EXTENSION_PREFIX!r} prefix is declared in @context"
            )
    else:
        local = name
    if not _EXTENSION_NAME_RE.match(local):
        raise ValueError(f"extension {name!r}: the name must be letters, digits, '_', '.' or '-'")
    return f"{EXTENSION_PREFIX}:{local}"


def _add_extensions(event: dict[str, Any], extensions: Mapping[str, object]) -> None:
    for name, value in extensions.items():
        key = _extension_key(name)
        if key in event:
            raise ValueError(f"extension {key!r} given twice")
        try:  # the event goes to the outbox as JSON; fail here, where the caller can see why
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"extension {key!r}: value is not JSON: {exc}") from exc
        event[key] = value


def _base_event(
    *,
    event_id: str | None,
    action: str,
    biz_step: str,
    disposition: str,
    gtin: str,
    serial: str,
    event_time: dt.datetime,
    tz_offset: str,
    read_point: str,
    biz_location: str | None,
) -> dict[str, Any]:
    # Key order follows the standard's examples, so a human reading a payload finds things where expected.
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        # fixed here, once: the outbox stores this dict and resends it unchanged, so the server can drop
        # duplicates by eventID
        "eventID": event_id if event_id is not None else f"urn:uuid:{uuid.uuid4()}",
        "eventTime": format_time(event_time, tz_offset),
        "eventTimeZoneOffset": tz_offset,
        "epcList": [epc_uri(gtin, serial)],
        "action": action,
        "bizStep": biz_step,
        "disposition": disposition,
        "readPoint": {"id": read_point},
    }
    if biz_location is not None:
        event["bizLocation"] = {"id": biz_location}
    return event


def activation_event(
    *,
    event_id: str | None = None,
    gtin: str,
    serial: str,
    lot: str,
    expiry: dt.date | None,
    event_time: dt.datetime,
    tz_offset: str = "+07:00",
    read_point: str,
    biz_location: str | None = None,
    extensions: Mapping[str, object] = {},  # read only, never mutated, so a shared default is safe
) -> dict[str, Any]:
    """ObjectEvent ADD / commissioning / active for one stamp, lot and expiry in ilmd."""
    normalize_gtin(gtin)
    validate_lot(lot)
    event = _base_event(
        event_id=event_id,
        action="ADD",
        biz_step="commissioning",
        disposition="active",
        gtin=gtin,
        serial=serial,
        event_time=event_time,
        tz_offset=tz_offset,
        read_point=read_point,
        biz_location=biz_location,
    )
    ilmd: dict[str, str] = {"cbvmda:lotNumber": lot}
    if expiry is not None:
        ilmd["cbvmda:itemExpirationDate"] = expiry.isoformat()
    event["ilmd"] = ilmd
    _add_extensions(event, extensions)
    return event


def void_event(
    *,
    event_id: str | None = None,
    gtin: str,
    serial: str,
    reason: str,
    event_time: dt.datetime,
    tz_offset: str = "+07:00",
    read_point: str,
    biz_location: str | None = None,
    extensions: Mapping[str, object] = {},  # read only, never mutated, so a shared default is safe
) -> dict[str, Any]:
    """ObjectEvent DELETE / decommissioning / inactive for a voided stamp, with the reason."""
    if not reason:
        raise ValueError("a void needs a reason")
    event = _base_event(
        event_id=event_id,
        action="DELETE",
        biz_step="decommissioning",
        disposition="inactive",
        gtin=gtin,
        serial=serial,
        event_time=event_time,
        tz_offset=tz_offset,
        read_point=read_point,
        biz_location=biz_location,
    )
    event[f"{EXTENSION_PREFIX}:voidReason"] = reason
    _add_extensions(event, extensions)
    return event


def document(
    events: Sequence[dict[str, Any]],
    created_at: dt.datetime,
    sender: str | None = None,
) -> dict[str, Any]:
    """An EPCISDocument holding ``events``, with our extension prefix declared in @context."""
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise ValueError(f"creation time {created_at.isoformat()} has no time zone")
    doc: dict[str, Any] = {
        "@context": [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created_at.isoformat(timespec="milliseconds"),
    }
    if sender is not None:
        doc["sender"] = sender
    doc["epcisBody"] = {"eventList": list(events)}
    return doc


_CREATION_MARK = "\x00creationDate\x00"  # JSON-escaped as \u0000…: no other value of the frame can hold it


@functools.lru_cache(maxsize=16)
def _document_frame(sender: str | None) -> tuple[str, str, str]:
    """``document([], …, sender)`` as JSON, cut at its creation date and inside its empty event list."""
    probe = document([], dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), sender)
    probe["creationDate"] = _CREATION_MARK
    text = json.dumps(probe, ensure_ascii=False, separators=(",", ":"))
    head, found, rest = text.partition(json.dumps(_CREATION_MARK, ensure_ascii=False))
    middle, marker, tail = rest.rpartition('"eventList":[]')
    if not found or not marker:
        raise AssertionError(f"the document frame could not be cut: {text!r}")
    return head, middle + '"eventList":[', "]" + tail


def document_json(events_json: Sequence[str], created_at: dt.datetime, sender: str | None = None) -> bytes:
    """The same document as ``document``, as UTF-8 JSON, from events already serialised (the outbox keeps them
    as text): the events are spliced in, not decoded and encoded again for every publish, into a frame built
    once per sender (only the creation date changes between documents)."""
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise ValueError(f"creation time {created_at.isoformat()} has no time zone")
    head, middle, tail = _document_frame(sender)
    created = created_at.isoformat(timespec="milliseconds")  # digits, "-", ":", ".", "T", "+": nothing to escape
    return (head + '"' + created + '"' + middle + ",".join(events_json) + tail).encode("utf-8")


def _events_of(doc: object) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, event) for each event of a document, or the document itself when it is a single event."""
    if not isinstance(doc, dict):
        return
    body = doc.get("epcisBody")
    if isinstance(body, dict):
        events = body.get("eventList")
        if isinstance(events, list):
            for index, event in enumerate(events):
                if isinstance(event, dict):
                    yield f"$.epcisBody.eventList[{index}]", event
        return
    if "eventTime" in doc or "action" in doc:
        yield "$", doc


def _check_cbv(value: object, standard: frozenset[str], path: str, what: str) -> None:
    if not isinstance(value, str):
        return  # the schema reports the type
    if value in standard:
        return
    if CBV_URI.match(value):
        raise EpcisInvalid(f"{path}: {value!r}: write the CBV {what} as its bare name in EPCIS 2.0 JSON")
    if VOCAB_URI.match(value):
        return
    raise EpcisInvalid(
        f"{path}: {value!r} is not a CBV 2.0 {what} (e.g. {', '.join(sorted(standard)[:4])}, ...) "
        "nor the URI of a vocabulary of our own"
    )


def _check_vocabularies(doc: object) -> None:
    for path, event in _events_of(doc):
        _check_cbv(event.get("bizStep"), CBV_BIZ_STEPS, f"{path}.bizStep", "business step")
        _check_cbv(event.get("disposition"), CBV_DISPOSITIONS, f"{path}.disposition", "disposition")
        persistent = event.get("persistentDisposition")
        if isinstance(persistent, dict):
            for key in ("set", "unset"):
                values = persistent.get(key)
                if isinstance(values, list):
                    for i, value in enumerate(values):
                        _check_cbv(
                            value, CBV_DISPOSITIONS, f"{path}.persistentDisposition.{key}[{i}]", "disposition"
                        )


_WEAK_KEYWORDS = frozenset({"anyOf", "oneOf"})
_MAX_MESSAGE = 400


def _relevance(error: ValidationError) -> tuple[int, bool]:
    # Deepest first: for a person reading a log, "eventList[0].action: 'REMOVE' is not one of ..." says more
    # than the whole event dumped as "not valid under any of the given schemas" (jsonschema's best_match
    # prefers the shallow one).
    return (len(error.path), error.validator not in _WEAK_KEYWORDS)


def _describe(errors: Iterable[ValidationError]) -> str | None:
    error = max(errors, key=_relevance, default=None)
    if error is None:
        return None
    while error.context:
        top_key = max(_relevance(e) for e in error.context)
        top = [e for e in error.context if _relevance(e) == top_key]
        if len(top) > 1:  # several alternatives fail equally: name them all
            messages = "; or ".join(dict.fromkeys(e.message for e in top))
            return f"{top[0].json_path}: {messages}"
        error = top[0]
    if "propertyNames" in error.absolute_schema_path:  # the path is the object's; say it is about a key
        return f"{error.json_path}: property name {error.message}"
    return f"{error.json_path}: {error.message}"


def validate(doc: Mapping[str, Any]) -> None:
    """Raise EpcisInvalid unless ``doc`` validates against the EPCIS 2.0 schema and uses CBV vocabulary."""
    # The CBV check goes first: its message for a misspelt bizStep is clearer than the schema's anyOf.
    _check_vocabularies(doc)
    if fast_validator().is_valid(doc):
        return
    message = _describe(slow_validator().iter_errors(doc))
    if message is None:  # the two validators disagree: trust the stricter one, and say so
        message = f"rejected by the schema: {next(iter(fast_validator().iter_errors(doc)))}"
    if message is not None:
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        raise EpcisInvalid(message)
