"""The pre-printed line under a babbling scanner (issue 9 #10): reads are bounded in its inbox, handled a bounded
number per turn, and a flood is alarmed once; the noise is recorded, not rejected or alarmed line by line, and the
real stamps among it are still activated."""

from __future__ import annotations

import time
from pathlib import Path

from station.domain import RefusalReason
from station.line.events import AlarmRaised, LineState
from station.ports import VerificationRead
from station.preprinted import CodeRefused, PreprintedLine
from station.rolls import CodeRules, parse_manifest
from tests.unit.line_fakes import GTIN, IDENTITY, FakeGate, make_store

RULES = CodeRules(shapes=(("hue", r"HUE\d{7}"),))


def read(text: str | None, refused: str | None = None) -> VerificationRead:
    return VerificationRead(text, (text or "").encode(), time.monotonic(), refused=refused)


def test_a_burst_of_100000_scanner_lines_is_bounded_recorded_and_alarmed_once(tmp_path: Path) -> None:
    store, batch = make_store(tmp_path)
    manifest = tmp_path / "R1.yaml"
    manifest.write_text(f'version: 1\nroll: R1\nproduct: "{GTIN}"\nissuer: test\n'
                        'sequence:\n  pattern: "HUE{n:07d}"\n  first: 1\n  last: 10\n', encoding="utf-8")
    store.register_roll(parse_manifest(manifest, RULES, products=[GTIN]))
    gate = FakeGate()
    line = PreprintedLine(store, IDENTITY, RULES, reject_gate=gate)
    events: list[object] = []
    line.add_listener(events.append)
    try:
        line.start(batch.id)  # type: ignore[arg-type]
        line.submit_read(read("HUE0000001"))            # a real stamp before the flood
        assert line.drain(10) and line.summary.activated == 1
        line.pause()                                    # the noise then comes to a stopped line, the worst case
        for i in range(100_000):
            line.submit_read(read(f"NOISE-{i}") if i % 7 else read(None, refused="not_text"))
        assert line.reads_queued <= line.max_queued_reads == 1000
        line.resume()
        line.submit_read(read("HUE0000002"))            # dropped: more than 1000 were waiting
        assert line.drain(30)
        alarms = [e.alarm.code for e in events if isinstance(e, AlarmRaised)]
        assert alarms.count("scanner_flood") == 1
        # Every read is on record: each one queued as its own refusal, those not queued counted in one row a turn.
        rows = store.refusals(limit=200_000)
        dropped = [r for r in rows if r.code is None and "reads not queued" in r.detail]
        assert dropped and all(r.reason is RefusalReason.UNREADABLE for r in dropped)
        not_queued = sum(int(r.detail.split()[0]) for r in dropped)
        handled = [r for r in rows if r not in dropped]
        second = 1 if line.summary.activated == 1 else 0   # HUE0000002: dropped, or queued and refused/activated
        assert len(handled) + not_queued == 100_000 + second, (len(handled), not_queued)
        assert not_queued >= 90_000
        # Only the reads before the flood was known (fewer than its 20 a window) were rejected and alarmed each.
        assert len(gate.rejected) < 20 and alarms.count("code_line_not_running") < 20
        assert len([e for e in events if isinstance(e, CodeRefused)]) < 20
        # The flood over, the line goes on with the next stamp.
        activated = line.summary.activated
        line.submit_read(read("HUE0000003"))
        assert line.drain(10) and line.summary.activated == activated + 1
        assert line.state is LineState.RUNNING
    finally:
        line.stop()
        line.wait(10)
        store.close()
