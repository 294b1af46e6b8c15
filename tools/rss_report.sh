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

. tools/c-report.sh
run_c_report rss_cycles --host localhost --port '{port}' --ca-file '{ca}' \
    --cycles "$cycles" --warmup "$warmup" --max-growth-kib "$bound"
