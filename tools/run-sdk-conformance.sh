#!/usr/bin/env bash
# Microsoft's Python device SDK (azure-iot-device) against the emulator. Creates its own
# virtual environment (.venv-conformance, never a global install), builds the emulator and
# runs the pytest suite. Needs root: the SDK only dials ports 8883 and 443.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-conformance
req=tests/sdk_conformance/requirements.txt
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
fi
cargo build --release --quiet -p dps-emulator
export DPS_EMULATOR="$PWD/target/release/dps-emulator"
cd tests/sdk_conformance
exec "../../$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
