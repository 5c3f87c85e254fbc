"""The technician's screen, behind a PIN: devices, MQTT, the label template, the PIN itself, and the audit log.

The screen shows and asks; what reaches a device, the broker or a file runs on the bridge's worker, in the modules
that hold it: `app.config_file` (save: the new file is validated as at start, a bad value refused with the reason
and the old file kept), `app.broker_check`, `app.label_preview` (preview and test print) and
`drivers.serial_ports`. Every login, refused PIN, configuration change and test print is written to the audit log.
The tabs are in `ui.technician_tabs`; this module holds the login, the tabs' frame and the one save of their fields
(about 460 lines: the field map, loading, saving and applying read as one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.config_file import change_detail, config_value, save_config
from station.config import StationConfig, redact_url
from station.pin import PinGuard
from ui.adaptive import Density, FitScrollArea
from ui.bridge import DEVICE, RawLine, StationBridge
from ui.qt import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    Qt,
    QTabWidget,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from ui.technician_tabs import ACTOR, AuditTab, DevicesTab, LabelTab, LineTab, MqttTab, PinTab


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
        self.devices.set_density(small=small, large=large)
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
        self.devices = DevicesTab(self.bridge)
        self.mqtt = MqttTab(self.bridge, self.field_values)
        self.label = LabelTab(self.bridge)
        self.line = LineTab()
        self.pin_tab = PinTab(self.bridge, self.save, lambda: self.save_message.text())
        self.audit_tab = AuditTab(self.bridge)
        self._name_fields()
        self.tabs.addTab(FitScrollArea(self.devices), self.tr("Devices"))
        self.tabs.addTab(FitScrollArea(self.mqtt), self.tr("MQTT"))
        self.tabs.addTab(FitScrollArea(self.label), self.tr("Label"))
        self.tabs.addTab(FitScrollArea(self.line), self.tr("Line"))
        self.tabs.addTab(FitScrollArea(self.pin_tab), self.tr("PIN"))
        self.tabs.addTab(self.audit_tab, self.tr("Log"))
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

    def _name_fields(self) -> None:
        """The tabs' fields and actions under the names the fields map, the timers and the tests know them by."""
        devices, mqtt, label, line, pin = self.devices, self.mqtt, self.label, self.line, self.pin_tab
        self.ports, self.printer_url, self.verifier_url = devices.ports, devices.printer_url, devices.verifier_url
        self.test_print_button, self.test_print_result = devices.test_print_button, devices.test_print_result
        self.printer_status, self.raw_lines, self.camera_view = devices.printer_status, devices.raw_lines, \
            devices.camera_view
        self.mqtt_url, self.mqtt_user, self.mqtt_password = mqtt.mqtt_url, mqtt.mqtt_user, mqtt.mqtt_password
        self.tls_fields, self.check_button, self.check_result = mqtt.tls_fields, mqtt.check_button, mqtt.check_result
        self.template_path, self.label_image, self.label_notes = label.template_path, label.label_image, \
            label.label_notes
        self.language_combo, self.kiosk_combo, self.resume_combo = line.language_combo, line.kiosk_combo, \
            line.resume_combo
        self.verify_timeout, self.max_failures = line.verify_timeout, line.max_failures
        self.new_pin, self.repeat_pin, self.pin_change_message = pin.new_pin, pin.repeat_pin, pin.pin_change_message
        self.audit_table = self.audit_tab.audit_table
        self.refresh_ports, self.check_connection, self.preview_label = devices.refresh_ports, \
            mqtt.check_connection, label.preview_label
        self.change_pin, self.refresh_audit = pin.change_pin, self.audit_tab.refresh_audit

    def add_device_panel(self, title: str, widget: QWidget) -> None:
        """Hook for device views built elsewhere (the camera view with its decoded region goes here)."""
        self.devices.add_device_panel(title, widget)

    def _refresh_printer_status(self) -> None:
        if self.isVisible():
            self.devices.refresh_printer_status()

    def _on_raw(self, line: RawLine) -> None:
        if self.logged_in:
            self.devices.on_raw(line)

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

__all__ = ["TechnicianScreen"]
