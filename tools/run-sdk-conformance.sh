#!/usr/bin/env bash
# Microsoft's Python device SDK (azure-iot-device) against the emulator: the proof that the
# emulator is faithful (tests/sdk_conformance/). Creates its own virtual environment
# (.venv-conformance; never a global pip install), builds the emulator, and runs pytest. Extra
# arguments go to pytest (e.g. -k throttling -v). Exits non-zero when any test fails.
#
# The SDK only dials ports 8883 (and 443 with WebSockets), so the suite needs root. It runs in a
# private network namespace when the kernel allows one (unshare), so it never collides with
# another emulator or service on those ports; otherwise in the host's, where they must be free.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-conformance
req=tests/sdk_conformance/requirements.txt

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "run-sdk-conformance: please install python3-venv" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
fi

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
    cp "$req" "$venv/requirements.txt"
fi

cargo build --release --quiet -p dps-emulator
export DPS_EMULATOR="${DPS_EMULATOR:-${CARGO_TARGET_DIR:-$PWD/target}/release/dps-emulator}"

py="$PWD/$venv/bin/python"
pytest_args=(-m pytest -p no:cacheprovider -W ignore::DeprecationWarning -q tests/sdk_conformance "$@")
if unshare --net -- true 2>/dev/null; then
    exec unshare --net -- "$py" tests/sdk_conformance/netns.py "$py" "${pytest_args[@]}"
fi
echo "run-sdk-conformance: no private network namespace here; using the host's ports 8883 and 443" >&2
exec "$py" "${pytest_args[@]}"
