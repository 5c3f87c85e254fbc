"""UI tests: the real screens on Qt's offscreen platform, driving the simulated line (printer, scanner, the real
central ingest) through the machine's Mosquitto, as an operator and a technician would."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")   # before anything loads Qt

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PyQt5.QtWidgets import QApplication  # noqa: E402

from station.engine import LineState  # noqa: E402
from tests.integration.line_harness import SimLine, sim_line  # noqa: E402
from tests.integration.mqtt_fixtures import broker_url  # noqa: E402,F401  (fixture)
from ui.app import MainWindow, build_window  # noqa: E402


@pytest.fixture
def line(tmp_path: Path, broker_url: str, request: pytest.FixtureRequest) -> Iterator[SimLine]:  # noqa: F811
    marker = request.node.get_closest_marker("line")
    overrides = marker.kwargs.get("overrides", {}) if marker else {}
    yield from sim_line(tmp_path, broker_url, overrides)


@pytest.fixture
def make_window(qtbot, line: SimLine) -> Iterator[Callable[..., MainWindow]]:
    """Build the station's window on the simulated line and wait until the station is ready."""
    windows: list[MainWindow] = []

    def make(language: str | None = None, start: bool = True) -> MainWindow:
        window = build_window(line.config(), language=language, snapshot_ms=200, start=start)
        # pytest-qt closes its widgets before fixtures tear down: shut the station down first, or a test that
        # failed with the line running would hang on the "the line is running, close?" question.
        qtbot.addWidget(window, before_close_func=lambda w: w.shutdown())
        window.resize(1280, 800)
        window.show()
        windows.append(window)
        if start:
            qtbot.waitUntil(lambda: window.operator._ready and window.operator.current_batch() is not None
                            or window.operator._ready and window.operator.batches == [], timeout=20_000)
        return window

    yield make
    for window in windows:
        window.shutdown()


def counter(window: MainWindow, scope: str, key: str) -> int:
    text = window.operator.counter_labels[(scope, key)].text()
    return int(text.replace(".", "")) if text not in ("", "–") else 0


def create_batch(qtbot, window: MainWindow, lot: str, planned: int = 0) -> None:
    dialog = window.operator.new_batch()
    assert dialog is not None
    dialog.lot_edit.setText(lot)
    dialog.planned_spin.setValue(planned)
    dialog.add_stage("Thu hoạch mè", "01/11/2025", "Quảng Điền")
    qtbot.mouseClick(dialog.ok_button, 1)
    qtbot.waitUntil(lambda: (b := window.operator.current_batch()) is not None and b.lot == lot, timeout=10_000)


def wait_state(qtbot, window: MainWindow, state: LineState, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: window.operator.state is state, timeout=timeout)


def layout_settled(qtbot, timeout: int = 10_000) -> None:
    """Deliver everything Qt has queued (resizes, layout requests, the shows of moved widgets) and what that queues
    in turn, until nothing is left: the layout is done. A wait on that, not on a number of milliseconds, so a
    loaded machine only takes longer; the timeout bounds a screen that never stops laying itself out."""
    app = QApplication.instance()

    def idle() -> bool:
        app.sendPostedEvents()
        app.processEvents()
        return not app.hasPendingEvents()

    qtbot.waitUntil(idle, timeout=timeout)


def next_snapshots(qtbot, window: MainWindow, count: int = 1, timeout: int = 10_000) -> None:
    """Return once the screen has shown `count` more snapshots of the line (the bridge's periodic read of it)."""
    for _ in range(count):
        with qtbot.waitSignal(window.bridge.snapshotReady, timeout=timeout):
            pass
    layout_settled(qtbot)
