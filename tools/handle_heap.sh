#!/usr/bin/env bash
# Prints the library's heap for one TLS handle against the emulator (c-tests/handle_heap.c):
# idle, the peak in flight and finished, as counted by the library's own allocator
# (dps_heap_usage). A report, not a test: the figures go into README and the issue notes.
#
#   tools/handle_heap.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p dps-mqtt -p dps-emulator
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CC:-cc} -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Iinclude c-tests/handle_heap.c \
    target/release/libdps_mqtt.a -Wl,--gc-sections -lgcc_s -lutil -lrt -lpthread -lm -ldl \
    -o "$out/handle_heap"
python3 c-tests/with_emulator.py --emulator target/release/dps-emulator \
    --enrollments c-tests/api_enrollments.json -- \
    "$out/handle_heap" localhost '{port}' '{ca}'
