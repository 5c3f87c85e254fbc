"""The real central ingest as the station's tests use it (tests/integration/central_fixtures.py), over a real broker
and a SQLite file: stores by eventID, acks after the commit, answers bad documents `rejected`, and its fault switches
(no acks, a slow commit, paused) and restarts behave as the station's tests rely on."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.errors import CentralError
from contracts.errors import ContractError
from tests.integration.central_fixtures import Central, WireStation, station  # noqa: F401  (fixture)
from tests.integration.mqtt_fixtures import (  # noqa: F401  (fixtures)
    broker_url,
    next_event,
    no_leaked_threads,
    unique,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaked_threads")]

SITE, STATION = "hue", "line-1"


def activation(serial: str, lot: str = "L2503") -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.uuid4()}",
        "eventTime": "2025-03-01T08:30:00.000+07:00",
        "eventTimeZoneOffset": "+07:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "epcList": [f"https://id.gs1.org/01/08930000000017/21/{serial}"],
        "ilmd": {"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": "2026-03-01"},
    }


def document(*events: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2025-03-01T08:30:01.000+07:00",
            "epcisBody": {"eventList": list(events)},
        }
    ).encode()


@pytest.fixture
def prefix() -> str:
    return unique("tx")


@pytest.fixture
def central(broker_url: str, prefix: str, tmp_path: Path) -> Iterator[Central]:
    with Central(broker_url, prefix, f"sqlite:///{tmp_path / 'central.db'}") as started:
        yield started


def test_document_with_two_events_is_stored_then_acked(central: Central, station: WireStation) -> None:
    first, second = activation("A7K2Q9"), activation("Z3M8P1", lot="L2504")
    central.set_delay(0.2)  # a slow commit: an ack that did not wait for it would find no row below

    assert station.publish(document(first, second)).ok
    for ack in station.acks(2):
        assert ack["status"] == "stored"
        # A separate connection sees the row, so the commit happened before the ack went out.
        assert central.stored(ack["eventID"]) is not None

    assert central.event_ids() == sorted([first["eventID"], second["eventID"]])
    assert (central.count(), central.duplicates()) == (2, 0)
    row = central.stored(second["eventID"])
    assert row is not None
    assert (row["site"], row["station"], row["action"], row["biz_step"]) == (SITE, STATION, "ADD", "commissioning")
    assert row["payload"]["ilmd"]["cbvmda:lotNumber"] == "L2504"
    assert row["epc"] == "https://id.gs1.org/01/08930000000017/21/Z3M8P1"
    assert row["event_time"] == dt.datetime(2025, 3, 1, 1, 30, tzinfo=dt.timezone.utc)
    assert row["event_time_zone_offset"] == "+07:00"
    assert row["payload"] == second


def test_resent_document_is_counted_as_duplicates_and_acked_again(central: Central, station: WireStation) -> None:
    events = (activation("A7K2Q9"), activation("Z3M8P1"))
    ids = sorted(e["eventID"] for e in events)
    station.publish(document(*events))
    assert sorted(a["eventID"] for a in station.acks(2)) == ids

    station.publish(document(*events))

    assert sorted(a["eventID"] for a in station.acks(2)) == ids
    assert (central.count(), central.duplicates()) == (2, 2)


def test_invalid_documents_are_quarantined_and_answered_rejected_never_stored(
    central: Central, station: WireStation
) -> None:
    bad_action = activation("A7K2Q9")
    bad_action["action"] = "EXPLODE"
    no_id = activation("B1")
    del no_id["eventID"]

    for payload in (b"\xff\xfe not utf-8", b"{not json", document(bad_action), document(no_id), b'{"type": "x"}'):
        station.publish(payload)
    # One `rejected` for each, in the order they came: the named eventID where the document has one, else null.
    acks = station.acks(5)
    assert [(a["eventID"], a["status"]) for a in acks] == [
        (None, "rejected"), (None, "rejected"), (bad_action["eventID"], "rejected"), (None, "rejected"),
        (None, "rejected")]
    reasons = [r["reason"] for r in central.rejected()]
    assert reasons == [a["reason"] for a in acks]
    assert reasons[0].startswith("the payload is not JSON")
    assert reasons[1].startswith("the payload is not JSON")
    assert "'EXPLODE' is not one of" in reasons[2]
    assert "eventID" in reasons[3]
    assert reasons[4] == "the payload is not an EPCISDocument"
    assert central.rejected()[1]["document"] == "{not json"
    assert central.count() == 0

    good = activation("C2")  # and the worker is still consuming
    station.publish(document(good))
    assert station.acks(1) == [{"eventID": good["eventID"], "status": "stored"}]


def test_set_ack_false_stores_but_stops_acks(central: Central, station: WireStation) -> None:
    central.set_ack(False)
    silent = activation("S1")
    station.publish(document(silent))
    assert wait_until(lambda: central.count() == 1)

    central.set_ack(True)
    marker = activation("S2")
    station.publish(document(marker))
    # The first ack heard is the marker's: none went out for the event stored before it, with acks off.
    assert station.acks(1) == [{"eventID": marker["eventID"], "status": "stored"}]
    station.publish(document(silent))  # the station resends what was never acked
    assert station.acks(1) == [{"eventID": silent["eventID"], "status": "stored"}]
    assert central.duplicates() == 1


def test_pause_stops_consuming_until_resume(central: Central, station: WireStation) -> None:
    central.pause()
    event = activation("P1")
    station.publish(document(event))
    assert wait_until(lambda: central.held == 1)   # taken from the broker and held: not stored, not acked
    assert central.count() == 0 and central.stats.events_stored == 0

    central.resume()
    assert station.acks(1) == [{"eventID": event["eventID"], "status": "stored"}]


def test_message_taken_but_not_stored_is_redelivered_after_restart(central: Central, station: WireStation) -> None:
    # The worker sends its PUBACK only after its commit, so a message it held when it stopped comes back.
    central.pause()
    event = activation("R1")
    station.publish(document(event))
    assert wait_until(lambda: central.held == 1)   # the worker holds it, not stored and not acknowledged
    central.stop()
    central.resume()

    central.start()
    assert station.acks(1) == [{"eventID": event["eventID"], "status": "stored"}]
    assert (central.count(), central.duplicates()) == (1, 0)


def test_events_published_while_stopped_arrive_after_restart(
    broker_url: str, prefix: str, station: WireStation, tmp_path: Path
) -> None:
    sim = Central(broker_url, prefix, f"sqlite:///{tmp_path / 'c.db'}")
    try:
        sim.start()
        sim.stop()
        assert not sim.connected
        events = [activation(f"OFF{n}") for n in range(3)]
        for event in events:
            # The broker holds the stopped worker's session, so someone is subscribed: 0x00, not 0x10.
            assert station.publish(document(event)).reason_code == 0

        sim.start()
        assert sorted(a["eventID"] for a in station.acks(3)) == sorted(e["eventID"] for e in events)
        assert sim.count() == 3
    finally:
        sim.close()


def test_share_group_splits_events_between_consumers(
    broker_url: str, prefix: str, station: WireStation, tmp_path: Path
) -> None:
    group = unique("ingest")
    sims = [Central(broker_url, prefix, f"sqlite:///{tmp_path / f'{n}.db'}", client_id=unique(f"ingest{n}"),
                    group=group) for n in range(2)]
    try:
        for sim in sims:
            sim.start()
        assert sims[0].settings.subscription == f"$share/{group}/{prefix}/+/+/events"
        events = [activation(f"SH{n}") for n in range(10)]
        for event in events:
            station.publish(document(event))
        station.acks(10)
        assert sorted(sims[0].event_ids() + sims[1].event_ids()) == sorted(e["eventID"] for e in events)
        assert sims[0].count() > 0 and sims[1].count() > 0  # Mosquitto's default is round robin
    finally:
        for sim in sims:
            sim.close()


def test_an_in_memory_database_and_a_bad_prefix_are_refused(broker_url: str, tmp_path: Path) -> None:
    # The stand-in took `sqlite://`; the real ingest needs a database other connections see (the page, the tests).
    with pytest.raises(CentralError, match="in-memory SQLite"):
        Central(broker_url, unique("tx"), "sqlite://")
    with pytest.raises(ContractError, match="prefix"):
        Central(broker_url, "a/+", f"sqlite:///{tmp_path / 'c.db'}")
