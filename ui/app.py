"""The station's program with a screen: QApplication, translations (Vietnamese by default), the operator's and
the technician's screens in one window, kiosk mode, and an orderly stop of the line and the devices on exit.

``station run`` (without ``--headless``) calls ``main(config_path, kiosk=…, language=…)``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import string
import sys
from pathlib import Path

from app.display import display_problem, no_display_message
from app.runtime import RunOptions
from station.config import StationConfig, load_config
from station.errors import ConfigError
from station.engine import LineState
from ui.adaptive import SMALLEST, Density, density_for
from ui.bridge import StationBridge, Worker
from ui.operator import OperatorScreen
from ui.qt import (
    QApplication,
    QCloseEvent,
    QFont,
    QFontDatabase,
    QKeySequence,
    QLayout,
    QLocale,
    QMainWindow,
    QMessageBox,
    QObject,
    QResizeEvent,
    QShortcut,
    QSize,
    QSocketNotifier,
    QStackedWidget,
    Qt,
    QTimer,
    QTranslator,
    QWidget,
)
from ui.technician import TechnicianScreen

log = logging.getLogger(__name__)

I18N = Path(__file__).resolve().parent / "i18n"
LANGUAGES = ("vi", "en")
_installed: list[QTranslator] = []

# The screens' style, with every size taken from the density (ui.adaptive): LARGE is the original 1280×800 look,
# MEDIUM fits a 1024×600 panel and SMALL the 800×480 official 7" display. Touch targets stay 40 px or taller.
# (QTabBar gets the tabs' font size too: Qt sizes a tab with the bar's font, and a larger ::tab font was cut.)
SIZES: dict[Density, dict[str, int]] = {
    Density.LARGE: dict(
        base=18, button_h=56, button_pad_v=6, button_pad_h=18, command=30, command_h=68, ack=24, ack_w=180,
        ack_h=60, pad=34, pad_h=84, pad_w=110, input=20, input_h=48, tile=60, tile_pad=10, tile_h=90, reason=20,
        caption=16, counter_name=22, counter_value=34, void=16, rate=48, rate_w=90, serial=24, lot=20, result=18,
        lamp_name=20, lamp_detail=15, lamp_dot=34, alarm=28, alarm_second=18, clock=20, clock_pad=12, status=16,
        error=20, title=30, pin=40, pin_h=72, raw=14, table=17, header=16, tab=20, tab_h=48, tab_w=110, tab_pad=14),
    Density.MEDIUM: dict(
        base=16, button_h=48, button_pad_v=4, button_pad_h=12, command=24, command_h=62, ack=20, ack_w=130,
        ack_h=48, pad=28, pad_h=60, pad_w=96, input=18, input_h=44, tile=40, tile_pad=2, tile_h=0, reason=17,
        caption=14, counter_name=18, counter_value=26, void=14, rate=34, rate_w=64, serial=20, lot=17, result=16,
        lamp_name=16, lamp_detail=13, lamp_dot=26, alarm=22, alarm_second=15, clock=17, clock_pad=6, status=14,
        error=17, title=24, pin=32, pin_h=56, raw=13, table=15, header=14, tab=17, tab_h=44, tab_w=90, tab_pad=10),
    Density.SMALL: dict(
        base=15, button_h=44, button_pad_v=2, button_pad_h=8, command=20, command_h=48, ack=17, ack_w=100,
        ack_h=44, pad=24, pad_h=48, pad_w=84, input=16, input_h=40, tile=26, tile_pad=2, tile_h=0, reason=14,
        caption=13, counter_name=15, counter_value=20, void=13, rate=24, rate_w=44, serial=15, lot=14, result=14,
        lamp_name=14, lamp_detail=12, lamp_dot=18, alarm=17, alarm_second=13, clock=15, clock_pad=4, status=13,
        error=15, title=20, pin=26, pin_h=46, raw=12, table=14, header=13, tab=15, tab_h=40, tab_w=64, tab_pad=8),
}

STYLE_TEMPLATE = string.Template("""
QWidget { font-size: ${base}px; }
QPushButton { min-height: ${button_h}px; padding: ${button_pad_v}px ${button_pad_h}px; border-radius: 8px;
              background: #e3e7eb; border: 1px solid #b0b8c0; }
QPushButton:pressed { background: #c5ccd3; }
QPushButton:disabled { color: #9aa3ab; background: #f0f2f4; border-color: #dde1e5; }
QPushButton#start { background: #1b7f3b; color: white; font-size: ${command}px; font-weight: bold;
                    min-height: ${command_h}px; }
QPushButton#pause { background: #e0a100; color: black; font-size: ${command}px; font-weight: bold;
                    min-height: ${command_h}px; }
QPushButton#stop { background: #c62828; color: white; font-size: ${command}px; font-weight: bold;
                   min-height: ${command_h}px; }
QPushButton#start:disabled, QPushButton#pause:disabled, QPushButton#stop:disabled {
    background: #d5d9dd; color: #8a939b; }
QPushButton#primary { background: #1565c0; color: white; font-weight: bold; }
QPushButton#ack { background: white; color: black; font-size: ${ack}px; font-weight: bold; min-width: ${ack_w}px;
                  min-height: ${ack_h}px; }
QPushButton#quiet { background: transparent; border: 1px solid #b0b8c0; }
QPushButton#padKey, QPushButton#padOk { font-size: ${pad}px; min-height: ${pad_h}px; min-width: ${pad_w}px; }
QPushButton#padOk { background: #1565c0; color: white; }
QComboBox, QLineEdit, QSpinBox, QDateEdit { min-height: ${input_h}px; font-size: ${input}px; padding: 0 8px; }
QLabel#stateTile { font-size: ${tile}px; font-weight: bold; border-radius: 12px; padding: ${tile_pad}px;
                   min-height: ${tile_h}px; }
QLabel#stateReason { font-size: ${reason}px; color: #b71c1c; }
QLabel#caption { font-size: ${caption}px; color: #5c6670; }
QLabel#counterName { font-size: ${counter_name}px; }
QLabel#counterValue { font-size: ${counter_value}px; font-weight: bold; }
QLabel#voidDetail { font-size: ${void}px; color: #b71c1c; }
QLabel#rate { font-size: ${rate}px; font-weight: bold; color: #1565c0; min-width: ${rate_w}px; }
QLabel#lastSerial { font-size: ${serial}px; font-weight: bold; font-family: "DejaVu Sans Mono"; }
QLabel#lastLot { font-size: ${lot}px; }
QLabel#lastResult { font-size: ${result}px; font-weight: bold; }
QLabel#lampDot { font-size: ${lamp_dot}px; }
QLabel#lampName { font-size: ${lamp_name}px; font-weight: bold; }
QLabel#lampDetail { font-size: ${lamp_detail}px; color: #444; }
QLabel#alarmText { font-size: ${alarm}px; font-weight: bold; }
QLabel#alarmSecond { font-size: ${alarm_second}px; }
QFrame#alarmBanner { border-radius: 10px; padding: 2px; }
QLabel#clock { font-size: ${clock}px; color: #333; padding: 0 ${clock_pad}px; }
QLabel#statusLine { font-size: ${status}px; color: #444; }
QLabel#errorText { color: #b71c1c; font-size: ${error}px; }
QLabel#title { font-size: ${title}px; font-weight: bold; }
QLineEdit#pinDisplay { font-size: ${pin}px; min-height: ${pin_h}px; letter-spacing: 12px; }
QPlainTextEdit#rawLines { font-family: "DejaVu Sans Mono"; font-size: ${raw}px; }
QTableWidget { font-size: ${table}px; }
QHeaderView::section { font-size: ${header}px; padding: 4px; }
QTabBar { font-size: ${tab}px; }
QTabBar::tab { min-height: ${tab_h}px; min-width: ${tab_w}px; font-size: ${tab}px; padding: 0 ${tab_pad}px; }
""")


def style_sheet(density: Density = Density.LARGE) -> str:
    """The screens' style sheet for a density."""
    return STYLE_TEMPLATE.substitute(SIZES[density])


STYLE = style_sheet(Density.LARGE)


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
        # The window is as large as it is made (the screen, in kiosk mode) and the screens lay themselves out for
        # that size, rather than the window growing to whatever the screens asked for at the largest type.
        self.layout().setSizeConstraint(QLayout.SetNoConstraint)
        self.density: Density | None = None
        screen = QApplication.primaryScreen()
        smallest = QSize(*SMALLEST)
        if screen is not None:
            smallest = smallest.boundedTo(screen.availableGeometry().size())
        self.setMinimumSize(smallest)
        available = screen.availableGeometry().size() if screen is not None else QSize(1280, 800)
        self.set_density(density_for(available.width(), available.height()))

    def set_density(self, density: Density) -> None:
        """Style and lay out both screens for ``density`` (from the window's size: see resizeEvent)."""
        if density is self.density:
            return
        self.density = density
        self.setStyleSheet(style_sheet(density))
        self.operator.set_density(density)
        self.technician.set_density(density)
        # The page not on show must not keep the sizes it had at the old density (a hidden widget's layout keeps
        # its cached sizes until shown, and the stacked pages' minimum is the window's): the innermost first.
        for widget in reversed([self.pages, *self.pages.findChildren(QWidget)]):
            layout = widget.layout()
            if layout is not None and not widget.isVisible():
                layout.invalidate()
                layout.activate()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802  (Qt's name)
        super().resizeEvent(event)
        self.set_density(density_for(event.size().width(), event.size().height()))

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


class StopOnSignals(QObject):
    """SIGTERM (systemd, ``timeout``, ``kill``), SIGINT (Ctrl-C) and SIGHUP (a closed terminal, a logout) stop the
    line and close the program as closing the window does, without the question; a second one aborts at once.

    Qt's event loop runs no Python code while it waits, so a Python signal handler would wait for the next event,
    however long: Python's C-level handler writes the signal's number to a socket (``signal.set_wakeup_fd``), a
    QSocketNotifier on it wakes the loop, and the handler runs then.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, app: QApplication, window: MainWindow) -> None:
        super().__init__(app)
        self.app, self.window = app, window
        self.received: int | None = None
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno())
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Read, self)
        self._notifier.activated.connect(self._drain)
        self._previous = {signum: signal.signal(signum, self._on_signal) for signum in self.SIGNALS}

    def _drain(self, _fd: int) -> None:
        try:
            self._read.recv(512)       # the Python handler has run by the time this slot's code does
        except OSError:
            pass

    def _on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            log.error("%s again: aborting without waiting for the line", name)
            os._exit(128 + signum)
        self.received = signum
        log.warning("%s: stopping the line (stamps in flight get their verification window) and closing", name)
        QTimer.singleShot(0, self._stop)           # out of the handler first

    def _stop(self) -> None:
        self.window.shutdown()
        self.app.quit()

    def close(self) -> None:
        """Give the signals back to whoever had them (the program is leaving Qt's loop)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()


def main(config_path: str | Path | None = None, *, kiosk: bool | None = None, language: str | None = None,
         argv: list[str] | None = None, demo_batch: tuple[str | None, str | None] | None = None,
         count: int | None = None, start_line: bool = False) -> int:
    """Run the station with its screens until the window closes or a signal stops it (SIGTERM, SIGINT, SIGHUP: the
    line is stopped cleanly first); prints the run's summary on the way out. 0 on a normal exit or a stop by signal,
    2 on a configuration error or when there is no display to open the screen on (said, with how to run headless,
    instead of Qt's abort).

    ``kiosk`` and ``language`` override ``ui.kiosk`` / ``ui.language`` of the configuration when given.
    ``demo_batch`` (product GTIN, lot; None for the first product, today's lot) opens that batch and chooses it, so
    Start can be pressed at once; ``count`` fills in the items to pack; ``start_line`` presses Start once it can.
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
    problem = display_problem() if QApplication.instance() is None else None
    if problem is not None:                      # Qt would abort the process (a core dump) creating the app
        print(no_display_message(problem), file=sys.stderr)
        return 2
    QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("packing-station")
    window = build_window(config, kiosk=kiosk, language=language, start=False)
    if demo_batch is not None:
        window.operator.open_batch_when_ready(*demo_batch, count=count, start=start_line)
    window.start()
    if window.kiosk:
        window.showFullScreen()
    else:
        screen = app.primaryScreen()
        size = QSize(1280, 800)
        if screen is not None:                   # a 1024×600 or 800×480 panel gets a window that fits it
            size = size.boundedTo(screen.availableGeometry().size())
        window.resize(size)
        window.show()
    app.aboutToQuit.connect(window.shutdown)
    stopper = StopOnSignals(app, window)
    try:
        code = int(app.exec_())
    finally:
        stopper.close()
    window.shutdown()
    summary = window.bridge.last_summary
    if summary is not None:
        print("summary:")
        for line in summary.lines():
            print(f"  {line}")
        sys.stdout.flush()
    return code


__all__ = ["main", "build_window", "MainWindow", "install_translations", "STYLE", "style_sheet"]
