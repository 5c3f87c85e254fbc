"""The operator's "Stamp rolls" panel: the selected product's pre-printed rolls with their counts, read on the
worker from a real SQLite store with a roll registered from a manifest; hidden for a product without rolls, one
summary line on the smallest panel, and the screen still fits each panel with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QWidget

from station.domain import RefusalReason
from station.rolls import CodeRules, parse_manifest
from station.store import Refusal
from tests.integration.line_harness import SimLine
from tests.integration.test_preprinted_line import MX, NM, code, write_roll
from tests.ui.conftest import counter, create_batch, layout_settled, next_snapshots, wait_state
from station.engine import LineState
from tests.ui.test_screen_sizes import EDGES, SIZES, assert_fits, assert_on_screen, essentials, longest_stop_alarm, \
    show_at
from ui.adaptive import Density
from ui.app import MainWindow

# The provincial stamps of the roll tests (HUE0000001…), accepted as pre-printed codes.
pytestmark = pytest.mark.line(
    overrides={"preprinted.code_shapes": [{"name": "hue-provincial", "regex": "HUE[0-9]{7}"}]})

def register(window: MainWindow, manifest: Path) -> None:
    """Register a roll through the running station's store, on the worker's db lane (as the line would)."""
    station = window.bridge.station
    assert station is not None
    rules = CodeRules.from_config(station.config.preprinted)

    def job() -> None:
        products = [p.gtin for p in station.store.products()]
        station.store.register_roll(parse_manifest(manifest, rules, products=products,
                                                   max_codes=station.config.preprinted.max_roll_codes))

    window.bridge.worker.call_and_wait(job)


def on_db(window: MainWindow, fn) -> object:
    station = window.bridge.station
    return window.bridge.worker.call_and_wait(lambda: fn(station.store))


def row(window: MainWindow, index: int = 0) -> list[str]:
    table = window.operator.rolls_table
    return [table.item(index, c).text() if table.item(index, c) else "" for c in range(table.columnCount())]


def test_the_rolls_of_the_selected_product_are_listed_with_their_counts(qtbot, make_window, line: SimLine,
                                                                        tmp_path: Path) -> None:
    window = make_window(language="vi")
    op = window.operator
    assert op.current_product() is not None and op.current_product().gtin == MX
    next_snapshots(qtbot, window)
    assert op.rolls_box.isHidden()                       # no rolls registered: no panel
    register(window, write_roll(tmp_path, "R-UI-1", MX, 1, 20))
    register(window, write_roll(tmp_path, "R-UI-NM", NM, 901, 905, pattern="HUE{n:07d}"))
    qtbot.waitUntil(lambda: op.rolls_box.isVisible() and op.rolls_table.rowCount() == 1, timeout=10_000)
    assert op.rolls_caption.text() == "Cuộn tem"
    assert row(window) == ["R-UI-1", "đang dùng", "0", "20", "0", "0"]
    # a damaged stamp voided, a read of the roll refused: the panel follows
    on_db(window, lambda store: store.void_code(code(3), "rách", actor="test"))
    pk = on_db(window, lambda store: store.roll("R-UI-1").pk)
    on_db(window, lambda store: store.record_refusals(
        [Refusal(reason=RefusalReason.ROLL_LOCKED, code=code(4), roll_pk=pk, detail="test")]))
    qtbot.waitUntil(lambda: row(window) == ["R-UI-1", "đang dùng", "0", "19", "1", "1"], timeout=10_000)
    # another product: its own rolls only; a product with none hides the panel
    op.product_combo.setCurrentIndex(1)
    assert op.current_product().gtin == NM
    qtbot.waitUntil(lambda: op.rolls_table.rowCount() == 1 and row(window)[0] == "R-UI-NM", timeout=10_000)
    op.product_combo.setCurrentIndex(2)
    qtbot.waitUntil(op.rolls_box.isHidden, timeout=10_000)


def test_the_panel_reads_in_english_too(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window(language="en")
    op = window.operator
    register(window, write_roll(tmp_path, "R-UI-EN", MX, 1, 10))
    qtbot.waitUntil(lambda: op.rolls_box.isVisible() and op.rolls_table.rowCount() == 1, timeout=10_000)
    assert op.rolls_caption.text() == "Stamp rolls"
    assert row(window) == ["R-UI-EN", "in use", "0", "10", "0", "0"]
    assert op.rolls_table.horizontalHeaderItem(3).text() == "Unused"


@pytest.mark.parametrize("size, density", SIZES)
def test_the_screen_with_rolls_fits_each_panel(qtbot, make_window, tmp_path: Path, size, density) -> None:
    window = make_window(language="vi")
    op = window.operator
    for n in range(1, 6):          # more rolls than the table shows at once: it scrolls, the screen does not grow
        register(window, write_roll(tmp_path, f"R-FIT-{n}", MX, 100 * n, 100 * n + 49))
    show_at(qtbot, window, size, density)
    qtbot.waitUntil(lambda: op.rolls_box.isVisible() and len(op.rolls) == 5, timeout=10_000)
    layout_settled(qtbot)
    assert_fits(window, size)
    shown: dict[str, QWidget] = dict(essentials(window))
    if density is not Density.LARGE:
        assert op.rolls_table.isHidden() and op.rolls_caption.isHidden()
        shown["rolls summary"] = op.rolls_summary
        assert op.rolls_summary.text().startswith("Cuộn tem 5:")
        # the whole line (if it is cut) and each roll are a tap away, in its tooltip
        tip = op.rolls_summary.toolTip()
        assert all(f"R-FIT-{n} (đang dùng): đã kích hoạt 0, chưa dùng 50" in tip for n in range(1, 6)), tip
        if op.rolls_summary.is_elided():
            assert op.rolls_summary.shown_text().endswith("…") and tip.startswith(op.rolls_summary.text())
    else:
        assert op.rolls_summary.isHidden()
        shown["rolls table"] = op.rolls_table
        assert op.rolls_table.rowCount() == 5
    assert_on_screen(window, shown)


@pytest.mark.parametrize("size, density", SIZES + EDGES)
def test_a_stop_alarm_with_rolls_keeps_the_essentials_in_sight(qtbot, make_window, tmp_path: Path, size,
                                                               density) -> None:
    """The rolls panel gives way (a one-row table, a summary line) before the banner and the commands do."""
    window = make_window(language="vi")
    op = window.operator
    for n in range(1, 4):
        register(window, write_roll(tmp_path, f"R-ALM-{n}", MX, 100 * n, 100 * n + 9))
    show_at(qtbot, window, size, density)
    qtbot.waitUntil(lambda: op.rolls_box.isVisible() and len(op.rolls) == 3, timeout=10_000)
    window.bridge.snapshotReady.disconnect(op.show_snapshot)      # the stopped line's snapshot would undo FAULT
    alarm = longest_stop_alarm()
    window.bridge.alarmRaised.emit(alarm)
    window.bridge.stateChanged.emit(LineState.FAULT.value, alarm.code)
    qtbot.waitUntil(op.alarm_banner.isVisible)
    layout_settled(qtbot)
    assert_fits(window, size)
    rolls = op.rolls_summary if density is not Density.LARGE else op.rolls_table
    assert_on_screen(window, essentials(window) | {"alarm": op.alarm_text, "ack": op.ack_button, "rolls": rolls})


def test_start_runs_the_pre_printed_line_when_the_mode_says_so(qtbot, make_window, line: SimLine,
                                                               tmp_path: Path) -> None:
    """Pre-printed mode from the screen: the station is built again as `station run --mode preprinted` builds it,
    Start activates the roll's stamps as they pass the verification scanner, and the panel counts them."""
    window = make_window(language="vi")
    op = window.operator
    assert op.mode_combo.currentText() == "In tem tại đây" and window.bridge.mode == "printed"
    op.mode_combo.setCurrentIndex(op.mode_combo.findData("preprinted"))
    assert not op.start_button.isEnabled()                 # while the station is built again
    qtbot.waitUntil(lambda: op._ready and window.bridge.station is not None
                    and window.bridge.station.preprinted is not None, timeout=20_000)
    assert window.bridge.station.line is window.bridge.station.preprinted
    assert op.mode_combo.currentText() == "Cuộn tem in sẵn"
    register(window, write_roll(tmp_path, "R-UI-RUN", MX, 1, 20))
    create_batch(qtbot, window, "MX2612UIP")
    op.count_spin.setValue(5)
    qtbot.mouseClick(op.start_button, Qt.LeftButton)
    wait_state(qtbot, window, LineState.RUNNING, 10_000)
    assert not op.mode_combo.isEnabled()                   # no switching while the line runs
    for n in range(1, 6):   # one stamp after the other past the scanner, each activated before the next comes
        line.scanner.inject(code(n))
        qtbot.waitUntil(lambda: counter(window, "batch", "activated") == n, timeout=20_000)
    wait_state(qtbot, window, LineState.STOPPED)
    qtbot.waitUntil(lambda: row(window)[:4] == ["R-UI-RUN", "đang dùng", "5", "15"], timeout=10_000)
    rows = line.query("SELECT state FROM roll_codes WHERE code = 'HUE0000001'")
    assert rows == [("activated",)]
    # and back to printing: the printed line again
    op.mode_combo.setCurrentIndex(op.mode_combo.findData("printed"))
    qtbot.waitUntil(lambda: op._ready and window.bridge.station is not None
                    and window.bridge.station.preprinted is None, timeout=20_000)
