"""The operator screen's panels, each drawing its part of the bridge's snapshot: the alarm banner, the counters, the
last stamp, the device lamps, the recent stamps and the product's pre-printed rolls. The screen (`ui.operator`) places them for
the screen's density and routes the snapshot to them.
"""

from __future__ import annotations

from app.snapshot import Counters, DeviceHealth, RecentStamp, RollSummary, Snapshot
from station.alarms import Alarm, Severity
from station.domain import RollState, Stamp, StampState
from ui.adaptive import Density, ElidedLabel
from ui.operator_widgets import CollapsingBox, Lamp, QrView, RecentTable, RollsTable, SummaryLabel, box, caption, \
    thousands
from ui.operator_words import (
    COUNTER_ROWS,
    DELIVERY_WORDS,
    FAULT_WORDS,
    ROLL_COLUMNS,
    ROLL_WORDS,
    VOID_WORDS,
    alarm_lines,
    word,
)
from ui.qt import (
    QAbstractItemView,
    QColor,
    QCoreApplication,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSize,
    QSizePolicy,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def _read_only(table: QTableWidget) -> None:
    """A table the operator reads and never taps: no edits, no selection, no focus, eliding, scrolling smoothly."""
    table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
    table.horizontalHeader().setTextElideMode(Qt.ElideRight)
    table.setTextElideMode(Qt.ElideRight)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.NoSelection)
    table.setFocusPolicy(Qt.NoFocus)
    table.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)


def _item(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = table.item(row, column)
    if item is None:
        item = QTableWidgetItem()
        table.setItem(row, column, item)
    return item


class AlarmBanner(QFrame):
    """The alarm that matters most (a stop alarm before warnings raised after it), in the screen's language whole and
    wrapped, the other language on one line below it, how many more are active, and Acknowledge."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alarmBanner")
        self.text = QLabel("")
        self.text.setObjectName("alarmText")
        self.text.setWordWrap(True)
        self.second = ElidedLabel("")      # one line, the whole text as its tooltip
        self.second.setObjectName("alarmSecond")
        self.ack_button = QPushButton(self.tr("Acknowledge"))
        self.ack_button.setObjectName("ack")
        self.row = QHBoxLayout(self)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(self.text)
        texts.addWidget(self.second)
        self.row.addLayout(texts, 1)
        self.row.addWidget(self.ack_button, 0, Qt.AlignVCenter)
        self.hide()

    def set_density(self, density: Density) -> None:
        self.row.setContentsMargins(*(4 * [{Density.LARGE: 9, Density.MEDIUM: 6, Density.SMALL: 4}[density]]))

    def says(self, text: str) -> bool:
        """The banner is up and begins with `text` (the state's reason need not say it again)."""
        return bool(text) and not self.isHidden() and self.text.text().startswith(text)

    def show_alarms(self, alarms: list[Alarm], language: str) -> None:
        if not alarms:
            self.hide()
            return
        # A stop alarm outranks warnings raised after it: the operator must see what stopped the line.
        alarm = next((a for a in reversed(alarms) if a.severity is Severity.STOP), alarms[-1])
        first, second = alarm_lines(alarm, language)
        more = len(alarms) - 1
        if more:
            first += "  " + self.tr("(+%n more)", "", more)
        self.text.setText(first)
        self.second.setText(second)
        stop = alarm.severity is Severity.STOP
        self.setProperty("severity", alarm.severity.value)
        self.setStyleSheet("#alarmBanner { background: %s; }" % ("#c62828" if stop else "#f9a825"))
        self.text.setStyleSheet("color: %s;" % ("#ffffff" if stop else "#000000"))
        self.second.setStyleSheet("color: %s;" % ("#ffe0e0" if stop else "#222222"))
        self.show()


class CountersPanel(QWidget):
    """Printed, verified, activated, voided, waiting and confirmed, for the batch and for the shift, with the void
    reasons below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: dict[tuple[str, str], QLabel] = {}
        self.names: list[ElidedLabel] = []
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(18)
        self.batch_heading = caption(self.tr("This batch"))
        self.shift_heading = caption(self.tr("This shift"))
        self.grid.addWidget(self.batch_heading, 0, 1, Qt.AlignRight)
        self.grid.addWidget(self.shift_heading, 0, 2, Qt.AlignRight)
        for row, (key, text) in enumerate(COUNTER_ROWS, start=1):
            name = ElidedLabel(QCoreApplication.translate("OperatorScreen", text))
            name.setObjectName("counterName")
            self.names.append(name)
            self.grid.addWidget(name, row, 0)
            for column, scope in enumerate(("batch", "shift"), start=1):
                value = QLabel("–")
                value.setObjectName("counterValue")
                value.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.grid.addWidget(value, row, column)
                self.labels[(scope, key)] = value
        self.void_detail = ElidedLabel("", max_lines=2)
        self.void_detail.setObjectName("voidDetail")
        self.grid.addWidget(self.void_detail, len(COUNTER_ROWS) + 1, 0, 1, 3)
        self.grid.setColumnStretch(0, 1)
        box(self.grid, into=self)

    def set_density(self, density: Density) -> None:
        self.grid.setHorizontalSpacing({Density.LARGE: 18, Density.MEDIUM: 12, Density.SMALL: 8}[density])
        self.grid.setVerticalSpacing({Density.LARGE: 6, Density.MEDIUM: 2, Density.SMALL: 0}[density])

    def show_snapshot(self, snap: Snapshot) -> None:
        self._show("batch", snap.batch)
        self._show("shift", snap.shift)
        self.shift_heading.setText(self.tr("This shift (since %1)").replace("%1", snap.shift_start.strftime("%H:%M")))
        shown = snap.batch or snap.shift
        details = [f"{word(VOID_WORDS.get(k, k))} {v}" for k, v in sorted(shown.voided.items())]
        if shown.unused:   # not voided: serials given back unprinted, kept and never published
            details.append(f"{word(VOID_WORDS['unused'])} {shown.unused}")
        self.void_detail.setText(", ".join(details))

    def _show(self, scope: str, counters: Counters | None) -> None:
        for key, _ in COUNTER_ROWS:
            label = self.labels[(scope, key)]
            if counters is None:
                label.setText("–")
            else:
                value = counters.voided_total if key == "voided" else getattr(counters, key)
                label.setText(f"{value:,}".replace(",", "."))


class LastStampPanel(QWidget):
    """The last stamp decided: its QR (crossed out when voided), serial, result and lot."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qr = QrView()
        self.serial = ElidedLabel("")
        self.serial.setObjectName("lastSerial")
        self.serial.setAlignment(Qt.AlignCenter)
        self.result = ElidedLabel("", max_lines=2)
        self.result.setObjectName("lastResult")
        self.result.setAlignment(Qt.AlignCenter)
        self.lot = ElidedLabel("")
        self.lot.setAlignment(Qt.AlignCenter)
        self.lot.setObjectName("lastLot")
        self.caption = caption(self.tr("Last stamp"))
        box(QVBoxLayout(), self.caption, (self.qr, 1), self.serial, self.result, self.lot, into=self)

    def set_density(self, density: Density) -> None:
        # a secondary thing gives up its room first: the QR shrinks
        qr = {Density.LARGE: 150, Density.MEDIUM: 110, Density.SMALL: 72}[density]
        self.qr.setMinimumSize(QSize(qr, qr))

    def show_stamp(self, stamp: Stamp, matrix: list[list[bool]], lot: str | None) -> None:
        voided = stamp.state is StampState.VOIDED
        self.qr.set_matrix(matrix, voided=voided)
        self.serial.setText(self.tr("Serial %1").replace("%1", stamp.serial))
        if voided and stamp.void_reason is not None:
            reason = word(VOID_WORDS.get(stamp.void_reason.value, stamp.void_reason.value))
            self.result.setText(self.tr("voided: %1").replace("%1", reason))
            self.result.setStyleSheet("color: #b71c1c;")
        else:
            self.result.setText(self.tr("activated"))
            self.result.setStyleSheet("color: #1b5e20;")
        self.lot.setText(self.tr("Lot %1").replace("%1", lot) if lot else "")


class DevicesPanel(QWidget):
    """A lamp for the printer, the scanner, the broker and the central server, each with a line of detail."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lamps = {
            "printer": Lamp(self.tr("Printer")),
            "scanner": Lamp(self.tr("Scanner")),
            "broker": Lamp(self.tr("MQTT broker")),
            "server": Lamp(self.tr("Central server")),
        }
        box(QVBoxLayout(), *self.lamps.values(), into=self)
        self.layout().addStretch(1)

    def set_density(self, density: Density) -> None:
        # on the smallest screen a lamp is its dot and its name; the detail is its tooltip
        for lamp in self.lamps.values():
            lamp.set_compact(density is Density.SMALL)

    def printer_text(self, d: DeviceHealth) -> str:
        return {
            "ready": self.tr("ready"), "unknown": self.tr("status not known yet"),
            "faulted": self.tr("fault: %1").replace(
                "%1", ", ".join(word(FAULT_WORDS.get(f, f)) for f in d.printer_faults) or d.printer_detail),
            "unreachable": self.tr("not answering"),
        }[d.printer_condition]

    def show_devices(self, d: DeviceHealth) -> None:
        printer = {"ready": "ok", "unknown": "unknown", "faulted": "bad", "unreachable": "bad"}[d.printer_condition]
        self.lamps["printer"].set_level(printer, self.printer_text(d))
        self.lamps["scanner"].set_level("ok" if d.scanner_connected else "bad",
                                        self.tr("connected") if d.scanner_connected else
                                        self.tr("not connected") + (f" ({d.scanner_error})" if d.scanner_error else ""))
        refused = {
            "mqtt_bad_credentials": self.tr("refused: wrong user name or password"),
            "mqtt_not_authorised": self.tr("refused: not authorised (user name, password or rights)"),
            "mqtt_client_id_refused": self.tr("refused: client id not accepted"),
            "mqtt_connection_refused": self.tr("refused the connection"),
            "mqtt_publish_denied": self.tr("connected, but may not publish events (ACL)"),
        }.get(d.broker_problem)
        if refused is not None:
            self.lamps["broker"].set_level("bad", refused)
            self.lamps["broker"].setToolTip(f"{refused}: {d.broker_problem_detail}")
        else:
            self.lamps["broker"].set_level("ok" if d.broker_connected else "bad",
                                           self.tr("connected") if d.broker_connected else self.tr("not connected"))
        if d.acks_ok:
            server = self.tr("all confirmed") if d.unconfirmed == 0 else \
                self.tr("%n waiting", "", d.unconfirmed)
            self.lamps["server"].set_level("ok", server)
        else:
            minutes = int((d.oldest_unconfirmed_s or 0) // 60)
            self.lamps["server"].set_level(
                "warn", self.tr("%1 not confirmed, oldest %2 min").replace("%1", str(d.unconfirmed))
                .replace("%2", str(minutes)))


class RecentPanel(CollapsingBox):
    """The recent stamps, newest first: a secondary pane, it takes what height is left and scrolls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = RecentTable(0, 3)
        self.table.setHorizontalHeaderLabels([self.tr("Serial"), self.tr("Result"), self.tr("Delivery")])
        _read_only(self.table)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.caption = caption(self.tr("Recent stamps"))
        box(QVBoxLayout(), self.caption, (self.table, 1), into=self)

    def show_recent(self, recent: list[RecentStamp]) -> None:
        table = self.table
        table.setUpdatesEnabled(False)
        table.setRowCount(len(recent))
        for row, stamp in enumerate(recent):
            if stamp.state is StampState.ACTIVATED:
                result, colour = self.tr("activated"), QColor("#1b5e20")
            else:
                reason = word(VOID_WORDS.get(stamp.void_reason or "", stamp.void_reason or ""))
                result, colour = self.tr("voided: %1").replace("%1", reason), QColor("#b71c1c")
            delivery = word(DELIVERY_WORDS[stamp.delivery]) if stamp.delivery else ""
            for column, text in enumerate((stamp.serial, result, delivery)):
                item = _item(table, row, column)
                item.setText(text)
                if column == 1:
                    item.setForeground(colour)
                    item.setToolTip(stamp.void_detail)
        table.setUpdatesEnabled(True)


class RollsPanel(QWidget):
    """The selected product's pre-printed rolls (read only; hidden when it has none): a table, or on a compact
    screen one summary line with each roll in its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rolls: tuple[RollSummary, ...] = ()
        self.table = RollsTable(0, len(ROLL_COLUMNS))
        self.table.setHorizontalHeaderLabels(
            [QCoreApplication.translate("OperatorScreen", text) for text in ROLL_COLUMNS])
        _read_only(self.table)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Maximum)   # down to one row
        self.summary = SummaryLabel("")
        self.summary.setObjectName("rollsSummary")
        self.caption = caption(self.tr("Stamp rolls"))
        box(QVBoxLayout(), self.caption, self.table, self.summary, spacing=2, into=self)
        self.hide()

    def show_rolls(self, rolls: tuple[RollSummary, ...], small: bool) -> None:
        """A row each on a large screen; on a compact one (where a stop alarm's banner leaves no room for even one
        row of a table) one summary line, each roll in its tooltip."""
        self.rolls = rolls
        self.table.setVisible(not small)
        self.caption.setVisible(not small)
        self.summary.setVisible(small)
        lines = [self.tr("%1 (%2): activated %3, unused %4, voided %5, refused %6")
                 .replace("%1", r.roll_id).replace("%2", word(ROLL_WORDS[r.state]))
                 .replace("%3", thousands(r.activated)).replace("%4", thousands(r.unused))
                 .replace("%5", thousands(r.voided)).replace("%6", thousands(r.refused)) for r in rolls]
        total = {key: thousands(sum(getattr(r, key) for r in rolls))
                 for key in ("activated", "unused", "voided", "refused")}
        self.summary.setText(
            self.tr("Rolls %1: activated %2, unused %3, voided %4, refused %5")
            .replace("%1", str(len(rolls))).replace("%2", total["activated"]).replace("%3", total["unused"])
            .replace("%4", total["voided"]).replace("%5", total["refused"]) if rolls else "")
        self.summary.setToolTip("\n".join(lines))
        table = self.table
        table.setUpdatesEnabled(False)
        if table.rowCount() != len(rolls):
            table.setRowCount(len(rolls))
            table.updateGeometry()
        for row, roll in enumerate(rolls):
            texts = (roll.roll_id, word(ROLL_WORDS[roll.state]), thousands(roll.activated), thousands(roll.unused),
                     thousands(roll.voided), thousands(roll.refused))
            for column, text in enumerate(texts):
                item = table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(int((Qt.AlignLeft if column < 2 else Qt.AlignRight) | Qt.AlignVCenter))
                    table.setItem(row, column, item)
                item.setText(text)
                if column == 0:
                    item.setToolTip(lines[row])
                elif column == 1:
                    item.setForeground(QColor("#1b5e20" if roll.state is RollState.ACTIVE else "#b71c1c"))
                    item.setToolTip(roll.state_reason)
        table.setUpdatesEnabled(True)
        if self.isHidden() == bool(rolls):
            self.setVisible(bool(rolls))


__all__ = ["AlarmBanner", "CountersPanel", "LastStampPanel", "DevicesPanel", "RecentPanel", "RollsPanel"]
