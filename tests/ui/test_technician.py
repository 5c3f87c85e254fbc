"""The technician's screen: the PIN, the audit log, saving the configuration (and refusing a bad one)."""

from __future__ import annotations

import yaml
from PyQt5.QtCore import Qt

from station.config import load_config
from station.pin import hash_pin, verify_pin
from tests.integration.line_harness import SimLine
from tests.waiting import wait_until


def audit_actions(line: SimLine) -> list[tuple[str, str]]:
    return [(a, d) for a, d in line.query("SELECT action, detail FROM audit_log ORDER BY id")]


def login(qtbot, window, pin: str) -> None:
    window.show_technician()
    screen = window.technician
    for digit in pin:
        screen._set_pin(screen._pin + digit)
    qtbot.mouseClick(screen.pin_ok, Qt.LeftButton)
    qtbot.waitUntil(lambda: screen.pin_ok.isEnabled(), timeout=10_000)


def test_a_wrong_pin_is_refused_and_recorded(qtbot, make_window, line: SimLine) -> None:
    window = make_window()
    screen = window.technician
    login(qtbot, window, "1234")
    assert not screen.logged_in and screen.pages.currentIndex() == 0
    assert screen.pin_message.text() == "Sai mã PIN."
    assert wait_until(lambda: ("login_failed", "wrong PIN (4 digits)") in audit_actions(line), timeout=5)
    login(qtbot, window, "0000")                     # no hash in the file: the factory PIN
    assert screen.logged_in and screen.pages.currentIndex() == 1
    assert wait_until(lambda: ("login", "") in audit_actions(line), timeout=5)


def test_five_wrong_pins_lock_the_login(qtbot, make_window) -> None:
    window = make_window()
    for _ in range(5):
        login(qtbot, window, "9999")
    login(qtbot, window, "0000")                     # right PIN, but locked out
    assert not window.technician.logged_in
    assert "chờ" in window.technician.pin_message.text()


def test_a_bad_config_value_is_refused_and_the_old_file_kept(qtbot, make_window, line: SimLine) -> None:
    window = make_window()
    screen = window.technician
    login(qtbot, window, "0000")
    note = "# Huế, dây chuyền 1: printer moved to the new bench (technician's own note)\n"
    line.config_path.write_text(note + line.config_path.read_text(encoding="utf-8"), encoding="utf-8")
    before = line.config_path.read_bytes()
    screen.printer_url.setText("tcp://printer")                 # no port
    qtbot.mouseClick(screen.save_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: screen.save_button.isEnabled() and "Chưa lưu" in screen.save_message.text(),
                    timeout=10_000)
    assert "devices.printer.url" in screen.save_message.text() and "missing port" in screen.save_message.text()
    assert str(line.config_path) in screen.save_message.text()   # names the real file, not the temporary one
    assert line.config_path.read_bytes() == before
    assert not list(line.config_path.parent.glob(".station.yaml.*"))   # no temporary file left behind
    # a good value is written, validated, and recorded
    screen.printer_url.setText("tcp://127.0.0.1:9999")
    screen.verify_timeout.setText("2.5")
    qtbot.mouseClick(screen.save_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Đã lưu" in screen.save_message.text(), timeout=10_000)
    saved = load_config(line.config_path)
    assert saved.devices.printer.url == "tcp://127.0.0.1:9999" and saved.line.verify_timeout_s == 2.5
    assert yaml.safe_load(line.config_path.with_name("station.yaml.bak").read_text()) == yaml.safe_load(before)
    assert line.config_path.read_text(encoding="utf-8").startswith(note)   # the technician's comments are kept
    assert wait_until(lambda: any(a == "config_saved" and "tcp://127.0.0.1:9999" in d
                                  for a, d in audit_actions(line)), timeout=5)


def test_the_pin_is_changed_as_a_salted_hash(qtbot, make_window, line: SimLine) -> None:
    window = make_window()
    screen = window.technician
    login(qtbot, window, "0000")
    screen.new_pin.setText("2580")
    screen.repeat_pin.setText("2580")
    screen.change_pin()
    qtbot.waitUntil(lambda: screen.pin_change_message.text() == "Đã đổi mã PIN.", timeout=10_000)
    stored = load_config(line.config_path).technician.pin_hash
    assert stored and stored.startswith("scrypt$") and "2580" not in stored
    assert verify_pin("2580", stored) and not verify_pin("0000", stored)
    screen.leave()
    login(qtbot, window, "0000")
    assert not screen.logged_in
    login(qtbot, window, "2580")
    assert screen.logged_in
    assert wait_until(lambda: ("pin_changed", "") in audit_actions(line), timeout=5)


def test_devices_tab_shows_status_raw_lines_and_label_preview(qtbot, make_window, line: SimLine) -> None:
    window = make_window()
    screen = window.technician
    login(qtbot, window, "0000")
    qtbot.waitUntil(lambda: screen.printer_status.rowCount() > 3, timeout=10_000)
    qtbot.waitUntil(lambda: screen.label_image.pixmap() is not None and not screen.label_image.pixmap().isNull(),
                    timeout=10_000)
    line.scanner.inject("HELLO-SCANNER")
    qtbot.waitUntil(lambda: "HELLO-SCANNER" in screen.raw_lines.toPlainText(), timeout=10_000)
    qtbot.mouseClick(screen.test_print_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "127.0.0.1" in screen.test_print_result.text(), timeout=10_000)
    assert line.printer.wait_printed(1, timeout=5)
    assert any("NHÃN IN THỬ" in t for t in line.printer.labels[-1].texts)
    assert not line.printer.labels[-1].qr_data         # no QR: no scanner can take it for a stamp


def test_pin_hash_round_trip() -> None:
    stored = hash_pin("4321", n=2**10)
    assert verify_pin("4321", stored) and not verify_pin("4322", stored)
    assert stored != hash_pin("4321", n=2**10)        # salted
