"""A first start: the demo opens ready to press Start (today's batch chosen), and wherever Start is disabled the
screen says what is missing, beside it (on the simulated line, Qt offscreen)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from station.engine import LineState
from tests.integration.line_harness import SimLine
from tests.ui.conftest import counter, create_batch, wait_state
from ui.app import MainWindow, build_window


@pytest.fixture
def open_window(qtbot, line: SimLine) -> Iterator[Callable[..., MainWindow]]:
    """The window on the simulated line, built as `station run` and `station demo` build it, not yet ready."""
    windows: list[MainWindow] = []

    def make(**open_batch: object) -> MainWindow:
        window = build_window(line.config(), language="vi", snapshot_ms=200, start=False)
        if open_batch:
            window.operator.open_batch_when_ready(**open_batch)
        qtbot.addWidget(window, before_close_func=lambda w: w.shutdown())
        window.resize(1280, 800)
        window.show()
        window.start()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()


def test_the_demo_opens_with_todays_batch_chosen_and_start_enabled(qtbot, open_window, line: SimLine) -> None:
    window = open_window(gtin=None, lot=None)
    screen = window.operator
    qtbot.waitUntil(lambda: screen.start_button.isEnabled(), timeout=20_000)
    today = dt.date.today().strftime("L%y%m%d")
    assert screen.current_batch() is not None and screen.current_batch().lot == today
    assert screen.current_product() is not None and screen.current_product().gtin == screen.products[0].gtin
    assert screen.state_reason.text() == "" and screen.start_button.toolTip() == ""
    rows = line.query("SELECT lot, expiry_date IS NOT NULL FROM batches")
    assert rows == [(today, 1)]                    # created as `station run --headless` creates it


def test_a_first_start_without_a_batch_says_to_choose_or_create_one(qtbot, open_window) -> None:
    window = open_window()
    screen = window.operator
    # while the station starts, Start says so
    assert not screen.start_button.isEnabled()
    assert screen.state_reason.text() == "Đang khởi động trạm…"
    qtbot.waitUntil(lambda: screen._ready and screen.batches == [], timeout=20_000)
    qtbot.waitUntil(lambda: screen.state_reason.text() != "Đang khởi động trạm…")
    assert not screen.start_button.isEnabled()
    assert screen.state_reason.text() == "Chọn hoặc tạo lô (Tạo lô mới)"
    assert screen.state_reason.isVisible()
    assert screen.start_button.toolTip() == screen.state_reason.text()
    create_batch(qtbot, window, "MX2611FIRST")
    assert screen.start_button.isEnabled() and screen.state_reason.text() == ""


def test_a_printer_that_is_not_ready_holds_start_back_and_says_why(qtbot, open_window, line: SimLine) -> None:
    window = open_window(gtin=None, lot="MX2611PRN")
    screen = window.operator
    qtbot.waitUntil(lambda: screen.start_button.isEnabled(), timeout=20_000)
    line.printer.paper_out = True
    qtbot.waitUntil(lambda: not screen.start_button.isEnabled(), timeout=10_000)
    assert screen.state_reason.text().startswith("Máy in chưa sẵn sàng: lỗi: ")
    assert screen.start_button.toolTip() == screen.state_reason.text()
    line.printer.paper_out = False
    qtbot.waitUntil(lambda: screen.start_button.isEnabled(), timeout=10_000)
    assert screen.state_reason.text() == ""


def test_a_locked_batch_holds_start_back_with_its_reason(qtbot, open_window, line: SimLine) -> None:
    window = open_window(gtin=None, lot="MX2611LCK")
    screen = window.operator
    qtbot.waitUntil(lambda: screen.start_button.isEnabled(), timeout=20_000)
    batch = screen.current_batch()
    window.bridge.call(lambda st: st.store.lock_batch(batch.id, "kiểm tra độ ẩm", actor="qa"),
                       done=lambda _: screen.reload_batches(screen.current_product(), batch.id))
    qtbot.waitUntil(lambda: not screen.start_button.isEnabled(), timeout=10_000)
    assert screen.state_reason.text() == "Lô MX2611LCK đang bị khóa: kiểm tra độ ẩm"


def test_start_requested_runs_the_demo_batch_by_itself(qtbot, open_window, line: SimLine) -> None:
    window = open_window(gtin=None, lot="MX2611AUTO", count=4, start=True)
    screen = window.operator
    wait_state(qtbot, window, LineState.RUNNING, 20_000)
    assert screen.count_spin.value() == 4
    qtbot.waitUntil(lambda: counter(window, "batch", "activated") == 4, timeout=60_000)
    wait_state(qtbot, window, LineState.STOPPED)
    # pressed once: the finished run is not started again, Start waits for the operator
    assert screen._autostart_batch is None
    qtbot.waitUntil(screen.start_button.isEnabled)
    assert screen.state is LineState.STOPPED
