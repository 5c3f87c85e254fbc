#!/usr/bin/env bash
# Build the screens' translations the Qt way:
#   1. pylupdate5 (from PyQt5, in the venv) collects every tr()/translate() string of ui/*.py into station_vi.ts
#      (existing translations are kept; new strings appear unfinished, strings gone from the code are marked obsolete),
#   2. lrelease (Debian/Ubuntu: apt-get install qttools5-dev-tools) compiles station_vi.ts into station_vi.qm.
# The .qm is committed, so a fresh machine without lrelease still has the Vietnamese screens.
# Usage: ui/i18n/build.sh [--check]   (--check: fail if a string has no Vietnamese translation)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv_bin="${VENV_BIN:-.venv/bin}"
pylupdate="$venv_bin/pylupdate5"
[ -x "$pylupdate" ] || pylupdate="$(command -v pylupdate5)"
lrelease="$(command -v lrelease || command -v lrelease-qt5 || echo /usr/lib/qt5/bin/lrelease)"
"$pylupdate" -noobsolete ui/*.py -ts ui/i18n/station_vi.ts
# Source locations (file and line) change with every edit of ui/*.py and only make merges conflict: drop them.
sed -i '/<location filename=/d' ui/i18n/station_vi.ts
if [ "${1:-}" = "--check" ] && grep -q 'type="unfinished"' ui/i18n/station_vi.ts; then
  echo "i18n: untranslated strings in ui/i18n/station_vi.ts:" >&2
  grep -B2 'type="unfinished"' ui/i18n/station_vi.ts | grep '<source>' >&2
  exit 1
fi
if [ -x "$lrelease" ]; then
  "$lrelease" -silent ui/i18n/station_vi.ts -qm ui/i18n/station_vi.qm
else
  echo "i18n: lrelease not found (apt-get install qttools5-dev-tools); keeping the committed station_vi.qm" >&2
fi
