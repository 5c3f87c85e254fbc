"""The operator's screen: batch, start/pause/stop, a state readable from two metres, counters, the last stamp,
device health, alarms and the recent stamps. Touch-first: big buttons, big type, nothing that needs a mouse.

Every database call goes through the bridge's worker; this module only draws and forwards the operator's taps.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any

import segno

from station.alarms import Alarm, Severity
from station.batches import default_lot
from station.domain import Batch, DeliveryState, Product, RollState, Stage, Stamp, StampState
from station.engine import LineState
from station.errors import LabelTextTooLong, LabelTextUnprintable, StampTooLarge, StationError
from station.gs1 import validate_lot
from ui.adaptive import Density, ElidedLabel, FitScrollArea
from ui.bridge import (
    DEVICE,
    PREPRINTED,
    PRINTED,
    Counters,
    DeviceHealth,
    RecentStamp,
    RollSummary,
    Snapshot,
    StationBridge,
)
from ui.qt import (
    QT_TRANSLATE_NOOP,
    QAbstractItemView,
    QBoxLayout,
    QButtonGroup,
    QColor,
    QComboBox,
    QCoreApplication,
    QDate,
    QDateEdit,
    QDialog,
    QFont,
    QFontMetrics,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QImage,
    QLabel,
    QLayout,
    QLineEdit,
    QMessageBox,
    QPainter,
    QPaintEvent,
    QPen,
    QPointF,
    QPushButton,
    QRadioButton,
    QRectF,
    QSize,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)

# -- words shared by several widgets (context "Words" in the .ts file) ---------------------------------------

STATE_WORDS = {
    LineState.RUNNING: QT_TRANSLATE_NOOP("Words", "RUNNING"),
    LineState.PAUSED: QT_TRANSLATE_NOOP("Words", "PAUSED"),
    LineState.STOPPED: QT_TRANSLATE_NOOP("Words", "STOPPED"),
    LineState.FAULT: QT_TRANSLATE_NOOP("Words", "FAULT"),
    LineState.STOPPING: QT_TRANSLATE_NOOP("Words", "STOPPING…"),
}
STATE_COLOURS = {
    LineState.RUNNING: ("#1b7f3b", "#ffffff"),
    LineState.PAUSED: ("#e0a100", "#000000"),
    LineState.STOPPED: ("#5c6670", "#ffffff"),
    LineState.FAULT: ("#c62828", "#ffffff"),
    LineState.STOPPING: ("#8d6e00", "#ffffff"),
}
VOID_WORDS = {
    "no_read": QT_TRANSLATE_NOOP("Words", "not read"),
    "wrong_content": QT_TRANSLATE_NOOP("Words", "wrong content"),
    "unreadable": QT_TRANSLATE_NOOP("Words", "unreadable"),
    "printer_fault": QT_TRANSLATE_NOOP("Words", "printer fault"),
    "line_stopped": QT_TRANSLATE_NOOP("Words", "line stopped"),
    "operator": QT_TRANSLATE_NOOP("Words", "by hand"),
    "unused": QT_TRANSLATE_NOOP("Words", "never printed"),
    "batch_locked": QT_TRANSLATE_NOOP("Words", "batch locked"),
}
FAULT_WORDS = {
    "paper_out": QT_TRANSLATE_NOOP("Words", "out of labels"),
    "ribbon_out": QT_TRANSLATE_NOOP("Words", "ribbon out"),
    "head_open": QT_TRANSLATE_NOOP("Words", "head open"),
    "paused": QT_TRANSLATE_NOOP("Words", "paused on the printer"),
    "cutter": QT_TRANSLATE_NOOP("Words", "cutter fault"),
    "over_temperature": QT_TRANSLATE_NOOP("Words", "too hot"),
    "under_temperature": QT_TRANSLATE_NOOP("Words", "too cold"),
    "buffer_full": QT_TRANSLATE_NOOP("Words", "buffer full"),
}
DELIVERY_WORDS = {
    DeliveryState.PENDING: QT_TRANSLATE_NOOP("Words", "waiting to be sent"),
    DeliveryState.SENT: QT_TRANSLATE_NOOP("Words", "sent, not yet confirmed"),
    DeliveryState.CONFIRMED: QT_TRANSLATE_NOOP("Words", "confirmed by the server"),
}
ROLL_WORDS = {
    RollState.ACTIVE: QT_TRANSLATE_NOOP("Words", "in use"),
    RollState.LOCKED: QT_TRANSLATE_NOOP("Words", "locked"),
    RollState.VOIDED: QT_TRANSLATE_NOOP("Words", "voided"),
}


def word(text: str) -> str:
    return QCoreApplication.translate("Words", text)


def alarm_lines(alarm: Alarm, language: str) -> tuple[str, str]:
    """(first, second) language text of an alarm: the screen's language first, the other one below it."""
    return (alarm.text.vi, alarm.text.en) if language == "vi" else (alarm.text.en, alarm.text.vi)


# -- small drawing widgets ----------------------------------------------------------------------------------

def qr_matrix(text: str) -> list[list[bool]]:
    """The QR modules of ``text`` (dark = True), as segno encodes it."""
    return [[bool(v) for v in row] for row in segno.make(text, micro=False).matrix]


class QrView(QWidget):
    """The last stamp's QR, drawn module by module so it stays sharp at any size."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._matrix: list[list[bool]] = []
        self._image: QImage | None = None
        self._voided = False
        self.setMinimumSize(QSize(150, 150))
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def set_content(self, text: str | None, voided: bool = False) -> None:
        """Encode and show (encoding takes 10-70 ms in pure Python: the operator screen does it on the worker)."""
        self.set_matrix(qr_matrix(text) if text else [], voided)

    def set_matrix(self, matrix: list[list[bool]], voided: bool = False) -> None:
        self._matrix = matrix
        self._voided = voided
        # One pixel per module, quiet zone included; painting scales it (a 37x37 QR is 1,369 rects otherwise).
        n = len(matrix) + 8
        image = QImage(n, n, QImage.Format_RGB32)
        image.fill(QColor("#ffffff"))
        dark = QColor("#000000").rgb()
        for y, row in enumerate(matrix):
            for x, on in enumerate(row):
                if on:
                    image.setPixel(x + 4, y + 4, dark)
        self._image = image
        self.update()

    @property
    def content_modules(self) -> int:
        return len(self._matrix)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802  (Qt's name)
        painter = QPainter(self)
        side = min(self.width(), self.height())
        painter.fillRect(self.rect(), QColor("#ffffff"))
        if not self._matrix:
            painter.end()
            return
        n = len(self._matrix) + 8          # four modules of quiet zone each side
        side = side // n * n                # whole pixels per module: every module the same size
        module = side / n
        left, top = (self.width() - side) // 2, (self.height() - side) // 2
        painter.drawImage(QRectF(left, top, side, side), self._image)
        x0, y0 = left + 4 * module, top + 4 * module
        if self._voided:
            pen = QPen(QColor("#c62828"))
            pen.setWidthF(max(4.0, side / 25))
            painter.setPen(pen)
            painter.drawLine(QPointF(x0, y0), QPointF(x0 + side - 8 * module, y0 + side - 8 * module))
            painter.drawLine(QPointF(x0 + side - 8 * module, y0), QPointF(x0, y0 + side - 8 * module))
        painter.end()


class Sparkline(QWidget):
    """A small trend line of the rate per minute."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: list[float] = []
        self.setMinimumSize(QSize(160, 48))

    def set_values(self, values: list[float]) -> None:
        self._values = values
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), QColor("#eef1f4"))
        if len(self._values) >= 2:
            top = max(self._values) or 1.0
            w, h = self.width() - 8, self.height() - 8
            step = w / (len(self._values) - 1)
            pen = QPen(QColor("#1565c0"))
            pen.setWidthF(2.5)
            painter.setPen(pen)
            points = [QPointF(4 + i * step, 4 + h - h * v / top) for i, v in enumerate(self._values)]
            for a, b in zip(points, points[1:]):
                painter.drawLine(a, b)
        painter.end()


class Lamp(QWidget):
    """A device's health: a coloured dot, its name and one line of detail."""

    COLOURS = {"ok": "#2e7d32", "warn": "#f9a825", "bad": "#c62828", "unknown": "#9e9e9e"}

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = "unknown"
        self._dot = QLabel("●")
        self._dot.setObjectName("lampDot")
        self._name = ElidedLabel(name)
        self._name.setObjectName("lampName")
        self.detail = ElidedLabel("", max_lines=2)
        self.detail.setObjectName("lampDetail")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(0)
        grid.addWidget(self._dot, 0, 0, 2, 1, Qt.AlignTop)
        grid.addWidget(self._name, 0, 1)
        grid.addWidget(self.detail, 1, 1)
        grid.setColumnStretch(1, 1)
        self.set_level("unknown", "")

    def set_level(self, level: str, detail: str) -> None:
        self.level = level
        self._dot.setStyleSheet(f"color: {self.COLOURS[level]};")
        self.detail.setText(detail)
        self.setToolTip(detail)

    def set_compact(self, compact: bool) -> None:
        """On the smallest screen a lamp is its dot and its name; the detail is its tooltip."""
        self.detail.setVisible(not compact)
        self.layout().setAlignment(self._dot, Qt.AlignVCenter if compact else Qt.AlignTop)


class ElidedComboBox(QComboBox):
    """A combo box that elides its current text with "…" when it is narrower than the text (a long product name on
    a small screen) instead of cutting it; the whole text is its tooltip."""

    def _option(self) -> QStyleOptionComboBox:
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        field = self.style().subControlRect(QStyle.CC_ComboBox, option, QStyle.SC_ComboBoxEditField, self)
        option.currentText = self.fontMetrics().elidedText(option.currentText, Qt.ElideRight, field.width() - 4)
        return option

    def shown_text(self) -> str:
        return self._option().currentText

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QStylePainter(self)
        option = self._option()
        painter.drawComplexControl(QStyle.CC_ComboBox, option)
        painter.drawControl(QStyle.CE_ComboBoxLabel, option)
        if self.toolTip() != self.currentText():     # the current text changes with a repaint, even when the
            self.setToolTip(self.currentText())       # items were replaced with signals blocked


class RecentTable(QTableWidget):
    """The recent stamps: never shorter than its header and one row (it scrolls for the rest)."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        hint = super().minimumSizeHint()
        rows = self.horizontalHeader().sizeHint().height() + self.verticalHeader().defaultSectionSize()
        return QSize(hint.width(), rows + 2 * self.frameWidth())


class RollsTable(QTableWidget):
    """The selected product's rolls: as tall as its rows, up to four, down to one on a tight screen (it scrolls)."""

    SHOWN_ROWS = 4

    def _height(self, rows: int) -> int:
        return (self.horizontalHeader().sizeHint().height() + rows * self.verticalHeader().defaultSectionSize()
                + 2 * self.frameWidth())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(super().minimumSizeHint().width(), self._height(1))

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(super().sizeHint().width(), self._height(min(max(self.rowCount(), 1), self.SHOWN_ROWS)))


class SummaryLabel(ElidedLabel):
    """One elided line whose tooltip keeps its details: the whole line (when it is cut) above them."""

    def _refit(self) -> None:
        super()._refit()
        QLabel.setToolTip(self, "\n".join(t for t in (self._full if self.is_elided() else "", self._tooltip) if t))

    def setToolTip(self, text: str) -> None:  # noqa: N802  (Qt's name)
        super().setToolTip(text)
        self._refit()


def thousands(value: int) -> str:
    return f"{value:,}".replace(",", ".")


class CollapsingBox(QWidget):
    """A secondary pane that takes the height the essentials leave (none, if need be) and shows its contents only
    when they fit: a caption with a table too short for one row would be a useless sliver."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Its height never depends on its contents, so showing or hiding them never moves anything else.
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Ignored)

    def needed_height(self) -> int:
        layout = self.layout()
        widgets = [layout.itemAt(i).widget() for i in range(layout.count())]
        heights = [w.minimumSizeHint().height() for w in widgets if w is not None]
        margins = layout.contentsMargins()
        return sum(heights) + layout.spacing() * max(0, len(heights) - 1) + margins.top() + margins.bottom()

    def is_collapsed(self) -> bool:
        return self.height() < self.needed_height()

    def _fit(self) -> None:
        layout = self.layout()
        if layout is None:
            return
        show = not self.is_collapsed()
        for i in range(layout.count()):
            widget = layout.itemAt(i).widget()
            if widget is not None and widget.isHidden() == show:
                widget.setVisible(show)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event: Any) -> None:  # noqa: N802
        super().showEvent(event)
        self._fit()


class StateTile(QLabel):
    """The line's state in large letters, drawn at the style's size or, when a word is too long for the tile (a
    narrow screen, a long translation), at the largest size down to three quarters of it that fits. The tile is
    never narrower than the longest state word at that smallest size, so no state is ever cut."""

    SMALLEST = 0.75

    def _pixel_size(self) -> int:
        size = self.font().pixelSize()
        return size if size > 0 else round(self.font().pointSizeF() * self.logicalDpiY() / 72)

    def _metrics(self, pixels: int) -> QFontMetrics:
        font = QFont(self.font())
        font.setPixelSize(max(1, pixels))
        return QFontMetrics(font)

    def _width_for(self, text: str, pixels: int) -> int:
        margins = self.contentsMargins()
        return self._metrics(pixels).horizontalAdvance(text) + margins.left() + margins.right() + 2 * self.margin() + 4

    def drawn_pixel_size(self) -> int:
        """The pixel size the current text is drawn at (the largest that fits, not below SMALLEST of the style's)."""
        largest = self._pixel_size()
        smallest = max(1, int(largest * self.SMALLEST))
        room = self.contentsRect().width() - 2 * self.margin()
        size = largest
        while size > smallest and self._metrics(size).horizontalAdvance(self.text()) > room:
            size -= 1
        return size

    def text_fits(self) -> bool:
        room = self.contentsRect().width() - 2 * self.margin()
        return self._metrics(self.drawn_pixel_size()).horizontalAdvance(self.text()) <= room

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        smallest = max(1, int(self._pixel_size() * self.SMALLEST))
        widest = max(self._width_for(word(text), smallest) for text in STATE_WORDS.values())
        return QSize(widest, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(max(self._width_for(self.text(), self._pixel_size()), self.minimumSizeHint().width()),
                     super().sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        QFrame.paintEvent(self, event)         # the style sheet's background and rounded border
        painter = QPainter(self)
        font = QFont(self.font())
        font.setPixelSize(self.drawn_pixel_size())
        painter.setFont(font)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()), self.text())
        painter.end()


class RateMeter:
    """Items per minute over the last minute, and a trend of that rate sampled every few seconds."""

    def __init__(self, window_s: float = 60.0, trend_every_s: float = 5.0, trend_points: int = 72) -> None:
        self.window_s = window_s
        self.trend_every_s = trend_every_s
        self._samples: deque[tuple[float, int]] = deque()
        self.trend: deque[float] = deque(maxlen=trend_points)
        self._last_trend = 0.0

    def reset(self) -> None:
        self._samples.clear()
        self.trend.clear()
        self._last_trend = 0.0

    def add(self, at: float, total: int) -> float:
        if self._samples and total < self._samples[-1][1]:
            self.reset()
        self._samples.append((at, total))
        while len(self._samples) > 2 and self._samples[1][0] <= at - self.window_s:
            self._samples.popleft()
        rate = self.rate
        if at - self._last_trend >= self.trend_every_s:
            self.trend.append(rate)
            self._last_trend = at
        return rate

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return 60.0 * (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


# -- the batch dialog ---------------------------------------------------------------------------------------

class BatchDialog(QDialog):
    """Create a batch: lot, production date, expiry (from the shelf life or typed), planned quantity, origin and
    the stages of its production diary."""

    created = Signal(object)   # Batch

    STAGE_COLUMNS = 4

    def __init__(self, bridge: StationBridge, product: Product, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.product = product
        self.setWindowTitle(self.tr("New batch"))
        self.setModal(True)
        self.density: Density = getattr(parent, "density", None) or Density.LARGE
        compact = self.density.compact
        if not compact:
            self.setMinimumWidth(820)
        today = QDate.currentDate()

        self.product_label = QLabel(f"<b>{product.name}</b><br>{product.producer} · GTIN {product.gtin}")
        self.lot_edit = QLineEdit(default_lot(dt.date.today()))
        self.lot_edit.setMaxLength(20)
        self.lot_edit.setPlaceholderText(self.tr("e.g. MX2611A"))
        self.produced_edit = self._date_edit(today)
        self.expiry_auto = QRadioButton()
        self.expiry_typed = QRadioButton(self.tr("Type the expiry date"))
        group = QButtonGroup(self)
        group.addButton(self.expiry_auto)
        group.addButton(self.expiry_typed)
        self.expiry_edit = self._date_edit(today.addDays(product.shelf_life_days or 365))
        if product.shelf_life_days:
            self.expiry_auto.setChecked(True)
        else:
            self.expiry_auto.setEnabled(False)
            self.expiry_typed.setChecked(True)
        self.planned_spin = QSpinBox()
        self.planned_spin.setRange(0, 10_000_000)
        self.planned_spin.setSpecialValueText(self.tr("not planned"))
        self.planned_spin.setSingleStep(100)
        self.origin_edit = QLineEdit(product.region)

        self.stages = QTableWidget(0, self.STAGE_COLUMNS)
        self.stages.setHorizontalHeaderLabels([self.tr("Stage"), self.tr("Date (dd/mm/yyyy)"), self.tr("Place"),
                                               self.tr("Note")])
        self.stages.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.stages.setMinimumHeight(170 if not compact else 120)
        add_stage = QPushButton(self.tr("Add a stage"))
        remove_stage = QPushButton(self.tr("Remove the stage"))
        add_stage.clicked.connect(lambda: self.add_stage())
        remove_stage.clicked.connect(self._remove_stage)

        self.error_label = QLabel("")
        self.error_label.setObjectName("errorText")
        self.error_label.setWordWrap(True)
        self.ok_button = QPushButton(self.tr("Create the batch"))
        self.ok_button.setObjectName("primary")
        cancel = QPushButton(self.tr("Cancel"))
        self.ok_button.clicked.connect(self.submit)
        cancel.clicked.connect(self.reject)
        self.expiry_auto.toggled.connect(self._update_expiry)
        self.produced_edit.dateChanged.connect(self._update_expiry)

        form = QFormLayout()
        if compact:                     # a field too wide for the row goes under its label
            form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        form.addRow(self.tr("Product"), self.product_label)
        form.addRow(self.tr("Lot"), self.lot_edit)
        form.addRow(self.tr("Production date"), self.produced_edit)
        expiry_box = QBoxLayout(QBoxLayout.TopToBottom if compact else QBoxLayout.LeftToRight)
        expiry_box.addWidget(self.expiry_auto)
        expiry_box.addWidget(self.expiry_typed)
        expiry_box.addWidget(self.expiry_edit)
        form.addRow(self.tr("Expiry"), expiry_box)
        form.addRow(self.tr("Planned quantity"), self.planned_spin)
        form.addRow(self.tr("Origin"), self.origin_edit)
        stage_buttons = QHBoxLayout()
        stage_buttons.addWidget(add_stage)
        stage_buttons.addWidget(remove_stage)
        stage_buttons.addStretch(1)
        buttons = QHBoxLayout()
        if not compact:
            buttons.addWidget(self.error_label, 1)
        else:
            buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.ok_button)
        content = QWidget()
        fields = QVBoxLayout(content)
        fields.addLayout(form)
        fields.addWidget(QLabel(self.tr("Production diary")))
        fields.addWidget(self.stages, 1)
        fields.addLayout(stage_buttons)
        layout = QVBoxLayout(self)
        if compact:
            # On a small screen the fields scroll; the error and the Cancel / Create buttons stay in sight.
            fields.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(FitScrollArea(content), 1)
            layout.addWidget(self.error_label)
        else:
            fields.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(content, 1)
        layout.addLayout(buttons)
        self._update_expiry()
        if compact and parent is not None:
            room = parent.window().size()
            self.resize(min(900, room.width() - 16), min(640, room.height() - 16))

    @staticmethod
    def _date_edit(date: QDate) -> QDateEdit:
        edit = QDateEdit(date)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("dd/MM/yyyy")
        return edit

    def _update_expiry(self, *_: Any) -> None:
        days = self.product.shelf_life_days
        if days:
            auto = self.produced_edit.date().addDays(days)
            self.expiry_auto.setText(self.tr("From the shelf life (%n days): ", "", days) + auto.toString("dd/MM/yyyy"))
            if self.expiry_auto.isChecked():
                self.expiry_edit.setDate(auto)
        self.expiry_edit.setEnabled(self.expiry_typed.isChecked())

    def add_stage(self, name: str = "", date: str = "", place: str = "", note: str = "") -> None:
        row = self.stages.rowCount()
        self.stages.insertRow(row)
        for column, text in enumerate((name, date, place, note)):
            self.stages.setItem(row, column, QTableWidgetItem(text))

    def _remove_stage(self) -> None:
        row = self.stages.currentRow()
        if row >= 0:
            self.stages.removeRow(row)

    def _cell(self, row: int, column: int) -> str:
        item = self.stages.item(row, column)
        return item.text().strip() if item is not None else ""

    def draft(self) -> Batch:
        """The batch as typed; raises StationError (or ValueError) naming the field that is wrong."""
        lot = validate_lot(self.lot_edit.text().strip())
        produced = self.produced_edit.date().toPyDate()
        expiry = self.expiry_edit.date().toPyDate()
        if expiry <= produced:
            raise ValueError(self.tr("the expiry date must be after the production date"))
        stages = []
        for row in range(self.stages.rowCount()):
            name = self._cell(row, 0)
            date_text = self._cell(row, 1)
            if not name and not date_text:
                continue
            if not name:
                raise ValueError(self.tr("stage %1 has a date but no name").replace("%1", str(row + 1)))
            date = None
            if date_text:
                try:
                    date = dt.datetime.strptime(date_text, "%d/%m/%Y").date()
                except ValueError:
                    raise ValueError(self.tr("stage %1: the date must be written dd/mm/yyyy")
                                     .replace("%1", str(row + 1))) from None
            stages.append(Stage(name=name, date=date, place=self._cell(row, 2), note=self._cell(row, 3)))
        planned = self.planned_spin.value() or None
        return Batch(id=None, gtin=self.product.gtin, lot=lot, production_date=produced, expiry_date=expiry,
                     origin=self.origin_edit.text().strip(), stages=tuple(stages), planned_quantity=planned)

    def submit(self) -> None:
        try:
            draft = self.draft()
        except (StationError, ValueError) as exc:
            self.error_label.setText(str(exc))
            return
        self.error_label.setText(self.tr("Saving…"))
        self.ok_button.setEnabled(False)

        def create(station: Any) -> Batch:
            # The stamps' QR must fit the label at a readable size: refused here, before any stamp is wasted.
            station.check_batch_label(draft.gtin, draft.lot, draft.expiry_date)
            batch = station.store.create_batch(draft)
            station.store.audit("operator", "batch_created", f"{batch.gtin} lot {batch.lot} (batch {batch.id})")
            return batch

        def done(batch: Batch) -> None:
            self.created.emit(batch)
            self.accept()

        def failed(exc: BaseException) -> None:
            self.ok_button.setEnabled(True)
            if isinstance(exc, StampTooLarge):
                self.error_label.setText(self.stamp_too_large(exc))
                self.error_label.setToolTip(str(exc))
                return
            if isinstance(exc, (LabelTextTooLong, LabelTextUnprintable)):
                self.error_label.setText(self.text_too_long(exc))
                self.error_label.setToolTip(str(exc))
                return
            self.error_label.setText(str(exc))

        self.bridge.call(create, done=done, failed=failed, owner=self)

    def stamp_too_large(self, exc: StampTooLarge) -> str:
        """The refusal in the operator's words, with the figures: what the lot makes and what the label holds."""
        needs = (self.tr("QR version %1").replace("%1", str(exc.version)) if exc.version
                 else self.tr("more than a QR code holds"))
        return (self.tr("Lot %1 makes the stamp's QR code too large to read: its link is %2 characters and needs "
                        "%3, the label holds version %4 (%5 characters) at most. Use a shorter lot, without / % ? & "
                        "+ # (each takes 3 characters).")
                .replace("%1", exc.lot).replace("%2", str(exc.length)).replace("%3", needs)
                .replace("%4", str(exc.max_version)).replace("%5", str(exc.max_length)))


    def text_too_long(self, exc: LabelTextTooLong | LabelTextUnprintable) -> str:
        """The refusal in the operator's words: which text would not print whole, and by how much."""
        what = {
            "product_name": self.tr("The product name"),
            "producer": self.tr("The producer's name"),
            "lot": self.tr("The lot"),
            "serial": self.tr("The serial number"),
        }.get(exc.field, exc.field)
        if isinstance(exc, LabelTextUnprintable):
            why = (self.tr("%1 has letters the label's font cannot print (%2): they would print as boxes.")
                   .replace("%2", " ".join(exc.missing)))
        elif exc.unit == "lines":
            why = (self.tr("%1 needs %2 lines on the label and its place holds %3: the rest would print on top of "
                           "the last line.")
                   .replace("%2", f"{exc.needs:.0f}").replace("%3", f"{exc.room:.0f}"))
        else:
            why = (self.tr("%1 is %2 dots wide and the label has %3 left: its end would not be printed.")
                   .replace("%2", f"{exc.needs:.0f}").replace("%3", f"{exc.room:.0f}"))
        fix = (self.tr("Use a shorter lot.") if exc.field == "lot"
               else self.tr("Ask the technician to shorten it in the product list or give it more room on the label."))
        return why.replace("%1", what) + " " + fix


# -- the screen ---------------------------------------------------------------------------------------------

ROLL_COLUMNS = (
    QT_TRANSLATE_NOOP("OperatorScreen", "Roll"),
    QT_TRANSLATE_NOOP("OperatorScreen", "State"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Activated"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Unused"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Voided"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Refused"),
)

COUNTER_ROWS = (
    ("printed", QT_TRANSLATE_NOOP("OperatorScreen", "Printed")),
    ("verified", QT_TRANSLATE_NOOP("OperatorScreen", "Verified")),
    ("activated", QT_TRANSLATE_NOOP("OperatorScreen", "Activated")),
    ("voided", QT_TRANSLATE_NOOP("OperatorScreen", "Voided")),
    ("waiting", QT_TRANSLATE_NOOP("OperatorScreen", "Waiting to be sent")),
    ("confirmed", QT_TRANSLATE_NOOP("OperatorScreen", "Confirmed by the server")),
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
        self.rolls: tuple[RollSummary, ...] = ()
        self._start_failed = False
        self._open_request: tuple[str | None, str | None] | None = None    # (GTIN, lot) to open once ready
        self._open_count: int | None = None
        self._start_requested = False
        self._autostart_batch: int | None = None

        # top bar: product, batch, batch actions, clock, technician
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
        self.product_caption = self._caption(self.tr("Product"))
        self.batch_caption = self._caption(self.tr("Batch"))
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

        # alarm banner: what happened in the screen's language (whole, wrapped), the other language below it
        self.alarm_banner = QFrame()
        self.alarm_banner.setObjectName("alarmBanner")
        self.alarm_text = QLabel("")
        self.alarm_text.setObjectName("alarmText")
        self.alarm_text.setWordWrap(True)
        self.alarm_second = ElidedLabel("")      # one line, the whole text as its tooltip
        self.alarm_second.setObjectName("alarmSecond")
        self.ack_button = QPushButton(self.tr("Acknowledge"))
        self.ack_button.setObjectName("ack")
        self.banner_layout = QHBoxLayout(self.alarm_banner)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(self.alarm_text)
        texts.addWidget(self.alarm_second)
        self.banner_layout.addLayout(texts, 1)
        self.banner_layout.addWidget(self.ack_button, 0, Qt.AlignVCenter)
        self.alarm_banner.hide()

        # the line's state and the commands
        self.state_tile = StateTile("")
        self.state_tile.setObjectName("stateTile")
        self.state_tile.setAlignment(Qt.AlignCenter)
        self.state_reason = ElidedLabel("")       # one line: a fault's whole text is in the alarm banner
        self.state_reason.setObjectName("stateReason")
        self.state_reason.setAlignment(Qt.AlignCenter)
        self.state_box = self._box(QVBoxLayout(), (self.state_tile, 1), self.state_reason, spacing=2)
        self.start_button = QPushButton(self.tr("Start"))
        self.start_button.setObjectName("start")
        self.pause_button = QPushButton(self.tr("Pause"))
        self.pause_button.setObjectName("pause")
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setObjectName("stop")
        self.command_layout = QBoxLayout(QBoxLayout.TopToBottom)
        self.command_box = self._box(self.command_layout, self.start_button, self.pause_button, self.stop_button)

        # how many to pack, and the rate
        self.count_spin = QSpinBox()
        self.count_spin.setRange(0, 10_000_000)
        self.count_spin.setSingleStep(50)
        self.count_spin.setSpecialValueText(self.tr("until stopped"))
        self.rate_label = QLabel("0")
        self.rate_label.setObjectName("rate")
        self.sparkline = Sparkline()
        self.quantity_layout = QBoxLayout(QBoxLayout.LeftToRight)
        self.quantity_layout.setContentsMargins(0, 0, 0, 0)
        self.quantity_caption = self._caption(self.tr("Items to pack"))
        self.quantity_layout.addWidget(self.quantity_caption)
        self.quantity_layout.addWidget(self.count_spin, 1)
        rate_row = QHBoxLayout()
        rate_row.addWidget(self.rate_label)
        rate_row.addWidget(self.sparkline, 1)
        self.rate_caption = self._caption(self.tr("Rate (items per minute)"))
        # which line Start runs: stamps printed here, or pre-printed rolls activated as they pass the verifier
        # (`station run --mode`); over the last stamp on a large screen, over the quantity on a compact one
        self.mode_combo = ElidedComboBox()
        self.mode_combo.addItem(self.tr("Print stamps here"), PRINTED)
        self.mode_combo.addItem(self.tr("Pre-printed rolls"), PREPRINTED)
        self.mode_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.mode_combo.setMinimumContentsLength(10)
        self.mode_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.mode_combo.setToolTip(self.tr("Which line Start runs"))
        self.run_box = self._box(QVBoxLayout(), self.quantity_layout, 8, self.rate_caption, rate_row)

        # counters
        self.counter_labels: dict[tuple[str, str], QLabel] = {}
        self.counter_names: list[QLabel] = []
        self.counters_grid = QGridLayout()
        self.counters_grid.setHorizontalSpacing(18)
        self.batch_heading = self._caption(self.tr("This batch"))
        self.shift_heading = self._caption(self.tr("This shift"))
        self.counters_grid.addWidget(self.batch_heading, 0, 1, Qt.AlignRight)
        self.counters_grid.addWidget(self.shift_heading, 0, 2, Qt.AlignRight)
        for row, (key, text) in enumerate(COUNTER_ROWS, start=1):
            name = ElidedLabel(QCoreApplication.translate("OperatorScreen", text))
            name.setObjectName("counterName")
            self.counter_names.append(name)
            self.counters_grid.addWidget(name, row, 0)
            for column, scope in enumerate(("batch", "shift"), start=1):
                value = QLabel("–")
                value.setObjectName("counterValue")
                value.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.counters_grid.addWidget(value, row, column)
                self.counter_labels[(scope, key)] = value
        self.void_detail = ElidedLabel("", max_lines=2)
        self.void_detail.setObjectName("voidDetail")
        self.counters_grid.addWidget(self.void_detail, len(COUNTER_ROWS) + 1, 0, 1, 3)
        self.counters_grid.setColumnStretch(0, 1)
        self.counters_box = self._box(self.counters_grid)

        # the recent stamps: a secondary pane, it takes what height is left and scrolls
        self.recent = RecentTable(0, 3)
        self.recent.setHorizontalHeaderLabels([self.tr("Serial"), self.tr("Result"), self.tr("Delivery")])
        self.recent.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.recent.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.recent.horizontalHeader().setTextElideMode(Qt.ElideRight)
        self.recent.setTextElideMode(Qt.ElideRight)
        self.recent.setWordWrap(False)
        self.recent.verticalHeader().hide()
        self.recent.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.recent.setSelectionMode(QAbstractItemView.NoSelection)
        self.recent.setFocusPolicy(Qt.NoFocus)
        self.recent.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.recent.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.recent_caption = self._caption(self.tr("Recent stamps"))
        self.recent_box = CollapsingBox()
        self._box(QVBoxLayout(), self.recent_caption, (self.recent, 1), into=self.recent_box)

        # the selected product's pre-printed rolls (read only; hidden when it has none): a table, or on a compact
        # screen one summary line with each roll in its tooltip
        self.rolls_table = RollsTable(0, len(ROLL_COLUMNS))
        self.rolls_table.setHorizontalHeaderLabels(
            [QCoreApplication.translate("OperatorScreen", text) for text in ROLL_COLUMNS])
        self.rolls_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.rolls_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.rolls_table.horizontalHeader().setTextElideMode(Qt.ElideRight)
        self.rolls_table.setTextElideMode(Qt.ElideRight)
        self.rolls_table.setWordWrap(False)
        self.rolls_table.verticalHeader().hide()
        self.rolls_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.rolls_table.setSelectionMode(QAbstractItemView.NoSelection)
        self.rolls_table.setFocusPolicy(Qt.NoFocus)
        self.rolls_table.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.rolls_table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Maximum)   # down to one row
        self.rolls_summary = SummaryLabel("")
        self.rolls_summary.setObjectName("rollsSummary")
        self.rolls_caption = self._caption(self.tr("Stamp rolls"))
        self.rolls_box = self._box(QVBoxLayout(), self.rolls_caption, self.rolls_table, self.rolls_summary,
                                   spacing=2)
        self.rolls_box.hide()

        # the last stamp
        self.qr = QrView()
        self.last_serial = ElidedLabel("")
        self.last_serial.setObjectName("lastSerial")
        self.last_serial.setAlignment(Qt.AlignCenter)
        self.last_result = ElidedLabel("", max_lines=2)
        self.last_result.setObjectName("lastResult")
        self.last_result.setAlignment(Qt.AlignCenter)
        self.last_lot = ElidedLabel("")
        self.last_lot.setAlignment(Qt.AlignCenter)
        self.last_lot.setObjectName("lastLot")
        self.last_caption = self._caption(self.tr("Last stamp"))
        self.last_box = self._box(QVBoxLayout(), self.last_caption, (self.qr, 1), self.last_serial,
                                  self.last_result, self.last_lot)

        # device health
        self.lamps = {
            "printer": Lamp(self.tr("Printer")),
            "scanner": Lamp(self.tr("Scanner")),
            "broker": Lamp(self.tr("MQTT broker")),
            "server": Lamp(self.tr("Central server")),
        }
        self.lamps_box = self._box(QVBoxLayout(), *self.lamps.values())
        self.lamps_box.layout().addStretch(1)
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

        # wiring
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
        self.status_line.setText(self.tr("Starting the station: opening the database and the devices…"))
        self._show_state(LineState.STOPPED, "")

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("caption")
        return label

    @staticmethod
    def _box(layout: QLayout, *items: Any, spacing: int | None = None, into: QWidget | None = None) -> QWidget:
        """A plain widget holding ``layout`` with ``items`` (widgets, layouts, (widget, stretch), or spacings)."""
        box = into if into is not None else QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        box.setLayout(layout)
        for item in items:
            if isinstance(item, int):
                layout.addSpacing(item)
            elif isinstance(item, tuple):
                layout.addWidget(*item)
            elif isinstance(item, QLayout):
                layout.addLayout(item)
            else:
                layout.addWidget(item)
        if spacing is not None:
            layout.setSpacing(spacing)
        return box

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
        self.banner_layout.setContentsMargins(*(4 * [9 if large else 6 if not small else 4]))
        self._arrange(compact=not large)
        # top bar: on the smallest screen the combo boxes speak for themselves (their tooltips say what they are)
        for caption in (self.product_caption, self.batch_caption):
            caption.setVisible(not small)
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
        self.counters_grid.setHorizontalSpacing({Density.LARGE: 18, Density.MEDIUM: 12, Density.SMALL: 8}[density])
        self.counters_grid.setVerticalSpacing({Density.LARGE: 6, Density.MEDIUM: 2, Density.SMALL: 0}[density])
        # secondary things give up their room first: the QR shrinks, the devices show their details as tooltips
        qr = {Density.LARGE: 150, Density.MEDIUM: 110, Density.SMALL: 72}[density]
        self.qr.setMinimumSize(QSize(qr, qr))
        self.sparkline.setMinimumSize({Density.LARGE: QSize(160, 48), Density.MEDIUM: QSize(100, 40),
                                       Density.SMALL: QSize(60, 30)}[density])
        for lamp in self.lamps.values():
            lamp.set_compact(small)
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
        offset = self.bridge.config.station.timezone_offset
        sign = -1 if offset.startswith("-") else 1
        hours, minutes = (int(x) for x in offset[1:].split(":"))
        tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        now = dt.datetime.now(tz)
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

        def close(station: Any) -> Batch:
            closed = station.store.close_batch(batch_id)
            station.store.audit("operator", "batch_closed", f"{closed.gtin} lot {closed.lot} (batch {closed.id})")
            return closed

        self.bridge.call(close, done=lambda _: self.reload_batches(product), failed=self._report, owner=self)

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
        in_banner = bool(text) and not self.alarm_banner.isHidden() and self.alarm_text.text().startswith(text)
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
            return self.tr("Printer not ready: %1").replace("%1", self._printer_text(devices))
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
        voided = stamp.state is StampState.VOIDED
        self.qr.set_matrix(matrix, voided=voided)
        self._last_stamp_serial = stamp.serial
        self.last_serial.setText(self.tr("Serial %1").replace("%1", stamp.serial))
        if voided and stamp.void_reason is not None:
            reason = word(VOID_WORDS.get(stamp.void_reason.value, stamp.void_reason.value))
            self.last_result.setText(self.tr("voided: %1").replace("%1", reason))
            self.last_result.setStyleSheet("color: #b71c1c;")
        else:
            self.last_result.setText(self.tr("activated"))
            self.last_result.setStyleSheet("color: #1b5e20;")
        batch = self.bridge.batch
        self.last_lot.setText(self.tr("Lot %1").replace("%1", batch.lot) if batch else "")

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
        if not self.active_alarms:
            self.alarm_banner.hide()
            self._update_reason()
            return
        # A stop alarm outranks warnings raised after it: the operator must see what stopped the line.
        alarm = next((a for a in reversed(self.active_alarms) if a.severity is Severity.STOP), self.active_alarms[-1])
        first, second = alarm_lines(alarm, self.language)
        more = len(self.active_alarms) - 1
        if more:
            first += "  " + self.tr("(+%n more)", "", more)
        self.alarm_text.setText(first)
        self.alarm_second.setText(second)
        self.alarm_banner.setProperty("severity", alarm.severity.value)
        self.alarm_banner.setStyleSheet(
            "#alarmBanner { background: %s; }" % ("#c62828" if alarm.severity is Severity.STOP else "#f9a825"))
        self.alarm_text.setStyleSheet("color: %s;" % ("#ffffff" if alarm.severity is Severity.STOP else "#000000"))
        self.alarm_second.setStyleSheet("color: %s;" % ("#ffe0e0" if alarm.severity is Severity.STOP else "#222222"))
        self.alarm_banner.show()
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
        self._show_counters("batch", snap.batch)
        self._show_counters("shift", snap.shift)
        self.shift_heading.setText(self.tr("This shift (since %1)").replace("%1", snap.shift_start.strftime("%H:%M")))
        shown = snap.batch or snap.shift
        details = [f"{word(VOID_WORDS.get(k, k))} {v}" for k, v in sorted(shown.voided.items())]
        if shown.unused:   # not voided: serials given back unprinted, kept and never published
            details.append(f"{word(VOID_WORDS['unused'])} {shown.unused}")
        self.void_detail.setText(", ".join(details))
        if snap.batch is not None:
            rate = self.rate.add(snap.at, snap.batch.activated)
            self.rate_label.setText(f"{rate:.0f}")
            self.sparkline.set_values(list(self.rate.trend))
        self._show_recent(snap.recent)
        self._show_rolls(snap.rolls)
        self._show_devices(snap.devices)
        self._update_buttons()          # the printer's condition may hold Start back

    def _show_counters(self, scope: str, counters: Counters | None) -> None:
        for key, _ in COUNTER_ROWS:
            label = self.counter_labels[(scope, key)]
            if counters is None:
                label.setText("–")
            else:
                value = counters.voided_total if key == "voided" else getattr(counters, key)
                label.setText(f"{value:,}".replace(",", "."))

    def _show_recent(self, recent: list[RecentStamp]) -> None:
        table = self.recent
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
                item = table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    table.setItem(row, column, item)
                item.setText(text)
                if column == 1:
                    item.setForeground(colour)
                    item.setToolTip(stamp.void_detail)
        table.setUpdatesEnabled(True)

    def _show_rolls(self, rolls: tuple[RollSummary, ...]) -> None:
        """The selected product's rolls: a row each on a large screen; on a compact one (where a stop alarm's banner
        leaves no room for even one row of a table) one summary line, each roll in its tooltip."""
        self.rolls = rolls
        small = self.density is not Density.LARGE
        self.rolls_table.setVisible(not small)
        self.rolls_caption.setVisible(not small)
        self.rolls_summary.setVisible(small)
        lines = [self.tr("%1 (%2): activated %3, unused %4, voided %5, refused %6")
                 .replace("%1", r.roll_id).replace("%2", word(ROLL_WORDS[r.state]))
                 .replace("%3", thousands(r.activated)).replace("%4", thousands(r.unused))
                 .replace("%5", thousands(r.voided)).replace("%6", thousands(r.refused)) for r in rolls]
        total = {key: thousands(sum(getattr(r, key) for r in rolls))
                 for key in ("activated", "unused", "voided", "refused")}
        self.rolls_summary.setText(
            self.tr("Rolls %1: activated %2, unused %3, voided %4, refused %5")
            .replace("%1", str(len(rolls))).replace("%2", total["activated"]).replace("%3", total["unused"])
            .replace("%4", total["voided"]).replace("%5", total["refused"]) if rolls else "")
        self.rolls_summary.setToolTip("\n".join(lines))
        table = self.rolls_table
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
        if self.rolls_box.isHidden() == bool(rolls):
            self.rolls_box.setVisible(bool(rolls))

    def _printer_text(self, d: DeviceHealth) -> str:
        return {
            "ready": self.tr("ready"), "unknown": self.tr("status not known yet"),
            "faulted": self.tr("fault: %1").replace(
                "%1", ", ".join(word(FAULT_WORDS.get(f, f)) for f in d.printer_faults) or d.printer_detail),
            "unreachable": self.tr("not answering"),
        }[d.printer_condition]

    def _show_devices(self, d: DeviceHealth) -> None:
        printer = {"ready": "ok", "unknown": "unknown", "faulted": "bad", "unreachable": "bad"}[d.printer_condition]
        self.lamps["printer"].set_level(printer, self._printer_text(d))
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


__all__ = ["OperatorScreen", "BatchDialog", "RateMeter", "QrView", "STATE_WORDS", "word", "alarm_lines"]
