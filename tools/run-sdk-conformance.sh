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

. tools/sdk-venv.sh

cargo build --release --quiet -p dps-emulator
export DPS_EMULATOR="${DPS_EMULATOR:-${CARGO_TARGET_DIR:-$PWD/target}/release/dps-emulator}"

run_in_private_netns "$py" -m pytest -p no:cacheprovider -W ignore::DeprecationWarning -q tests/sdk_conformance "$@"
