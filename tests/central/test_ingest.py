"""`central ingest` on the machine's Mosquitto and a real PostgreSQL: stored once, acked after the commit."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from central.ingest import IngestSettings, IngestWorker
from tests.central.conftest import (
    FakeStation,
    activation,
    document,
    payload,
    query,
    void,
)
from tests.integration.mqtt_fixtures import unique
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def settings(broker_url: str, prefix: str, pg_url: str, **options: object) -> IngestSettings:
    return IngestSettings(db=pg_url, broker=broker_url, prefix=prefix, group=unique("ingest"),
                          client_id=unique("central"), session_expiry_s=0, **options)  # type: ignore[arg-type]


@pytest.fixture
def worker(broker_url: str, prefix: str, pg_url: str) -> Iterator[IngestWorker]:
    with IngestWorker(settings(broker_url, prefix, pg_url)) as started:
        yield started


def test_an_activation_is_stored_and_acked_only_after_its_commit(
    worker: IngestWorker, station: FakeStation, pg_url: str
) -> None:
    event = activation("A7K2Q9")
    url = make_url(pg_url)
    # A transaction of the test's own holds the stamps table: the worker's batch cannot commit until it ends.
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database) as blocker:
        blocker.execute("LOCK TABLE stamps IN ACCESS EXCLUSIVE MODE")
        station.publish(payload(event))
        # The worker has the message and waits for the lock inside its transaction: only now does watching for an
        # ack that must not come mean anything (one sent before the commit would already be on its way).
        assert wait_until(lambda: query(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                                "current_database() AND wait_event_type = 'Lock'") == [(1,)])
        station.no_ack()
        assert query(pg_url, "SELECT count(*) FROM events") == [(0,)]
        blocker.rollback()

    assert station.take_acks(1) == [{"eventID": event["eventID"], "status": "stored"}]
    rows = query(pg_url, "SELECT event_id, site, station, action, biz_step, epc, payload FROM events")
    assert rows == [(event["eventID"], "hue-01", station.station, "ADD", "commissioning", event["epcList"][0], event)]
    stamp = query(pg_url, "SELECT gtin, serial, lot, expiry::text, batch_id, activated_station, voided_at, "
                          "activation_event_id, to_char(activated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), "
                          "activated_offset FROM stamps")
    assert stamp == [("08938603001013", "A7K2Q9", "MX2611A", "2027-05-28", "7", station.station, None,
                      event["eventID"], "2026-11-29 01:30", "+07:00")]


def test_a_duplicate_is_acked_again_and_stored_once(worker: IngestWorker, station: FakeStation, pg_url: str) -> None:
    first, second = activation("A7K2Q9"), activation("Z3M8P1")
    body = payload(first, second)
    station.publish(body)
    assert {a["eventID"] for a in station.take_acks(2)} == {first["eventID"], second["eventID"]}
    station.publish(body)  # the outbox resends: same eventIDs
    station.publish(payload(second))
    again = station.take_acks(3)
    assert sorted(a["eventID"] for a in again) == sorted([first["eventID"], second["eventID"], second["eventID"]])
    assert {a["status"] for a in again} == {"stored"}
    assert query(pg_url, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(2, 2)]
    assert query(pg_url, "SELECT count(*) FROM stamps") == [(2,)]


def test_an_invalid_document_is_quarantined_and_rejected_with_the_reason(
    worker: IngestWorker, station: FakeStation, pg_url: str
) -> None:
    bad = activation("A7K2Q9") | {"bizStep": "comissioning"}
    good = activation("Z3M8P1")
    body = payload(bad, good)
    station.publish(body)
    acks = station.take_acks(2)
    # One bad event refuses the whole document (it is one message, stored whole or not at all).
    assert {a["eventID"] for a in acks} == {bad["eventID"], good["eventID"]}
    for ack in acks:
        assert ack["status"] == "rejected"
        assert ack["reason"] == ("$.epcisBody.eventList[0].bizStep: 'comissioning' is not a CBV 2.0 business step "
                                 "nor the URI of a vocabulary of our own")
    assert query(pg_url, "SELECT count(*) FROM events") == [(0,)]
    rows = query(pg_url, "SELECT topic, site, station, reason, event_ids, document FROM quarantine")
    assert len(rows) == 1
    topic, site, station_name, reason, event_ids, kept = rows[0]
    assert (topic, site, station_name, reason) == (station.events_topic, "hue-01", station.station, acks[0]["reason"])
    assert sorted(event_ids) == sorted([bad["eventID"], good["eventID"]])
    assert kept == body.decode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe not json", "the payload is not JSON"),
        (b"[1, 2]", "the payload is not an EPCISDocument"),
        (json.dumps(document()).encode(), "epcisBody.eventList is missing or empty"),
        (payload(activation("A1") | {"action": "REMOVE"}), "schema: $.epcisBody.eventList[0].action: 'REMOVE' is not"),
        (payload(activation("A1") | {"eventID": "42"}), "schema: $.epcisBody.eventList[0].eventID: '42' is not a 'uri'"),
        (payload(activation("A1") | {"eventID": "urn:x:1"}), "$.epcisBody.eventList[0].eventID: 'urn:x:1' is not a urn:uuid:"),
        (payload(activation("A1", lot="L\u0000")), "a NUL character"),
        (payload(activation("A1", lot="L" * 21)), "lot 'LLLLLLLLLLLLLLLLLLLLL'… is longer than 20 characters"),
    ],
    ids=["not-utf8", "not-a-document", "no-events", "schema", "event-id-not-uri", "event-id-not-uuid", "nul", "long-lot"],
)
def test_every_kind_of_bad_message_is_kept_and_answered(
    worker: IngestWorker, station: FakeStation, pg_url: str, body: bytes, reason: str
) -> None:
    station.publish(body)
    (ack,) = station.take_acks(1)
    assert ack["status"] == "rejected"
    assert reason in ack["reason"], ack["reason"]
    assert query(pg_url, "SELECT count(*) FROM quarantine") == [(1,)]
    assert query(pg_url, "SELECT count(*) FROM events") == [(0,)]


def test_a_void_that_overtakes_its_activation_still_leaves_the_stamp_voided(
    worker: IngestWorker, station: FakeStation, pg_url: str
) -> None:
    cancelled, kept = void("A7K2Q9", "verify_mismatch"), activation("A7K2Q9")
    station.publish(payload(cancelled))
    station.take_acks(1)
    station.publish(payload(kept))
    station.take_acks(1)
    assert query(pg_url, "SELECT lot, activation_event_id, void_event_id, void_reason FROM stamps") == [
        ("MX2611A", kept["eventID"], cancelled["eventID"], "verify_mismatch")
    ]


def test_two_workers_share_the_subscription_each_storing_part_and_together_all_once(
    broker_url: str, prefix: str, pg_url: str, station: FakeStation
) -> None:
    common = settings(broker_url, prefix, pg_url, batch_size=20)
    events = [activation(f"S{i:05d}") for i in range(300)]
    with IngestWorker(common, index=0) as one, IngestWorker(common.__class__(**{**common.__dict__,
                                                             "client_id": unique("central")}), index=1) as two:
        for i in range(0, len(events), 2):
            station.publish(payload(*events[i:i + 2]))
        # and every message a second time, as an outbox resending after a lost ack would
        for i in range(0, len(events), 2):
            station.publish(payload(*events[i:i + 2]))
        acks = station.take_acks(2 * len(events))
    assert all(a["status"] == "stored" for a in acks)
    assert sorted(a["eventID"] for a in acks) == sorted(2 * [e["eventID"] for e in events])
    assert one.stats.messages > 0 and two.stats.messages > 0
    assert one.stats.messages + two.stats.messages == len(events)
    assert query(pg_url, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(300, 300)]
    assert query(pg_url, "SELECT count(*) FROM stamps WHERE activated_at IS NOT NULL") == [(300,)]
    with pytest.raises(queue.Empty):
        station.acks.get(timeout=0.2)


def test_a_document_the_database_refuses_is_quarantined_and_the_rest_of_its_batch_stored(
    worker: IngestWorker, station: FakeStation, pg_url: str
) -> None:
    # Valid by the contract, refused by the database: a product (standard EPCIS header master data) whose
    # producer was never sent breaks the foreign key.
    refused = document(activation("A7K2Q9")) | {"epcisHeader": {"epcisMasterData": {"vocabularyList": [
        {"type": "urn:epcglobal:epcis:vtype:EPCClass", "vocabularyElementList": [
            {"id": "https://id.gs1.org/01/08938603001013", "attributes": [
                {"id": "urn:epcglobal:cbv:mda#descriptionShort", "attribute": "Mè xừng"},
                {"id": "https://ns.packing-station.example/epcis/producer", "attribute": "nobody"}]}]}]}}}
    good = activation("Z3M8P1")
    station.publish(json.dumps(refused).encode())
    station.publish(payload(good))
    acks = {a["eventID"]: a for a in station.take_acks(2)}
    refused_id = refused["epcisBody"]["eventList"][0]["eventID"]
    assert acks[good["eventID"]] == {"eventID": good["eventID"], "status": "stored"}
    assert acks[refused_id]["status"] == "rejected"
    assert acks[refused_id]["reason"].startswith("the database refused it:")
    assert "foreign key" in acks[refused_id]["reason"]
    assert query(pg_url, "SELECT event_id FROM events") == [(good["eventID"],)]
    assert query(pg_url, "SELECT event_ids, site FROM quarantine") == [([refused_id], "hue-01")]


def test_the_fault_switches_the_stations_tests_use(worker: IngestWorker, station: FakeStation, pg_url: str) -> None:
    worker.set_ack(False)
    silent = activation("A7K2Q9")
    station.publish(payload(silent))
    assert wait_until(lambda: query(pg_url, "SELECT count(*) FROM events") == [(1,)])
    station.no_ack()  # stored, never answered
    worker.set_ack(True)
    worker.pause()
    held = activation("Z3M8P1")
    station.publish(payload(held))
    station.no_ack()
    assert query(pg_url, "SELECT count(*) FROM events") == [(1,)]  # paused: not stored either
    worker.set_delay(0.3)
    worker.resume()
    assert station.take_acks(1) == [{"eventID": held["eventID"], "status": "stored"}]
