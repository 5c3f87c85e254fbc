"""The technician's screen, behind a PIN: devices, MQTT, the label template, the PIN itself, and the audit log.

The screen shows and asks; what reaches a device, the broker or a file runs on the bridge's worker, in the modules
that hold it: `app.config_file` (save: the new file is validated as at start, a bad value refused with the reason
and the old file kept), `app.broker_check`, `app.label_preview` (preview and test print) and
`drivers.serial_ports`. Every login, refused PIN, configuration change and test print is written to the audit log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.broker_check import CheckStep, check_broker
from app.config_file import change_detail, config_value, save_config
from app.label_preview import preview_stamp_label, print_test_label
from drivers.serial_ports import discover_ports
from station.config import StationConfig, redact_url
from station.pin import PinError, PinGuard, hash_pin, validate_new_pin
from ui.adaptive import Density, FitScrollArea
from ui.bridge import DEVICE, RawLine, StationBridge
from ui.camera_view import CameraView
from ui.qt import (
    QT_TRANSLATE_NOOP,
    QAbstractItemView,
    QBoxLayout,
    QComboBox,
    QCoreApplication,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QImage,
    QLabel,
    QLineEdit,
    QListWidget,
    QPixmap,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)

ACTOR = "technician"


# -- the screen's words for the steps and refusals app.broker_check reports ------------------------------------

CHECK_STEPS = {
    "url": QT_TRANSLATE_NOOP("TechnicianScreen", "Broker address"),
    "tls_files": QT_TRANSLATE_NOOP("TechnicianScreen", "TLS files"),
    "dns": QT_TRANSLATE_NOOP("TechnicianScreen", "Host name (DNS)"),
    "tcp": QT_TRANSLATE_NOOP("TechnicianScreen", "Network connection (TCP)"),
    "tls": QT_TRANSLATE_NOOP("TechnicianScreen", "TLS handshake"),
    "mqtt": QT_TRANSLATE_NOOP("TechnicianScreen", "MQTT login"),
}

# What to check when the broker refused the login, by the alarm code of its reason.
REFUSAL_HINTS = {
    "mqtt_bad_credentials": QT_TRANSLATE_NOOP(
        "TechnicianScreen", "Bad credentials: the broker refused the user name or password. Check User name and "
                            "Password."),
    "mqtt_not_authorised": QT_TRANSLATE_NOOP(
        "TechnicianScreen", "Not authorised: the broker does not let this user in. Check User name and Password "
                            "(Mosquitto answers a wrong password this way too) and the user's rights on the broker."),
    "mqtt_client_id_refused": QT_TRANSLATE_NOOP(
        "TechnicianScreen", "The broker refused the client id: check mqtt.client_id against the broker's rules."),
    "mqtt_connection_refused": QT_TRANSLATE_NOOP(
        "TechnicianScreen", "The broker refused the connection: see the broker's log."),
}


def describe_printer_status(status: Any) -> list[tuple[str, str]]:
    """The printer's decoded status as (field, value) rows."""
    if status is None:
        return [("state", "not polled yet")]
    rows = [("state", str(status.state)), ("faults", ", ".join(map(str, status.faults)) or "none"),
            ("detail", status.detail)]
    host = status.host_status
    if host is not None:
        rows += [("paper_out", str(host.paper_out)), ("paused", str(host.paused)),
                 ("head_open", str(host.head_open)), ("ribbon_out", str(host.ribbon_out)),
                 ("formats_in_buffer", str(host.formats_in_buffer)), ("labels_remaining", str(host.labels_remaining)),
                 ("label_length_dots", str(host.label_length_dots)), ("print_mode", host.print_mode_name),
                 ("thermal_transfer", str(host.thermal_transfer)), ("buffer_full", str(host.buffer_full)),
                 ("over_temperature", str(host.over_temperature)),
                 ("under_temperature", str(host.under_temperature))]
    errors = status.error_status
    if errors is not None:
        rows += [("~HQES errors", ", ".join(errors.error_names) or "none")]
    return rows


# -- the screen ---------------------------------------------------------------------------------------------

class TechnicianScreen(QWidget):
    """PIN first; then devices, MQTT, label, PIN and audit tabs, with one Save for the configuration."""

    closed = Signal()
    quitRequested = Signal()

    def __init__(self, bridge: StationBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("technicianScreen")
        self.bridge = bridge
        self.guard = PinGuard()
        self.logged_in = False
        self._pin = ""

        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_pin_page())
        self.pages.addWidget(self._build_tabs_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages)

        bridge.rawScan.connect(self._on_raw)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(1000)
        self._status_timer.timeout.connect(self._refresh_printer_status)
        # Back to the operator after five idle minutes: a forgotten login must not stay open on a shared screen.
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(5 * 60 * 1000)
        self._idle.timeout.connect(self.leave)

    # -- fitting the screen ----------------------------------------------------------------------------

    def set_density(self, density: Density) -> None:
        """Lay the screen out for a density: on the smallest screen the device panels stack and scroll, and the
        save message gets a line of its own above the buttons."""
        self.density = density
        large, small = density is Density.LARGE, density is Density.SMALL
        margin = {Density.LARGE: 9, Density.MEDIUM: 6, Density.SMALL: 4}[density]
        self.tabs_layout.setContentsMargins(margin, margin, margin, margin)
        self.devices_layout.setDirection(QBoxLayout.TopToBottom if small else QBoxLayout.LeftToRight)
        self.ports.setMaximumHeight(150 if large else 110)
        while self.bottom.count():
            self.bottom.takeAt(0)
        # one row on a large screen (the message between the buttons), two on a compact one (the message above)
        row = 0 if large else 1
        if not large:
            self.bottom.addWidget(self.save_message, 0, 0, 1, 5)
        for column, widget in enumerate((self.quit_button, self.save_message if large else None, self.apply_button,
                                         self.save_button, self.back_button)):
            if widget is not None:
                self.bottom.addWidget(widget, row, column)
        self.bottom.setColumnStretch(1, 1)

    @staticmethod
    def _form(parent: QWidget | None = None) -> QFormLayout:
        """A form whose fields go under their labels when the screen is too narrow for both on one row."""
        form = QFormLayout(parent) if parent is not None else QFormLayout()
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        return form

    # -- PIN page -------------------------------------------------------------------------------------

    def _build_pin_page(self) -> QWidget:
        page = QWidget()
        title = QLabel(self.tr("Technician: enter the PIN"))
        title.setObjectName("title")
        self.pin_display = QLineEdit()
        self.pin_display.setObjectName("pinDisplay")
        self.pin_display.setEchoMode(QLineEdit.Password)
        self.pin_display.setReadOnly(True)
        self.pin_display.setAlignment(Qt.AlignCenter)
        self.pin_message = QLabel("")
        self.pin_message.setObjectName("errorText")
        self.pin_message.setAlignment(Qt.AlignCenter)
        pad = QGridLayout()
        for i, digit in enumerate("123456789"):
            pad.addWidget(self._pad_button(digit), i // 3, i % 3)
        clear = QPushButton(self.tr("Clear"))
        clear.setObjectName("padKey")
        clear.clicked.connect(lambda: self._set_pin(""))
        pad.addWidget(clear, 3, 0)
        pad.addWidget(self._pad_button("0"), 3, 1)
        self.pin_ok = QPushButton(self.tr("OK"))
        self.pin_ok.setObjectName("padOk")
        self.pin_ok.clicked.connect(lambda: self.submit_pin())
        pad.addWidget(self.pin_ok, 3, 2)
        back = QPushButton(self.tr("Back to the line"))
        back.clicked.connect(self.leave)
        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(title, 0, Qt.AlignCenter)
        column.addWidget(self.pin_display)
        column.addWidget(self.pin_message)
        column.addLayout(pad)
        column.addWidget(back)
        column.addStretch(1)
        outer = QHBoxLayout(page)
        outer.addStretch(1)
        outer.addLayout(column, 1)
        outer.addStretch(1)
        return page

    def _pad_button(self, digit: str) -> QPushButton:
        button = QPushButton(digit)
        button.setObjectName("padKey")
        button.clicked.connect(lambda: self._set_pin(self._pin + digit))
        return button

    def _set_pin(self, pin: str) -> None:
        self._pin = pin[:8]
        self.pin_display.setText(self._pin)

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802  (a keyboard works too)
        if self.pages.currentIndex() == 0:
            if event.text().isdigit():
                self._set_pin(self._pin + event.text())
                return
            if event.key() in (Qt.Key_Return, Qt.Key_Enter):
                self.submit_pin()
                return
            if event.key() == Qt.Key_Backspace:
                self._set_pin(self._pin[:-1])
                return
        super().keyPressEvent(event)

    def submit_pin(self, pin: str | None = None) -> None:
        pin = self._pin if pin is None else pin
        self._set_pin("")
        locked = self.guard.locked_for()
        if locked > 0:
            self.pin_message.setText(self.tr("Too many wrong PINs: wait %1 s.").replace("%1", str(int(locked) + 1)))
            return
        stored = self.bridge.config.technician.pin_hash
        self.pin_ok.setEnabled(False)
        self.pin_message.setText(self.tr("Checking…"))

        def check(station: Any) -> bool:
            ok = self.guard.check(pin, stored)
            station.store.audit(ACTOR, "login" if ok else "login_failed",
                                "" if ok else f"wrong PIN ({len(pin)} digits)")
            return ok

        def done(ok: bool) -> None:
            self.pin_ok.setEnabled(True)
            if ok:
                self.pin_message.setText("")
                self._enter()
            elif self.guard.locked_for() > 0:
                self.pin_message.setText(self.tr("Too many wrong PINs: wait %1 s.")
                                         .replace("%1", str(int(self.guard.locked_for()) + 1)))
            else:
                self.pin_message.setText(self.tr("Wrong PIN."))

        def failed(exc: BaseException) -> None:
            self.pin_ok.setEnabled(True)
            self.pin_message.setText(str(exc))

        self.bridge.call(check, done=done, failed=failed, lane=DEVICE, owner=self)

    def _enter(self) -> None:
        self.logged_in = True
        self.load_fields()
        self.pages.setCurrentIndex(1)
        self._status_timer.start()
        self._idle.start()
        self.refresh_ports()
        self.refresh_audit()
        self.preview_label()

    def leave(self) -> None:
        """Back to the operator's screen; the next visit asks for the PIN again."""
        if self.logged_in:
            self.bridge.call(lambda st: st.store.audit(ACTOR, "logout"))
        self.logged_in = False
        self._status_timer.stop()
        self._idle.stop()
        self._set_pin("")
        self.pin_message.setText("")
        self.pages.setCurrentIndex(0)
        self.closed.emit()

    def event(self, event: Any) -> bool:
        if self.logged_in and event.type() in (event.MouseButtonPress, event.KeyPress):
            self._idle.start()
        return super().event(event)

    # -- tabs page ------------------------------------------------------------------------------------

    def _build_tabs_page(self) -> QWidget:
        page = QWidget()
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(True)
        self.tabs.setElideMode(Qt.ElideNone)
        # Each tab scrolls when the screen is smaller than its content (the log is a table: it scrolls itself).
        self.tabs.addTab(self._scrolled(self._build_devices_tab()), self.tr("Devices"))
        self.tabs.addTab(self._scrolled(self._build_mqtt_tab()), self.tr("MQTT"))
        self.tabs.addTab(self._scrolled(self._build_label_tab()), self.tr("Label"))
        self.tabs.addTab(self._scrolled(self._build_line_tab()), self.tr("Line"))
        self.tabs.addTab(self._scrolled(self._build_pin_tab()), self.tr("PIN"))
        self.tabs.addTab(self._build_audit_tab(), self.tr("Log"))
        self.tabs.currentChanged.connect(lambda _: self.tabs.currentWidget() is self.audit_tab and self.refresh_audit())
        self.save_message = QLabel("")
        self.save_message.setObjectName("saveMessage")
        self.save_message.setWordWrap(True)
        self.save_message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.save_button = QPushButton(self.tr("Save the configuration"))
        self.save_button.setObjectName("primary")
        self.save_button.clicked.connect(lambda: self.save())
        self.apply_button = QPushButton(self.tr("Apply now (restart the devices)"))
        self.apply_button.clicked.connect(self.apply)
        self.apply_button.hide()
        self.back_button = QPushButton(self.tr("Back to the line"))
        self.back_button.clicked.connect(self.leave)
        self.quit_button = QPushButton(self.tr("Quit the program"))
        self.quit_button.setObjectName("quiet")
        self.quit_button.clicked.connect(self.quitRequested)
        self.bottom = QGridLayout()          # filled by set_density
        self.tabs_layout = QVBoxLayout(page)
        self.tabs_layout.addWidget(self.tabs, 1)
        self.tabs_layout.addLayout(self.bottom)
        return page

    @staticmethod
    def _scrolled(tab: QWidget) -> FitScrollArea:
        return FitScrollArea(tab)

    def _build_devices_tab(self) -> QWidget:
        tab = QWidget()
        self.ports = QListWidget()
        self.ports.setMaximumHeight(150)
        rescan = QPushButton(self.tr("Look for ports again"))
        rescan.clicked.connect(self.refresh_ports)
        use_scanner = QPushButton(self.tr("Use for the scanner"))
        use_scanner.clicked.connect(lambda: self._use_port("devices.verifier.url", "115200"))
        use_printer = QPushButton(self.tr("Use for the printer"))
        use_printer.clicked.connect(lambda: self._use_port("devices.printer.url", "9600"))
        self.printer_url = QLineEdit()
        self.verifier_url = QLineEdit()
        self.test_print_button = QPushButton(self.tr("Test print"))
        self.test_print_button.clicked.connect(self.test_print)
        self.test_print_result = QLabel("")
        self.test_print_result.setWordWrap(True)
        self.printer_status = QTableWidget(0, 2)
        self.printer_status.setHorizontalHeaderLabels([self.tr("Field"), self.tr("Value")])
        self.printer_status.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.printer_status.verticalHeader().hide()
        self.printer_status.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.raw_lines = QPlainTextEdit()
        self.raw_lines.setObjectName("rawLines")
        self.raw_lines.setReadOnly(True)
        self.raw_lines.setMaximumBlockCount(300)
        self.raw_counts = QLabel("")

        ports_box = QGroupBox(self.tr("Serial ports on this machine"))
        ports_layout = QVBoxLayout(ports_box)
        ports_layout.addWidget(self.ports)
        port_buttons = QHBoxLayout()
        for button in (rescan, use_scanner, use_printer):
            port_buttons.addWidget(button)
        ports_layout.addLayout(port_buttons)
        form = self._form()
        form.addRow(self.tr("Printer address"), self.printer_url)
        form.addRow(self.tr("Scanner address"), self.verifier_url)
        printer_box = QGroupBox(self.tr("Printer status (decoded)"))
        printer_layout = QVBoxLayout(printer_box)
        printer_layout.addWidget(self.printer_status)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_print_button)
        test_row.addWidget(self.test_print_result, 1)
        printer_layout.addLayout(test_row)
        scanner_box = QGroupBox(self.tr("What the scanner sends (live)"))
        scanner_layout = QVBoxLayout(scanner_box)
        scanner_layout.addWidget(self.raw_lines)
        scanner_layout.addWidget(self.raw_counts)
        left = QVBoxLayout()
        left.addWidget(ports_box)
        left.addLayout(form)
        left.addWidget(printer_box, 1)
        self.device_panels = QVBoxLayout()
        self.device_panels.addWidget(scanner_box, 1)
        self.camera_view: CameraView | None = None
        if self.bridge.config.devices.verifier.is_camera:
            self.camera_view = CameraView(self.bridge)
            self.add_device_panel(self.tr("Camera view (decoded codes outlined)"), self.camera_view)
        self.devices_layout = QBoxLayout(QBoxLayout.LeftToRight, tab)
        self.devices_layout.addLayout(left, 1)
        self.devices_layout.addLayout(self.device_panels, 1)
        return tab

    def add_device_panel(self, title: str, widget: QWidget) -> None:
        """Hook for device views built elsewhere (the camera view with its decoded region goes here)."""
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(widget)
        self.device_panels.addWidget(box, 1)

    def _build_mqtt_tab(self) -> QWidget:
        tab = QWidget()
        self.mqtt_url = QLineEdit()
        self.mqtt_user = QLineEdit()
        self.mqtt_password = QLineEdit()
        self.mqtt_password.setEchoMode(QLineEdit.Password)
        self.tls_fields = {name: QLineEdit() for name in ("ca", "cert", "key")}
        form = self._form()
        form.addRow(self.tr("Broker address"), self.mqtt_url)
        form.addRow(self.tr("User name"), self.mqtt_user)
        form.addRow(self.tr("Password"), self.mqtt_password)
        captions = {"ca": self.tr("CA certificate"), "cert": self.tr("Client certificate"),
                    "key": self.tr("Client key")}
        for name, edit in self.tls_fields.items():
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            choose = QPushButton(self.tr("Choose…"))
            choose.clicked.connect(lambda _=False, e=edit: self._choose_file(e))
            row.addWidget(choose)
            form.addRow(captions[name], row)
        self.check_button = QPushButton(self.tr("Test the connection"))
        self.check_button.clicked.connect(self.check_connection)
        self.check_result = QLabel("")
        self.check_result.setObjectName("checkResult")
        self.check_result.setWordWrap(True)
        self.check_result.setTextFormat(Qt.RichText)
        layout = QVBoxLayout(tab)
        layout.addLayout(form)
        layout.addWidget(self.check_button, 0, Qt.AlignLeft)
        layout.addWidget(self.check_result)
        layout.addStretch(1)
        return tab

    def _build_label_tab(self) -> QWidget:
        tab = QWidget()
        self.template_path = QLineEdit()
        preview = QPushButton(self.tr("Preview"))
        preview.clicked.connect(self.preview_label)
        self.label_image = QLabel("")
        self.label_image.setAlignment(Qt.AlignCenter)
        self.label_image.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.label_notes = QLabel("")
        self.label_notes.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel(self.tr("Label template (ZPL)")))
        row.addWidget(self.template_path, 1)
        row.addWidget(preview)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.label_image)
        layout = QVBoxLayout(tab)
        layout.addLayout(row)
        caption = QLabel(self.tr("As printed (same renderer as the printer simulator), with the current "
                                 "product and batch:"))
        caption.setWordWrap(True)
        layout.addWidget(caption)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.label_notes)
        return tab

    def _build_line_tab(self) -> QWidget:
        tab = QWidget()
        self.language_combo = QComboBox()
        self.language_combo.addItem("Tiếng Việt", "vi")
        self.language_combo.addItem("English", "en")
        self.kiosk_combo = QComboBox()
        self.kiosk_combo.addItem(self.tr("Window"), False)
        self.kiosk_combo.addItem(self.tr("Full screen (kiosk)"), True)
        self.resume_combo = QComboBox()
        self.resume_combo.addItem(self.tr("The operator presses Resume"), "manual")
        self.resume_combo.addItem(self.tr("By itself when the printer is ready"), "auto")
        self.verify_timeout = QLineEdit()
        self.max_failures = QLineEdit()
        form = self._form(tab)
        form.addRow(self.tr("Language of the screens"), self.language_combo)
        form.addRow(self.tr("Display"), self.kiosk_combo)
        form.addRow(self.tr("After a printer fault the line resumes"), self.resume_combo)
        form.addRow(self.tr("Verification window (seconds)"), self.verify_timeout)
        form.addRow(self.tr("Failed stamps in a row that stop the line"), self.max_failures)
        return tab

    def _build_pin_tab(self) -> QWidget:
        tab = QWidget()
        self.new_pin = QLineEdit()
        self.new_pin.setEchoMode(QLineEdit.Password)
        self.new_pin.setMaxLength(8)
        self.repeat_pin = QLineEdit()
        self.repeat_pin.setEchoMode(QLineEdit.Password)
        self.repeat_pin.setMaxLength(8)
        change = QPushButton(self.tr("Change the PIN"))
        change.clicked.connect(self.change_pin)
        self.pin_change_message = QLabel("")
        self.pin_change_message.setWordWrap(True)
        form = self._form()
        form.addRow(self.tr("New PIN (4 to 8 digits)"), self.new_pin)
        form.addRow(self.tr("New PIN again"), self.repeat_pin)
        layout = QVBoxLayout(tab)
        layout.addLayout(form)
        layout.addWidget(change, 0, Qt.AlignLeft)
        layout.addWidget(self.pin_change_message)
        layout.addStretch(1)
        return tab

    def _build_audit_tab(self) -> QWidget:
        self.audit_tab = QWidget()
        self.audit_table = QTableWidget(0, 4)
        self.audit_table.setHorizontalHeaderLabels([self.tr("Time (UTC)"), self.tr("Who"), self.tr("What"),
                                                    self.tr("Detail")])
        self.audit_table.horizontalHeader().setSectionResizeMode(3, QHeaderView.Stretch)
        self.audit_table.verticalHeader().hide()
        self.audit_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        layout = QVBoxLayout(self.audit_tab)
        layout.addWidget(self.audit_table)
        return self.audit_tab

    # -- fields <-> configuration ---------------------------------------------------------------------

    def _field_map(self) -> dict[str, Callable[[], Any]]:
        def text(edit: QLineEdit) -> Callable[[], str | None]:
            return lambda: edit.text().strip() or None

        def url(edit: QLineEdit, key: str) -> Callable[[], str | None]:
            # The field shows the URL with its password masked: left as shown, it means the saved URL.
            def read() -> str | None:
                value = edit.text().strip() or None
                saved = config_value(self.bridge.config, key)
                return saved if value is not None and saved and value == redact_url(saved) else value
            return read

        def number(edit: QLineEdit, kind: type) -> Callable[[], Any]:
            def read() -> Any:
                value = edit.text().strip()
                try:
                    return kind(value)
                except ValueError:
                    return value       # pydantic refuses it with the key named
            return read

        return {
            "devices.printer.url": url(self.printer_url, "devices.printer.url"),
            "devices.printer.template": text(self.template_path),
            "devices.verifier.url": url(self.verifier_url, "devices.verifier.url"),
            "mqtt.url": url(self.mqtt_url, "mqtt.url"),
            "mqtt.username": text(self.mqtt_user),
            "mqtt.password": self._password_value,
            "ui.language": lambda: self.language_combo.currentData(),
            "ui.kiosk": lambda: self.kiosk_combo.currentData(),
            "line.resume": lambda: self.resume_combo.currentData(),
            "line.verify_timeout_s": number(self.verify_timeout, float),
            "line.max_consecutive_failures": number(self.max_failures, int),
        }

    def _password_value(self) -> str | None:
        """What the password field means: a new password, or (left empty) the saved one; none without a user."""
        if not self.mqtt_user.text().strip():
            return None
        typed = self.mqtt_password.text()
        saved = self.bridge.config.mqtt.password
        return typed or (saved.get_secret_value() if saved is not None else None)

    def field_values(self) -> dict[str, Any]:
        values = {key: read() for key, read in self._field_map().items()}
        tls = {name: edit.text().strip() or None for name, edit in self.tls_fields.items()}
        current_tls = self.bridge.config.mqtt.tls
        if any(tls.values()) or current_tls is not None:
            values["mqtt.tls"] = {k: v for k, v in tls.items() if v} if any(tls.values()) else None
        return values

    def load_fields(self) -> None:
        config = self.bridge.config
        self.printer_url.setText(redact_url(config.devices.printer.url))
        self.template_path.setText(str(config.devices.printer.template))
        self.verifier_url.setText(redact_url(config.devices.verifier.url))
        self.mqtt_url.setText(redact_url(config.mqtt.url))
        self.mqtt_user.setText(config.mqtt.username or "")
        # The saved password never comes back into the field (not even as dots): an empty field keeps it.
        self.mqtt_password.clear()
        self.mqtt_password.setPlaceholderText(
            self.tr("saved — type a new one to change it") if config.mqtt.password is not None else "")
        tls = config.mqtt.tls
        for name, edit in self.tls_fields.items():
            value = getattr(tls, name) if tls is not None else None
            edit.setText(str(value) if value else "")
        self.language_combo.setCurrentIndex(max(0, self.language_combo.findData(config.ui.language.value)))
        self.kiosk_combo.setCurrentIndex(max(0, self.kiosk_combo.findData(config.ui.kiosk)))
        self.resume_combo.setCurrentIndex(max(0, self.resume_combo.findData(config.line.resume.value)))
        self.verify_timeout.setText(f"{config.line.verify_timeout_s:g}")
        self.max_failures.setText(str(config.line.max_consecutive_failures))

    def _current_for_compare(self) -> dict[str, Any]:
        config = self.bridge.config
        tls = config.mqtt.tls
        return {"mqtt.tls": ({k: str(v) for k, v in tls.model_dump().items() if v} if tls is not None else None)}

    def save(self, values: Mapping[str, Any] | None = None,
             done: Callable[[list[str]], None] | None = None) -> None:
        """Validate and write the configuration file; the old file stays if anything is wrong."""
        config = self.bridge.config
        path = config.source
        if path is None:
            self.save_message.setText(self.tr("This configuration was not read from a file: nothing to save."))
            return
        values = dict(self.field_values() if values is None else values)
        # mqtt.tls is compared as a whole mapping, not through config_value
        if values.get("mqtt.tls", None) == self._current_for_compare()["mqtt.tls"]:
            values.pop("mqtt.tls", None)
        self.save_button.setEnabled(False)
        self.save_message.setText(self.tr("Checking the new configuration…"))

        def write(station: Any) -> tuple[StationConfig, list[str]]:
            new, changed = save_config(Path(path), config, values)
            if changed:
                station.store.audit(ACTOR, "config_saved", change_detail(values, changed))
            return new, changed

        def saved(result: tuple[StationConfig, list[str]]) -> None:
            new, changed = result
            self.save_button.setEnabled(True)
            if not changed:
                self.save_message.setText(self.tr("Nothing changed."))
            else:
                self.pending_config = new
                self.save_message.setText(self.tr("Saved: %1. The devices use the new settings after "
                                                  "“Apply now” or the next start.").replace("%1", ", ".join(changed)))
                self.apply_button.show()
            if done is not None:
                done(changed)

        def refused(exc: BaseException) -> None:
            self.save_button.setEnabled(True)
            self.save_message.setText(self.tr("Not saved, the file is unchanged: %1").replace("%1", str(exc)))
            self.save_message.setProperty("error", True)
            if done is not None:
                done([])

        self.bridge.call(write, done=saved, failed=refused, lane=DEVICE, owner=self)

    def apply(self) -> None:
        config = getattr(self, "pending_config", None)
        if config is None:
            return
        if self.bridge.state.value != "stopped":
            self.save_message.setText(self.tr("Stop the line first, then apply."))
            return
        self.apply_button.hide()
        self.save_message.setText(self.tr("Restarting the devices with the new settings…"))
        self.bridge.restart(config, done=lambda: self.save_message.setText(self.tr("New settings in use.")),
                            failed=lambda exc: self.save_message.setText(str(exc)))

    # -- actions --------------------------------------------------------------------------------------

    def refresh_ports(self) -> None:
        def done(ports: list[tuple[str, str]]) -> None:
            self.ports.clear()
            for device, description in ports:
                self.ports.addItem(f"{device}    {description}".rstrip())
            if not ports:
                self.ports.addItem(self.tr("(no serial port found)"))

        self.bridge.call(lambda _: discover_ports(), done=done, lane=DEVICE, owner=self,
                         failed=lambda exc: self.ports.addItem(str(exc)))

    def _use_port(self, key: str, baud: str) -> None:
        item = self.ports.currentItem()
        if item is None or not item.text().startswith("/"):
            return
        device = item.text().split()[0]
        url = f"serial://{device}?baud={baud}"
        (self.verifier_url if key == "devices.verifier.url" else self.printer_url).setText(url)

    def test_print(self) -> None:
        if self.bridge.state.value != "stopped":
            self.test_print_result.setText(self.tr("Stop the line before a test print."))
            return
        self.test_print_button.setEnabled(False)
        self.test_print_result.setText(self.tr("Printing…"))

        def done(url: str) -> None:
            self.test_print_button.setEnabled(True)
            self.test_print_result.setText(self.tr("Test label sent to %1.").replace("%1", url))

        def failed(exc: BaseException) -> None:
            self.test_print_button.setEnabled(True)
            self.test_print_result.setText(self.tr("Test print failed: %1").replace("%1", str(exc)))

        self.bridge.call(lambda st: print_test_label(st, ACTOR), done=done, failed=failed, lane=DEVICE, owner=self)

    def _refresh_printer_status(self) -> None:
        if not self.isVisible():
            return

        def read(station: Any) -> tuple[list[tuple[str, str]], int, int]:
            verifier = station.verifier
            return describe_printer_status(station.printer.last_status), verifier.read_count, verifier.refused_count

        def done(result: tuple[list[tuple[str, str]], int, int]) -> None:
            rows, reads, refused = result
            self.printer_status.setRowCount(len(rows))
            for row, (name, value) in enumerate(rows):
                self.printer_status.setItem(row, 0, QTableWidgetItem(name))
                self.printer_status.setItem(row, 1, QTableWidgetItem(value))
            self.raw_counts.setText(self.tr("Lines read: %1 · refused: %2").replace("%1", str(reads))
                                    .replace("%2", str(refused)))

        self.bridge.call(read, done=done, lane=DEVICE, owner=self, key="printer-status")

    def _on_raw(self, line: RawLine) -> None:
        if not self.logged_in:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(line.at)) + f".{int(line.at * 1000) % 1000:03d}"
        shown = line.text if line.text is not None else \
            QCoreApplication.translate("TechnicianScreen", "refused (%1)").replace("%1", line.refused or "")
        self.raw_lines.appendPlainText(f"{stamp}  {shown}  [{line.raw.hex(' ')[:120]}]")

    def _choose_file(self, edit: QLineEdit) -> None:
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Choose a file"), edit.text() or "/etc/ssl",
                                              self.tr("Certificates and keys (*.pem *.crt *.key);;All files (*)"))
        if name:
            edit.setText(name)

    def check_connection(self) -> None:
        values = self.field_values()
        tls = values.get("mqtt.tls") or {}
        base = self.bridge.config.base_dir

        def resolve(p: str | None) -> str | None:
            return str(p if Path(p).is_absolute() else base / p) if p else None

        url = values["mqtt.url"] or ""
        kwargs = dict(username=values["mqtt.username"], password=values["mqtt.password"],
                      ca=resolve(tls.get("ca")), cert=resolve(tls.get("cert")), key=resolve(tls.get("key")),
                      client_id=self.bridge.config.mqtt_client_id)
        self.check_button.setEnabled(False)
        self.check_result.setText(self.tr("Testing…"))

        def done(steps: list[CheckStep]) -> None:
            self.check_button.setEnabled(True)
            lines = []
            for step in steps:
                mark = "<span style='color:#2e7d32'>✔</span>" if step.ok else "<span style='color:#c62828'>✘</span>"
                name = QCoreApplication.translate("TechnicianScreen", CHECK_STEPS[step.step])
                lines.append(f"{mark} <b>{name}</b>: {_html(step.detail)}")
                if step.refusal in REFUSAL_HINTS:
                    hint = QCoreApplication.translate("TechnicianScreen", REFUSAL_HINTS[step.refusal])
                    lines.append(f"&nbsp;&nbsp;&nbsp;{_html(hint)}")
            verdict = (self.tr("The broker accepts this station.") if steps and steps[-1].ok and
                       steps[-1].step == "mqtt" else self.tr("The connection failed at the step marked ✘."))
            self.check_result.setText("<br>".join(lines) + f"<br><br><b>{verdict}</b>")

        def failed(exc: BaseException) -> None:
            self.check_button.setEnabled(True)
            self.check_result.setText(_html(str(exc)))

        self.bridge.call(lambda _: check_broker(url, **kwargs), done=done, failed=failed, lane=DEVICE, owner=self)

    def preview_label(self) -> None:
        config = self.bridge.config
        text = self.template_path.text().strip() or str(config.devices.printer.template)
        path = config.resolve(Path(text))
        product, batch = self.bridge.product, self.bridge.batch

        def done(result: tuple[bytes, list[str]]) -> None:
            png, notes = result
            image = QImage.fromData(png, "PNG")
            pixmap = QPixmap.fromImage(image)
            self.label_image.setPixmap(pixmap.scaled(pixmap.width() * 3 // 2, pixmap.height() * 3 // 2,
                                                     Qt.KeepAspectRatio, Qt.SmoothTransformation))
            self.label_notes.setText("\n".join(notes) or self.tr("%1 · %2 × %3 dots").replace("%1", str(path))
                                     .replace("%2", str(image.width())).replace("%3", str(image.height())))

        def failed(exc: BaseException) -> None:
            self.label_image.clear()
            self.label_notes.setText(str(exc))

        self.bridge.call(lambda st: preview_stamp_label(st, path, product, batch), done=done, failed=failed,
                         lane=DEVICE, owner=self)

    def change_pin(self) -> None:
        new, again = self.new_pin.text(), self.repeat_pin.text()
        self.new_pin.clear()
        self.repeat_pin.clear()
        if new != again:
            self.pin_change_message.setText(self.tr("The two PINs differ."))
            return
        try:
            validate_new_pin(new)
        except PinError:
            self.pin_change_message.setText(self.tr("Choose a PIN of 4 to 8 digits, not 0000 and not one digit "
                                                    "repeated."))
            return
        self.pin_change_message.setText(self.tr("Saving…"))

        def hashed(value: str) -> None:
            def after(changed: list[str]) -> None:
                if "technician.pin_hash" in changed:
                    # The running station keeps its configuration object: the new PIN is checked from now on.
                    self.bridge.config = self.bridge.config.model_copy(
                        update={"technician": self.bridge.config.technician.model_copy(update={"pin_hash": value})})
                    self.bridge.call(lambda st: st.store.audit(ACTOR, "pin_changed"))
                    self.pin_change_message.setText(self.tr("PIN changed."))
                else:
                    self.pin_change_message.setText(self.save_message.text())

            self.save({"technician.pin_hash": value}, done=after)

        self.bridge.call(lambda _: hash_pin(new), done=hashed, lane=DEVICE, owner=self,
                         failed=lambda exc: self.pin_change_message.setText(str(exc)))

    def refresh_audit(self) -> None:
        def done(entries: list[Any]) -> None:
            self.audit_table.setRowCount(len(entries))
            for row, e in enumerate(entries):
                for column, value in enumerate((e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.detail)):
                    self.audit_table.setItem(row, column, QTableWidgetItem(value))
            self.audit_table.resizeColumnsToContents()

        self.bridge.call(lambda st: st.store.audit_log(200), done=done, owner=self)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["TechnicianScreen"]
