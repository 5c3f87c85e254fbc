"""Pre-printed stamp rolls end to end: rolls registered from manifests, stamps read through the scanner simulator's
pty, products checked through a second scanner, activations published to the machine's Mosquitto and stored by the
real central ingest; each fault refused with its reason, nothing else disturbed, the reconciliation exact."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.runtime import RunOptions, Station
from simulators.scanner import ScannerSimulator
from station.domain import CodeState, RefusalReason, RollState
from station.line.events import AlarmRaised, LineState
from station.line.stamp_events import batch_hold_event
from station.preprinted import CodeRefused, PreprintedLine
from station.rolls import CodeRules, parse_manifest, reconcile, write_report
from tests.integration.line_harness import SimLine, sim_line
from tests.integration.mqtt_fixtures import broker_url, wait_until  # noqa: F401  (fixtures)

MX = "08938603001013"          # mè xừng: the batch's product
NM = "08938603002027"          # nước mắm: another product
LOT = "MX2612P"


def code(n: int, prefix: str = "HUE") -> str:
    return f"{prefix}{n:07d}"


def write_roll(folder: Path, roll: str, product: str, first: int, last: int, pattern: str = "HUE{n:07d}") -> Path:
    path = folder / f"{roll}.yaml"
    path.write_text(f'version: 1\nroll: {roll}\nproduct: "{product}"\nissuer: Sở KH&CN Thừa Thiên Huế\n'
                    f'sequence:\n  pattern: "{pattern}"\n  first: {first}\n  last: {last}\n', encoding="utf-8")
    return path


class Run:
    """A station in pre-printed mode on the simulated line, with a product scanner and a roll feeder."""

    def __init__(self, line: SimLine, product_scanner: ScannerSimulator) -> None:
        self.line = line
        self.product_scanner = product_scanner
        self.station = Station(line.config(), RunOptions(auto_resume=True))
        self.pre: PreprintedLine = self.station.enable_preprinted()
        self.refused: list[RefusalReason] = []
        self.alarms: list[str] = []
        self.pre.add_listener(self._watch)
        self.station.start()  # starts the product scanner too
        assert self.station.product_scanner is not None
        self.rules = CodeRules.from_config(self.station.config.preprinted)

    def _watch(self, event: object) -> None:
        if isinstance(event, CodeRefused):
            self.refused.append(event.refusal.reason)
        elif isinstance(event, AlarmRaised):
            self.alarms.append(event.alarm.code)

    def register(self, manifest: Path) -> None:
        self.station.store.register_roll(parse_manifest(manifest, self.rules,
                                                        products=[p.gtin for p in self.station.products]))

    def start(self, lot: str = LOT) -> int:
        batch = self.station.open_batch(self.station.product(MX), lot)
        self.pre.start(batch.id)  # type: ignore[arg-type]
        return batch.id  # type: ignore[return-value]

    def decided(self) -> int:
        return self.pre.summary.activated + self.pre.summary.refused_total

    def feed(self, codes: Sequence[str]) -> None:
        """The roll feeder: each item passes the scanner with its stamp, in roll order, as the line would; returns
        once every one is decided and committed."""
        before = self.decided()
        for text in codes:
            self.line.scanner.inject(text)
        assert wait_until(lambda: self.decided() >= before + len(codes), 10), (self.decided(), before, codes)
        assert self.pre.drain(5)

    def stop(self) -> None:
        if self.pre.state is not LineState.STOPPED:
            self.pre.stop()
            assert self.pre.wait(10)
        self.station.stop()

    def delivered(self) -> list[dict]:
        assert self.station.relay.wait_drained(30), self.station.store.outbox_counts()
        outbox = {row[0] for row in self.line.query("SELECT event_id FROM outbox")}
        assert set(self.line.central.event_ids()) == outbox
        return self.line.central_events()


@pytest.fixture
def run(tmp_path: Path, broker_url: str, request: pytest.FixtureRequest) -> Iterator[Run]:  # noqa: F811
    marker = request.node.get_closest_marker("line")
    overrides = {"preprinted.on_refusal": "warn",
                 "preprinted.code_shapes": [{"name": "hue-provincial", "regex": "HUE[0-9]{7}"}], **(marker.kwargs.get("overrides", {}) if marker else {})}
    product_link = tmp_path / "product-scanner"
    overrides["preprinted.product_scanner_url"] = f"serial://{product_link}"
    product_scanner = ScannerSimulator(link=str(product_link), symbologies=("EAN13",)).start()
    try:
        for line in sim_line(tmp_path, broker_url, overrides):
            r = Run(line, product_scanner)
            try:
                yield r
            finally:
                r.stop()
    finally:
        product_scanner.stop()


def statuses(report) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[int]] = {}
    for c in report.codes:
        out.setdefault(report.status(c), []).append(c.seq)
    return out


def test_a_roll_with_a_missing_code_activates_the_rest_and_reports_the_gap(run: Run, tmp_path: Path) -> None:
    run.register(write_roll(tmp_path, "HUE-MX-A", MX, 1, 12))
    run.start()
    run.feed([code(n) for n in (1, 2, 3, 5, 6, 7)])    # the stamp with n=4 fell off the roll
    assert run.pre.summary.activated == 6 and run.refused == []
    report = reconcile(run.station.store, "HUE-MX-A")
    assert statuses(report) == {"activated": [1, 2, 3, 5, 6, 7], "skipped": [4], "unused": [8, 9, 10, 11, 12]}
    assert [(g.first_code, g.last_code, g.skipped, g.voided) for g in report.gaps] == [
        (code(4), code(4), 1, 0)]
    events = run.delivered()
    added = [e["payload"] for e in events if e["biz_step"] == "commissioning"]
    assert len(added) == 6
    # An opaque code is published under the programme's namespace, with the batch's GTIN and lot.
    epcs = sorted(e["epcList"][0] for e in added)
    assert epcs[0] == "https://truyxuat.hue.example.vn/tem/HUE0000001"
    assert {e["stn:gtin"] for e in added} == {MX}
    assert {e["ilmd"]["cbvmda:lotNumber"] for e in added} == {LOT}
    assert {e["stn:roll"] for e in added} == {"HUE-MX-A"}
    assert run.line.central.rejected() == []
    # The CSV a producer hands over says the same, one row per code.
    csv_path, md_path, html_path = write_report(report, tmp_path / "out")
    rows = csv_path.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("roll,product,seq,code,status")
    assert rows[4] == f"HUE-MX-A,{MX},4,{code(4)},skipped,,,,,"
    assert "HUE0000004" in md_path.read_text(encoding="utf-8") and "<table>" in html_path.read_text(encoding="utf-8")


def test_a_foreign_code_is_refused_and_nothing_else_is_disturbed(run: Run, tmp_path: Path) -> None:
    run.register(write_roll(tmp_path, "HUE-MX-B", MX, 1, 5))
    batch_id = run.start()
    run.feed([code(1), code(2), "HUE7777777", code(3)])
    assert run.refused == [RefusalReason.NOT_IN_ROLL]
    assert run.pre.summary.activated == 3 and run.pre.summary.rejected == 1
    assert "code_not_in_roll" in run.alarms
    rows = run.line.query("SELECT reason, code, batch_id, roll_pk FROM refusals")
    assert rows == [("not_in_roll", "HUE7777777", batch_id, None)]
    report = reconcile(run.station.store, "HUE-MX-B")
    assert statuses(report) == {"activated": [1, 2, 3], "unused": [4, 5]} and report.gaps == []
    assert sum(1 for e in run.delivered() if e["biz_step"] == "commissioning") == 3


def test_a_duplicate_is_refused_whether_read_twice_or_after_a_restart(run: Run, tmp_path: Path) -> None:
    run.register(write_roll(tmp_path, "HUE-MX-C", MX, 1, 6))
    run.start()
    run.feed([code(1), code(2), code(2), code(3)])          # the camera read stamp 2 twice
    assert run.refused == [RefusalReason.ALREADY_ACTIVATED]
    assert run.pre.summary.activated == 3
    run.pre.stop()
    assert run.pre.wait(10)
    # A new run on the same database (a restart): the database remembers what was activated.
    run.pre.start(run.station.store.find_batch(MX, LOT).id)  # type: ignore[union-attr]
    run.feed([code(3), code(4)])
    assert run.refused == [RefusalReason.ALREADY_ACTIVATED] * 2
    report = reconcile(run.station.store, "HUE-MX-C")
    assert statuses(report) == {"activated": [1, 2, 3, 4], "unused": [5, 6]}
    assert report.refused_by_reason == {"already_activated": 2}
    assert len(run.line.query("SELECT code FROM code_activations")) == 4
    events = run.delivered()
    assert sorted(e["payload"]["stn:stampCode"] for e in events if e["biz_step"] == "commissioning") == \
        [code(n) for n in (1, 2, 3, 4)]


def test_a_code_from_a_roll_for_another_product_is_refused(run: Run, tmp_path: Path) -> None:
    run.register(write_roll(tmp_path, "HUE-MX-D", MX, 1, 4))
    run.register(write_roll(tmp_path, "HUE-NM-D", NM, 101, 104))
    run.start()
    run.feed([code(1), code(102), code(2)])
    assert run.refused == [RefusalReason.WRONG_PRODUCT]
    assert statuses(reconcile(run.station.store, "HUE-MX-D")) == {"activated": [1, 2], "unused": [3, 4]}
    other = reconcile(run.station.store, "HUE-NM-D")
    assert statuses(other) == {"unused": [101, 102, 103, 104]}
    assert other.refused_by_reason == {"wrong_product": 1}


def test_a_locked_batch_refuses_every_stamp_until_unlocked(run: Run, tmp_path: Path) -> None:
    run.register(write_roll(tmp_path, "HUE-MX-E", MX, 1, 6))
    batch_id = run.start()
    run.feed([code(1), code(2)])
    store, identity = run.station.store, run.station.identity
    batch = store.batch(batch_id)
    store.lock_batch(batch_id, "quality hold: seal test failed",
                     event=batch_hold_event(batch, "quality hold: seal test failed", identity, locked=True))
    assert store.batch(batch_id).locked and store.batch_lock_reason(batch_id) == "quality hold: seal test failed"
    # The first stamp into the locked batch stops the line (refused when read, or at its commit if the line had
    # not looked at the batch again yet: the store checks the lock in the transaction); the next item passes a
    # stopped line.
    run.feed([code(3)])
    run.feed([code(4)])
    assert run.refused == [RefusalReason.BATCH_LOCKED, RefusalReason.LINE_NOT_RUNNING]
    assert run.pre.state is LineState.FAULT and "batch_locked" in run.alarms
    run.pre.resume()                                           # refused: still locked, and said again
    assert wait_until(lambda: run.alarms.count("batch_locked") >= 2, 5)
    assert run.pre.state is LineState.FAULT
    store.unlock_batch(batch_id, "re-tested, seal fine",
                       event=batch_hold_event(store.batch(batch_id), "re-tested", identity, locked=False))
    run.pre.resume()
    assert wait_until(lambda: run.pre.state is LineState.RUNNING, 5)
    run.feed([code(3), code(4)])
    report = reconcile(store, "HUE-MX-E")
    assert statuses(report) == {"activated": [1, 2, 3, 4], "unused": [5, 6]}
    actions = [a.action for a in store.audit_log()]
    assert "batch_locked" in actions and "batch_unlocked" in actions
    holds = sorted((e["payload"] for e in run.delivered() if "stn:batchLock" in e["payload"]), key=lambda h: h["eventTime"])
    assert [(h["bizStep"], h["disposition"], h["stn:batchLock"]["locked"]) for h in holds] == [
        ("holding", "non_sellable_other", True), ("inspecting", "active", False)]


def test_a_wrong_product_barcode_stops_the_line(run: Run, tmp_path: Path) -> None:
    run.register(write_roll(tmp_path, "HUE-MX-F", MX, 1, 5))
    batch_id = run.start()
    run.product_scanner.inject(MX[1:])                         # the right EAN-13: nothing happens
    run.feed([code(1)])
    assert wait_until(lambda: run.pre.summary.product_checked == 1, 5)
    run.product_scanner.inject(NM[1:])                         # nước mắm on the mè xừng line
    assert wait_until(lambda: run.pre.state is LineState.FAULT, 5)
    assert run.refused == [RefusalReason.PRODUCT_MISMATCH] and "product_mismatch" in run.alarms
    run.feed([code(2)])
    assert run.refused[-1] is RefusalReason.LINE_NOT_RUNNING
    rows = run.line.query("SELECT reason, code, batch_id, source FROM refusals ORDER BY id")
    assert rows[0] == ("product_mismatch", NM[1:], batch_id, "product")
    run.pre.resume()
    assert wait_until(lambda: run.pre.state is LineState.RUNNING, 5)
    run.feed([code(2)])
    assert statuses(reconcile(run.station.store, "HUE-MX-F")) == {"activated": [1, 2], "unused": [3, 4, 5]}


@pytest.mark.line(overrides={"preprinted.on_refusal": "stop"})
def test_with_the_stop_policy_a_foreign_stamp_stops_the_line_until_resumed(run: Run, tmp_path: Path) -> None:
    run.register(write_roll(tmp_path, "HUE-MX-G", MX, 1, 5))
    run.start()
    run.feed([code(1), "HUE0000099"])
    assert run.pre.state is LineState.FAULT
    run.pre.resume()
    assert wait_until(lambda: run.pre.state is LineState.RUNNING, 5)
    run.feed([code(2)])
    assert run.refused == [RefusalReason.NOT_IN_ROLL] and run.pre.summary.activated == 2


def test_a_digital_link_roll_a_voided_code_and_a_locked_roll(run: Run, tmp_path: Path) -> None:
    template = "https://truyxuat.hue.example.vn/01/" + MX + "/21/{serial}"
    manifest = tmp_path / "dl.yaml"
    manifest.write_text(f'roll: DL-MX-H\nproduct: "{MX}"\nsequence:\n  pattern: "{template}"\n'
                        f'  serial: "MX{{n:05d}}"\n  first: 1\n  last: 6\n', encoding="utf-8")
    run.register(manifest)
    run.register(write_roll(tmp_path, "HUE-MX-H", MX, 1, 3))
    link = lambda n: template.replace("{serial}", f"MX{n:05d}")  # noqa: E731
    run.station.store.void_code(link(3), "torn stamp")
    run.station.store.set_roll_state("HUE-MX-H", RollState.LOCKED,
                                     "roll found opened")
    run.start()
    run.feed([link(1), link(2), link(3), code(1), link(4)])
    assert run.refused == [RefusalReason.CODE_VOIDED, RefusalReason.ROLL_LOCKED]
    report = reconcile(run.station.store, "DL-MX-H")
    assert statuses(report) == {"activated": [1, 2, 4], "voided": [3], "unused": [5, 6]}
    assert [(g.first_seq, g.last_seq, g.skipped, g.voided) for g in report.gaps] == [(3, 3, 0, 1)]
    assert report.voided_by_reason == {"operator": 1}
    added = sorted(e["payload"]["epcList"][0] for e in run.delivered() if e["biz_step"] == "commissioning")
    assert added == [f"https://id.gs1.org/01/{MX}/21/MX{n:05d}" for n in (1, 2, 4)]
    codes = {c.seq: c.state for c in run.station.store.roll_codes(run.station.store.roll("HUE-MX-H").pk)}
    assert codes == {1: CodeState.UNUSED, 2: CodeState.UNUSED, 3: CodeState.UNUSED}
