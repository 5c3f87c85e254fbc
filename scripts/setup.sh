#!/usr/bin/env bash
# Install what the station and its tests need on a fresh Debian/Ubuntu or Raspberry Pi OS machine:
# the system packages that are missing (and only those), then a virtual environment in .venv with the project and
# its extras.
#
# Usage: scripts/setup.sh [extras]           e.g. scripts/setup.sh test,ui   (central: the central service)
#        scripts/setup.sh --check [extras]   say which system packages are missing; install nothing (exit 1 if any)
#
# Environment: PYTHON (default python3) makes the venv; VENV (default .venv) is where.
# Sourced (`source scripts/setup.sh`), it only defines its functions, so each check can be run alone.
#
# The checks use no pipes: under `set -o pipefail` a `grep -q` that stops at its first match kills the command
# writing into it with SIGPIPE, and the check then fails although the thing is there. Nor do they use ldconfig,
# which lives in /sbin, outside a normal user's PATH: libraries are looked for as files where the loader finds them.

MIN_PYTHON=3.11

# The Qt libraries the PyQt5 wheel loads, as soname=package. Every platform (offscreen in the tests, too):
QT_LIBS=(libGL.so.1=libgl1 libglib-2.0.so.0=libglib2.0-0 libgthread-2.0.so.0=libglib2.0-0
         libfontconfig.so.1=libfontconfig1 libX11.so.6=libx11-6 libXext.so.6=libxext6)
# and the xcb platform's, for a real screen on an X desktop:
XCB_LIBS=(libX11-xcb.so.1=libx11-xcb1 libxcb.so.1=libxcb1 libxcb-icccm.so.4=libxcb-icccm4
          libxcb-image.so.0=libxcb-image0 libxcb-keysyms.so.1=libxcb-keysyms1 libxcb-randr.so.0=libxcb-randr0
          libxcb-render.so.0=libxcb-render0 libxcb-render-util.so.0=libxcb-render-util0
          libxcb-shape.so.0=libxcb-shape0 libxcb-shm.so.0=libxcb-shm0 libxcb-sync.so.1=libxcb-sync1
          libxcb-xfixes.so.0=libxcb-xfixes0 libxcb-xinerama.so.0=libxcb-xinerama0 libxcb-xkb.so.1=libxcb-xkb1
          libxkbcommon.so.0=libxkbcommon0 libxkbcommon-x11.so.0=libxkbcommon-x11-0)
# The label renderer of the printer simulator draws with these files.
FONTS=(/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf)

python_cmd() { printf '%s' "${PYTHON:-python3}"; }

# check_python: the interpreter exists and is new enough; says what to do otherwise.
check_python() {
  local py version
  py=$(python_cmd)
  if ! command -v "$py" >/dev/null 2>&1; then
    echo "setup: $py not found: install Python $MIN_PYTHON or newer (apt-get install python3), or set PYTHON=/path/to/python3" >&2
    return 1
  fi
  version=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || {
    echo "setup: $py does not run" >&2
    return 1
  }
  if ! "$py" -c "import sys; sys.exit(sys.version_info < tuple(int(p) for p in '$MIN_PYTHON'.split('.')))"; then
    echo "setup: Python $MIN_PYTHON or newer is needed; $py is $version." >&2
    echo "       Install a newer one (Debian 12 and Ubuntu 24.04 have it as python3) and run again with PYTHON=/path/to/python3.11" >&2
    return 1
  fi
}

_lib_dirs=()
# has_lib SONAME: the library is where the dynamic loader looks for it.
has_lib() {
  if [ ${#_lib_dirs[@]} -eq 0 ]; then
    local triplet
    triplet=$("$(python_cmd)" -c 'import sysconfig; print(sysconfig.get_config_var("MULTIARCH") or "")' 2>/dev/null) || triplet=""
    [ -n "$triplet" ] && _lib_dirs+=("/usr/lib/$triplet" "/lib/$triplet")
    _lib_dirs+=(/usr/lib /lib /usr/lib64 /lib64 /usr/local/lib)
  fi
  local dir
  for dir in "${_lib_dirs[@]}"; do
    [ -e "$dir/$1" ] && return 0
  done
  return 1
}

# has_postgresql: a PostgreSQL server is installed (Debian's postgresql, which scripts/test.sh starts).
has_postgresql() {
  local bin
  for bin in /usr/lib/postgresql/*/bin/postgres; do [ -x "$bin" ] && return 0; done
  command -v postgres >/dev/null 2>&1
}

_add() { local p; for p in "${need[@]}"; do [ "$p" = "$1" ] && return 0; done; need+=("$1"); }

# missing_packages EXTRAS: sets the array `need` to the Debian packages missing for these extras (e.g. test,ui).
missing_packages() {
  local extras="${1:-ui}" entry py
  py=$(python_cmd)
  need=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || _add mosquitto
  has_lib libzbar.so.0 || _add libzbar0
  for entry in "${FONTS[@]}"; do [ -e "$entry" ] || _add fonts-dejavu-core; done
  # python3 -m venv needs ensurepip, which Debian and Ubuntu ship apart (python3.X-venv).
  if ! "$py" -m ensurepip --version >/dev/null 2>&1; then
    _add "python$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
  fi
  # The central service's tests (part of the test suite) run on PostgreSQL and render the trace page in
  # Debian's headless Chromium (Playwright drives it; it downloads no browser of its own).
  if [[ ",$extras," == *,central,* || ",$extras," == *,test,* ]]; then
    has_postgresql || _add postgresql
    command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || _add chromium
  fi
  if [[ ",$extras," == *,ui,* ]]; then
    case "$(uname -m)" in
      aarch64|armv7l)   # no PyQt5 wheels on PyPI for ARM: apt's, seen through --system-site-packages
        "$py" -c 'import PyQt5.QtWidgets' >/dev/null 2>&1 || _add python3-pyqt5 ;;
      *)
        for entry in "${QT_LIBS[@]}"; do has_lib "${entry%%=*}" || _add "${entry#*=}"; done
        if [ -n "${DISPLAY:-}" ]; then
          for entry in "${XCB_LIBS[@]}"; do has_lib "${entry%%=*}" || _add "${entry#*=}"; done
        fi ;;
    esac
  fi
}

# install_packages PACKAGE...: through apt-get, with sudo when not root.
install_packages() {
  local sudo_=""
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: no apt-get here: install these with your system's package manager, then run again: $*" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup: these system packages are missing and sudo is not installed; as root run:" >&2
      echo "       apt-get update && apt-get install -y $*" >&2
      return 1
    fi
    sudo_="sudo"
  fi
  echo "setup: installing system packages: $*"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "$@" >/dev/null
}

# venv_ok DIR: a virtual environment whose python runs and has pip (a `python -m venv` that failed half-way,
# without ensurepip, leaves a bin/python and no pip).
venv_ok() {
  [ -x "$1/bin/python" ] && "$1/bin/python" -m pip --version >/dev/null 2>&1
}

# ensure_venv DIR: make the virtual environment, or make it again when a broken one is in the way.
ensure_venv() {
  local dir="$1" py args=()
  py=$(python_cmd)
  venv_ok "$dir" && return 0
  if [ -e "$dir" ]; then
    echo "setup: $dir is broken (no working python with pip): making it again"
    rm -rf "$dir"
  fi
  # On a Raspberry Pi PyQt5 comes from apt (python3-pyqt5): let the venv see it.
  case "$(uname -m)" in aarch64|armv7l) args+=(--system-site-packages) ;; esac
  if ! "$py" -m venv "${args[@]}" "$dir" || ! venv_ok "$dir"; then
    rm -rf "$dir"      # never leave a half-made venv for the next run to trip on
    echo "setup: could not make a virtual environment in $dir with $py" >&2
    echo "       (on Debian/Ubuntu: apt-get install python3-venv)" >&2
    return 1
  fi
}

# install_project DIR EXTRAS: the project and its extras into the venv, again only when pyproject.toml changed.
install_project() {
  local dir="$1" extras="$2" stamp
  stamp="$dir/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${extras//,/_}"
  [ -f "$stamp" ] && return 0
  "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$dir/bin/python" -m pip install -q -e ".[${extras}]"
  touch "$stamp"
}

main() {
  local check=0 extras
  if [ "${1:-}" = "--check" ]; then check=1; shift; fi
  extras="${1:-ui}"
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  check_python
  missing_packages "$extras"
  if [ $check -eq 1 ]; then
    if [ ${#need[@]} -eq 0 ]; then echo "setup: nothing missing"; return 0; fi
    echo "setup: missing: ${need[*]}"
    return 1
  fi
  if [ ${#need[@]} -gt 0 ]; then
    install_packages "${need[@]}"
    missing_packages "$extras"
    if [ ${#need[@]} -gt 0 ]; then
      echo "setup: warning: installed, but still not found where expected: ${need[*]}" >&2
    fi
  fi
  ensure_venv "${VENV:-.venv}"
  install_project "${VENV:-.venv}" "$extras"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  main "$@"
fi
