"""The one module that imports PyQt5: every other module in ui/ takes its Qt names from here.

Keeping the binding behind one door means a move to PyQt6/PySide is one file, and a test can see at a glance
that nothing outside ui/ reaches for Qt.
"""

from __future__ import annotations

from PyQt5 import sip
from PyQt5.QtCore import (
    PYQT_VERSION_STR,
    QT_TRANSLATE_NOOP,
    QT_VERSION_STR,
    QCoreApplication,
    QDate,
    QElapsedTimer,
    QEvent,
    QLibraryInfo,
    QLocale,
    QObject,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QSize,
    QSocketNotifier,
    Qt,
    QTimer,
    QTranslator,
    pyqtSignal,
    pyqtSlot,
)
from PyQt5.QtGui import (
    QBrush,
    QCloseEvent,
    QColor,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QImage,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
    QTextLayout,
)
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QShortcut,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

Signal = pyqtSignal
Slot = pyqtSlot


def translate(context: str, text: str) -> str:
    """Translate outside a QObject (pylupdate5 finds the literal in ``QCoreApplication.translate`` calls only,
    so callers still write ``QCoreApplication.translate("Ctx", "text")`` where the text is a literal)."""
    return QCoreApplication.translate(context, text)


def is_deleted(obj: object) -> bool:
    """Whether the C++ side of a Qt object is gone (a late callback for a closed dialog must do nothing)."""
    return isinstance(obj, sip.simplewrapper) and sip.isdeleted(obj)


__all__ = [name for name in dir() if not name.startswith("_")]
