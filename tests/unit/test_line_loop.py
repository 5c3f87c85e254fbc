"""The loop both lines run: when a group commit is due, and the pre-printed line turned by hand with begin() / step()
/ finish() on a clock moved by hand, as the printed line is in test_line_engine.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.line.events import LineState, RunFinished, StampDecided
from station.line.loop import COMMIT_MAX_RECORDS, COMMIT_MAX_STAMPS, GroupCommit
from station.ports import VerificationRead
from station.preprinted import CodeRefused, PreprintedLine, PreprintedSettings
from station.rolls import CodeRules, parse_manifest
from tests.unit.line_fakes import GTIN, IDENTITY, FakeClock, FakeGate, make_store

RULES = CodeRules(shapes=(("hue", r"HUE\d{7}"),))


def test_a_group_is_due_once_its_oldest_decision_has_waited_the_interval() -> None:
    clock = FakeClock()
    group = GroupCommit(clock, interval_s=0.5)
    assert not group.pending and not group.due(clock(), 0, 0) and group.time_left(clock()) is None
    group.mark()
    clock.advance(0.25)
    group.mark()                                   # a later decision does not restart the interval
    assert group.pending and not group.due(clock(), 2, 0)
    assert group.time_left(clock()) == 0.25
    clock.advance(0.25)
    assert group.due(clock(), 2, 0)
    group.taken()
    assert not group.pending and not group.due(clock(), 2, 0)


def test_a_group_is_due_at_once_when_it_holds_the_most_stamps_or_records() -> None:
    clock = FakeClock()
    group = GroupCommit(clock, interval_s=10.0)
    assert (group.max_stamps, group.max_records) == (COMMIT_MAX_STAMPS, COMMIT_MAX_RECORDS) == (256, 1024)
    group.mark()
    assert not group.due(clock(), 255, 1023)
    assert group.due(clock(), 256, 0) and group.due(clock(), 0, 1024)
    small = GroupCommit(clock, interval_s=10.0, max_stamps=2)
    small.mark()
    assert small.due(clock(), 2, 0)


class Preprinted:
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        self.store, self.batch = make_store(tmp_path)
        manifest = tmp_path / "R1.yaml"
        manifest.write_text(f'version: 1\nroll: R1\nproduct: "{GTIN}"\nissuer: test\n'
                            'sequence:\n  pattern: "HUE{n:07d}"\n  first: 1\n  last: 10\n', encoding="utf-8")
        self.store.register_roll(parse_manifest(manifest, RULES, products=[GTIN]))
        self.clock = FakeClock()
        self.gate = FakeGate()
        self.line = PreprintedLine(self.store, IDENTITY, RULES, PreprintedSettings(**settings),  # type: ignore[arg-type]
                                   reject_gate=self.gate, clock=self.clock)
        self.events: list[object] = []
        self.line.add_listener(self.events.append)

    def read(self, text: str) -> None:
        self.line.submit_read(VerificationRead(text, text.encode(), self.clock()))

    def decided(self) -> list[str]:
        return [e.stamp.serial for e in self.events if isinstance(e, StampDecided)]


@pytest.fixture
def pre(tmp_path: Path) -> Iterator[Preprinted]:
    p = Preprinted(tmp_path, stop_on_refusal=False, commit_interval_s=0.25)   # a refused stamp is rejected, and the line goes on
    try:
        yield p
    finally:
        if p.line._stepper is not None:
            p.line._stepper.close()
        p.store.close()


def test_a_stepped_preprinted_line_commits_when_the_interval_is_up(pre: Preprinted) -> None:
    pre.line.begin(pre.batch.id, 2)  # type: ignore[arg-type]
    assert pre.line.state is LineState.RUNNING
    pre.read("HUE0000001")
    assert pre.line.step()
    assert pre.decided() == [] and pre.line.commits == 0          # decided, waiting for its group
    pre.clock.advance(0.25)
    assert pre.line.step()
    assert pre.decided() == ["HUE0000001"] and pre.line.commits == 1
    pre.read("HUE0000001")                                        # read twice: refused, never activated twice
    pre.read("HUE0000002")
    assert pre.line.step()
    refused = [e.refusal.reason.value for e in pre.events if isinstance(e, CodeRefused)]
    assert refused == ["already_activated"] and pre.gate.rejected == [None]
    pre.clock.advance(0.25)
    assert not pre.line.step()                                    # two activated: the run is over
    assert pre.decided() == ["HUE0000001", "HUE0000002"]
    finished = [e for e in pre.events if isinstance(e, RunFinished)]
    assert len(finished) == 1 and finished[0].summary.activated == 2 and pre.line.state is LineState.STOPPED


def test_finish_ends_a_stepped_preprinted_run_and_writes_what_was_decided(pre: Preprinted) -> None:
    pre.line.begin(pre.batch.id)  # type: ignore[arg-type]
    pre.read("HUE0000003")
    pre.line.step()
    pre.line.finish()
    assert pre.decided() == ["HUE0000003"]
    assert pre.line.summary.stopped_by == "operator" and pre.line.state is LineState.STOPPED
    with pytest.raises(RuntimeError, match="no run begun"):
        pre.line.step()
