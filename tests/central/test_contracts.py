"""The shared contracts: topics, Digital Links in every form our stamps carry, EPCIS documents of the station."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts import digital_link, epcis, topics
from contracts.errors import InvalidDocument, InvalidLink, InvalidTopic
from station import epcis as station_epcis
from station.gs1 import digital_link as station_digital_link
from tests.central.conftest import GTIN, ICT, activation, document, void


def test_topics_are_built_and_parsed_back() -> None:
    assert topics.events_topic("truyxuat", "hue-01", "line-1") == "truyxuat/hue-01/line-1/events"
    assert topics.acks_topic("tinh/truyxuat", "hue-01", "line-1") == "tinh/truyxuat/hue-01/line-1/acks"
    assert topics.shared_events_subscription("truyxuat") == "$share/ingest/truyxuat/+/+/events"
    parsed = topics.parse_station_topic("tinh/truyxuat/hue-01/line-1/events", "tinh/truyxuat")
    assert (parsed.site, parsed.station, parsed.kind) == ("hue-01", "line-1", "events")
    assert parsed.sibling("acks").topic == "tinh/truyxuat/hue-01/line-1/acks"


@pytest.mark.parametrize("topic", ["other/hue-01/line-1/events", "truyxuat/hue-01/events", "truyxuat/a/b/c/events",
                                   "truyxuat/hue-01/line-1/orders", "truyxuat//line-1/events"])
def test_topics_not_of_ours_are_refused(topic: str) -> None:
    with pytest.raises(InvalidTopic):
        topics.parse_station_topic(topic, "truyxuat")


@pytest.mark.parametrize("name", ["", "a/b", "+", "#", "$SYS"])
def test_levels_with_wildcards_or_slashes_are_refused(name: str) -> None:
    with pytest.raises(InvalidTopic):
        topics.events_topic("truyxuat", name, "line-1")


@pytest.mark.parametrize(("uri", "lot", "expiry"), [
    ("https://truyxuat.hue.example.vn/01/08938603001013/10/MX2611A/21/A7K2Q9?17=270528", "MX2611A", dt.date(2027, 5, 28)),
    ("HTTPS://TRUYXUAT.HUE.EXAMPLE.VN/01/08938603001013/10/MX2611A/21/A7K2Q9", "MX2611A", None),
    ("https://truyxuat.hue.example.vn/01/08938603001013/21/A7K2Q9", None, None),
    ("https://id.gs1.org/01/08938603001013/21/A7K2Q9", None, None),
    ("https://ID.GS1.ORG/01/08938603001013/21/A7K2Q9?17=270500", None, dt.date(2027, 5, 31)),  # day 00: month's end
])
def test_every_form_of_our_digital_links_names_the_same_stamp(uri: str, lot: str | None, expiry: dt.date | None) -> None:
    link = digital_link.parse(uri)
    assert (link.gtin, link.serial, link.lot, link.expiry) == (GTIN, "A7K2Q9", lot, expiry)
    assert link.epc == "https://id.gs1.org/01/08938603001013/21/A7K2Q9"


def test_what_the_station_prints_parses_to_what_it_activated() -> None:
    printed = station_digital_link("truyxuat.hue.example.vn", GTIN, "L/26&A", "A7K2Q9", dt.date(2027, 5, 28))
    assert "/10/L%2F26%26A/" in printed  # reserved characters percent-encoded
    link = digital_link.parse(printed)
    assert (link.gtin, link.lot, link.serial, link.expiry) == (GTIN, "L/26&A", "A7K2Q9", dt.date(2027, 5, 28))


@pytest.mark.parametrize(("uri", "reason"), [
    ("https://x.vn/01/08938603001014/21/A7K2Q9", "check digit"),
    ("https://x.vn/01/08938603001013/21/A7K2Q9/10/L1", "not a valid GS1 Digital Link"),
    ("https://x.vn/01/08938603001013/10/L1", "names no single stamp"),
    ("https://x.vn/01/08938603001013/21/A7K2Q9?foo=1", "unknown query parameter(s): foo"),
    ("https://x.vn/01/08938603001013/21/A7K2Q9?17=270528&17=270529", "given twice: 17"),
    ("https://x.vn/01/08938603001013/21/A7K2Q9#top", "no #fragment"),
    ("https://x.vn/01/08938603001013/22/V1/21/A7K2Q9", "AI(s) our stamps never have: 22"),
    ("urn:epc:id:sgtin:893860.0300101.A7K2Q9", "not a Digital Link"),
    ("https://x.vn/shop/01/08938603001013/21/A7K2Q9", "must start with /01/"),
])
def test_links_that_name_no_stamp_of_ours_are_refused_with_the_reason(uri: str, reason: str) -> None:
    with pytest.raises(InvalidLink, match=None) as caught:
        digital_link.parse(uri)
    assert reason in str(caught.value)


def test_the_fast_reading_of_printed_links_agrees_with_biip_on_every_case(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    rng = random.Random(10)
    alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    gtins = [GTIN, "08938603001014", "00000000000000", "12345678901231", "09506000134352"]
    dates = ["270528", "270500", "270230", "270229", "280229", "271301", "270000", "991231", "490101", "760101",
             "750101", "000000", "12345", "2705281"]
    uris = []
    for _ in range(600):
        gtin = rng.choice(gtins)
        serial = "".join(rng.choice(alnum) for _ in range(rng.randint(1, 21)))
        lot = "".join(rng.choice(alnum) for _ in range(rng.randint(1, 21)))
        path = f"/01/{gtin}" + (f"/10/{lot}" if rng.random() < 0.6 else "") + f"/21/{serial}"
        query = [f"{key}={rng.choice(dates)}" for key in ("17", "11") if rng.random() < 0.5]
        uris.append(f"https://truyxuat.hue.example.vn{path}" + ("?" + "&".join(query) if query else ""))

    def read(uri: str) -> object:
        try:
            return digital_link.parse(uri)
        except InvalidLink as exc:
            return ("refused", str(exc))

    fast = [read(u) for u in uris]
    monkeypatch.setattr(digital_link, "_plain_link", lambda path, query: None)
    assert fast == [read(u) for u in uris]
    assert sum(isinstance(r, digital_link.StampLink) for r in fast) > 100  # both kinds of answer were met


def test_gs1_dates_follow_the_century_rule_and_day_00() -> None:
    today = dt.date(2026, 12, 3)
    assert digital_link.gs1_date("270528", today) == dt.date(2027, 5, 28)
    assert digital_link.gs1_date("270200", today) == dt.date(2027, 2, 28)
    assert digital_link.gs1_date("280200", today) == dt.date(2028, 2, 29)
    assert digital_link.gs1_date("760101", today) == dt.date(2076, 1, 1)  # 50 years to come
    assert digital_link.gs1_date("770101", today) == dt.date(1977, 1, 1)  # 51: the century before
    with pytest.raises(ValueError):
        digital_link.gs1_date("271301", today)


def test_an_epc_is_the_constrained_form_only() -> None:
    assert digital_link.parse_epc("https://id.gs1.org/01/08938603001013/21/A7K2Q9").serial == "A7K2Q9"
    for bad in ("https://truyxuat.hue.example.vn/01/08938603001013/21/A7K2Q9",
                "https://id.gs1.org/01/08938603001013/10/L1/21/A7K2Q9",
                "https://id.gs1.org/01/08938603001013/21/A7K2Q9?17=270528"):
        with pytest.raises(InvalidLink):
            digital_link.parse_epc(bad)


def test_the_stations_own_documents_validate_against_the_contract() -> None:
    moment = dt.datetime(2026, 11, 29, 8, 30, tzinfo=ICT)
    events = [
        station_epcis.activation_event(gtin=GTIN, serial="A7K2Q9", lot="MX2611A", expiry=dt.date(2027, 5, 28),
                                       event_time=moment, read_point="urn:epc:id:sgln:8930000.00001.0",
                                       extensions={"stn:batchId": "7"}),
        station_epcis.void_event(gtin=GTIN, serial="B2C3D4", reason="verify_mismatch", event_time=moment,
                                 read_point="urn:epc:id:sgln:8930000.00001.0"),
    ]
    doc = station_epcis.document(events, moment)
    assert epcis.validate_document(doc) == events
    assert epcis.event_ids_of(doc) == [e["eventID"] for e in events]
    assert epcis.CBV_BIZ_STEPS is station_epcis.CBV_BIZ_STEPS  # the station builds with the contract's lists
    assert epcis.CBV_DISPOSITIONS is station_epcis.CBV_DISPOSITIONS
    assert station_epcis.slow_validator is epcis.slow_validator   # one validator: the station imports the contract's


@pytest.mark.parametrize(("change", "reason"), [
    ({"bizStep": "urn:epcglobal:cbv:bizstep:commissioning"}, "write the CBV business step as its bare name"),
    ({"disposition": "activ"}, "'activ' is not a CBV 2.0 disposition"),
    ({"eventTime": "2026-02-30T08:00:00+07:00"}, "is not a 'date-time'"),
    ({"eventTimeZoneOffset": "+7"}, "eventTimeZoneOffset"),
])
def test_documents_off_the_contract_are_refused_with_the_reason(change: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidDocument) as caught:
        epcis.validate_document(document(activation("A7K2Q9") | change))
    assert reason in str(caught.value)


def test_an_event_id_twice_in_one_document_is_refused() -> None:
    event = activation("A7K2Q9")
    with pytest.raises(InvalidDocument, match="appears twice"):
        epcis.validate_document(document(event, void("A7K2Q9") | {"eventID": event["eventID"]}))
