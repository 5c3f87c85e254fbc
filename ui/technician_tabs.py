"""The technician screen's tabs, each with its fields and what its buttons do on the bridge's worker: the devices
(serial ports, addresses, the printer's decoded status and a test print, the scanner's raw lines, the camera's view),
MQTT (with the broker test), the label (the preview), the line's settings, the PIN and the audit log. The screen
(`ui.technician`) holds them with the login and saves their fields as one configuration.

Six small classes of one kind in one file (about 490 lines): each is a form and its buttons' callbacks, read
side by side with the others and with the screen's field map.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.broker_check import CheckStep, check_broker
from app.label_preview import preview_stamp_label, print_test_label
from drivers.serial_ports import discover_ports
from station.pin import PinError, hash_pin, validate_new_pin
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
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

ACTOR = "technician"     # who the audit log names for what is done on this screen

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


def form_layout(parent: QWidget | None = None) -> QFormLayout:
    """A form whose fields go under their labels when the screen is too narrow for both on one row."""
    form = QFormLayout(parent) if parent is not None else QFormLayout()
    form.setRowWrapPolicy(QFormLayout.WrapLongRows)
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    return form


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DevicesTab(QWidget):
    """The serial ports on this machine, the printer's and scanner's addresses, the printer's decoded status and a
    test print, what the scanner sends (live), and the camera's view when the verifier is a camera."""

    def __init__(self, bridge: StationBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
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
        form = form_layout()
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
        self.devices_layout = QBoxLayout(QBoxLayout.LeftToRight, self)
        self.devices_layout.addLayout(left, 1)
        self.devices_layout.addLayout(self.device_panels, 1)

    def set_density(self, small: bool, large: bool) -> None:
        self.devices_layout.setDirection(QBoxLayout.TopToBottom if small else QBoxLayout.LeftToRight)
        self.ports.setMaximumHeight(150 if large else 110)

    def add_device_panel(self, title: str, widget: QWidget) -> None:
        """Hook for device views built elsewhere (the camera view with its decoded region goes here)."""
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(widget)
        self.device_panels.addWidget(box, 1)

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

    def refresh_printer_status(self) -> None:
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

    def on_raw(self, line: RawLine) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(line.at)) + f".{int(line.at * 1000) % 1000:03d}"
        shown = line.text if line.text is not None else \
            QCoreApplication.translate("TechnicianScreen", "refused (%1)").replace("%1", line.refused or "")
        self.raw_lines.appendPlainText(f"{stamp}  {shown}  [{line.raw.hex(' ')[:120]}]")


class MqttTab(QWidget):
    """The broker's address, user, password and TLS files, with a test of the connection step by step."""

    def __init__(self, bridge: StationBridge, field_values: Callable[[], Mapping[str, Any]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.field_values = field_values     # the screen's fields as the configuration keys they set
        self.mqtt_url = QLineEdit()
        self.mqtt_user = QLineEdit()
        self.mqtt_password = QLineEdit()
        self.mqtt_password.setEchoMode(QLineEdit.Password)
        self.tls_fields = {name: QLineEdit() for name in ("ca", "cert", "key")}
        form = form_layout()
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
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.check_button, 0, Qt.AlignLeft)
        layout.addWidget(self.check_result)
        layout.addStretch(1)

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


class LabelTab(QWidget):
    """The label template and its preview as printed, with the current product and batch."""

    def __init__(self, bridge: StationBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
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
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        caption = QLabel(self.tr("As printed (same renderer as the printer simulator), with the current "
                                 "product and batch:"))
        caption.setWordWrap(True)
        layout.addWidget(caption)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.label_notes)

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


class LineTab(QWidget):
    """The screens' language and display, how the line resumes after a printer fault, its verification window and
    the failures in a row that stop it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
        form = form_layout(self)
        form.addRow(self.tr("Language of the screens"), self.language_combo)
        form.addRow(self.tr("Display"), self.kiosk_combo)
        form.addRow(self.tr("After a printer fault the line resumes"), self.resume_combo)
        form.addRow(self.tr("Verification window (seconds)"), self.verify_timeout)
        form.addRow(self.tr("Failed stamps in a row that stop the line"), self.max_failures)


class PinTab(QWidget):
    """A new technician PIN, typed twice, saved as a salted hash through the screen's save."""

    def __init__(self, bridge: StationBridge, save: Callable[..., None], save_message: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.save = save                       # TechnicianScreen.save(values, done=…)
        self.save_message = save_message       # what the screen said of the last save
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
        form = form_layout()
        form.addRow(self.tr("New PIN (4 to 8 digits)"), self.new_pin)
        form.addRow(self.tr("New PIN again"), self.repeat_pin)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(change, 0, Qt.AlignLeft)
        layout.addWidget(self.pin_change_message)
        layout.addStretch(1)

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
                    self.pin_change_message.setText(self.save_message())

            self.save({"technician.pin_hash": value}, done=after)

        self.bridge.call(lambda _: hash_pin(new), done=hashed, lane=DEVICE, owner=self,
                         failed=lambda exc: self.pin_change_message.setText(str(exc)))


class AuditTab(QWidget):
    """The audit log's newest entries: logins, refused PINs, configuration changes, test prints."""

    def __init__(self, bridge: StationBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.audit_table = QTableWidget(0, 4)
        self.audit_table.setHorizontalHeaderLabels([self.tr("Time (UTC)"), self.tr("Who"), self.tr("What"),
                                                    self.tr("Detail")])
        self.audit_table.horizontalHeader().setSectionResizeMode(3, QHeaderView.Stretch)
        self.audit_table.verticalHeader().hide()
        self.audit_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(self.audit_table)

    def refresh_audit(self) -> None:
        def done(entries: list[Any]) -> None:
            self.audit_table.setRowCount(len(entries))
            for row, e in enumerate(entries):
                for column, value in enumerate((e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.detail)):
                    self.audit_table.setItem(row, column, QTableWidgetItem(value))
            self.audit_table.resizeColumnsToContents()

        self.bridge.call(lambda st: st.store.audit_log(200), done=done, owner=self)


__all__ = ["DevicesTab", "MqttTab", "LabelTab", "LineTab", "PinTab", "AuditTab", "describe_printer_status"]
