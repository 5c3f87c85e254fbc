"""The station's program with a screen: QApplication, translations (Vietnamese by default), the operator's and
the technician's screens in one window, kiosk mode, and an orderly stop of the line and the devices on exit.

``station run`` (without ``--headless``) calls ``main(config_path, kiosk=…, language=…)``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from app.runtime import RunOptions
from station.config import StationConfig, load_config
from station.errors import ConfigError
from station.engine import LineState
from ui.bridge import StationBridge, Worker
from ui.operator import OperatorScreen
from ui.qt import (
    QApplication,
    QCloseEvent,
    QFont,
    QFontDatabase,
    QKeySequence,
    QLocale,
    QMainWindow,
    QMessageBox,
    QShortcut,
    QStackedWidget,
    Qt,
    QTranslator,
)
from ui.technician import TechnicianScreen

log = logging.getLogger(__name__)

I18N = Path(__file__).resolve().parent / "i18n"
LANGUAGES = ("vi", "en")
_installed: list[QTranslator] = []

STYLE = """
QWidget { font-size: 18px; }
QPushButton { min-height: 56px; padding: 6px 18px; border-radius: 8px; background: #e3e7eb;
              border: 1px solid #b0b8c0; }
QPushButton:pressed { background: #c5ccd3; }
QPushButton:disabled { color: #9aa3ab; background: #f0f2f4; border-color: #dde1e5; }
QPushButton#start { background: #1b7f3b; color: white; font-size: 30px; font-weight: bold; min-height: 68px; }
QPushButton#pause { background: #e0a100; color: black; font-size: 30px; font-weight: bold; min-height: 68px; }
QPushButton#stop { background: #c62828; color: white; font-size: 30px; font-weight: bold; min-height: 68px; }
QPushButton#start:disabled, QPushButton#pause:disabled, QPushButton#stop:disabled {
    background: #d5d9dd; color: #8a939b; }
QPushButton#primary { background: #1565c0; color: white; font-weight: bold; }
QPushButton#ack { background: white; color: black; font-size: 24px; font-weight: bold; min-width: 180px;
                  min-height: 60px; }
QPushButton#quiet { background: transparent; border: 1px solid #b0b8c0; }
QPushButton#padKey, QPushButton#padOk { font-size: 34px; min-height: 84px; min-width: 110px; }
QPushButton#padOk { background: #1565c0; color: white; }
QComboBox, QLineEdit, QSpinBox, QDateEdit { min-height: 48px; font-size: 20px; padding: 0 8px; }
QLabel#stateTile { font-size: 60px; font-weight: bold; border-radius: 12px; padding: 10px; }
QLabel#stateReason { font-size: 20px; color: #b71c1c; }
QLabel#caption { font-size: 16px; color: #5c6670; }
QLabel#counterName { font-size: 22px; }
QLabel#counterValue { font-size: 34px; font-weight: bold; }
QLabel#voidDetail { font-size: 16px; color: #b71c1c; }
QLabel#rate { font-size: 48px; font-weight: bold; color: #1565c0; min-width: 90px; }
QLabel#lastSerial { font-size: 24px; font-weight: bold; font-family: "DejaVu Sans Mono"; }
QLabel#lastLot { font-size: 20px; }
QLabel#lastResult { font-size: 18px; font-weight: bold; }
QLabel#lampName { font-size: 20px; font-weight: bold; }
QLabel#lampDetail { font-size: 15px; color: #444; }
QLabel#alarmText { font-size: 28px; font-weight: bold; }
QLabel#alarmSecond { font-size: 18px; }
QFrame#alarmBanner { border-radius: 10px; padding: 2px; }
QLabel#clock { font-size: 20px; color: #333; padding: 0 12px; }
QLabel#statusLine { font-size: 16px; color: #444; }
QLabel#errorText { color: #b71c1c; font-size: 20px; }
QLabel#title { font-size: 30px; font-weight: bold; }
QLineEdit#pinDisplay { font-size: 40px; min-height: 72px; letter-spacing: 12px; }
QPlainTextEdit#rawLines { font-family: "DejaVu Sans Mono"; font-size: 14px; }
QTableWidget { font-size: 17px; }
QHeaderView::section { font-size: 16px; padding: 4px; }
QTabBar::tab { min-height: 48px; min-width: 110px; font-size: 20px; padding: 0 14px; }
"""


def install_translations(app: QApplication, language: str) -> list[QTranslator]:
    """Load the screens' translation for ``language`` (English is the source language: nothing to load)."""
    QLocale.setDefault(QLocale(QLocale.Vietnamese, QLocale.Vietnam) if language == "vi"
                       else QLocale(QLocale.English, QLocale.UnitedKingdom))
    for old in _installed:          # a second window in the same process (tests) may speak another language
        app.removeTranslator(old)
    _installed.clear()
    if language != "en":
        translator = QTranslator(app)
        if translator.load(f"station_{language}", str(I18N)):
            app.installTranslator(translator)
            _installed.append(translator)
        else:
            log.warning("no translation station_%s.qm in %s: the screens will be in English", language, I18N)
    return list(_installed)


def _pick_font(app: QApplication) -> None:
    # DejaVu Sans carries every Vietnamese letter with its stacked marks (ế, ổ, ự); fall back to the default.
    if "DejaVu Sans" in QFontDatabase().families():
        font = QFont("DejaVu Sans")
        font.setPixelSize(18)
        app.setFont(font)


class MainWindow(QMainWindow):
    """The operator's screen, with the technician's screen one PIN away."""

    def __init__(self, config: StationConfig, *, kiosk: bool = False, language: str = "vi",
                 snapshot_ms: int = 1000, options: RunOptions = RunOptions()) -> None:
        super().__init__()
        self.kiosk = kiosk
        self.worker = Worker(self)
        self.bridge = StationBridge(config, self.worker, snapshot_ms=snapshot_ms, options=options, parent=self)
        self.operator = OperatorScreen(self.bridge, language)
        self.technician = TechnicianScreen(self.bridge)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.operator)
        self.pages.addWidget(self.technician)
        self.setCentralWidget(self.pages)
        self.setWindowTitle(self.tr("Packing station %1 / %2").replace("%1", config.station.site)
                            .replace("%2", config.station.id))
        self.operator.technicianRequested.connect(self.show_technician)
        self.technician.closed.connect(self.show_operator)
        self.technician.quitRequested.connect(self.close)
        self._shut_down = False
        if not kiosk:
            QShortcut(QKeySequence("Ctrl+Q"), self, activated=self.close)

    def start(self) -> None:
        self.bridge.start()

    def show_technician(self) -> None:
        self.pages.setCurrentWidget(self.technician)
        self.technician.setFocus()

    def show_operator(self) -> None:
        self.pages.setCurrentWidget(self.operator)

    def shutdown(self) -> None:
        """Stop the line, the devices and the worker (waits for them: the window is going away)."""
        if not self._shut_down:
            self._shut_down = True
            self.bridge.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._shut_down and self.bridge.state not in (LineState.STOPPED,):
            answer = QMessageBox.question(self, self.tr("Close"),
                                          self.tr("The line is running. Stop it and close the program?"))
            if answer != QMessageBox.Yes:
                event.ignore()
                return
        self.shutdown()
        event.accept()


def build_window(config: StationConfig, *, kiosk: bool | None = None, language: str | None = None,
                 snapshot_ms: int = 1000, options: RunOptions = RunOptions(), start: bool = True) -> MainWindow:
    """The window for a configuration, on the running QApplication (tests and the screenshot script use this)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication), "create the QApplication first"
    language = language or config.ui.language.value
    kiosk = config.ui.kiosk if kiosk is None else kiosk
    install_translations(app, language)
    _pick_font(app)
    app.setStyleSheet(STYLE)
    window = MainWindow(config, kiosk=kiosk, language=language, snapshot_ms=snapshot_ms, options=options)
    if kiosk:
        window.setWindowFlags(Qt.Window | Qt.FramelessWindowHint)
    if start:
        window.start()
    return window


def main(config_path: str | Path | None = None, *, kiosk: bool | None = None, language: str | None = None,
         argv: list[str] | None = None) -> int:
    """Run the station with its screens until the window closes; 0 on a normal exit, 2 on a configuration error.

    ``kiosk`` and ``language`` override ``ui.kiosk`` / ``ui.language`` of the configuration when given.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"station: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if language is not None and language not in LANGUAGES:
        print(f"station: language {language!r}: expected one of {', '.join(LANGUAGES)}", file=sys.stderr)
        return 2
    if kiosk if kiosk is not None else config.ui.kiosk:
        # A kiosk without a desktop draws straight on the screen unless someone chose a platform.
        os.environ.setdefault("QT_QPA_PLATFORM", "eglfs" if not os.environ.get("DISPLAY")
                              and not os.environ.get("WAYLAND_DISPLAY") else "xcb")
    QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("packing-station")
    window = build_window(config, kiosk=kiosk, language=language)
    if window.kiosk:
        window.showFullScreen()
    else:
        window.resize(1280, 800)
        window.show()
    app.aboutToQuit.connect(window.shutdown)
    return int(app.exec_())


__all__ = ["main", "build_window", "MainWindow", "install_translations", "STYLE"]
