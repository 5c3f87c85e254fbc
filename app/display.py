"""Whether Qt can open a window here, decided before any QApplication exists.

When its platform plugin cannot connect (no X server for ``xcb``, Qt's default on Linux), Qt aborts the process
in C++ — a core dump with exit code 134 and no Python exception to catch — so the screen's entry point and the
demo ask first. Platforms that draw without a display server (``eglfs`` and ``linuxfb`` on a Raspberry Pi kiosk,
``offscreen`` in the tests, ``vnc``) are chosen with ``QT_QPA_PLATFORM`` and never refused. No Qt import here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

DEFAULT_PLATFORM = "xcb"       # what the PyQt5 wheel's Qt uses on Linux when QT_QPA_PLATFORM is not set


def platforms(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order (``QT_QPA_PLATFORM`` may list several, ``wayland;xcb``, each
    with options after a colon, ``linuxfb:fb=/dev/fb1``)."""
    names = [part.split(":", 1)[0].strip() for part in env.get("QT_QPA_PLATFORM", "").split(";")]
    return [name for name in names if name] or [DEFAULT_PLATFORM]


def _x_server_answers(display: str) -> bool:
    """Something accepts connections where DISPLAY points: the local socket (file or abstract) or TCP 6000+n."""
    if display.startswith("/"):                     # a launchd socket path (XQuartz): trust it
        return True
    host, _, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        for address in (path, "\0" + path):        # the file, or the abstract socket Xorg also listens on
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                try:
                    probe.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        with socket.create_connection((host, 6000 + int(number)), timeout=1.0):
            return True
    except OSError:
        return False


def _wayland_socket(env: Mapping[str, str]) -> str:
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    return name if name.startswith("/") else os.path.join(env.get("XDG_RUNTIME_DIR", ""), name)


def display_problem(env: Mapping[str, str] | None = None) -> str | None:
    """None when one of the platforms Qt will try can open a window; otherwise why none can, in a sentence."""
    env = os.environ if env is None else env
    reasons = []
    for name in platforms(env):
        if name.startswith("xcb"):
            display = env.get("DISPLAY", "")
            if not display:
                reasons.append(f"{name}: DISPLAY is not set")
            elif not _x_server_answers(display):
                reasons.append(f"{name}: no X server answers at DISPLAY={display}")
            else:
                return None
        elif name.startswith("wayland"):
            path = _wayland_socket(env)
            if os.path.exists(path):
                return None
            reasons.append(f"{name}: no Wayland compositor at {path}"
                           + ("" if env.get("WAYLAND_DISPLAY") else " (WAYLAND_DISPLAY is not set)"))
        else:
            return None                               # eglfs, linuxfb, offscreen, vnc…: no display server needed
    chosen = ("QT_QPA_PLATFORM is not set, so Qt would use xcb, the X11 desktop" if not env.get("QT_QPA_PLATFORM")
              else f"QT_QPA_PLATFORM={env['QT_QPA_PLATFORM']}")
    return f"{'; '.join(reasons)} ({chosen})"


def no_display_message(problem: str) -> str:
    """What `station run` says instead of letting Qt abort: there is no display, and what to do."""
    return (f"station: no display to open the operator screen on: {problem}.\n"
            "  Without a screen:           station run --headless [--count N]   (progress and a summary on the "
            "terminal)\n"
            "  A kiosk without a desktop:  QT_QPA_PLATFORM=eglfs station run --kiosk   (or linuxfb)\n"
            "  From another machine:       ssh -X to the station, or run it on the station's own screen")


__all__ = ["display_problem", "no_display_message", "platforms"]
