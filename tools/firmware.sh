#!/usr/bin/env bash
# The firmware path, start to end: builds the library for thumbv7em-none-eabihf (no_std, TLS
# offload, Debian's Rust with -Zbuild-std), the mps2-an386 images, runs the arena's host test
# and the QEMU tests (the UART modem protocol, then a provisioning against the real emulator
# through the bridge) and prints the size report with the budgets.
#
#   tools/firmware.sh [--check] [--compare-panic-abort]
#
# --check: exit non-zero when a size budget is missed (the tests always fail the script).
# --compare-panic-abort: also builds with panic = "immediate-abort" (core included) and prints
#   the difference in flash (not the default: the panic hook is then never called; see
#   firmware/README.md).
# Uses $CARGO_TARGET_DIR (default target/) for everything, $DPS_EMULATOR if it names a built
# emulator (else builds it), and $DPS_FW_RUSTC / $DPS_FW_CARGO for Debian's Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

check=() compare=0
for arg in "$@"; do
    case "$arg" in
        --check) check=(--check) ;;
        --compare-panic-abort) compare=1 ;;
        *) echo "usage: $0 [--check] [--compare-panic-abort]" >&2; exit 2 ;;
    esac
done

rustc_fw="${DPS_FW_RUSTC:-/usr/bin/rustc}"
cargo_fw="${DPS_FW_CARGO:-/usr/bin/cargo}"
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
triple=thumbv7em-none-eabihf
lib="$target_dir/$triple/firmware/libdps_mqtt.a"
images="$target_dir/firmware-image"

step() { printf '\n==> %s\n' "$*"; }
missing=()
[ -x "$rustc_fw" ] && [ -x "$cargo_fw" ] || missing+=(rustc-web cargo-web)
[ -d "$("$rustc_fw" --print sysroot 2>/dev/null)/lib/rustlib/src/rust/library" ] || missing+=(rust-web-src)
command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "firmware.sh: missing Debian packages: ${missing[*]} (apt-get install them)" >&2
    exit 2
fi

# `cargo rustc --crate-type staticlib`: the manifest's crate types mix rlib with staticlib,
# and with an rlib among them cargo builds without LTO (silently), which costs about a fifth
# of the flash.
build_library() {
    RUSTC="$rustc_fw" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir" "$cargo_fw" rustc --quiet \
        -p dps-mqtt --lib --crate-type staticlib --no-default-features --profile firmware \
        -Zbuild-std=core,alloc "$@" --target "$triple"
}

step "library for $triple (Debian's Rust, -Zbuild-std=core,alloc, profile firmware)"
started=$SECONDS
build_library
echo "built in $((SECONDS - started)) s: $lib"

emulator="${DPS_EMULATOR:-}"
if [ -z "$emulator" ] || [ ! -x "$emulator" ]; then
    step "the emulator (host, release)"
    CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet -p dps-emulator
    emulator="$target_dir/release/dps-emulator"
fi

step "mps2-an386 images and the arena's host test"
make -s -C firmware OUT="$images" DPS_LIB="$lib" all arena-test
"$images/arena-test"

step "QEMU: the UART modem protocol, then a provisioning against the emulator"
started=$SECONDS
rm -f "$images/qemu-report.json"
qemu_status=0
python3 firmware/run_qemu_test.py --images "$images" --emulator "$emulator" \
    --report "$images/qemu-report.json" || qemu_status=$?
echo "QEMU tests took $((SECONDS - started)) s"

# Printed even when a QEMU check failed (the figures come from the first, successful boot).
step "size report"
size_status=0
report=()
[ -f "$images/qemu-report.json" ] && report=(--qemu-report "$images/qemu-report.json")
python3 tools/firmware_size.py --images "$images" "${report[@]}" \
    --json "$images/size-report.json" "${check[@]}" || size_status=$?

if [ "$compare" = 1 ]; then
    step "the same library with panic_immediate_abort (comparison only)"
    CARGO_PROFILE_FIRMWARE_PANIC=immediate-abort build_library -Zpanic-immediate-abort
    mkdir -p "$images/panic-abort"
    cp "$lib" "$images/panic-abort/libdps_mqtt.a"
    make -s -C firmware OUT="$images/panic-abort" DPS_LIB="$images/panic-abort/libdps_mqtt.a" \
        provision provision-nodps
    python3 - "$images" <<'PY'
import json, subprocess, sys
def flash(elf):
    t, d, _ = subprocess.run(["arm-none-eabi-size", elf], check=True, capture_output=True,
                             text=True).stdout.splitlines()[1].split()[:3]
    return int(t) + int(d)
base = sys.argv[1]
share = {k: flash(f"{base}/{k}/provision.elf") - flash(f"{base}/{k}/provision-nodps.elf")
         for k in (".", "panic-abort")}
print(f"library's flash: {share['.']} B default, {share['panic-abort']} B with "
      f"panic_immediate_abort ({share['panic-abort'] - share['.']:+d} B)")
PY
    build_library # leaves the default library in place for the next build
fi

if [ "$qemu_status" != 0 ]; then
    echo "firmware.sh: a QEMU test failed (see above)" >&2
    exit "$qemu_status"
fi
exit "$size_status"
