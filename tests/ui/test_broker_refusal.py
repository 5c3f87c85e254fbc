"""A broker that refuses the station's login, on the screens: the operator's MQTT lamp and alarm banner say so (and
recover by themselves), and the technician's MQTT tab never shows the saved password (nor one in a URL) and names
the refusal in its connection test. A Mosquitto of the test's own with a password file; no other device is needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from PyQt5.QtCore import Qt

from station.config import load_config
from station.store import Store
from tests.integration.line_harness import write_config
from tests.integration.mqtt_fixtures import free_port
from tests.integration.test_delivery_refused import (  # noqa: F401  (fixture)
    STATION_PASSWORD,
    SecuredBroker,
    secured,
    set_password,
)
from tests.ui.test_technician import login
from ui.app import MainWindow, build_window

WRONG = "sai-mật-khẩu"


@pytest.fixture
def window(qtbot, secured: SecuredBroker, tmp_path: Path) -> Iterator[Callable[[], MainWindow]]:  # noqa: F811
    config = write_config(tmp_path, f"tcp://127.0.0.1:{free_port()}", f"serial://{tmp_path / 'no-scanner'}",
                          secured.url, secured.prefix, {"mqtt.username": "station", "mqtt.password": WRONG})
    built: list[MainWindow] = []

    def make() -> MainWindow:
        window = build_window(load_config(config), language="vi", snapshot_ms=200)
        qtbot.addWidget(window, before_close_func=lambda w: w.shutdown())
        window.resize(1280, 800)
        window.show()
        built.append(window)
        qtbot.waitUntil(lambda: window.operator._ready, timeout=20_000)
        return window

    yield make
    for w in built:
        w.shutdown()


def test_the_mqtt_lamp_and_the_banner_say_the_broker_refused_the_login_and_recover(
        qtbot, window: Callable[[], MainWindow], secured: SecuredBroker) -> None:  # noqa: F811
    screen = window().operator
    lamp = screen.lamps["broker"]
    qtbot.waitUntil(lambda: lamp.level == "bad" and lamp.detail.text().startswith("bị từ chối"), timeout=20_000)
    assert lamp.detail.text() == "bị từ chối: không được phép (tên đăng nhập, mật khẩu hoặc quyền)"
    assert "Not authorized (0x87)" in lamp.toolTip()
    # The alarm raised while the station started (the broker answers at once) reaches the banner too.
    qtbot.waitUntil(lambda: not screen.alarm_banner.isHidden(), timeout=10_000)
    assert screen.alarm_text.text().startswith("Máy chủ MQTT không cho trạm đăng nhập (không được phép)")
    assert "mqtt.username / mqtt.password" in screen.alarm_text.text()
    assert screen.alarm_second.toolTip().startswith("The MQTT broker does not let this station log in")
    assert screen.alarm_banner.property("severity") == "warning"

    set_password(secured.passwd, "station", WRONG)      # the broker now knows the station's password
    secured.broker.reload()
    qtbot.waitUntil(lambda: lamp.level == "ok", timeout=20_000)
    assert lamp.detail.text() == "đã kết nối"


def test_the_technician_never_sees_the_saved_password_and_the_connection_test_names_the_refusal(
        qtbot, window: Callable[[], MainWindow]) -> None:
    main = window()
    login(qtbot, main, "0000")
    tech = main.technician
    assert tech.mqtt_password.text() == "", "the saved password is not put back into the field"
    assert tech.mqtt_password.placeholderText() == "đã lưu — nhập mật khẩu mới để thay đổi"

    # An empty field tests (and keeps) the saved password: the broker refuses it, and the screen says why.
    qtbot.mouseClick(tech.check_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: tech.check_button.isEnabled() and "✘" in tech.check_result.text(), timeout=20_000)
    result = tech.check_result.text()
    assert "Đăng nhập MQTT</b>: Not authorized (0x87)" in result
    assert "Không được phép: máy chủ không cho người dùng này đăng nhập" in result
    assert WRONG not in result

    tech.mqtt_password.setText(STATION_PASSWORD)
    qtbot.mouseClick(tech.check_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: tech.check_button.isEnabled() and "Máy chủ MQTT chấp nhận trạm này." in
                    tech.check_result.text(), timeout=20_000)

    # Saving with the field left empty keeps the saved password; a typed one replaces it (and is not logged).
    tech.mqtt_password.clear()
    qtbot.mouseClick(tech.save_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: tech.save_message.text() == "Không có thay đổi.", timeout=10_000)
    path = main.operator.bridge.config.source
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["mqtt"]["password"] == WRONG
    tech.mqtt_password.setText(STATION_PASSWORD)
    qtbot.mouseClick(tech.save_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: tech.save_message.text().startswith("Đã lưu"), timeout=10_000)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["mqtt"]["password"] == STATION_PASSWORD
    assert STATION_PASSWORD not in tech.save_message.text()


def test_the_technician_screen_masks_a_password_in_a_url_and_keeps_it_on_save(
        qtbot, secured: SecuredBroker, tmp_path: Path) -> None:  # noqa: F811
    camera = f"http://admin:cam-s3cret@127.0.0.1:{free_port()}/stream.mjpg"
    config = write_config(tmp_path, f"tcp://127.0.0.1:{free_port()}", camera, secured.url, secured.prefix,
                          {"mqtt.username": "station", "mqtt.password": STATION_PASSWORD})
    main = build_window(load_config(config), language="vi", snapshot_ms=200)
    qtbot.addWidget(main, before_close_func=lambda w: w.shutdown())
    main.show()
    qtbot.waitUntil(lambda: main.operator._ready, timeout=20_000)
    login(qtbot, main, "0000")
    tech = main.technician
    assert tech.verifier_url.text() == camera.replace("cam-s3cret", "**********")
    tech.verify_timeout.setText("2.5")                 # an unrelated change: the camera URL stays as it was
    qtbot.mouseClick(tech.save_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: tech.save_message.text().startswith("Đã lưu"), timeout=10_000)
    saved = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert saved["devices"]["verifier"]["url"] == camera and saved["line"]["verify_timeout_s"] == 2.5
    tech.verifier_url.setText(camera.replace("cam-s3cret", "new-s3cret"))
    qtbot.mouseClick(tech.save_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "devices.verifier.url" in tech.save_message.text(), timeout=10_000)
    assert yaml.safe_load(config.read_text(encoding="utf-8"))["devices"]["verifier"]["url"] == \
        camera.replace("cam-s3cret", "new-s3cret")
    with Store(load_config(config).database.path) as store:
        details = " ".join(entry.detail for entry in store.audit_log())
    assert "devices.verifier.url=http://admin:**********@" in details
    assert "s3cret" not in details and "s3cret" not in tech.save_message.text()
    main.shutdown()
