"""The operator screen's small widgets: the QR of the last stamp, the rate's sparkline and meter, a device's
lamp, the state tile, and the tables and boxes that fit themselves to the room they get.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import segno

from ui.adaptive import ElidedLabel
from ui.operator_words import STATE_WORDS, word
from ui.qt import (
    QColor,
    QComboBox,
    QFont,
    QFontMetrics,
    QFrame,
    QGridLayout,
    QImage,
    QLabel,
    QLayout,
    QPaintEvent,
    QPainter,
    QPen,
    QPointF,
    QRectF,
    QSize,
    QSizePolicy,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QTableWidget,
    QWidget,
    Qt,
)


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


def caption(text: str) -> QLabel:
    """A panel's heading, in the style sheet's caption type."""
    label = QLabel(text)
    label.setObjectName("caption")
    return label


def box(layout: QLayout, *items: Any, spacing: int | None = None, into: QWidget | None = None) -> QWidget:
    """A plain widget (or `into`) holding ``layout`` with ``items`` (widgets, layouts, (widget, stretch), or
    spacings), without margins."""
    widget = into if into is not None else QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
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
    return widget


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
