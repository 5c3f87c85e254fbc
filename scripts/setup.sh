#!/usr/bin/env bash
# Install what the station and its tests need on a fresh Debian/Ubuntu or Raspberry Pi OS machine:
# system packages (when missing), then a virtual environment in .venv with the project and its extras.
# Usage: scripts/setup.sh [extras]   e.g. scripts/setup.sh test,ui
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-ui}"

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
ldconfig -p 2>/dev/null | grep -q 'libzbar.so.0' || need+=(libzbar0)
fc-list 2>/dev/null | grep -qi 'DejaVuSans' || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}"
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
fi

py="${PYTHON:-python3}"
venv_args=()
# On a Raspberry Pi PyQt5 comes from apt (python3-pyqt5): let the venv see it.
if [ "$(uname -m)" = "aarch64" ] || [ "$(uname -m)" = "armv7l" ]; then venv_args+=(--system-site-packages); fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv "${venv_args[@]}" .venv
fi
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[${extras}]"
  touch "$stamp"
fi
