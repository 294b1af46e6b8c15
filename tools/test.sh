#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, Rust unit and integration tests (the
# library and the emulator against each other over loopback TLS), the header freshness check,
# the C build with its CTest suite (the CLI and the C API against the emulator), the Python
# binding installed with pip into a fresh virtual environment and tested there, and
# Microsoft's Python device SDK against the emulator. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# DPS_NEED_FIRMWARE: the Cortex-M step below needs Debian's Rust, the ARM toolchain and QEMU.
DPS_NEED_CBINDGEN=1 DPS_NEED_FIRMWARE=1 tools/ensure-deps.sh

# Each step's heading says how long the one before it took, so that a slow CI run shows where
# its time went.
step_started=
step() {
    if [ -n "$step_started" ]; then
        printf '\n==> %s (the previous step took %d s)\n' "$*" $((SECONDS - step_started))
    else
        printf '\n==> %s\n' "$*"
    fi
    step_started=$SECONDS
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "no-TLS hosted build (features: std only, as CMake DPS_MQTT_TLS=OFF): clippy and unit tests"
cargo clippy -p dps-mqtt --no-default-features --features std --quiet -- -D warnings
cargo test -p dps-mqtt --no-default-features --features std --lib --quiet

step "TLS without the public roots (CMake DPS_MQTT_PUBLIC_ROOTS=OFF): clippy, and its own unit test"
# The other unit tests assume the default features, public roots included.
cargo clippy -p dps-mqtt --no-default-features --features tls --quiet -- -D warnings
cargo test -p dps-mqtt --no-default-features --features tls --lib --quiet without_public_roots

step "no_std core (no features, the firmware build): clippy, and the unit tests on the host"
# The firmware profile (panic = "abort"): a no_std library cannot unwind.
cargo clippy -p dps-mqtt --no-default-features --profile firmware --quiet -- -D warnings
cargo test -p dps-mqtt --no-default-features --lib --quiet

step "build the emulator and the library (release)"
cargo build --release --quiet -p dps-emulator -p dps-mqtt

step "firmware: thumbv7em library, QEMU provisioning and arena tests, size report"
DPS_EMULATOR="$PWD/target/release/dps-emulator" tools/firmware.sh

step "cargo test (unit, integration, header)"
DPS_EMULATOR="$PWD/target/release/dps-emulator" cargo test --workspace --quiet
if cargo +nightly fuzz --version >/dev/null 2>&1; then step "fuzz each target briefly (fixed seed; corpus already ran as tests)"; for t in mqtt_stream response engine; do (cd fuzz && cargo +nightly fuzz run "$t" "$(mktemp -d)" "corpus/$t" -- -seed=1 -runs=20000 -max_total_time=60); done; fi

step "C build and CTest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDPS_MQTT_CARGO_TARGET_DIR="$PWD/target" >/dev/null
cmake --build build -j2
ctest --test-dir build --output-on-failure

step "Python binding: pip install ./python in a fresh venv, pytest from outside the repository"
repo="$PWD"
py_dir="$(mktemp -d)"
python3 -m venv "$py_dir/venv"
"$py_dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input ./python pytest
(cd "$py_dir" && DPS_EMULATOR="$repo/target/release/dps-emulator" \
    DPS_REGISTER_CLI="$repo/build/c-examples/dps_register" venv/bin/python -m pytest -p no:cacheprovider -q "$repo/python/tests")
rm -rf "$py_dir"

step "Microsoft azure-iot-device SDK against the emulator"
tools/run-sdk-conformance.sh
step "azure-iot-device programs run with the SDK, then with dps_mqtt by swapping imports; README's Python quick start"
tools/run-sdk-dropin.sh
printf '\n==> done (the last step took %d s; %d s in all)\n' $((SECONDS - step_started)) "$SECONDS"
