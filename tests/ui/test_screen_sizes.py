"""The screens on the panels a station is built with: 1280×800, a 1024×600 HDMI panel and the Raspberry Pi's 7"
display (800×480), in Vietnamese. At each size the window fits, the operator's essentials are on screen, whole and
big enough for a finger, and no state word is cut.

Real widgets on Qt's offscreen platform, driven through the same signals the line uses.
"""

from __future__ import annotations

import pytest
from PyQt5.QtCore import QPoint, QRect, QSize, Qt
from PyQt5.QtWidgets import QLabel, QPushButton, QWidget

from station.alarms import CATALOGUE, Alarm, Severity
from station.engine import LineState
from ui.adaptive import LARGE_FROM, MEDIUM_FROM, Density, ElidedLabel, density_for, text_fits
from tests.ui.conftest import layout_settled
from ui.app import MainWindow

SIZES = [
    pytest.param((1280, 800), Density.LARGE, id="1280x800"),
    pytest.param((1024, 600), Density.MEDIUM, id="1024x600"),
    pytest.param((800, 480), Density.SMALL, id="800x480"),
]
# The ends of the medium density's range: its layout must hold there too (the large one starts at 1280×800).
EDGES = [
    pytest.param(MEDIUM_FROM, Density.MEDIUM, id="medium-from"),
    pytest.param((LARGE_FROM[0] - 1, LARGE_FROM[1] - 1), Density.MEDIUM, id="below-large"),
]
TOUCH = 40   # px: the smallest touch target we accept for a command


def longest_stop_alarm() -> Alarm:
    """The stop alarm with the longest Vietnamese text: the banner's worst case."""
    code = max((c for c, (severity, _) in CATALOGUE.items() if severity is Severity.STOP),
               key=lambda c: len(CATALOGUE[c][1].vi))
    return Alarm.raise_(code)


def show_at(qtbot, window: MainWindow, size: tuple[int, int], density: Density) -> None:
    """Resize the window as a kiosk's full screen would, and check it took that size and the density for it."""
    window.resize(*size)
    layout_settled(qtbot)
    assert window.size() == QSize(*size), f"asked for {size}, the window is {window.width()}×{window.height()}"
    assert window.density is density


def rect_in_window(window: QWidget, widget: QWidget) -> QRect:
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


def assert_fits(window: MainWindow, size: tuple[int, int]) -> None:
    limit = QSize(*size)
    assert window.minimumSize().boundedTo(limit) == window.minimumSize(), window.minimumSize()
    hint = window.minimumSizeHint()
    assert hint.width() <= limit.width() and hint.height() <= limit.height(), \
        f"the window needs {hint.width()}×{hint.height()} on a {limit.width()}×{limit.height()} screen"
    page = window.pages.currentWidget()
    needed = page.minimumSizeHint()
    assert needed.width() <= page.width() and needed.height() <= page.height(), \
        f"{page.objectName()} needs {needed.width()}×{needed.height()}, has {page.width()}×{page.height()}"


def assert_on_screen(window: MainWindow, widgets: dict[str, QWidget]) -> None:
    """Each widget is shown, has a size, lies inside the window and is not clipped by a parent."""
    for name, widget in widgets.items():
        assert widget.isVisible(), f"{name} is hidden"
        assert widget.width() > 0 and widget.height() > 0, f"{name} has no size"
        rect = rect_in_window(window, widget)
        assert window.rect().contains(rect), f"{name} at {rect.getRect()} is outside {window.rect().getRect()}"
        shown = widget.visibleRegion().boundingRect()
        assert shown.size() == widget.size(), f"{name} is clipped to {shown.getRect()} of {widget.size()}"
        assert widget.height() >= widget.minimumSizeHint().height(), f"{name} is squeezed to {widget.height()} px"


def assert_no_overlap(window: MainWindow, widgets: dict[str, QWidget]) -> None:
    rects = {name: rect_in_window(window, widget) for name, widget in widgets.items()}
    names = sorted(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rects[a].intersects(rects[b]), f"{a} {rects[a].getRect()} overlaps {b} {rects[b].getRect()}"


def assert_whole_or_tooltip(label: QLabel, name: str) -> None:
    """A label shows its whole text, or elides it and carries the whole text as its tooltip."""
    if isinstance(label, ElidedLabel) and label.is_elided():
        assert label.shown_text().endswith("…") and label.toolTip() == label.text(), name
    else:
        assert text_fits(label), f"{name}: {label.text()!r} needs {label.sizeHint().width()} px, has {label.width()}"


def essentials(window: MainWindow) -> dict[str, QWidget]:
    op = window.operator
    found: dict[str, QWidget] = {
        "state": op.state_tile, "start": op.start_button, "pause": op.pause_button, "stop": op.stop_button,
        "product": op.product_combo, "batch": op.batch_combo, "technician": op.technician_button,
        "last serial": op.last_serial, "last result": op.last_result, "last lot": op.last_lot,
        "batch heading": op.batch_heading, "shift heading": op.shift_heading,
    }
    for (scope, key), label in op.counter_labels.items():
        found[f"counter {scope} {key}"] = label
    for index, label in enumerate(op.counter_names):
        found[f"counter name {index}"] = label
    return found


@pytest.mark.parametrize("size, density", SIZES)
def test_the_operator_screen_fits_each_panel(qtbot, make_window, size, density) -> None:
    window = make_window(language="vi")
    op = window.operator
    show_at(qtbot, window, size, density)
    assert_fits(window, size)
    assert_on_screen(window, essentials(window))
    assert_no_overlap(window, essentials(window))
    for button in (op.start_button, op.pause_button, op.stop_button, op.new_batch_button, op.close_batch_button,
                   op.technician_button):
        assert button.height() >= TOUCH, f"{button.text()!r} is {button.height()} px high"
        assert button.width() >= button.sizeHint().width() - 1, f"{button.text()!r} is cut"
    assert op.product_combo.height() >= TOUCH and op.batch_combo.height() >= TOUCH
    for combo in (op.product_combo, op.batch_combo):   # a long name is elided, and whole in the tooltip
        combo.repaint()
        assert combo.shown_text() == combo.currentText() or (
            combo.shown_text().endswith("…") and combo.toolTip() == combo.currentText()), combo.currentText()
    # every state, in Vietnamese, whole in its tile
    for state in LineState:
        window.bridge.stateChanged.emit(state.value, "")
        assert op.state_tile.text() and text_fits(op.state_tile), \
            f"{op.state_tile.text()!r} is cut in a {op.state_tile.width()} px tile"
        assert op.state_tile.minimumSizeHint().width() <= op.state_tile.width()
    window.bridge.stateChanged.emit(LineState.STOPPED.value, "")
    assert op.state_tile.text() == "ĐÃ DỪNG"
    for name, label in essentials(window).items():
        if isinstance(label, QLabel):
            assert_whole_or_tooltip(label, name)


@pytest.mark.parametrize("size, density", SIZES + EDGES)
def test_a_stop_alarm_keeps_the_essentials_in_sight(qtbot, make_window, size, density) -> None:
    """The longest stop alarm, with a warning after it, while the line is in fault: the banner, its acknowledge
    button, the state and the commands and the counters are all on screen at once, nothing to scroll."""
    window = make_window(language="vi")
    op = window.operator
    show_at(qtbot, window, size, density)
    window.bridge.snapshotReady.disconnect(op.show_snapshot)      # the stopped line's snapshot would undo FAULT
    alarm = longest_stop_alarm()
    window.bridge.alarmRaised.emit(alarm)
    window.bridge.alarmRaised.emit(Alarm.raise_("verification_failed"))
    window.bridge.stateChanged.emit(LineState.FAULT.value, alarm.code)
    qtbot.waitUntil(op.alarm_banner.isVisible)
    layout_settled(qtbot)
    assert op.state_tile.text() == "LỖI" and op.pause_button.text() == "Tiếp tục"
    assert_fits(window, size)
    shown = essentials(window) | {"alarm": op.alarm_text, "alarm (English)": op.alarm_second, "ack": op.ack_button}
    assert_on_screen(window, shown)
    # the banner (with its texts and button inside it) overlaps nothing else
    assert_no_overlap(window, {k: v for k, v in shown.items() if k not in ("alarm", "alarm (English)", "ack")}
                      | {"banner": op.alarm_banner})
    assert op.ack_button.height() >= TOUCH
    # The Vietnamese alarm is shown whole (wrapped), the English line whole or elided with a tooltip.
    assert alarm.text.vi in op.alarm_text.text()
    assert op.alarm_text.heightForWidth(op.alarm_text.width()) <= op.alarm_text.height()
    assert_whole_or_tooltip(op.alarm_second, "alarm (English)")
    assert op.alarm_second.text() == alarm.text.en
    # The tile's reason repeats the banner: a compact screen gives its line to the tile while the banner is up.
    assert op.state_reason.isVisible() == (density is Density.LARGE)
    qtbot.mouseClick(op.ack_button, Qt.LeftButton)
    assert not op.alarm_banner.isVisible()
    layout_settled(qtbot)
    assert op.state_reason.isVisible() and op.state_reason.text() == alarm.text.vi   # still in fault: it says why
    assert_whole_or_tooltip(op.state_reason, "state reason")
    assert_on_screen(window, essentials(window) | {"state reason": op.state_reason})


@pytest.mark.parametrize("size, density", SIZES)
def test_the_technician_screen_fits_each_panel(qtbot, make_window, size, density) -> None:
    window = make_window(language="vi")
    show_at(qtbot, window, size, density)
    window.show_technician()
    tech = window.technician
    layout_settled(qtbot)
    assert_fits(window, size)
    keys = {b.text(): b for b in tech.findChildren(QPushButton) if b.objectName() in ("padKey", "padOk")}
    assert len(keys) == 12
    assert_on_screen(window, {f"key {text}": b for text, b in keys.items()} | {"PIN": tech.pin_display})
    assert all(b.height() >= TOUCH for b in keys.values())
    tech.submit_pin("0000")
    qtbot.waitUntil(lambda: tech.logged_in, timeout=10_000)
    layout_settled(qtbot)
    assert_fits(window, size)
    assert_on_screen(window, {"tabs": tech.tabs.tabBar(), "save": tech.save_button, "back": tech.back_button})
    assert tech.tabs.tabBar().height() >= TOUCH
    assert all(b.height() >= TOUCH for b in (tech.save_button, tech.back_button))
    for index in range(tech.tabs.count()):     # every tab fits: a tab larger than the screen scrolls
        tech.tabs.setCurrentIndex(index)
        layout_settled(qtbot)
        assert_fits(window, size)
    tech.leave()


@pytest.mark.parametrize("size, density", SIZES)
def test_the_batch_dialog_fits_each_panel(qtbot, make_window, size, density) -> None:
    window = make_window(language="vi")
    show_at(qtbot, window, size, density)
    dialog = window.operator.new_batch()
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    layout_settled(qtbot)
    try:
        assert dialog.width() <= size[0] and dialog.height() <= size[1], dialog.size()
        hint = dialog.minimumSizeHint()
        assert hint.width() <= size[0] and hint.height() <= size[1], hint
        for button in (dialog.ok_button,):
            assert button.isVisible() and button.height() >= TOUCH
            assert dialog.rect().contains(QRect(button.mapTo(dialog, QPoint(0, 0)), button.size()))
    finally:
        dialog.reject()


def test_the_large_layout_is_the_three_columns_and_a_compact_one_a_command_strip(qtbot, make_window) -> None:
    window = make_window(language="vi")
    op = window.operator

    def rect(widget: QWidget) -> QRect:
        return rect_in_window(window, widget)

    show_at(qtbot, window, (800, 480), Density.SMALL)
    start, pause, stop = rect(op.start_button), rect(op.pause_button), rect(op.stop_button)
    assert start.top() == pause.top() == stop.top() and start.right() < pause.left() < stop.left()
    assert rect(op.state_tile).right() < start.left()
    assert all(lamp.detail.isHidden() and lamp.toolTip() == lamp.detail.text() for lamp in op.lamps.values())
    show_at(qtbot, window, (1280, 800), Density.LARGE)     # and back: the original layout, as it was
    start, pause, stop = rect(op.start_button), rect(op.pause_button), rect(op.stop_button)
    assert start.left() == pause.left() == stop.left() and start.bottom() < pause.top() < stop.top()
    assert rect(op.state_tile).bottom() < start.top()
    assert rect(op.state_tile).right() < rect(op.counter_labels[("batch", "printed")]).left() \
        < rect(op.qr).left()
    assert all(lamp.detail.isVisible() for lamp in op.lamps.values())
    assert op.strip.isHidden()


def test_the_density_follows_the_size(qtbot) -> None:
    assert density_for(1920, 1080) is Density.LARGE
    assert density_for(1280, 800) is Density.LARGE
    assert density_for(1280, 720) is Density.MEDIUM      # an HD panel: the room of a medium one
    assert density_for(1024, 600) is Density.MEDIUM
    assert density_for(1024, 768) is Density.MEDIUM
    assert density_for(800, 480) is Density.SMALL
    assert density_for(800, 600) is Density.SMALL


def test_an_elided_label_carries_its_whole_text_as_tooltip(qtbot) -> None:
    text = "Hết giấy in — thay cuộn tem rồi bấm Tiếp tục"
    label = ElidedLabel(text)
    qtbot.addWidget(label)
    label.resize(label.sizeHint())
    label.show()
    assert not label.is_elided() and label.shown_text() == text and label.toolTip() == ""
    label.resize(label.sizeHint().width() // 2, label.height())
    assert label.is_elided() and label.shown_text().endswith("…") and label.toolTip() == text
    assert label.text() == text
    two = ElidedLabel(text, max_lines=2)
    qtbot.addWidget(two)
    two.resize(label.sizeHint().width() * 2 // 3, 100)
    two.show()
    assert not two.is_elided() and two.shown_text().count("\n") == 1
    assert two.heightForWidth(two.width()) == 2 * two.fontMetrics().lineSpacing()
