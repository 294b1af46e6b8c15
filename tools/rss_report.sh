#!/usr/bin/env bash
# Prints the resident-set figures of N create/register/free cycles of the C API against the
# emulator (c-tests/rss_cycles.c): RSS after the warm-up, at the end, the growth and the time
# per cycle. Exits non-zero when a cycle fails or the RSS grew by more than the bound.
#
#   tools/rss_report.sh [CYCLES [WARMUP [MAX_GROWTH_KIB]]]     (defaults 10000 500 256)
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=${1:-10000}
warmup=${2:-500}
bound=${3:-256}

cargo build --release --quiet -p dps-mqtt -p dps-emulator
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CC:-cc} -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Iinclude c-tests/rss_cycles.c \
    target/release/libdps_mqtt.a -Wl,--gc-sections -lgcc_s -lutil -lrt -lpthread -lm -ldl \
    -o "$out/rss_cycles"
python3 c-tests/with_emulator.py --emulator target/release/dps-emulator \
    --enrollments c-tests/api_enrollments.json -- \
    "$out/rss_cycles" --host localhost --port '{port}' --ca-file '{ca}' \
    --cycles "$cycles" --warmup "$warmup" --max-growth-kib "$bound"
