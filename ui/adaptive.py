"""Screens that fit the panel they are shown on.

A station may drive a 1280×800 monitor, a 1024×600 HDMI panel or the Raspberry Pi's official 7" display
(800×480), in kiosk mode. The screens pick a *density* from the size they are given (in kiosk mode, the screen's
geometry; a window starts at the screen's available geometry) and lay themselves out for it: type and touch
targets scale down, secondary panes give up their room first, and a label whose text does not fit elides it with
"…" and carries the whole text as its tooltip instead of cutting it silently.
"""

from __future__ import annotations

from enum import Enum

from ui.qt import (
    QEvent,
    QFontMetrics,
    QFrame,
    QLabel,
    QObject,
    QScrollArea,
    QSize,
    QSizePolicy,
    Qt,
    QTextLayout,
    QWidget,
)


class Density(str, Enum):
    LARGE = "large"      # 1280×800 and up: the original layout
    MEDIUM = "medium"    # 1024×600 HDMI panels
    SMALL = "small"      # 800×480, the official 7" Raspberry Pi display

    @property
    def compact(self) -> bool:
        return self is not Density.LARGE


# The smallest window the screens are laid out for, and where each density starts (width, height).
SMALLEST = (800, 480)
LARGE_FROM = (1280, 800)
MEDIUM_FROM = (960, 560)


def density_for(width: int, height: int) -> Density:
    """The density for a window (or a full screen) of ``width`` × ``height`` pixels."""
    if width >= LARGE_FROM[0] and height >= LARGE_FROM[1]:
        return Density.LARGE
    if width >= MEDIUM_FROM[0] and height >= MEDIUM_FROM[1]:
        return Density.MEDIUM
    return Density.SMALL


def line_spans(text: str, font: object, width: int) -> list[tuple[int, int]]:
    """(start, length) of each line Qt draws ``text`` in at ``width`` pixels with ``font`` (a QFont)."""
    layout = QTextLayout(text, font)
    layout.beginLayout()
    spans = []
    while True:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(max(1, width))
        spans.append((line.textStart(), line.textLength()))
    layout.endLayout()
    return spans


def wrap_lines(text: str, font: object, width: int) -> list[str]:
    """``text`` (one paragraph) broken into the lines Qt would draw at ``width`` pixels with ``font``."""
    return [text[start:start + length].strip() for start, length in line_spans(text, font, width)]


class ElidedLabel(QLabel):
    """A label that wraps its text on up to ``max_lines`` lines and elides what is left with "…".

    When anything is left out, the whole text is the label's tooltip, so a tap (or a hover) shows it. ``text()``
    is always the whole text; ``shown_text()`` is what is drawn.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None, *, max_lines: int = 1) -> None:
        super().__init__(parent)
        self._full = ""
        self._max_lines = max(1, max_lines)
        self._elided = False
        self._tooltip = ""
        self.setWordWrap(False)
        policy = QSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setText(text)

    # -- the text ---------------------------------------------------------------------------------------

    def setText(self, text: str) -> None:  # noqa: N802  (Qt's name)
        text = text or ""
        if text == self._full:
            return
        self._full = text
        self._refit()
        self.updateGeometry()

    def text(self) -> str:
        return self._full

    def shown_text(self) -> str:
        return QLabel.text(self)

    def is_elided(self) -> bool:
        return self._elided

    def set_max_lines(self, lines: int) -> None:
        lines = max(1, lines)
        if lines != self._max_lines:
            self._max_lines = lines
            self._refit()
            self.updateGeometry()

    @property
    def max_lines(self) -> int:
        return self._max_lines

    def setToolTip(self, text: str) -> None:  # noqa: N802
        self._tooltip = text
        super().setToolTip(text if not self._elided else self._full)

    # -- geometry ---------------------------------------------------------------------------------------

    def _margins(self) -> tuple[int, int]:
        m = self.contentsMargins()
        extra = 2 * self.margin()
        return m.left() + m.right() + extra, m.top() + m.bottom() + extra

    def _one_paragraph(self) -> str:
        return " ".join(self._full.split())

    def _lines_for(self, width: int) -> list[str]:
        return wrap_lines(self._one_paragraph(), self.font(), width) if self._full else []

    def _refit(self) -> None:
        width = max(1, self.contentsRect().width() - 2 * self.margin())
        metrics = QFontMetrics(self.font())
        text = self._one_paragraph()
        spans = line_spans(text, self.font(), width) if text else []
        lines = [text[start:start + length].strip() for start, length in spans]
        elided = len(lines) > self._max_lines or any(metrics.horizontalAdvance(line) > width for line in lines)
        if elided:
            kept = lines[:self._max_lines - 1]
            start = spans[self._max_lines - 1][0] if len(spans) >= self._max_lines else 0
            shown = "\n".join(kept + [metrics.elidedText(text[start:].strip(), Qt.ElideRight, width)])
        else:
            shown = "\n".join(lines)
        self._elided = elided
        QLabel.setText(self, shown)
        QLabel.setToolTip(self, self._full if elided else self._tooltip)

    def sizeHint(self) -> QSize:  # noqa: N802
        metrics = QFontMetrics(self.font())
        dx, dy = self._margins()
        width = metrics.horizontalAdvance(self._one_paragraph())
        return QSize(width + dx + 2, metrics.lineSpacing() + dy)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        metrics = QFontMetrics(self.font())
        dx, dy = self._margins()
        return QSize(metrics.horizontalAdvance("…") + dx + 2, metrics.lineSpacing() + dy)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        metrics = QFontMetrics(self.font())
        dx, dy = self._margins()
        lines = len(self._lines_for(max(1, width - dx))) if self._full else 1
        return max(1, min(lines, self._max_lines)) * metrics.lineSpacing() + dy

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._refit()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() in (QEvent.FontChange, QEvent.StyleChange, QEvent.ContentsRectChange):
            self._refit()
            self.updateGeometry()


class FitScrollArea(QScrollArea):
    """A scroll area that gives its widget the whole viewport and scrolls only when the widget's *minimum* size
    does not fit. (With ``widgetResizable``, Qt keeps a widget holding word-wrapped labels at its preferred height,
    so a tab would scroll on a large screen too.)"""

    def __init__(self, widget: QWidget | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(False)
        self.setFrameShape(QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.viewport().installEventFilter(self)
        if widget is not None:
            self.setWidget(widget)

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802
        super().setWidget(widget)
        widget.installEventFilter(self)
        self._fit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() in (QEvent.Resize, QEvent.LayoutRequest) and watched in (self.viewport(), self.widget()):
            self._fit()
        return False

    def _fit(self) -> None:
        widget = self.widget()
        if widget is None:
            return
        room = self.viewport().size()
        needed = widget.minimumSizeHint().expandedTo(widget.minimumSize())
        size = QSize(max(room.width(), needed.width()), max(room.height(), needed.height()))
        if widget.size() != size:
            widget.resize(size)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(64, 64)

    def sizeHint(self) -> QSize:  # noqa: N802
        widget = self.widget()
        return widget.sizeHint() if widget is not None else super().sizeHint()


def text_fits(label: QLabel) -> bool:
    """Whether a label shows its whole text: it is not elided, and an unwrapped text is as wide as it needs."""
    if isinstance(label, ElidedLabel):
        return not label.is_elided()
    if hasattr(label, "text_fits"):
        return bool(label.text_fits())
    if label.wordWrap():
        return label.heightForWidth(label.width()) <= label.height()
    return label.sizeHint().width() <= label.width() + 1


__all__ = ["Density", "density_for", "ElidedLabel", "FitScrollArea", "wrap_lines", "line_spans", "text_fits",
           "SMALLEST", "LARGE_FROM", "MEDIUM_FROM"]
