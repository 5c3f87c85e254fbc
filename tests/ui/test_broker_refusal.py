"""A broker that refuses the station's login, on the screens: the operator's MQTT lamp and alarm banner say so (and
recover by themselves), and the technician's connection test names the refusal. A Mosquitto of the test's own with a password file; no other device is needed for this."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PyQt5.QtCore import Qt

from station.config import load_config
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


def test_the_technicians_connection_test_names_the_refusal(
        qtbot, window: Callable[[], MainWindow]) -> None:
    main = window()
    login(qtbot, main, "0000")
    tech = main.technician
    # The saved password: the broker refuses it, and the screen says why.
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
