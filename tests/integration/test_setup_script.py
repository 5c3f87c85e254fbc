"""scripts/setup.sh's checks, run as `make run` / `make test` run them: under `set -o pipefail`, with a normal
user's PATH (no /sbin), on this machine where everything is installed. Nothing here runs apt-get."""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"        # no /sbin, /usr/sbin: where ldconfig and mosquitto live


def bash(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": USER_PATH, "HOME": os.environ.get("HOME", "/tmp"), "PYTHON": "/usr/bin/python3"}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script, "setup-test", *args], cwd=ROOT,
                          env={**base, **(env or {})}, capture_output=True, text=True, timeout=120)


def test_the_user_path_has_no_ldconfig() -> None:
    assert shutil.which("ldconfig", path=USER_PATH) is None


def test_the_checks_find_nothing_missing_on_a_machine_that_has_everything_five_times_in_a_row() -> None:
    # `fc-list | grep -q` under pipefail dies of SIGPIPE at random: the fonts looked missing and every `make run`
    # ran apt-get again. Five runs, five times nothing to install.
    for _ in range(5):
        done = bash(f"bash -o pipefail {SETUP} --check test,ui")
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == "setup: nothing missing"


def test_a_library_is_found_exactly_when_the_dynamic_loader_loads_it() -> None:
    # The check looks for files where the loader looks (no ldconfig); it agrees with the loader itself for every
    # Qt library the PyQt5 wheel needs, the xcb set of a real screen included, and for libzbar.
    done = bash(f'source {SETUP}; for e in libzbar.so.0=libzbar0 "${{QT_LIBS[@]}}" "${{XCB_LIBS[@]}}"; do '
                'if has_lib "${e%%=*}"; then echo "${e%%=*} yes"; else echo "${e%%=*} no"; fi; done')
    assert done.returncode == 0, done.stderr
    verdicts = dict(line.split() for line in done.stdout.splitlines())
    assert len(verdicts) > 20
    for soname, verdict in verdicts.items():
        try:
            ctypes.CDLL(soname)
            loads = "yes"
        except OSError:
            loads = "no"
        assert verdict == loads, soname


def test_with_a_display_only_the_xcb_set_is_added() -> None:
    without = bash(f"{SETUP} --check ui || true")
    with_display = bash(f"{SETUP} --check ui || true", env={"DISPLAY": ":0"})
    xcb = bash(f'source {SETUP}; for e in "${{XCB_LIBS[@]}}"; do echo "${{e#*=}}"; done').stdout.split()
    assert "libxcb-xinerama0" in xcb and "libxkbcommon-x11-0" in xcb
    out = with_display.stdout.strip()
    missing = set(out.removeprefix("setup: missing:").split()) if out.startswith("setup: missing:") else set()
    assert without.stdout.strip() == "setup: nothing missing", without.stdout
    assert missing <= set(xcb), missing


def test_a_venv_left_without_pip_is_made_again(tmp_path: Path) -> None:
    # What `python3 -m venv` leaves when python3-venv (ensurepip) is missing: a bin/python and no pip. Every later
    # run used to trip on it until `make clean`.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    assert (venv / "bin" / "python").exists()
    done = bash(f'source {SETUP}; ensure_venv "$1"', str(venv), env={"PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is broken" in done.stdout and "making it again" in done.stdout
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    again = bash(f'source {SETUP}; ensure_venv "$1"', str(venv), env={"PYTHON": sys.executable})
    assert again.returncode == 0 and again.stdout == ""          # a good venv is left as it is


def test_a_python_that_is_not_there_is_named() -> None:
    done = bash(f"{SETUP} --check", env={"PYTHON": "python3.0"})
    assert done.returncode == 1
    assert "python3.0 not found" in done.stderr and "3.11 or newer" in done.stderr


def _old_python() -> str | None:
    for pattern in ("/usr/bin/python3.[0-9]", "/usr/bin/python3.10", "/usr/local/bin/python3.[0-9]",
                    os.path.expanduser("~/.pyenv/versions/3.[0-9]*/bin/python3"),
                    os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3")):
        for found in sorted(glob.glob(pattern)):
            version = subprocess.run([found, "-c", "import sys; print(sys.version_info[:2] < (3, 11))"],
                                     capture_output=True, text=True).stdout.strip()
            if version == "True":
                return found
    return None


def test_an_older_python_is_refused_with_its_version_and_what_to_do() -> None:
    old = _old_python()
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine")
    done = bash(f"{SETUP} --check", env={"PYTHON": old})
    assert done.returncode == 1
    assert "Python 3.11 or newer is needed" in done.stderr and f"{old} is 3." in done.stderr
    assert "PYTHON=" in done.stderr
