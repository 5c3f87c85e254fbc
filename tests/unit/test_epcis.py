"""EPCIS 2.0 activation and void events, their documents, and validation against the official schema."""

from __future__ import annotations

import copy
import datetime as dt
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from station import epcis
from station.epcis import (
    EPCIS_CONTEXT,
    EXTENSION_NAMESPACE,
    EXTENSION_PREFIX,
    activation_event,
    document,
    validate,
    void_event,
)
from station.errors import EpcisInvalid, InvalidIdentifier

VN = dt.timezone(dt.timedelta(hours=7))
AT = dt.datetime(2026, 11, 29, 8, 15, 30, 123456, tzinfo=VN)
READ_POINT = "urn:epc:id:sgln:8938603.00000.1"
GTIN = "08938603001013"
EXAMPLE_NAME = "Example_9.6.1-ObjectEventWithDigitalLink.jsonld"
EXAMPLE = Path(__file__).parent.parent / "data" / EXAMPLE_NAME


def _activation(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "gtin": GTIN,
        "serial": "A1B2C3D4E5",
        "lot": "L2026/11",
        "expiry": dt.date(2027, 5, 31),
        "event_time": AT,
        "read_point": READ_POINT,
        "extensions": {"station": "HUE-PL-01", "batchId": 42, "verification": {"reader": "cam0", "match": True}},
    }
    kwargs.update(overrides)
    return activation_event(**kwargs)


def _void(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "gtin": GTIN,
        "serial": "Z9Y8X7W6V5",
        "reason": "no_read",
        "event_time": AT,
        "tz_offset": "+07:00",
        "read_point": READ_POINT,
    }
    kwargs.update(overrides)
    return void_event(**kwargs)


def _doc(*events: dict[str, Any]) -> dict[str, Any]:
    return document(list(events), created_at=AT)


# --- the events themselves ------------------------------------------------------------------------------------


def test_activation_event_shape() -> None:
    event = _activation()
    assert event["type"] == "ObjectEvent"
    assert event["action"] == "ADD"
    assert event["bizStep"] == "commissioning"
    assert event["disposition"] == "active"
    assert event["epcList"] == ["https://id.gs1.org/01/08938603001013/21/A1B2C3D4E5"]
    assert event["ilmd"] == {"cbvmda:lotNumber": "L2026/11", "cbvmda:itemExpirationDate": "2027-05-31"}
    assert event["eventTime"] == "2026-11-29T08:15:30.123+07:00"
    assert event["eventTimeZoneOffset"] == "+07:00"
    assert event["readPoint"] == {"id": READ_POINT}
    assert "bizLocation" not in event
    assert event["stn:station"] == "HUE-PL-01"
    assert event["stn:batchId"] == 42
    assert event["stn:verification"] == {"reader": "cam0", "match": True}


def test_event_id_is_a_fresh_uuid_urn_unless_given() -> None:
    first, second = _activation()["eventID"], _activation()["eventID"]
    assert first != second
    for event_id in (first, second):
        assert event_id.startswith("urn:uuid:")
        assert uuid.UUID(event_id.removeprefix("urn:uuid:")).version == 4


def test_given_event_id_is_kept() -> None:
    event_id = "urn:uuid:6f1c2a7e-0d4b-4c55-9a56-3a4f2b0d9e11"
    assert _activation(event_id=event_id)["eventID"] == event_id
    assert _void(event_id=event_id)["eventID"] == event_id


def test_activation_without_expiry_leaves_it_out() -> None:
    assert _activation(expiry=None)["ilmd"] == {"cbvmda:lotNumber": "L2026/11"}


def test_event_time_is_written_at_the_station_offset_with_milliseconds() -> None:
    utc = dt.datetime(2026, 11, 29, 1, 15, 30, 5000, tzinfo=dt.UTC)
    event = _activation(event_time=utc)
    assert event["eventTime"] == "2026-11-29T08:15:30.005+07:00"
    other = _activation(event_time=utc, tz_offset="-05:30")
    assert other["eventTime"] == "2026-11-28T19:45:30.005-05:30"
    assert other["eventTimeZoneOffset"] == "-05:30"


def test_naive_time_and_bad_offset_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        _activation(event_time=dt.datetime(2026, 11, 29, 8, 15))
    with pytest.raises(ValueError, match="time zone offset '\\+7'"):
        _activation(tz_offset="+7")
    with pytest.raises(ValueError, match="no time zone"):
        document([], created_at=dt.datetime(2026, 11, 29))


def test_bad_identifiers_are_refused_when_building() -> None:
    with pytest.raises(InvalidIdentifier, match="check digit should be 3"):
        _activation(gtin="08938603001014")
    with pytest.raises(InvalidIdentifier, match="space"):
        _activation(lot="L 1")


def test_void_event_shape() -> None:
    event = _void(biz_location="urn:epc:id:sgln:8938603.00000.0", extensions={"stn:station": "HUE-PL-01"})
    assert event["action"] == "DELETE"
    assert event["bizStep"] == "decommissioning"
    assert event["disposition"] == "inactive"
    assert event["epcList"] == ["https://id.gs1.org/01/08938603001013/21/Z9Y8X7W6V5"]
    assert event["stn:voidReason"] == "no_read"
    assert event["stn:station"] == "HUE-PL-01"
    assert event["bizLocation"] == {"id": "urn:epc:id:sgln:8938603.00000.0"}
    assert "ilmd" not in event


def test_void_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        _void(reason="")


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        ({"gs1:thing": 1}, "only the 'stn' prefix"),
        ({"bad name": 1}, "the name must be"),
        ({"voidReason": "again"}, "given twice"),
        ({"when": dt.date(2026, 1, 1)}, "not JSON"),
        ({"ratio": float("nan")}, "not JSON"),
    ],
)
def test_bad_extensions_are_refused(extensions: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _void(extensions=extensions)


# --- documents --------------------------------------------------------------------------------------------------


def test_document_shape() -> None:
    doc = document([_activation()], created_at=AT, sender="urn:epc:id:sgln:8938603.00000.0")
    assert doc["@context"] == [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}]
    assert EPCIS_CONTEXT == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    assert doc["type"] == "EPCISDocument"
    assert doc["schemaVersion"] == "2.0"
    assert doc["creationDate"] == "2026-11-29T08:15:30.123+07:00"
    assert doc["sender"] == "urn:epc:id:sgln:8938603.00000.0"
    assert len(doc["epcisBody"]["eventList"]) == 1


def test_activation_document_validates() -> None:
    validate(_doc(_activation()))
    validate(_doc(_activation(expiry=None, extensions={})))


def test_void_document_validates() -> None:
    validate(_doc(_void()))


def test_document_with_several_events_validates() -> None:
    events = [_activation(serial=f"A{i:09d}") for i in range(20)] + [_void()]
    doc = _doc(*events)
    validate(doc)
    assert len({e["eventID"] for e in doc["epcisBody"]["eventList"]}) == 21


def test_json_round_trip_stays_valid_and_equal() -> None:
    doc = _doc(_activation(), _void())
    text = json.dumps(doc, ensure_ascii=False)
    again = json.loads(text)
    assert again == doc
    validate(again)


def test_the_official_example_validates() -> None:
    example = EXAMPLE
    validate(json.loads(example.read_text(encoding="utf-8")))


# --- what validation refuses ------------------------------------------------------------------------------------


def _broken(path: tuple[str, ...], value: object = None, *, delete: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(_doc(_activation()))
    target: Any = doc
    for key in path[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


EVENT = ("epcisBody", "eventList", "0")


def test_missing_event_time_names_the_event_and_the_field() -> None:
    with pytest.raises(EpcisInvalid, match=r"^\$\.epcisBody\.eventList\[0\]: 'eventTime' is a required property$"):
        validate(_broken((*EVENT, "eventTime"), delete=True))


def test_wrong_action_names_the_field_and_the_allowed_values() -> None:
    with pytest.raises(EpcisInvalid) as caught:
        validate(_broken((*EVENT, "action"), "REMOVE"))
    message = str(caught.value)
    assert message.startswith("$.epcisBody.eventList[0].action: 'REMOVE' is not one of")
    assert "'ADD'" in message and "'DELETE'" in message


@pytest.mark.parametrize("biz_step", ["comissioning", "Commissioning", "activation", "x:commissioning"])
def test_non_cbv_biz_step_is_refused(biz_step: str) -> None:
    with pytest.raises(EpcisInvalid, match=r"eventList\[0\]\.bizStep: .* is not a CBV 2.0 business step"):
        validate(_broken((*EVENT, "bizStep"), biz_step))


def test_cbv_uri_spelling_is_refused_in_json() -> None:
    with pytest.raises(EpcisInvalid, match="bare name"):
        validate(_broken((*EVENT, "bizStep"), "urn:epcglobal:cbv:bizstep:commissioning"))


def test_own_vocabulary_uri_is_accepted() -> None:
    validate(_broken((*EVENT, "bizStep"), "https://ns.packing-station.example/epcis/bizstep/relabelling"))


def test_non_cbv_disposition_is_refused() -> None:
    with pytest.raises(EpcisInvalid, match=r"disposition: 'activated' is not a CBV 2.0 disposition"):
        validate(_broken((*EVENT, "disposition"), "activated"))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ((*EVENT, "eventTime"), "2026-13-29T08:15:30.123+07:00", "eventTime: '2026-13-29T08:15:30.123+07:00' is not"),
        ((*EVENT, "eventTime"), "29/11/2026 08:15", "is not a 'date-time'"),
        ((*EVENT, "eventTimeZoneOffset"), "+7", "eventTimeZoneOffset: '+7' does not match"),
        ((*EVENT, "eventID"), "not an id", "eventID: 'not an id' is not a 'uri'"),
        ((*EVENT, "epcList"), ["https://id.gs1.org/01/x", "https://id.gs1.org/01/x"], "non-unique"),
        ((*EVENT, "readPoint"), {"name": "line 1"}, "readPoint: 'id' is a required property"),
        ((*EVENT, "stationName"), "x", "property name 'stationName' is not one of"),
        (("schemaVersion",), "two", "schemaVersion: 'two' does not match"),
    ],
)
def test_broken_documents_are_refused_with_the_path(path: tuple[str, ...], value: object, message: str) -> None:
    with pytest.raises(EpcisInvalid) as caught:
        validate(_broken(path, value))
    assert message in str(caught.value)


def test_missing_epc_list_names_the_alternatives() -> None:
    with pytest.raises(EpcisInvalid, match="'epcList' is a required property; or 'quantityList'"):
        validate(_broken((*EVENT, "epcList"), delete=True))


def test_missing_creation_date() -> None:
    with pytest.raises(EpcisInvalid, match=r"^\$: 'creationDate' is a required property$"):
        validate(_broken(("creationDate",), delete=True))


# --- the validator itself ----------------------------------------------------------------------------------------


def test_validator_is_built_once() -> None:
    validate(_doc(_void()))
    first = epcis.slow_validator(), epcis.fast_validator()
    validate(_doc(_void()))
    assert (epcis.slow_validator(), epcis.fast_validator()) == first
    assert epcis.slow_validator() is first[0] and epcis.fast_validator() is first[1]


def test_validation_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("validation tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    epcis.slow_validator.cache_clear()   # force a fresh build of both under the block
    epcis.fast_validator.cache_clear()
    validate(_doc(_activation(), _void()))
    with pytest.raises(EpcisInvalid, match="REMOVE"):   # the message is worded by the pure-Python validator
        validate(_broken((*EVENT, "action"), "REMOVE"))
    with pytest.raises(EpcisInvalid):
        validate(_broken((*EVENT, "action"), "REMOVE"))


def test_document_json_splices_serialised_events_into_the_same_document() -> None:
    from station.epcis import document, document_json

    events = [_activation(serial=f"A1B2C3D4E{n}") for n in range(3)]
    spliced = json.loads(document_json([json.dumps(e, ensure_ascii=False) for e in events], created_at=AT,
                                       sender="urn:x"))
    assert spliced == document(events, created_at=AT, sender="urn:x")
    validate(spliced)


@pytest.mark.parametrize("sender", [None, "urn:x", 'a "quoted" \\ sender, Huế', "\x00creationDate\x00"])
def test_document_json_is_byte_for_byte_the_document_json_dumps_would_write(sender: str | None) -> None:
    """The relay builds every payload with document_json (its frame is cut once per sender): the bytes must be
    exactly those of json.dumps(document(...)) with the outbox's separators, whatever the sender holds."""
    from station.epcis import document, document_json

    events = [_activation(serial=f"A1B2C3D4E{n}") for n in range(3)]
    texts = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events]
    plus7 = dt.timezone(dt.timedelta(hours=7))
    for created in (AT, AT.replace(microsecond=0), AT.astimezone(plus7), AT.replace(microsecond=999_999)):
        for chosen in ([], texts[:1], texts):
            expected = json.dumps(document([json.loads(t) for t in chosen], created_at=created, sender=sender),
                                  ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            assert document_json(chosen, created_at=created, sender=sender) == expected


def test_document_json_refuses_a_creation_time_without_a_time_zone() -> None:
    from station.epcis import document_json

    with pytest.raises(ValueError):
        document_json([], created_at=dt.datetime(2026, 11, 29, 8, 0))
