#!/usr/bin/env bash
# The drop-in check (tests/sdk_dropin/): programs written against azure-iot-device 2.14, in the
# shape of its provisioning samples, run against the emulator with the SDK and again with only
# their import lines swapped to dps_mqtt; both must print the same assignment. Also runs README's
# Python quick start exactly as written. Uses the SDK's virtual environment (.venv-conformance,
# see tools/sdk-venv.sh) with this package pip-installed into it next to the SDK; extra
# arguments go to pytest. Exits non-zero when any test fails.
#
# Needs root, for the same reason as tools/run-sdk-conformance.sh: the SDK only dials ports 8883
# and 443 (a private network namespace when the kernel allows one).
set -euo pipefail
cd "$(dirname "$0")/.."

. tools/sdk-venv.sh

# The same invocation as CMake and tools/test.sh, so that pip's build below reuses the library
# (python/setup.py builds with the same packages) instead of compiling it again.
cargo build --release --quiet -p dps-mqtt -p dps-emulator
export DPS_EMULATOR="${DPS_EMULATOR:-${CARGO_TARGET_DIR:-$PWD/target}/release/dps-emulator}"
"$py" -m pip install --quiet --disable-pip-version-check --no-input --force-reinstall --no-deps ./python

run_in_private_netns "$py" -m pytest -p no:cacheprovider -W ignore::DeprecationWarning -q tests/sdk_dropin "$@"
# The public surface (names, signatures, exception tree) against the SDK installed beside it:
# in this venv the comparison runs instead of being skipped.
DPS_SDK_PYTHON="$py" "$py" -m pytest -p no:cacheprovider -W ignore::DeprecationWarning -q python/tests/test_sdk_api.py \
    -k the_surface_matches_the_installed_sdk -rs
