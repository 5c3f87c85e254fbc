"""The operator's screen: batch, start/pause/stop, a state readable from two metres, counters, the last stamp,
device health, alarms and the recent stamps. Touch-first: big buttons, big type, nothing that needs a mouse.

Every database call goes through the bridge's worker; this module only draws and forwards the operator's taps.
What draws the snapshot is in `ui.operator_panels`, the small widgets in `ui.operator_widgets`, the words in
`ui.operator_words`, the new-batch dialog in `ui.batch_dialog`.

About 650 lines, on purpose: what is left is one state machine — what Start, Pause, Stop, the product, batch and
mode controls allow in each line state and while the station starts or restarts — with the placement of the
panels for three densities and the routing of the bridge's events; they share that state and read best together.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.runtime import station_identity
from app.snapshot import RollSummary, Snapshot
from station.alarms import Alarm, Severity
from station.domain import Batch, Product, Stamp
from station.engine import LineState
from ui.adaptive import Density, ElidedLabel, FitScrollArea
from ui.batch_dialog import BatchDialog
from ui.bridge import DEVICE, PREPRINTED, PRINTED, StationBridge
from ui.operator_panels import AlarmBanner, CountersPanel, DevicesPanel, LastStampPanel, RecentPanel, RollsPanel
from ui.operator_widgets import ElidedComboBox, RateMeter, Sparkline, StateTile, box, caption, qr_matrix
from ui.operator_words import STATE_COLOURS, STATE_WORDS, alarm_lines, word
from ui.qt import (
    QBoxLayout,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSize,
    QSizePolicy,
    QSpinBox,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)

class OperatorScreen(QWidget):
    """What the operator sees all day."""

    technicianRequested = Signal()

    def __init__(self, bridge: StationBridge, language: str = "vi", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("operatorScreen")
        self.bridge = bridge
        self.language = language
        self.products: list[Product] = []
        self.batches: list[Batch] = []
        self.rate = RateMeter()
        self.state = LineState.STOPPED
        self.active_alarms: list[Alarm] = []
        self._pending_stamp: Stamp | None = None
        self._last_stamp_serial = ""
        self._snapshot: Snapshot | None = None
        self._ready = False
        self._start_failed = False
        self._open_request: tuple[str | None, str | None] | None = None    # (GTIN, lot) to open once ready
        self._open_count: int | None = None
        self._start_requested = False
        self._autostart_batch: int | None = None

        self._build_top_bar()
        self._build_banner()
        self._build_commands()
        self._build_run_box()
        self._build_panels()
        self._build_layout()
        self._connect()
        self.status_line.setText(self.tr("Starting the station: opening the database and the devices…"))
        self._show_state(LineState.STOPPED, "")

    def _build_top_bar(self) -> None:
        """The top bar: product, batch, batch actions, clock, technician."""
        self.product_combo = ElidedComboBox()
        self.batch_combo = ElidedComboBox()
        for combo, length in ((self.product_combo, 14), (self.batch_combo, 8)):
            # Sized by a number of characters, not by the longest product name (elided, whole in the tooltip).
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(length)
            combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)     # share the bar's spare room
        self.new_batch_button = QPushButton(self.tr("New batch"))
        self.close_batch_button = QPushButton(self.tr("Close batch"))
        self.clock = QLabel("")
        self.clock.setObjectName("clock")
        self.technician_button = QPushButton(self.tr("Technician"))
        self.technician_button.setObjectName("quiet")
        self.product_caption = caption(self.tr("Product"))
        self.batch_caption = caption(self.tr("Batch"))
        self.top_bar = QHBoxLayout()
        self.top_bar.addWidget(self.product_caption)
        self.top_bar.addWidget(self.product_combo, 4)
        self.top_bar.addWidget(self.batch_caption)
        self.top_bar.addWidget(self.batch_combo, 2)
        self.top_bar.addWidget(self.new_batch_button)
        self.top_bar.addWidget(self.close_batch_button)
        self.top_stretch = QWidget()        # room between the batch buttons and the clock, on a large screen only
        self.top_stretch.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.top_bar.addWidget(self.top_stretch, 1)
        self.top_bar.addWidget(self.clock)
        self.top_bar.addWidget(self.technician_button)

    def _build_banner(self) -> None:
        """The alarm banner (ui.operator_panels.AlarmBanner)."""
        self.alarm_banner = AlarmBanner()
        self.alarm_text, self.alarm_second = self.alarm_banner.text, self.alarm_banner.second
        self.ack_button = self.alarm_banner.ack_button

    def _build_commands(self) -> None:
        """The line's state and the commands."""
        self.state_tile = StateTile("")
        self.state_tile.setObjectName("stateTile")
        self.state_tile.setAlignment(Qt.AlignCenter)
        self.state_reason = ElidedLabel("")       # one line: a fault's whole text is in the alarm banner
        self.state_reason.setObjectName("stateReason")
        self.state_reason.setAlignment(Qt.AlignCenter)
        self.state_box = box(QVBoxLayout(), (self.state_tile, 1), self.state_reason, spacing=2)
        self.start_button = QPushButton(self.tr("Start"))
        self.start_button.setObjectName("start")
        self.pause_button = QPushButton(self.tr("Pause"))
        self.pause_button.setObjectName("pause")
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setObjectName("stop")
        self.command_layout = QBoxLayout(QBoxLayout.TopToBottom)
        self.command_box = box(self.command_layout, self.start_button, self.pause_button, self.stop_button)

    def _build_run_box(self) -> None:
        """How many to pack, the rate, and which line Start runs."""
        self.count_spin = QSpinBox()
        self.count_spin.setRange(0, 10_000_000)
        self.count_spin.setSingleStep(50)
        self.count_spin.setSpecialValueText(self.tr("until stopped"))
        self.rate_label = QLabel("0")
        self.rate_label.setObjectName("rate")
        self.sparkline = Sparkline()
        self.quantity_layout = QBoxLayout(QBoxLayout.LeftToRight)
        self.quantity_layout.setContentsMargins(0, 0, 0, 0)
        self.quantity_caption = caption(self.tr("Items to pack"))
        self.quantity_layout.addWidget(self.quantity_caption)
        self.quantity_layout.addWidget(self.count_spin, 1)
        rate_row = QHBoxLayout()
        rate_row.addWidget(self.rate_label)
        rate_row.addWidget(self.sparkline, 1)
        self.rate_caption = caption(self.tr("Rate (items per minute)"))
        # which line Start runs: stamps printed here, or pre-printed rolls activated as they pass the verifier
        # (`station run --mode`); over the last stamp on a large screen, over the quantity on a compact one
        self.mode_combo = ElidedComboBox()
        self.mode_combo.addItem(self.tr("Print stamps here"), PRINTED)
        self.mode_combo.addItem(self.tr("Pre-printed rolls"), PREPRINTED)
        self.mode_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.mode_combo.setMinimumContentsLength(10)
        self.mode_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.mode_combo.setToolTip(self.tr("Which line Start runs"))
        self.run_box = box(QVBoxLayout(), self.quantity_layout, 8, self.rate_caption, rate_row)

    def _build_panels(self) -> None:
        """The panels that draw the snapshot (ui.operator_panels); their parts keep the names the screen's layout and
        the tests know them by."""
        self.counters_box = CountersPanel()
        self.counter_labels, self.counter_names = self.counters_box.labels, self.counters_box.names
        self.batch_heading, self.shift_heading = self.counters_box.batch_heading, self.counters_box.shift_heading
        self.void_detail = self.counters_box.void_detail
        self.recent_box = RecentPanel()
        self.recent, self.recent_caption = self.recent_box.table, self.recent_box.caption
        self.rolls_box = RollsPanel()
        self.rolls_table, self.rolls_summary = self.rolls_box.table, self.rolls_box.summary
        self.rolls_caption = self.rolls_box.caption
        self.last_box = LastStampPanel()
        self.qr, self.last_serial, self.last_result = self.last_box.qr, self.last_box.serial, self.last_box.result
        self.last_lot, self.last_caption = self.last_box.lot, self.last_box.caption
        self.lamps_box = DevicesPanel()
        self.lamps = self.lamps_box.lamps

    def _build_layout(self) -> None:
        """The columns, the command strip and the status line; _arrange() places the boxes in them."""
        # On a compact screen the lamps share a column with the quantity and the rate: they scroll if need be.
        self.lamps_scroll = FitScrollArea()
        self.lamps_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.lamps_scroll.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Ignored)

        # The boxes above are placed by _arrange(): three columns on a large screen (state and commands on the
        # left), and on a compact one a command strip (state, Start, Pause, Stop) over the counters, the last
        # stamp, and the quantity, rate and devices.
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(0, 0, 0, 0)
        self.columns = [QWidget(), QWidget(), QWidget()]
        self.column_layouts = [QVBoxLayout(column) for column in self.columns]
        columns = QHBoxLayout()
        columns.setContentsMargins(0, 0, 0, 0)
        self.columns_layout = columns
        for column, column_layout in zip(self.columns, self.column_layouts):
            column_layout.setContentsMargins(0, 0, 0, 0)
            columns.addWidget(column)
        self.status_line = ElidedLabel("")
        self.status_line.setObjectName("statusLine")
        self.main_layout = QVBoxLayout(self)
        self.main_layout.addLayout(self.top_bar)
        self.main_layout.addWidget(self.alarm_banner)
        self.main_layout.addWidget(self.strip)
        self.main_layout.addLayout(columns, 1)
        self.main_layout.addWidget(self.status_line)
        self.column_layouts[2].addWidget(self.lamps_scroll)    # (a child of the screen from the start)
        self.density: Density | None = None
        self.set_density(Density.LARGE)

    def _connect(self) -> None:
        """The operator's taps, the bridge's signals, and the timers that draw at a human pace."""
        self.start_button.clicked.connect(self.start_line)
        self.pause_button.clicked.connect(self.pause_or_resume)
        self.stop_button.clicked.connect(self.stop_line)
        self.ack_button.clicked.connect(self.acknowledge)
        self.new_batch_button.clicked.connect(self.new_batch)
        self.close_batch_button.clicked.connect(self.close_batch)
        self.technician_button.clicked.connect(self.technicianRequested)
        self.product_combo.currentIndexChanged.connect(self._product_chosen)
        self.batch_combo.currentIndexChanged.connect(self._batch_chosen)
        self.mode_combo.currentIndexChanged.connect(self._mode_chosen)
        bridge = self.bridge
        bridge.ready.connect(self._on_ready)
        bridge.startFailed.connect(self._on_start_failed)
        bridge.stateChanged.connect(self._on_state)
        bridge.stampDecided.connect(self._on_stamp)
        bridge.alarmRaised.connect(self._on_alarm)
        bridge.runFinished.connect(self._on_finished)
        bridge.snapshotReady.connect(self.show_snapshot)
        bridge.worker.failed.connect(self.status_line.setText)
        # Drawing the QR and the clock at a human pace, whatever the line's rate.
        self._paint_timer = QTimer(self)
        self._paint_timer.setInterval(250)
        self._paint_timer.timeout.connect(self._paint_last_stamp)
        self._paint_timer.start()
        self._clock_timer = QTimer(self)
        self._clock_timer.setInterval(1000)
        self._clock_timer.timeout.connect(self._tick)
        self._clock_timer.start()
        self._tick()

    # -- fitting the screen --------------------------------------------------------------------------

    def set_density(self, density: Density) -> None:
        """Lay the screen out for a density (the window calls this whenever its size moves it to another)."""
        if density is self.density:
            return
        self.density = density
        large, small = density is Density.LARGE, density is Density.SMALL
        margin, spacing = {Density.LARGE: (9, 6), Density.MEDIUM: (6, 6), Density.SMALL: (4, 4)}[density]
        self.main_layout.setContentsMargins(margin, margin, margin, margin)
        self.main_layout.setSpacing(spacing)
        self.alarm_banner.set_density(density)
        self._arrange(compact=not large)
        # top bar: on the smallest screen the combo boxes speak for themselves (their tooltips say what they are)
        for label in (self.product_caption, self.batch_caption):
            label.setVisible(not small)
        self.top_stretch.setVisible(large)
        self.product_combo.setMinimumContentsLength(13 if small else 14)
        self.batch_combo.setMinimumContentsLength(7 if small else 8)
        # state and commands: a column on a large screen, a strip of three buttons on a compact one
        self.command_layout.setDirection(QBoxLayout.TopToBottom if large else QBoxLayout.LeftToRight)
        for button in (self.start_button, self.pause_button, self.stop_button):
            # in the strip the buttons are as tall as the state tile beside them
            button.setSizePolicy(QSizePolicy.Minimum if large else QSizePolicy.Preferred,
                                 QSizePolicy.Fixed if large else QSizePolicy.Preferred)
        self._set_reason(self.state_reason.text())
        self.quantity_layout.setDirection(QBoxLayout.LeftToRight if large else QBoxLayout.TopToBottom)
        # secondary things give up their room first: the QR shrinks, the devices show their details as tooltips
        for panel in (self.counters_box, self.last_box, self.lamps_box):
            panel.set_density(density)
        self.sparkline.setMinimumSize({Density.LARGE: QSize(160, 48), Density.MEDIUM: QSize(100, 40),
                                       Density.SMALL: QSize(60, 30)}[density])
        self._show_rolls(self.rolls)
        self._tick()

    def _arrange(self, compact: bool) -> None:
        for layout in (self.strip_layout, *self.column_layouts):
            while layout.count():
                layout.takeAt(0)
        left, middle, right = self.column_layouts
        self.run_box.layout().removeWidget(self.mode_combo)
        if compact:
            self.run_box.layout().insertWidget(0, self.mode_combo)
        else:
            right.addWidget(self.mode_combo)
        if compact:
            self.strip_layout.addWidget(self.state_box, 3)
            self.strip_layout.addWidget(self.command_box, 7)
            left.addWidget(self.counters_box)
            left.addWidget(self.rolls_box)
            left.addWidget(self.recent_box, 1)
            middle.addWidget(self.last_box, 1)
            right.addWidget(self.run_box)
            if self.lamps_scroll.widget() is not self.lamps_box:
                self.lamps_scroll.setWidget(self.lamps_box)
            right.addWidget(self.lamps_scroll, 1)
            self.lamps_scroll.show()
            stretches = (5, 3, 3)
        else:
            left.addWidget(self.state_box)
            left.addWidget(self.command_box)
            left.addWidget(self.run_box)
            left.addStretch(1)
            middle.addWidget(self.counters_box)
            middle.addWidget(self.rolls_box)
            middle.addWidget(self.recent_box, 1)
            right.addWidget(self.last_box, 1)
            right.addSpacing(6)
            if self.lamps_scroll.widget() is self.lamps_box:
                self.lamps_scroll.takeWidget()
            self.lamps_scroll.hide()
            right.addWidget(self.lamps_box)
            stretches = (3, 5, 3)
        for index, stretch in enumerate(stretches):
            self.columns_layout.setStretch(index, stretch)
        self.strip.setVisible(compact)
        for box in (self.state_box, self.command_box, self.run_box, self.counters_box, self.recent_box,
                    self.last_box, self.lamps_box):
            box.show()       # a widget moved to another layout is hidden until shown again
        self.mode_combo.show()
        self.rolls_box.setVisible(bool(self.rolls))

    def _tick(self) -> None:
        # The station's time zone, the one its shifts and EPCIS events use, whatever the machine's clock zone.
        now = dt.datetime.now(station_identity(self.bridge.config).tzinfo)
        if self.density is Density.LARGE:
            self.clock.setText(now.strftime("%H:%M  %d/%m/%Y"))
            self.clock.setToolTip("")
        else:                                       # the date is a tap away on a compact screen
            self.clock.setText(now.strftime("%H:%M"))
            self.clock.setToolTip(now.strftime("%d/%m/%Y"))

    # -- station life --------------------------------------------------------------------------------

    def _on_ready(self, station: Any) -> None:
        self._ready = True
        self._start_failed = False
        self.status_line.setText(self.tr("Station ready."))
        self.mode_combo.blockSignals(True)
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(self.bridge.mode))
        self.mode_combo.blockSignals(False)
        self.products = list(station.products)
        self.product_combo.blockSignals(True)
        self.product_combo.clear()
        for product in self.products:
            self.product_combo.addItem(product.name, product.gtin)
        self.product_combo.blockSignals(False)
        keep = self.bridge.product.gtin if self.bridge.product else None
        index = next((i for i, p in enumerate(self.products) if p.gtin == keep), 0)
        self.product_combo.setCurrentIndex(index)
        self._product_chosen(index)
        self._show_state(station.line.state, "")
        request, self._open_request = self._open_request, None
        if request is not None:
            self._open_batch(*request)

    def open_batch_when_ready(self, gtin: str | None = None, lot: str | None = None, *, count: int | None = None,
                              start: bool = False) -> None:
        """Once the station is ready, open this batch (created if new, as `station run --headless` does: the first
        product and today's lot by default) and choose it, so Start can be pressed at once (what the demo does);
        ``count`` fills in the items to pack, ``start`` presses Start as soon as it can be."""
        self._open_request, self._open_count, self._start_requested = (gtin, lot), count, start

    def _open_batch(self, gtin: str | None, lot: str | None) -> None:
        def opened(batch: Batch) -> None:
            index = next((i for i, p in enumerate(self.products) if p.gtin == batch.gtin), -1)
            if index < 0:
                return
            self.product_combo.blockSignals(True)
            self.product_combo.setCurrentIndex(index)
            self.product_combo.blockSignals(False)
            if self._start_requested:
                self._autostart_batch = batch.id
            self.reload_batches(self.products[index], batch.id, count=self._open_count)

        self.bridge.call(lambda st: st.open_batch(st.product(gtin), lot), done=opened, failed=self._report,
                         owner=self)

    def _on_start_failed(self, message: str) -> None:
        self._start_failed = True
        self._update_buttons()
        self.status_line.setText(self.tr("The station could not start: %1").replace("%1", message))
        self._set_reason(message)

    # -- product and batch ---------------------------------------------------------------------------

    def current_product(self) -> Product | None:
        index = self.product_combo.currentIndex()
        return self.products[index] if 0 <= index < len(self.products) else None

    def _product_chosen(self, index: int) -> None:
        product = self.current_product()
        if product is None:
            return
        self.reload_batches(product)

    def reload_batches(self, product: Product, select_id: int | None = None, count: int | None = None) -> None:
        def done(batches: list[Batch]) -> None:
            if self.current_product() != product:
                return
            self.batches = batches
            keep = select_id if select_id is not None else (self.bridge.batch.id if self.bridge.batch else None)
            self.batch_combo.blockSignals(True)
            self.batch_combo.clear()
            for batch in batches:
                planned = f" · {batch.planned_quantity}" if batch.planned_quantity else ""
                self.batch_combo.addItem(f"{batch.lot}{planned}", batch.id)
            self.batch_combo.blockSignals(False)
            index = next((i for i, b in enumerate(batches) if b.id == keep), 0 if batches else -1)
            self.batch_combo.setCurrentIndex(index)
            self._batch_chosen(index)
            if count is not None:             # after the batch's planned quantity: the caller's count wins
                self.count_spin.setValue(count)

        self.bridge.call(lambda st: st.store.batches(gtin=product.gtin, open_only=True), done=done, owner=self)

    def _mode_chosen(self, index: int) -> None:
        mode = self.mode_combo.itemData(index)
        if mode == self.bridge.mode:
            return
        if self.state is not LineState.STOPPED:     # (the combo is disabled then; a programmatic change is undone)
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(self.bridge.mode))
            return
        self._ready = self._start_failed = False
        self._update_buttons()
        self.status_line.setText(self.tr("Changing the line: starting the station again…"))

        def failed(exc: BaseException) -> None:
            self._report(exc)

        self.bridge.set_mode(mode, failed=failed)

    def current_batch(self) -> Batch | None:
        index = self.batch_combo.currentIndex()
        return self.batches[index] if 0 <= index < len(self.batches) else None

    def _batch_chosen(self, index: int) -> None:
        batch = self.current_batch()
        if self.bridge.batch != batch:
            self.rate.reset()
        self.bridge.select_batch(self.current_product(), batch)
        if batch is not None and batch.planned_quantity:
            self.count_spin.setValue(batch.planned_quantity)
        self._update_buttons()

    def new_batch(self) -> BatchDialog | None:
        product = self.current_product()
        if product is None:
            return None
        dialog = BatchDialog(self.bridge, product, self)
        dialog.created.connect(lambda batch: self.reload_batches(product, batch.id))
        dialog.open()
        return dialog

    def close_batch(self) -> None:
        batch, product = self.current_batch(), self.current_product()
        if batch is None or product is None:
            return
        box = QMessageBox(QMessageBox.Question, self.tr("Close batch"),
                          self.tr("Close batch %1? No more stamps can be printed for it.").replace("%1", batch.lot),
                          QMessageBox.Yes | QMessageBox.No, self)
        box.button(QMessageBox.Yes).setText(self.tr("Close the batch"))
        box.button(QMessageBox.No).setText(self.tr("Cancel"))
        box.setDefaultButton(QMessageBox.No)
        box.finished.connect(lambda result: result == QMessageBox.Yes and self.confirm_close_batch(batch, product))
        box.open()

    def confirm_close_batch(self, batch: Batch, product: Product) -> None:
        batch_id = batch.id
        self.bridge.call(lambda st: st.close_batch(batch_id), done=lambda _: self.reload_batches(product),
                         failed=self._report, owner=self)

    # -- commands ------------------------------------------------------------------------------------

    def start_line(self) -> None:
        if self.bridge.batch is None:
            self.status_line.setText(self.tr("Choose or create a batch first."))
            return
        count = self.count_spin.value() or None
        self.start_button.setEnabled(False)
        self.bridge.start_line(count, failed=self._report)

    def pause_or_resume(self) -> None:
        if self.state is LineState.RUNNING:
            self.bridge.pause()
        elif self.state in (LineState.PAUSED, LineState.FAULT):
            self.bridge.resume()

    def stop_line(self) -> None:
        self.bridge.stop_line()

    def acknowledge(self) -> None:
        self.bridge.acknowledge_alarms()
        self.active_alarms.clear()
        self.alarm_banner.hide()
        self._update_reason()

    def _report(self, exc: BaseException) -> None:
        self.status_line.setText(str(exc))
        self._update_buttons()

    # -- events from the line ------------------------------------------------------------------------

    def _on_state(self, state: str, reason: str) -> None:
        self._show_state(LineState(state), reason)

    def _show_state(self, state: LineState, reason: str) -> None:
        self.state = state
        background, foreground = STATE_COLOURS[state]
        self.state_tile.setText(word(STATE_WORDS[state]))
        self.state_tile.setStyleSheet(f"background: {background}; color: {foreground};")
        stop_alarm = next((a for a in reversed(self.active_alarms) if a.severity is Severity.STOP), None)
        if state is LineState.FAULT and stop_alarm is not None:
            self._set_reason(alarm_lines(stop_alarm, self.language)[0])
        elif state in (LineState.PAUSED,) and reason == "operator":
            self._set_reason(self.tr("Paused by the operator"))
        else:
            self._set_reason("")
        self._update_buttons()

    def _set_reason(self, text: str) -> None:
        self.state_reason.setText(text)
        self._update_reason()

    def _update_reason(self) -> None:
        # In the command strip of a compact screen the reason gives its line to the state tile when there is none,
        # or when the alarm banner above says the same thing in full.
        text = self.state_reason.text()
        in_banner = self.alarm_banner.says(text)
        self.state_reason.setVisible(self.density is Density.LARGE or (bool(text) and not in_banner))

    def start_blocker(self) -> str:
        """What keeps Start from being pressed, said where Start is ('' when nothing does, and while the line runs:
        the state says so)."""
        if self.state is not LineState.STOPPED:
            return ""
        if self._start_failed:
            return self.tr("The station could not start: see the message below")
        if not self._ready:
            return self.tr("Starting the station…")
        if self.current_product() is None:
            return self.tr("No product: add one to the product list")
        batch = self.bridge.batch
        if batch is None:
            return self.tr("Choose or create a batch (%1)").replace("%1", self.new_batch_button.text())
        if batch.locked:
            return self.tr("Batch %1 is locked: %2").replace("%1", batch.lot).replace("%2", batch.lock_reason or "")
        devices = self._snapshot.devices if self._snapshot is not None else None
        if (self.bridge.mode == PRINTED and devices is not None
                and devices.printer_condition in ("faulted", "unreachable")):
            return self.tr("Printer not ready: %1").replace("%1", self.lamps_box.printer_text(devices))
        return ""

    def _update_buttons(self) -> None:
        state = self.state
        has_batch = self.bridge.batch is not None
        blocker = self.start_blocker()
        can_start = self._ready and has_batch and state is LineState.STOPPED and not blocker
        self.start_button.setEnabled(can_start)
        self.start_button.setToolTip(blocker)
        if state is LineState.STOPPED and not self._start_failed:
            self._set_reason(blocker)        # under the state, beside Start: what is missing
        if can_start and self._autostart_batch is not None and self._autostart_batch == self.bridge.batch.id:
            self._autostart_batch = None
            QTimer.singleShot(0, self.start_line)
        self.pause_button.setEnabled(state in (LineState.RUNNING, LineState.PAUSED, LineState.FAULT))
        self.pause_button.setText(self.tr("Resume") if state in (LineState.PAUSED, LineState.FAULT)
                                  else self.tr("Pause"))
        self.stop_button.setEnabled(state in (LineState.RUNNING, LineState.PAUSED, LineState.FAULT))
        idle = state is LineState.STOPPED and self._ready
        for widget in (self.product_combo, self.batch_combo, self.new_batch_button, self.count_spin):
            widget.setEnabled(idle)
        # after a failed start the mode can still be changed back (a pre-printed line that could not be built)
        self.mode_combo.setEnabled(state is LineState.STOPPED and (self._ready or self._start_failed))
        self.close_batch_button.setEnabled(idle and has_batch)

    def _on_stamp(self, stamp: Stamp) -> None:
        self._pending_stamp = stamp

    def _paint_last_stamp(self) -> None:
        stamp = self._pending_stamp
        if stamp is None:
            return
        uri = stamp.uri
        accepted = self.bridge.worker.submit(lambda: qr_matrix(uri), done=lambda m: self._show_last_stamp(stamp, m),
                                             lane=DEVICE, key="last-stamp-qr", owner=self)
        if accepted is not None and self._pending_stamp is stamp:
            self._pending_stamp = None

    def _show_last_stamp(self, stamp: Stamp, matrix: list[list[bool]]) -> None:
        self._last_stamp_serial = stamp.serial
        batch = self.bridge.batch
        self.last_box.show_stamp(stamp, matrix, batch.lot if batch else None)

    def _on_alarm(self, alarm: Alarm) -> None:
        if alarm.severity is Severity.INFO:
            self.status_line.setText(alarm_lines(alarm, self.language)[0])
            return
        self.active_alarms.append(alarm)
        del self.active_alarms[:-50]
        self._show_banner()
        if alarm.severity is Severity.STOP and self.state is LineState.FAULT:
            self._show_state(self.state, alarm.code)

    def _show_banner(self) -> None:
        self.alarm_banner.show_alarms(self.active_alarms, self.language)
        self._update_reason()

    def _on_finished(self, summary: Any) -> None:
        self.status_line.setText(self.tr("Run finished: %1 activated, %2 voided.")
                                 .replace("%1", str(summary.activated)).replace("%2", str(summary.voided_total)))
        self.bridge.refresh()

    # -- the periodic snapshot -----------------------------------------------------------------------

    def show_snapshot(self, snap: Snapshot) -> None:
        self._snapshot = snap
        if snap.state is not self.state:
            self._show_state(snap.state, "")
        self.counters_box.show_snapshot(snap)
        if snap.batch is not None:
            rate = self.rate.add(snap.at, snap.batch.activated)
            self.rate_label.setText(f"{rate:.0f}")
            self.sparkline.set_values(list(self.rate.trend))
        self.recent_box.show_recent(snap.recent)
        self._show_rolls(snap.rolls)
        self.lamps_box.show_devices(snap.devices)
        self._update_buttons()          # the printer's condition may hold Start back

    @property
    def rolls(self) -> tuple[RollSummary, ...]:
        """The selected product's pre-printed rolls, as last shown."""
        return self.rolls_box.rolls

    def _show_rolls(self, rolls: tuple[RollSummary, ...]) -> None:
        self.rolls_box.show_rolls(rolls, small=self.density is not Density.LARGE)


__all__ = ["OperatorScreen"]
