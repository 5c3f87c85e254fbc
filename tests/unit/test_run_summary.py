"""The run's summary says this run's figures, and what became of the items that had to leave the line: pushed off by
the reject gate where there is one, to be taken off by hand where there is none (issue 9 #15)."""

from __future__ import annotations

from collections import Counter

from station.engine import RunSummary
from station.preprinted import PreprintedSummary


def summary(**kwargs) -> RunSummary:  # type: ignore[no-untyped-def]
    return RunSummary(batch_lot="MX2611A", requested=20, printed=22, verified=20, activated=20,
                      voided=Counter(no_read=2), rejected=2, sent=22, confirmed=21, pending=1, started_at=100.0,
                      finished_at=160.0, **kwargs)


def test_with_a_reject_gate_the_summary_says_it_fired_and_every_figure_is_this_runs() -> None:
    assert summary(reject_gate=True).lines() == [
        "run of batch MX2611A (figures of this run only): requested 20",
        "printed 22, verified 20, activated 20",
        "voided 2 (no_read 2); reject gate fired 2",
        "events of this run: sent 22, confirmed by the server 21, waiting 1",
        "rate 20 items/min",
    ]


def test_a_gate_that_could_not_fire_names_the_items_to_take_off_by_hand() -> None:
    assert summary(reject_gate=True, reject_failed=1).lines()[2] == \
        "voided 2 (no_read 2); reject gate fired 1, could not fire for 1 item: take them off by hand"


def test_without_a_reject_gate_the_summary_says_how_many_items_to_take_off_by_hand() -> None:
    lines = summary(reject_gate=False).lines()
    assert lines[2] == "voided 2 (no_read 2); 2 items to take off the line by hand (no reject gate)"
    assert not any("reject gate fired" in line for line in lines)


def test_with_nothing_to_take_off_the_summary_says_nothing_of_it() -> None:
    for gate in (True, False):
        quiet = RunSummary(batch_lot="MX2611A", requested=None, printed=5, verified=5, activated=5, sent=5,
                           confirmed=5, reject_gate=gate)
        assert quiet.lines()[:3] == ["run of batch MX2611A (figures of this run only): requested until stopped",
                                     "printed 5, verified 5, activated 5", "voided 0 (none)"]


def test_the_pre_printed_summary_says_the_same() -> None:
    pre = PreprintedSummary(batch_lot="MX2612P", requested=3, activated=3, refused=Counter(not_in_roll=1), rejected=1,
                            sent=3, confirmed=3, reject_gate=False, stopped_by="code_not_in_roll",
                            stop_alarm="[code_not_in_roll] …")
    lines = pre.lines()
    assert lines[:4] == [
        "run of batch MX2612P, pre-printed stamps (figures of this run only): requested 3",
        "activated 3; refused 1 (not_in_roll 1); 1 item to take off the line by hand (no reject gate)",
        "product barcodes checked 0",
        "events of this run: sent 3, confirmed by the server 3, waiting 0",
    ]
    assert lines[-1] == "the run ended on the alarm [code_not_in_roll] …"
