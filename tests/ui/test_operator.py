"""The operator's screen on the simulated line: create a batch, run it, watch the counters; pull the paper."""

from __future__ import annotations

import json
import threading

import pytest
from PyQt5.QtCore import Qt

from simulators.printer import PrintedLabel
from station.engine import LineState
from tests.integration.line_harness import SimLine
from tests.ui.conftest import counter, create_batch, wait_state


def test_a_batch_runs_from_the_screen_and_the_counters_move(qtbot, make_window, line: SimLine) -> None:
    window = make_window()
    screen = window.operator
    create_batch(qtbot, window, "MX2611UI", planned=25)
    assert screen.count_spin.value() == 25          # the planned quantity is the run's default
    assert screen.start_button.isEnabled()
    qtbot.mouseClick(screen.start_button, Qt.LeftButton)
    wait_state(qtbot, window, LineState.RUNNING, 10_000)
    qtbot.waitUntil(lambda: 0 < counter(window, "batch", "activated") < 25, timeout=20_000)   # moving
    qtbot.waitUntil(lambda: counter(window, "batch", "activated") == 25, timeout=60_000)
    wait_state(qtbot, window, LineState.STOPPED)
    assert counter(window, "batch", "printed") == 25 + counter(window, "batch", "voided")
    assert counter(window, "batch", "verified") == 25
    assert counter(window, "shift", "activated") >= 25
    qtbot.waitUntil(lambda: counter(window, "batch", "confirmed") >= 25, timeout=30_000)
    assert counter(window, "batch", "waiting") == 0
    # the last stamp is drawn with its serial and lot; the recent list shows deliveries
    qtbot.waitUntil(lambda: screen.qr.content_modules > 0 and "MX2611UI" in screen.last_lot.text())
    assert screen._last_stamp_serial in screen.last_serial.text()
    assert screen.recent.rowCount() > 0
    assert screen.lamps["printer"].level == "ok" and screen.lamps["scanner"].level == "ok"
    assert screen.lamps["broker"].level == "ok"
    # The batch had its stages written with it.
    rows = line.query("SELECT lot, planned_quantity, stages FROM batches WHERE lot = 'MX2611UI'")
    assert rows and rows[0][1] == 25 and json.loads(rows[0][2])[0]["name"] == "Thu hoạch mè"


class Belt:
    """Between the printer and the verification scanner: the test decides which printed labels reach the scanner
    and when, and can hold the printer's print thread after a label, so the labels sent after it wait in the
    printer's buffer. Which stamps are printed, read or still in the printer when the paper runs out is then set
    by the test, not by how fast the machine is."""

    def __init__(self, line: SimLine, hold: set[int], stop_after: int) -> None:
        self.line = line
        self.hold = hold                 # printer label indexes kept from the scanner until deliver()
        self.stop_after = stop_after     # the print thread waits after printing this label until release()
        self.held: dict[int, PrintedLabel] = {}
        self.stopped = threading.Event()
        self.released = threading.Event()
        line.printer.remove_listener(line.scanner.on_label)
        line.printer.add_listener(self.on_label)

    def on_label(self, label: PrintedLabel) -> None:   # on the printer's print thread
        if label.index in self.hold:
            self.held[label.index] = label
        else:
            self.line.scanner.on_label(label)
        if label.index == self.stop_after:
            self.stopped.set()
            self.released.wait(60)

    def deliver(self, index: int) -> None:
        self.line.scanner.on_label(self.held.pop(index))

    def release(self) -> None:
        self.released.set()


def hs_polls(line: SimLine) -> int:
    return sum(1 for c in list(line.printer.controls_seen) if c == "~HS")


@pytest.mark.line(overrides={"line.print_ahead": 3, "line.verify_timeout_s": 30})
def test_paper_out_shows_the_alarm_and_voids_only_the_stamps_still_in_the_printer(
        qtbot, make_window, line: SimLine) -> None:
    # Labels 0-2 are read at once. Label 3 is printed and not yet read; label 4 is printed and then the printer
    # holds (its print thread waits), so label 5 stays in its buffer; the window of 3 is full, nothing more is
    # sent. Then the paper runs out. The README's rule: the formats the printer held at its last ~HS answer
    # (label 5), every label sent since (none) and the one under the head (label 4) are voided with reason
    # printer_fault and cancelled (~JA); the older stamp in flight (label 3) was printed and goes on to
    # verification.
    belt = Belt(line, hold={3, 4}, stop_after=4)
    window = make_window()
    screen = window.operator
    try:
        create_batch(qtbot, window, "MX2611PAPER")
        screen.count_spin.setValue(0)                    # until stopped
        qtbot.mouseClick(screen.start_button, Qt.LeftButton)
        qtbot.waitUntil(belt.stopped.is_set, timeout=20_000)
        qtbot.waitUntil(lambda: counter(window, "batch", "activated") == 3 and line.printer.queued == 1,
                        timeout=20_000)
        polls = hs_polls(line)
        qtbot.waitUntil(lambda: hs_polls(line) >= polls + 2, timeout=10_000)  # one ~HS answered with label 5 held
        line.printer.paper_out = True
        belt.release()                                   # the print thread now waits for paper
        wait_state(qtbot, window, LineState.FAULT)
        qtbot.waitUntil(screen.alarm_banner.isVisible)
        assert "Hết giấy in — thay cuộn tem rồi bấm Tiếp tục" in screen.alarm_text.text()
        assert "Out of labels" in screen.alarm_second.text()
        assert screen.state_tile.text() == "LỖI"
        assert screen.pause_button.text() == "Tiếp tục"
        qtbot.waitUntil(lambda: screen.lamps["printer"].level == "bad")
        qtbot.waitUntil(lambda: line.printer.cancelled_count == 1, timeout=10_000)   # ~JA: label 5
        qtbot.waitUntil(lambda: counter(window, "batch", "voided") == 2, timeout=10_000)
        belt.deliver(3)                                  # label 3 reaches the scanner while the line is stopped
        qtbot.waitUntil(lambda: counter(window, "batch", "activated") == 4, timeout=20_000)
        qtbot.mouseClick(screen.ack_button, Qt.LeftButton)
        assert not screen.alarm_banner.isVisible()
        line.printer.paper_out = False
        qtbot.waitUntil(lambda: screen.lamps["printer"].level == "ok", timeout=10_000)
        qtbot.mouseClick(screen.pause_button, Qt.LeftButton)       # Resume
        wait_state(qtbot, window, LineState.RUNNING)
        qtbot.waitUntil(lambda: counter(window, "batch", "activated") >= 7, timeout=20_000)
        qtbot.mouseClick(screen.stop_button, Qt.LeftButton)
        wait_state(qtbot, window, LineState.STOPPED)
    finally:
        belt.release()
    printed = [label.qr_data[0] for label in line.printer.labels]
    stamps = {uri: (state, reason) for uri, state, reason in
              line.query("SELECT uri, state, void_reason FROM stamps WHERE state IN ('activated', 'voided')")}
    faulted = {uri for uri, (state, reason) in stamps.items() if reason == "printer_fault"}
    (cancelled,) = line.printer.cancelled
    in_buffer = [uri for uri in stamps if uri.rsplit("/21/", 1)[1].split("?")[0].encode() in cancelled]
    assert len(in_buffer) == 1 and in_buffer[0] not in printed        # label 5: cancelled, never printed
    assert faulted == {printed[4], in_buffer[0]}                       # voided: under the head, and in the buffer
    assert stamps[printed[3]] == ("activated", None)                   # printed before: verified after the fault
    assert all(stamps[uri] == ("activated", None) for uri in printed[:4] + printed[5:])
    assert len(set(printed)) == len(printed)                           # no serial printed twice: none reused
    assert counter(window, "batch", "voided") == 2


def test_a_bad_lot_is_refused_in_the_batch_dialog(qtbot, make_window) -> None:
    window = make_window()
    dialog = window.operator.new_batch()
    dialog.lot_edit.setText("LÔ 1")
    qtbot.mouseClick(dialog.ok_button, Qt.LeftButton)
    assert "lot" in dialog.error_label.text() and dialog.isVisible()
    dialog.lot_edit.setText("MX1")
    dialog.expiry_typed.setChecked(True)
    dialog.expiry_edit.setDate(dialog.produced_edit.date().addDays(-1))
    qtbot.mouseClick(dialog.ok_button, Qt.LeftButton)
    assert dialog.isVisible() and dialog.error_label.text()
    dialog.reject()


def test_the_batch_dialog_refuses_a_lot_whose_stamp_qr_would_not_fit(qtbot, make_window, line: SimLine) -> None:
    window = make_window(language="vi")
    dialog = window.operator.new_batch()
    dialog.lot_edit.setText("%" * 20)       # a legal GS1 lot: 60 characters once percent-encoded in the link
    qtbot.mouseClick(dialog.ok_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "phiên bản 8" in dialog.error_label.text(), timeout=10_000)
    text = dialog.error_label.text()
    assert "Lô " + "%" * 20 in text and "137 ký tự" in text and "tối đa phiên bản 7 (122 ký tự)" in text
    assert "needs QR version 8" in dialog.error_label.toolTip()     # the station's own words, in English
    assert dialog.isVisible() and dialog.ok_button.isEnabled()
    assert line.query("SELECT count(*) FROM batches WHERE lot = ?", "%" * 20) == [(0,)]
    dialog.lot_edit.setText("A%B%C%D%E%F%GHIJKLMN")   # fits the QR area: created
    qtbot.mouseClick(dialog.ok_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: (b := window.operator.current_batch()) is not None and b.lot == "A%B%C%D%E%F%GHIJKLMN",
                    timeout=10_000)


@pytest.mark.parametrize("language, start_text, stopped", [("vi", "Bắt đầu", "ĐÃ DỪNG"), ("en", "Start", "STOPPED")])
def test_the_screens_speak_the_configured_language(qtbot, make_window, language, start_text, stopped) -> None:
    window = make_window(language=language, start=False)
    assert window.operator.start_button.text() == start_text
    assert window.operator.state_tile.text() == stopped


def test_the_gui_thread_never_touches_the_store(qtbot, make_window, monkeypatch) -> None:
    """Every database call of the screens runs on the bridge's worker, never on the GUI thread."""
    from station.store.database import Database

    main = threading.main_thread()
    on_gui_thread: list[str] = []
    for name in ("read", "run"):   # every read, every write waited for
        original = getattr(Database, name)

        def wrapped(self, fn, _original=original, _name=name):
            if threading.current_thread() is main:
                on_gui_thread.append(_name)
            return _original(self, fn)

        monkeypatch.setattr(Database, name, wrapped)
    window = make_window()
    create_batch(qtbot, window, "MX2611THREAD", planned=10)
    qtbot.mouseClick(window.operator.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: counter(window, "batch", "activated") == 10, timeout=60_000)
    wait_state(qtbot, window, LineState.STOPPED)
    window.show_technician()
    window.technician.submit_pin("0000")
    qtbot.waitUntil(lambda: window.technician.logged_in, timeout=10_000)
    window.technician.refresh_audit()
    qtbot.waitUntil(lambda: window.technician.audit_table.rowCount() > 0, timeout=10_000)
    assert on_gui_thread == []


def test_the_recent_stamps_show_while_the_line_runs(qtbot, make_window, line: SimLine) -> None:
    """Serials are reserved ahead a block at a time; the recent list shows the decided stamps, not those."""
    window = make_window()
    screen = window.operator
    create_batch(qtbot, window, "MX2611RECENT")
    screen.count_spin.setValue(0)                    # until stopped
    qtbot.mouseClick(screen.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: counter(window, "batch", "activated") >= 40, timeout=30_000)
    shown: list[int] = []
    window.bridge.snapshotReady.connect(lambda _: shown.append(screen.recent.rowCount()))
    qtbot.waitUntil(lambda: len(shown) >= 8, timeout=10_000)        # every snapshot of the run, not one lucky one
    assert screen.state is LineState.RUNNING
    assert min(shown) >= 10, shown
    serials = {screen.recent.item(row, 0).text() for row in range(screen.recent.rowCount())}
    decided = {s for s, in line.query("SELECT serial FROM stamps WHERE state IN ('activated', 'voided')")}
    assert serials <= decided
    qtbot.mouseClick(screen.stop_button, Qt.LeftButton)
    wait_state(qtbot, window, LineState.STOPPED)


def test_a_closed_batch_leaves_the_list_and_the_audit_log_says_so(qtbot, make_window, line: SimLine) -> None:
    window = make_window()
    screen = window.operator
    create_batch(qtbot, window, "MX2611CL")
    batch, product = screen.current_batch(), screen.current_product()
    assert batch is not None and product is not None
    screen.confirm_close_batch(batch, product)       # what Yes in the confirmation box does
    qtbot.waitUntil(lambda: all(b.lot != "MX2611CL" for b in screen.batches), timeout=10_000)
    assert line.query("SELECT closed_at IS NOT NULL FROM batches WHERE lot = 'MX2611CL'") == [(1,)]
    assert ("batch_closed", f"{batch.gtin} lot MX2611CL (batch {batch.id})") in line.query(
        "SELECT action, detail FROM audit_log")
