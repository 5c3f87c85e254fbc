"""`station run` where Qt cannot open a window: said, with how to run headless, instead of Qt's core dump; and the
platforms that need no display (a kiosk on eglfs or linuxfb, offscreen) are never refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.display import display_problem, platforms

ROOT = Path(__file__).resolve().parents[2]


def run_screen(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    clean.update(STATION_DATABASE__PATH=str(tmp_path / "station.db"), **env)
    return subprocess.run([sys.executable, "-m", "app.cli", "run"], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=60)


def test_no_display_says_so_and_how_to_run_headless(tmp_path: Path) -> None:
    done = run_screen(tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr)      # not 134, Qt's abort
    assert "no display to open the operator screen on" in done.stderr
    assert "DISPLAY is not set" in done.stderr and "station run --headless" in done.stderr
    assert "QT_QPA_PLATFORM=eglfs" in done.stderr
    assert "Could not load the Qt platform plugin" not in done.stderr
    assert not (tmp_path / "station.db").exists()               # nothing was started


def test_a_display_nobody_answers_at_is_no_display(tmp_path: Path) -> None:
    done = run_screen(tmp_path, DISPLAY=f":{free_display_number()}", QT_QPA_PLATFORM="xcb")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "no X server answers at DISPLAY=:" in done.stderr and "--headless" in done.stderr


def free_display_number() -> int:
    for number in range(90, 200):
        path = f"/tmp/.X11-unix/X{number}"
        if os.path.exists(path):
            continue
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", 6000 + number)) != 0:
                return number
    raise AssertionError("no free display number")


@pytest.fixture
def x_socket() -> Iterator[int]:
    """A listening socket where an X server of display :n would be (the abstract one Xorg also binds)."""
    number = free_display_number()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(f"\0/tmp/.X11-unix/X{number}")
    server.listen(1)
    try:
        yield number
    finally:
        server.close()


def test_a_display_with_a_server_is_used(x_socket: int) -> None:
    assert display_problem({"DISPLAY": f":{x_socket}"}) is None
    assert display_problem({"DISPLAY": f":{x_socket}.0", "QT_QPA_PLATFORM": "xcb"}) is None


def test_a_display_over_tcp_is_reached_on_6000_plus_its_number() -> None:
    number = free_display_number()
    with socket.create_server(("127.0.0.1", 6000 + number)):
        assert display_problem({"DISPLAY": f"localhost:{number}.0"}) is None
    assert "no X server answers" in (display_problem({"DISPLAY": f"localhost:{number}.0"}) or "")


@pytest.mark.parametrize("platform", ["eglfs", "linuxfb", "linuxfb:fb=/dev/fb1", "offscreen", "vnc", "minimal"])
def test_platforms_that_need_no_display_server_are_never_refused(platform: str) -> None:
    # A Raspberry Pi kiosk has no DISPLAY: its platform is given by QT_QPA_PLATFORM.
    assert display_problem({"QT_QPA_PLATFORM": platform}) is None


def test_wayland_needs_its_compositor_socket(tmp_path: Path) -> None:
    env = {"QT_QPA_PLATFORM": "wayland", "XDG_RUNTIME_DIR": str(tmp_path), "WAYLAND_DISPLAY": "wayland-1"}
    assert "no Wayland compositor" in (display_problem(env) or "")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as compositor:
        compositor.bind(str(tmp_path / "wayland-1"))
        assert display_problem(env) is None


def test_a_list_of_platforms_is_tried_in_order(x_socket: int) -> None:
    assert platforms({"QT_QPA_PLATFORM": "wayland;xcb"}) == ["wayland", "xcb"]
    assert platforms({}) == ["xcb"]
    # no compositor, but an X server: Qt falls back to xcb, so there is a display
    assert display_problem({"QT_QPA_PLATFORM": "wayland;xcb", "XDG_RUNTIME_DIR": "/nonexistent",
                            "DISPLAY": f":{x_socket}"}) is None
    problem = display_problem({"QT_QPA_PLATFORM": "wayland;xcb", "XDG_RUNTIME_DIR": "/nonexistent"})
    assert problem is not None and "wayland" in problem and "DISPLAY is not set" in problem
