#!/usr/bin/env bash
# Creates the Python virtualenv the driver tests (tests/drivers.rs) run their scripts in, with the
# exact packages of tests/drivers/requirements.txt, as wheels only. Used by .ci/run and by the
# tests themselves; a no-op when the venv is already complete for this requirements file.
#
#   tests/drivers/venv.sh [VENV_DIR]      (default: <repo>/target/py-drivers)
#
# The marker file (a copy of requirements.txt) is written only after a successful install, so a
# venv left half-installed by an interrupted run, or one built for other pins, is rebuilt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../../target/py-drivers}"
req="$here/requirements.txt"
marker="$venv/.pgcorral-requirements"

if [ -x "$venv/bin/python" ] && [ -f "$marker" ] && cmp -s "$marker" "$req"; then
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  --only-binary :all: -r "$req"
cp "$req" "$marker"
